"""Finding 5: the guardrail SCP keeps a member admin away from trailguard's own roles and forwarders.

Attacker: an administrator of a member account (AdministratorAccess; the SCP is the only thing above
them). Before the fix the SCP protected the trail, the archive and the keys, but nothing of
trailguard itself: a member admin could

* blind trailguard for their account: disable, delete or re-target the forwarding rules, detach or
  rewrite the forwarding role's policy, put a permissions boundary on it;
* turn the remediation role into theirs: rewrite its trust policy, attach policies;
* pass the forwarding role to a rule of their own, or create a role named like a forwarder (the
  central bus trusts the ``trailguard-forward-*`` name, test_infra_central_bus.py);
* create a ``stacksets-exec-*`` role, the name trailguard's StackSet deployments run under and that
  deployments commonly exempt.

Each is now an explicit Deny for everyone but the break-glass roles, the configured deployment roles
and CloudFormation StackSets' execution role; trailguard's own StackSet and pipeline deployments
still pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from infra_templates import LOG_ARCHIVE, MEMBER, ORG_ID, SECURITY, Resolver, resources
from policy_eval import ADMINISTRATOR_ACCESS, FULL_AWS_ACCESS, Caller, Decision, Request, evaluate

from trailguard.config import load_config

GUARDRAILS = "TrailguardGuardrails"
EXAMPLE_CFG = load_config(Path(__file__).resolve().parents[2] / "config" / "example-organization.yaml")
STACKSETS_EXEC = "stacksets-exec-0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def _scp(organization: Any) -> dict[str, Any]:
    (policy,) = resources(organization.templates[GUARDRAILS], "AWS::Organizations::Policy").values()
    resolved: dict[str, Any] = Resolver(organization.templates[GUARDRAILS], "111111111111").resolve(
        policy["Properties"]["Content"]
    )
    return resolved


def _call(organization: Any, caller: Caller, action: str, resource: str) -> Decision:
    return evaluate(
        Request(caller, action, resource),
        resource_account=caller.account,
        identity_policies=[ADMINISTRATOR_ACCESS],
        scps=[FULL_AWS_ACCESS, _scp(organization)],
    )


def _role(name: str, account: str = MEMBER) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def _policy(name: str, account: str = MEMBER) -> str:
    return f"arn:aws:iam::{account}:policy/{name}"


FORWARD_RULE = f"arn:aws:events:us-east-1:{MEMBER}:rule/trailguard-forward-0"
ATTACKS = [
    # the remediation role: take it over
    ("iam:UpdateAssumeRolePolicy", _role("trailguard-remediation")),
    ("iam:PutRolePolicy", _role("trailguard-remediation")),
    ("iam:AttachRolePolicy", _role("trailguard-remediation")),
    ("iam:DeleteRole", _role("trailguard-remediation")),
    ("iam:CreatePolicyVersion", _policy("trailguard-remediation")),
    ("iam:SetDefaultPolicyVersion", _policy("trailguard-remediation")),
    # the forwarding role: blind it, or use it
    ("iam:PutRolePermissionsBoundary", _role("trailguard-forward-us-east-1")),
    ("iam:DetachRolePolicy", _role("trailguard-forward-us-east-1")),
    ("iam:DeleteRolePolicy", _role("trailguard-forward-us-east-1")),
    ("iam:UpdateRole", _role("trailguard-forward-us-east-1")),
    ("iam:TagRole", _role("trailguard-forward-us-east-1")),
    ("iam:PassRole", _role("trailguard-forward-us-east-1")),
    ("iam:CreatePolicyVersion", _policy("trailguard-forward-us-east-1")),
    ("iam:DeletePolicy", _policy("trailguard-forward-eu-west-1")),
    # squat or imitate a forwarder name the central bus trusts (also with a path)
    ("iam:CreateRole", _role("trailguard-forward-ap-south-1")),
    ("iam:CreateRole", _role("trailguard-forward-x/attacker")),
    ("iam:CreatePolicy", _policy("trailguard-forward-ap-south-1")),
    # the forwarding rules
    ("events:DisableRule", FORWARD_RULE),
    ("events:DeleteRule", FORWARD_RULE),
    ("events:PutRule", FORWARD_RULE),
    ("events:PutTargets", FORWARD_RULE),
    ("events:RemoveTargets", FORWARD_RULE),
    # the StackSets execution role name
    ("iam:CreateRole", _role("stacksets-exec-attacker")),
    ("iam:CreateRole", _role("stacksets-exec-x/attacker")),
    ("iam:UpdateAssumeRolePolicy", _role(STACKSETS_EXEC)),
    ("iam:PassRole", _role(STACKSETS_EXEC)),
]


@pytest.mark.parametrize(("action", "resource"), ATTACKS, ids=[f"{a}:{r.rsplit(':', 1)[1]}" for a, r in ATTACKS])
def test_member_admin_is_denied(organization: Any, action: str, resource: str) -> None:
    admin = Caller.role(MEMBER, "OrganizationAccountAccessRole", org_id=ORG_ID)
    assert _call(organization, admin, action, resource) is Decision.EXPLICIT_DENY


@pytest.mark.parametrize(("action", "resource"), ATTACKS, ids=[f"{a}:{r.rsplit(':', 1)[1]}" for a, r in ATTACKS])
def test_a_role_named_like_trailguard_is_denied_too(organization: Any, action: str, resource: str) -> None:
    """Having a trailguard-looking name grants nothing: only the exact and StackSets principals pass."""
    for name in ("trailguard-forward-us-east-1", "trailguard-remediation", "trailguard-engine"):
        imitator = Caller.role(MEMBER, name, org_id=ORG_ID)
        assert _call(organization, imitator, action, resource) is Decision.EXPLICIT_DENY, name


# --------------------------------------------------------------------------- #
# deployments still pass
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("iam:CreateRole", _role("trailguard-forward-us-east-1")),
        ("iam:CreatePolicy", _policy("trailguard-forward-us-east-1")),
        ("iam:PassRole", _role("trailguard-forward-us-east-1")),
        ("iam:PutRolePolicy", _role("trailguard-remediation")),
        ("iam:DeleteRole", _role("trailguard-remediation")),
        ("events:PutRule", FORWARD_RULE),
        ("events:PutTargets", FORWARD_RULE),
        ("events:DeleteRule", FORWARD_RULE),
    ],
)
def test_trailguard_stackset_deployment_passes(organization: Any, action: str, resource: str) -> None:
    """Service-managed StackSets run stack operations in a member account as ``stacksets-exec-*``."""
    stacksets = Caller.role(MEMBER, STACKSETS_EXEC, org_id=ORG_ID)
    assert _call(organization, stacksets, action, resource) is Decision.ALLOW


def test_the_configured_deployment_role_deploys_the_security_account(organization: Any) -> None:
    (deployer_arn,) = EXAMPLE_CFG.deployment_role_arns
    deployer = Caller(arn=deployer_arn, account=SECURITY, org_id=ORG_ID)
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:PassRole", "iam:DeleteRole"):
        assert _call(organization, deployer, action, _role("trailguard-engine", SECURITY)) is Decision.ALLOW, action


def test_break_glass_may_repair_trailguard_roles(organization: Any) -> None:
    glass = Caller(arn=_role("security-break-glass", LOG_ARCHIVE), account=LOG_ARCHIVE, org_id=ORG_ID)
    assert _call(organization, glass, "iam:UpdateAssumeRolePolicy", _role("trailguard-remediation", LOG_ARCHIVE)) is (
        Decision.ALLOW
    )


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("iam:CreateRole", _role("app-deployer")),
        ("iam:PutRolePolicy", _role("trailguardian")),
        ("iam:PassRole", _role("app-deployer")),
        ("events:PutRule", f"arn:aws:events:us-east-1:{MEMBER}:rule/app-nightly"),
        ("events:DisableRule", f"arn:aws:events:us-east-1:{MEMBER}:rule/trailguard-forwarder"),
    ],
)
def test_the_rest_of_the_account_is_untouched(organization: Any, action: str, resource: str) -> None:
    admin = Caller.role(MEMBER, "OrganizationAccountAccessRole", org_id=ORG_ID)
    assert _call(organization, admin, action, resource) is Decision.ALLOW
