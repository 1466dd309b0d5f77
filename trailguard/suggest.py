"""Did-you-mean suggestions for names a user types (rule ids, query names, config keys): difflib, not a hand-made distance."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str], *, limit: int = 3) -> str:
    """`` (did you mean: a, b?)`` for the closest known names, or ``""`` when nothing is close."""
    hits = difflib.get_close_matches(name, sorted(set(known)), n=limit, cutoff=0.6)
    return f" (did you mean: {', '.join(hits)}?)" if hits else ""
