"""Lambda changes by people and user data: the caller classifier decides who is a person."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
LAMBDA = "lambda.amazonaws.com"
CLI = "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.8.0-45-generic"
BOTO = "Boto3/1.35.30 md/Botocore#1.35.30 ua/2.0 os/linux#6.1.109-118.189.amzn2023.x86_64"
TERRAFORM = "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.68.0"
USER = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/bob", "accountId": ACCOUNT, "userName": "bob"}
FEDERATED = {"type": "FederatedUser", "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/bob", "accountId": ACCOUNT}
Ev = Callable[..., CloudTrailEvent]


def role(name: str, *, mfa: bool = False, invoked_by: str | None = None) -> dict:
    ident: dict[str, Any] = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/s",
        "accountId": ACCOUNT,
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}", "userName": name},
            "attributes": {"mfaAuthenticated": "true" if mfa else "false"},
        },
    }
    if invoked_by:
        ident["invokedBy"] = invoked_by
    return ident


@pytest.mark.parametrize(
    ("name", "identity", "ua_risky"),
    [
        ("UpdateFunctionCode20150331v2", role("Admin", mfa=True), (CLI, True)),  # MFA: a person at a terminal
        ("UpdateFunctionCode20150331", FEDERATED, (CLI, True)),
        ("UpdateFunctionCode", USER, (TERRAFORM, True)),  # a user agent does not make a person a pipeline
        ("UpdateFunctionCode20150331v2", role("ci"), (BOTO, False)),
        ("UpdateFunctionCode20150331v2", role("ci"), (TERRAFORM, False)),
        ("UpdateFunctionCode20150331v2", role("deploy", invoked_by="cloudformation.amazonaws.com"), (CLI, False)),
    ],
)
def test_lambda_code_change_people(ev: Ev, run, name: str, identity: dict, ua_risky: tuple) -> None:
    ua, risky = ua_risky
    e = ev(name, {"functionName": "orders-api"}, identity=identity, source=LAMBDA, userAgent=ua)
    assert run("lambda-code-changed-by-human", e).risky is risky


def test_lambda_pipeline_user_listed_by_the_operator(ev: Ev, run) -> None:
    cfg = RuntimeConfig(iac_principal_patterns=(f"arn:aws:iam::{ACCOUNT}:user/bob",))
    e = ev("UpdateFunctionCode20150331v2", {"functionName": "f"}, identity=USER, source=LAMBDA, userAgent=CLI)
    a = run("lambda-code-changed-by-human", e, cfg)
    assert not a.risky and "IaC" in a.reason


def test_lambda_layers_by_a_person(ev: Ev, run) -> None:
    req = {"functionName": "f", "layers": ["arn:aws:lambda:us-east-1:444455556666:layer:x:1"]}
    e = ev("UpdateFunctionConfiguration20150331v2", req, identity=role("Admin", mfa=True), source=LAMBDA, userAgent=CLI)
    a = run("lambda-code-changed-by-human", e)
    assert a.risky and "layers" in a.reason


@pytest.mark.parametrize(
    ("request_parameters", "risky"),
    [
        ({"instanceId": "i-1", "userData": "<sensitiveDataRemoved>"}, True),
        ({"instanceId": "i-1", "attribute": "userData", "value": "<sensitiveDataRemoved>"}, True),
        ({"instanceId": "i-1", "attribute": " UserData ", "value": "x"}, True),
        ({"instanceId": "i-1", "attribute": "instanceType", "value": "t3.large"}, False),
        ({"instanceId": "i-1", "disableApiTermination": {"value": False}}, False),
    ],
)
def test_user_data_forms(ev: Ev, run, request_parameters: dict, risky: bool) -> None:
    assert run("ec2-userdata-modified", ev("ModifyInstanceAttribute", request_parameters)).risky is risky
