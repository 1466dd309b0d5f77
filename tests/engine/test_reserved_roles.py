"""detach_admin_policy never changes a role whose live path IAM reserves (issue 15, defense in depth).

The caller classes already turn Identity Center provisioning into a notice; these tests call the
remediation as if a human had attached the policy, so only the remediation's own check stands
between the finding and the role.
"""

from __future__ import annotations

import json

import pytest
from engine_world import World, ct_event
from test_engine_remediations import remediate

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)


def _role_with_admin(world: World, name: str, path: str) -> object:
    iam = world.member("iam")
    iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName=name, PolicyArn=ADMIN)
    return iam


def _attached(iam: object, name: str) -> list[str]:
    return [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]]  # type: ignore[attr-defined]


@pytest.mark.managed_policies
@pytest.mark.parametrize(
    ("name", "path", "why"),
    [
        ("AWSReservedSSO_AdministratorAccess_0123456789abcdef", "/aws-reserved/sso.amazonaws.com/", "Identity Center"),
        (
            "AWSReservedSSO_AdministratorAccess_fedcba9876543210",
            "/aws-reserved/sso.amazonaws.com/eu-west-1/",
            "Identity Center",
        ),
        ("AWSServiceRoleForSupport", "/aws-service-role/support.amazonaws.com/", "service-linked"),
    ],
)
def test_reserved_roles_are_alerted_never_changed(world: World, name: str, path: str, why: str) -> None:
    """Old code detached AdministratorAccess from an Identity Center role: the next provisioning re-attached it."""
    iam = _role_with_admin(world, name, path)
    event = ct_event("iam", "AttachRolePolicy", {"roleName": name, "policyArn": ADMIN})
    finding = remediate(world, "detach_admin_policy", event)
    assert finding["status"] == "skipped", finding
    assert why in finding["detail"]
    assert ("iam", "DetachRolePolicy") not in world.member_calls()
    assert _attached(iam, name) == [ADMIN]


@pytest.mark.managed_policies
def test_a_role_merely_named_like_identity_center_is_remediated(world: World) -> None:
    """An account admin can name a role AWSReservedSSO_*; only IAM's reserved path counts."""
    name = "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
    iam = _role_with_admin(world, name, "/sso/")
    event = ct_event("iam", "AttachRolePolicy", {"roleName": name, "policyArn": ADMIN})
    finding = remediate(world, "detach_admin_policy", event)
    assert finding["status"] == "remediated", finding
    assert _attached(iam, name) == []
