"""Cold-start benchmark: import cost of the engine handler vs a bare ``import boto3``.

Each sample is a fresh interpreter (``python -c``) timing its import with
``time.perf_counter`` inside the process (interpreter start-up excluded), so
both figures carry the same fixed costs. Samples alternate between the two
imports to share machine noise; the figure is the median of N.

    .venv/bin/python -m bench.cold_start [N]
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from typing import Any

BASELINE = "boto3"
HANDLER = "trailguard_engine.handler"
BUDGET = 1.5

_PROBE = (
    "import time, json; t = time.perf_counter(); import {mod}; "
    "d = time.perf_counter() - t; import sys; "
    "print(json.dumps({{'s': d, 'tracer': 'aws_xray_sdk' in sys.modules, 'pydantic': 'pydantic' in sys.modules, "
    "'policyuniverse': 'policyuniverse' in sys.modules}}))"
)


def _sample(mod: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(mod=mod)], capture_output=True, text=True, check=True, env=env
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(n: int = 15) -> dict[str, Any]:
    """Measure and return the figures (seconds, ratio) as a dict."""
    env = {**os.environ, "TRAILGUARD_TRACING": "false"}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    _sample(BASELINE, env)  # warm the OS page cache and .pyc files for both
    first = _sample(HANDLER, env)
    base: list[float] = []
    handler: list[float] = []
    for _ in range(n):
        base.append(_sample(BASELINE, env)["s"])
        handler.append(_sample(HANDLER, env)["s"])
    b, h = statistics.median(base), statistics.median(handler)
    return {
        "samples": n,
        "boto3_import_s": round(b, 4),
        "handler_import_s": round(h, 4),
        "ratio": round(h / b, 3),
        "budget": BUDGET,
        "within_budget": h / b <= BUDGET,
        "handler_imports_pydantic": first["pydantic"],
        "handler_imports_xray": first["tracer"],
        "handler_imports_policyuniverse": first["policyuniverse"],
        "machine": f"{platform.machine()} {os.cpu_count()} CPU, Python {platform.python_version()}",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = sys.argv[1:] if argv is None else argv
    figures = run(int(args[0]) if args else 15)
    print(
        f"cold start: import {HANDLER} {figures['handler_import_s'] * 1000:.0f} ms vs import boto3 "
        f"{figures['boto3_import_s'] * 1000:.0f} ms -> ratio {figures['ratio']:.2f} (budget {BUDGET}, "
        f"median of {figures['samples']}; {figures['machine']})"
    )
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
