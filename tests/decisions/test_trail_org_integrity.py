"""Trail and Organizations integrity decisions (issue 14 §2, defense evasion): each weakening fires, each
look-alike that keeps the control intact does not, and what a member admin controls in the request cannot
turn a weakening into a skip."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.intended import IntendedExposure
from trailguard_engine.model import Assessment
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
ORG_ACCOUNT = "444455556666"
OUTSIDER = "999988887777"
TRAIL = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/org-trail"
KEY_ID = "8a1f3c52-2b7e-4d0a-9c61-1f0e7d9b3a44"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_ID}"


def judge(
    rule_id: str,
    name: str,
    request: Any,
    cfg: RuntimeConfig | None = None,
    *,
    source: str = "cloudtrail.amazonaws.com",
    **detail: Any,
) -> Assessment:
    rule = rules_by_id()[rule_id]
    record = {
        "eventName": name,
        "eventSource": source,
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/mallory"},
        "requestParameters": request,
        "responseElements": None,
        **detail,
    }
    event = CloudTrailEvent(
        {"detail-type": "AWS API Call via CloudTrail", "account": ACCOUNT, "region": "us-east-1", "detail": record}
    )
    return registry()[rule.decision](event, rule, cfg or RuntimeConfig())


# --------------------------------------------------------------------------- #
# UpdateTrail to a KMS key outside our accounts
# --------------------------------------------------------------------------- #


def full_resend(**over: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "name": "org-trail",
        "s3BucketName": "org-trail-logs",
        "s3KeyPrefix": "",
        "snsTopicName": "",
        "includeGlobalServiceEvents": True,
        "isMultiRegionTrail": True,
        "enableLogFileValidation": True,
    }
    req.update(over)
    return req


def test_a_full_resend_to_an_outsiders_key_is_risky() -> None:
    key = f"arn:aws:kms:us-east-1:{OUTSIDER}:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
    a = judge("cloudtrail-update-trail-weakened", "UpdateTrail", full_resend(kmsKeyId=key))
    assert a.risky and OUTSIDER in a.reason


@pytest.mark.parametrize(
    ("key", "cfg"),
    [
        (KEY_ARN, RuntimeConfig()),  # the record's own account
        (f"arn:aws:kms:us-east-1:{ORG_ACCOUNT}:key/k", RuntimeConfig(organization_accounts=frozenset({ORG_ACCOUNT}))),
        (
            f"arn:aws:kms:us-east-1:{ORG_ACCOUNT}:key/k",
            RuntimeConfig(intended=IntendedExposure(trusted_accounts=frozenset({ORG_ACCOUNT}))),
        ),
        (f"arn:aws:kms:us-east-1:{ORG_ACCOUNT}:alias/central", RuntimeConfig(management_account=ORG_ACCOUNT)),
        ("alias/trail", RuntimeConfig()),  # a bare alias or key id is in the record's account
    ],
)
def test_a_key_of_ours_in_a_full_resend_is_not_judged(key: str, cfg: RuntimeConfig) -> None:
    assert not judge("cloudtrail-update-trail-weakened", "UpdateTrail", full_resend(kmsKeyId=key), cfg).risky


def test_a_targeted_request_to_an_outsiders_key_is_risky_and_names_other_removals() -> None:
    key = f"arn:aws:kms:eu-west-1:{OUTSIDER}:key/k"
    a = judge(
        "cloudtrail-update-trail-weakened",
        "UpdateTrail",
        {"name": "org-trail", "kmsKeyId": key, "enableLogFileValidation": False},
    )
    assert a.risky and OUTSIDER in a.reason and "log file validation off" in a.reason


# --------------------------------------------------------------------------- #
# UpdateEventDataStore
# --------------------------------------------------------------------------- #

STORE = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:eventdatastore/a1b2"


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ({"retentionPeriod": 7}, "retention cut to 7 days"),
        ({"retentionPeriod": "30"}, "retention cut to 30 days"),
        ({"terminationProtectionEnabled": False}, "termination protection off"),
        ({"terminationProtectionEnabled": "false"}, "termination protection off"),
        ({"multiRegionEnabled": False}, "single-region"),
        ({"organizationEnabled": False}, "no longer an organization store"),
        (
            {
                "advancedEventSelectors": [
                    {
                        "fieldSelectors": [
                            {"field": "eventCategory", "equals": ["Management"]},
                            {"field": "eventSource", "notEquals": ["kms.amazonaws.com"]},
                        ]
                    }
                ]
            },
            "management events filtered",
        ),
        ({"kmsKeyId": f"arn:aws:kms:us-east-1:{OUTSIDER}:key/k"}, OUTSIDER),
    ],
)
def test_event_data_store_weakenings(change: dict[str, Any], expect: str) -> None:
    a = judge("cloudtrail-event-data-store-weakened", "UpdateEventDataStore", {"eventDataStore": STORE, **change})
    assert a.risky and expect in a.reason, a.reason


@pytest.mark.parametrize(
    "change",
    [
        {"retentionPeriod": 365},
        {"retentionPeriod": 3653, "terminationProtectionEnabled": True, "multiRegionEnabled": True},
        {"name": "renamed"},
        {"advancedEventSelectors": [{"fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]}]},
        # a data-event store: without its previous selectors it cannot be told from a narrowed one
        {
            "advancedEventSelectors": [
                {
                    "fieldSelectors": [
                        {"field": "eventCategory", "equals": ["Data"]},
                        {"field": "resources.type", "equals": ["AWS::S3::Object"]},
                    ]
                }
            ]
        },
        {"retentionPeriod": True},  # not a number
        {"kmsKeyId": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"},
    ],
)
def test_event_data_store_changes_that_keep_it(change: dict[str, Any]) -> None:
    assert not judge(
        "cloudtrail-event-data-store-weakened", "UpdateEventDataStore", {"eventDataStore": STORE, **change}
    ).risky


def test_event_data_store_minimum_comes_from_the_rule_params() -> None:
    assert rules_by_id()["cloudtrail-event-data-store-weakened"].params["min_retention_days"] == 365
    assert judge(
        "cloudtrail-event-data-store-weakened",
        "UpdateEventDataStore",
        {"eventDataStore": STORE, "retentionPeriod": 364},
    ).risky


# --------------------------------------------------------------------------- #
# PutKeyPolicy on the trail key
# --------------------------------------------------------------------------- #

ROOT = {
    "Sid": "Root",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}
CT = {
    "Sid": "CloudTrailEncrypt",
    "Effect": "Allow",
    "Principal": {"Service": "cloudtrail.amazonaws.com"},
    "Action": "kms:GenerateDataKey*",
    "Resource": "*",
    "Condition": {
        "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"}
    },
}
DENY_CT = {
    "Sid": "X",
    "Effect": "Deny",
    "Principal": {"Service": "cloudtrail.amazonaws.com"},
    "Action": "kms:*",
    "Resource": "*",
}
PROTECTED = RuntimeConfig(protected_key_arns=frozenset({KEY_ARN}))


def put_key_policy(
    *stmts: dict[str, Any], cfg: RuntimeConfig | None = None, encode: str = "json", key: str = KEY_ID
) -> Assessment:
    doc: Any = {"Version": "2012-10-17", "Statement": list(stmts)}
    if encode == "json":
        doc = json.dumps(doc)
    elif encode == "url":
        doc = urllib.parse.quote(json.dumps(doc))
    return judge(
        "cloudtrail-key-policy-weakened",
        "PutKeyPolicy",
        {"keyId": key, "policyName": "default", "policy": doc},
        cfg,
        source="kms.amazonaws.com",
    )


@pytest.mark.parametrize("encode", ["json", "url", "object"])
def test_a_deny_for_cloudtrail_fires_in_every_encoding(encode: str) -> None:
    assert put_key_policy(ROOT, CT, DENY_CT, encode=encode).risky


def test_a_deny_spelled_as_a_list_of_services_or_lower_effect_fires() -> None:
    deny = {**DENY_CT, "Effect": "deny", "Principal": {"Service": ["ec2.amazonaws.com", "CloudTrail.amazonaws.com"]}}
    assert put_key_policy(ROOT, deny).risky


def test_a_confused_deputy_guard_is_not_a_finding_but_a_wildcard_one_is() -> None:
    guard = {**DENY_CT, "Condition": {"StringNotEquals": {"aws:SourceArn": TRAIL}}}
    assert not put_key_policy(ROOT, CT, guard).risky
    fake = {**DENY_CT, "Condition": {"StringNotEquals": {"aws:SourceArn": "*"}}}
    assert put_key_policy(ROOT, CT, fake).risky
    other_key = {**DENY_CT, "Condition": {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}}
    assert put_key_policy(ROOT, CT, other_key).risky


def test_dropping_cloudtrails_grant_on_a_protected_key_fires_only_when_it_is_known() -> None:
    assert put_key_policy(ROOT, cfg=PROTECTED).risky
    assert put_key_policy(ROOT, cfg=PROTECTED, key=KEY_ARN).risky
    assert not put_key_policy(ROOT).risky, "an unknown key without CloudTrail statements is not a trail key"
    assert not put_key_policy(ROOT, CT, cfg=PROTECTED).risky


@pytest.mark.parametrize("action", [["kms:Decrypt"], "kms:DescribeKey", ["kms:Encrypt", "kms:GenerateDataKeyPair*"]])
def test_cloudtrails_grant_without_generate_data_key_fires(action: Any) -> None:
    assert put_key_policy(ROOT, {**CT, "Action": action}).risky


@pytest.mark.parametrize("action", ["kms:*", "*", ["kms:GenerateDataKey", "kms:DescribeKey"], "KMS:generateDataKey*"])
def test_cloudtrails_grant_with_generate_data_key_in_any_spelling_is_kept(action: Any) -> None:
    assert not put_key_policy(ROOT, {**CT, "Action": action}).risky


def test_not_action_excluding_generate_data_key_fires() -> None:
    stmt = {k: v for k, v in CT.items() if k != "Action"}
    assert put_key_policy(ROOT, {**stmt, "NotAction": "kms:GenerateDataKey*"}).risky
    assert not put_key_policy(ROOT, {**stmt, "NotAction": "kms:ScheduleKeyDeletion"}).risky


def test_unreadable_or_omitted_policies() -> None:
    a = judge(
        "cloudtrail-key-policy-weakened",
        "PutKeyPolicy",
        {"keyId": KEY_ID, "policy": "{not json"},
        PROTECTED,
        source="kms.amazonaws.com",
    )
    assert a.risky and "cannot be read" in a.reason
    assert not judge(
        "cloudtrail-key-policy-weakened",
        "PutKeyPolicy",
        {"keyId": KEY_ID, "policy": "{not json"},
        source="kms.amazonaws.com",
    ).risky
    omitted = {"reason": "requestParameters too large", "omitted": "true"}
    assert judge("cloudtrail-key-policy-weakened", "PutKeyPolicy", omitted, source="kms.amazonaws.com").risky


# --------------------------------------------------------------------------- #
# Trail archive bucket with an omitted request
# --------------------------------------------------------------------------- #


def test_an_omitted_bucket_policy_on_the_trail_bucket_fires_from_resources() -> None:
    res = [{"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::trailguard-archive-{ACCOUNT}-us-east-1"}]
    omitted = {"reason": "requestParameters too large", "omitted": True}
    a = judge("cloudtrail-bucket-tampered", "PutBucketPolicy", omitted, source="s3.amazonaws.com", resources=res)
    assert a.risky and "too large" in a.reason
    other = [{"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::app-bucket"}]
    assert not judge(
        "cloudtrail-bucket-tampered", "PutBucketPolicy", omitted, source="s3.amazonaws.com", resources=other
    ).risky
    # resources are read only when the request is omitted: a request naming another bucket is judged by it
    named = {"bucketName": "app-bucket", "bucketPolicy": "{}"}
    assert not judge(
        "cloudtrail-bucket-tampered", "PutBucketPolicy", named, source="s3.amazonaws.com", resources=res
    ).risky


# --------------------------------------------------------------------------- #
# Organizations
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("target", "risky"),
    [("r-ab12", True), ("ou-ab12-34cd56ef", True), (ORG_ACCOUNT, True), ("12345", False), ("", False)],
)
def test_detach_policy_targets(target: str, risky: bool) -> None:
    a = judge(
        "organizations-policy-detached",
        "DetachPolicy",
        {"policyId": "p-examplescp1", "targetId": target},
        source="organizations.amazonaws.com",
    )
    assert a.risky is risky


def test_update_policy_content_fires_name_only_does_not() -> None:
    content = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    a = judge(
        "organizations-policy-updated",
        "UpdatePolicy",
        {"policyId": "p-1", "content": content},
        source="organizations.amazonaws.com",
    )
    assert a.risky and "1 statement(s), 0 Deny" in a.reason
    assert not judge(
        "organizations-policy-updated",
        "UpdatePolicy",
        {"policyId": "p-1", "name": "n"},
        source="organizations.amazonaws.com",
    ).risky
    omitted = {"reason": "requestParameters too large", "omitted": True}
    assert judge("organizations-policy-updated", "UpdatePolicy", omitted, source="organizations.amazonaws.com").risky


def test_move_account_names_source_and_destination() -> None:
    a = judge(
        "organizations-account-moved",
        "MoveAccount",
        {"accountId": ORG_ACCOUNT, "sourceParentId": "ou-a", "destinationParentId": "r-ab12"},
        source="organizations.amazonaws.com",
    )
    assert a.risky and "ou-a" in a.reason and "(the root)" in a.reason


@pytest.mark.parametrize(
    ("name", "principal", "risky"),
    [
        ("DisableAWSServiceAccess", "guardduty.amazonaws.com", True),
        ("DisableAWSServiceAccess", "CloudTrail.AmazonAWS.com", True),
        ("DisableAWSServiceAccess", " securityhub.amazonaws.com ", True),
        ("DisableAWSServiceAccess", "member.org.stacksets.cloudformation.amazonaws.com", True),
        ("DeregisterDelegatedAdministrator", "access-analyzer.amazonaws.com", True),
        ("DisableAWSServiceAccess", "compute-optimizer.amazonaws.com", False),
        ("DisableAWSServiceAccess", "guardduty.amazonaws.com.evil", False),
        ("DisableAWSServiceAccess", None, False),
    ],
)
def test_security_services(name: str, principal: Any, risky: bool) -> None:
    req = {"servicePrincipal": principal, "accountId": ORG_ACCOUNT}
    assert (
        judge("organizations-security-service-access-removed", name, req, source="organizations.amazonaws.com").risky
        is risky
    )


def test_security_service_list_is_the_rules_params() -> None:
    from trailguard_engine.decisions.organizations import SECURITY_PRINCIPALS

    assert set(rules_by_id()["organizations-security-service-access-removed"].params["security_principals"]) == set(
        SECURITY_PRINCIPALS
    )
