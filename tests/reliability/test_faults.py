"""Fault injection on AWS calls (a failing endpoint in front of moto): throttling, 5xx, timeouts, AccessDenied.

The remediation either completes after retries, or it raises to Lambda (-> retries, the
on-failure queue) after an alert went out. A partial remediation is never left without an alert.
"""

from __future__ import annotations

import pytest
from reliability_world import (
    ARCHIVE,
    MEMBER,
    FakeContext,
    World,
    alerted_from_log_file,
    ct_record,
    emf_metrics,
    envelope,
    is_logging,
    make_trail,
    notification,
    sqs_record,
    stop_logging_record,
)
from trailguard_engine import handler, reconcile
from trailguard_engine.clients import MAX_ATTEMPTS
from trailguard_engine.exceptions import RemediationError

RULE = "cloudtrail-stop-logging"


def _stop(world: World) -> dict:
    make_trail(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")
    return {"trailguard_rule": RULE, "event": envelope(stop_logging_record())}


@pytest.mark.parametrize("kinds", [("throttle",), ("throttle", "throttle", "5xx"), ("timeout", "throttle")])
def test_transient_faults_are_retried_until_the_remediation_completes(world: World, kinds: tuple[str, ...]) -> None:
    payload = _stop(world)
    world.fault("cloudtrail", "StartLogging", *kinds)
    out = handler.handler(payload, FakeContext())
    assert out["findings"][0]["status"] == "remediated"
    assert is_logging(world)
    assert world.fault_hits[("cloudtrail", "StartLogging")] == len(kinds)
    assert [b["action"]["status"] for _, b in world.alerts()] == ["remediated"]


@pytest.mark.parametrize(
    ("kind", "attempts"),
    [("5xx", MAX_ATTEMPTS), ("timeout", MAX_ATTEMPTS), ("throttle", MAX_ATTEMPTS), ("denied-json", 1)],
)
def test_persistent_faults_raise_to_lambda_after_an_alert(world: World, kind: str, attempts: int) -> None:
    payload = _stop(world)
    world.fault("cloudtrail", "StartLogging", *[kind] * 10)
    with pytest.raises(RemediationError):
        handler.handler(payload, FakeContext())
    assert world.fault_hits[("cloudtrail", "StartLogging")] == attempts  # AccessDenied is not retried
    assert not is_logging(world)
    alerts = world.alerts()
    assert [b["action"]["status"] for _, b in alerts] == ["failed"]
    assert "ACTION FAILED" in alerts[0][0]
    # Lambda's retry of the same event acts once the fault is gone: the failure did not burn the eventID.
    world.faults.clear()
    assert handler.handler(payload, FakeContext())["findings"][0]["status"] == "remediated"
    assert is_logging(world)


def test_denied_assume_role_alerts_and_raises(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    payload = _stop(world)
    world.fault("sts", "AssumeRole", "denied")
    capsys.readouterr()
    with pytest.raises(RemediationError):
        handler.handler(payload, FakeContext())
    assert emf_metrics(capsys.readouterr().out)[("AssumeRoleFailures", RULE)] == 1
    assert [b["action"]["status"] for _, b in world.alerts()] == ["failed"]
    assert not is_logging(world)


def test_partial_remediation_is_alerted(world: World) -> None:
    """cancel_key_deletion is two writes: the first succeeds, the second is denied -> alert + raise."""
    kms = world.client("kms")
    key = kms.create_key(Tags=[{"TagKey": "trailguard:protected", "TagValue": "true"}])["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    world.set_mode("kms-key-scheduled-for-deletion", "remediate")
    rec = ct_record("kms", "ScheduleKeyDeletion", {"keyId": key, "pendingWindowInDays": 7})
    world.fault("kms", "EnableKey", *["denied-json"] * 3)
    with pytest.raises(RemediationError):
        handler.handler({"trailguard_rule": "kms-key-scheduled-for-deletion", "event": envelope(rec)}, FakeContext())
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"  # half done
    alerts = world.alerts()
    assert [b["action"]["status"] for _, b in alerts] == ["failed"]
    assert "AccessDenied" in alerts[0][1]["action"]["detail"]


def test_reconcile_survives_throttled_reads_and_fails_the_message_on_persistent_errors(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    make_trail(world, logging=False)
    world.discard()
    key = world.put_log_file([stop_logging_record()])
    world.discard()
    event = {"Records": [sqs_record(notification(ARCHIVE, key), "m")]}
    world.fault("s3", "GetObject", *["5xx"] * MAX_ATTEMPTS)
    assert reconcile.handler(event, FakeContext()) == {"batchItemFailures": [{"itemIdentifier": "m"}]}
    assert not is_logging(world)
    assert world.engine_fn.invocations == []
    world.fault("s3", "GetObject", "slowdown", "slowdown")
    assert reconcile.handler(event, FakeContext()) == {"batchItemFailures": []}
    assert alerted_from_log_file(world)


def test_failed_hand_off_fails_the_message_but_not_the_other_events(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_trail(world, logging=False)
    world.discard()
    bad_rec, good_rec = stop_logging_record(), stop_logging_record()
    key = world.put_log_file([bad_rec, good_rec])
    world.discard()
    real_invoke = world.engine_fn.invoke

    def invoke(**kw: object) -> dict:
        if bad_rec["eventID"] in str(kw["Payload"]):
            raise RuntimeError("TooManyRequestsException: Rate exceeded")
        return real_invoke(**kw)  # type: ignore[arg-type]

    monkeypatch.setattr(world.engine_fn, "invoke", invoke)
    capsys.readouterr()
    event = {"Records": [sqs_record(notification(ARCHIVE, key), "m")]}
    assert reconcile.handler(event, FakeContext()) == {"batchItemFailures": [{"itemIdentifier": "m"}]}
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics[("HandOffFailures", RULE)] == 1
    assert metrics[("MissedByEventBridge", RULE)] == 1  # the good one went through
    assert alerted_from_log_file(world)
    assert MEMBER in str(world.engine_fn.invocations[0]["event"]["account"])
