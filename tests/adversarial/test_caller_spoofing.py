"""Caller classes cannot be a way to go unremediated or unseen.

Attacker: an admin of one member account. They control their user agent string, the names and paths of the roles
they create (but not IAM's reserved ``/aws-service-role/`` and ``/aws-reserved/`` paths), their own CloudFormation
stacks and session names. None of that may buy more than an alert; only evidence CloudTrail writes and the
attacker cannot (``AWSService`` identities, service-linked role sessions, trailguard's exact roles) or the
operator's own account-pinned ``iac_principals`` can reach a notice.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from trailguard_engine.caller import classify, iac_principal_error
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.exceptions import RuntimeConfigError
from trailguard_engine.model import Finding
from trailguard_engine.runtime_config import RuntimeConfig

from trailguard.config import parse_config
from trailguard.exceptions import ConfigError

ACCOUNT = "111122223333"
OTHER = "444455556666"
SG_RULE = "ec2-security-group-ingress-public"
TERRAFORM_UA = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.45.0 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1"
)
CDK_UA = "aws-sdk-js/2.1553.0 linux/v20.11.1 aws-cdk/2.130.0 promise"
PULUMI_UA = "APN/1.0 Pulumi/1.0 pulumi-aws/v6.28.1 (+https://www.pulumi.com) aws-sdk-go-v2/1.25.2"
#: Even an operator who sets every machine class of every rule to notice cannot silence forgeable evidence
#: (human and unknown stay as the rule says: the attacker must not be able to pass as a quieter class).
ALL_NOTICE = RuntimeConfig(
    caller_modes={"*": dict.fromkeys(("iac", "service", "identity-center"), "notice")},
)


def role(name: str, session: str = "mallory", *, path: str = "/", account: str = ACCOUNT, **extra: Any) -> dict:
    ident = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{account}:assumed-role/{name}/{session}",
        "accountId": account,
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{account}:role{path}{name}", "userName": name},
            "attributes": {"mfaAuthenticated": "false"},
        },
    }
    ident.update(extra)
    return ident


USER = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/mallory", "accountId": ACCOUNT, "userName": "mallory"}


def sg_open(identity: dict, user_agent: str = "aws-cli/2.15.30", **extra: Any) -> dict:
    return {
        "eventName": "AuthorizeSecurityGroupIngress",
        "eventSource": "ec2.amazonaws.com",
        "eventType": "AwsApiCall",
        "eventTime": "2026-12-01T10:05:00Z",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": user_agent,
        "userIdentity": identity,
        "eventID": "7d1c0a52-9b1e-4f61-a5f3-0c2f4a8e9b10",
        "requestParameters": {
            "groupId": "sg-0123456789abcdef0",
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "tcp",
                        "fromPort": 22,
                        "toPort": 22,
                        "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                    }
                ]
            },
        },
        **extra,
    }


def attach_admin(identity: dict, user_agent: str = "aws-cli/2.15.30") -> dict:
    rec = sg_open(identity, user_agent)
    rec.update(
        eventName="AttachRolePolicy",
        eventSource="iam.amazonaws.com",
        requestParameters={"roleName": "Backdoor", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
    )
    return rec


def finding(rec: dict, cfg: RuntimeConfig | None = None, rule: str = SG_RULE) -> Finding:
    (f,) = Evaluator(cfg=cfg or RuntimeConfig()).evaluate(rec, only_rule=rule).findings
    return f


# --------------------------------------------------------------------------- user agents
@pytest.mark.parametrize("ua", [TERRAFORM_UA, CDK_UA, PULUMI_UA, "Terraform/1.7.5", "terraform-provider-aws/5.0"])
@pytest.mark.parametrize("identity", [USER, role("Admin")], ids=["iam-user", "role"])
def test_an_iac_user_agent_on_a_humans_call_still_alerts(ua: str, identity: dict) -> None:
    for cfg in (RuntimeConfig(), ALL_NOTICE):
        f = finding(sg_open(identity, ua), cfg)
        assert f.decision == "alert", f
        assert f.silenced_by is None


def test_without_the_user_agent_the_same_call_remediates() -> None:
    assert finding(sg_open(USER)).decision == "remediate"


# --------------------------------------------------------------------------- reserved paths
@pytest.mark.parametrize(
    "identity",
    [
        role("AWSServiceRoleForElasticMapReduce", "emr"),
        role("AWSServiceRoleForEMRCleanup", "emr", path="/service-role/"),
        role("AWSServiceRoleForEMRCleanup", "emr", path="/aws-service-role-x/elasticmapreduce.amazonaws.com/"),
        # the reserved path, but the session is of another role (issuer and session must name the same role)
        {
            **role("Admin", "mallory"),
            "sessionContext": {
                "sessionIssuer": {
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/ec2.amazonaws.com/AWSServiceRoleForEC2"
                }
            },
        },
    ],
    ids=["name-at-root", "service-role-path", "look-alike-path", "issuer-mismatch"],
)
def test_a_role_merely_named_like_a_service_linked_role_remediates(identity: dict) -> None:
    assert classify(CloudTrailEvent(to_envelope(sg_open(identity))), RuntimeConfig()).kind == "unknown"
    f = finding(sg_open(identity))
    assert f.decision == "remediate", f


@pytest.mark.parametrize(
    "path", ["/", "/aws-reserved/", "/aws-reserved/sso.amazonaws.com.evil/", "/sso.amazonaws.com/"]
)
def test_a_role_merely_named_aws_reserved_sso_is_not_identity_center(path: str) -> None:
    ident = role("AWSReservedSSO_AdministratorAccess_0123456789abcdef", "sso", path=path, invokedBy="sso.amazonaws.com")
    caller = classify(CloudTrailEvent(to_envelope(attach_admin(ident))), RuntimeConfig())
    assert caller.kind not in ("identity-center", "trailguard")
    assert caller.can_silence is False or caller.kind in ("human", "unknown")
    f = finding(attach_admin(ident), ALL_NOTICE, rule="iam-admin-policy-attached")
    assert f.decision == "alert", f
    assert finding(sg_open(ident)).decision in ("remediate", "alert")


def test_invoked_by_sso_on_an_ordinary_role_cannot_pass_as_identity_center() -> None:
    f = finding(attach_admin(role("Admin", invokedBy="sso.amazonaws.com")), rule="iam-admin-policy-attached")
    assert f.decision == "alert" and f.caller is not None and f.caller.kind == "unknown"


# --------------------------------------------------------------------------- CloudFormation
def test_invoked_by_cloudformation_with_the_attackers_own_stack_alerts_never_silences() -> None:
    ident = role("mallory-stack-role", "AWSCloudFormation", invokedBy="cloudformation.amazonaws.com")
    for cfg in (RuntimeConfig(), ALL_NOTICE):
        f = finding(sg_open(ident, "cloudformation.amazonaws.com", sourceIPAddress="cloudformation.amazonaws.com"), cfg)
        assert f.decision == "alert" and f.silenced_by is None, f
        assert "caller is IaC (invokedBy cloudformation.amazonaws.com)" in f.reason


def test_a_session_named_awscloudformation_without_invoked_by_is_nobody_special() -> None:
    f = finding(sg_open(role("cfn-exec", "AWSCloudFormation"), "cloudformation.amazonaws.com"))
    assert f.decision == "remediate"


def test_an_ordinary_role_invoked_by_a_service_is_not_the_service_class() -> None:
    """SSM Automation, Step Functions and the like call whatever their user asks, with a role anyone can create."""
    ident = role("automation", "run", path="/service-role/", invokedBy="ssm.amazonaws.com")
    f = finding(sg_open(ident, "ssm.amazonaws.com"))
    assert f.decision == "remediate" and f.caller is not None and f.caller.kind == "unknown"


# --------------------------------------------------------------------------- iac_principals
@pytest.mark.parametrize(
    "pattern",
    [
        "arn:aws:iam::*:role/cfn-exec",
        "arn:aws:iam::????????????:role/cfn-exec",
        "arn:aws:iam::11112222333[0-9]:role/cfn-exec",
        "arn:*:iam::111122223333:role/cfn-exec",
        "arn:aws:*::111122223333:role/cfn-exec",
        "arn:aws:iam::111122223333:role/*",
        "arn:aws:iam::111122223333:*",
        "*",
    ],
)
def test_iac_principal_patterns_must_pin_a_literal_account(pattern: str) -> None:
    assert iac_principal_error(pattern) is not None
    with pytest.raises(ConfigError) as info:
        parse_config({"callers": {"iac_principals": [pattern]}}, "cfg.yaml")
    assert "callers.iac_principals" in "\n".join(info.value.problems)
    with pytest.raises(RuntimeConfigError, match=r"callers\.iac_principals"):
        RuntimeConfig.from_document({"callers": {"iac_principals": [pattern]}})


def test_a_pinned_iac_principal_does_not_cover_the_same_name_in_another_account() -> None:
    cfg = replace(
        ALL_NOTICE,
        iac_principal_patterns=(f"arn:aws:iam::{ACCOUNT}:role/terraform-ci",),
        caller_modes={"*": {"iac": "notice"}},
    )
    own = finding(sg_open(role("terraform-ci", "run")), cfg)
    assert own.decision == "skip" and own.silenced_by == "caller:iac"  # the operator's own, trusted choice
    rec = sg_open(role("terraform-ci", "run", account=OTHER), recipientAccountId=OTHER)
    assert finding(rec, cfg).decision == "remediate"


def test_the_class_remembered_on_an_event_is_never_reused_for_another_configuration() -> None:
    """classify remembers its answer on the event for speed (issue 19), keyed by the configuration object:
    an event judged under a configuration that trusts its role is judged afresh under one that does not."""
    trusting = replace(ALL_NOTICE, iac_principal_patterns=(f"arn:aws:iam::{ACCOUNT}:role/terraform-ci",))
    event = CloudTrailEvent(to_envelope(sg_open(role("terraform-ci", "run"))))
    assert classify(event, trusting).kind == "iac"
    assert classify(event, trusting) is classify(event, trusting)
    assert classify(event, RuntimeConfig()).kind == "unknown"
    assert classify(event, trusting).kind == "iac"


def test_callers_modes_cannot_unsilence_or_change_the_loop_guard_or_name_unknown_rules() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"callers": {"modes": {"*": {"trailguard": "remediate"}}}}, "cfg.yaml")
    assert "always 'notice'" in "\n".join(info.value.problems)
    with pytest.raises(ConfigError) as info:
        parse_config({"callers": {"modes": {"sg-public-typo": {"iac": "notice"}}}}, "cfg.yaml")
    assert "not a catalog rule id" in "\n".join(info.value.problems)


# --------------------------------------------------------------------------- property: case games with user agents
_TOOLS = ["Terraform/1.7.5", "terraform-provider-aws/5.45.0", "HashiCorp/1.0", "aws-cdk/2.130.0", "Pulumi/1.0",
          "pulumi-aws/v6.28.1", "cdk-assets/2.130.0"]  # fmt: skip


def _recase(text: str, flips: list[bool]) -> str:
    return "".join(c.swapcase() if flips[i % len(flips)] else c for i, c in enumerate(text))


@given(
    tool=st.sampled_from(_TOOLS),
    flips=st.lists(st.booleans(), min_size=1, max_size=16),
    prefix=st.sampled_from(["", "APN/1.0 ", "aws-sdk-go-v2/1.26.1 ", "[", "Mozilla/5.0 "]),
    suffix=st.sampled_from(["", " promise", " (+https://www.terraform.io)", "]", " os/linux"]),
    identity=st.sampled_from([USER, role("Admin"), role("AWSServiceRoleForX"), role("AWSReservedSSO_Admin_1")]),
)
@example(tool="TERRAFORM/1.7.5", flips=[False], prefix="", suffix="", identity=USER)
def test_user_agent_case_variations_never_produce_a_quieter_class(
    tool: str, flips: list[bool], prefix: str, suffix: str, identity: dict
) -> None:
    ua = prefix + _recase(tool, flips) + suffix
    rec = sg_open(identity, ua)
    caller = classify(CloudTrailEvent(to_envelope(rec)), ALL_NOTICE)
    assert caller.kind in ("iac", "human", "unknown"), caller
    assert caller.kind != "iac" or caller.can_silence is False
    # Documented: an IaC user agent lowers remediate to alert at most; never a notice, whatever the config.
    f = finding(rec, ALL_NOTICE if caller.kind == "iac" else RuntimeConfig())
    assert f.decision in ("remediate", "alert") and f.silenced_by is None
