"""The hourly drift sweep against moto: each invariant broken -> detected and alerted; repaired when the
rule's mode is remediate; untouched in dry run. The trail and its key live in MEMBER, the archive bucket
in LOG_ARCHIVE, the sweep runs in ENGINE: every check is cross-account through the member role.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reliability_world import (
    LOG_ARCHIVE,
    MEMBER,
    REGION,
    TRAIL_ARN,
    FakeContext,
    World,
    emf_metrics,
    is_logging,
    make_trail,
)
from trailguard_engine import drift
from trailguard_engine.catalog import load_catalog

BUCKET = f"trailguard-archive-{LOG_ARCHIVE}-{REGION}"
ALIAS = f"arn:aws:kms:{REGION}:{MEMBER}:alias/trailguard-trail"
TLS_DENY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
    "Action": "s3:*",
    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
CLOUDTRAIL_WRITE = {
    "Sid": "CloudTrailWrite",
    "Effect": "Allow",
    "Principal": {"Service": "cloudtrail.amazonaws.com"},
    "Action": "s3:PutObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/AWSLogs/*",
    "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
}
PUBLIC_READ = {
    "Sid": "Public",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/*",
}


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


class Estate:
    """The governed resources, healthy, plus ways to break them."""

    def __init__(self, world: World) -> None:
        self.w = world
        kms = world.client("kms", MEMBER)
        meta = kms.create_key(Description="trail key")["KeyMetadata"]
        self.key_arn, self.key_id = meta["Arn"], meta["KeyId"]
        kms.create_alias(AliasName="alias/trailguard-trail", TargetKeyId=self.key_arn)
        make_trail(world, IsMultiRegionTrail=True, EnableLogFileValidation=True, KmsKeyId=self.key_arn)
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
        s3.put_bucket_policy(Bucket=BUCKET, Policy=_policy(TLS_DENY, CLOUDTRAIL_WRITE))
        world.set_runtime(protected_key_arns=[ALIAS])

    def key_state(self) -> str:
        return str(self.w.client("kms", MEMBER).describe_key(KeyId=self.key_id)["KeyMetadata"]["KeyState"])

    def bpa(self) -> dict[str, bool]:
        try:
            cfg = self.w.client("s3", LOG_ARCHIVE).get_public_access_block(Bucket=BUCKET)
        except Exception:
            return {}
        return dict(cfg["PublicAccessBlockConfiguration"])


@pytest.fixture
def estate(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Estate]:
    monkeypatch.setenv("TRAILGUARD_ARCHIVE_BUCKET", BUCKET)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "trailguard-drift")
    drift.reset()
    return Estate(world)


def sweep(
    world: World, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any] | Exception, list[dict[str, Any]], Any]:
    capsys.readouterr()
    try:
        result: dict[str, Any] | Exception = drift.handler(
            {"source": "aws.events"}, FakeContext(function_name="trailguard-drift")
        )
    except drift.DriftError as exc:
        result = exc
    metrics = emf_metrics(capsys.readouterr().out, dimension="invariant")
    return result, [b for _, b in world.alerts()], metrics


def test_healthy_estate_raises_no_alert(world: World, estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    result, alerts, metrics = sweep(world, capsys)
    assert isinstance(result, dict)
    assert result["drifts"] == []
    assert result["errors"] == []
    assert result["checked"] >= 8
    assert alerts == []
    assert metrics[("DriftDetected", "")] == 0


def _kms(e: Estate) -> Any:
    return e.w.client("kms", MEMBER)


def _s3(e: Estate) -> Any:
    return e.w.client("s3", LOG_ARCHIVE)


def _ct(e: Estate) -> Any:
    return e.w.client("cloudtrail", MEMBER)


REPAIRABLE: dict[str, tuple[Callable[[Estate], Any], str | None, Callable[[Estate], bool]]] = {
    # invariant: (break it, rule to switch to remediate (None: remediate by default), is it healthy?)
    "trail-logging": (lambda e: _ct(e).stop_logging(Name=TRAIL_ARN), None, lambda e: is_logging(e.w)),
    "bucket-block-public-access": (
        lambda e: _s3(e).delete_public_access_block(Bucket=BUCKET),
        None,
        lambda e: e.bpa() != {} and all(e.bpa().values()),
    ),
    "key-enabled/disabled": (
        lambda e: _kms(e).disable_key(KeyId=e.key_id),
        "kms-key-disabled",
        lambda e: e.key_state() == "Enabled",
    ),
    "key-enabled/pending-deletion": (
        lambda e: _kms(e).schedule_key_deletion(KeyId=e.key_id, PendingWindowInDays=7),
        "kms-key-scheduled-for-deletion",
        lambda e: e.key_state() == "Enabled",
    ),
}


@pytest.mark.parametrize("name", list(REPAIRABLE))
def test_repairable_drift_is_repaired_in_remediate_mode(
    world: World, estate: Estate, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    breaker, rule, healthy = REPAIRABLE[name]
    invariant = name.split("/", maxsplit=1)[0]
    breaker(estate)
    if rule:
        world.set_mode(rule, "remediate")
    assert not healthy(estate)
    result, alerts, metrics = sweep(world, capsys)
    assert isinstance(result, dict), result
    assert healthy(estate)
    assert [(a["invariant"], a["action"]["status"]) for a in alerts] == [(invariant, "remediated")]
    assert metrics[("DriftDetected", invariant)] == 1
    assert metrics[("DriftRepaired", invariant)] == 1
    # The next hour's sweep finds nothing.
    result, alerts, _ = sweep(world, capsys)
    assert isinstance(result, dict)
    assert result["drifts"] == []
    assert alerts == []


@pytest.mark.parametrize("name", list(REPAIRABLE))
def test_dry_run_detects_but_does_not_touch(
    world: World, estate: Estate, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    breaker, rule, healthy = REPAIRABLE[name]
    breaker(estate)
    if rule:
        world.set_mode(rule, "remediate")
    world.set_runtime(dry_run=True)
    calls_before = len(world.calls)
    _, alerts, metrics = sweep(world, capsys)
    assert not healthy(estate)
    assert [a["action"]["status"] for a in alerts] == ["dry_run"]
    assert "would run" in alerts[0]["action"]["detail"]
    assert metrics[("DriftDryRuns", name.split("/", maxsplit=1)[0])] == 1
    writes = [
        o
        for k, _, _, o in world.calls[calls_before:]
        if k == "member" and not o.startswith(("Get", "Describe", "List"))
    ]
    assert writes == []


def test_alert_mode_rules_are_not_repaired(world: World, estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    _kms(estate).disable_key(KeyId=estate.key_id)  # kms-key-disabled is alert by default
    _, alerts, _ = sweep(world, capsys)
    assert estate.key_state() == "Disabled"
    assert [(a["invariant"], a["action"]["status"]) for a in alerts] == [("key-enabled", "alerted")]
    assert "mode alert" in alerts[0]["action"]["detail"]


def test_exempt_tag_is_honoured(world: World, estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    _s3(estate).put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "trailguard:exempt", "Value": "true"}]})
    _s3(estate).delete_public_access_block(Bucket=BUCKET)
    _, alerts, _ = sweep(world, capsys)
    assert estate.bpa() == {}
    assert [a["action"]["status"] for a in alerts] == ["skipped"]


ALERT_ONLY: dict[str, Callable[[Estate], Any]] = {
    "trail-multi-region": lambda e: _ct(e).update_trail(Name=TRAIL_ARN, IsMultiRegionTrail=False),
    "trail-log-file-validation": lambda e: _ct(e).update_trail(Name=TRAIL_ARN, EnableLogFileValidation=False),
    "bucket-policy-present": lambda e: _s3(e).delete_bucket_policy(Bucket=BUCKET),
    "bucket-policy-tls": lambda e: _s3(e).put_bucket_policy(Bucket=BUCKET, Policy=_policy(CLOUDTRAIL_WRITE)),
    "bucket-not-public": lambda e: _s3(e).put_bucket_policy(
        Bucket=BUCKET, Policy=_policy(TLS_DENY, CLOUDTRAIL_WRITE, PUBLIC_READ)
    ),
    "trail-exists": lambda e: _ct(e).delete_trail(Name="org-trail"),
    "bucket-exists": lambda e: (_s3(e).delete_bucket_policy(Bucket=BUCKET), _s3(e).delete_bucket(Bucket=BUCKET)),
}


@pytest.mark.parametrize("invariant", list(ALERT_ONLY))
def test_other_invariants_are_detected_and_alerted(
    world: World, estate: Estate, capsys: pytest.CaptureFixture[str], invariant: str
) -> None:
    ALERT_ONLY[invariant](estate)
    result, alerts, metrics = sweep(world, capsys)
    assert isinstance(result, dict), result
    assert [(a["invariant"], a["action"]["status"]) for a in alerts] == [(invariant, "alerted")]
    assert alerts[0]["where"]["account"] == (MEMBER if invariant.startswith("trail") else LOG_ARCHIVE)
    assert metrics[("DriftDetected", invariant)] == 1


def test_a_check_that_cannot_run_is_alerted_and_fails_the_sweep(
    world: World, estate: Estate, capsys: pytest.CaptureFixture[str]
) -> None:
    _s3(estate).delete_public_access_block(Bucket=BUCKET)
    world.fault("sts", "AssumeRole", "denied")  # the first assume-role: the trail account
    result, alerts, metrics = sweep(world, capsys)
    assert isinstance(result, drift.DriftError)
    kinds = sorted((a["alert"], a.get("check") or a.get("invariant")) for a in alerts)
    assert kinds == [("drift", "bucket-block-public-access"), ("drift_check_failed", "trail")]
    assert all(estate.bpa().values())
    assert estate.bpa()
    assert metrics[("DriftCheckErrors", "trail")] == 1


def test_every_call_is_covered_by_the_member_role(
    world: World, estate: Estate, capsys: pytest.CaptureFixture[str]
) -> None:
    """Least privilege: the drift sweep's calls (reads and repairs) are allowed by the member role's policy."""
    from stacks.member import DRIFT_READ_ACTIONS

    declared = {*DRIFT_READ_ACTIONS, *(p for r in load_catalog() if r.remediation for p in r.remediation.permissions)}
    for breaker, rule, _ in REPAIRABLE.values():
        if "deletion" in str(rule):
            continue  # the key cannot be disabled and pending deletion at once
        breaker(estate)
        if rule:
            world.set_mode(rule, "remediate")
    ALERT_ONLY["bucket-not-public"](estate)
    sweep(world, capsys)
    renamed = {
        "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
        "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
    }
    used = {f"{s}:{renamed.get(o, o)}" for kind, _, s, o in world.calls if kind == "member"}
    assert {"cloudtrail:StartLogging", "s3:PutBucketPublicAccessBlock", "kms:EnableKey"} <= used
    uncovered = [a for a in used if not any(fnmatch.fnmatchcase(a.lower(), d.lower()) for d in declared)]
    assert uncovered == []
