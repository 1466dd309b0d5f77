"""Helpers of the CLI tests (import these, never ``conftest``: every test folder has its own conftest.py,
so ``from conftest import`` resolves to whichever one pytest imported last)."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

from trailguard_engine.catalog import load_catalog


def catalog_examples() -> list[tuple[str, str, dict[str, Any]]]:
    """(rule id, positive|negative, EventBridge envelope) for every example in the catalog."""
    out = []
    for r in load_catalog():
        for kind, examples in (("positive", r.examples_positive), ("negative", r.examples_negative)):
            out.extend((r.id, kind, dict(e)) for e in examples)
    return out


def bare(envelope: dict[str, Any]) -> dict[str, Any]:
    return dict(envelope["detail"])


def write_jsonl(path: Path, objs: list[Any]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    return path


def write_log_file(path: Path, records: list[dict[str, Any]], *, gz: bool = True) -> Path:
    data = json.dumps({"Records": records}).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


ROOT = Path(__file__).resolve().parents[2]


def load_bench(name: str) -> Any:
    """``bench/<name>.py`` as a module (``bench`` is not an installed package)."""
    import importlib.util

    if "bench" not in sys.modules:  # the bench modules import their siblings as bench.<name>
        pkg = importlib.util.spec_from_file_location(
            "bench", ROOT / "bench" / "__init__.py", submodule_search_locations=[str(ROOT / "bench")]
        )
        assert pkg is not None and pkg.loader is not None
        sys.modules["bench"] = importlib.util.module_from_spec(pkg)
        pkg.loader.exec_module(sys.modules["bench"])
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import would: dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
