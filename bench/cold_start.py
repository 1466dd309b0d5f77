"""Cold-start benchmark: import cost of every Lambda entry point vs a bare ``import boto3``.

Each sample is a fresh interpreter (``python -c``) timing its import with
``time.perf_counter`` inside the process (interpreter start-up excluded), so
both figures carry the same fixed costs. Samples alternate between the two
imports (baseline, then each handler, in every round) to share machine noise; each figure is the median
of N (at least 9). The budget (issue 19) applies to every handler.

    .venv/bin/python -m bench.cold_start [N]
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from bench.procenv import bytecode_env

BASELINE = "boto3"
#: Every Lambda entry point trailguard deploys (stacks/detection.py and the query layer's account sync).
HANDLERS = (
    "trailguard_engine.handler",
    "trailguard_engine.reconcile",
    "trailguard_engine.verify_digests",
    "trailguard_engine.drift",
    "trailguard_engine.athena_accounts",
)
HANDLER = HANDLERS[0]
BUDGET = 1.2
MIN_SAMPLES = 9

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
    """Measure and return the figures (seconds, ratios) as a dict; the top-level keys describe the engine handler."""
    n = max(n, MIN_SAMPLES)
    with tempfile.TemporaryDirectory(prefix="trailguard-pyc-") as pyc:
        return _run(n, child_env(os.environ, pyc))


def child_env(parent: Mapping[str, str], pyc_dir: str) -> dict[str, str]:
    """The probes' environment: bytecode cached (in ``pyc_dir``) for boto3 and trailguard alike (bench.procenv);
    Lambda never compiles trailguard's sources, the assets ship ``.pyc`` for its Python."""
    return {**bytecode_env(parent, pyc_dir), "TRAILGUARD_TRACING": "false"}


def _run(n: int, env: dict[str, str]) -> dict[str, Any]:
    _sample(BASELINE, env)  # warm the OS page cache and write the .pyc files for all
    first = {mod: _sample(mod, env) for mod in HANDLERS}
    base: list[float] = []
    times: dict[str, list[float]] = {mod: [] for mod in HANDLERS}
    for _ in range(n):
        for mod in HANDLERS:
            base.append(_sample(BASELINE, env)["s"])  # one baseline before each handler: same noise
            times[mod].append(_sample(mod, env)["s"])
    b = statistics.median(base)
    handlers = {
        mod: {
            "import_s": round(statistics.median(ts), 4),
            "ratio": round(statistics.median(ts) / b, 3),
            "within_budget": statistics.median(ts) / b <= BUDGET,
            "imports_pydantic": first[mod]["pydantic"],
            "imports_xray": first[mod]["tracer"],
            "imports_policyuniverse": first[mod]["policyuniverse"],
        }
        for mod, ts in times.items()
    }
    h = handlers[HANDLER]
    return {
        "samples": n,
        "boto3_import_s": round(b, 4),
        "handler_import_s": h["import_s"],
        "ratio": h["ratio"],
        "budget": BUDGET,
        "within_budget": all(v["within_budget"] for v in handlers.values()),
        "handler_imports_pydantic": h["imports_pydantic"],
        "handler_imports_xray": h["imports_xray"],
        "handler_imports_policyuniverse": h["imports_policyuniverse"],
        "handlers": handlers,
        "machine": f"{platform.machine()} {os.cpu_count()} CPU, Python {platform.python_version()}",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = sys.argv[1:] if argv is None else argv
    figures = run(int(args[0]) if args else 15)
    for mod, h in figures["handlers"].items():
        print(
            f"cold start: import {mod} {h['import_s'] * 1000:.0f} ms vs import boto3 "
            f"{figures['boto3_import_s'] * 1000:.0f} ms -> ratio {h['ratio']:.2f} (budget {BUDGET}, "
            f"median of {figures['samples']}; {figures['machine']})"
        )
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
