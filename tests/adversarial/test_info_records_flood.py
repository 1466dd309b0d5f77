"""Change records cannot be used to starve the alerts.

Attacker: an admin of one member account who knows the catalog records routine calls (severity INFO change
records, e.g. every IAM group created or deleted). They make ten times the hourly budget of such calls, hoping
to use up the account's alert budget (so their next risky change is only counted) or to bury it among pages,
then stop the organization trail. The records must neither reach SNS, nor touch the alert budget, nor set off
the "budget exhausted" notice; the CRITICAL change is still remediated and its alert published.
"""

from __future__ import annotations

from typing import Any

import pytest
from reliability_world import (
    MEMBER,
    FakeContext,
    World,
    ct_record,
    emf_metrics,
    envelope,
    is_logging,
    make_trail,
    stop_logging_record,
)
from trailguard_engine import handler
from trailguard_engine.caller import DEFAULT_CALLER_MODES
from trailguard_engine.catalog import load_catalog, parse_rule
from trailguard_engine.model import Rule

RECORD = "test-iam-group-record"
STOP = "cloudtrail-stop-logging"
BUDGET = 5
FLOOD = 10 * BUDGET


def record_rule() -> Rule:
    return parse_rule(
        {
            "id": RECORD,
            "title": "IAM group changed (record)",
            "description": "test change record",
            "severity": "INFO",
            "category": "test",
            "mitre": [],
            "event_pattern": {"source": ["aws.iam"], "detail": {"eventName": ["CreateGroup", "DeleteGroup"]}},
            "decision": "change_record",
            "params": {"resource_fields": ["groupName"], "resource_type": "AWS::IAM::Group"},
            "remediation": None,
            "default_mode": "alert",
            "caller_modes": {**DEFAULT_CALLER_MODES, "human": "alert", "iac": "alert", "unknown": "alert"},
            "runbook": {"triage": [], "queries": [], "undo": ""},
            "examples": {"positive": [], "negative": []},
        }
    )


def _engine(payload: Any) -> dict[str, Any]:
    return handler.handler(payload, FakeContext())


@pytest.fixture
def flooded(world: World) -> World:
    engine = handler.get_engine(FakeContext())
    engine.rules = (*load_catalog(), record_rule())
    engine._evaluators.clear()
    world.set_runtime(alerts_per_account_per_hour=BUDGET)
    return world


def _flood(n: int) -> list[str]:
    statuses = []
    for i in range(n):
        name = "CreateGroup" if i % 2 else "DeleteGroup"
        rec = ct_record("iam", name, {"groupName": f"decoy-{i}"})
        out = _engine({"trailguard_rule": RECORD, "event": envelope(rec)})
        statuses.append(out["findings"][0]["status"])
    return statuses


def test_a_flood_of_change_records_does_not_starve_the_critical_alert_that_follows(
    flooded: World, capsys: pytest.CaptureFixture[str]
) -> None:
    make_trail(flooded)
    capsys.readouterr()
    assert _flood(FLOOD) == ["recorded"] * FLOOD
    assert flooded.alerts() == [], "change records reached SNS (or set off the budget-exhausted notice)"

    flooded.client("cloudtrail").stop_logging(Name="org-trail")
    out = _engine({"trailguard_rule": STOP, "event": envelope(stop_logging_record())})
    assert out["findings"][0]["status"] == "remediated"
    assert is_logging(flooded)
    alerts = flooded.alerts()
    assert [(b.get("rule"), b.get("severity"), b["action"]["status"]) for _, b in alerts] == [
        (STOP, "CRITICAL", "remediated")
    ]
    metrics = emf_metrics(capsys.readouterr().out, dimension="account")
    assert metrics[("ChangeRecords", MEMBER)] == FLOOD
    assert metrics[("ChangeRecordsSuppressed", MEMBER)] == FLOOD - BUDGET  # Security Hub imports past the budget
    assert metrics[("AlertsSuppressed", MEMBER)] == 0


def test_after_the_flood_the_alert_budget_is_whole_and_still_caps_alerts(
    flooded: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """The records used none of the budget: exactly BUDGET alerts go out, then the one budget notice."""
    flooded.set_mode(STOP, "alert")
    _flood(FLOOD)
    for i in range(BUDGET + 2):
        rec = ct_record("cloudtrail", "StopLogging", {"name": f"trail-{i}"})
        _engine({"trailguard_rule": STOP, "event": envelope(rec)})
    alerts = flooded.alerts()
    stop = [b for _, b in alerts if b.get("rule") == STOP and b.get("alert") is None]
    notices = [b for _, b in alerts if b.get("alert") == "alert_budget_exhausted"]
    assert len(stop) == BUDGET
    assert len(notices) == 1 and notices[0]["account"] == MEMBER
    assert emf_metrics(capsys.readouterr().out, dimension="account")[("AlertsSuppressed", MEMBER)] == 2
