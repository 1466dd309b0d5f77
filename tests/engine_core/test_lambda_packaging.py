"""Issue 19 (cold start): the plain SQS batch loop, and assets shipped with Python 3.12 checked-hash bytecode."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from trailguard_engine.sqs_batch import SqsMessage, process_batch

from stacks.constructs import pyc_asset


def _record(mid: str, body: str, receives: str = "1") -> dict[str, Any]:
    return {"messageId": mid, "body": body, "attributes": {"ApproximateReceiveCount": receives}}


def test_only_the_records_that_raised_are_reported_and_the_rest_still_run() -> None:
    seen: list[SqsMessage] = []

    def handle(m: SqsMessage) -> None:
        seen.append(m)
        if m.body == "bad":
            raise ValueError("poison")

    event = {"Records": [_record("a", "ok"), _record("b", "bad", "3"), _record("c", "ok")]}
    assert process_batch(event, handle) == {"batchItemFailures": [{"itemIdentifier": "b"}]}
    assert [(m.message_id, m.receive_count) for m in seen] == [("a", 1), ("b", 3), ("c", 1)]


def test_a_batch_that_fails_entirely_is_reported_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def handle(m: SqsMessage) -> None:
        raise RuntimeError(m.message_id)

    with caplog.at_level(logging.ERROR):
        out = process_batch({"Records": [_record("a", "x"), _record("b", "y")]}, handle)
    assert out == {"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}
    assert "message a failed" in caplog.text


def test_an_empty_batch_succeeds_and_a_non_sqs_event_is_a_wiring_error() -> None:
    assert process_batch({"Records": []}, lambda m: None) == {"batchItemFailures": []}
    with pytest.raises(ValueError):
        process_batch({"detail": {}}, lambda m: None)


def test_an_unreadable_receive_count_counts_as_a_first_receive() -> None:
    assert SqsMessage.from_record({"messageId": "a", "body": "x", "attributes": {}}).receive_count == 1
    assert SqsMessage.from_record(_record("a", "x", "many")).receive_count == 1


# --------------------------------------------------------------------------- #
# pyc staging
# --------------------------------------------------------------------------- #
needs_312 = pytest.mark.skipif(pyc_asset.find_lambda_python() is None, reason="no Python 3.12 on this machine")


def _tree(root: Path) -> Path:
    src = root / "src"
    (src / "pkg" / "__pycache__").mkdir(parents=True)
    (src / "pkg" / "__init__.py").write_text("")
    (src / "pkg" / "mod.py").write_text("VALUE = 41 + 1\n")
    (src / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"stale bytecode of another Python")
    (src / "requirements.txt").write_text("boto3\n")
    return src


def _files(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@needs_312
def test_staging_ships_checked_hash_312_bytecode_only_and_is_deterministic(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    a = pyc_asset.stage_with_pyc(
        src, name="t", runtime_dir="/var/task", staging_root=tmp_path / "s1", excludes=["requirements.txt"]
    )
    b = pyc_asset.stage_with_pyc(
        src, name="t", runtime_dir="/var/task", staging_root=tmp_path / "s2", excludes=["requirements.txt"]
    )
    assert a.warning == "" and b.warning == ""
    files = _files(a.path)
    assert files == _files(b.path)  # same bytes from two separate compilations: a stable asset hash
    assert sorted(files) == [
        "pkg/__init__.py",
        "pkg/__pycache__/__init__.cpython-312.pyc",
        "pkg/__pycache__/mod.cpython-312.pyc",
        "pkg/mod.py",
    ]
    pyc = files["pkg/__pycache__/mod.cpython-312.pyc"]
    assert int.from_bytes(pyc[4:8], "little") == 0b11  # PEP 552: hash-based, checked against the source
    assert b"/var/task/pkg/mod.py" in pyc and str(tmp_path).encode() not in pyc
    # Staging the same content again reuses the directory.
    again = pyc_asset.stage_with_pyc(
        src, name="t", runtime_dir="/var/task", staging_root=tmp_path / "s1", excludes=["requirements.txt"]
    )
    assert again.path == a.path


@needs_312
def test_a_changed_source_gets_a_new_staging_directory(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    a = pyc_asset.stage_with_pyc(src, name="t", runtime_dir="/var/task", staging_root=tmp_path / "s")
    (src / "pkg" / "mod.py").write_text("VALUE = 43\n")
    b = pyc_asset.stage_with_pyc(src, name="t", runtime_dir="/var/task", staging_root=tmp_path / "s")
    assert a.path != b.path
    assert (b.path / "pkg" / "mod.py").read_text() == "VALUE = 43\n"


def test_without_python_312_the_asset_ships_source_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _tree(tmp_path)
    monkeypatch.setattr(pyc_asset, "find_lambda_python", lambda: None)
    monkeypatch.delenv(pyc_asset.REQUIRE_ENV, raising=False)
    staged = pyc_asset.stage_with_pyc(src, name="t", runtime_dir="/var/task", staging_root=tmp_path / "s")
    assert "no Python 3.12" in staged.warning
    assert not list(staged.path.rglob("*.pyc"))
    assert (staged.path / "pkg" / "mod.py").is_file()


def test_a_release_build_can_require_the_bytecode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _tree(tmp_path)
    monkeypatch.setattr(pyc_asset, "find_lambda_python", lambda: None)
    monkeypatch.setenv(pyc_asset.REQUIRE_ENV, "1")
    with pytest.raises(pyc_asset.PycError):
        pyc_asset.stage_with_pyc(src, name="t", runtime_dir="/var/task", staging_root=tmp_path / "s")


def test_an_interpreter_of_another_version_is_not_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pyc_asset.PYTHON_ENV, sys.executable)  # this test runs on 3.11
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    if sys.version_info[:2] != pyc_asset.LAMBDA_PYTHON:
        assert pyc_asset.find_lambda_python() is None


def test_the_engine_imports_no_batch_utility_nor_idempotency_of_powertools() -> None:
    assert importlib.util.find_spec("trailguard_engine.reconcile") is not None
    import subprocess

    probe = (
        "import sys, trailguard_engine.handler, trailguard_engine.reconcile; "
        "print(sorted(m for m in sys.modules if m.startswith(('aws_lambda_powertools.utilities.batch', "
        "'aws_lambda_powertools.utilities.idempotency'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
