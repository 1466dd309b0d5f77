"""A healthy estate plus member forwarding DLQs, for the drift sweep's member-queue roll-up (issue 20).

Imported by tests/reliability and tests/adversarial (never ``from conftest import``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from frozen_clock import FROZEN_AT, FrozenClock
from reliability_world import LOG_ARCHIVE, MEMBER, REGION, TABLE, FakeContext, World, emf_metrics, make_trail
from trailguard_engine import drift
from trailguard_engine.member_queues import FORWARD_DLQ_NAME
from trailguard_engine.state import LogFileLedger

BUCKET = f"trailguard-archive-{LOG_ARCHIVE}-{REGION}"
#: An account the deployment does not name: the sweep learns of it from the verifier's digest heads.
JOINED = "777788889999"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def healthy_estate(world: World, monkeypatch: pytest.MonkeyPatch, *, regions: str = REGION) -> FrozenClock:
    """Trail, archive bucket and member DLQs all healthy; the sweep configured as deployed. Returns its clock."""
    monkeypatch.setenv("TRAILGUARD_ARCHIVE_BUCKET", BUCKET)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "trailguard-drift")
    monkeypatch.setenv("TRAILGUARD_FORWARD_DLQ_NAME", FORWARD_DLQ_NAME)
    monkeypatch.setenv("TRAILGUARD_GOVERNED_REGIONS", regions)
    monkeypatch.setenv("TRAILGUARD_MEMBER_ACCOUNTS", MEMBER)
    frozen = FrozenClock()
    monkeypatch.setattr(drift, "clock", frozen)
    drift.reset()
    make_trail(world, IsMultiRegionTrail=True, EnableLogFileValidation=True)
    s3 = world.client("s3", LOG_ARCHIVE)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_public_access_block(
        Bucket=BUCKET,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    tls = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [tls]}))
    for account in (MEMBER, JOINED):
        world.client("sqs", account).create_queue(QueueName=FORWARD_DLQ_NAME)
    # The verifier saw JOINED's digests half an hour ago (it joined after the deploy).
    ledger_for(frozen).record_digest_head(JOINED, REGION, iso(FROZEN_AT - 1800))
    return frozen


def ledger_for(clock: FrozenClock) -> LogFileLedger:
    return LogFileLedger(table=TABLE, client=boto3.client("dynamodb", region_name=REGION), clock=clock)


def dlq_url(world: World, account: str) -> str:
    return str(world.client("sqs", account).get_queue_url(QueueName=FORWARD_DLQ_NAME)["QueueUrl"])


def run_sweep(
    world: World, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any] | Exception, list[tuple[str, dict[str, Any]]], Any, Any]:
    """(result or DriftError, alerts (subject, body), metrics in total and by invariant, metrics by account)."""
    capsys.readouterr()
    try:
        result: dict[str, Any] | Exception = drift.handler(
            {"source": "aws.events"}, FakeContext(function_name="trailguard-drift")
        )
    except drift.DriftError as exc:
        result = exc
    out = capsys.readouterr().out
    docs = [line for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
    by_account = "\n".join(d for d in docs if '"account"' in d)
    rest = "\n".join(d for d in docs if '"account"' not in d)
    return result, world.alerts(), emf_metrics(rest, dimension="invariant"), emf_metrics(by_account, "account")
