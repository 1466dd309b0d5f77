"""Log archive: bucket policy, lifecycle, Object Lock, key policies, retention and stack placement."""

from __future__ import annotations

import json
from typing import Any

import pytest
from foundation_helpers import (
    LOG_ARCHIVE,
    TRAIL,
    Case,
    archive_bucket,
    as_list,
    bucket_policy,
    flat,
    key_by_alias,
    statements,
    the_trail,
)

from stacks import names


def _trail_arn(case: Case) -> str:
    name = "org-trail" if case.org else "trailguard"
    return f"arn:${{AWS::Partition}}:cloudtrail:us-east-1:{case.trail_owner}:trail/{name}"


def _archive_policy(case: Case) -> dict[str, dict[str, Any]]:
    lid, _ = archive_bucket(case.s)
    return statements(bucket_policy(case.s, lid))


def test_bucket_policy_denies_requests_without_tls(case: Case) -> None:
    tls = [
        s
        for s in _archive_policy(case).values()
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(tls) == 1
    assert tls[0]["Action"] == "s3:*"
    assert tls[0]["Principal"] == {"AWS": "*"}


def test_cloudtrail_may_only_put_under_awslogs_prefixes_for_this_trail(case: Case) -> None:
    write = _archive_policy(case)["AWSCloudTrailWrite"]
    assert write["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert write["Action"] == "s3:PutObject"
    resources = sorted(flat(r).split("/", 1)[1] for r in as_list(write["Resource"]))
    expected = [f"AWSLogs/{case.trail_owner}/*"] + ([f"AWSLogs/{case.org_id}/*"] if case.org_id else [])
    assert resources == sorted(expected)
    cond = write["Condition"]["StringEquals"]
    assert cond["s3:x-amz-acl"] == "bucket-owner-full-control"
    assert flat(cond["aws:SourceArn"]) == _trail_arn(case)
    acl = _archive_policy(case)["AWSCloudTrailAclCheck"]
    assert flat(acl["Condition"]["StringEquals"]["aws:SourceArn"]) == _trail_arn(case)


def test_principals_outside_the_organization_are_denied_except_aws_services(case: Case) -> None:
    sid = "DenyPrincipalsOutsideOrganization" if case.org else "DenyPrincipalsOutsideAccount"
    deny = _archive_policy(case)[sid]
    assert deny["Effect"] == "Deny"
    assert deny["Action"] == "s3:*"
    assert deny["Condition"]["BoolIfExists"] == {"aws:PrincipalIsAWSService": "false"}
    if case.org:
        assert deny["Condition"]["StringNotEquals"] == {"aws:PrincipalOrgID": case.org_id}
    else:
        assert flat(deny["Condition"]["StringNotEquals"]["aws:PrincipalAccount"]) == "${AWS::AccountId}"


def test_bucket_deletion_is_denied_to_everyone(case: Case) -> None:
    deny = _archive_policy(case)["DenyBucketDeletion"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == {"AWS": "*"}
    assert deny["Action"] == "s3:DeleteBucket"
    assert "Condition" not in deny


def test_log_object_deletion_is_denied_except_break_glass(case: Case) -> None:
    deny = _archive_policy(case)["DenyLogDeletionExceptBreakGlass"]
    assert deny["Effect"] == "Deny"
    assert sorted(deny["Action"]) == ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    if case.break_glass:  # exact ARNs, never a pattern
        assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": case.break_glass}}
    else:  # no break-glass role configured: nobody may delete log objects
        assert "Condition" not in deny
    assert flat(deny["Resource"]).endswith("/*")


def test_only_cloudtrail_may_write_objects(case: Case) -> None:
    deny = _archive_policy(case)["DenyObjectWritesExceptCloudTrail"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == {"AWS": "*"}
    assert sorted(deny["Action"]) == ["s3:PutObject", "s3:ReplicateObject"]
    assert flat(deny["Resource"]).endswith("/*")
    assert deny["Condition"] == {"StringNotEqualsIfExists": {"aws:PrincipalServiceName": "cloudtrail.amazonaws.com"}}


def test_reader_roles_may_read_only_inside_the_organization(organization: Any) -> None:
    lid, _ = archive_bucket(organization)
    read = statements(bucket_policy(organization, lid))["AllowReaderRolesReadLogs"]
    assert sorted(read["Action"]) == ["s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"]
    assert read["Condition"] == {
        "ArnLike": {"aws:PrincipalArn": ["arn:aws:iam::333333333333:role/siem-reader"]},
        "StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"},
    }


def test_no_reader_statement_without_reader_roles(standalone: Any) -> None:
    lid, _ = archive_bucket(standalone)
    assert "AllowReaderRolesReadLogs" not in statements(bucket_policy(standalone, lid))


def test_archive_bucket_hardening_and_lifecycle_from_config(case: Case) -> None:
    _, bucket = archive_bucket(case.s)
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    tier = rules["tier-then-expire-logs"]
    assert tier["ExpirationInDays"] == 2557
    assert tier["Transitions"] == [
        {"StorageClass": "STANDARD_IA", "TransitionInDays": 90},
        {"StorageClass": "GLACIER", "TransitionInDays": 365},
    ]
    assert rules["remove-expired-delete-markers"]["ExpiredObjectDeleteMarker"] is True


def test_object_lock_when_enabled(organization: Any) -> None:
    _, bucket = archive_bucket(organization)
    assert bucket["ObjectLockEnabled"] is True
    assert bucket["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 365}},
    }


def test_object_lock_off_by_default(standalone: Any) -> None:
    _, bucket = archive_bucket(standalone)
    assert "ObjectLockConfiguration" not in bucket
    assert "ObjectLockEnabled" not in bucket


def test_everything_that_holds_logs_or_keys_is_retained(case: Case) -> None:
    kinds = {"AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Logs::LogGroup", "AWS::CloudTrail::Trail"}
    for stack in (LOG_ARCHIVE, TRAIL):
        for lid, res in case.s.templates[stack]["Resources"].items():
            if res["Type"] in kinds:
                assert res.get("DeletionPolicy") == "Retain", f"{stack}/{lid}"
                assert res.get("UpdateReplacePolicy") == "Retain", f"{stack}/{lid}"


def test_what_the_retained_trail_needs_to_keep_delivering_is_retained_too(case: Case) -> None:
    """After `cdk destroy` the retained trail keeps writing into the retained archive and log group: the bucket
    policies (CloudTrail's write grant, log delivery, the TLS-only and organization-only denies) and the trail's
    CloudWatch Logs role and its policy must survive with them (docs/deploy.md says so)."""
    archive = case.s.templates[LOG_ARCHIVE]["Resources"]
    policies = {lid: r for lid, r in archive.items() if r["Type"] == "AWS::S3::BucketPolicy"}
    assert len(policies) == 2  # the archive's and the access-log bucket's
    trail = case.s.templates[TRAIL]["Resources"]
    role_ids = [
        lid
        for lid, r in trail.items()
        if r["Type"] == "AWS::IAM::Role"
        and "cloudtrail.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert len(role_ids) == 1
    delivery = [
        lid
        for lid, r in trail.items()
        if r["Type"] == "AWS::IAM::ManagedPolicy" and {"Ref": role_ids[0]} in r["Properties"].get("Roles", [])
    ]
    assert len(delivery) == 1
    for lid, res in [*policies.items(), *((i, trail[i]) for i in role_ids + delivery)]:
        assert res.get("DeletionPolicy") == "Retain", lid
        assert res.get("UpdateReplacePolicy") == "Retain", lid


# --------------------------------------------------------------------------- #
# Key policies
# --------------------------------------------------------------------------- #


def _key_statements(case: Case, stack: str, alias: str) -> dict[str, dict[str, Any]]:
    return statements(key_by_alias(case.s, stack, alias)["KeyPolicy"])


def test_trail_key_lets_cloudtrail_encrypt_only_for_this_trail(case: Case) -> None:
    st = _key_statements(case, LOG_ARCHIVE, names.TRAIL_KEY_ALIAS)
    enc = st["AllowCloudTrailEncryptLogs"]
    assert enc["Action"] == "kms:GenerateDataKey*"
    assert flat(enc["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"]) == (
        f"arn:${{AWS::Partition}}:cloudtrail:*:{case.trail_owner}:trail/*"
    )
    assert flat(enc["Condition"]["StringEquals"]["aws:SourceArn"]) == _trail_arn(case)
    for sid in ("AllowCloudTrailDescribeKey", "AllowCloudTrailBucketKeyDecrypt"):
        assert flat(st[sid]["Condition"]["StringEquals"]["aws:SourceArn"]) == _trail_arn(case)


def test_trail_key_decrypt_only_for_log_archive_account_and_reader_roles(case: Case) -> None:
    st = _key_statements(case, LOG_ARCHIVE, names.TRAIL_KEY_ALIAS)
    decrypters = {
        sid: s
        for sid, s in st.items()
        if "kms:Decrypt" in as_list(s["Action"]) and s["Principal"] != {"Service": "cloudtrail.amazonaws.com"}
    }
    org_only = {"AllowReaderRolesDecryptLogs", "AllowTrailguardReadersDecryptViaS3"}  # see test_cross_account_readers
    expected = {"AllowLogArchiveAccountDecryptLogs"} | (org_only if case.org else set())
    assert set(decrypters) == expected
    own = decrypters["AllowLogArchiveAccountDecryptLogs"]
    assert flat(own["Principal"]["AWS"]) == f"arn:aws:iam::{case.archive_account}:root"
    if case.org:
        readers = decrypters["AllowReaderRolesDecryptLogs"]
        assert readers["Condition"]["ArnLike"] == {"aws:PrincipalArn": ["arn:aws:iam::333333333333:role/siem-reader"]}
        assert readers["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": case.org_id}


@pytest.mark.parametrize(
    ("stack", "alias"),
    [
        (LOG_ARCHIVE, names.TRAIL_KEY_ALIAS),
        (TRAIL, names.LOGS_KEY_ALIAS),
        (TRAIL, names.NOTIFICATIONS_KEY_ALIAS),
    ],
)
def test_no_kms_star_except_the_account_root(case: Case, stack: str, alias: str) -> None:
    for s in key_by_alias(case.s, stack, alias)["KeyPolicy"]["Statement"]:
        if "kms:*" in as_list(s["Action"]):
            assert flat(s["Principal"]["AWS"]).endswith(":root")
            assert s["Effect"] == "Allow"
        else:
            assert not any(a.endswith(":*") for a in as_list(s["Action"]))


def test_logs_key_is_scoped_to_the_trail_log_group(case: Case) -> None:
    st = _key_statements(case, TRAIL, names.LOGS_KEY_ALIAS)
    logs = st["AllowCloudWatchLogsForTrailLogGroup"]
    assert logs["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    group = "org-trail" if case.org else "trailguard"
    acct = "333333333333" if case.org else "${AWS::AccountId}"
    assert flat(logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]) == (
        f"arn:aws:logs:us-east-1:{acct}:log-group:/trailguard/cloudtrail/{group}"
    )


def test_keys_carry_the_protected_key_tag(case: Case) -> None:
    for stack in (LOG_ARCHIVE, TRAIL):
        for res in case.s.resources(stack, "AWS::KMS::Key").values():
            tags = {t["Key"]: t["Value"] for t in res["Properties"]["Tags"]}
            assert tags["trailguard:protected"] == "true"


# --------------------------------------------------------------------------- #
# Trail stack extras and placement
# --------------------------------------------------------------------------- #


def test_cis_alarm_topic_is_encrypted_and_subscribes_the_configured_emails(case: Case) -> None:
    topics = {r["Properties"]["TopicName"]: r for r in case.s.resources(TRAIL, "AWS::SNS::Topic").values()}
    topic = topics[names.CIS_ALARM_TOPIC_NAME]
    assert "KmsMasterKeyId" in topic["Properties"]
    emails = sorted(r["Properties"]["Endpoint"] for r in case.s.resources(TRAIL, "AWS::SNS::Subscription").values())
    assert emails == (["security-alerts@example.com", "soc@example.com"] if case.org else [])


def test_delivery_notifications_topic_when_enabled(organization: Any) -> None:
    trail = the_trail(organization)
    topic_lid = trail["SnsTopicName"]["Ref"]
    topic = organization.templates[TRAIL]["Resources"][topic_lid]
    assert topic["Properties"]["TopicName"] == names.TRAIL_DELIVERY_TOPIC_NAME
    assert "KmsMasterKeyId" in topic["Properties"]
    policy = next(
        r["Properties"]["PolicyDocument"]
        for r in organization.resources(TRAIL, "AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_lid} in r["Properties"]["Topics"]
    )
    allow = statements(policy)["AllowCloudTrailDeliveryNotifications"]
    assert flat(allow["Condition"]["StringEquals"]["aws:SourceArn"]).endswith(":111111111111:trail/org-trail")


def test_no_delivery_notifications_by_default(standalone: Any) -> None:
    assert "SnsTopicName" not in the_trail(standalone)


def test_cloudtrail_logs_role_trusts_only_this_trail(case: Case) -> None:
    trail = the_trail(case.s)
    role = case.s.templates[TRAIL]["Resources"][trail["CloudWatchLogsRoleArn"]["Fn::GetAtt"][0]]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert flat(trust["Condition"]["StringEquals"]["aws:SourceArn"]) == _trail_arn(case)


def test_stacks_land_in_the_right_accounts(case: Case) -> None:
    arts = case.s.manifest["artifacts"]
    envs = {name: arts[name]["environment"] for name in (LOG_ARCHIVE, TRAIL)}
    if case.org:
        assert envs == {LOG_ARCHIVE: "aws://222222222222/us-east-1", TRAIL: "aws://333333333333/us-east-1"}
        assert arts["TrailguardGuardrails"]["environment"] == "aws://111111111111/us-east-1"
    else:
        assert envs == {LOG_ARCHIVE: "aws://unknown-account/us-east-1", TRAIL: "aws://unknown-account/us-east-1"}
    for name in (LOG_ARCHIVE, TRAIL):
        assert arts[name]["properties"]["terminationProtection"] is True
