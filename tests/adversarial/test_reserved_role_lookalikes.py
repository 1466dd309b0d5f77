"""A member admin cannot shield a role from detach_admin_policy by naming it like a reserved role.

Only the live IAM path counts (``/aws-reserved/``, ``/aws-service-role/``): IAM refuses to create roles
there, so an attacker's role named ``AWSReservedSSO_*`` or ``AWSServiceRoleFor*`` at any other path is
remediated like any other.
"""

from __future__ import annotations

import json

import boto3
import pytest
from intended_helpers import ACCOUNT, run
from moto import mock_aws

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
)
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("AWSReservedSSO_AdministratorAccess_0123456789abcdef", "/"),
        ("AWSReservedSSO_AdministratorAccess_0123456789abcdef", "/aws-reserved-sso/"),
        ("AWSReservedSSO_AdministratorAccess_0123456789abcdef", "/sso.amazonaws.com/aws-reserved/"),
        ("AWSServiceRoleForSupport", "/"),
        ("AWSServiceRoleForSupport", "/service-role/aws-service-role/"),
    ],
)
@mock_aws
def test_lookalike_reserved_roles_are_detached(name: str, path: str) -> None:
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=TRUST)
    arn = iam.create_policy(PolicyName="everything", PolicyDocument=POLICY)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    result, writes = run("detach_admin_policy", {"principal_type": "role", "principal_name": name, "policy_arn": arn})
    assert result.status == "remediated", result
    assert writes == ["DetachRolePolicy"]
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
