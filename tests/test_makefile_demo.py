"""The demo installs what it runs, not the test-only tools (issue 17): checkov is for `make test` only."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _dry_run(target: str) -> str:
    # -B: pretend every target is out of date, so the whole prerequisite chain is printed; -n: run nothing.
    proc = subprocess.run(
        ["make", "-n", "-B", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_does_not_install_checkov_but_make_test_does() -> None:
    assert "checkov" not in _dry_run("demo")
    assert "checkov" in _dry_run("pytest")
