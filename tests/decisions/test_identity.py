"""Unit tests of the identity decision functions (decisions/identity.py)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
OTHER = "444455556666"
IAM = "iam.amazonaws.com"
USER = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT, "userName": "alice"}
ROOT = {"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}


def doc(*stmts):
    return json.dumps({"Version": "2012-10-17", "Statement": list(stmts)})


# --------------------------------------------------------------------------- root
def test_root_activity_exclusions(run, ev):
    assert run("root-activity", ev("ListBuckets", {}, identity=ROOT, source="s3.amazonaws.com")).risky
    assert not run(
        "root-activity", ev("ListBuckets", {}, identity={**ROOT, "invokedBy": "cloudformation.amazonaws.com"})
    ).risky
    assert not run("root-activity", ev("AWSHealthEvent", None, identity=ROOT, eventType="AwsServiceEvent")).risky
    assert not run("root-activity", ev("ListBuckets", {}, identity=USER)).risky


def test_root_access_key(run, ev):
    resp = {"accessKey": {"accessKeyId": "AKIAROOT0001", "status": "Active"}}
    a = run("root-access-key-created", ev("CreateAccessKey", None, resp, identity=ROOT, source=IAM))
    assert a.risky
    assert a.remediable
    assert a.params == {"access_key_id": "AKIAROOT0001"}
    a = run("root-access-key-created", ev("CreateAccessKey", None, None, identity=ROOT, source=IAM))
    assert a.risky
    assert not a.remediable
    assert a.params == {}
    assert not run("root-access-key-created", ev("CreateAccessKey", {"userName": "bob"}, resp, identity=ROOT)).risky


def login(ev, identity, result="Success", mfa="No", **kw):
    extra = {} if mfa is None else {"additionalEventData": {"MFAUsed": mfa}}
    return ev(
        "ConsoleLogin",
        None,
        {"ConsoleLogin": result},
        identity=identity,
        source="signin.amazonaws.com",
        eventType="AwsConsoleSignIn",
        **extra,
        **kw,
    )


def test_root_console_login_success_and_failure(run, ev):
    assert "with MFA" in run("root-console-login", login(ev, ROOT, mfa="Yes")).reason
    a = run("root-console-login", login(ev, ROOT, result="Failure"))
    assert a.risky
    assert "Failure" in a.reason
    assert not run("root-console-login", login(ev, USER)).risky


def test_console_login_without_mfa_sso_friendly(run, ev):
    assert run("iam-user-console-login-without-mfa", login(ev, USER)).risky
    assert run("iam-user-console-login-without-mfa", login(ev, USER, mfa=None)).risky
    assert not run("iam-user-console-login-without-mfa", login(ev, USER, mfa="Yes")).risky
    assert not run("iam-user-console-login-without-mfa", login(ev, USER, result="Failure")).risky
    sso = {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Admin_0a/jane"}
    assert not run("iam-user-console-login-without-mfa", login(ev, sso)).risky
    assert not run("iam-user-console-login-without-mfa", login(ev, {"type": "FederatedUser"})).risky


def test_mfa_device_removed(run, ev):
    a = run(
        "mfa-device-deactivated",
        ev("DeactivateMFADevice", {"userName": "bob", "serialNumber": "arn:aws:iam::1:mfa/bob"}, source=IAM),
    )
    assert a.risky
    assert "bob" in a.reason
    assert a.resource == {"type": "AWS::IAM::User", "id": "bob"}


# --------------------------------------------------------------------------- privilege
@pytest.mark.parametrize(
    "case",
    [
        ("AttachUserPolicy", "userName", "user"),
        ("AttachGroupPolicy", "groupName", "group"),
        ("AttachRolePolicy", "roleName", "role"),
    ],
)
@pytest.mark.parametrize(
    "arn", ["arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws-us-gov:iam::aws:policy/IAMFullAccess"]
)
def test_admin_policy_attached_params(run, ev, case, arn):
    name, key, ptype = case
    a = run("iam-admin-policy-attached", ev(name, {key: "p1", "policyArn": arn}, source=IAM))
    assert a.risky
    assert a.remediable
    assert a.params == {"principal_type": ptype, "principal_name": "p1", "policy_arn": arn}


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        f"arn:aws:iam::{ACCOUNT}:policy/AdministratorAccess",
        "arn:aws:iam::aws:policy/AdministratorAccess-Amplify",
        42,
        None,
    ],
)
def test_admin_policy_other_policies(run, ev, arn):
    assert not run(
        "iam-admin-policy-attached", ev("AttachRolePolicy", {"roleName": "r", "policyArn": arn}, source=IAM)
    ).risky


def test_admin_policy_without_principal_name_is_not_remediable(run, ev):
    a = run(
        "iam-admin-policy-attached",
        ev("AttachRolePolicy", {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, source=IAM),
    )
    assert a.risky
    assert not a.remediable
    assert a.params == {}


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        ({"Effect": "Allow", "Action": "*", "Resource": "*"}, "Allow * on *"),
        ({"Effect": "Allow", "Action": ["s3:GetObject", "*:*"], "Resource": ["*"]}, "Allow * on *"),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, "NotAction"),
        ({"Effect": "Allow", "Action": "IAM:*", "Resource": "*"}, "iam:*"),
        ({"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::secret/*"}, "Allow * on *"),
    ],
)
def test_inline_admin_detected(run, ev, statement, why):
    for policy in (doc(statement), quote(doc(statement), safe=""), {"Statement": statement}):
        a = run(
            "iam-inline-policy-admin",
            ev("PutRolePolicy", {"roleName": "r", "policyName": "p", "policyDocument": policy}, source=IAM),
        )
        assert a.risky, policy
        assert why in a.reason, policy


@pytest.mark.parametrize(
    "policy",
    [
        doc({"Effect": "Deny", "Action": "*", "Resource": "*"}),
        doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
        doc({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b1/*"}),
        doc({"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"}),
        doc({"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "arn:aws:iam::111122223333:role/app-*"}),
    ],
)
def test_inline_not_admin(run, ev, policy):
    assert not run(
        "iam-inline-policy-admin",
        ev("PutUserPolicy", {"userName": "u", "policyName": "p", "policyDocument": policy}, source=IAM),
    ).risky


@pytest.mark.parametrize("policy", ["{not json", "", None, 12, ["*"], '{"Statement": [], "Statement": []}'])
def test_inline_unreadable_is_alerted_not_remediated(run, ev, policy):
    """IAM only stores a valid document: one the record does not let us read is content we cannot inspect."""
    a = run(
        "iam-inline-policy-admin",
        ev("PutUserPolicy", {"userName": "u", "policyName": "p", "policyDocument": policy}, source=IAM),
    )
    assert a.risky and not a.remediable
    assert "cannot be read" in a.reason


def test_inline_escalation_sets_on_every_resource(run, ev):
    stmt = {"Effect": "Allow", "Action": ["iam:Put*", "iam:Attach*"], "Resource": "*"}
    a = run(
        "iam-inline-policy-admin",
        ev("PutRolePolicy", {"roleName": "r", "policyName": "p", "policyDocument": doc(stmt)}, source=IAM),
    )
    assert a.risky and "iam:attachrolepolicy" in a.reason


def test_inline_request_too_large_alerts(run, ev):
    omitted = {"reason": "requestParameters too large", "omitted": "true", "originalSize": "149893"}
    a = run("iam-inline-policy-admin", ev("PutRolePolicy", omitted, source=IAM))
    assert a.risky and not a.remediable and "too large" in a.reason


# --------------------------------------------------------------------------- trust
def trust(ev, *stmts, name="UpdateAssumeRolePolicy"):
    key = "assumeRolePolicyDocument" if name == "CreateRole" else "policyDocument"
    return ev(name, {"roleName": "r1", key: doc(*stmts)}, source=IAM)


ASSUME = {"Effect": "Allow", "Action": "sts:AssumeRole"}


@pytest.mark.parametrize(
    ("statement", "cfg", "risky"),
    [
        ({**ASSUME, "Principal": {"AWS": "*"}}, None, True),
        ({**ASSUME, "Principal": "*", "Condition": {"StringEquals": {"sts:ExternalId": "x"}}}, None, True),
        # no organization configured: a pin to some organization is a pin outside this account
        (
            {**ASSUME, "Principal": {"AWS": "*"}, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-mine"}}},
            None,
            True,
        ),
        (
            {**ASSUME, "Principal": {"AWS": "*"}, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-mine"}}},
            "o-mine",
            False,
        ),
        (
            {**ASSUME, "Principal": {"AWS": "*"}, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-evil"}}},
            "o-mine",
            True,
        ),
        (
            {
                **ASSUME,
                "Principal": {"AWS": "*"},
                "Condition": {"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-mine"}},
            },
            None,
            True,
        ),
        ({**ASSUME, "Principal": {"AWS": "*"}, "Condition": {"StringLike": {"aws:PrincipalOrgID": "o-*"}}}, None, True),
        ({**ASSUME, "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}}, None, True),
        ({**ASSUME, "Principal": {"AWS": OTHER}}, None, True),
        ({**ASSUME, "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT]}}, None, False),
        (
            {
                **ASSUME,
                "Principal": {"AWS": f"arn:aws:iam::{OTHER}:role/x"},
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-mine"}},
            },
            "o-mine",
            False,
        ),
        ({**ASSUME, "Principal": {"Service": "ec2.amazonaws.com"}}, None, False),
        ({**ASSUME, "NotPrincipal": {"AWS": f"arn:aws:iam::{OTHER}:root"}}, None, True),
        ({**ASSUME, "Effect": "Deny", "Principal": {"AWS": "*"}}, None, False),
        (
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"},
                "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}},
            },
            None,
            True,
        ),
        (
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"},
                "Condition": {
                    "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/app:ref:refs/heads/main"}
                },
            },
            None,
            False,
        ),
    ],
)
def test_role_trust(run, ev, statement, cfg, risky):
    config = RuntimeConfig(org_id=cfg)
    assert run("iam-role-trust-opened", trust(ev, statement), config).risky is risky
    assert run("iam-role-trust-opened", trust(ev, statement, name="CreateRole"), config).risky is risky


def test_role_trust_unreadable_document_is_alerted_not_remediated(run, ev):
    a = run("iam-role-trust-opened", ev("CreateRole", {"roleName": "r", "assumeRolePolicyDocument": 5}, source=IAM))
    assert a.risky and not a.remediable
    assert "unreadable" in a.reason


def test_role_trust_account_of_the_organization_is_not_external(run, ev):
    stmt = {**ASSUME, "Principal": {"AWS": f"arn:aws:iam::{OTHER}:role/deployer"}}
    assert run("iam-role-trust-opened", trust(ev, stmt), RuntimeConfig()).risky
    known = RuntimeConfig(org_id="o-mine", organization_accounts=frozenset({OTHER}))
    assert not run("iam-role-trust-opened", trust(ev, stmt), known).risky


# --------------------------------------------------------------------------- credentials for others
def test_login_profile(run, ev):
    assert not run(
        "iam-login-profile-for-other-user", ev("UpdateLoginProfile", {"userName": "alice"}, identity=USER)
    ).risky
    assert run("iam-login-profile-for-other-user", ev("UpdateLoginProfile", {"userName": "bob"}, identity=USER)).risky
    assert run("iam-login-profile-for-other-user", ev("CreateLoginProfile", {"userName": "alice"})).risky  # role caller
    assert not run("iam-login-profile-for-other-user", ev("UpdateLoginProfile", {}, identity=USER)).risky
    a = run("iam-login-profile-for-other-user", ev("CreateLoginProfile", None, identity=ROOT))
    assert a.risky
    assert "root" in a.reason


def test_access_key_for_other_user(run, ev):
    resp = {"accessKey": {"accessKeyId": "AKIAX", "userName": "bob"}}
    a = run("iam-access-key-for-other-user", ev("CreateAccessKey", {"userName": "bob"}, resp, identity=USER))
    assert a.risky
    assert a.params == {"user_name": "bob", "access_key_id": "AKIAX"}
    assert run("iam-access-key-for-other-user", ev("CreateAccessKey", {"userName": "bob"}, None)).risky
    assert not run(
        "iam-access-key-for-other-user", ev("CreateAccessKey", {"userName": "alice"}, resp, identity=USER)
    ).risky
    assert not run("iam-access-key-for-other-user", ev("CreateAccessKey", None, resp, identity=USER)).risky


def test_federation_token(run, ev):
    policy = json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    a = run(
        "sts-federation-token-by-iam-user", ev("GetFederationToken", {"name": "x", "policy": policy}, identity=USER)
    )
    assert a.risky
    assert "admin-like" in a.reason
    assert not run("sts-federation-token-by-iam-user", ev("GetFederationToken", {"name": "x"})).risky


def test_identity_provider_sso_managed_is_expected(run, ev):
    sso = {"type": "AssumedRole", "invokedBy": "sso.amazonaws.com"}
    assert not run("iam-identity-provider-created", ev("CreateSAMLProvider", {"name": "AWSSSO_x"}, identity=sso)).risky
    assert run("iam-identity-provider-created", ev("CreateSAMLProvider", {"name": "Okta"})).risky
    assert run(
        "rolesanywhere-trust-anchor-created",
        ev("CreateTrustAnchor", {"name": "ca"}, source="rolesanywhere.amazonaws.com"),
    ).risky
