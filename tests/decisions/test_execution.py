"""Execution on instances: SSM commands and sessions by people, Instance Connect and serial-console keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
I1 = "i-0a1b2c3d4e5f67890"
SSM = "ssm.amazonaws.com"
EIC = "ec2-instance-connect.amazonaws.com"
CLI = "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.8.0-45-generic"
BOTO = "Boto3/1.35.30 md/Botocore#1.35.30 ua/2.0 os/linux#6.1.109-118.189.amzn2023.x86_64"
TERRAFORM = "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.68.0"
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/129.0.0.0 Safari/537.36"

USER = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/bob", "accountId": ACCOUNT, "userName": "bob"}
ROOT = {"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}


def role(name: str, *, path: str = "/", mfa: bool = False, invoked_by: str | None = None, session: str = "s") -> dict:
    ident: dict[str, Any] = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{session}",
        "accountId": ACCOUNT,
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role{path}{name}", "userName": name},
            "attributes": {"mfaAuthenticated": "true" if mfa else "false"},
        },
    }
    if invoked_by:
        ident["invokedBy"] = invoked_by
    return ident


SSO = role("AWSReservedSSO_AdministratorAccess_0a1b2c3d", path="/aws-reserved/sso.amazonaws.com/")
AUTOMATION = role("patch-automation")
SSM_SLR = role("AWSServiceRoleForAmazonSSM", path="/aws-service-role/ssm.amazonaws.com/", invoked_by=SSM)
CFN = role("cfn-exec", invoked_by="cloudformation.amazonaws.com", session="AWSCloudFormation")

Ev = Callable[..., CloudTrailEvent]


def send_command(ev: Ev, identity: dict, ua: str = CLI, **req: Any) -> CloudTrailEvent:
    request = {
        "instanceIds": [I1],
        "documentName": "AWS-RunShellScript",
        "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS",
    }
    request.update(req)
    return ev("SendCommand", request, identity=identity, source=SSM, userAgent=ua)


@pytest.mark.parametrize(
    ("identity", "ua", "risky"),
    [
        (USER, CLI, True),
        (ROOT, CLI, True),
        (SSO, BOTO, True),  # an Identity Center user session is a person whatever the tool
        (role("Admin", mfa=True), CLI, True),  # MFA says a person typed it
        (role("Admin"), BROWSER, False),  # a browser string without the console flag is forgeable: not proof
        (AUTOMATION, BOTO, False),  # an ordinary role session: automation (unknown class)
        (SSM_SLR, "ssm.amazonaws.com", False),  # SSM's own service-linked role (State Manager)
        (CFN, "cloudformation.amazonaws.com", False),  # IaC
        (USER, TERRAFORM, True),  # a user agent is attacker-chosen: an IAM user stays a person
        (AUTOMATION, TERRAFORM, False),  # a role session with a Terraform agent: still no sign of a person
        ({"type": "AWSService", "invokedBy": SSM}, SSM, False),
    ],
)
def test_ssm_command_only_by_people(ev: Ev, run, identity: dict, ua: str, risky: bool) -> None:
    assert run("ssm-command-by-human", send_command(ev, identity, ua)).risky is risky


def test_ssm_console_session_is_a_person(ev: Ev, run) -> None:
    ident = role("Admin") | {"sessionCredentialFromConsole": "true"}
    a = run("ssm-command-by-human", ev("StartSession", {"target": I1}, identity=ident, source=SSM, userAgent=BROWSER))
    assert a.risky and "session" in a.reason and I1 in a.reason
    assert a.resource == {"type": "AWS::EC2::Instance", "id": I1}


def test_ssm_targets_by_tag_named_in_reason(ev: Ev, run) -> None:
    e = send_command(ev, USER, instanceIds=None, targets=[{"key": "tag:Role", "values": ["web", "api"]}])
    a = run("ssm-command-by-human", e)
    assert a.risky and "tag:Role=web,api" in a.reason


def test_ssm_many_instances_summarised(ev: Ev, run) -> None:
    ids = [f"i-{n:017x}" for n in range(8)]
    a = run("ssm-command-by-human", send_command(ev, USER, instanceIds=ids))
    assert a.risky and "(+3)" in a.reason


def test_ssm_other_calls_not_judged(ev: Ev, run) -> None:
    assert not run("ssm-command-by-human", ev("GetCommandInvocation", {}, identity=USER, source=SSM)).risky


def test_iac_principal_from_config_is_not_a_person(ev: Ev, run) -> None:
    """An operator-listed pipeline user is IaC, even though it is an IAM user."""
    cfg = RuntimeConfig(iac_principal_patterns=(f"arn:aws:iam::{ACCOUNT}:user/bob",))
    assert not run("ssm-command-by-human", send_command(ev, USER), cfg).risky


@pytest.mark.parametrize(
    ("name", "request_parameters", "words"),
    [
        (
            "SendSSHPublicKey",
            {"instanceId": I1, "instanceOSUser": "ec2-user", "sSHPublicKey": "ssh-ed25519 AAAA"},
            "ec2-user",
        ),
        (
            "SendSerialConsoleSSHPublicKey",
            {"instanceId": I1, "serialPort": 0, "sSHPublicKey": "ssh-ed25519 AAAA"},
            "serial",
        ),
        ("SendSerialConsoleSSHPublicKey", {"instanceId": I1, "sSHPublicKey": "ssh-ed25519 AAAA"}, "port 0"),
    ],
)
def test_instance_connect_keys(ev: Ev, run, name: str, request_parameters: dict, words: str) -> None:
    a = run("ec2-instance-connect-key-pushed", ev(name, request_parameters, identity=AUTOMATION, source=EIC))
    assert a.risky and words in a.reason and a.resource["id"] == I1
    assert not a.remediable


def test_instance_connect_other_calls(ev: Ev, run) -> None:
    assert not run("ec2-instance-connect-key-pushed", ev("OpenTunnel", {}, source=EIC)).risky


def test_serial_console_enabled(ev: Ev, run) -> None:
    a = run(
        "ec2-serial-console-access-enabled", ev("EnableSerialConsoleAccess", {}, {"serialConsoleAccessEnabled": True})
    )
    assert a.risky and ACCOUNT in a.reason
    assert not run(
        "ec2-serial-console-access-enabled", ev("EnableSerialConsoleAccess", {}, {"serialConsoleAccessEnabled": False})
    ).risky
    assert not run("ec2-serial-console-access-enabled", ev("DisableSerialConsoleAccess", {})).risky


def test_ssm_association_by_a_person(ev: Ev, run) -> None:
    req = {
        "name": "AWS-RunShellScript",
        "targets": [{"key": "InstanceIds", "values": [I1]}],
        "scheduleExpression": "rate(30 minutes)",
    }
    a = run("ssm-command-by-human", ev("CreateAssociation", req, identity=USER, source=SSM, userAgent=CLI))
    assert a.risky and "association with AWS-RunShellScript" in a.reason and f"InstanceIds={I1}" in a.reason
    assert not run(
        "ssm-command-by-human", ev("CreateAssociation", req, identity=AUTOMATION, source=SSM, userAgent=BOTO)
    ).risky
