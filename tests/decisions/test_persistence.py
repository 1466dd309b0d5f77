"""Unit tests of the persistence decision functions (decisions/persistence.py)."""

from __future__ import annotations

import pytest

ACCOUNT = "111122223333"
OTHER = "444455556666"
IAM = "iam.amazonaws.com"
STS = "sts.amazonaws.com"
SIGNIN = "signin.amazonaws.com"
RA = "rolesanywhere.amazonaws.com"
USER = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT, "userName": "alice"}
BOB = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/bob", "accountId": ACCOUNT, "userName": "bob"}
ROOT = {"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}
FED = {"type": "FederatedUser", "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/admin", "accountId": ACCOUNT}


def session(role: str, name: str = "s", path: str = "") -> dict:
    return {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{name}",
        "accountId": ACCOUNT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{path}{role}"}},
    }


SSO = session("AWSReservedSSO_Admin_0123456789abcdef", "alice@example.com", "aws-reserved/sso.amazonaws.com/")
SSO_REGIONAL = session("AWSReservedSSO_Admin_0123456789abcdef", "alice", "aws-reserved/sso.amazonaws.com/eu-west-1/")


# --------------------------------------------------------------------------- access keys
@pytest.mark.parametrize(("status", "risky"), [("Active", True), ("active", True), ("Inactive", False), (None, False)])
def test_access_key_reactivated(run, ev, status, risky):
    a = run(
        "iam-access-key-reactivated",
        ev("UpdateAccessKey", {"userName": "bob", "accessKeyId": "AKIA1", "status": status}, source=IAM),
    )
    assert a.risky is risky
    if risky:
        assert a.resource == {"type": "AWS::IAM::User", "id": "bob"}
        assert "AKIA1" in a.reason


def test_access_key_reactivated_by_the_user_itself_names_the_caller(run, ev):
    a = run(
        "iam-access-key-reactivated",
        ev("UpdateAccessKey", {"accessKeyId": "AKIA1", "status": "Active"}, identity=USER, source=IAM),
    )
    assert a.risky
    assert a.resource["id"] == "alice"


# --------------------------------------------------------------------------- service-specific credentials
def test_service_specific_credential(run, ev):
    resp = {
        "serviceSpecificCredential": {"serviceName": "bedrock.amazonaws.com", "serviceSpecificCredentialId": "ACCA1"}
    }
    a = run(
        "iam-service-specific-credential-created",
        ev(
            "CreateServiceSpecificCredential",
            {"userName": "bob", "serviceName": "bedrock.amazonaws.com"},
            resp,
            identity=USER,
            source=IAM,
        ),
    )
    assert a.risky
    assert "another user" in a.reason
    assert "ACCA1" in a.reason
    a = run(
        "iam-service-specific-credential-created",
        ev(
            "ResetServiceSpecificCredential",
            {"userName": "ALICE", "serviceSpecificCredentialId": "ACCA2"},
            identity=USER,
            source=IAM,
        ),
    )
    assert a.risky
    assert "another user" not in a.reason
    assert "reset" in a.reason


# --------------------------------------------------------------------------- SSH keys and certificates
R_KEY = "iam-ssh-key-or-certificate-for-other-user"


@pytest.mark.parametrize("name", ["UploadSSHPublicKey", "UploadSigningCertificate"])
def test_key_material_for_another_user(run, ev, name):
    a = run(R_KEY, ev(name, {"userName": "bob"}, identity=USER, source=IAM))
    assert a.risky
    assert a.resource == {"type": "AWS::IAM::User", "id": "bob"}


@pytest.mark.parametrize("target", ["alice", "Alice", "ALICE"])
def test_key_material_for_oneself(run, ev, target):
    assert not run(R_KEY, ev("UploadSSHPublicKey", {"userName": target}, identity=USER, source=IAM)).risky


@pytest.mark.parametrize(
    "ident", [ROOT, session("Admin", "alice"), FED], ids=["root", "role-session-named-alice", "federated"]
)
def test_callers_without_a_user_name_always_act_on_another_user(run, ev, ident):
    assert run(R_KEY, ev("UploadSSHPublicKey", {"userName": "alice"}, identity=ident, source=IAM)).risky


def test_signing_certificate_without_user(run, ev):
    assert not run(R_KEY, ev("UploadSigningCertificate", {"certificateBody": "x"}, identity=USER, source=IAM)).risky
    a = run(R_KEY, ev("UploadSigningCertificate", {"certificateBody": "x"}, identity=ROOT, source=IAM))
    assert a.risky
    assert "root" in a.reason
    assert a.resource == {"type": "AWS::::Account", "id": ACCOUNT}


# --------------------------------------------------------------------------- MFA
R_MFA = "iam-mfa-device-for-other-user"


def test_mfa_enabled_on_another_user(run, ev):
    a = run(
        R_MFA,
        ev("EnableMFADevice", {"userName": "Alice", "serialNumber": "arn:aws:iam::1:mfa/x"}, identity=BOB, source=IAM),
    )
    assert a.risky
    assert a.resource == {"type": "AWS::IAM::User", "id": "Alice"}
    assert not run(
        R_MFA, ev("EnableMFADevice", {"userName": "ALICE", "serialNumber": "s"}, identity=USER, source=IAM)
    ).risky
    assert run(
        R_MFA, ev("EnableMFADevice", {"userName": "alice", "serialNumber": "s"}, identity=session("Admin"), source=IAM)
    ).risky
    assert not run(R_MFA, ev("EnableMFADevice", {"serialNumber": "s"}, identity=USER, source=IAM)).risky


def test_virtual_mfa_device_creation(run, ev):
    assert not run(
        R_MFA, ev("CreateVirtualMFADevice", {"virtualMFADeviceName": "phone"}, identity=USER, source=IAM)
    ).risky
    a = run(
        R_MFA, ev("CreateVirtualMFADevice", {"virtualMFADeviceName": "alice"}, identity=session("Admin"), source=IAM)
    )
    assert a.risky
    assert a.resource == {"type": "AWS::IAM::VirtualMFADevice", "id": "alice"}
    # root setting up its own device is covered by root-activity; its binding to a user is EnableMFADevice
    assert not run(R_MFA, ev("CreateVirtualMFADevice", None, identity=ROOT, source=IAM)).risky
    assert run(R_MFA, ev("CreateVirtualMFADevice", None, identity=FED, source=IAM)).risky
    assert not run(R_MFA, ev("EnableMFADevice", {"serialNumber": "s"}, identity=ROOT, source=IAM)).risky
    assert run(R_MFA, ev("EnableMFADevice", {"userName": "bob", "serialNumber": "s"}, identity=ROOT, source=IAM)).risky


# --------------------------------------------------------------------------- identity providers
R_IDP = "iam-identity-provider-modified"


@pytest.mark.parametrize(
    ("name", "request_", "word"),
    [
        ("UpdateSAMLProvider", {"sAMLProviderArn": "arn:aws:iam::1:saml-provider/Corp"}, "metadata"),
        ("DeleteSAMLProvider", {"sAMLProviderArn": "arn:aws:iam::1:saml-provider/Corp"}, "deleted"),
        (
            "UpdateOpenIDConnectProviderThumbprint",
            {"openIDConnectProviderArn": "arn:aws:iam::1:oidc-provider/x"},
            "thumbprints",
        ),
        (
            "AddClientIDToOpenIDConnectProvider",
            {"openIDConnectProviderArn": "arn:aws:iam::1:oidc-provider/x", "clientID": "aud-1"},
            "aud-1",
        ),
    ],
)
def test_identity_provider_modified(run, ev, name, request_, word):
    a = run(R_IDP, ev(name, request_, source=IAM))
    assert a.risky
    assert word in a.reason


def test_identity_center_managed_providers_are_expected(run, ev):
    ident = {
        **session("AWSServiceRoleForSSO", "AWS-SSO", "aws-service-role/sso.amazonaws.com/"),
        "invokedBy": "sso.amazonaws.com",
    }
    assert not run(
        R_IDP,
        ev(
            "UpdateSAMLProvider",
            {"sAMLProviderArn": "arn:aws:iam::1:saml-provider/AWSSSO_x"},
            identity=ident,
            source=IAM,
        ),
    ).risky
    assert not run(R_IDP, ev("RemoveClientIDFromOpenIDConnectProvider", {}, source=IAM)).risky


# --------------------------------------------------------------------------- Roles Anywhere
R_RA = "rolesanywhere-profile-changed"


def test_rolesanywhere_profile(run, ev):
    a = run(
        R_RA,
        ev(
            "CreateProfile",
            {
                "name": "p",
                "roleArns": [f"arn:aws:iam::{ACCOUNT}:role/ops-admin", f"arn:aws:iam::{ACCOUNT}:role/reader"],
            },
            source=RA,
        ),
    )
    assert a.risky
    assert "privileged by name" in a.reason
    assert "ops-admin" in a.reason.split("privileged by name")[1]
    assert "reader" not in a.reason.split("privileged by name")[1]
    a = run(R_RA, ev("CreateProfile", {"name": "p", "roleArns": f"arn:aws:iam::{ACCOUNT}:role/reader"}, source=RA))
    assert a.risky
    assert "privileged" not in a.reason
    assert not run(R_RA, ev("UpdateProfile", {"profileId": "x", "durationSeconds": 900}, source=RA)).risky
    assert run(R_RA, ev("UpdateProfile", {"profileId": "x", "roleArns": ["arn:aws:iam::1:role/r"]}, source=RA)).risky
    a = run(
        R_RA,
        ev("UpdateProfile", {"profileId": "x", "sessionPolicy": '{"Version":"2012-10-17","Statement":[]}'}, source=RA),
    )
    assert a.risky
    assert "session scoping replaced (sessionPolicy" in a.reason
    assert run(R_RA, ev("UpdateProfile", {"profileId": "x", "managedPolicyArns": []}, source=RA)).risky


# --------------------------------------------------------------------------- console and sessions
R_SIGNIN = "sts-signin-token-from-temporary-keys"


def test_signin_token(run, ev):
    a = run(R_SIGNIN, ev("GetSigninToken", None, identity=FED, source=SIGNIN))
    assert a.risky
    assert "federated user" in a.reason
    a = run(R_SIGNIN, ev("GetSigninToken", None, identity=session("web", "i-0abc1234def567890"), source=SIGNIN))
    assert a.risky
    assert "EC2 instance" in a.reason
    a = run(R_SIGNIN, ev("GetSigninToken", None, identity=session("Admin", "mallory"), source=SIGNIN))
    assert a.risky
    assert "outside Identity Center" in a.reason
    assert not run(R_SIGNIN, ev("GetSigninToken", None, identity=SSO, source=SIGNIN)).risky
    assert not run(R_SIGNIN, ev("GetSigninToken", None, identity=SSO_REGIONAL, source=SIGNIN)).risky


R_SESSION = "sts-session-token-without-mfa"


def test_session_token(run, ev):
    a = run(R_SESSION, ev("GetSessionToken", {"durationSeconds": 129600}, identity=USER, source=STS))
    assert a.risky
    assert a.resource == {"type": "AWS::IAM::User", "id": "alice"}
    assert run(R_SESSION, ev("GetSessionToken", None, identity=USER, source=STS)).risky
    assert run(R_SESSION, ev("GetSessionToken", {"serialNumber": "  "}, identity=USER, source=STS)).risky
    assert not run(
        R_SESSION, ev("GetSessionToken", {"serialNumber": "arn:aws:iam::1:mfa/a"}, identity=USER, source=STS)
    ).risky
    assert not run(R_SESSION, ev("GetSessionToken", {}, identity=ROOT, source=STS)).risky


def test_assume_root(run, ev):
    req = {
        "targetPrincipal": OTHER,
        "taskPolicyArn": {"arn": "arn:aws:iam::aws:policy/root-task/IAMCreateRootUserPassword"},
    }
    a = run("sts-assume-root", ev("AssumeRoot", req, source=STS))
    assert a.risky
    assert "password again" in a.reason
    assert a.resource == {"type": "AWS::::Account", "id": OTHER}
    req["taskPolicyArn"] = {"arn": "arn:aws:iam::aws:policy/root-task/S3UnlockBucketPolicy"}
    a = run("sts-assume-root", ev("AssumeRoot", req, source=STS))
    assert a.risky
    assert "password again" not in a.reason
    assert "S3UnlockBucketPolicy" in a.reason


def test_own_mfa_registration_with_a_long_term_key(run, ev):
    """Console and session-token registrations use ASIA keys; a long-term AKIA key is the stolen-key API path."""
    long_term = {**USER, "accessKeyId": "AKIAEXAMPLE000000001"}
    console = {**USER, "accessKeyId": "ASIAEXAMPLE000000001", "invokedBy": "signin.amazonaws.com"}
    mfa_session = {**USER, "accessKeyId": "ASIAEXAMPLE000000002"}
    for name, req in (
        ("EnableMFADevice", {"userName": "alice", "serialNumber": "arn:aws:iam::1:mfa/a"}),
        ("CreateVirtualMFADevice", {"virtualMFADeviceName": "alice"}),
    ):
        a = run(R_MFA, ev(name, req, identity=long_term, source=IAM))
        assert a.risky, name
        assert "long-term access key AKIAEXAMPLE000000001" in a.reason
        assert not run(R_MFA, ev(name, req, identity=console, source=IAM)).risky, name
        assert not run(R_MFA, ev(name, req, identity=mfa_session, source=IAM)).risky, name
    # a console user agent does not make a long-term key a console session
    forged = ev(
        "EnableMFADevice",
        {"userName": "alice", "serialNumber": "s"},
        identity=long_term,
        source=IAM,
        userAgent="signin.amazonaws.com",
    )
    assert run(R_MFA, forged).risky
