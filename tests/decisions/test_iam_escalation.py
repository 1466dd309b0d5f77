"""Unit tests of the privilege-escalation decision functions (decisions/iam_escalation.py)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from urllib.parse import quote

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.decisions.iam_escalation import (
    DEFAULT_PRIVILEGED_GROUPS,
    DEFAULT_PRIVILEGED_ROLES,
    caller_role_name,
    caller_user_name,
    iam_name,
    name_matches,
    same_name,
)
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
OTHER = "444455556666"
IAM = "iam.amazonaws.com"
EC2 = "ec2.amazonaws.com"
LAMBDA = "lambda.amazonaws.com"
PARN = f"arn:aws:iam::{ACCOUNT}:policy/ci-deploy"
USER = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT, "userName": "alice"}
ROOT = {"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}


def session(role: str, name: str = "s", account: str = ACCOUNT, path: str = "") -> dict:
    return {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{name}",
        "accountId": account,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{account}:role/{path}{role}"}},
    }


def doc(*stmts: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(stmts)})


ADMIN_DOC = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
READ_DOC = doc({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::reports/*"})


# --------------------------------------------------------------------------- helpers
def test_iam_name_reads_names_and_arns():
    assert iam_name("alice") == "alice"
    assert iam_name(f"arn:aws:iam::{ACCOUNT}:user/division/team/alice") == "alice"
    assert iam_name(f"arn:aws:iam::{ACCOUNT}:instance-profile/web") == "web"
    assert iam_name(" Admins ") == "Admins"
    assert iam_name(None) == ""
    assert iam_name(42) == ""


def test_same_name_is_case_insensitive_and_never_true_for_empty():
    assert same_name("Alice", "alice")
    assert same_name("ALICE", "alice")
    assert not same_name("alice", "alice2")
    assert not same_name("", "")
    assert not same_name("alice", "")


def test_caller_names(ev):
    assert caller_user_name(ev("X", {}, identity=USER)) == "alice"
    no_name = {k: v for k, v in USER.items() if k != "userName"}
    assert caller_user_name(ev("X", {}, identity=no_name)) == "alice"
    assert caller_user_name(ev("X", {}, identity={**USER, "accountId": OTHER})) == ""
    assert caller_user_name(ev("X", {}, identity=ROOT)) == ""
    assert caller_user_name(ev("X", {}, identity=session("Admin"))) == ""
    assert caller_role_name(ev("X", {}, identity=session("ci-runner", path="team/"))) == "ci-runner"
    assert caller_role_name(ev("X", {}, identity=session("ci-runner", account=OTHER))) == ""
    assert caller_role_name(ev("X", {}, identity=USER)) == ""


def test_name_patterns():
    assert name_matches("SysAdmins", DEFAULT_PRIVILEGED_GROUPS) == "*admin*"
    assert name_matches("developers", DEFAULT_PRIVILEGED_GROUPS) is None
    assert name_matches("OrganizationAccountAccessRole", DEFAULT_PRIVILEGED_ROLES) == "organizationaccountaccessrole"
    assert name_matches("cdk-hnb659fds-cfn-exec-role-111122223333-us-east-1", DEFAULT_PRIVILEGED_ROLES)
    assert name_matches("stacksets-exec-0123456789abcdef", DEFAULT_PRIVILEGED_ROLES)
    assert name_matches("thumbnailer-lambda", DEFAULT_PRIVILEGED_ROLES) is None


# --------------------------------------------------------------------------- managed policies
R_POLICY = "iam-managed-policy-escalation"


def test_policy_version_made_default_with_admin_document(run, ev):
    a = run(
        R_POLICY,
        ev("CreatePolicyVersion", {"policyArn": PARN, "policyDocument": ADMIN_DOC, "setAsDefault": True}, source=IAM),
    )
    assert a.risky
    assert not a.remediable
    assert PARN in a.reason
    assert a.resource == {"type": "AWS::IAM::ManagedPolicy", "id": PARN}


@pytest.mark.parametrize("flag", [True, "true", "TRUE"])
def test_set_as_default_spellings(run, ev, flag):
    assert run(
        R_POLICY,
        ev("CreatePolicyVersion", {"policyArn": PARN, "policyDocument": ADMIN_DOC, "setAsDefault": flag}, source=IAM),
    ).risky


@pytest.mark.parametrize("flag", [False, "false", None])
def test_version_not_made_default_grants_nothing_yet(run, ev, flag):
    req = {"policyArn": PARN, "policyDocument": ADMIN_DOC}
    if flag is not None:
        req["setAsDefault"] = flag
    a = run(R_POLICY, ev("CreatePolicyVersion", req, source=IAM))
    assert not a.risky
    assert "not made the default" in a.reason


@pytest.mark.parametrize(
    "document",
    [
        ADMIN_DOC,
        quote(ADMIN_DOC, safe=""),
        quote(quote(ADMIN_DOC, safe=""), safe=""),
        json.loads(ADMIN_DOC),
        doc({"Effect": "Allow", "NotAction": "iam:DeleteAccountPasswordPolicy", "Resource": "*"}),
        doc({"Effect": "Allow", "Action": ["iam:AttachUserPolicy"], "Resource": "*"}),
        doc({"Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"}),
    ],
    ids=["json", "url-encoded", "url-encoded-twice", "object", "not-action", "attach-user-policy", "passrole-ec2"],
)
def test_create_policy_judges_every_encoding_and_escalation_set(run, ev, document):
    a = run(R_POLICY, ev("CreatePolicy", {"policyName": "p", "policyDocument": document}, source=IAM))
    assert a.risky, a.reason


def test_create_policy_with_a_narrow_document_is_fine(run, ev):
    a = run(R_POLICY, ev("CreatePolicy", {"policyName": "reports-read", "policyDocument": READ_DOC}, source=IAM))
    assert not a.risky
    assert "no admin-like" in a.reason


def test_too_large_or_unreadable_documents_alert(run, ev):
    big = {"reason": "requestParameters too large", "omitted": True, "originalSize": 200000}
    a = run(R_POLICY, ev("CreatePolicyVersion", big, source=IAM))
    assert a.risky
    assert "too large" in a.reason
    a = run(R_POLICY, ev("CreatePolicy", {"policyName": "p", "policyDocument": "{not json"}, source=IAM))
    assert a.risky
    assert "unreadable" in a.reason
    dup = '{"Version":"2012-10-17","Statement":[],"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
    assert run(R_POLICY, ev("CreatePolicy", {"policyName": "p", "policyDocument": dup}, source=IAM)).risky


def test_create_policy_without_a_document_is_not_judged(run, ev):
    assert not run(R_POLICY, ev("CreatePolicy", {"policyName": "p"}, source=IAM)).risky
    assert not run(R_POLICY, ev("DeletePolicy", {"policyArn": PARN}, source=IAM)).risky


def test_default_version_set_always_alerts(run, ev):
    a = run(
        "iam-policy-default-version-set",
        ev("SetDefaultPolicyVersion", {"policyArn": PARN, "versionId": "v1"}, source=IAM),
    )
    assert a.risky
    assert "v1" in a.reason
    assert not a.remediable


# --------------------------------------------------------------------------- self-grants
R_SELF = "iam-policy-attached-to-self"


@pytest.mark.parametrize("target", ["alice", "Alice", "ALICE"])
def test_user_attaching_to_itself(run, ev, target):
    a = run(R_SELF, ev("AttachUserPolicy", {"userName": target, "policyArn": PARN}, identity=USER, source=IAM))
    assert a.risky
    assert a.resource == {"type": "AWS::IAM::User", "id": target}


def test_user_attaching_to_someone_else_is_left_to_other_rules(run, ev):
    for target in ("alice-svc", "bob", "alice2"):
        assert not run(
            R_SELF, ev("AttachUserPolicy", {"userName": target, "policyArn": PARN}, identity=USER, source=IAM)
        ).risky


def test_role_session_attaching_to_its_own_role(run, ev):
    me = session("ci-runner", "build-1", path="pipelines/")
    assert run(
        R_SELF, ev("AttachRolePolicy", {"roleName": "CI-Runner", "policyArn": PARN}, identity=me, source=IAM)
    ).risky
    assert not run(
        R_SELF, ev("AttachRolePolicy", {"roleName": "app", "policyArn": PARN}, identity=me, source=IAM)
    ).risky
    # a role of another account with the same name is not "itself"
    foreign = session("ci-runner", account=OTHER)
    assert not run(
        R_SELF, ev("AttachRolePolicy", {"roleName": "ci-runner", "policyArn": PARN}, identity=foreign, source=IAM)
    ).risky


def test_roles_and_root_have_no_user_to_attach_to_themselves(run, ev):
    for ident in (ROOT, session("alice")):
        assert not run(
            R_SELF, ev("AttachUserPolicy", {"userName": "alice", "policyArn": PARN}, identity=ident, source=IAM)
        ).risky
    assert not run(
        R_SELF, ev("AttachGroupPolicy", {"groupName": "alice", "policyArn": PARN}, identity=USER, source=IAM)
    ).risky


def test_admin_policy_on_self_is_left_to_the_admin_rule(run, ev):
    a = run(
        R_SELF,
        ev(
            "AttachUserPolicy",
            {"userName": "alice", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
            identity=USER,
            source=IAM,
        ),
    )
    assert not a.risky
    assert "iam-admin-policy-attached" in a.reason
    # but a customer policy named like it is not that rule's business
    own = f"arn:aws:iam::{ACCOUNT}:policy/AdministratorAccess"
    assert run(R_SELF, ev("AttachUserPolicy", {"userName": "alice", "policyArn": own}, identity=USER, source=IAM)).risky


# --------------------------------------------------------------------------- groups
R_GROUP = "iam-user-added-to-privileged-group"


@pytest.mark.parametrize(
    "group", ["Administrators", "admins", "SysADMINS", "PowerUsers", "break-glass", "db-FullAccess"]
)
def test_privileged_groups_by_name(run, ev, group):
    a = run(R_GROUP, ev("AddUserToGroup", {"groupName": group, "userName": "bob"}, source=IAM))
    assert a.risky
    assert group in a.reason


def test_ordinary_group_by_someone_else_is_fine(run, ev):
    assert not run(
        R_GROUP, ev("AddUserToGroup", {"groupName": "developers", "userName": "bob"}, identity=USER, source=IAM)
    ).risky


@pytest.mark.parametrize("target", ["alice", "ALICE"])
def test_user_adding_itself_to_any_group(run, ev, target):
    a = run(R_GROUP, ev("AddUserToGroup", {"groupName": "developers", "userName": target}, identity=USER, source=IAM))
    assert a.risky
    assert "added itself" in a.reason


def test_group_patterns_come_from_params(run, ev):
    rule = rules_by_id()[R_GROUP]
    custom = replace(rule, params={"privileged_group_patterns": ["ops-*"]})

    fn = registry()[rule.decision]
    assert fn(
        ev("AddUserToGroup", {"groupName": "OPS-oncall", "userName": "bob"}, source=IAM), custom, RuntimeConfig()
    ).risky
    assert not fn(
        ev("AddUserToGroup", {"groupName": "admins", "userName": "bob"}, source=IAM), custom, RuntimeConfig()
    ).risky


def test_group_without_names_is_not_judged(run, ev):
    assert not run(R_GROUP, ev("AddUserToGroup", {"groupName": "admins"}, source=IAM)).risky
    assert not run(R_GROUP, ev("AddUserToGroup", None, source=IAM)).risky


# --------------------------------------------------------------------------- boundaries
R_BOUNDARY = "iam-permissions-boundary-removed"


def test_boundary_deleted(run, ev):
    a = run(R_BOUNDARY, ev("DeleteRolePermissionsBoundary", {"roleName": "app"}, source=IAM))
    assert a.risky
    assert a.resource == {"type": "AWS::IAM::Role", "id": "app"}
    a = run(R_BOUNDARY, ev("DeleteUserPermissionsBoundary", {"userName": "bob"}, source=IAM))
    assert a.resource == {"type": "AWS::IAM::User", "id": "bob"}


@pytest.mark.parametrize(
    ("arn", "risky"),
    [
        ("arn:aws:iam::aws:policy/AdministratorAccess", True),
        ("arn:aws-us-gov:iam::aws:policy/AdministratorAccess", True),
        ("arn:aws:iam::aws:policy/ReadOnlyAccess", False),
        (f"arn:aws:iam::{ACCOUNT}:policy/AdministratorAccess", False),
        (f"arn:aws:iam::{ACCOUNT}:policy/DeveloperBoundary", False),
        (None, False),
    ],
)
def test_boundary_replaced(run, ev, arn, risky):
    a = run(R_BOUNDARY, ev("PutUserPermissionsBoundary", {"userName": "bob", "permissionsBoundary": arn}, source=IAM))
    assert a.risky is risky, a.reason


# --------------------------------------------------------------------------- PassRole
R_PASS = "iam-privileged-role-passed"


@pytest.mark.parametrize(
    "name",
    [
        "CreateFunction20150331",
        "CreateFunction",
        "UpdateFunctionConfiguration20150331v2",
        "UpdateFunctionConfiguration",
    ],
)
def test_lambda_given_a_privileged_role(run, ev, name):
    req = {"functionName": "f", "role": f"arn:aws:iam::{ACCOUNT}:role/service/OrganizationAccountAccessRole"}
    a = run(R_PASS, ev(name, req, source=LAMBDA))
    assert a.risky
    assert a.resource == {"type": "AWS::IAM::Role", "id": "OrganizationAccountAccessRole"}


def test_lambda_with_an_ordinary_role_or_none(run, ev):
    assert not run(
        R_PASS,
        ev(
            "CreateFunction20150331",
            {"functionName": "f", "role": f"arn:aws:iam::{ACCOUNT}:role/thumbs"},
            source=LAMBDA,
        ),
    ).risky
    assert not run(
        R_PASS, ev("UpdateFunctionConfiguration20150331v2", {"functionName": "f", "timeout": 3}, source=LAMBDA)
    ).risky


def test_run_instances_with_a_privileged_profile(run, ev):
    for prof in ({"name": "ec2-admin"}, {"arn": f"arn:aws:iam::{ACCOUNT}:instance-profile/x/Break-Glass"}):
        assert run(
            R_PASS, ev("RunInstances", {"instanceType": "t3.micro", "iamInstanceProfile": prof}, source=EC2)
        ).risky
    assert not run(R_PASS, ev("RunInstances", {"iamInstanceProfile": {"name": "ssm-core"}}, source=EC2)).risky
    assert not run(R_PASS, ev("RunInstances", {"instanceType": "t3.micro"}, source=EC2)).risky


@pytest.mark.parametrize(
    "request_",
    [
        {"AssociateIamInstanceProfileRequest": {"InstanceId": "i-1", "IamInstanceProfile": {"Name": "admin-profile"}}},
        {"instanceId": "i-1", "iamInstanceProfile": {"name": "admin-profile"}},
        {
            "AssociateIamInstanceProfileRequest": {
                "InstanceId": "i-1",
                "IamInstanceProfile": {"Arn": f"arn:aws:iam::{ACCOUNT}:instance-profile/admin-profile"},
            }
        },
    ],
    ids=["wrapped", "flat-camel", "arn"],
)
def test_associated_profile_in_any_logged_shape(run, ev, request_):
    assert run(R_PASS, ev("AssociateIamInstanceProfile", request_, source=EC2)).risky
    a = run("ec2-instance-profile-associated", ev("AssociateIamInstanceProfile", request_, source=EC2))
    assert a.risky
    assert a.resource == {"type": "AWS::EC2::Instance", "id": "i-1"}


def test_event_from_the_wrong_service_is_not_judged(run, ev):
    # the pattern lists both sources and names: a RunInstances name from lambda is nonsense, not a finding
    assert not run(R_PASS, ev("RunInstances", {"iamInstanceProfile": {"name": "admin"}}, source=LAMBDA)).risky
    assert not run(R_PASS, ev("CreateFunction20150331", {"role": "arn:aws:iam::1:role/admin"}, source=EC2)).risky


def test_instance_profile_association_without_profile(run, ev):
    assert not run(
        "ec2-instance-profile-associated",
        ev("AssociateIamInstanceProfile", {"AssociateIamInstanceProfileRequest": {"InstanceId": "i-1"}}, source=EC2),
    ).risky


def test_role_patterns_come_from_params(ev):

    rule = rules_by_id()[R_PASS]
    custom = replace(rule, params={"privileged_role_patterns": ["prod-deployer"]})
    fn = registry()[rule.decision]
    req = {"functionName": "f", "role": f"arn:aws:iam::{ACCOUNT}:role/Prod-Deployer"}
    assert fn(ev("CreateFunction20150331", req, source=LAMBDA), custom, RuntimeConfig()).risky


def test_trailguards_own_roles_deployed_by_its_pipeline(run, ev):
    """The pipeline (deployment_role_arns, exact issuer ARN) gives trailguard's functions trailguard-* roles."""

    pipeline = f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-us-east-1"
    cfg = RuntimeConfig(deployment_role_arns=frozenset({pipeline}))
    cfn = {
        **session(f"cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-us-east-1", "AWSCloudFormation"),
        "invokedBy": "cloudformation.amazonaws.com",
    }
    req = {"functionName": "TrailguardDetection-Engine", "role": f"arn:aws:iam::{ACCOUNT}:role/trailguard-engine"}
    a = run(R_PASS, ev("CreateFunction20150331", req, identity=cfn, source=LAMBDA), cfg)
    assert not a.risky
    assert "pipeline" in a.reason
    # anyone else passing trailguard's role, or the pipeline without being configured, is alerted
    assert run(R_PASS, ev("CreateFunction20150331", req, identity=USER, source=LAMBDA), cfg).risky
    assert run(R_PASS, ev("CreateFunction20150331", req, identity=cfn, source=LAMBDA)).risky
    # the pipeline is trusted with trailguard's roles only
    other = {**req, "role": f"arn:aws:iam::{ACCOUNT}:role/OrganizationAccountAccessRole"}
    assert run(R_PASS, ev("CreateFunction20150331", other, identity=cfn, source=LAMBDA), cfg).risky


@pytest.mark.parametrize(
    "request_",
    [
        {
            "CreateLaunchTemplateVersionRequest": {
                "LaunchTemplateName": "web",
                "LaunchTemplateData": {"IamInstanceProfile": {"Name": "ec2-admin"}},
            }
        },
        {
            "launchTemplateName": "web",
            "launchTemplateData": {"iamInstanceProfile": {"arn": f"arn:aws:iam::{ACCOUNT}:instance-profile/ec2-admin"}},
        },
    ],
    ids=["wrapped", "flat"],
)
def test_launch_template_with_a_privileged_profile(run, ev, request_):
    a = run(R_PASS, ev("CreateLaunchTemplateVersion", request_, source=EC2))
    assert a.risky
    assert "launch template web" in a.reason
    assert run(R_PASS, ev("CreateLaunchTemplate", request_, source=EC2)).risky


def test_launch_template_without_or_with_an_ordinary_profile(run, ev):
    plain = {"CreateLaunchTemplateRequest": {"LaunchTemplateName": "web", "LaunchTemplateData": {"ImageId": "ami-1"}}}
    assert not run(R_PASS, ev("CreateLaunchTemplate", plain, source=EC2)).risky
    ordinary = {"CreateLaunchTemplateRequest": {"LaunchTemplateData": {"IamInstanceProfile": {"Name": "ssm-core"}}}}
    assert not run(R_PASS, ev("CreateLaunchTemplate", ordinary, source=EC2)).risky
    # a profile buried deeper than any EC2 request shape is not searched for ever
    deep = {"a": {"b": {"c": {"d": {"e": {"IamInstanceProfile": {"Name": "admin"}}}}}}}
    assert not run(R_PASS, ev("CreateLaunchTemplate", deep, source=EC2)).risky


# --------------------------------------------------------------------------- robustness (both modules)
H4_DECISIONS = {
    "managed_policy_escalation", "policy_default_version_set", "policy_attached_to_self",
    "user_added_to_privileged_group", "permissions_boundary_removed", "privileged_role_passed",
    "instance_profile_associated", "access_key_reactivated", "service_specific_credential",
    "key_material_for_other_user", "mfa_for_other_user", "identity_provider_modified",
    "rolesanywhere_profile_changed", "signin_token_minted", "session_token_without_mfa", "assume_root",
}  # fmt: skip
ODD = (None, 0, -1, 1.5, True, "", " ", [], {}, ["x"], {"a": {"b": None}}, "arn:", "/", "*")


def _h4_examples():
    for rule in rules_by_id().values():
        if rule.decision not in H4_DECISIONS:
            continue
        events = [*rule.examples_positive, *rule.examples_negative, *(v["event"] for v in rule.examples_variants)]
        for i, event in enumerate(events):
            yield pytest.param(rule, copy.deepcopy(event), id=f"{rule.id}-{i}")


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    yield path


def _set(obj, path, value):
    for step in path[:-1]:
        obj = obj[step]
    obj[path[-1]] = value


@pytest.mark.parametrize(("rule", "envelope"), list(_h4_examples()))
def test_decisions_never_raise_on_odd_values(rule, envelope):
    """Every field of the request, response and identity replaced by odd values: a verdict, never an exception."""

    fn = registry()[rule.decision]
    detail = envelope["detail"]
    for section in ("requestParameters", "responseElements", "userIdentity"):
        for path in [p for p in _leaves(detail.get(section)) if p]:
            for odd in ODD:
                mutated = copy.deepcopy(envelope)
                _set(mutated["detail"][section], path, odd)
                assert isinstance(fn(CloudTrailEvent(mutated), rule, RuntimeConfig()), Assessment)
        for odd in ODD:
            mutated = copy.deepcopy(envelope)
            mutated["detail"][section] = odd
            assert isinstance(fn(CloudTrailEvent(mutated), rule, RuntimeConfig()), Assessment)
