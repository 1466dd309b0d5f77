"""Storm and loop protection under load: thousands of events for one resource through the engine.

Something keeps making one bucket public (2,000 PutBucketAcl calls by default, distinct eventIDs). The
engine runs with ``dry_run`` off against moto; whenever it really fixed the bucket, the
"attacker" makes it public again, so every event finds the risk present. The per-resource
rate limit must hold (at most ``max_actions_per_resource_per_hour`` remediations) and exactly
one "flapping" alert must go out. Retry sleeps are patched out by the world fixture, and the
engine's clock is frozen by it: the whole storm falls in one hourly window on every run (with
the wall clock, a storm that crossed HH:00 saw a second window and twice the remediations).

The property does not depend on the volume once it is far above the limit; moto answers about
6 AWS calls per event (about 20 ms), so ``TRAILGUARD_STORM_EVENTS=10000`` runs the large storm
(about 200 s) when wanted. How fast the engine is belongs to ``make bench``, not here.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter

import pytest
from frozen_clock import FrozenClock
from reliability_world import ENGINE, MEMBER, FakeContext, World, ct_record, envelope
from trailguard_engine import handler

pytestmark = pytest.mark.slow

EVENTS = int(os.environ.get("TRAILGUARD_STORM_EVENTS", "2000"))
LIMIT = 3
RULE = "s3-bucket-acl-public"


def test_a_storm_of_events_on_one_bucket_is_rate_limited(
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
    capsys.readouterr()

    puts = world.ops("s3", "PutBucketAcl")
    with capsys.disabled():
        print(
            f"\nstorm: {EVENTS} events on one bucket; "
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


def test_a_storm_across_the_hour_gets_a_fresh_window_only_when_the_clock_says_so(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window boundary is a property of the injected clock: crossing it is a test step, not luck."""
    clock = FrozenClock()  # 10:30:00
    monkeypatch.setattr(handler, "clock", clock)
    s3 = world.client("s3")
    s3.create_bucket(Bucket="storm-bucket")
    s3.put_bucket_acl(Bucket="storm-bucket", ACL="public-read")
    world.set_runtime(max_actions_per_resource_per_hour=LIMIT, security_hub_findings=False)
    statuses: list[str] = []
    for i in range(20):
        if i == 10:
            clock.advance(30 * 60)  # 11:00:00, the next window
        rec = ct_record(
            "s3",
            "PutBucketAcl",
            {"bucketName": "storm-bucket", "x-amz-acl": ["public-read"], "acl": [""]},
            event_id=str(uuid.UUID(int=10_000 + i)),
        )
        out = handler.handler({"trailguard_rule": RULE, "event": envelope(rec)}, FakeContext())
        statuses.append(out["findings"][0]["status"])
        if statuses[-1] == "remediated":
            s3.put_bucket_acl(Bucket="storm-bucket", ACL="public-read")
    capsys.readouterr()
    assert statuses == (["remediated"] * LIMIT + ["skipped"] * (10 - LIMIT)) * 2
    flapping = [b for _, b in world.alerts() if b.get("alert") == "flapping"]
    assert len(flapping) == 2  # one per window
