"""Synth time of organization mode with 1, 4 and 17 governed regions (fresh process each)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
REGIONS_17 = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
    "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ca-central-1", "eu-central-1", "eu-west-1",
    "eu-west-2", "eu-west-3", "eu-north-1", "sa-east-1",
]  # fmt: skip


def synth_seconds(regions: list[str], workdir: Path, repeats: int) -> tuple[float, int, int]:
    cfg = yaml.safe_load((ROOT / "config" / "example-organization.yaml").read_text())
    cfg["governed_regions"] = regions
    cfg["home_region"] = regions[0]
    path = workdir / f"org-{len(regions)}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    context = json.loads((ROOT / "cdk.json").read_text())["context"] | {"config": str(path)}
    times = []
    stacks = resources = 0
    for i in range(repeats):
        out = workdir / f"out-{len(regions)}-{i}"
        env = os.environ | {
            "CDK_CONTEXT_JSON": json.dumps(context),
            "CDK_OUTDIR": str(out),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "JSII_DEPRECATED": "quiet",
        }
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
        templates = list(out.glob("*.template.json"))
        stacks = len(templates)
        resources = sum(len(json.loads(t.read_text()).get("Resources", {})) for t in templates)
    return statistics.median(times), stacks, resources


def run(repeats: int = 1) -> dict[str, Any]:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 4, 17):
            secs, stacks, resources = synth_seconds(REGIONS_17[:n], Path(tmp), repeats)
            results[n] = {"seconds": secs, "templates": stacks, "resources": resources}
    base = results[1]["seconds"]
    for r in results.values():
        r["ratio_to_1_region"] = r["seconds"] / base
    return {"synth": results}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
