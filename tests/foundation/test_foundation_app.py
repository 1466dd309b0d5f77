"""app.py turns a bad config into one clear line per problem and exit code 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bad_config_is_a_one_line_error_not_a_stack_trace(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("retention:\n  cloudwatch_logs_days: 42\nfeatures:\n  scps: maybe\n")
    env = dict(os.environ, CDK_CONTEXT_JSON=json.dumps({"config": str(bad)}), CDK_OUTDIR=str(tmp_path / "out"))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("trailguard: config error:")]
    assert any("cloudwatch_logs_days" in line for line in lines)
    assert any("features.scps" in line for line in lines)
    assert len(lines) == len(proc.stderr.strip().splitlines())  # nothing but the error lines
