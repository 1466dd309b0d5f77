"""Issue 20, attacker angle: an admin of one member account tries to make forwarding failures there
invisible by deleting their forwarding DLQ (or its alarm, or the role the sweep reads through).

Silence is never success: the central roll-up reports "cannot read DLQ depth in account X" (alert,
metric by account, function error) and never counts an unreadable queue as empty."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from reliability_world import MEMBER, World
from trailguard_engine import drift
from trailguard_engine.clients import ClientFactory, MemberSession
from trailguard_engine.exceptions import AssumeRoleError

# The helpers live beside the reliability tests; loaded by path like reliability_world (see conftest.py).
if "member_queue_helpers" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "member_queue_helpers", Path(__file__).resolve().parents[1] / "reliability" / "member_queue_helpers.py"
    )
    assert _spec is not None and _spec.loader is not None
    sys.modules["member_queue_helpers"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["member_queue_helpers"])

from member_queue_helpers import JOINED, dlq_url, healthy_estate, run_sweep


def _unreadable(alerts: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(s, b) for s, b in alerts if b.get("alert") == "member_dlq_unreadable"]


def test_deleted_member_dlq_is_reported_unreadable_not_empty(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy_estate(world, monkeypatch)
    world.client("sqs", MEMBER).delete_queue(QueueUrl=dlq_url(world, MEMBER))
    result, alerts, metrics, by_account = run_sweep(world, capsys)
    assert isinstance(result, drift.DriftError)  # the function fails: the drift error alarm fires too
    assert "cannot read DLQ depth in account " + MEMBER in str(result)
    [(subject, body)] = _unreadable(alerts)
    assert subject == f"trailguard MEMBER DLQ UNREADABLE: cannot read DLQ depth in account {MEMBER}"
    assert body["accounts"] == [MEMBER]
    assert [q["account"] for q in body["queues"]] == [MEMBER]
    assert metrics[("MemberDlqUnreadable", "")] == 1
    assert by_account[("MemberDlqUnreadable", MEMBER)] == 1
    assert ("MemberDlqUnreadable", JOINED) not in by_account  # the honest account is not blamed
    # ... and nothing about MEMBER was counted as a readable zero-depth queue.
    assert metrics[("MemberDlqMessages", "")] == 0


def test_deleting_the_member_alarm_does_not_silence_the_roll_up(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy_estate(world, monkeypatch)
    cw = world.client("cloudwatch", MEMBER)
    cw.put_metric_alarm(
        AlarmName="trailguard-forward-dlq",
        MetricName="ApproximateNumberOfMessagesVisible",
        Namespace="AWS/SQS",
        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.delete_alarms(AlarmNames=["trailguard-forward-dlq"])
    world.client("sqs", MEMBER).send_message(QueueUrl=dlq_url(world, MEMBER), MessageBody="{}")
    _, alerts, metrics, _ = run_sweep(world, capsys)
    assert [b["where"]["account"] for _, b in alerts if b.get("invariant") == "forward-dlq-empty"] == [MEMBER]
    assert metrics[("MemberDlqMessages", "")] == 1


def test_a_refused_member_role_is_reported_for_that_account(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy_estate(world, monkeypatch)
    real = ClientFactory.member

    def member(self: ClientFactory, account: str, region: str) -> MemberSession:
        if account == JOINED:
            raise AssumeRoleError(f"cannot assume role in {account}: AccessDenied")
        return real(self, account, region)

    monkeypatch.setattr(ClientFactory, "member", member)
    result, alerts, _, by_account = run_sweep(world, capsys)
    assert isinstance(result, drift.DriftError)
    [(subject, body)] = _unreadable(alerts)
    assert subject.endswith(f"cannot read DLQ depth in account {JOINED}")
    assert "AssumeRoleError" in body["queues"][0]["error"] or "AccessDenied" in body["queues"][0]["error"]
    assert by_account[("MemberDlqUnreadable", JOINED)] == 1
    assert ("MemberDlqUnreadable", MEMBER) not in by_account


def test_messages_in_one_account_cannot_hide_another_accounts_deleted_queue(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy_estate(world, monkeypatch)
    world.client("sqs", JOINED).delete_queue(QueueUrl=dlq_url(world, JOINED))
    world.client("sqs", MEMBER).send_message(QueueUrl=dlq_url(world, MEMBER), MessageBody="{}")
    result, alerts, metrics, _ = run_sweep(world, capsys)
    assert isinstance(result, drift.DriftError)
    assert [b["accounts"] for _, b in _unreadable(alerts)] == [[JOINED]]
    assert [b["where"]["account"] for _, b in alerts if b.get("invariant") == "forward-dlq-empty"] == [MEMBER]
    assert (metrics[("MemberDlqMessages", "")], metrics[("MemberDlqUnreadable", "")]) == (1, 1)
