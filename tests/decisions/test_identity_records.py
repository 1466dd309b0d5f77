"""Unit tests of decisions/identity_records.py and the own-password extension of login_profile_for_other_user."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions.identity_records import CLOUDSHELL_AGENT, EXPOSED_KEY_POLICY, guardrail_words
from trailguard_engine.evaluate import decide
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
IAM = "iam.amazonaws.com"
KMS = "kms.amazonaws.com"
USER = {
    "type": "IAMUser",
    "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
    "accountId": ACCOUNT,
    "userName": "alice",
    "accessKeyId": "AKIAEXAMPLEALICE001",
}
SHELL = (
    "aws-cli/2.17.20 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.12.6 exec-env/CloudShell cfg/retry-mode#standard"
)
TOO_LARGE = {"omitted": True, "originalSize": 131072, "reason": "requestParameters too large"}
CRAFTED: list[Any] = [None, 7, True, [], {}, ["x"], {"a": 1}, "", " ", "\u0000", "x" * 5000]


def _pol(name: str) -> dict[str, str]:
    return {"policyArn": f"arn:aws:iam::{ACCOUNT}:policy/{name}"}


# --------------------------------------------------------------------------- change record
def test_group_and_boundary_record_names_the_resource_with_its_type(run, ev):
    rule = "iam-group-or-boundary-changed"
    a = run(rule, ev("AddUserToGroup", {"groupName": "Developers", "userName": "bob"}, source=IAM))
    assert a.risky and a.resource == {"type": "AWS::IAM::Group", "id": "Developers"}
    assert "change record" in a.reason
    a = run(rule, ev("PutRolePermissionsBoundary", {"roleName": "ci", "permissionsBoundary": "arn:x"}, source=IAM))
    assert a.risky and a.resource == {"type": "AWS::IAM::Role", "id": "ci"}
    a = run(rule, ev("DeleteUserPermissionsBoundary", {"userName": "bob"}, source=IAM))
    assert a.risky and a.resource == {"type": "AWS::IAM::User", "id": "bob"}
    a = run(rule, ev("DeleteGroup", {"GROUPNAME": "Auditors"}, source=IAM))  # field names compare case-insensitively
    assert a.risky and a.resource == {"type": "AWS::IAM::Group", "id": "Auditors"}


def test_group_record_is_kept_without_a_readable_resource(run, ev):
    for request in (None, TOO_LARGE, {"groupName": ""}, {"groupName": {"x": 1}}, {"groupName": [1]}):
        a = run("iam-group-or-boundary-changed", ev("PutGroupPolicy", request, source=IAM))
        assert a.risky and a.resource == {}


def test_record_skips_an_aws_service_identity(run, ev):
    svc = {"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}
    assert not run(
        "iam-group-or-boundary-changed", ev("DeleteGroup", {"groupName": "g"}, identity=svc, source=IAM)
    ).risky
    assert not run("kms-key-changed", ev("ImportKeyMaterial", {"keyId": "k"}, identity=svc, source=KMS)).risky


def test_kms_record_covers_policy_and_material(run, ev):
    for name in ("PutKeyPolicy", "ImportKeyMaterial", "DeleteImportedKeyMaterial"):
        a = run("kms-key-changed", ev(name, {"keyId": "1b2c"}, source=KMS))
        assert a.risky and a.resource == {"type": "AWS::KMS::Key", "id": "1b2c"}


def test_failed_record_call_is_skipped_by_the_engine(ev):
    rule = rules_by_id()["iam-group-or-boundary-changed"]
    failed = ev("AddUserToGroup", {"groupName": "g", "userName": "u"}, source=IAM, errorCode="AccessDenied")
    assert decide(failed, rule, RuntimeConfig()).decision == "skip"


# --------------------------------------------------------------------------- guardrail policy deleted
@pytest.mark.parametrize(
    "name",
    [
        "DenyBoundary",
        "DeveloperPermissionsBoundary",
        "deny-s3-delete",
        "guardrails/ec2-limits",
        "RestrictRegions",
        "scp-baseline",
        "SCPBaseline",
        "ScpCopy",
        "org_scp",
        "SECURITY/QUARANTINE-users",
        "permission-boundaries/dev",
    ],
)
def test_guardrail_named_policy_deleted_alerts(run, ev, name):
    a = run("iam-guardrail-policy-deleted", ev("DeletePolicy", _pol(name), source=IAM))
    assert a.risky, a.reason
    assert a.resource == {"type": "AWS::IAM::ManagedPolicy", "id": f"arn:aws:iam::{ACCOUNT}:policy/{name}"}
    assert not a.remediable


@pytest.mark.parametrize(
    "name", ["ReportsReadOnly", "UnrestrictedSandbox", "javascript-builds", "Escape-hatch", "AdministratorAccess2"]
)
def test_ordinary_policy_deleted_is_skipped(run, ev, name):
    assert not run("iam-guardrail-policy-deleted", ev("DeletePolicy", _pol(name), source=IAM)).risky


def test_guardrail_words_are_reported():
    assert guardrail_words("guardrails/DenyBoundary_SCP") == ["guardrail", "deny", "boundary", "scp"]
    assert guardrail_words("unrestricted-access") == []


@pytest.mark.parametrize("value", CRAFTED)
def test_guardrail_decision_survives_crafted_requests(run, ev, value):
    a = run("iam-guardrail-policy-deleted", ev("DeletePolicy", {"policyArn": value}, source=IAM))
    assert not a.risky
    assert not run("iam-guardrail-policy-deleted", ev("DeletePolicy", value, source=IAM)).risky


def test_guardrail_decision_ignores_other_calls_and_non_policy_arns(run, ev):
    assert not run("iam-guardrail-policy-deleted", ev("DeletePolicyVersion", _pol("DenyAll"), source=IAM)).risky
    arn = {"policyArn": "arn:aws:s3:::deny-bucket"}
    assert not run("iam-guardrail-policy-deleted", ev("DeletePolicy", arn, source=IAM)).risky


# --------------------------------------------------------------------------- CloudShell IAM changes
def test_cloudshell_agent_spellings():
    assert CLOUDSHELL_AGENT.search(SHELL)
    assert CLOUDSHELL_AGENT.search("aws-sdk-go-v2/1.30 EXEC_ENV/cloudshell")
    assert not CLOUDSHELL_AGENT.search("aws-cli/2.17.20 os/linux exec-env/EC2")
    assert not CLOUDSHELL_AGENT.search("CloudShellHelper/1.0")  # the word alone is not the execution environment


def test_cloudshell_access_key_for_oneself_alerts(run, ev):
    resp = {"accessKey": {"accessKeyId": "AKIANEWKEY0001", "userName": "alice"}}
    a = run("iam-change-from-cloudshell", ev("CreateAccessKey", None, resp, identity=USER, source=IAM, userAgent=SHELL))
    assert a.risky
    assert a.resource == {"type": "AWS::IAM::User", "id": "alice"}
    assert "AKIANEWKEY0001" in a.reason


def test_cloudshell_attach_names_the_role(run, ev):
    req = {"roleName": "ci", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
    a = run("iam-change-from-cloudshell", ev("AttachRolePolicy", req, source=IAM, userAgent=SHELL))
    assert a.risky and a.resource == {"type": "AWS::IAM::Role", "id": "ci"}


def test_same_call_outside_cloudshell_is_skipped(run, ev):
    for ua in ("aws-cli/2.17.20 os/linux", "", None, 12):
        detail = {"userAgent": ua} if ua is not None else {}
        assert not run("iam-change-from-cloudshell", ev("CreateUser", {"userName": "x"}, source=IAM, **detail)).risky


@pytest.mark.parametrize("value", CRAFTED)
def test_cloudshell_decision_survives_crafted_requests(run, ev, value):
    a = run("iam-change-from-cloudshell", ev("CreateUser", {"userName": value}, source=IAM, userAgent=SHELL))
    assert a.risky
    a = run("iam-change-from-cloudshell", ev("PutUserPolicy", value, {"accessKey": value}, source=IAM, userAgent=SHELL))
    assert a.risky


# --------------------------------------------------------------------------- exposed-key inline quarantine
def _q(name: str, policy_name: Any, doc: Any = None, **kw: Any) -> tuple[str, dict[str, Any]]:
    req: dict[str, Any] = {"userName": "build-bot", "policyName": policy_name}
    if doc is not None:
        req["policyDocument"] = doc
    return name, req


DENY_DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iam:CreateUser", "Resource": "*"}]}
ALLOW_DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def test_quarantine_names():
    for n in ("AWSExposedCredentialPolicy_DO_NOT_REMOVE", "awsexposedcredentialpolicy_do_not_remove",
              "AWSCompromisedKeyQuarantine", "AWSCompromisedKeyQuarantineV3"):  # fmt: skip
        assert EXPOSED_KEY_POLICY.match(n), n
    for n in ("AWSExposedCredentialPolicy", "MyAWSCompromisedKeyQuarantine", "reports-read", ""):
        assert not EXPOSED_KEY_POLICY.match(n), n


def test_quarantine_put_and_delete_alert(run, ev):
    name, req = _q("PutUserPolicy", "AWSExposedCredentialPolicy_DO_NOT_REMOVE", json.dumps(DENY_DOC))
    a = run("iam-exposed-key-inline-quarantine", ev(name, req, identity=USER, source=IAM))
    assert a.risky and "published" in a.reason and "ALLOWS" not in a.reason
    assert a.resource == {"type": "AWS::IAM::User", "id": "build-bot"}
    name, req = _q("DeleteUserPolicy", "AWSExposedCredentialPolicy_DO_NOT_REMOVE")
    a = run("iam-exposed-key-inline-quarantine", ev(name, req, source=IAM))
    assert a.risky and "lifted" in a.reason


def test_quarantine_lookalike_that_allows_is_called_out(run, ev):
    for doc in (ALLOW_DOC, json.dumps(ALLOW_DOC), quote(json.dumps(ALLOW_DOC))):
        name, req = _q("PutUserPolicy", "AWSExposedCredentialPolicy_DO_NOT_REMOVE", doc)
        a = run("iam-exposed-key-inline-quarantine", ev(name, req, source=IAM))
        assert a.risky and "ALLOWS" in a.reason


def test_other_inline_policies_are_skipped(run, ev):
    name, req = _q("PutUserPolicy", "reports-read", json.dumps(ALLOW_DOC))
    assert not run("iam-exposed-key-inline-quarantine", ev(name, req, source=IAM)).risky
    name, req = _q("DeleteUserPolicy", "reports-read")
    assert not run("iam-exposed-key-inline-quarantine", ev(name, req, source=IAM)).risky
    name, req = _q("PutRolePolicy", "AWSExposedCredentialPolicy_DO_NOT_REMOVE")
    assert not run("iam-exposed-key-inline-quarantine", ev(name, req, source=IAM)).risky


def test_quarantine_put_too_large_alerts(run, ev):
    a = run("iam-exposed-key-inline-quarantine", ev("PutUserPolicy", TOO_LARGE, source=IAM))
    assert a.risky and "too large" in a.reason
    assert not run("iam-exposed-key-inline-quarantine", ev("DeleteUserPolicy", TOO_LARGE, source=IAM)).risky


@pytest.mark.parametrize("value", CRAFTED)
def test_quarantine_decision_survives_crafted_requests(run, ev, value):
    for name in ("PutUserPolicy", "DeleteUserPolicy"):
        assert not run("iam-exposed-key-inline-quarantine", ev(name, _q(name, value)[1], source=IAM)).risky
        run("iam-exposed-key-inline-quarantine", ev(name, value, source=IAM))  # never raises
    _, req = _q("PutUserPolicy", "AWSExposedCredentialPolicy_DO_NOT_REMOVE", value)
    assert run("iam-exposed-key-inline-quarantine", ev("PutUserPolicy", {**req, "userName": value}, source=IAM)).risky


# --------------------------------------------------------------------------- own console password with keys
LOGIN = "iam-login-profile-for-other-user"


@pytest.mark.parametrize("name", ["CreateLoginProfile", "UpdateLoginProfile"])
def test_own_password_set_with_access_keys_alerts(run, ev, name):
    for req in ({"userName": "alice"}, None, {}):
        a = run(LOGIN, ev(name, req, identity=USER, source=IAM))
        assert a.risky, (req, a.reason)
        assert a.resource == {"type": "AWS::IAM::User", "id": "alice"}
        assert "AKIAEXAMPLEALICE001" in a.reason


@pytest.mark.parametrize("flag", ["true", "TRUE", True])
def test_own_password_from_a_console_session_is_skipped(run, ev, flag):
    console = {**USER, "accessKeyId": "ASIACONSOLE0001"}
    a = run(LOGIN, ev("UpdateLoginProfile", {"userName": "alice"}, identity=console, sessionCredentialFromConsole=flag))
    assert not a.risky


def test_own_password_removed_or_without_credentials_is_skipped(run, ev):
    assert not run(LOGIN, ev("DeleteLoginProfile", {"userName": "alice"}, identity=USER, source=IAM)).risky
    no_key = {k: v for k, v in USER.items() if k != "accessKeyId"}
    assert not run(LOGIN, ev("UpdateLoginProfile", {"userName": "alice"}, identity=no_key, source=IAM)).risky


def test_own_password_with_temporary_non_console_keys_alerts(run, ev):
    session = {**USER, "accessKeyId": "ASIASESSIONTOKEN01"}
    for flag in ("false", None, 1):
        detail = {} if flag is None else {"sessionCredentialFromConsole": flag}
        assert run(LOGIN, ev("UpdateLoginProfile", {"userName": "alice"}, identity=session, **detail)).risky


def test_other_user_password_still_alerts(run, ev):
    assert run(LOGIN, ev("UpdateLoginProfile", {"userName": "bob"}, identity=USER, source=IAM)).risky
