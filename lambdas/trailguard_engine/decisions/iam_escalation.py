"""Decisions for IAM privilege escalation: policy versions, self-grants, privileged groups and roles, boundaries.

What is judged here, and why (also in the rules' runbooks):

* Managed policies: ``CreatePolicy`` and ``CreatePolicyVersion`` are judged by their document (admin-like or
  privilege-escalation statements). A version created with ``setAsDefault`` false grants nothing until
  ``SetDefaultPolicyVersion``; that call carries no document (the version it activates may be an old,
  permissive one), so it is alerted on its own. A document CloudTrail omitted as too large, or one we cannot
  read although IAM accepted it, is an alert: its content cannot be inspected.
* Self-grants: a principal attaching a policy to itself (the user it is, or the role its session comes from)
  is escalation whatever the policy; offline the document of a customer-managed policy cannot be read, so
  attachments to *other* principals stay with ``iam-admin-policy-attached`` (AWS-managed admin policies).
* Privileged groups and roles are recognised by name: IAM names are unique case-insensitively, so the
  comparison is case-insensitive, on the last path segment of an ARN or the bare name. Defaults are
  admin-ish words and the well-known roles that carry administrator access by convention
  (OrganizationAccountAccessRole, AWSControlTowerExecution, StackSet execution roles, the CDK CloudFormation
  execution role, trailguard's own roles); a rule's ``params`` can replace them.
* PassRole escalations: a Lambda function, an EC2 instance, a SageMaker notebook or job or a Glue development
  endpoint given a privileged role lets whoever controls the code or the instance act as that role. Every function and most instances get *some* role, so only the
  privileged ones are signal; naming is the only offline evidence, and an innocuously named admin role is
  missed (stated as a limit in the runbook). trailguard's own functions get ``trailguard-*`` roles from its
  deployment pipeline: those calls, by a session of ``deployment_role_arns`` (exact issuer ARN), are expected.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any

from trailguard_engine.decisions import decision
from trailguard_engine.decisions.identity import ADMIN_POLICY_NAMES
from trailguard_engine.decisions.self_protection import deployment_role
from trailguard_engine.events import CloudTrailEvent, as_list
from trailguard_engine.events import get_ci as _ci_get
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import admin_like, parse_policy, privilege_escalation, request_too_large
from trailguard_engine.runtime_config import RuntimeConfig

#: Group names that usually carry administrator rights (fnmatch, matched on the case-folded name).
DEFAULT_PRIVILEGED_GROUPS: tuple[str, ...] = (
    "*admin*",
    "*poweruser*",
    "*power-user*",
    "*power_user*",
    "*superuser*",
    "*fullaccess*",
    "*full-access*",
    "*breakglass*",
    "*break-glass*",
    "*privileged*",
)
#: Role (and instance-profile) names that usually carry administrator rights.
DEFAULT_PRIVILEGED_ROLES: tuple[str, ...] = (
    *DEFAULT_PRIVILEGED_GROUPS,
    "organizationaccountaccessrole",
    "awscontroltowerexecution",
    "awscloudformationstacksetexecutionrole",
    "stacksets-exec-*",
    "cdk-*-cfn-exec-role-*",
    "trailguard-*",
)
#: AWS-managed policies that make a permissions boundary no boundary at all.
_OPEN_BOUNDARIES = frozenset({"administratoraccess"})
_AWS_MANAGED = re.compile(r"^arn:aws[\w-]*:iam::aws:policy/(?:[\w+=,.@/-]*/)?(?P<name>[\w+=,.@-]+)$", re.IGNORECASE)
_ATTACH_TARGETS = {"AttachUserPolicy": "userName", "AttachRolePolicy": "roleName", "AttachGroupPolicy": "groupName"}


# --------------------------------------------------------------------------- #
# Caller and name helpers (shared with decisions/persistence.py)
# --------------------------------------------------------------------------- #


def who(event: CloudTrailEvent) -> str:
    return event.principal_arn or event.identity_type or "unknown principal"


def iam_name(value: Any) -> str:
    """The IAM name in ``value``: a bare name, or the last path segment of an ARN; '' when not a string."""
    if not isinstance(value, str):
        return ""
    v = value.strip()
    if v.startswith("arn:"):
        v = v.split(":", 5)[-1]
    return v.rsplit("/", 1)[-1]


def same_name(a: str, b: str) -> bool:
    """IAM user, group and role names are unique case-insensitively: compare them that way."""
    return bool(a) and bool(b) and a.casefold() == b.casefold()


def caller_user_name(event: CloudTrailEvent) -> str:
    """The IAM user making the call, '' for roles, root, federated and other callers.

    An IAM user of another account is never "this account's" user: '' as well.
    """
    if event.identity_type != "IAMUser":
        return ""
    acct = event.identity_str("accountId")
    if acct and event.account and acct != event.account:
        return ""
    arn = event.principal_arn
    from_arn = arn.rsplit("/", 1)[-1] if ":user/" in arn else ""
    return event.identity_str("userName") or from_arn


def caller_role_name(event: CloudTrailEvent) -> str:
    """The role an assumed-role session of this account comes from, '' otherwise."""
    if event.identity_type != "AssumedRole":
        return ""
    issuer = event.session_issuer_arn
    m = re.match(r"^arn:aws[\w-]*:iam::(\d{12}):role/(?:.*/)?([^/]+)$", issuer)
    if m is None or (event.account and m.group(1) != event.account):
        return ""
    return m.group(2)


def name_matches(name: str, patterns: Iterable[str]) -> str | None:
    """The first fnmatch pattern ``name`` matches, case-insensitively, or None."""
    folded = name.casefold()
    for pat in patterns:
        if fnmatch.fnmatchcase(folded, pat.casefold()):
            return pat
    return None


def patterns_param(rule: Rule, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A rule's list of name patterns from ``params[key]``, or ``default`` when absent or empty."""
    given = tuple(p for p in as_list(rule.params.get(key)) if isinstance(p, str) and p)
    return given or default


# --------------------------------------------------------------------------- #
# Managed policy documents
# --------------------------------------------------------------------------- #


def judge_document(request: Mapping[str, Any], key: str) -> tuple[bool, str]:
    """(risky, why) for the policy document under ``request[key]``."""
    if request_too_large(request):
        return True, "requestParameters omitted as too large to log: the document cannot be inspected"
    raw = request.get(key)
    if raw is None:
        return False, "no policy document in the request"
    parsed = parse_policy(raw)
    if parsed.document is None:
        return True, f"policy document unreadable ({parsed.error or 'unknown encoding'}): it cannot be inspected"
    found = admin_like(parsed.document) + privilege_escalation(parsed.document)
    if not found:
        return False, "no admin-like or privilege-escalation statement"
    return True, "; ".join(dict.fromkeys(found))


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


@decision("managed_policy_escalation")
def managed_policy_escalation(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """CreatePolicy, or CreatePolicyVersion made the default, with an admin-like or escalation document."""
    name = event.event_name
    request = event.request
    if name == "CreatePolicyVersion":
        label = event.req("policyArn")
        if not request_too_large(request) and not _true(event.req("setAsDefault")):
            return Assessment(False, f"CreatePolicyVersion on {label}: not made the default (nothing granted yet)")
    elif name == "CreatePolicy":
        label = event.req("policyName") or event.resp("policy", "arn")
    else:
        return Assessment(False, f"{name} does not write a managed policy document")
    label_s = label if isinstance(label, str) and label else "<unknown policy>"
    risky, why = judge_document(request, "policyDocument")
    if not risky:
        return Assessment(False, f"{name} {label_s}: {why}")
    return Assessment(
        True,
        f"{name} {label_s} by {who(event)}: {why}",
        resource={"type": "AWS::IAM::ManagedPolicy", "id": label_s},
        remediable=False,
    )


@decision("policy_default_version_set")
def policy_default_version_set(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """SetDefaultPolicyVersion: the active document of a managed policy switched to another (unseen) version."""
    arn = event.req("policyArn")
    version = event.req("versionId")
    arn_s = arn if isinstance(arn, str) and arn else "<unknown policy>"
    return Assessment(
        True,
        f"default version of {arn_s} set to {version if isinstance(version, str) else '?'} by {who(event)}: "
        "the version's document is not in this event (an older version may be more permissive)",
        resource={"type": "AWS::IAM::ManagedPolicy", "id": arn_s},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# Self-grants and privileged groups
# --------------------------------------------------------------------------- #


@decision("policy_attached_to_self")
def policy_attached_to_self(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """AttachUserPolicy on the calling user, AttachRolePolicy on the calling session's own role."""
    key = _ATTACH_TARGETS.get(event.event_name)
    if key is None or key == "groupName":
        return Assessment(False, f"{event.event_name}: group membership of the caller is unknown offline")
    target = iam_name(event.req(key))
    me = caller_user_name(event) if key == "userName" else caller_role_name(event)
    if not same_name(target, me):
        return Assessment(False, f"{event.event_name} on {target or '<unknown>'}: not the caller itself")
    arn = event.req("policyArn")
    arn_s = arn.strip() if isinstance(arn, str) else "?"
    m = _AWS_MANAGED.match(arn_s)
    if m and m.group("name") in ADMIN_POLICY_NAMES:
        return Assessment(False, f"{arn_s} on the caller: iam-admin-policy-attached decides that one")
    kind = "user" if key == "userName" else "role"
    return Assessment(
        True,
        f"{who(event)} attached {arn_s} to its own {kind} {target}: a principal granting itself permissions",
        resource={"type": f"AWS::IAM::{kind.capitalize()}", "id": target},
        remediable=False,
    )


@decision("user_added_to_privileged_group")
def user_added_to_privileged_group(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """AddUserToGroup to a group named like an administrators' group, or a user adding itself to any group."""
    group = iam_name(event.req("groupName"))
    user = iam_name(event.req("userName"))
    if not group or not user:
        return Assessment(False, "AddUserToGroup without a group or user name")
    pat = name_matches(group, patterns_param(rule, "privileged_group_patterns", DEFAULT_PRIVILEGED_GROUPS))
    self_add = same_name(user, caller_user_name(event))
    if pat is None and not self_add:
        return Assessment(False, f"group {group} is not a privileged group (by name) and {user} is not the caller")
    why = f"group name matches {pat!r}" if pat else "the caller added itself"
    if pat and self_add:
        why += "; the caller added itself"
    return Assessment(
        True,
        f"user {user} added to group {group} by {who(event)} ({why})",
        resource={"type": "AWS::IAM::Group", "id": group},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# Permission boundaries
# --------------------------------------------------------------------------- #


@decision("permissions_boundary_removed")
def permissions_boundary_removed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Delete{User,Role}PermissionsBoundary, or Put{User,Role}PermissionsBoundary to AdministratorAccess."""
    name = event.event_name
    kind = "user" if "User" in name else "role"
    target = iam_name(event.req("userName" if kind == "user" else "roleName")) or "<unknown>"
    if name.startswith("Delete"):
        why = "permissions boundary removed"
    elif name.startswith("Put"):
        arn = event.req("permissionsBoundary")
        m = _AWS_MANAGED.match(arn.strip()) if isinstance(arn, str) else None
        if m is None or m.group("name").casefold() not in _OPEN_BOUNDARIES:
            return Assessment(False, f"{name} on {target}: boundary {arn!r} is not an open AWS-managed policy")
        why = f"permissions boundary replaced by {m.group('name')} (no limit at all)"
    else:
        return Assessment(False, f"{name} does not change a permissions boundary")
    return Assessment(
        True,
        f"{why} on {kind} {target} by {who(event)}",
        resource={"type": f"AWS::IAM::{kind.capitalize()}", "id": target},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# Roles handed to compute (PassRole)
# --------------------------------------------------------------------------- #


def _profile(event: CloudTrailEvent) -> tuple[str, str]:
    """(instance id, instance-profile name or ARN) of an EC2 call, whatever casing or wrapper EC2 logged."""
    req = event.request
    inner = _ci_get(req, "AssociateIamInstanceProfileRequest", "ReplaceIamInstanceProfileAssociationRequest")
    body = inner if isinstance(inner, Mapping) else req
    prof = _ci_get(body, "IamInstanceProfile")
    ref = _ci_get(prof, "Arn", "Name") if isinstance(prof, Mapping) else prof
    inst = _ci_get(body, "InstanceId", "AssociationId")
    return (inst if isinstance(inst, str) else ""), (ref.strip() if isinstance(ref, str) else "")


#: SageMaker and Glue calls that hand a role (``roleArn``) to code the caller controls: (what, name key).
_ROLE_TAKING_CALLS: dict[tuple[str, str], tuple[str, str]] = {
    ("sagemaker.amazonaws.com", "CreateNotebookInstance"): ("SageMaker notebook", "notebookInstanceName"),
    ("sagemaker.amazonaws.com", "UpdateNotebookInstance"): ("SageMaker notebook", "notebookInstanceName"),
    ("sagemaker.amazonaws.com", "CreateTrainingJob"): ("SageMaker training job", "trainingJobName"),
    ("sagemaker.amazonaws.com", "CreateProcessingJob"): ("SageMaker processing job", "processingJobName"),
    ("glue.amazonaws.com", "CreateDevEndpoint"): ("Glue development endpoint", "endpointName"),
}


def _passed_role(event: CloudTrailEvent) -> tuple[str, str]:
    """(what receives it, role or instance-profile reference) for the calls the PassRole rule selects."""
    src = event.event_source
    name = event.event_name
    if src == "lambda.amazonaws.com" and name.startswith(("CreateFunction", "UpdateFunctionConfiguration")):
        role = event.req("role")
        fn = event.req("functionName")
        return f"Lambda function {fn if isinstance(fn, str) else '?'}", role.strip() if isinstance(role, str) else ""
    if (src, name) in _ROLE_TAKING_CALLS:
        kind, key = _ROLE_TAKING_CALLS[src, name]
        role = _ci_get(event.request, "roleArn")
        what = _ci_get(event.request, key)
        return f"{kind} {what if isinstance(what, str) else '?'}", role.strip() if isinstance(role, str) else ""
    if src == "ec2.amazonaws.com" and name == "RunInstances":
        prof = _ci_get(event.request, "iamInstanceProfile")
        ref = _ci_get(prof, "arn", "name") if isinstance(prof, Mapping) else prof
        return "new EC2 instances", ref.strip() if isinstance(ref, str) else ""
    if src == "ec2.amazonaws.com" and name in ("AssociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation"):
        inst, ref = _profile(event)
        return f"EC2 {inst or 'instance'}", ref
    if src == "ec2.amazonaws.com" and name in ("CreateLaunchTemplate", "CreateLaunchTemplateVersion"):
        prof = _find_key(event.request, "IamInstanceProfile")
        ref = _ci_get(prof, "Arn", "Name") if isinstance(prof, Mapping) else prof
        tpl = _find_key(event.request, "LaunchTemplateName") or _find_key(event.request, "LaunchTemplateId")
        return f"launch template {tpl if isinstance(tpl, str) else '?'}", ref.strip() if isinstance(ref, str) else ""
    return "", ""


def _find_key(obj: Any, key: str, depth: int = 4) -> Any:
    """The value of ``key`` (case-insensitive) at most ``depth`` objects down: EC2 wraps requests differently per API."""
    if depth < 0 or not isinstance(obj, Mapping):
        return None
    found = _ci_get(obj, key)
    if found is not None:
        return found
    for value in obj.values():
        hit = _find_key(value, key, depth - 1)
        if hit is not None:
            return hit
    return None


@decision("privileged_role_passed")
def privileged_role_passed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A Lambda function, EC2 instance or launch template given a role or profile named like an administrator's."""
    target, ref = _passed_role(event)
    if not target:
        return Assessment(False, f"{event.event_source}:{event.event_name} passes no role to compute")
    name = iam_name(ref)
    if not name:
        return Assessment(False, f"{event.event_name}: no role or instance profile in the request")
    pat = name_matches(name, patterns_param(rule, "privileged_role_patterns", DEFAULT_PRIVILEGED_ROLES))
    if pat is None:
        return Assessment(False, f"{event.event_name}: {name} is not a privileged role by name")
    pipeline = deployment_role(event, cfg) if name.casefold().startswith("trailguard-") else None
    if pipeline is not None:
        return Assessment(False, f"{event.event_name}: trailguard's role {name} deployed by its pipeline {pipeline}")
    return Assessment(
        True,
        f"{event.event_name}: {target} given {ref} (name matches {pat!r}) by {who(event)}: whoever controls it "
        "acts with that role's permissions",
        resource={"type": "AWS::IAM::Role", "id": name},
        remediable=False,
    )


@decision("instance_profile_associated")
def instance_profile_associated(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """AssociateIamInstanceProfile / ReplaceIamInstanceProfileAssociation: a running instance's identity changed."""
    inst, ref = _profile(event)
    if not ref:
        return Assessment(False, f"{event.event_name}: no instance profile in the request")
    return Assessment(
        True,
        f"{event.event_name}: instance profile {ref} put on {inst or 'an instance'} by {who(event)}: code on that "
        "instance now acts with the profile's role",
        resource={"type": "AWS::EC2::Instance", "id": inst or "?"},
        remediable=False,
    )
