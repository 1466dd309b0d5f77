"""Share distribution "by a service" must be proven, not claimed (issue 15).

A member admin can create a role *named* like a service's (at any path but IAM's reserved
``/aws-service-role/``), use any user agent, and configure a service to share with their own account.
Only ``invokedBy`` plus a service identity (``AWSService`` or the service-linked role's reserved path)
makes an account share "service distribution"; a public share is public whoever makes it.
"""

from __future__ import annotations

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
SERVICE = "imagebuilder.amazonaws.com"


def identity(issuer_path: str, invoked_by: str | None = SERVICE, kind: str = "AssumedRole") -> dict:
    ident = {
        "type": kind,
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSServiceRoleForImageBuilder/x",
        "accountId": ACCOUNT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{issuer_path}"}},
    }
    if invoked_by:
        ident["invokedBy"] = invoked_by
    return ident


def judge(ident: dict, items: list[dict]):
    rule = rules_by_id()["ami-public"]
    record = {
        "eventName": "ModifyImageAttribute",
        "eventSource": "ec2.amazonaws.com",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "userAgent": SERVICE,
        "sourceIPAddress": SERVICE,
        "userIdentity": ident,
        "requestParameters": {"imageId": "ami-0123456789abcdef0", "launchPermission": {"add": {"items": items}}},
    }
    event = CloudTrailEvent({"detail-type": "AWS API Call via CloudTrail", "account": ACCOUNT, "detail": record})
    return registry()[rule.decision](event, rule, RuntimeConfig())


@pytest.mark.parametrize(
    "ident",
    [
        identity("AWSServiceRoleForImageBuilder"),  # right name, ordinary path
        identity("service-role/AWSServiceRoleForImageBuilder"),
        identity("aws-service-role-x/imagebuilder.amazonaws.com/AWSServiceRoleForImageBuilder"),
        identity("aws-service-role/imagebuilder.amazonaws.com/AWSServiceRoleForImageBuilder", invoked_by=None),
        identity("aws-service-role/imagebuilder.amazonaws.com/AWSServiceRoleForImageBuilder", "evil.example.com"),
        identity("aws-service-role/ec2.amazonaws.com/AWSServiceRoleForEC2", SERVICE),  # another service's SLR
    ],
)
def test_unproven_service_distribution_to_an_account_still_alerts(ident: dict) -> None:
    a = judge(ident, [{"userId": "999988887777"}])
    assert a.risky and not a.remediable


def test_a_real_service_cannot_make_an_image_public_unnoticed() -> None:
    ident = identity("aws-service-role/imagebuilder.amazonaws.com/AWSServiceRoleForImageBuilder")
    assert not judge(ident, [{"userId": "999988887777"}]).risky
    a = judge(ident, [{"userId": "999988887777"}, {"group": "all"}])
    assert a.risky and a.remediable
