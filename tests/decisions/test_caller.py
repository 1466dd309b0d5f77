"""The caller classifier (``trailguard_engine.caller``) and the per-caller-class modes in ``evaluate.decide``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from caller_helpers import (
    ACCOUNT,
    CDK_UA,
    CLI_UA,
    CONSOLE_UA,
    ENGINE_ACCOUNT,
    OTHER,
    PULUMI_UA,
    TERRAFORM_UA,
    attach_admin,
    aws_service,
    cfn_service_role,
    ct_event,
    iam_user,
    record,
    role_session,
    root,
    slr,
    sso_provisioning,
    sso_user,
)
from trailguard_engine.caller import CALLER_KINDS, DEFAULT_CALLER_MODES, Caller, classify, iac_principal_error
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.evaluate import LOOP_GUARD, Evaluator
from trailguard_engine.exceptions import RuntimeConfigError
from trailguard_engine.model import Finding
from trailguard_engine.runtime_config import RuntimeConfig

CFG = RuntimeConfig(engine_account=ENGINE_ACCOUNT)
SG_RULE = "ec2-security-group-ingress-public"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def kind_of(identity: dict[str, Any], cfg: RuntimeConfig = CFG, **kw: Any) -> Caller:
    return classify(ct_event(record(identity, **kw)), cfg)


def sg_finding(identity: dict[str, Any], cfg: RuntimeConfig = CFG, **kw: Any) -> Finding:
    result = Evaluator(cfg=cfg).evaluate(record(identity, **kw), only_rule=SG_RULE)
    assert len(result.findings) == 1
    return result.findings[0]


# --------------------------------------------------------------------------- classes from realistic records
@pytest.mark.parametrize(
    ("identity", "ua", "kind", "why"),
    [
        (iam_user(), CLI_UA, "human", "IAM user"),
        (iam_user(invoked_by="signin.amazonaws.com"), CONSOLE_UA, "human", "IAM user"),
        (root(), CONSOLE_UA, "human", "root"),
        (root(), TERRAFORM_UA, "human", "root"),  # root is always a person, whatever tool it uses
        (sso_user(), CLI_UA, "human", "Identity Center user session (AWSReservedSSO_AdministratorAccess"),
        (role_session("Admin", "alice", console=True), CONSOLE_UA, "human", "console session of role Admin"),
        (role_session("Admin", "alice", mfa=True), CLI_UA, "human", "MFA-authenticated"),
        (role_session("ci-deployer", "build-42"), CLI_UA, "unknown", "session of role ci-deployer"),
        ({"type": "AWSAccount", "principalId": "AIDAX", "accountId": OTHER}, CLI_UA, "unknown", "AWSAccount"),
        ({}, CLI_UA, "unknown", "missing"),
        (cfn_service_role(), "cloudformation.amazonaws.com", "iac", "invokedBy cloudformation.amazonaws.com"),
        (
            role_session(
                "cdk-hnb659fds-cfn-exec-role-111122223333-us-east-1",
                "AWSCloudFormation",
                invoked_by="cloudformation.amazonaws.com",
            ),
            "cloudformation.amazonaws.com",
            "iac",
            "invokedBy cloudformation",
        ),
        (iam_user(invoked_by="cloudformation.amazonaws.com"), "cloudformation.amazonaws.com", "iac", "invokedBy"),
        (role_session("terraform-ci", "gh-run-7"), TERRAFORM_UA, "iac", "Terraform user agent"),
        (role_session("deployer", "cdk"), CDK_UA, "iac", "AWS CDK user agent"),
        (role_session("deployer", "pulumi"), PULUMI_UA, "iac", "Pulumi user agent"),
        (iam_user("ops"), "[" + TERRAFORM_UA + "]", "iac", "Terraform user agent"),
        (aws_service("ec2.amazonaws.com"), "ec2.amazonaws.com", "service", "invoked by ec2.amazonaws.com"),
        (
            slr("elasticmapreduce.amazonaws.com", "AWSServiceRoleForEMRCleanup", "EMRCleanupSession"),
            "elasticmapreduce.amazonaws.com",
            "service",
            "service-linked role AWSServiceRoleForEMRCleanup",
        ),
        (
            slr("imagebuilder.amazonaws.com", "AWSServiceRoleForImageBuilder", "ImageBuilder"),
            "imagebuilder.amazonaws.com",
            "service",
            "AWSServiceRoleForImageBuilder",
        ),
        (
            slr("autoscaling.amazonaws.com", "AWSServiceRoleForAutoScaling", "AutoScaling", invoked_by=None),
            "autoscaling.amazonaws.com",
            "service",
            "AWSServiceRoleForAutoScaling",
        ),
        (
            role_session(
                "AWSDataLifecycleManagerDefaultRole", "dlm", path="/service-role/", invoked_by="dlm.amazonaws.com"
            ),
            "dlm.amazonaws.com",
            "unknown",
            "invokedBy dlm.amazonaws.com (not a service-linked role)",
        ),
        (sso_provisioning(), "sso.amazonaws.com", "identity-center", "AWSServiceRoleForSSO"),
        (aws_service("sso.amazonaws.com"), "sso.amazonaws.com", "identity-center", "sso.amazonaws.com"),
        (
            role_session("trailguard-remediation", "trailguard-remediation"),
            "Boto3/1.34",
            "trailguard",
            "trailguard-remediation",
        ),
        (
            role_session("trailguard-engine", "trailguard-engine", account=ENGINE_ACCOUNT),
            "Boto3/1.34",
            "trailguard",
            "trailguard-engine",
        ),
    ],
)
def test_classify_realistic_records(identity: dict[str, Any], ua: str, kind: str, why: str) -> None:
    caller = kind_of(identity, user_agent=ua)
    assert caller.kind == kind, caller
    assert why in caller.why
    assert (caller.pipeline != "") == (kind == "iac")


@pytest.mark.parametrize(
    ("identity", "ua"),
    [
        (cfn_service_role(), "cloudformation.amazonaws.com"),
        (iam_user(invoked_by="cloudformation.amazonaws.com"), "cloudformation.amazonaws.com"),
        (role_session("terraform-ci", "run"), TERRAFORM_UA),
        (role_session("deployer", "cdk"), CDK_UA),
        (role_session("deployer", "pulumi"), PULUMI_UA),
    ],
)
def test_forgeable_evidence_can_never_silence(identity: dict[str, Any], ua: str) -> None:
    assert kind_of(identity, user_agent=ua).can_silence is False


@pytest.mark.parametrize(
    "identity",
    [
        aws_service("ec2.amazonaws.com"),
        sso_provisioning(),
        slr("elasticmapreduce.amazonaws.com", "AWSServiceRoleForEMR", "s"),
    ],
)
def test_unforgeable_evidence_can_silence(identity: dict[str, Any]) -> None:
    assert kind_of(identity).can_silence is True


def test_pipeline_names_the_principal_and_tool() -> None:
    assert kind_of(cfn_service_role()).pipeline == f"CloudFormation via arn:aws:iam::{ACCOUNT}:role/cfn-exec"
    tf = kind_of(role_session("terraform-ci", "run-1"), user_agent=TERRAFORM_UA)
    assert tf.pipeline == f"Terraform via arn:aws:iam::{ACCOUNT}:role/terraform-ci"
    user = kind_of(iam_user("deploy", invoked_by="cloudformation.amazonaws.com"))
    assert user.pipeline == f"CloudFormation via arn:aws:iam::{ACCOUNT}:user/deploy"


def test_pipeline_is_the_stack_when_cloudformation_tagged_the_resource() -> None:
    request = {
        "groupName": "web",
        "groupDescription": "web",
        "vpcId": "vpc-0123456789abcdef0",
        "tagSpecificationSet": {
            "items": [
                {
                    "resourceType": "security-group",
                    "tags": [
                        {"key": "aws:cloudformation:stack-name", "value": "web-prod"},
                        {"key": "aws:cloudformation:logical-id", "value": "WebSg"},
                    ],
                }
            ]
        },
    }
    caller = kind_of(cfn_service_role(), name="CreateSecurityGroup", request=request)
    assert caller.kind == "iac" and caller.pipeline == "web-prod"


def test_pipeline_is_the_stack_for_cloudformations_own_calls() -> None:
    arn = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/net-core/0f6a2c3e-1b2d-4c5e-8f90-123456789abc"
    caller = kind_of(
        role_session("deployer", "cdk"),
        user_agent=CDK_UA,
        name="UpdateStack",
        source="cloudformation.amazonaws.com",
        request={"stackName": arn},
    )
    assert caller.pipeline == "net-core"


def test_iac_principals_are_trusted_iac_and_pinned_to_their_account() -> None:
    cfg = replace(CFG, iac_principal_patterns=(f"arn:aws:iam::{ACCOUNT}:role/cfn-exec*",))
    caller = kind_of(cfn_service_role("cfn-exec-network"), cfg)
    assert caller.kind == "iac" and caller.can_silence is True
    assert caller.why == f"iac_principals: arn:aws:iam::{ACCOUNT}:role/cfn-exec*"
    assert caller.pipeline == f"CloudFormation via arn:aws:iam::{ACCOUNT}:role/cfn-exec-network"
    # The same role name in another account is not the pipeline (it is forgeable CloudFormation at most).
    other = kind_of(
        role_session("cfn-exec-network", "AWSCloudFormation", account=OTHER, invoked_by="cloudformation.amazonaws.com"),
        cfg,
        account=OTHER,
    )
    assert other.kind == "iac" and other.can_silence is False
    assert kind_of(role_session("cfn-exec-network", "x", account=OTHER), cfg, account=OTHER).kind == "unknown"


def test_iac_principals_match_the_session_arn_too() -> None:
    cfg = replace(CFG, iac_principal_patterns=(f"arn:aws:sts::{ACCOUNT}:assumed-role/terraform-ci/*",))
    caller = kind_of(role_session("terraform-ci", "gh-run-7"), cfg)
    assert caller.kind == "iac" and caller.can_silence and caller.pipeline.endswith("role/terraform-ci")


def test_classify_never_raises_on_mistyped_identities() -> None:
    weird: list[Any] = [
        {"type": 7, "arn": None, "invokedBy": ["x"], "sessionContext": "nope"},
        {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"arn": 5}}},
        {"type": "AWSService"},
    ]
    for ident in weird:
        assert classify(ct_event(record(ident, user_agent="x")), CFG).kind in CALLER_KINDS


# --------------------------------------------------------------------------- modes in decide
def test_human_and_unknown_callers_get_the_rule_mode() -> None:
    for ident in (iam_user(), role_session("Admin", "mallory"), sso_user()):
        f = sg_finding(ident)
        assert f.decision == "remediate" and f.caller is not None
        assert f.to_json()["caller"] in ("human", "unknown")


def test_iac_alerts_and_says_why() -> None:
    f = sg_finding(cfn_service_role(), user_agent="cloudformation.amazonaws.com")
    assert f.decision == "alert" and f.action is None
    assert "(caller is IaC (invokedBy cloudformation.amazonaws.com): alert only)" in f.reason
    assert f.to_json()["caller"] == "iac"


def test_service_notice_is_a_silenced_skip_naming_the_class() -> None:
    f = sg_finding(slr("elasticmapreduce.amazonaws.com", "AWSServiceRoleForEMRCleanup", "s"))
    assert f.decision == "skip" and f.silenced_by == "caller:service"
    assert f.reason.startswith("caller is an AWS service (service-linked role AWSServiceRoleForEMRCleanup")
    assert "notice only" in f.reason and f.to_json()["silenced_by"] == "caller:service"


def test_identity_center_provisioning_an_admin_permission_set_is_a_notice() -> None:
    rec = record(sso_provisioning(), name="AttachRolePolicy", source="iam.amazonaws.com", request=attach_admin())
    (f,) = Evaluator(cfg=CFG).evaluate(rec, only_rule="iam-admin-policy-attached").findings
    assert f.decision == "skip" and f.silenced_by == "caller:identity-center"


def test_a_person_in_an_identity_center_session_attaching_admin_is_still_alerted() -> None:
    rec = record(sso_user(), name="AttachRolePolicy", source="iam.amazonaws.com", request=attach_admin("Dev"))
    (f,) = Evaluator(cfg=CFG).evaluate(rec, only_rule="iam-admin-policy-attached").findings
    assert f.decision == "alert" and f.caller == Caller("human", f.caller.why)


def test_trailguard_class_is_the_loop_guard() -> None:
    f = sg_finding(role_session("trailguard-remediation", "trailguard-remediation"))
    assert f.decision == "skip" and f.silenced_by == LOOP_GUARD
    assert f.reason.startswith("loop guard: made by trailguard's own role")
    assert f.caller is not None and f.caller.kind == "trailguard"


def test_the_least_of_rule_mode_and_class_mode_wins() -> None:
    alert_rule = replace(CFG, rule_modes={SG_RULE: "alert"})
    assert sg_finding(iam_user(), alert_rule).decision == "alert"
    assert "alert only" not in sg_finding(cfn_service_role(), alert_rule).reason  # the rule already alerts
    off = replace(CFG, rule_modes={SG_RULE: "off"})
    assert sg_finding(cfn_service_role(), off).reason == "rule is off"
    override = CFG.with_override("remediate")
    assert sg_finding(cfn_service_role(), override).decision == "alert"


def test_config_modes_override_the_rule_per_rule_then_star() -> None:
    cfg = replace(CFG, caller_modes={"*": {"human": "alert"}, SG_RULE: {"human": "remediate", "unknown": "notice"}})
    assert sg_finding(iam_user(), cfg).decision == "remediate"  # the rule entry beats '*'
    f = sg_finding(role_session("Admin", "x"), cfg)
    assert f.decision == "skip" and f.silenced_by == "caller:unknown" and "config callers.modes" in f.reason
    rule = rules_by_id()["cloudtrail-stop-logging"]
    assert cfg.caller_mode_for(rule, "human") == ("alert", "config callers.modes['*']")
    assert cfg.caller_mode_for(rule, "iac") == ("alert", "rule caller_modes")
    assert cfg.caller_mode_for(rule, "trailguard") == ("notice", "loop guard")


def test_trusted_iac_principals_can_be_set_to_notice_forgeable_iac_cannot() -> None:
    cfg = replace(
        CFG,
        iac_principal_patterns=(f"arn:aws:iam::{ACCOUNT}:role/cfn-exec",),
        caller_modes={"*": {"iac": "notice"}},
    )
    trusted = sg_finding(cfn_service_role("cfn-exec"), cfg)
    assert trusted.decision == "skip" and trusted.silenced_by == "caller:iac"
    for ident, ua in ((cfn_service_role("attacker-stack-role"), CLI_UA), (role_session("ci", "r"), TERRAFORM_UA)):
        f = sg_finding(ident, cfg, user_agent=ua)
        assert f.decision == "alert", f
        assert "that evidence can be forged, so never a notice" in f.reason


def test_a_rule_without_caller_modes_uses_the_defaults() -> None:
    rule = replace(rules_by_id()[SG_RULE], caller_modes={})
    for kind in CALLER_KINDS:
        assert CFG.caller_mode_for(rule, kind)[0] == DEFAULT_CALLER_MODES[kind]


def test_findings_of_non_risky_events_carry_no_caller() -> None:
    rec = record(
        iam_user(),
        request={
            "groupId": "sg-0123456789abcdef0",
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "tcp",
                        "fromPort": 443,
                        "toPort": 443,
                        "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                    }
                ]
            },
        },
    )
    (f,) = Evaluator(cfg=CFG).evaluate(rec, only_rule=SG_RULE).findings
    assert f.decision == "skip" and f.caller is None and "caller" not in f.to_json()


# --------------------------------------------------------------------------- runtime config
def test_runtime_document_callers_section_parses() -> None:
    cfg = RuntimeConfig.from_document(
        {
            "callers": {
                "iac_principals": [
                    f"arn:aws:iam::{ACCOUNT}:role/cfn-exec",
                    f"arn:aws:sts::{ACCOUNT}:assumed-role/tf/*",
                ],
                "modes": {"*": {"iac": "notice"}, SG_RULE: {"service": "alert"}},
            }
        }
    )
    assert cfg.iac_principal_patterns == (
        f"arn:aws:iam::{ACCOUNT}:role/cfn-exec",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/tf/*",
    )
    assert cfg.caller_modes == {"*": {"iac": "notice"}, SG_RULE: {"service": "alert"}}
    assert RuntimeConfig.from_document({}).caller_modes == {}


@pytest.mark.parametrize(
    ("callers", "message"),
    [
        ("nope", "callers: expected an object"),
        ({"iac_principal": []}, "callers: unknown keys"),
        ({"iac_principals": ["arn:aws:iam::*:role/cfn-exec"]}, "callers.iac_principals"),
        ({"iac_principals": ["arn:aws:iam::1111222233*:role/cfn-exec"]}, "callers.iac_principals"),
        ({"iac_principals": ["arn:*:iam::111122223333:role/cfn-exec"]}, "must be literal"),
        ({"iac_principals": ["arn:aws:iam::111122223333:role/*"]}, "callers.iac_principals"),
        ({"iac_principals": ["arn:aws:iam::111122223333:*"]}, "callers.iac_principals"),
        ({"iac_principals": [7]}, "callers.iac_principals"),
        ({"modes": []}, "callers.modes"),
        ({"modes": {"Not A Rule": {"iac": "alert"}}}, "expected a rule id or '*'"),
        ({"modes": {"*": {"robots": "alert"}}}, "unknown caller kind 'robots'"),
        ({"modes": {"*": {"iac": "off"}}}, "callers.modes['*'].iac: expected one of"),
        ({"modes": {"*": {"trailguard": "remediate"}}}, "always 'notice'"),
        ({"modes": {"*": "alert"}}, "expected an object of caller kind"),
    ],
)
def test_runtime_document_bad_callers_name_the_field(callers: Any, message: str) -> None:
    with pytest.raises(RuntimeConfigError) as info:
        RuntimeConfig.from_document({"callers": callers})
    assert message in str(info.value) and "runtime config: callers" in str(info.value)


@pytest.mark.parametrize(
    "pattern",
    [
        "arn:aws:iam::111122223333:role/cfn-exec",
        "arn:aws:iam::111122223333:role/pipelines/cfn-exec-*",
        "arn:aws:iam::111122223333:user/terraform",
        "arn:aws:sts::111122223333:assumed-role/terraform-ci/*",
    ],
)
def test_account_pinned_iac_principals_are_accepted(pattern: str) -> None:
    assert iac_principal_error(pattern) is None


# --------------------------------------------------------------------------- the shared corpus
@pytest.mark.corpus
def test_corpus_records_classify_as_their_shapes_say() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not present at {CORPUS}")
    seen: dict[str, int] = {}
    for path in sorted(CORPUS.glob("**/*.jsonl")):
        if path.name.endswith(".labels.jsonl"):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                ev = ct_event(rec)
            except Exception:  # records the engine rejects are not classified
                continue
            caller = classify(ev, CFG)
            seen[caller.kind] = seen.get(caller.kind, 0) + 1
            issuer = ev.session_issuer_arn
            if "/aws-service-role/sso.amazonaws.com/AWSServiceRoleForSSO" in issuer:
                assert caller.kind == "identity-center", rec
            if ev.identity_type == "AWSService":
                assert caller.kind in ("service", "identity-center"), rec
            if "Terraform/" in ev.user_agent and ev.identity_type in ("IAMUser", "AssumedRole"):
                assert caller.kind == "iac" and not caller.can_silence, rec
            if ev.identity_type == "Root":
                assert caller.kind == "human", rec
    assert seen.get("iac", 0) > 100 and seen.get("human", 0) > 0 and seen.get("service", 0) > 0
