"""Storm and loop protection under load: thousands of events for one resource through the engine.

Something keeps making one bucket public (2,000 PutBucketAcl calls by default, distinct eventIDs). The
engine runs with ``dry_run`` off against moto; whenever it really fixed the bucket, the
"attacker" makes it public again, so every event finds the risk present. The per-resource
rate limit must hold (at most ``max_actions_per_resource_per_hour`` remediations, and never a third
after the remediation was reverted twice) and exactly one "flapping" alert must go out. Retry sleeps are patched out by the world fixture, and the
engine's clock is frozen by it: the whole storm falls in one hour on every run.

The property does not depend on the volume once it is far above the limit; the default 2,000 events take
about a minute against moto, ``TRAILGUARD_STORM_EVENTS=10000`` runs the large storm when wanted. How fast
the engine is belongs to ``make bench``, not here.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from frozen_clock import FrozenClock
from reliability_world import ENGINE, MEMBER, FakeContext, World, ct_record, envelope
from trailguard_engine import handler
from trailguard_engine.engine import REVERTS_BEFORE_STOP

pytestmark = pytest.mark.slow

EVENTS = int(os.environ.get("TRAILGUARD_STORM_EVENTS", "2000"))
LIMIT = 3
#: A remediation reverted twice within the hour stops, whatever the configured limit allows.
ACTIONS = min(LIMIT, REVERTS_BEFORE_STOP)
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
    assert statuses["remediated"] == ACTIONS == puts == reverts
    assert statuses["skipped"] == EVENTS - ACTIONS
    assert len(flapping) == 1
    assert flapping[0]["resource"] == f"{MEMBER}/us-east-1/bucket:storm-bucket"
    assert flapping[0]["limit"] == ACTIONS
    assert published["flapping"] == 1
    # storm protection also protects the humans: rate-limited events send no message of their own
    assert sum(published.values()) == ACTIONS + 1, dict(published)
    assert sns.get_topic_attributes(TopicArn=world.topic_arn)["Attributes"]  # the topic the engine published to


def test_a_storm_across_the_hour_gets_a_fresh_budget_only_an_hour_after_its_actions(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window slides with the injected clock: the next hour of the day brings no fresh budget."""
    clock = FrozenClock()  # 12:30:00
    monkeypatch.setattr(handler, "clock", clock)
    s3 = world.client("s3")
    s3.create_bucket(Bucket="storm-bucket")
    s3.put_bucket_acl(Bucket="storm-bucket", ACL="public-read")
    world.set_runtime(max_actions_per_resource_per_hour=LIMIT, security_hub_findings=False)
    statuses: list[str] = []
    steps = {10: 30 * 60, 15: 30 * 60 + 1}  # 13:00:00 (a new hour of the day), then 13:30:01
    for i in range(25):
        clock.advance(steps.get(i, 0))
        rec = ct_record(
            "s3",
            "PutBucketAcl",
            {"bucketName": "storm-bucket", "x-amz-acl": ["public-read"], "acl": [""]},
            event_id=str(uuid.UUID(int=10_000 + i)),
        )
        rec["eventTime"] = datetime.fromtimestamp(clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        out = handler.handler({"trailguard_rule": RULE, "event": envelope(rec)}, FakeContext())
        statuses.append(out["findings"][0]["status"])
        if statuses[-1] == "remediated":
            s3.put_bucket_acl(Bucket="storm-bucket", ACL="public-read")
    capsys.readouterr()
    assert statuses[:10] == ["remediated"] * ACTIONS + ["skipped"] * (10 - ACTIONS)
    assert statuses[10:15] == ["skipped"] * 5  # 13:00: a fixed hourly window would have acted again here
    assert statuses[15:] == ["remediated"] * ACTIONS + ["skipped"] * (10 - ACTIONS)  # 3601 s later
    flapping = [b for _, b in world.alerts() if b.get("alert") == "flapping"]
    assert len(flapping) == 2  # one per resource and hour of the day
