"""Storm and loop protection under load: 10,000 events for one resource through the engine.

Something keeps making one bucket public (10,000 PutBucketAcl calls, distinct eventIDs). The
engine runs with ``dry_run`` off against moto; whenever it really fixed the bucket, the
"attacker" makes it public again, so every event finds the risk present. The per-resource
rate limit must hold (at most ``max_actions_per_resource_per_hour`` remediations) and exactly
one "flapping" alert must go out. Retry sleeps are patched out by the world fixture.

About 200 s for 10,000 events on a loaded 2-core machine (moto answers ~6 AWS calls per
event); ``TRAILGUARD_STORM_EVENTS=1000`` runs a shorter storm while developing.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter

import pytest
from reliability_world import ENGINE, MEMBER, FakeContext, World, ct_record, envelope
from trailguard_engine import handler

pytestmark = pytest.mark.slow

EVENTS = int(os.environ.get("TRAILGUARD_STORM_EVENTS", "10000"))
LIMIT = 3
RULE = "s3-bucket-acl-public"


def test_ten_thousand_events_on_one_bucket_are_rate_limited(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = world.client("s3")
    s3.create_bucket(Bucket="storm-bucket")
    s3.put_bucket_acl(Bucket="storm-bucket", ACL="public-read")
    world.set_runtime(max_actions_per_resource_per_hour=LIMIT, security_hub_findings=False)
    # moto re-checks every queued message on each SNS delivery (quadratic over 10,000 alerts):
    # alerts are counted at the notifier, and still really published to the moto topic.
    sns = world.client("sns", ENGINE)
    for sub in sns.list_subscriptions_by_topic(TopicArn=world.topic_arn)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
    published: Counter[str] = Counter()
    flapping: list[dict] = []
    engine = handler.get_engine(FakeContext())
    real_publish = engine.notifier.publish

    def publish(subject: str, body: dict, *, attributes: dict) -> str:
        published[attributes.get("kind", "")] += 1
        if body.get("alert") == "flapping":
            flapping.append(body)
        return real_publish(subject, body, attributes=attributes)

    monkeypatch.setattr(engine.notifier, "publish", publish)
    statuses: Counter[str] = Counter()
    reverts = 0
    started = time.perf_counter()
    for i in range(EVENTS):
        rec = ct_record(
            "s3",
            "PutBucketAcl",
            {"bucketName": "storm-bucket", "x-amz-acl": ["public-read"], "acl": [""]},
            event_id=str(uuid.UUID(int=i)),
        )
        out = handler.handler({"trailguard_rule": RULE, "event": envelope(rec)}, FakeContext())
        status = out["findings"][0]["status"]
        statuses[status] += 1
        if status == "remediated":  # the flapping: it is made public again at once
            s3.put_bucket_acl(Bucket="storm-bucket", ACL="public-read")
            reverts += 1
        if i % 500 == 0:
            capsys.readouterr()  # keep the captured log output small
    elapsed = time.perf_counter() - started
    capsys.readouterr()

    puts = world.ops("s3", "PutBucketAcl")
    with capsys.disabled():
        print(
            f"\nstorm: {EVENTS} events on one bucket in {elapsed:.1f} s ({EVENTS / elapsed:.0f} events/s); "
            f"statuses {dict(statuses)}; engine PutBucketAcl calls {puts}; flapping alerts {len(flapping)}; "
            f"SNS messages by kind {dict(published)}"
        )
    assert statuses["remediated"] == LIMIT == puts == reverts
    assert statuses["skipped"] == EVENTS - LIMIT
    assert len(flapping) == 1
    assert flapping[0]["resource"] == f"{MEMBER}/us-east-1/bucket:storm-bucket"
    assert flapping[0]["limit"] == LIMIT
    assert published["flapping"] == 1
    # storm protection also protects the humans: rate-limited events send no message of their own
    assert sum(published.values()) == LIMIT + 1, dict(published)
    assert sns.get_topic_attributes(TopicArn=world.topic_arn)["Attributes"]  # the topic the engine published to
