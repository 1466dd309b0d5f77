"""IAM escalation and persistence rules against an attacker who names things to slip through (issue 14).

Attacker: an admin (or a stolen key) in one member account who picks user, group and role names, casing,
paths and user agents to make "for another user" look like "for myself", a privileged group or role look
ordinary, or a console pivot look like Identity Center. Every case runs through the whole catalog
(pattern match, decision, caller class), as the engine and replay do.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
OTHER = "444455556666"
IAM = "iam.amazonaws.com"
EV = Evaluator(cfg=RuntimeConfig())


def iam_user(
    name: str, *, account: str = ACCOUNT, path: str = "", with_name: bool = True, console: bool = False
) -> dict[str, Any]:
    ident: dict[str, Any] = {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE0000000001",
        "arn": f"arn:aws:iam::{account}:user/{path}{name}",
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLE000000009" if console else "AKIAEXAMPLE000000001",
    }
    if console:
        ident["invokedBy"] = "signin.amazonaws.com"
    if with_name:
        ident["userName"] = name
    return ident


def role_session(role: str, session: str, *, path: str = "") -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLE000000001",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{path}{role}", "userName": role},
            "attributes": {"mfaAuthenticated": "false"},
        },
    }


def record(name: str, request: Any, identity: dict[str, Any], *, source: str = IAM, **extra: Any) -> dict[str, Any]:
    rec = {
        "eventVersion": "1.09",
        "eventTime": "2026-10-01T13:00:00Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.17.20",
        "userIdentity": identity,
        "requestParameters": request,
        "responseElements": None,
        "eventID": "c0ffee00-0000-4000-8000-000000000001",
        "requestID": "c0ffee00-0000-4000-8000-000000000002",
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }
    rec.update(extra)
    return rec


def fired(rule_id: str, rec: dict[str, Any]) -> bool:
    findings = [f for f in EV.evaluate(rec).findings if f.rule == rule_id]
    assert len(findings) <= 1
    return bool(findings) and findings[0].decision in ("alert", "remediate")


KEY = "iam-ssh-key-or-certificate-for-other-user"
MFA = "iam-mfa-device-for-other-user"
SELF = "iam-policy-attached-to-self"
GROUP = "iam-user-added-to-privileged-group"
PASS = "iam-privileged-role-passed"
SIGNIN = "sts-signin-token-from-temporary-keys"


# --------------------------------------------------------------------------- "another user"
@pytest.mark.parametrize("target", ["alice-admin", "alice2", "alice.", "alice_", "@alice", "аlice"], ids=repr)
def test_lookalike_names_are_another_user(target: str) -> None:
    """A name that differs from the caller's by more than case is a different IAM user."""
    alice = iam_user("alice")
    assert fired(KEY, record("UploadSSHPublicKey", {"userName": target, "sSHPublicKeyBody": "ssh-ed25519 AAAA"}, alice))
    assert fired(MFA, record("EnableMFADevice", {"userName": target, "serialNumber": "arn:aws:iam::1:mfa/x"}, alice))


@pytest.mark.parametrize("target", ["alice", "Alice", "ALICE", " alice "], ids=repr)
def test_a_user_acting_on_itself_never_fires_another_user_rules(target: str) -> None:
    alice = iam_user("alice")
    assert not fired(KEY, record("UploadSSHPublicKey", {"userName": target, "sSHPublicKeyBody": "k"}, alice))
    assert not fired(KEY, record("UploadSigningCertificate", {"userName": target, "certificateBody": "c"}, alice))
    in_console = iam_user("alice", console=True)
    assert not fired(MFA, record("EnableMFADevice", {"userName": target, "serialNumber": "s"}, in_console))


def test_own_mfa_with_a_long_term_key_fires_for_that_reason_not_as_another_user() -> None:
    """The key type is set by AWS: a stolen key planting its own MFA device cannot pass as console self-service."""
    rec = record(
        "EnableMFADevice",
        {"userName": "ALICE", "serialNumber": "s"},
        iam_user("alice"),
        userAgent="signin.amazonaws.com",
    )
    (finding,) = [f for f in EV.evaluate(rec).findings if f.rule == MFA]
    assert finding.decision == "alert"
    assert "long-term access key" in finding.reason
    assert "enabled on user" not in finding.reason


def test_case_cannot_disguise_a_victim_as_oneself() -> None:
    """bob writing 'ALICE' is still acting on alice."""
    bob = iam_user("bob")
    assert fired(KEY, record("UploadSSHPublicKey", {"userName": "ALICE", "sSHPublicKeyBody": "k"}, bob))
    assert fired(MFA, record("EnableMFADevice", {"userName": "Alice", "serialNumber": "s"}, bob))


def test_caller_name_from_its_arn_when_userName_is_missing() -> None:
    """The caller's name comes from the last path segment of its ARN (paths do not make another user)."""
    alice = iam_user("alice", path="division/ops/", with_name=False)
    assert not fired(KEY, record("UploadSSHPublicKey", {"userName": "alice", "sSHPublicKeyBody": "k"}, alice))
    assert fired(KEY, record("UploadSSHPublicKey", {"userName": "ops", "sSHPublicKeyBody": "k"}, alice))


def test_a_user_of_another_account_with_the_same_name_is_not_oneself() -> None:
    foreign = iam_user("alice", account=OTHER)
    assert fired(KEY, record("UploadSSHPublicKey", {"userName": "alice", "sSHPublicKeyBody": "k"}, foreign))


@pytest.mark.parametrize(
    "identity",
    [
        role_session("alice", "alice"),
        role_session("Admin", "alice"),
        {"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT},
        {"type": "FederatedUser", "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/alice", "accountId": ACCOUNT},
    ],
    ids=["role-named-like-the-user", "session-named-like-the-user", "root", "federated-user-named-alice"],
)
def test_callers_without_a_user_name_cannot_pose_as_the_target(identity: dict[str, Any]) -> None:
    assert fired(KEY, record("UploadSSHPublicKey", {"userName": "alice", "sSHPublicKeyBody": "k"}, identity))
    assert fired(MFA, record("EnableMFADevice", {"userName": "alice", "serialNumber": "s"}, identity))


# --------------------------------------------------------------------------- self-grants
def test_self_attachment_through_case_and_paths() -> None:
    pol = f"arn:aws:iam::{ACCOUNT}:policy/extra"
    assert fired(
        SELF, record("AttachUserPolicy", {"userName": "ALICE", "policyArn": pol}, iam_user("alice", path="p/"))
    )
    me = role_session("ci-runner", "build", path="pipelines/")
    assert fired(SELF, record("AttachRolePolicy", {"roleName": "CI-RUNNER", "policyArn": pol}, me))


def test_a_role_named_like_the_callers_session_is_not_the_callers_role() -> None:
    """A session named 'deployer' of role Admin attaching to role 'deployer' is not a self-grant."""
    pol = f"arn:aws:iam::{ACCOUNT}:policy/extra"
    me = role_session("Admin", "deployer")
    assert not fired(SELF, record("AttachRolePolicy", {"roleName": "deployer", "policyArn": pol}, me))


# --------------------------------------------------------------------------- privileged groups and roles
@pytest.mark.parametrize("group", ["ADMINISTRATORS", "Admins", "team-Admin-ops", "POWERUSERS", "BreakGlass"])
def test_privileged_group_names_in_any_case(group: str) -> None:
    assert fired(GROUP, record("AddUserToGroup", {"groupName": group, "userName": "bob"}, role_session("Admin", "m")))


def test_an_innocuously_named_group_is_still_caught_when_the_user_adds_itself() -> None:
    """Naming is the only offline evidence of a privileged group; a self-add needs none."""
    alice = iam_user("alice")
    assert fired(GROUP, record("AddUserToGroup", {"groupName": "ops", "userName": "Alice"}, alice))
    assert not fired(GROUP, record("AddUserToGroup", {"groupName": "ops", "userName": "bob"}, alice))


@pytest.mark.parametrize(
    ("role_arn", "privileged"),
    [
        (f"arn:aws:iam::{ACCOUNT}:role/ORGANIZATIONACCOUNTACCESSROLE", True),
        (f"arn:aws:iam::{ACCOUNT}:role/service-role/OrganizationAccountAccessRole", True),
        (f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-us-east-1", True),
        (f"arn:aws:iam::{ACCOUNT}:role/Trailguard-Remediation", True),
        (f"arn:aws:iam::{ACCOUNT}:role/admin/thumbnailer", False),
        (f"arn:aws:iam::{ACCOUNT}:role/thumbnailer", False),
    ],
    ids=["upper-case", "with-path", "cdk-exec", "trailguard-own", "admin-only-in-path", "ordinary"],
)
def test_privileged_role_is_judged_by_its_name_not_its_path(role_arn: str, privileged: bool) -> None:
    rec = record(
        "CreateFunction20150331",
        {"functionName": "f", "role": role_arn, "runtime": "python3.12"},
        iam_user("alice"),
        source="lambda.amazonaws.com",
    )
    assert fired(PASS, rec) is privileged


def test_the_versioned_lambda_name_and_the_flat_profile_form_are_seen() -> None:
    rec = record(
        "UpdateFunctionConfiguration20150331v2",
        {"functionName": "f", "role": f"arn:aws:iam::{ACCOUNT}:role/AWSControlTowerExecution"},
        role_session("Admin", "m"),
        source="lambda.amazonaws.com",
    )
    assert fired(PASS, rec)
    flat = record(
        "AssociateIamInstanceProfile",
        {"instanceId": "i-1", "iamInstanceProfile": {"name": "ec2-admin"}},
        role_session("Admin", "m"),
        source="ec2.amazonaws.com",
    )
    assert fired(PASS, flat)
    assert fired("ec2-instance-profile-associated", flat)


# --------------------------------------------------------------------------- console pivots
def test_identity_center_cannot_be_claimed_by_user_agent_or_role_name() -> None:
    """Only the reserved /aws-reserved/sso.amazonaws.com/ path marks an Identity Center session."""
    portal_ua = "Jersey/${project.version}"
    fake = role_session("AWSReservedSSO_Admin_0123456789abcdef", "alice", path="sso/")
    rec = record(
        "GetSigninToken", None, fake, source="signin.amazonaws.com", userAgent=portal_ua, eventType="AwsConsoleSignIn"
    )
    assert fired(SIGNIN, rec)
    real = role_session("AWSReservedSSO_Admin_0123456789abcdef", "alice", path="aws-reserved/sso.amazonaws.com/")
    rec = record("GetSigninToken", None, real, source="signin.amazonaws.com", eventType="AwsConsoleSignIn")
    assert not fired(SIGNIN, rec)


def test_signin_token_is_seen_as_an_api_call_or_a_sign_in_event() -> None:
    fed = {"type": "FederatedUser", "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/x", "accountId": ACCOUNT}
    for etype in ("AwsConsoleSignIn", "AwsApiCall"):
        assert fired(SIGNIN, record("GetSigninToken", None, fed, source="signin.amazonaws.com", eventType=etype))


def test_a_fake_mfa_serial_is_the_callers_word_but_a_failed_call_never_fires() -> None:
    """GetSessionToken with a serial number succeeds only with a valid code: a failed call is no session."""
    alice = iam_user("alice")
    rec = record("GetSessionToken", {"serialNumber": "arn:aws:iam::1:mfa/x"}, alice, source="sts.amazonaws.com")
    assert not fired("sts-session-token-without-mfa", rec)
    rec = record("GetSessionToken", {}, alice, source="sts.amazonaws.com", errorCode="AccessDenied")
    assert not fired("sts-session-token-without-mfa", rec)
    assert fired("sts-session-token-without-mfa", record("GetSessionToken", {}, alice, source="sts.amazonaws.com"))


# --------------------------------------------------------------------------- policy documents
@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "IAM:*", "Resource": "*"},
        {"Effect": "Allow", "Action": ["iam:*"], "Resource": ["arn:aws:iam::*:*"]},
        {"Effect": "Allow", "Action": "*:*", "Resource": "*"},
        {"Effect": "Allow", "Action": ["iam:CreatePolicyVersion"], "Resource": "*"},
        {"Effect": "Allow", "NotAction": ["s3:*"], "Resource": "*"},
    ],
    ids=["upper-service", "iam-star-on-iam-arns", "star-star", "escalation-action", "not-action"],
)
def test_policy_spellings_do_not_hide_an_admin_default_version(statement: dict[str, Any]) -> None:
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    req = {"policyArn": f"arn:aws:iam::{ACCOUNT}:policy/p", "policyDocument": document, "setAsDefault": "true"}
    assert fired("iam-managed-policy-escalation", record("CreatePolicyVersion", req, role_session("Admin", "m")))


def test_a_version_left_non_default_is_caught_when_it_is_switched_on() -> None:
    """Create a permissive version quietly, activate it later: the second call is alerted on its own."""
    arn = f"arn:aws:iam::{ACCOUNT}:policy/p"
    admin = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    quiet = record(
        "CreatePolicyVersion", {"policyArn": arn, "policyDocument": admin, "setAsDefault": False}, iam_user("alice")
    )
    assert not fired("iam-managed-policy-escalation", quiet)
    switch = record("SetDefaultPolicyVersion", {"policyArn": arn, "versionId": "v2"}, iam_user("alice"))
    assert fired("iam-policy-default-version-set", switch)


def test_none_of_these_rules_ever_remediates() -> None:
    """Alert-only: nothing here may change an account, whatever the mode override."""
    ev = Evaluator(cfg=RuntimeConfig(mode_override="remediate"))
    rec = record("UploadSSHPublicKey", {"userName": "bob", "sSHPublicKeyBody": "k"}, iam_user("alice"))
    findings = [f for f in ev.evaluate(rec).findings if f.rule == KEY]
    assert findings and findings[0].decision == "alert"
    for rule in ev.rules:
        if rule.decision in {
            "managed_policy_escalation", "policy_default_version_set", "policy_attached_to_self",
            "user_added_to_privileged_group", "permissions_boundary_removed", "privileged_role_passed",
            "instance_profile_associated", "access_key_reactivated", "service_specific_credential",
            "key_material_for_other_user", "mfa_for_other_user", "identity_provider_modified",
            "rolesanywhere_profile_changed", "signin_token_minted", "session_token_without_mfa", "assume_root",
        }:  # fmt: skip
            assert rule.remediation is None, rule.id


@pytest.mark.parametrize(
    ("rule_id", "name", "source", "request_"),
    [
        (
            "sts-assume-root",
            "AssumeRoot",
            "sts.amazonaws.com",
            {"targetPrincipal": OTHER, "taskPolicyArn": {"arn": "x"}},
        ),
        ("sts-session-token-without-mfa", "GetSessionToken", "sts.amazonaws.com", {"durationSeconds": 129600}),
        ("sts-signin-token-from-temporary-keys", "GetSigninToken", "signin.amazonaws.com", None),
    ],
)
def test_token_calls_logged_read_only_are_still_delivered(rule_id: str, name: str, source: str, request_: Any) -> None:
    """STS logs its token calls read-only (AssumeRole is): a rule without read_only_events would never see them."""
    ident = (
        {"type": "FederatedUser", "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/x", "accountId": ACCOUNT}
        if source.startswith("signin")
        else iam_user("alice")
        if name == "GetSessionToken"
        else role_session("Admin", "m")
    )
    assert fired(rule_id, record(name, request_, ident, source=source, readOnly=True))


@pytest.mark.parametrize("policy", ["AdministratorAccess", "IAMFullAccess"])
def test_self_attaching_an_admin_policy_is_left_to_the_admin_rule_and_never_silent(policy: str) -> None:
    """iam-policy-attached-to-self defers these to iam-admin-policy-attached: the catalog as a whole still acts."""
    rec = record(
        "AttachUserPolicy", {"userName": "Alice", "policyArn": f"arn:aws:iam::aws:policy/{policy}"}, iam_user("alice")
    )
    result = EV.evaluate(rec)
    acting = {f.rule for f in result.findings if f.decision in ("alert", "remediate")}
    assert SELF not in acting
    assert "iam-admin-policy-attached" in acting


def test_a_differently_cased_admin_policy_arn_is_not_deferred() -> None:
    """If IAM accepted ``administratoraccess``, the admin rule's exact pattern would miss it: this rule does not defer."""
    rec = record(
        "AttachUserPolicy",
        {"userName": "alice", "policyArn": "arn:aws:iam::aws:policy/administratoraccess"},
        iam_user("alice"),
    )
    assert fired(SELF, rec)
