"""Bad input on the reconciliation path: counted, reported, never a crash loop, never a wrong action."""

from __future__ import annotations

import gzip
import json
from urllib.parse import unquote_plus

import boto3
import pytest
from reliability_world import (
    ARCHIVE,
    REGION,
    FakeContext,
    World,
    alerted_from_log_file,
    ct_record,
    emf_metrics,
    is_logging,
    log_file,
    log_key,
    make_trail,
    notification,
    sqs_record,
    stop_logging_record,
)
from trailguard_engine import reconcile

RULE = "cloudtrail-stop-logging"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json {", "not JSON"),
        ("[1, 2]", "JSON list"),
        ('{"Records": "x"}', "no Records list"),
        ('{"Records": [{"eventSource": "aws:s3"}]}', "not an S3 object event"),
        ("", "not JSON"),
    ],
)
def test_malformed_bodies_fail_only_their_own_message(
    world: World, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, body: str, reason: str
) -> None:
    make_trail(world, logging=False)
    world.discard()
    good_key = world.put_log_file([stop_logging_record()])
    world.discard()
    bad = sqs_record(body, "bad")
    good = sqs_record(notification(ARCHIVE, good_key), "good")
    capsys.readouterr()
    result = reconcile.handler({"Records": [bad, good]}, FakeContext())
    out = capsys.readouterr().out
    assert result == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert emf_metrics(out)[("BadMessages", "")] == 1
    assert reason in caplog.text  # the one-line reason is logged
    assert alerted_from_log_file(world)  # the good message in the same batch was processed


def test_test_events_other_buckets_and_non_log_keys_are_consumed_without_reading(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = [
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/10/01/111122223333_CloudTrail-Digest_x.json.gz",
        "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/10/01/x.json.gz",
        "AWSLogs/111122223333/Config/us-east-1/2026/10/01/x.json.gz",
        "other/file.json.gz",
    ]
    records = [sqs_record(notification(ARCHIVE, k), f"m{i}") for i, k in enumerate(keys)]
    records.append(sqs_record(notification("someone-elses-bucket", log_key()), "foreign"))
    records.append(sqs_record(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": ARCHIVE}), "t"))
    capsys.readouterr()
    assert reconcile.handler({"Records": records}, FakeContext()) == {"batchItemFailures": []}
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics[("FilesSkipped", "")] == 4  # Insights, Config, outside AWSLogs/, another bucket
    assert metrics[("DigestsForwarded", "")] == 1  # the digest goes to the verifier's queue, unread
    assert metrics[("TestEvents", "")] == 1
    assert world.ops("s3", "GetObject", kind="engine") == 0


def test_missing_object_is_counted_and_consumed(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    event = {"Records": [sqs_record(notification(ARCHIVE, log_key()), "gone")]}
    assert reconcile.handler(event, FakeContext()) == {"batchItemFailures": []}
    assert emf_metrics(capsys.readouterr().out)[("FilesMissing", "")] == 1


def test_url_encoded_keys_are_decoded(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    make_trail(world, logging=False)
    world.discard()
    key = log_key(suffix="a b+c")
    world.put_log_file([stop_logging_record()], key=key)
    world.discard()
    assert reconcile.handler({"Records": [sqs_record(notification(ARCHIVE, key))]}, FakeContext()) == {
        "batchItemFailures": []
    }
    assert alerted_from_log_file(world)


def test_truncated_file_processes_what_it_can_alerts_once_and_lands_in_the_dlq(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real SQS redrive in moto: the message is retried maxReceiveCount times, then dead-lettered."""
    make_trail(world, logging=False)
    world.discard()
    rec = stop_logging_record()
    data = log_file([rec, ct_record("ec2", "DescribeInstances", {"x": "y" * 5000}, read_only=True)])
    key = world.put_log_file([], body=data[: len(data) - 40])  # gzip cut inside the second record
    capsys.readouterr()
    receives = 0
    while True:
        event = world.drain()
        if not event["Records"]:
            break
        receives += 1
        result = world.run_reconcile(event)
        assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [event["Records"][0]["messageId"]]
        assert receives < 10, "crash loop: the message keeps coming back"
    metrics = emf_metrics(capsys.readouterr().out)
    assert receives == 5
    assert metrics[("CorruptFiles", "")] == 5
    assert metrics[("MissedByEventBridge", RULE)] == 1  # the record before the damage was handled, once
    assert metrics[("AlreadyHandled", RULE)] == 4
    assert alerted_from_log_file(world) and not is_logging(world)  # log-file findings are alert-only
    assert world.ops("cloudtrail", "StartLogging") == 0
    corrupt = [b for _, b in world.alerts() if b.get("alert") == "corrupt_log_file"]
    assert len(corrupt) == 1
    assert corrupt[0]["key"] == key
    assert corrupt[0]["records_processed"] == 1
    dlq = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=world.reconcile_dlq)["Messages"]
    assert unquote_plus(json.loads(dlq[0]["Body"])["Records"][0]["s3"]["object"]["key"]) == key


@pytest.mark.parametrize(
    "body",
    [
        # mtime=0: gzip headers otherwise carry the current time, and the bytes would differ between
        # xdist workers' collections ("Different tests were collected"); the ids name the case anyway.
        b"this is not gzip at all",
        gzip.compress(b'{"NotRecords": []}', mtime=0),
        gzip.compress(b'{"Records": [1, 2]}', mtime=0),
        gzip.compress(b"\xff\xfe not utf-8", mtime=0),
    ],
    ids=["not-gzip", "no-records-key", "records-not-objects", "not-utf8"],
)
def test_corrupt_files_are_counted_and_reported(world: World, capsys: pytest.CaptureFixture[str], body: bytes) -> None:
    world.discard()
    key = world.put_log_file([], body=body)
    world.discard()
    capsys.readouterr()
    result = reconcile.handler({"Records": [sqs_record(notification(ARCHIVE, key), "c")]}, FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "c"}]}
    assert emf_metrics(capsys.readouterr().out)[("CorruptFiles", "")] == 1
    assert [b["alert"] for _, b in world.alerts()] == ["corrupt_log_file"]
    assert world.engine_fn.invocations == []


def test_malformed_records_inside_a_valid_file_are_counted_not_fatal(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    make_trail(world, logging=False)
    world.discard()
    junk = [{"eventName": 5}, {"no": "event"}, {**stop_logging_record(), "userIdentity": "root"}]
    world.put_log_file([*junk, stop_logging_record()])
    capsys.readouterr()
    assert world.run_reconcile(world.drain()) == {"batchItemFailures": []}
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics[("RejectedRecords", "")] == 3
    assert metrics[("EventsScanned", "")] == 4
    assert alerted_from_log_file(world)
