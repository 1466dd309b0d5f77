"""A member admin writes policies and shares crafted to look private, internal, or unreadable (issue 14).

Every case goes through the real catalog rule and decision. What each proves:

* a policy that *looks* restricted by a condition but is not (wildcard org IDs, IfExists, negated tests on
  the own account, ranges that cover the internet, policy variables) is judged public and remediable;
* a grant to another account is found whatever the spelling (account ID, root ARN, role ARN, a condition
  that pins '*' to that account), and an account or organization ID that merely looks like ours is not ours;
* a document that cannot be read (too large to log, duplicate keys, unknown encoding) is alerted and never
  remediated: trailguard does not act on what it could not read, and does not stay silent either;
* the organization's account list comes from the config or ListAccounts only: nothing in the event adds to it,
  and an unknown list makes shares alerts, never silence.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.intended import IntendedExposure
from trailguard_engine.model import Assessment
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
ORG = "o-a1b2c3d4e5"
OUTSIDE = "444455556666"
OURS = "222233334444"
CFG = RuntimeConfig(org_id=ORG, organization_accounts=frozenset({ACCOUNT, OURS}))


def judge(rule_id: str, event_name: str, source: str, request: Any, cfg: RuntimeConfig = CFG) -> Assessment:
    rule = rules_by_id()[rule_id]
    record = {
        "eventVersion": "1.09",
        "eventName": event_name,
        "eventSource": f"{source}.amazonaws.com",
        "eventTime": "2026-10-01T12:00:00Z",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.17.20",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/mallory",
            "accountId": ACCOUNT,
        },
        "requestParameters": request,
        "eventType": "AwsApiCall",
    }
    envelope = {"source": f"aws.{source}", "account": ACCOUNT, "region": "us-east-1", "detail": record}
    return registry()[rule.decision](CloudTrailEvent(envelope), rule, cfg)


def bucket_policy(*stmts: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(stmts)}


def open_stmt(**kw: Any) -> dict[str, Any]:
    return {
        "Sid": "Looks-private",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::loot/*",
        **kw,
    }


LOOKS_PRIVATE = [
    {"StringLike": {"aws:PrincipalOrgID": "o-*"}},
    {"StringLike": {"aws:PrincipalOrgID": ORG[:6] + "*"}},  # a prefix of our org ID matches other orgs
    {"StringEqualsIfExists": {"aws:PrincipalOrgID": ORG}},  # absent for anonymous callers
    {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": [ORG]}},
    {"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT}},  # everyone except us
    {"StringNotEqualsIfExists": {"aws:SourceVpce": "vpce-0a1b2c3d"}},
    {"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"]}},
    {"IpAddress": {"aws:SourceIp": [f"{i}.0.0.0/8" for i in range(1, 224)]}},  # every unicast /8, one by one
    {"StringEquals": {"aws:PrincipalAccount": "${aws:PrincipalAccount}"}},  # always true
    {"StringEquals": {"sts:ExternalId": "secret"}, "Bool": {"aws:SecureTransport": "true"}},
]


@pytest.mark.parametrize("condition", LOOKS_PRIVATE, ids=lambda c: next(iter(c.values())).__repr__()[:40])
@pytest.mark.parametrize("encode", [lambda d: d, json.dumps, lambda d: quote(quote(json.dumps(d), safe=""), safe="")])
def test_conditions_that_only_look_restrictive_are_public_and_remediable(condition: Any, encode: Any) -> None:
    policy = bucket_policy(open_stmt(Condition=condition))
    a = judge(
        "s3-bucket-policy-public", "PutBucketPolicy", "s3", {"bucketName": "loot", "bucketPolicy": encode(policy)}
    )
    assert a.risky and a.remediable, a.reason
    assert a.params["public_statements"] == [{"index": 0, "sid": "Looks-private"}]


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": OUTSIDE},
        {"AWS": f"arn:aws:iam::{OUTSIDE}:root"},
        {"AWS": [f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{OUTSIDE}:role/reader"]},
        {"AWS": f"arn:aws:sts::{OUTSIDE}:assumed-role/r/s"},
        {"AWS": "1111222233330"},  # 13 digits: not our account, not an account at all
        {"AWS": f"arn:aws:iam::{ACCOUNT[:-1]}:root"},  # 11 digits
        {"AWS": "１１１１２２２２３３３３"},  # full-width digits look like ours
    ],
)
def test_grants_to_other_accounts_are_alerted_not_remediated(principal: Any) -> None:
    policy = bucket_policy(open_stmt(Principal=principal))
    a = judge("s3-bucket-policy-public", "PutBucketPolicy", "s3", {"bucketName": "loot", "bucketPolicy": policy})
    assert a.risky and not a.remediable, a.reason


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"aws:PrincipalOrgID": ORG + "x"}},  # our org ID is a prefix of theirs
        {"StringEquals": {"aws:PrincipalOrgID": ORG.upper()}},  # IDs are lower case: not ours
        {"StringEquals": {"aws:PrincipalAccount": OUTSIDE}},
        {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{OUTSIDE}:role/*"}},
        {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": [f"{ORG}x/*"]}},
    ],
)
def test_star_pinned_outside_is_an_external_grant(condition: Any) -> None:
    policy = bucket_policy(open_stmt(Condition=condition))
    a = judge("s3-bucket-policy-public", "PutBucketPolicy", "s3", {"bucketName": "loot", "bucketPolicy": policy})
    assert a.risky and not a.remediable, a.reason


def test_star_pinned_to_our_organization_is_quiet() -> None:
    policy = bucket_policy(open_stmt(Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}}))
    a = judge("s3-bucket-policy-public", "PutBucketPolicy", "s3", {"bucketName": "loot", "bucketPolicy": policy})
    assert not a.risky


@pytest.mark.parametrize(
    ("rule_id", "event_name", "source", "key"),
    [
        ("s3-bucket-policy-public", "PutBucketPolicy", "s3", "bucketPolicy"),
        ("iam-inline-policy-admin", "PutRolePolicy", "iam", "policyDocument"),
        ("iam-role-trust-opened", "UpdateAssumeRolePolicy", "iam", "policyDocument"),
        ("iam-role-trust-opened", "CreateRole", "iam", "assumeRolePolicyDocument"),
    ],
)
@pytest.mark.parametrize(
    "request_kind",
    [
        "too-large",
        "duplicate-effect",
        "garbage",
    ],
)
def test_unreadable_documents_alert_and_never_remediate(
    rule_id: str, event_name: str, source: str, key: str, request_kind: str
) -> None:
    if request_kind == "too-large":
        request: dict[str, Any] = {"reason": "requestParameters too large", "omitted": True, "originalSize": 131072}
    elif request_kind == "duplicate-effect":
        # JSON with the Effect twice: which one AWS honours is not ours to guess
        text = (
            '{"Statement": [{"Effect": "Deny", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}'
        )
        request = {"bucketName": "loot", "roleName": "r", "policyName": "p", key: text}
    else:
        request = {"bucketName": "loot", "roleName": "r", "policyName": "p", key: "%7B%ZZ"}
    a = judge(rule_id, event_name, source, request)
    assert a.risky, a.reason
    assert not a.remediable


def test_event_content_cannot_add_an_account_to_ours() -> None:
    """The share target named in the event, the caller's account, the recipient: none of them become ours."""
    unknown = RuntimeConfig(org_id=ORG)  # ListAccounts failed and nothing is configured
    for target in (OUTSIDE, OURS):
        request = {
            "snapshotId": "snap-0a1b2c3d4e5f60718",
            "createVolumePermission": {"add": {"items": [{"userId": target}]}},
        }
        a = judge("ebs-snapshot-public", "ModifySnapshotAttribute", "ec2", request, unknown)
        assert a.risky and not a.remediable and "unverified" in a.reason
    known = judge(
        "ebs-snapshot-public",
        "ModifySnapshotAttribute",
        "ec2",
        {"snapshotId": "snap-1", "createVolumePermission": {"add": {"items": [{"userId": OURS}]}}},
    )
    assert not known.risky


@pytest.mark.parametrize(
    "items",
    [
        [{"organizationArn": f"arn:aws:organizations::999988887777:organization/{ORG}z"}],
        [{"organizationalUnitArn": f"arn:aws:organizations::999988887777:ou/{ORG}z/ou-ab12-cd34ef56"}],
        [{"organizationArn": f"arn:aws:organizations::999988887777:organization/x{ORG}"}],
        [{"userId": OURS}, {"userId": "２２２２３３３３４４４４"}],
    ],
)
def test_lookalike_organizations_and_accounts_in_ami_shares(items: list[dict[str, str]]) -> None:
    request = {"imageId": "ami-0a1b2c3d4e5f60718", "launchPermission": {"add": {"items": items}}}
    a = judge("ami-public", "ModifyImageAttribute", "ec2", request)
    assert a.risky and not a.remediable, a.reason


def test_our_organization_in_an_ami_share_is_quiet() -> None:
    items = [{"organizationalUnitArn": f"arn:aws:organizations::{OURS}:ou/{ORG}/ou-ab12-cd34ef56"}]
    request = {"imageId": "ami-0a1b2c3d4e5f60718", "launchPermission": {"add": {"items": items}}}
    assert not judge("ami-public", "ModifyImageAttribute", "ec2", request).risky


@pytest.mark.parametrize(
    "request_parameters",
    [
        {"principal": OUTSIDE},
        {"principal": f"arn:aws:iam::{OUTSIDE}:root"},
        {"principal": "arn:aws:iam::*:root"},
        {"principal": "*", "principalOrgID": ORG + "z"},
        {"principal": "*", "sourceAccount": OUTSIDE},
        {"principal": "*", "sourceArn": "arn:aws:s3:::*"},  # a wildcard is no scope
        {"principal": "events.amazonaws.com", "sourceArn": f"arn:aws:events:us-east-1:{OUTSIDE}:rule/r"},
    ],
)
def test_lambda_permissions_outside_or_for_anyone(request_parameters: dict[str, str]) -> None:
    request = {"functionName": "billing", "statementId": "s", "action": "lambda:InvokeFunction", **request_parameters}
    for name in ("AddPermission20150331v2", "AddPermission20150331"):
        a = judge("lambda-permission-public", name, "lambda", request)
        assert a.risky and not a.remediable, a.reason


def test_lambda_permissions_for_our_own_resources_are_quiet() -> None:
    request = {
        "functionName": "billing",
        "statementId": "s",
        "action": "lambda:InvokeFunction",
        "principal": "events.amazonaws.com",
        "sourceArn": f"arn:aws:events:us-east-1:{OURS}:rule/r",
    }
    assert not judge("lambda-permission-public", "AddPermission20150331v2", "lambda", request).risky


def test_trusted_accounts_never_cover_a_public_statement() -> None:
    cfg = RuntimeConfig(org_id=ORG, intended=IntendedExposure(trusted_accounts=frozenset({OUTSIDE})))
    policy = bucket_policy(open_stmt(Principal="*"), open_stmt(Sid="Partner", Principal={"AWS": OUTSIDE}))
    a = judge("s3-bucket-policy-public", "PutBucketPolicy", "s3", {"bucketName": "loot", "bucketPolicy": policy}, cfg)
    assert a.risky and a.remediable
    assert a.params["public_statements"] == [{"index": 0, "sid": "Looks-private"}]


def test_root_console_actions_are_root_activity() -> None:
    rule = rules_by_id()["root-activity"]
    record = {
        "eventName": "CreateUser",
        "eventSource": "iam.amazonaws.com",
        "eventType": "AwsApiCall",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "Root", "accountId": ACCOUNT, "invokedBy": "signin.amazonaws.com"},
    }
    envelope = {"source": "aws.iam", "account": ACCOUNT, "region": "us-east-1", "detail": record}
    a = registry()[rule.decision](CloudTrailEvent(envelope), rule, CFG)
    assert a.risky and "console" in a.reason
    record["userIdentity"]["invokedBy"] = "cloudformation.amazonaws.com"  # a service on root's behalf
    assert not registry()[rule.decision](CloudTrailEvent(envelope), rule, CFG).risky
