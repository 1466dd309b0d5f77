"""Attacks played end to end against the moto world of the reliability tests.

The world (engine + reconcile + drift wired as deployed, clock pinned) is loaded by path, so this
directory does not depend on the order in which pytest puts test directories on ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "reliability" / "reliability_world.py"
if "reliability_world" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("reliability_world", _PATH)
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["reliability_world"] = _module
    _spec.loader.exec_module(_module)

from reliability_world import world  # noqa: E402

__all__ = ["world"]
