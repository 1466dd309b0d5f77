"""Canary for the pinned moto fixes: each gap is still open in plain moto, and each fix still closes it.

Both runs happen in fresh interpreters, so the patched classes of one cannot leak into the other.
When moto is upgraded, this test says which fix is no longer needed (remove it) or no longer applies.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trailguard.emulator.fixes import FIXES, MOTO_VERSION

ROOT = Path(__file__).resolve().parents[2]


def _probe(*args: str) -> dict[str, bool]:
    env = os.environ | {
        "AWS_ACCESS_KEY_ID": "canary",
        "AWS_SECRET_ACCESS_KEY": "canary",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "trailguard.emulator.fixes", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, bool] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def unpatched() -> dict[str, bool]:
    return _probe()


@pytest.fixture(scope="module")
def patched() -> dict[str, bool]:
    return _probe("--patched")


def test_moto_is_pinned_to_the_version_the_fixes_were_written_for() -> None:
    pins = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    m = re.search(r"^moto\[server\]==([\w.]+)$", pins, re.MULTILINE)
    assert m, "moto must be pinned exactly in requirements.txt"
    assert m.group(1) == MOTO_VERSION
    import moto

    assert moto.__version__ == MOTO_VERSION


@pytest.mark.parametrize("name", [f.name for f in FIXES])
def test_the_gap_is_still_open_in_plain_moto(unpatched: dict[str, bool], name: str) -> None:
    assert unpatched[name] is False, f"moto {MOTO_VERSION} no longer needs the fix {name!r}: remove it"


@pytest.mark.parametrize("name", [f.name for f in FIXES])
def test_the_fix_still_closes_the_gap(patched: dict[str, bool], name: str) -> None:
    assert patched[name] is True, f"the fix {name!r} no longer applies to this moto: update it"


def test_every_fix_is_named_once_and_says_whether_it_could_go_upstream() -> None:
    names = [f.name for f in FIXES]
    assert len(names) == len(set(names))
    for fix in FIXES:
        assert fix.summary
        assert isinstance(fix.upstream, bool)
        doc = fix.apply.__doc__ or ""
        assert doc, f"{fix.name}: the fix function needs a docstring saying what it fixes"
        # The docstring says whether the fix could be offered to moto as it is.
        assert ("Upstream candidate" in doc) is fix.upstream, fix.name
        assert ("Emulator-specific" in doc) is (not fix.upstream), fix.name
