"""The cold-start bench charges the handlers what Lambda pays: imports from bytecode, never compiling (issue 19)."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import load_bench


def test_probes_cache_bytecode_even_when_the_parent_forbids_it(tmp_path: Path) -> None:
    parent = {"PATH": "/usr/bin", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPROFILEIMPORTTIME": "1"}
    env = load_bench("cold_start").child_env(parent, str(tmp_path))
    assert "PYTHONDONTWRITEBYTECODE" not in env  # else trailguard's modules compile in every probe, boto3's do not
    assert "PYTHONPROFILEIMPORTTIME" not in env
    assert env["PYTHONPYCACHEPREFIX"] == str(tmp_path)  # boto3 and trailguard alike, outside the source tree
    assert env["TRAILGUARD_TRACING"] == "false" and env["PATH"] == "/usr/bin"
    assert parent["PYTHONDONTWRITEBYTECODE"] == "1"  # the caller's mapping is left alone
