"""Threshold rules through the real handler against moto, and the same records through ``trailguard replay``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from engine_world import World, metric_total
from trailguard_engine import handler
from trailguard_engine.model import EventResult
from trailguard_engine.window import DynamoWindowStore, parse_time

from trailguard.replay import build_evaluator, replay

_HELPERS = Path(__file__).resolve().parents[1] / "engine_core" / "window_helpers.py"
if "window_helpers" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("window_helpers", _HELPERS)
    assert _spec is not None and _spec.loader is not None
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["window_helpers"] = _mod
    _spec.loader.exec_module(_mod)

from window_helpers import PASSWORD, SECRETS, T0, distinct_copies, secret_read  # noqa: E402


def _sequence() -> list[dict[str, Any]]:
    """A burst by one role over many sessions, a redelivery, another role below the threshold, failed reads."""
    seq: list[dict[str, Any]] = []
    for i in range(13):
        seq.append(secret_read(i, T0 + 15 * i, session=f"s{i}"))
        if i == 9:
            seq.append(secret_read(i, T0 + 15 * i, session=f"s{i}"))  # the firing event, redelivered
        if i % 3 == 0:
            seq.append(secret_read(100 + i, T0 + 15 * i + 1, role="App"))
    denied = distinct_copies(PASSWORD, 6, start=T0 + 30, step=40)
    for env in denied:
        env["detail"]["errorCode"] = "Client.UnauthorizedOperation"
        env["detail"]["errorMessage"] = "You are not authorized to perform this operation."
    return sorted(seq + denied, key=lambda e: e["detail"]["eventTime"])


def _engine_run(world: World, seq: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], list[int]]:
    """Verdicts of the two threshold rules, and the DynamoDB calls per invocation other than first-seen rules'
    (the same reads qualify for ``secretsmanager-secret-first-read``, whose terms cost calls of their own)."""
    clock = handler.clock
    engine = handler.get_engine()
    assert engine.thresholds is not None
    store = engine.thresholds.store
    seen_calls = [0]
    for name in ("touch", "mark_first", "start"):
        real = getattr(store, name)

        def counted(*a: Any, _real: Any = real, **k: Any) -> Any:
            seen_calls[0] += 1
            return _real(*a, **k)

        setattr(store, name, counted)
    verdicts, ddb_calls = [], []
    for env in seq:
        at = parse_time(env["detail"]["eventTime"])
        assert at is not None
        clock.now = at + 45  # type: ignore[attr-defined]  # delivered 45 s after the call
        before = len([c for c in world.calls if c[1] == "dynamodb"]) - seen_calls[0]
        out = world.invoke(env)
        ddb_calls.append(len([c for c in world.calls if c[1] == "dynamodb"]) - seen_calls[0] - before)
        mine = [f for f in out["findings"] if f["rule"] in (SECRETS.id, PASSWORD.id)]
        assert len(mine) == 1, out
        verdicts.append((mine[0]["rule"], mine[0]["decision"]))
    return verdicts, ddb_calls


def _replay_run(seq: list[dict[str, Any]]) -> list[tuple[str, str]]:
    evaluator, _ = build_evaluator()
    results: list[EventResult] = []
    replay([("mem", i + 1, env) for i, env in enumerate(seq)], evaluator, on_result=results.append)
    out = []
    for r in results:
        mine = [f for f in r.findings if f.rule in (SECRETS.id, PASSWORD.id)]
        assert len(mine) == 1
        out.append((mine[0].rule, mine[0].decision))
    return out


def test_engine_and_replay_give_the_same_verdicts_on_the_same_records(world: World) -> None:
    seq = _sequence()
    engine, ddb_calls = _engine_run(world, seq)
    assert engine == _replay_run(seq)
    fired = [v for v in engine if v[1] == "alert"]
    assert fired.count((SECRETS.id, "alert")) == 2  # the 10th secret by the role (any session), and its redelivery
    assert fired.count((PASSWORD.id, "alert")) == 1  # the 5th refused password read
    alerts = [m for _, m in world.messages() if m.get("rule") in (SECRETS.id, PASSWORD.id)]
    assert sorted(m["rule"] for m in alerts) == sorted([SECRETS.id, PASSWORD.id])  # one message each: no storm
    by_decision: dict[str, list[int]] = {}
    for (_, d), n in zip(engine, ddb_calls, strict=True):
        by_decision.setdefault(d, []).append(n)
    print(f"DynamoDB calls per invocation by verdict: { {d: sorted(set(v)) for d, v in by_decision.items()} }")
    assert max(by_decision["skip"]) <= 2  # a counted event: the window update (and the fire check when full)


def test_the_engine_counts_in_the_state_table(world: World) -> None:
    engine = handler.get_engine()
    assert engine.thresholds is not None
    assert isinstance(engine.thresholds.store, DynamoWindowStore)


def test_a_throttled_state_table_alerts_every_event_with_a_metric(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = handler.get_engine()
    assert engine.thresholds is not None
    store = engine.thresholds.store

    def throttled(*a: Any, **k: Any) -> Any:
        from botocore.exceptions import ClientError

        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "UpdateItem"
        )

    monkeypatch.setattr(store, "add", throttled)
    handler.clock.now = T0 + 60  # type: ignore[attr-defined]
    outs = [world.invoke(secret_read(i, T0 + i)) for i in range(3)]
    decisions = [[f["decision"] for f in o["findings"] if f["rule"] == SECRETS.id] for o in outs]
    assert decisions == [["alert"]] * 3
    assert all(
        "threshold state unavailable" in f["reason"] for o in outs for f in o["findings"] if f["rule"] == SECRETS.id
    )
    alerts = [m for _, m in world.messages() if m.get("rule") == SECRETS.id]
    assert len(alerts) == 3
    assert metric_total(capsys.readouterr().out, "ThresholdStateErrors") == 3
