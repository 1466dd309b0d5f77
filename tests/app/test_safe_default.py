"""Issue 16: a deploy without a config is dry-run, and the deploy says so (output and synth info).

The dry-run cases use the session-synthesized apps (no config file; the organization example, which sets
``dry_run: true``); the live case synthesizes the detection stack once for this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from stacks.detection import DRY_RUN_NOTICE, LIVE_NOTICE, DetectionStack
from trailguard.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
STACK = "TrailguardDetection"


def _parameter_document(template: dict[str, Any]) -> dict[str, Any]:
    """The runtime-config parameter's JSON (pseudo-parameter tokens in an Fn::Join replaced by placeholders)."""
    (param,) = (
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SSM::Parameter" and r["Properties"]["Name"] == "/trailguard/runtime-config"
    )
    value = param["Properties"]["Value"]
    if not isinstance(value, str):
        value = "".join(p if isinstance(p, str) else "<token>" for p in value["Fn::Join"][1])
    doc = json.loads(value)
    assert isinstance(doc, dict)
    return doc


def _infos(metadata: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [e["data"] for entries in metadata.values() for e in entries if e.get("type") == "aws:cdk:info"]


def _warnings(metadata: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [e["data"] for entries in metadata.values() for e in entries if e.get("type") == "aws:cdk:warning"]


def _stack_metadata(outdir: Path) -> dict[str, list[dict[str, Any]]]:
    meta = json.loads((outdir / f"{STACK}.metadata.json").read_text())
    assert isinstance(meta, dict)
    return meta


@pytest.mark.parametrize("mode", ["standalone", "organization"])
def test_the_default_and_example_deploys_are_dry_run_and_say_so(mode: str, request: pytest.FixtureRequest) -> None:
    synth: Any = request.getfixturevalue(mode)
    template = synth.templates[STACK]
    assert _parameter_document(template)["dry_run"] is True
    assert template["Outputs"]["RemediationMode"]["Value"] == DRY_RUN_NOTICE
    # The sentence a first-time deployer reads: nothing changes, and how to go live.
    assert "changes nothing" in DRY_RUN_NOTICE and "dry_run: false" in DRY_RUN_NOTICE
    meta = _stack_metadata(synth.outdir)
    assert _infos(meta).count(DRY_RUN_NOTICE) == 1
    assert LIVE_NOTICE not in _infos(meta) + _warnings(meta)


@pytest.fixture(scope="module")
def live() -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The detection stack of a config with ``dry_run: false``: its template and metadata."""
    app = cdk.App(context=json.loads((ROOT / "cdk.json").read_text())["context"])
    cfg = parse_config({"dry_run": False})
    stack = DetectionStack(app, STACK, cfg=cfg, env=cdk.Environment(region=cfg.home_region))
    artifact = app.synth().get_stack_artifact(stack.artifact_id)
    metadata: dict[str, list[dict[str, Any]]] = {}
    for kind in ("aws:cdk:info", "aws:cdk:warning"):
        for e in artifact.find_metadata_by_type(kind):
            metadata.setdefault(e.path, []).append({"type": e.type, "data": e.data})
    return dict(artifact.template), metadata


def test_dry_run_false_deploys_live_and_says_so(live: tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]) -> None:
    template, metadata = live
    assert _parameter_document(template)["dry_run"] is False
    assert template["Outputs"]["RemediationMode"]["Value"] == LIVE_NOTICE
    assert _infos(metadata).count(LIVE_NOTICE) == 1
    assert DRY_RUN_NOTICE not in _warnings(metadata)
