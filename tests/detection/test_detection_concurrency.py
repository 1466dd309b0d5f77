"""Issue 20: the engine's reserved concurrency is a config value (1..1000, or null: nothing reserved)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest

from stacks.detection import (
    DRIFT_RESERVED_CONCURRENCY,
    RECONCILE_RESERVED_CONCURRENCY,
    VERIFY_RESERVED_CONCURRENCY,
    DetectionStack,
)
from trailguard.config import DEFAULT_ENGINE_RESERVED_CONCURRENCY, parse_config
from trailguard.exceptions import ConfigError

HANDLERS = {
    "engine": "trailguard_engine.handler.handler",
    "reconcile": "trailguard_engine.reconcile.handler",
    "verify": "trailguard_engine.verify_digests.handler",
    "drift": "trailguard_engine.drift.handler",
}


def _detection(reserved: Any) -> dict[str, Any]:
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    app = cdk.App(context=json.loads((root / "cdk.json").read_text())["context"])
    cfg = parse_config({"engine": {"reserved_concurrency": reserved}})
    stack = DetectionStack(app, "TrailguardDetection", cfg=cfg, env=cdk.Environment(region=cfg.home_region))
    return dict(app.synth().get_stack_artifact(stack.artifact_id).template)


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    by_handler = {v: k for k, v in HANDLERS.items()}
    return {
        by_handler[r["Properties"]["Handler"]]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") in by_handler
    }


def _max_concurrency(template: dict[str, Any]) -> list[int]:
    return sorted(
        r["Properties"]["ScalingConfig"]["MaximumConcurrency"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    )


@pytest.mark.parametrize("value", [0, 1001, -5, "lots", 2.5])
def test_out_of_range_values_are_refused(value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"engine": {"reserved_concurrency": value}}, "cfg.yaml")
    assert any(line.startswith("cfg.yaml: engine.reserved_concurrency") for line in err.value.problems), err.value


def test_default_null_and_bounds() -> None:
    assert parse_config({}).engine.reserved_concurrency == DEFAULT_ENGINE_RESERVED_CONCURRENCY == 20
    assert parse_config({"engine": {"reserved_concurrency": None}}).engine.reserved_concurrency is None
    for n in (1, 1000):
        assert parse_config({"engine": {"reserved_concurrency": n}}).engine.reserved_concurrency == n


def test_the_default_deployment_reserves_what_it_did(standalone: Any) -> None:
    fns = _functions(standalone.templates["TrailguardDetection"])
    got = {name: props.get("ReservedConcurrentExecutions") for name, props in fns.items()}
    assert got == {
        "engine": DEFAULT_ENGINE_RESERVED_CONCURRENCY,
        "reconcile": RECONCILE_RESERVED_CONCURRENCY,
        "verify": VERIFY_RESERVED_CONCURRENCY,
        "drift": DRIFT_RESERVED_CONCURRENCY,
    }
    # The SQS-fed functions are capped by their event sources too (needs no account quota).
    assert _max_concurrency(standalone.templates["TrailguardDetection"]) == sorted(
        [RECONCILE_RESERVED_CONCURRENCY, VERIFY_RESERVED_CONCURRENCY]
    )


@pytest.fixture(scope="module")
def sized() -> dict[str, Any]:
    return _detection(137)


@pytest.fixture(scope="module")
def unreserved() -> dict[str, Any]:
    return _detection(None)


def test_the_engine_gets_the_configured_value(sized: dict[str, Any]) -> None:
    assert _functions(sized)["engine"]["ReservedConcurrentExecutions"] == 137


def test_null_reserves_nothing_anywhere_and_keeps_the_queue_caps(unreserved: dict[str, Any]) -> None:
    fns = _functions(unreserved)
    assert set(fns) == set(HANDLERS)
    assert {name: "ReservedConcurrentExecutions" in p for name, p in fns.items()} == dict.fromkeys(HANDLERS, False)
    assert _max_concurrency(unreserved) == sorted([RECONCILE_RESERVED_CONCURRENCY, VERIFY_RESERVED_CONCURRENCY])
