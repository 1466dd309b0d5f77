"""The main job as a user runs it: ``trailguard demo`` (synth, cdk bootstrap + deploy into the emulator, attack).

Cold: a fresh outdir (synth included). Warm: the same outdir again with ``--no-synth`` (the assembly and
the CLI's caches are warm, as on a second run). Each run is a subprocess, timed end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_WARM_S = 120.0


def _run(args: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "trailguard"), "demo", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"trailguard demo {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return elapsed


def run(warm_runs: int = 2) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        outdir = Path(tmp) / "cdk.out"
        cold = _run(["--outdir", str(outdir)])
        warm = sorted(_run(["--no-synth", "--outdir", str(outdir)]) for _ in range(warm_runs))
    return {
        "demo": {"cold_s": cold, "warm_s": warm[len(warm) // 2], "warm_runs": warm_runs, "target_warm_s": TARGET_WARM_S}
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2), file=sys.stdout)
