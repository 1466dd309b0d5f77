"""The second path end to end: log file -> S3 notification -> SQS -> reconcile -> engine, against moto.

Each test would fail if its property broke: the remediation happens once, a second delivery
of the same file does nothing, an event handled through EventBridge is not handled again
(and not counted as missed), an event seen only in the log file is counted as missed.
"""

from __future__ import annotations

import json
import threading
import tracemalloc
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from reliability_world import (
    ARCHIVE,
    LOG_FILE_ONLY,
    MEMBER,
    REGION,
    FakeContext,
    World,
    alerted_from_log_file,
    ct_record,
    emf_metrics,
    envelope,
    is_logging,
    make_trail,
    stop_logging_record,
)
from trailguard_engine import handler
from trailguard_engine.engine import Engine

RULE = "cloudtrail-stop-logging"


def _alerts_about(w: World, event_id: str) -> list[tuple[str, dict]]:
    return [(s, b) for s, b in w.alerts() if b.get("what", {}).get("event_id") == event_id]


def test_moto_sends_a_test_event_first_and_it_is_consumed(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    event = world.drain()
    bodies = [json.loads(r["body"]) for r in event["Records"]]
    assert [b.get("Event") for b in bodies] == ["s3:TestEvent"]
    capsys.readouterr()
    assert world.run_reconcile(event) == {"batchItemFailures": []}
    assert emf_metrics(capsys.readouterr().out)[("TestEvents", "")] == 1
    assert world.engine_fn.invocations == []


def test_log_file_only_alerts_once_and_counts_missed(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """A finding only a log file showed is alerted, not acted on (the file's integrity is not verified)."""
    make_trail(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")
    rec = stop_logging_record()
    world.discard()  # the s3:TestEvent sent when the notification was configured
    world.put_log_file([ct_record("ec2", "DescribeInstances", {}, read_only=True), rec])
    capsys.readouterr()

    first = world.drain()
    assert len(first["Records"]) == 1
    assert world.run_reconcile(first) == {"batchItemFailures": []}
    metrics = emf_metrics(capsys.readouterr().out)
    assert not is_logging(world)
    assert world.ops("cloudtrail", "StartLogging") == 0
    assert metrics[("MissedByEventBridge", RULE)] == 1
    assert metrics[("FilesScanned", "")] == 1
    assert metrics[("EventsScanned", "")] == 2
    assert [p["trailguard_rule"] for p in world.engine_fn.invocations] == [RULE]
    assert [p["origin"] for p in world.engine_fn.invocations] == ["log-file"]
    alerts = _alerts_about(world, rec["eventID"])
    assert len(alerts) == 1
    assert alerts[0][1]["action"]["status"] == "alerted"
    assert LOG_FILE_ONLY in alerts[0][1]["reason"]
    assert alerted_from_log_file(world)

    # A second delivery of the same file (SQS at-least-once, or a replayed notification): no second alert.
    again = {"Records": [{**first["Records"][0], "messageId": "redelivered"}]}
    assert world.run_reconcile(again) == {"batchItemFailures": []}
    metrics = emf_metrics(capsys.readouterr().out)
    assert len(world.engine_fn.invocations) == 1
    assert metrics[("MissedByEventBridge", RULE)] == 0
    assert metrics[("AlreadyHandled", RULE)] == 1
    assert _alerts_about(world, rec["eventID"]) == []


def test_a_delayed_eventbridge_delivery_still_acts_after_the_log_file_alerted(world: World) -> None:
    """The log path's alert-only verdict does not pre-claim the event: EventBridge's copy may still act."""
    make_trail(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")
    rec = stop_logging_record()
    world.discard()
    world.put_log_file([rec])
    assert world.run_reconcile(world.drain()) == {"batchItemFailures": []}
    assert not is_logging(world)
    out = handler.handler({"trailguard_rule": RULE, "event": envelope(rec)}, FakeContext())
    assert out["findings"][0]["status"] == "remediated"
    assert is_logging(world)
    statuses = [b["action"]["status"] for _, b in _alerts_about(world, rec["eventID"])]
    assert statuses == ["alerted", "remediated"]


def test_eventbridge_first_then_log_file_is_a_no_op(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    make_trail(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")
    rec = stop_logging_record()
    world.discard()
    out = handler.handler({"trailguard_rule": RULE, "event": envelope(rec)}, FakeContext())
    assert out["findings"][0]["status"] == "remediated"
    assert is_logging(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")
    capsys.readouterr()

    world.put_log_file([rec])
    assert world.run_reconcile(world.drain()) == {"batchItemFailures": []}
    metrics = emf_metrics(capsys.readouterr().out)
    assert world.engine_fn.invocations == []
    assert not is_logging(world)
    assert world.ops("cloudtrail", "StartLogging") == 1
    assert metrics[("MissedByEventBridge", RULE)] == 0
    assert metrics[("AlreadyHandled", RULE)] == 1
    assert len(_alerts_about(world, rec["eventID"])) == 1


def test_public_bucket_acl_in_a_log_file_is_alerted_and_left_alone(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = world.client("s3")
    s3.create_bucket(Bucket="member-data")
    s3.put_bucket_acl(Bucket="member-data", ACL="public-read")
    rec = ct_record("s3", "PutBucketAcl", {"bucketName": "member-data", "x-amz-acl": ["public-read"], "acl": [""]})
    world.discard()
    world.put_log_file([rec])
    capsys.readouterr()
    assert world.run_reconcile(world.drain()) == {"batchItemFailures": []}
    grants = s3.get_bucket_acl(Bucket="member-data")["Grants"]
    assert [g for g in grants if g["Grantee"].get("URI", "").endswith("AllUsers")] != []  # not acted on
    assert emf_metrics(capsys.readouterr().out)[("MissedByEventBridge", "s3-bucket-acl-public")] == 1
    assert alerted_from_log_file(world, "s3-bucket-acl-public")


def test_failed_read_only_and_own_records_are_not_remediated(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    make_trail(world)
    records = [
        stop_logging_record(error_code="AccessDenied"),  # failed call: nothing changed
        ct_record("cloudtrail", "DescribeTrails", {}, read_only=True),
        ct_record("s3", "GetBucketAcl", {"bucketName": "x"}, read_only=True),
        stop_logging_record(  # loop guard: the engine's own session of the member role
            principal=f"arn:aws:sts::{MEMBER}:assumed-role/trailguard-remediation/trailguard-remediation"
        ),
    ]
    world.discard()
    world.put_log_file(records)
    capsys.readouterr()
    assert world.run_reconcile(world.drain()) == {"batchItemFailures": []}
    metrics = emf_metrics(capsys.readouterr().out)
    # The failed StopLogging goes to the alert-only rule on failed critical calls; the engine's own
    # StopLogging is never acted on but is not silent either: handed off for a low-severity notice.
    assert [p["trailguard_rule"] for p in world.engine_fn.invocations] == ["failed-critical-action", RULE]
    assert metrics[("EventsScanned", "")] == 4
    assert metrics[("MissedByEventBridge", "failed-critical-action")] == 1
    assert world.ops("cloudtrail", "StartLogging") == 0
    [own] = [f for r in world.engine_fn.results for f in r["findings"] if f["rule"] == RULE]
    assert own["decision"] == "skip" and own["silenced_by"] == "loop guard"
    assert [b["severity"] for _, b in world.alerts() if b.get("rule") == RULE] == ["LOW"]


class _Handoff:
    """Pauses the first path inside its remediation (idempotency record in progress) while the other runs.

    moto's in-process backends are not thread-safe, so the two paths never run at the same time:
    thread A stops at a fixed point, the main thread runs path B to completion, then A resumes. Every
    run plays exactly the same interleaving, the one a real race can produce and the hardest for
    the engine: one path is mid-action when the other arrives.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.owner: int | None = None
        real_act = Engine._act

        def act(engine: Engine, *args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == self.owner:
                self.paused.set()
                if not self.resume.wait(DEADLOCK_GUARD_SECONDS):
                    raise AssertionError("the main thread never resumed the paused path")
            return real_act(engine, *args, **kwargs)

        monkeypatch.setattr(Engine, "_act", act)

    def run(self, first: Callable[[], None], second: Callable[[], None]) -> list[BaseException]:
        errors: list[BaseException] = []

        def body() -> None:
            self.owner = threading.get_ident()
            try:
                first()
            except BaseException as exc:  # reported to the main thread below
                errors.append(exc)

        self.paused.clear()
        self.resume.clear()
        thread = threading.Thread(target=body)
        thread.start()
        if not self.paused.wait(DEADLOCK_GUARD_SECONDS):
            thread.join()
            raise AssertionError(f"the first path never reached its remediation: {errors}")
        try:
            second()  # the first path holds the in-progress record while this one runs
        finally:
            self.resume.set()
            thread.join()
            self.owner = None
        return errors


#: Only a guard against a hung test; no assertion depends on how long anything takes.
DEADLOCK_GUARD_SECONDS = 600


@pytest.mark.parametrize("first", ["eventbridge", "logfile"])
def test_same_event_through_both_paths_while_one_is_acting_acts_once(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], first: str
) -> None:
    """Real moto DynamoDB idempotency decides; whoever arrives second is a no-op (or retried into one)."""
    make_trail(world)
    world.discard()
    world.client("cloudtrail").stop_logging(Name="org-trail")
    rec = stop_logging_record()
    world.put_log_file([rec])
    sqs_event = world.drain()
    eb_errors: list[BaseException] = []

    def eventbridge() -> None:
        try:
            handler.handler({"trailguard_rule": RULE, "event": envelope(rec)}, FakeContext())
        except Exception as exc:  # IdempotencyAlreadyInProgressError: Lambda retries it later
            eb_errors.append(exc)

    def log_path() -> None:
        assert world.run_reconcile(sqs_event) == {"batchItemFailures": []}

    capsys.readouterr()
    handoff = _Handoff(monkeypatch)
    if first == "eventbridge":
        assert handoff.run(eventbridge, log_path) == []
        # the log path saw the event in progress: delivered by EventBridge, not missed, nothing invoked
        assert world.engine_fn.invocations == []
        assert emf_metrics(capsys.readouterr().out)[("MissedByEventBridge", RULE)] == 0
        assert eb_errors == []
    else:
        # the log path (alert-only) is mid-way: it holds its own key, so EventBridge's copy acts
        assert handoff.run(log_path, eventbridge) == []
        assert [p["trailguard_rule"] for p in world.engine_fn.invocations] == [RULE]
        assert eb_errors == []
        assert world.engine_fn.failures == []
    assert world.ops("cloudtrail", "StartLogging") == 1
    # Lambda's retries of whichever lost, after the winner finished: both are no-ops.
    eb_errors.clear()
    eventbridge()
    assert eb_errors == []
    world.put_log_file([rec])
    world.run_reconcile(world.drain())
    assert is_logging(world)
    assert world.ops("cloudtrail", "StartLogging") == 1, "acted twice"
    expected = ["remediated"] if first == "eventbridge" else ["remediated", "alerted"]
    assert [b["action"]["status"] for _, b in _alerts_about(world, rec["eventID"])] == expected


def test_large_log_file_is_streamed_in_bounded_memory(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    filler = "x" * 3000
    records = [ct_record("ec2", "DescribeInstances", {"filter": filler, "n": i}, read_only=True) for i in range(3000)]
    records.append(stop_logging_record())
    make_trail(world, logging=False)
    raw_size = len(json.dumps({"Records": records}))
    world.discard()
    key = world.put_log_file(records)
    del records
    event = world.drain()
    capsys.readouterr()
    tracemalloc.start()
    try:
        assert world.run_reconcile(event) == {"batchItemFailures": []}
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    metrics = emf_metrics(capsys.readouterr().out)
    size = boto3.client("s3", region_name=REGION).head_object(Bucket=ARCHIVE, Key=key)["ContentLength"]
    print(
        f"\nlarge file: {raw_size / 1e6:.1f} MB JSON ({size / 1e6:.2f} MB gzip), 3,001 records, "
        f"peak traced memory {peak / 1e6:.1f} MB"
    )
    assert metrics[("EventsScanned", "")] == 3001
    assert metrics[("MissedByEventBridge", RULE)] == 1  # the record at the very end was reached
    assert alerted_from_log_file(world)
    assert peak < raw_size / 3, f"peak {peak} bytes for a {raw_size}-byte file: the file was read whole"
