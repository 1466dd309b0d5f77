"""Finding 6: an old (or oddly timed) event must not undo a later, deliberate change.

Attacker: anyone who can get an old record in front of the engine (re-upload a log file, re-drive a
DLQ message after the idempotency TTL, invoke the engine) to restart an intentionally stopped trail.
"""

from __future__ import annotations

import pytest
from reliability_world import FakeContext, World, emf_metrics, envelope, is_logging, make_trail, stop_logging_record
from trailguard_engine import handler
from trailguard_engine.evaluate import Evaluator

RULE = "cloudtrail-stop-logging"


def _stopped_on_purpose(world: World) -> None:
    make_trail(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")


@pytest.mark.parametrize(
    ("event_time", "why"),
    [
        ("2019-03-01T10:00:00Z", "min old"),
        ("2026-10-01T11:29:00Z", "min old"),  # 61 minutes before the frozen clock: just past the limit
        ("2026-10-01T13:00:00Z", "in the future"),
        ("", "eventTime missing"),
        ("yesterday", "eventTime missing or unreadable"),
        ("2026-10-01T12:00:00", "eventTime missing or unreadable"),  # no zone: not CloudTrail's format
    ],
    ids=["2019", "61-min", "future", "missing", "garbage", "naive"],
)
def test_an_old_or_oddly_timed_event_is_alert_only(
    world: World, capsys: pytest.CaptureFixture[str], event_time: str, why: str
) -> None:
    """Reproduces the review: a 2019 StopLogging record restarted a trail that is stopped on purpose today."""
    _stopped_on_purpose(world)
    rec = stop_logging_record()
    rec["eventTime"] = event_time
    capsys.readouterr()
    out = handler.handler({"trailguard_rule": RULE, "event": envelope(rec)}, FakeContext())
    finding = out["findings"][0]
    assert finding["decision"] == "alert" and finding["status"] == "alerted"
    assert why in finding["reason"]
    assert not is_logging(world)
    assert world.ops("cloudtrail", "StartLogging") == 0
    assert emf_metrics(capsys.readouterr().out)[("StaleEvents", RULE)] == 1
    [(_s, body)] = world.alerts()
    assert why in body["reason"]


def test_a_recent_event_still_acts(world: World) -> None:
    _stopped_on_purpose(world)
    rec = stop_logging_record()
    rec["eventTime"] = "2026-10-01T11:31:00Z"  # 59 minutes old
    out = handler.handler({"trailguard_rule": RULE, "event": envelope(rec)}, FakeContext())
    assert out["findings"][0]["status"] == "remediated"
    assert is_logging(world)


def test_the_age_limit_is_configurable(world: World) -> None:
    world.set_runtime(max_event_age_minutes=5)
    _stopped_on_purpose(world)
    out = handler.handler({"trailguard_rule": RULE, "event": envelope(stop_logging_record())}, FakeContext())
    assert out["findings"][0]["decision"] == "alert"  # 30 minutes old, limit 5
    assert not is_logging(world)


def test_a_redrive_after_the_idempotency_ttl_does_not_act_again(world: World) -> None:
    """The same event three days later (its idempotency record expired) is alert-only."""
    _stopped_on_purpose(world)
    payload = {"trailguard_rule": RULE, "event": envelope(stop_logging_record())}
    assert handler.handler(payload, FakeContext())["findings"][0]["status"] == "remediated"
    world.client("cloudtrail").stop_logging(Name="org-trail")  # stopped deliberately afterwards
    handler.clock.advance(3 * 24 * 3600)  # type: ignore[attr-defined]
    out = handler.handler(payload, FakeContext())
    assert out["findings"][0]["decision"] == "alert"
    assert not is_logging(world)


def test_replay_still_judges_old_logs_as_if_live() -> None:
    """``trailguard replay`` is a dry run of the rules: an old event keeps its 'remediate' verdict there."""
    rec = stop_logging_record()
    rec["eventTime"] = "2019-03-01T10:00:00Z"
    from trailguard_engine.runtime_config import RuntimeConfig

    cfg = RuntimeConfig(rule_modes={RULE: "remediate"})
    result = Evaluator(cfg=cfg).evaluate(rec, only_rule=RULE)
    assert result.verdict == "remediate"
