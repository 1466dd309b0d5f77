"""Decisions for the high-value items docs/coverage.md found missing (decisions/coverage_gaps.py)."""

from __future__ import annotations

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.intended import IntendedExposure
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
IAM = "iam.amazonaws.com"
CB = "codebuild.amazonaws.com"
SD = "sso-directory.amazonaws.com"
S3 = "s3.amazonaws.com"
SI = "signin.amazonaws.com"
W2 = "wafv2.amazonaws.com"
WR = "waf-regional.amazonaws.com"
Q = "iam-compromised-key-quarantine"
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"


def role(name: str, session: str) -> dict:
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{session}",
        "accountId": ACCOUNT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}},
    }


# --------------------------------------------------------------------------- #
# AWS's compromised-key quarantine
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("version", ["", "V2", "V3", "V4"])
@pytest.mark.parametrize(
    "target",
    [
        ("AttachUserPolicy", "userName", "AWS::IAM::User"),
        ("AttachRolePolicy", "roleName", "AWS::IAM::Role"),
        ("AttachGroupPolicy", "groupName", "AWS::IAM::Group"),
    ],
)
def test_quarantine_attached_alerts(run, ev, version, target):
    call, key, kind = target
    arn = f"arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine{version}"
    a = run(Q, ev(call, {key: "build-bot", "policyArn": arn}, source=IAM))
    assert a.risky and not a.remediable
    assert a.resource == {"type": kind, "id": "build-bot"}
    assert "exposed" in a.reason


def test_quarantine_detached_alerts_as_lifted(run, ev):
    arn = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"
    a = run(Q, ev("DetachUserPolicy", {"userName": "build-bot", "policyArn": arn}, source=IAM))
    assert a.risky and "lifted" in a.reason


def test_quarantine_in_other_partitions(run, ev):
    arn = "arn:aws-us-gov:iam::aws:policy/AWSCompromisedKeyQuarantineV3"
    assert run(Q, ev("AttachUserPolicy", {"userName": "u", "policyArn": arn}, source=IAM)).risky


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        f"arn:aws:iam::{ACCOUNT}:policy/AWSCompromisedKeyQuarantineV2",  # a customer policy named like it
        "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2-extra",
        None,
        7,
    ],
)
def test_other_policies_are_not_the_quarantine(run, ev, arn):
    assert not run(Q, ev("AttachUserPolicy", {"userName": "u", "policyArn": arn}, source=IAM)).risky


def test_quarantine_ignores_unrelated_calls(run, ev):
    arn = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"
    assert not run(Q, ev("PutUserPolicy", {"userName": "u", "policyArn": arn}, source=IAM)).risky


# --------------------------------------------------------------------------- #
# CodeBuild project visibility
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("value", ["PUBLIC_READ", "public_read", " PUBLIC_READ "])
def test_codebuild_public(run, ev, value):
    arn = f"arn:aws:codebuild:us-east-1:{ACCOUNT}:project/p"
    a = run(
        "codebuild-project-public",
        ev("UpdateProjectVisibility", {"projectArn": arn, "projectVisibility": value}, source=CB),
    )
    assert a.risky and a.resource == {"type": "AWS::CodeBuild::Project", "id": arn}


@pytest.mark.parametrize(
    "request_", [{"projectVisibility": "PRIVATE"}, {}, None, {"projectVisibility": ["PUBLIC_READ"]}]
)
def test_codebuild_not_public(run, ev, request_):
    assert not run("codebuild-project-public", ev("UpdateProjectVisibility", request_, source=CB)).risky


# --------------------------------------------------------------------------- #
# Identity Center identity source
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "call",
    [
        "AssociateDirectory",
        "DisassociateDirectory",
        "EnableExternalIdPConfigurationForDirectory",
        "DisableExternalIdPConfigurationForDirectory",
    ],
)
def test_identity_source_changes_alert(run, ev, call):
    a = run("identitycenter-identity-source-changed", ev(call, {"directoryId": "d-9067example"}, source=SD))
    assert a.risky and "d-9067example" in a.reason


def test_other_identity_center_calls_do_not(run, ev):
    assert not run("identitycenter-identity-source-changed", ev("CreateGroup", {}, source=SD)).risky


# --------------------------------------------------------------------------- #
# S3 versioning and access logging
# --------------------------------------------------------------------------- #
S3V = "s3-versioning-or-logging-disabled"


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"Status": "Suspended", "xmlns": XMLNS}, ["versioning suspended"]),
        ({"status": "suspended"}, ["versioning suspended"]),
        ({"Status": "Enabled", "MfaDelete": "Disabled"}, ["MFA delete off"]),
        ({"Status": "Suspended", "MfaDelete": "Disabled"}, ["versioning suspended", "MFA delete off"]),
    ],
)
def test_versioning_weakened(run, ev, config, words):
    a = run(S3V, ev("PutBucketVersioning", {"bucketName": "b", "VersioningConfiguration": config}, source=S3))
    assert a.risky and all(w in a.reason for w in words)
    assert a.resource == {"type": "AWS::S3::Bucket", "id": "b"}


@pytest.mark.parametrize(
    "config", [{"Status": "Enabled"}, {"Status": "Enabled", "MfaDelete": "Enabled"}, {}, None, "Suspended"]
)
def test_versioning_kept(run, ev, config):
    assert not run(
        S3V, ev("PutBucketVersioning", {"bucketName": "b", "VersioningConfiguration": config}, source=S3)
    ).risky


@pytest.mark.parametrize("status", [{"xmlns": XMLNS}, {}, {"XMLNS": XMLNS}])
def test_logging_turned_off(run, ev, status):
    a = run(S3V, ev("PutBucketLogging", {"bucketName": "b", "BucketLoggingStatus": status}, source=S3))
    assert a.risky and "logging turned off" in a.reason


@pytest.mark.parametrize(
    "request_",
    [
        {"bucketName": "b", "BucketLoggingStatus": {"LoggingEnabled": {"TargetBucket": "logs"}}},
        {"bucketName": "b", "bucketloggingstatus": {"loggingenabled": {"TargetBucket": "logs"}}},
        {"bucketName": "b"},  # nothing to judge
        None,
    ],
)
def test_logging_kept_or_unknown(run, ev, request_):
    assert not run(S3V, ev("PutBucketLogging", request_, source=S3)).risky


# --------------------------------------------------------------------------- #
# Console sign-in with instance credentials
# --------------------------------------------------------------------------- #
SIG = "signin-console-login-instance-credentials"


@pytest.mark.parametrize("session", ["i-0abc123def4567890", "i-0abc1234"])
def test_console_login_with_instance_session(run, ev, session):
    a = run(SIG, ev("ConsoleLogin", None, {"ConsoleLogin": "Success"}, identity=role("web", session), source=SI))
    assert a.risky and a.resource == {"type": "AWS::EC2::Instance", "id": session}


def test_instance_session_read_from_principal_id_when_arn_is_absent(run, ev):
    ident = role("web", "i-0abc123def4567890")
    del ident["arn"]
    assert run(SIG, ev("ConsoleLogin", None, identity=ident, source=SI)).risky


@pytest.mark.parametrize(
    "ident",
    [
        role("Admin", "mallory"),
        role("web", "i-0ABC123DEF4567890"),  # EC2 ids are lower-case hex
        role("web", "i-0abc123"),
        role("web", "i-0abc123def4567890-extra"),
        {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/i-0abc123def4567890",
            "userName": "i-0abc123def4567890",
        },
    ],
)
def test_console_login_other_sessions(run, ev, ident):
    assert not run(SIG, ev("ConsoleLogin", None, identity=ident, source=SI)).risky


# --------------------------------------------------------------------------- #
# WAF web ACL disassociation
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("source", [W2, WR])
def test_waf_disassociation(run, ev, source):
    arn = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/shop/1"
    a = run("waf-web-acl-disassociated", ev("DisassociateWebACL", {"resourceArn": arn}, source=source))
    assert a.risky and arn in a.reason


def test_waf_association_is_not(run, ev):
    assert not run("waf-web-acl-disassociated", ev("AssociateWebACL", {"resourceArn": "x"}, source=W2)).risky


# --------------------------------------------------------------------------- #
# S3 objects encrypted with, or copied to, accounts outside the organization (data events)
# --------------------------------------------------------------------------- #
KMS = "s3-object-encrypted-with-external-kms-key"
COPY = "s3-object-copied-to-external-account"
EXT = "999988887777"
ORG = "444455556666"
KEY_HEADER = "x-amz-server-side-encryption-aws-kms-key-id"


def _cfg(**kw):
    return RuntimeConfig(**kw)


@pytest.mark.parametrize("call", ["PutObject", "CopyObject", "CreateMultipartUpload"])
@pytest.mark.parametrize("key", [f"arn:aws:kms:us-east-1:{EXT}:key/0f3b2c1a", f"arn:aws:kms:eu-west-1:{EXT}:alias/x"])
def test_object_encrypted_with_foreign_key(run, ev, call, key):
    a = run(KMS, ev(call, {"bucketName": "b", "key": "k", KEY_HEADER: key}, source=S3))
    assert a.risky and EXT in a.reason and a.resource == {"type": "AWS::S3::Bucket", "id": "b"}


@pytest.mark.parametrize(
    "key",
    [
        f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1a2b",  # own account
        "1a2b3c4d-5e6f-4a70-8b9c-0d1e2f3a4b5c",  # bare key id: the caller's account
        "alias/finance",
        "",
        None,
    ],
)
def test_object_encrypted_with_own_key(run, ev, key):
    assert not run(KMS, ev("PutObject", {"bucketName": "b", KEY_HEADER: key}, source=S3)).risky


def test_organization_and_trusted_keys_are_ours(run, ev):
    req = {"bucketName": "b", KEY_HEADER: f"arn:aws:kms:us-east-1:{ORG}:key/1"}
    assert run(KMS, ev("PutObject", req, source=S3)).risky  # unknown organization: an alert, never a silence
    assert not run(KMS, ev("PutObject", req, source=S3), _cfg(organization_accounts=frozenset({ORG}))).risky
    trusted = _cfg(intended=IntendedExposure(trusted_accounts=frozenset({ORG})))
    assert not run(KMS, ev("PutObject", req, source=S3), trusted).risky


def _copy(dest: str, dest_account: str | None, **detail):
    resources = [
        {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::src/k"},
        {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::src"},
        {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{dest}/k"},
    ]
    bucket = {"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{dest}"}
    if dest_account is not None:
        bucket["accountId"] = dest_account
    return {"bucketName": dest, "key": "k", "x-amz-copy-source": "src/k"}, [*resources, bucket]


def test_copy_to_foreign_bucket(run, ev):
    req, res = _copy("drop", EXT)
    a = run(COPY, ev("CopyObject", req, source=S3, resources=res))
    assert a.risky and EXT in a.reason and a.resource == {"type": "AWS::S3::Bucket", "id": "drop"}


@pytest.mark.parametrize("dest_account", [ACCOUNT, None, ""])
def test_copy_within_the_account_or_unknown_owner(run, ev, dest_account):
    req, res = _copy("archive", dest_account)
    assert not run(COPY, ev("CopyObject", req, source=S3, resources=res)).risky


def test_copy_from_a_foreign_bucket_into_ours_is_not_exfiltration(run, ev):
    req, res = _copy("archive", ACCOUNT)
    res[1]["accountId"] = EXT  # the source is foreign, the destination ours
    assert not run(COPY, ev("CopyObject", req, source=S3, resources=res)).risky


def test_copy_to_an_organization_bucket(run, ev):
    req, res = _copy("shared", ORG)
    cfg = _cfg(organization_accounts=frozenset({ORG}))
    assert not run(COPY, ev("CopyObject", req, source=S3, resources=res), cfg).risky


# --------------------------------------------------------------------------- #
# Calls risky by themselves (flagged_call): traffic mirroring, EFS deletion, password policy, account closure,
# federated console sign-in
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "case",
    [
        (
            "ec2-traffic-mirroring-started",
            "CreateTrafficMirrorTarget",
            "ec2.amazonaws.com",
            {"CreateTrafficMirrorTargetRequest": {"NetworkInterfaceId": "eni-1"}},
            "",
        ),
        (
            "efs-file-system-deleted",
            "DeleteFileSystem",
            "elasticfilesystem.amazonaws.com",
            {"fileSystemId": "fs-1"},
            "fs-1",
        ),
        ("iam-password-policy-deleted", "DeleteAccountPasswordPolicy", IAM, None, ""),
        (
            "account-closed",
            "CloseAccount",
            "organizations.amazonaws.com",
            {"accountId": "444455556666"},
            "444455556666",
        ),
        ("account-closed", "CloseAccount", "account.amazonaws.com", {"AccountId": "444455556666"}, "444455556666"),
    ],
)
def test_flagged_calls_alert_with_their_reason(run, ev, case):
    rule_id, call, source, request_, target = case
    a = run(rule_id, ev(call, request_, source=source))
    assert a.risky and not a.remediable
    assert rules_by_id()[rule_id].params["why"] in a.reason
    assert a.resource["id"] == (target or "?")


@pytest.mark.parametrize(
    ("rule_id", "call"),
    [
        ("ec2-traffic-mirroring-started", "DeleteTrafficMirrorSession"),
        ("efs-file-system-deleted", "DeleteMountTarget"),
        ("iam-password-policy-deleted", "UpdateAccountPasswordPolicy"),
        ("account-closed", "DescribeAccount"),
        ("signin-console-login-federated-user", "GetSigninToken"),
    ],
)
def test_flagged_call_rules_ignore_other_calls(run, ev, rule_id, call):
    """The decision re-checks the call name: a pattern widened by mistake does not make every call an alert."""
    assert not run(rule_id, ev(call, {})).risky


def test_federated_console_login(run, ev):
    fed = {"type": "FederatedUser", "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/s", "accountId": ACCOUNT}
    a = run(
        "signin-console-login-federated-user",
        ev("ConsoleLogin", None, {"ConsoleLogin": "Success"}, identity=fed, source=SI),
    )
    assert a.risky and "GetFederationToken" in a.reason and fed["arn"] in a.reason


# --------------------------------------------------------------------------- #
# ECS tasks reading their credentials endpoint or mining
# --------------------------------------------------------------------------- #
ECSR = "ecs-task-credential-theft-or-mining"


@pytest.mark.parametrize(
    "command",
    [
        ["sh", "-c", "curl http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"],
        ["sh", "-c", "env | grep aws_container_credentials_full_uri"],
        "python -c 'print(open(\"x\"))' && curl 169.254.170.2/v2/credentials",
    ],
)
def test_task_definition_reading_credentials(run, ev, command):
    req = {"family": "f", "containerDefinitions": [{"name": "c", "image": "alpine", "command": command}]}
    a = run(ECSR, ev("RegisterTaskDefinition", req, source="ecs.amazonaws.com"))
    assert a.risky and "credentials endpoint" in a.reason and a.resource["id"] == "f"


@pytest.mark.parametrize(
    "container",
    [
        {"name": "m", "image": "docker.io/someone/XMRig:latest"},
        {"name": "m", "image": "alpine", "entryPoint": ["/bin/run", "-o", "stratum+ssl://pool:443"]},
        {"name": "m", "command": ["./a", "--donate-level=1"]},
    ],
)
def test_run_task_overrides_running_a_miner(run, ev, container):
    req = {"taskDefinition": "web:3", "overrides": {"containerOverrides": [container]}}
    a = run(ECSR, ev("RunTask", req, source="ecs.amazonaws.com"))
    assert a.risky and "miner" in a.reason


@pytest.mark.parametrize(
    "req",
    [
        {
            "family": "web",
            "containerDefinitions": [{"name": "web", "image": "nginx", "command": ["nginx", "-g", "daemon off;"]}],
        },
        {"family": "web", "containerDefinitions": "not-a-list"},
        {"taskDefinition": "web:3", "overrides": {"containerOverrides": [{"name": "web", "command": None}]}},
        None,
    ],
)
def test_ordinary_tasks(run, ev, req):
    assert not run(ECSR, ev("RegisterTaskDefinition", req, source="ecs.amazonaws.com")).risky


# --------------------------------------------------------------------------- #
# More flagged calls; AMIs deregistered by people; GPU launches refused
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "case",
    [
        (
            "bedrock-guardrail-deleted",
            "DeleteGuardrail",
            "bedrock.amazonaws.com",
            {"guardrailIdentifier": "gr-1"},
            "gr-1",
        ),
        ("cloudwatch-alarms-deleted", "DeleteAlarms", "monitoring.amazonaws.com", {"alarmNames": ["cis-root"]}, ""),
        ("s3-bucket-encryption-or-replication-removed", "DeleteBucketEncryption", S3, {"bucketName": "b"}, "b"),
        ("s3-bucket-encryption-or-replication-removed", "DeleteBucketReplication", S3, {"bucketName": "b"}, "b"),
    ],
)
def test_more_flagged_calls(run, ev, case):
    rule_id, call, source, request_, target = case
    a = run(rule_id, ev(call, request_, source=source))
    assert a.risky and a.resource["id"] == (target or "?")


AMI = "ec2-ami-deregistered-by-human"
ALICE = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT, "userName": "alice"}
TERRAFORM = "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.68.0"


@pytest.mark.parametrize("agent", ["aws-cli/2.17.20", TERRAFORM])
def test_ami_deregistered_by_a_person(run, ev, agent):
    """An IAM user is a person whatever user agent it sends (a forged Terraform agent does not hide it)."""
    a = run(AMI, ev("DeregisterImage", {"imageId": "ami-1"}, identity=ALICE, userAgent=agent))
    assert a.risky and a.resource == {"type": "AWS::EC2::Image", "id": "ami-1"}


def test_ami_deregistered_by_automation(run, ev):
    assert not run(AMI, ev("DeregisterImage", {"imageId": "ami-1"}, identity=role("ami-rotation", "1700000000"))).risky


GPU = "ec2-gpu-instance-launch-denied"


@pytest.mark.parametrize(
    "itype", ["p3.16xlarge", "g4dn.xlarge", "P5.48XLARGE", "inf2.xlarge", "trn1n.32xlarge", "dl1.24xlarge"]
)
@pytest.mark.parametrize("code", ["Client.UnauthorizedOperation", "VcpuLimitExceeded", "AccessDenied"])
def test_gpu_launch_refused(run, ev, itype, code):
    a = run(GPU, ev("RunInstances", {"instanceType": itype}, errorCode=code))
    assert a.risky and itype in a.reason


@pytest.mark.parametrize(
    ("itype", "code"),
    [
        ("p3.2xlarge", None),  # launched: routine for ML teams
        ("p3.2xlarge", "Client.InvalidParameterValue"),  # a typo, not a refusal
        ("t3.micro", "Client.UnauthorizedOperation"),
        ("m5.large", "VcpuLimitExceeded"),
        ("gp3", "Client.UnauthorizedOperation"),  # not an instance type
        (None, "Client.UnauthorizedOperation"),
    ],
)
def test_gpu_launch_not_flagged(run, ev, itype, code):
    detail = {"errorCode": code} if code else {}
    assert not run(GPU, ev("RunInstances", {"instanceType": itype}, **detail)).risky


# --------------------------------------------------------------------------- #
# Lambda invoked from outside the organization (data event); IAM role added to RDS
# --------------------------------------------------------------------------- #
LINV = "lambda-invoked-from-external-account"
FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:billing"


def _caller(account: str) -> dict:
    return {"type": "AssumedRole", "arn": f"arn:aws:sts::{account}:assumed-role/r/s", "accountId": account}


@pytest.mark.parametrize("name", ["Invoke", "Invoke20150331", "InvokeWithResponseStream"])
def test_lambda_invoked_by_foreign_account(run, ev, name):
    a = run(LINV, ev(name, {"functionName": FN}, identity=_caller(EXT), source="lambda.amazonaws.com"))
    assert a.risky and EXT in a.reason and a.resource["id"] == FN


@pytest.mark.parametrize(
    ("caller", "cfg"),
    [
        (ACCOUNT, None),  # the function's own account
        (ORG, RuntimeConfig(organization_accounts=frozenset({ORG}))),
        (ORG, RuntimeConfig(intended=IntendedExposure(trusted_accounts=frozenset({ORG})))),
        ("", None),
    ],
)
def test_lambda_invoked_by_our_accounts(run, ev, caller, cfg):
    ident = _caller(caller) if caller else {"type": "AWSService", "invokedBy": "events.amazonaws.com"}
    assert not run(LINV, ev("Invoke", {"functionName": FN}, identity=ident, source="lambda.amazonaws.com"), cfg).risky


def test_lambda_function_named_by_bare_name_belongs_to_the_event_account(run, ev):
    a = run(LINV, ev("Invoke", {"functionName": "billing"}, identity=_caller(EXT), source="lambda.amazonaws.com"))
    assert a.risky and f"account {ACCOUNT}" in a.reason


def test_rds_role_added(run, ev):
    req = {"dBInstanceIdentifier": "db", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/x", "featureName": "s3Export"}
    a = run("rds-iam-role-added", ev("AddRoleToDBInstance", req, source="rds.amazonaws.com"))
    assert a.risky and a.resource == {"type": "AWS::IAM::Role", "id": f"arn:aws:iam::{ACCOUNT}:role/x"}
