"""IAM remediations: detach an admin policy; remove a root access key.

Root access keys cannot be touched by any IAM role: ``iam:UpdateAccessKey``
on the root user is root-only. The one programmatic path is centralized root
access (AWS Organizations): the management account or the delegated
administrator for IAM calls ``sts:AssumeRoot`` on a regional endpoint with the
AWS-managed task policy ``root-task/IAMDeleteRootUserCredentials`` and gets a
15-minute privileged session in the member account. That task policy allows
*deleting* root credentials (ListAccessKeys, DeleteAccessKey, ...), not
deactivating them, so this remediation deletes the key. It runs with the
engine's own credentials (not the member role); when the engine's account is
not allowed to call AssumeRoot (feature off, not delegated admin, standalone
mode) it reports ``failed`` with an alert: a human must remove the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trailguard_engine import clients
from trailguard_engine.remediations import (
    ActionResult,
    ParamError,
    RemediationContext,
    error_code,
    remediation,
    tag_list_to_map,
)

ROOT_TASK_POLICY = "iam::aws:policy/root-task/IAMDeleteRootUserCredentials"
_KINDS = ("user", "group", "role")


def _principal(ctx: RemediationContext) -> tuple[str, str]:
    kind = ctx.param("principal_type").lower()
    if kind not in _KINDS:
        raise ParamError(f"detach_admin_policy: principal_type must be one of {_KINDS}, got {kind!r}")
    return kind, ctx.param("principal_name")


def principal_tags(ctx: RemediationContext) -> Mapping[str, str]:
    kind, name = _principal(ctx)
    iam = ctx.client("iam")
    try:
        if kind == "user":
            return tag_list_to_map(iam.list_user_tags(UserName=name).get("Tags"))
        if kind == "role":
            return tag_list_to_map(iam.list_role_tags(RoleName=name).get("Tags"))
    except Exception as exc:
        if error_code(exc) == "NoSuchEntity":
            return {}
        raise
    return {}  # IAM groups cannot be tagged


def _attached(iam: Any, kind: str, name: str) -> list[str]:
    op = {
        "user": "list_attached_user_policies",
        "group": "list_attached_group_policies",
        "role": "list_attached_role_policies",
    }[kind]
    arg = {"user": "UserName", "group": "GroupName", "role": "RoleName"}[kind]
    arns: list[str] = []
    kwargs: dict[str, Any] = {arg: name}
    while True:
        resp = getattr(iam, op)(**kwargs)
        arns.extend(str(p["PolicyArn"]) for p in resp.get("AttachedPolicies", []))
        if not resp.get("IsTruncated"):
            return arns
        kwargs["Marker"] = resp["Marker"]


#: Role paths IAM reserves for AWS: nobody can create roles there (so the live path is proof), and their
#: policies are managed by a service: Identity Center permission sets (``/aws-reserved/sso.amazonaws.com/``),
#: service-linked roles (``/aws-service-role/``).
RESERVED_ROLE_PATHS = {
    "/aws-reserved/": "an IAM Identity Center (or other AWS-reserved) role: its policies come from the permission "
    "set; change the permission set or the assignment in Identity Center, not the role",
    "/aws-service-role/": "a service-linked role: its policies are managed by the AWS service",
}


def _reserved_role(iam: Any, name: str) -> str:
    """Why the role must not be changed by trailguard (its live path is reserved by IAM), or ''.

    The event names the role only; a role merely *named* ``AWSReservedSSO_*`` elsewhere is an
    ordinary role and is remediated: only the path, read live, counts.
    """
    path = str(iam.get_role(RoleName=name)["Role"].get("Path") or "/")
    for prefix, why in RESERVED_ROLE_PATHS.items():
        if path.startswith(prefix):
            return f"{why} (path {path})"
    return ""


@remediation("detach_admin_policy", resource="principal_name", tags=principal_tags)
def detach_admin_policy(ctx: RemediationContext) -> ActionResult:
    """Detach exactly the named policy from the principal, if it is still attached."""
    kind, name = _principal(ctx)
    policy = ctx.param("policy_arn")
    iam = ctx.client("iam")
    try:
        if kind == "role":
            reserved = _reserved_role(iam, name)
            if reserved:
                return ActionResult("skipped", f"not detaching {policy} from role {name}: {reserved}", alert=True)
        attached = _attached(iam, kind, name)
    except Exception as exc:
        if error_code(exc) == "NoSuchEntity":
            return ActionResult("already_safe", f"{kind} {name} no longer exists")
        raise
    if policy not in attached:
        return ActionResult("already_safe", f"{policy} is not attached to {kind} {name}")
    arg = {"user": "UserName", "group": "GroupName", "role": "RoleName"}[kind]
    getattr(iam, f"detach_{kind}_policy")(**{arg: name, "PolicyArn": policy})
    return ActionResult(
        "remediated",
        f"detached {policy} from {kind} {name}; {len(attached) - 1} other attached policy(ies) kept",
        (f"iam:Detach{kind.capitalize()}Policy {name} {policy}",),
    )


_UNSUPPORTED = (
    "AccessDenied",
    "AccessDeniedException",
    "InvalidAction",
    "UnknownOperationException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ValidationError",
)


@remediation("deactivate_root_access_key", resource="access_key_id", needs_member_role=False)
def deactivate_root_access_key(ctx: RemediationContext) -> ActionResult:
    """Delete the root access key through a centralized-root-access privileged session.

    See the module docstring: deactivation is impossible for any role, the
    privileged task policy only allows deletion.
    """
    key = ctx.param("access_key_id")
    sts = ctx.factory.engine("sts")
    try:
        resp = sts.assume_root(
            TargetPrincipal=ctx.account,
            TaskPolicyArn={"arn": f"arn:{ctx.partition()}:{ROOT_TASK_POLICY}"},
            DurationSeconds=900,
        )
    except Exception as exc:
        code = error_code(exc)
        if code in _UNSUPPORTED or isinstance(exc, (AttributeError, NotImplementedError)):
            return ActionResult(
                "failed",
                f"unsupported here: sts:AssumeRoot into {ctx.account} failed ({code or type(exc).__name__}). "
                "Removing a root access key needs centralized root access with this account as the management "
                f"account or IAM delegated administrator. Remove root key {key} by hand.",
                alert=True,
            )
        raise
    raw = resp["Credentials"]
    creds = {k: str(raw[k]) for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
    iam = clients.new_client("iam", region=ctx.factory.engine_region, credentials=creds)
    keys = [str(k.get("AccessKeyId")) for k in iam.list_access_keys().get("AccessKeyMetadata", [])]
    if key not in keys:
        return ActionResult("already_safe", f"root access key {key} no longer exists in {ctx.account}")
    iam.delete_access_key(AccessKeyId=key)
    return ActionResult(
        "remediated",
        f"deleted root access key {key} in {ctx.account} (privileged root session; deactivation is not available)",
        (f"iam:DeleteAccessKey root {key} (via sts:AssumeRoot {ROOT_TASK_POLICY.rsplit('/', 1)[-1]})",),
    )
