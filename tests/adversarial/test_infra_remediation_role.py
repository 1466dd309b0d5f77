"""Finding 3: trailguard's roles cannot be turned into a weapon against the organization.

Attacker: whoever acts as a trailguard role: a compromised engine or drift function, a bug in a
decision, or an insider who can run code as those roles. Before the fix the member remediation
role (deployed in every account, the management account included) carried ``sts:AssumeRoot`` on
``*`` with no task-policy pin: from the management account (or the IAM delegated administrator)
that is a root session in any member account, with *any* task policy, for example
``IAMCreateRootUserPassword`` (take over the member's root user). It also carried
``iam:DeleteAccessKey`` on every user, and drift-sweep reads on every trail, bucket and key.

Now AssumeRoot is only on the engine role, which is the caller, pinned to the one task policy the
engine uses; the member role has no AssumeRoot and no access-key grants, and its drift reads name
the trail and the archive bucket.

``sts:AssumeRoot`` and the reads are authorized by the caller's identity policies alone (no
resource policy is involved), so they are evaluated as such.
"""

from __future__ import annotations

from typing import Any

import pytest
from infra_templates import (
    LOG_ARCHIVE,
    MANAGEMENT,
    MEMBER,
    ORG_ID,
    SECURITY,
    STANDALONE,
    Resolver,
    identity_policies,
    role_lid,
    stackset_member_template,
)
from policy_eval import Caller, Decision, Request, evaluate

ROOT_TASKS = (
    "IAMAuditRootUserCredentials",
    "IAMCreateRootUserPassword",
    "IAMDeleteRootUserCredentials",
    "S3UnlockBucketPolicy",
    "SQSUnlockQueuePolicy",
)
TRAIL_ARN = f"arn:aws:cloudtrail:us-east-1:{MANAGEMENT}:trail/org-trail"
ARCHIVE_ARN = f"arn:aws:s3:::trailguard-archive-{LOG_ARCHIVE}-us-east-1"


def _role(
    template: dict[str, Any], name: str, account: str, region: str = "us-east-1"
) -> tuple[Caller, list[dict[str, Any]]]:
    resolver = Resolver(template, account, region)
    lid = role_lid(template, name)
    caller = Caller(arn=f"arn:aws:iam::{account}:role/{name}", account=account, org_id=ORG_ID)
    return caller, identity_policies(template, lid, resolver)


def _identity_only(caller: Caller, identity: list[dict[str, Any]], action: str, resource: str, **ctx: str) -> Decision:
    return evaluate(Request(caller, action, resource, ctx), resource_account=caller.account, identity_policies=identity)


def _assume_root(caller: Caller, identity: list[dict[str, Any]], target: str, task: str) -> Decision:
    return _identity_only(
        caller,
        identity,
        "sts:AssumeRoot",
        f"arn:aws:iam::{target}:root",
        **{"sts:TaskPolicyArn": f"arn:aws:iam::aws:policy/root-task/{task}"},
    )


def _member_role_templates(organization: Any) -> list[tuple[str, dict[str, Any]]]:
    """The remediation role as deployed in the management account (direct stack) and by the StackSet."""
    return [
        (MANAGEMENT, organization.templates["TrailguardMember-us-east-1"]),
        (SECURITY, stackset_member_template(organization)),  # the IAM delegated administrator, if it is
        (MEMBER, stackset_member_template(organization)),
    ]


# --------------------------------------------------------------------------- #
# the attacks
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("task", ROOT_TASKS)
def test_member_remediation_role_cannot_assume_root_anywhere(organization: Any, task: str) -> None:
    for account, template in _member_role_templates(organization):
        caller, identity = _role(template, "trailguard-remediation", account)
        decision = _assume_root(caller, identity, MEMBER, task)
        assert decision is Decision.IMPLICIT_DENY, f"{caller.arn} may sts:AssumeRoot {task} into {MEMBER}"


@pytest.mark.parametrize("task", [t for t in ROOT_TASKS if t != "IAMDeleteRootUserCredentials"])
def test_engine_role_cannot_assume_root_with_any_other_task_policy(organization: Any, task: str) -> None:
    caller, identity = _role(organization.templates["TrailguardDetection"], "trailguard-engine", SECURITY)
    assert _assume_root(caller, identity, MEMBER, task) is Decision.IMPLICIT_DENY


def test_engine_role_cannot_assume_root_outside_a_root_principal(organization: Any) -> None:
    caller, identity = _role(organization.templates["TrailguardDetection"], "trailguard-engine", SECURITY)
    task = "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials"
    for resource in (f"arn:aws:iam::{MEMBER}:role/Admin", f"arn:aws:iam::{MEMBER}:user/alice"):
        assert _identity_only(caller, identity, "sts:AssumeRoot", resource, **{"sts:TaskPolicyArn": task}) is (
            Decision.IMPLICIT_DENY
        )


def test_member_role_cannot_delete_or_list_users_access_keys(organization: Any) -> None:
    for account, template in _member_role_templates(organization):
        caller, identity = _role(template, "trailguard-remediation", account)
        for action in ("iam:DeleteAccessKey", "iam:ListAccessKeys"):
            decision = _identity_only(caller, identity, action, f"arn:aws:iam::{account}:user/alice")
            assert decision is Decision.IMPLICIT_DENY, f"{caller.arn}: {action}"


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("cloudtrail:GetTrail", f"arn:aws:cloudtrail:eu-west-1:{MEMBER}:trail/payments-audit"),
        ("cloudtrail:GetEventSelectors", f"arn:aws:cloudtrail:eu-west-1:{MEMBER}:trail/payments-audit"),
        ("cloudtrail:DescribeTrails", "*"),
        # s3:GetBucketPolicyStatus is no longer drift-only: s3-block-public-access-removed reads it on the
        # event's bucket to act only when that bucket is public now (#15); the role could already read every
        # bucket policy (s3:GetBucketPolicy, for remove_public_bucket_policy_statements).
    ],
)
def test_drift_reads_are_pinned_to_the_trail_and_the_archive(organization: Any, action: str, resource: str) -> None:
    caller, identity = _role(stackset_member_template(organization), "trailguard-remediation", MEMBER)
    assert _identity_only(caller, identity, action, resource) is Decision.IMPLICIT_DENY, action


# --------------------------------------------------------------------------- #
# what trailguard needs still works
# --------------------------------------------------------------------------- #
def test_engine_may_delete_a_root_access_key_through_the_task_policy_it_uses(organization: Any) -> None:
    from trailguard_engine.remediations.iam import ROOT_TASK_POLICY

    caller, identity = _role(organization.templates["TrailguardDetection"], "trailguard-engine", SECURITY)
    task = f"arn:aws:{ROOT_TASK_POLICY}"
    for target in (MEMBER, LOG_ARCHIVE):
        decision = _identity_only(
            caller, identity, "sts:AssumeRoot", f"arn:aws:iam::{target}:root", **{"sts:TaskPolicyArn": task}
        )
        assert decision is Decision.ALLOW, target


def test_standalone_engine_has_no_assume_root(standalone: Any) -> None:
    """Centralized root access exists only in an organization: standalone grants nothing."""
    caller, identity = _role(standalone.templates["TrailguardDetection"], "trailguard-engine", STANDALONE)
    for task in ROOT_TASKS:
        assert _assume_root(caller, identity, MEMBER, task) is Decision.IMPLICIT_DENY


def test_drift_sweep_reads_the_real_trail_and_archive(organization: Any) -> None:
    template = stackset_member_template(organization)
    trail_reader, trail_identity = _role(template, "trailguard-remediation", SECURITY)  # delegated admin: trail account
    for action in ("cloudtrail:GetTrail", "cloudtrail:GetTrailStatus"):
        assert _identity_only(trail_reader, trail_identity, action, TRAIL_ARN) is Decision.ALLOW, action
    archive_reader, archive_identity = _role(template, "trailguard-remediation", LOG_ARCHIVE)
    for action in ("s3:GetBucketPolicy", "s3:GetBucketPolicyStatus", "s3:GetBucketPublicAccessBlock"):
        assert _identity_only(archive_reader, archive_identity, action, ARCHIVE_ARN) is Decision.ALLOW, action
    key = f"arn:aws:kms:us-east-1:{LOG_ARCHIVE}:key/0f1e2d3c-aaaa-bbbb-cccc-111122223333"
    assert _identity_only(archive_reader, archive_identity, "kms:DescribeKey", key) is Decision.ALLOW
