"""The precision gate runs the benign set through the engine's moto world (tests/engine/engine_world.py)
and checks patterns with the catalog tests' moto matcher (tests/catalog/catalog_helpers.py).

The world is loaded by path, so this directory does not depend on the order in which pytest puts test
directories on ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
for _name, _path in (
    ("engine_world", _TESTS / "engine" / "engine_world.py"),
    ("catalog_helpers", _TESTS / "catalog" / "catalog_helpers.py"),  # moto's matcher with EventBridge's arrays
    ("corpus_firing", _TESTS / "precision" / "corpus_firing.py"),
):
    if _name not in sys.modules:
        _spec = importlib.util.spec_from_file_location(_name, _path)
        assert _spec is not None and _spec.loader is not None
        _module = importlib.util.module_from_spec(_spec)
        sys.modules[_name] = _module
        _spec.loader.exec_module(_module)

from engine_world import world  # noqa: E402

__all__ = ["world"]
