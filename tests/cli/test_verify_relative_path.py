"""``trailguard verify DIR`` with a relative DIR (found by generating docs/cli.md: it raised ValueError)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path


def test_a_relative_archive_path_is_verified_not_a_traceback(tmp_path: Path) -> None:
    day = tmp_path / "logs" / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "10" / "01"
    day.mkdir(parents=True)
    (day / "111122223333_CloudTrail_us-east-1_20261001T0000Z_x.json.gz").write_bytes(
        gzip.compress(json.dumps({"Records": []}).encode(), mtime=0)
    )
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("trailguard")), "verify", "logs"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "100"},
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "logs: no digest files found" in proc.stdout
