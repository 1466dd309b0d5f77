"""Finding 2: nobody but CloudTrail can plant log files in the archive bucket.

Attacker: an administrator of the log-archive account (AdministratorAccess in the account that owns
the bucket, so IAM's same-account rule needs no bucket-policy Allow), or a member-account admin.
Before the fix nothing stopped the log-archive admin from writing a forged log file or digest
under ``AWSLogs/``: the reconcile function and the Athena tables read that prefix as CloudTrail's
word. Now a bucket-policy Deny refuses ``s3:PutObject`` (and replication into the bucket) to every
principal that is not the CloudTrail service, and CloudTrail's own delivery for this trail (logs and
digests, under both the account and the organization prefix) still passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from infra_templates import LOG_ARCHIVE, MANAGEMENT, MEMBER, ORG_ID, OUTSIDER, STANDALONE, Resolver, resources
from policy_eval import ADMINISTRATOR_ACCESS, Caller, Decision, Request, evaluate

STACK = "TrailguardLogArchive"
LOG_KEY = "CloudTrail/us-east-1/2026/10/01/{acct}_CloudTrail_us-east-1_20261001T1205Z_Ab12Cd34Ef56Gh78.json.gz"
DIGEST_KEY = "CloudTrail-Digest/us-east-1/2026/10/01/{acct}_CloudTrail-Digest_us-east-1_org-trail_us-east-1_20261001T1205Z.json.gz"
TLS = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}


@dataclass(frozen=True)
class Archive:
    account: str
    bucket: str
    policy: dict[str, Any]
    trail_arn: str
    prefixes: tuple[str, ...]  # AWSLogs/<x>/ prefixes this trail writes under
    org_id: str | None

    def object_arn(self, key: str) -> str:
        return f"arn:aws:s3:::{self.bucket}/{key}"


def _archive(synth: Any, account: str, *, org: bool) -> Archive:
    tpl = synth.templates[STACK]
    resolver = Resolver(tpl, account)
    buckets = resources(tpl, "AWS::S3::Bucket")
    (lid,) = [
        k
        for k, v in buckets.items()
        if v["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        == "aws:kms"
    ]
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in resources(tpl, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": lid}
    ]
    owner = MANAGEMENT if org else account
    name = "org-trail" if org else "trailguard"
    return Archive(
        account=account,
        bucket=resolver.resolve({"Ref": lid}),
        policy=resolver.resolve(policy),
        trail_arn=f"arn:aws:cloudtrail:us-east-1:{owner}:trail/{name}",
        prefixes=(f"AWSLogs/{owner}/", *([f"AWSLogs/{ORG_ID}/"] if org else [])),
        org_id=ORG_ID if org else None,
    )


@pytest.fixture(params=["organization", "standalone"])
def archive(request: pytest.FixtureRequest) -> Archive:
    synth = request.getfixturevalue(request.param)
    org = request.param == "organization"
    return _archive(synth, LOG_ARCHIVE if org else STANDALONE, org=org)


def _keys(archive: Archive) -> list[str]:
    """A forged log file and a forged digest, under every prefix the trail writes to."""
    out = []
    for prefix in archive.prefixes:
        if prefix == f"AWSLogs/{ORG_ID}/":  # organization trail: AWSLogs/<org id>/<member account>/...
            acct, base = MEMBER, f"{prefix}{MEMBER}/"
        else:  # AWSLogs/<trail owner>/...
            acct, base = prefix.split("/")[1], prefix
        out += [base + LOG_KEY.format(acct=acct), base + DIGEST_KEY.format(acct=acct)]
    return out


def _put(
    archive: Archive,
    caller: Caller,
    key: str,
    *,
    identity: list[dict[str, Any]],
    action: str = "s3:PutObject",
    **ctx: str,
) -> Decision:
    return evaluate(
        Request(caller, action, archive.object_arn(key), {**TLS, **ctx}),
        resource_account=archive.account,
        resource_policy=archive.policy,
        identity_policies=identity,
    )


# --------------------------------------------------------------------------- #
# the attacks
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("action", ["s3:PutObject", "s3:ReplicateObject"])
def test_log_archive_admin_cannot_plant_log_files_or_digests(archive: Archive, action: str) -> None:
    admin = Caller.role(archive.account, "Admin", org_id=archive.org_id)
    for key in _keys(archive):
        assert _put(archive, admin, key, identity=[ADMINISTRATOR_ACCESS], action=action) is Decision.EXPLICIT_DENY, key


def test_no_planting_outside_awslogs_either(archive: Archive) -> None:
    admin = Caller.role(archive.account, "Admin", org_id=archive.org_id)
    key = "AWSLogs-copy/AWSLogs/evil.json.gz"
    assert _put(archive, admin, key, identity=[ADMINISTRATOR_ACCESS]) is Decision.EXPLICIT_DENY


def test_break_glass_and_lookalike_roles_cannot_plant_either(organization: Any) -> None:
    archive = _archive(organization, LOG_ARCHIVE, org=True)
    for caller in (
        Caller.role(LOG_ARCHIVE, "security-break-glass", org_id=ORG_ID),  # the configured break-glass role
        Caller.role(LOG_ARCHIVE, "AWSServiceRoleForCloudTrail", org_id=ORG_ID),
    ):
        for key in _keys(archive):
            assert _put(archive, caller, key, identity=[ADMINISTRATOR_ACCESS]) is Decision.EXPLICIT_DENY, (
                caller.arn,
                key,
            )


def test_member_admin_cannot_plant_log_files(organization: Any) -> None:
    archive = _archive(organization, LOG_ARCHIVE, org=True)
    admin = Caller.role(MEMBER, "Admin", org_id=ORG_ID)
    for key in _keys(archive):
        assert _put(archive, admin, key, identity=[ADMINISTRATOR_ACCESS]) is not Decision.ALLOW, key


def test_another_trail_cannot_deliver_into_the_archive(archive: Archive) -> None:
    """A trail the attacker owns (their own account, or a second trail beside ours) pointed at our bucket."""
    cloudtrail = Caller.aws_service("cloudtrail.amazonaws.com")
    for trail_arn, source_account in (
        (f"arn:aws:cloudtrail:us-east-1:{MEMBER}:trail/evil", MEMBER),
        (f"arn:aws:cloudtrail:us-east-1:{archive.account}:trail/second", archive.account),
        (f"arn:aws:cloudtrail:us-east-1:{OUTSIDER}:trail/org-trail", OUTSIDER),
    ):
        for key in _keys(archive):
            decision = _put(
                archive,
                cloudtrail,
                key,
                identity=[],
                **{
                    "aws:SourceArn": trail_arn,
                    "aws:SourceAccount": source_account,
                    "s3:x-amz-acl": "bucket-owner-full-control",
                },
            )
            assert decision is not Decision.ALLOW, (trail_arn, key)


def test_other_aws_services_cannot_write_under_awslogs(archive: Archive) -> None:
    for service in ("delivery.logs.amazonaws.com", "config.amazonaws.com", "s3.amazonaws.com"):
        caller = Caller.aws_service(service)
        for key in _keys(archive):
            assert (
                _put(archive, caller, key, identity=[], **{"aws:SourceAccount": archive.account}) is not Decision.ALLOW
            )


# --------------------------------------------------------------------------- #
# CloudTrail's own delivery still works
# --------------------------------------------------------------------------- #
def test_cloudtrail_still_delivers_logs_and_digests_for_this_trail(archive: Archive) -> None:
    cloudtrail = Caller.aws_service("cloudtrail.amazonaws.com")
    owner = archive.trail_arn.split(":")[4]
    for key in _keys(archive):
        decision = _put(
            archive,
            cloudtrail,
            key,
            identity=[],
            **{
                "aws:SourceArn": archive.trail_arn,
                "aws:SourceAccount": owner,
                "s3:x-amz-acl": "bucket-owner-full-control",
            },
        )
        assert decision is Decision.ALLOW, key
    acl = evaluate(
        Request(
            cloudtrail, "s3:GetBucketAcl", f"arn:aws:s3:::{archive.bucket}", {**TLS, "aws:SourceArn": archive.trail_arn}
        ),
        resource_account=archive.account,
        resource_policy=archive.policy,
    )
    assert acl is Decision.ALLOW
