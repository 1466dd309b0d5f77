"""Split an EventBridge event pattern into smaller patterns whose union matches exactly the same events.

EventBridge limits one event pattern to 2,048 characters. A pattern is a conjunction of fields,
each field a *list of filters* (an OR), with ``$or`` lists of alternative sub-patterns (also an
OR). Replacing one such OR-list ``L = L1 + L2`` by ``L1`` in one copy and ``L2`` in another gives
two patterns whose union is exactly the original:

* a leaf list (``"eventName": [a, b, c]``): an event matches the original when some leaf value
  (picked consistently with the arrays the other fields use) matches ``a`` or ``b`` or ``c``, and
  "there is a pick where (x or y)" is "there is a pick where x, or there is one where y". The
  ``exists: false`` filter moves with its part like any other filter.
* a ``$or`` list: the pattern is the OR of its alternatives, so a partition of the alternatives
  partitions the OR. A part left with one alternative is merged into the object holding the
  ``$or`` (EventBridge rejects a one-element ``$or``); fields of one combination never repeat, so
  the merge only ever joins distinct fields (nested objects are merged key by key).

Filter objects are never split (``{"anything-but": [..]}`` is an AND of negations), so the split
never widens nor narrows a match. Parts may overlap (a ``prefix`` filter and a literal it covers
can land in different parts): one event can then match two parts of the same rule, and every
consumer must tolerate that (the engine's idempotency key is the same for both deliveries).

Sizes are counted as :func:`pattern_size` does: JSON with a space after every separator, which
over-counts the compact form CloudFormation sends, so a part within the limit here is within it
there too.

tests/catalog/test_pattern_split.py proves the union is exact, with this package's matcher and
moto's, over generated patterns and events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from trailguard_engine.matcher import validate_pattern

#: A place in a pattern: the keys from the root to a list (``$or`` included).
Path = tuple[str, ...]


class PatternTooLargeError(ValueError):
    """A pattern (or one of its parts) cannot be split below the size limit."""


class _MergeConflict(Exception):
    """A lone ``$or`` alternative cannot be merged into its parent (both hold a ``$or``)."""


def pattern_size(pattern: Any) -> int:
    """Characters of the pattern as JSON, counted with spaces after separators (conservative)."""
    return len(json.dumps(pattern))


def split_pattern(pattern: Mapping[str, Any], max_chars: int, *, strict: bool = True) -> list[dict[str, Any]]:
    """Patterns of at most ``max_chars`` characters whose union matches exactly what ``pattern`` matches.

    A pattern within the limit is returned alone and unchanged. Otherwise the largest OR-list (by
    its JSON size) is packed greedily, in its own order, into as few chunks as fit, and each part
    is split again if still too large; the result is deterministic. With ``strict`` (the default),
    :class:`PatternTooLargeError` is raised when a part has nothing left to split and is still too
    large; without it, such a part is returned as it is.
    """
    validate_pattern(pattern)
    parts = _split(_copy(pattern), max_chars)
    if strict:
        for part in parts:
            if pattern_size(part) > max_chars:
                raise PatternTooLargeError(
                    f"an event pattern part of {pattern_size(part)} characters cannot be split below "
                    f"{max_chars}: {json.dumps(part)[:200]}"
                )
    for part in parts:
        validate_pattern(part)
    return parts


def _copy(node: Any) -> Any:
    return json.loads(json.dumps(node))


def _split(pattern: dict[str, Any], max_chars: int) -> list[dict[str, Any]]:
    if pattern_size(pattern) <= max_chars:
        return [pattern]
    # Largest list first (ties: the earlier path), so eventName arrays go before short filter lists.
    candidates = sorted(_or_lists(pattern, ()), key=lambda c: -pattern_size(c[1]))
    for path, items in candidates:
        try:
            chunks = [_replace(pattern, path, chunk) for chunk in _pack(pattern, path, items, max_chars)]
        except _MergeConflict:  # a lone $or alternative repeats a $or of its parent: try another list
            continue
        return [part for chunk in chunks for part in _split(chunk, max_chars)]
    return [pattern]


def _pack(pattern: dict[str, Any], path: Path, items: Sequence[Any], max_chars: int) -> list[list[Any]]:
    """``items`` in order, in as few chunks as keep the pattern within ``max_chars``, evened out.

    Greedy packing gives the fewest chunks; the same number of chunks cut at equal shares of the
    items' total size is used instead when every one fits, so each part keeps a similar margin.
    The whole list is the original pattern, which is too large, so there are at least two chunks,
    each strictly shorter than ``items``.
    """
    chunks: list[list[Any]] = []
    current: list[Any] = []
    for item in items:
        candidate = [*current, item]
        if current and pattern_size(_replace(pattern, path, candidate)) > max_chars:
            chunks.append(current)
            current = [item]
        else:
            current = candidate
    chunks.append(current)
    even = _even(items, len(chunks))
    if all(pattern_size(_replace(pattern, path, chunk)) <= max_chars for chunk in even):
        return even
    return chunks


def _even(items: Sequence[Any], k: int) -> list[list[Any]]:
    """``items`` in order, cut into ``k`` non-empty runs of about equal JSON size."""
    sizes = [pattern_size(item) + 2 for item in items]
    total = sum(sizes)
    out: list[list[Any]] = []
    current: list[Any] = []
    done = 0
    for i, (item, size) in enumerate(zip(items, sizes, strict=True)):
        left_items, left_runs = len(items) - i, k - len(out)
        # close the run at its share of the total, or when each remaining run needs one remaining item
        if current and (done + size / 2 > total * (len(out) + 1) / k or left_items < left_runs):
            out.append(current)
            current = []
        current.append(item)
        done += size
    out.append(current)
    return out


def _or_lists(node: Mapping[str, Any], path: Path) -> list[tuple[Path, list[Any]]]:
    """Every OR-list of at least two members: leaf filter lists and ``$or`` lists, at any depth."""
    out: list[tuple[Path, list[Any]]] = []
    for key, sub in node.items():
        here = (*path, key)
        if isinstance(sub, list):
            if len(sub) >= 2:
                out.append((here, sub))
            if key == "$or":
                for i, alt in enumerate(sub):
                    out.extend(_or_lists(alt, (*here, str(i))))
        elif isinstance(sub, Mapping):
            out.extend(_or_lists(sub, here))
    return out


def _replace(pattern: dict[str, Any], path: Path, chunk: Sequence[Any]) -> dict[str, Any]:
    """A copy of ``pattern`` with the list at ``path`` replaced by ``chunk`` (a lone ``$or`` alternative merged)."""
    root: dict[str, Any] = _copy(pattern)
    parent: Any = root
    for step in path[:-1]:
        parent = parent[int(step)] if isinstance(parent, list) else parent[step]
    key = path[-1]
    if key == "$or" and len(chunk) == 1:
        del parent[key]
        _merge(parent, _copy(chunk[0]))
    else:
        parent[key] = _copy(list(chunk))
    return root


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    """AND ``other`` into ``into``: distinct fields side by side, nested objects merged key by key."""
    for key, value in other.items():
        mine = into.get(key)
        if key not in into:
            into[key] = value
        elif isinstance(mine, dict) and isinstance(value, Mapping):
            _merge(mine, value)
        else:  # only a second $or: a field twice in one combination is refused by validate_pattern
            raise _MergeConflict(key)
