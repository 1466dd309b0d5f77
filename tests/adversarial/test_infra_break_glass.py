"""Finding 4: the break-glass exception can be neither imitated nor hijacked.

Attackers:

* a member-account admin who creates a role with the break-glass *name* in their own account.
  With the old ``break_glass_role_pattern`` (``arn:aws:iam::*:role/security-break-glass``) that role
  passed every SCP exception and the archive's delete protection; the exception is now the exact,
  account-pinned ARNs of ``break_glass_role_arns``;
* a log-archive admin who rewrites the trust policy of the *real* break-glass role in their account
  (or deletes and re-creates it) to assume it, then deletes log files. The SCP now denies changing
  the configured break-glass roles to everyone but the break-glass roles themselves.
"""

from __future__ import annotations

from typing import Any

import pytest
from infra_templates import LOG_ARCHIVE, MANAGEMENT, MEMBER, ORG_ID, Resolver, resources
from policy_eval import ADMINISTRATOR_ACCESS, FULL_AWS_ACCESS, Caller, Decision, Request, evaluate

GUARDRAILS = "TrailguardGuardrails"
BREAK_GLASS = "security-break-glass"  # config/example-organization.yaml: this name in 111.. and 222..
ARCHIVE_OBJECT = f"arn:aws:s3:::trailguard-archive-{LOG_ARCHIVE}-us-east-1/AWSLogs/{ORG_ID}/{MEMBER}/CloudTrail/us-east-1/2026/10/01/x.json.gz"


def _scp(organization: Any) -> dict[str, Any]:
    (policy,) = resources(organization.templates[GUARDRAILS], "AWS::Organizations::Policy").values()
    resolved: dict[str, Any] = Resolver(organization.templates[GUARDRAILS], MANAGEMENT).resolve(
        policy["Properties"]["Content"]
    )
    return resolved


def _archive_policy(organization: Any) -> dict[str, Any]:
    tpl = organization.templates["TrailguardLogArchive"]
    resolver = Resolver(tpl, LOG_ARCHIVE)
    for res in resources(tpl, "AWS::S3::BucketPolicy").values():
        doc = resolver.resolve(res["Properties"]["PolicyDocument"])
        if any("trailguard-archive-" in str(s.get("Resource")) for s in doc["Statement"]):
            return dict(doc)
    raise AssertionError("no archive bucket policy")


def _scp_call(organization: Any, caller: Caller, action: str, resource: str) -> Decision:
    return evaluate(
        Request(caller, action, resource),
        resource_account=caller.account,
        identity_policies=[ADMINISTRATOR_ACCESS],
        scps=[FULL_AWS_ACCESS, _scp(organization)],
    )


# --------------------------------------------------------------------------- #
# imitation: the break-glass name in another account
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("organizations:LeaveOrganization", "*"),
        ("cloudtrail:StopLogging", f"arn:aws:cloudtrail:us-east-1:{MANAGEMENT}:trail/org-trail"),
        ("s3:PutBucketPolicy", f"arn:aws:s3:::trailguard-archive-{LOG_ARCHIVE}-us-east-1"),
        ("iam:UpdateAssumeRolePolicy", f"arn:aws:iam::{MEMBER}:role/trailguard-remediation"),
    ],
)
def test_a_break_glass_name_in_a_member_account_gets_no_exception(
    organization: Any, action: str, resource: str
) -> None:
    imitator = Caller.role(MEMBER, BREAK_GLASS, org_id=ORG_ID)
    assert _scp_call(organization, imitator, action, resource) is Decision.EXPLICIT_DENY


def test_a_break_glass_name_in_a_member_account_cannot_delete_archived_logs(organization: Any) -> None:
    imitator = Caller.role(MEMBER, BREAK_GLASS, org_id=ORG_ID)
    for action in ("s3:DeleteObject", "s3:DeleteObjectVersion"):
        decision = evaluate(
            Request(imitator, action, ARCHIVE_OBJECT, {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}),
            resource_account=LOG_ARCHIVE,
            resource_policy=_archive_policy(organization),
            identity_policies=[ADMINISTRATOR_ACCESS],
        )
        assert decision is Decision.EXPLICIT_DENY


# --------------------------------------------------------------------------- #
# hijack: the real break-glass role, from inside its account
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "action",
    [
        "iam:UpdateAssumeRolePolicy",
        "iam:DeleteRole",
        "iam:CreateRole",
        "iam:AttachRolePolicy",
        "iam:PutRolePolicy",
        "iam:PutRolePermissionsBoundary",
        "iam:DeleteRolePermissionsBoundary",
    ],
)
def test_log_archive_admin_cannot_take_over_the_break_glass_role(organization: Any, action: str) -> None:
    admin = Caller.role(LOG_ARCHIVE, "AWSReservedSSO_AdministratorAccess_0123456789abcdef", org_id=ORG_ID)
    target = f"arn:aws:iam::{LOG_ARCHIVE}:role/{BREAK_GLASS}"
    assert _scp_call(organization, admin, action, target) is Decision.EXPLICIT_DENY


def test_break_glass_keeps_its_exceptions(organization: Any) -> None:
    glass = Caller.role(LOG_ARCHIVE, BREAK_GLASS, org_id=ORG_ID)
    assert _scp_call(
        organization, glass, "s3:PutBucketPolicy", f"arn:aws:s3:::trailguard-archive-{LOG_ARCHIVE}-us-east-1"
    ) is (Decision.ALLOW)
    assert _scp_call(organization, glass, "iam:PutRolePolicy", f"arn:aws:iam::{LOG_ARCHIVE}:role/{BREAK_GLASS}") is (
        Decision.ALLOW
    )
    decision = evaluate(
        Request(
            glass, "s3:DeleteObjectVersion", ARCHIVE_OBJECT, {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
        ),
        resource_account=LOG_ARCHIVE,
        resource_policy=_archive_policy(organization),
        identity_policies=[ADMINISTRATOR_ACCESS],
    )
    assert decision is Decision.ALLOW
