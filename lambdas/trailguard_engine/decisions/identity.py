"""Decisions for identity rules: root use, console sign-in, IAM privilege and trust changes.

Design choices worth knowing (also in the rules' runbooks):

* Console sign-in without MFA follows the SSO-friendly CIS variant: only
  ``IAMUser`` sign-ins count. Federated and AssumedRole sign-ins carry
  ``MFAUsed: No`` because MFA happened at the identity provider.
* Inline policies: an Allow statement with ``NotAction`` on every resource is
  treated as admin-like (it grants everything except a short list), and so is
  ``iam:*`` on every resource (it can grant itself anything).
* Role trust: org membership of another account cannot be checked offline, so
  any trusted account other than the event's own is reported (alert only) unless
  the statement is pinned with ``aws:PrincipalOrgID`` equal to the configured
  organization. ``sts:ExternalId`` alone does not make ``*`` private: anyone who
  learns the id can assume the role.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from trailguard_engine.decisions import decision
from trailguard_engine.decisions.exposure import load_policy, membership_note, statements, too_large
from trailguard_engine.events import CloudTrailEvent, as_list, dig
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import (
    admin_like,
    external_grants,
    is_allow,
    known_accounts,
    parse_policy,
    privilege_escalation,
    request_too_large,
    statement_public,
)
from trailguard_engine.runtime_config import RuntimeConfig

ADMIN_POLICY_NAMES = frozenset({"AdministratorAccess", "IAMFullAccess"})
_MANAGED_ARN = re.compile(r"^arn:aws[\w-]*:iam::aws:policy/(?:[\w+=,.@/-]*/)?(?P<name>[\w+=,.@-]+)$")
_PRINCIPAL_TYPES = {"AttachUserPolicy": "user", "AttachGroupPolicy": "group", "AttachRolePolicy": "role"}
_PRINCIPAL_KEYS = {"user": "userName", "group": "groupName", "role": "roleName"}
_OIDC_PROVIDERS_NEEDING_SUB = ("token.actions.githubusercontent.com", "gitlab.com", "app.terraform.io")


def _who(event: CloudTrailEvent) -> str:
    return event.principal_arn or event.identity_type or "unknown principal"


def _caller_user_name(event: CloudTrailEvent) -> str:
    """userName of an IAMUser caller ('' for roles, root and others)."""
    if event.identity_type != "IAMUser":
        return ""
    name = event.identity_str("userName")
    if name:
        return name
    arn = event.principal_arn
    return arn.rsplit("/", 1)[-1] if ":user/" in arn else ""


def _str_list(value: Any) -> list[str]:
    return [v for v in as_list(value) if isinstance(v, str)]


# --------------------------------------------------------------------------- #
# Root
# --------------------------------------------------------------------------- #


#: ``invokedBy`` values of root actions taken in the AWS Management Console: still root activity (issue 14).
ROOT_CONSOLE_INVOKERS = frozenset({"signin.amazonaws.com", "console.amazonaws.com", "AWS Internal"})


@decision("root_activity")
def root_activity(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Any call by the root user, console actions included, except AWS service events and calls a service
    made on root's behalf (an ``invokedBy`` naming another AWS service)."""
    if event.identity_type != "Root":
        return Assessment(False, f"caller is {event.identity_type or 'unknown'}, not Root")
    if event.event_type == "AwsServiceEvent":
        return Assessment(False, "AWS service event, not a root action")
    via = event.invoked_by
    if via and via not in ROOT_CONSOLE_INVOKERS:
        return Assessment(False, f"invoked by {via} on root's behalf")
    return Assessment(
        True,
        f"root user called {event.event_source}:{event.event_name}{' in the console (' + via + ')' if via else ''} "
        f"from {event.source_ip or '?'} ({event.user_agent[:80] or 'no user agent'})",
        resource={"type": "AWS::::Account", "id": event.account},
        remediable=False,
    )


@decision("root_access_key_created")
def root_access_key_created(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """CreateAccessKey by the root user for itself."""
    if event.identity_type != "Root":
        return Assessment(False, f"caller is {event.identity_type or 'unknown'}, not Root")
    target = event.req("userName")
    if isinstance(target, str) and target:
        return Assessment(False, f"root created a key for IAM user {target}, not for itself")
    key = event.resp("accessKey", "accessKeyId")
    res = {"type": "AWS::::Account", "id": event.account}
    if not isinstance(key, str) or not key:
        return Assessment(True, "root access key created; key id not in the response", res, remediable=False)
    return Assessment(True, f"root access key {key} created from {event.source_ip or '?'}", res, {"access_key_id": key})


def _login_result(event: CloudTrailEvent) -> str:
    v = event.resp("ConsoleLogin")
    return v if isinstance(v, str) else ""


def _mfa_used(event: CloudTrailEvent) -> bool:
    v = event.additional.get("MFAUsed")
    return isinstance(v, str) and v.strip().lower() == "yes"


@decision("root_console_login")
def root_console_login(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Console sign-in by the root user, successful or not."""
    if event.identity_type != "Root":
        return Assessment(False, f"sign-in by {event.identity_type or 'unknown'}, not Root")
    result = _login_result(event) or "unknown result"
    mfa = "with MFA" if _mfa_used(event) else "WITHOUT MFA"
    return Assessment(
        True,
        f"root console sign-in ({result}, {mfa}) from {event.source_ip or '?'}",
        resource={"type": "AWS::::Account", "id": event.account},
        remediable=False,
    )


@decision("console_login_without_mfa")
def console_login_without_mfa(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Successful IAM-user console sign-in without MFA (SSO-friendly CIS 4.2 variant)."""
    if event.identity_type != "IAMUser":
        return Assessment(
            False, f"{event.identity_type or 'unknown'} sign-in: MFA is enforced by the identity provider"
        )
    if _login_result(event) != "Success":
        return Assessment(False, f"sign-in result is {_login_result(event) or 'unknown'}, not Success")
    if _mfa_used(event):
        return Assessment(False, "sign-in used MFA")
    user = _caller_user_name(event) or event.principal_arn
    return Assessment(
        True,
        f"IAM user {user or '<unknown>'} signed in to the console without MFA from {event.source_ip or '?'}",
        resource={"type": "AWS::IAM::User", "id": user} if user else {},
        remediable=False,
    )


@decision("mfa_device_removed")
def mfa_device_removed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """DeactivateMFADevice or DeleteVirtualMFADevice."""
    user = event.req("userName")
    serial = event.req("serialNumber")
    user_s = user if isinstance(user, str) and user else (_caller_user_name(event) or "the caller")
    serial_s = serial if isinstance(serial, str) else "?"
    return Assessment(
        True,
        f"{event.event_name}: MFA device {serial_s} of {user_s} removed by {_who(event)}",
        resource={"type": "AWS::IAM::User", "id": user_s} if isinstance(user, str) and user else {},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# Privilege
# --------------------------------------------------------------------------- #


@decision("admin_policy_attached")
def admin_policy_attached(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """AWS-managed AdministratorAccess or IAMFullAccess attached to a user, group or role."""
    ptype = _PRINCIPAL_TYPES.get(event.event_name, "")
    arn = event.req("policyArn")
    m = _MANAGED_ARN.match(arn.strip()) if isinstance(arn, str) else None
    if not ptype:
        return Assessment(False, f"{event.event_name} is not an attach call")
    if m is None or m.group("name") not in ADMIN_POLICY_NAMES:
        return Assessment(False, f"{event.event_name}: {arn!r} is not AdministratorAccess or IAMFullAccess")
    policy_arn = arn.strip() if isinstance(arn, str) else ""
    name = event.req(_PRINCIPAL_KEYS[ptype])
    reason = f"{m.group('name')} attached to {ptype} {name if isinstance(name, str) else '<unknown>'} by {_who(event)}"
    if not isinstance(name, str) or not name:
        return Assessment(True, reason + f"; no {_PRINCIPAL_KEYS[ptype]} in the request", remediable=False)
    return Assessment(
        True,
        reason,
        resource={"type": f"AWS::IAM::{ptype.capitalize()}", "id": name},
        params={"principal_type": ptype, "principal_name": name, "policy_arn": policy_arn},
    )


def admin_like_statements(policy: Mapping[str, Any]) -> list[str]:
    """Why each Allow statement is admin-like (:func:`trailguard_engine.policy.admin_like`)."""
    return admin_like(policy)


@decision("inline_policy_admin")
def inline_policy_admin(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutUserPolicy / PutGroupPolicy / PutRolePolicy whose document is admin-like or lets IAM be rewritten.

    Admin-like: every action (any wildcard spelling) or ``NotAction`` on every resource, or every IAM action.
    Self-escalation: a set of IAM actions known to lead to everything (``iam:Put*`` + ``iam:Attach*``,
    ``iam:CreatePolicyVersion`` ...) on every IAM resource. A request too large to log, or a document that
    cannot be read, is alerted: its content cannot be inspected.
    """
    target = next(
        (f"{k[:-4]} {v}" for k in ("userName", "groupName", "roleName") if isinstance(v := event.req(k), str) and v),
        "<unknown principal>",
    )
    if request_too_large(event.request):
        return too_large(event, target)
    parsed = parse_policy(event.req("policyDocument"))
    if parsed.document is None:
        return Assessment(
            True,
            f"{event.event_name} on {target}: the policy document cannot be read ({parsed.error}); check it live",
            remediable=False,
        )
    found = admin_like(parsed.document)
    if not found:
        found = [
            f"lets IAM be rewritten: {r}"
            for r in privilege_escalation(parsed.document, every_resource=True, iam_only=True)
        ]
    if not found:
        return Assessment(False, f"{event.event_name} on {target}: no admin-like statement")
    name = event.req("policyName")
    return Assessment(
        True,
        f"{event.event_name} put inline policy {name if isinstance(name, str) else '?'} on {target}: "
        f"{'; '.join(found)} by {_who(event)}",
        resource={"type": "AWS::IAM::Policy", "id": f"{target}/{name if isinstance(name, str) else '?'}"},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# Trust
# --------------------------------------------------------------------------- #


def _condition_values(cond: Any, key: str, *, fixed_only: bool = True) -> list[str]:
    """Values of condition ``key`` under any non-negated, non-IfExists operator."""
    out: list[str] = []
    if not isinstance(cond, Mapping):
        return out
    for op, block in cond.items():
        if not isinstance(op, str) or not isinstance(block, Mapping):
            continue
        op_l = op.lower()
        if "not" in op_l.replace("forallvalues:", "").replace("foranyvalue:", "") or op_l.endswith("ifexists"):
            continue
        if op_l.startswith("forallvalues:"):
            continue
        for k, v in block.items():
            if isinstance(k, str) and k.lower() == key.lower():
                vals = _str_list(v)
                out += [x for x in vals if not fixed_only or ("*" not in x and "?" not in x and "${" not in x)]
    return out


def _trust_problems(stmt: Mapping[str, Any], account: str, cfg: RuntimeConfig) -> list[str]:
    """Why an Allow statement of a trust policy opens the role: anyone, an account or organization that is not
    ours (:mod:`trailguard_engine.policy`), or an OIDC provider without a ``sub`` condition."""
    if not is_allow(stmt):
        return []
    problems: list[str] = []
    public = statement_public(stmt, account)
    if public:
        problems.append(f"anyone with AWS credentials: {public}")
    else:
        for grantee in external_grants({"Statement": [stmt]}, account, known_accounts(cfg), org_id=cfg.org_id):
            if grantee.startswith("o-"):
                problems.append(
                    f"organization {grantee}, not the configured {cfg.org_id or 'one (none is configured)'}"
                )
            else:
                problems.append(f"account {grantee} outside this account: {membership_note(cfg)}")
    principal = stmt.get("Principal")
    federated = _str_list(principal.get("Federated")) if isinstance(principal, Mapping) else []
    cond = stmt.get("Condition")
    for f in federated:
        if any(f.endswith(provider) or f"/{provider}" in f for provider in _OIDC_PROVIDERS_NEEDING_SUB):
            host = f.rsplit("/", 1)[-1] if "/" in f else f
            subs = _condition_values(cond, f"{host}:sub", fixed_only=False)
            if not subs or any(s.strip() in ("*", "repo:*") for s in subs):
                problems.append(f"OIDC provider {host} without a {host}:sub condition (any repository/project)")
    return problems


@decision("role_trust_opened")
def role_trust_opened(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """CreateRole / UpdateAssumeRolePolicy trusting ``*``, another account, or an OIDC provider without ``sub``."""
    role = event.req("roleName")
    role_s = role if isinstance(role, str) and role else "<unknown role>"
    res = {"type": "AWS::IAM::Role", "id": role_s}
    if request_too_large(event.request):
        return too_large(event, f"role {role_s}", res)
    raw = event.req("assumeRolePolicyDocument") if event.event_name == "CreateRole" else event.req("policyDocument")
    parsed = parse_policy(raw)
    if parsed.document is None:
        return Assessment(
            True,
            f"{event.event_name} on {role_s}: the trust policy is unreadable ({parsed.error}); check it live",
            resource=res,
            remediable=False,
        )
    problems: list[str] = []
    for stmt in statements(parsed.document):
        problems += _trust_problems(stmt, event.account, cfg)
    if not problems:
        return Assessment(False, f"{event.event_name} on {role_s}: trust limited to this account, services or the org")
    return Assessment(
        True,
        f"{event.event_name} on role {role_s} trusts {'; '.join(problems)}; by {_who(event)}",
        resource={"type": "AWS::IAM::Role", "id": role_s},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# Credentials for someone else
# --------------------------------------------------------------------------- #


def _from_console_session(event: CloudTrailEvent) -> bool:
    """The call was made with console session credentials (``sessionCredentialFromConsole``, set by AWS)."""
    v = event.detail.get("sessionCredentialFromConsole")
    return v is True or (isinstance(v, str) and v.strip().lower() == "true")


def _own_password_set_with_keys(event: CloudTrailEvent, caller: str) -> Assessment:
    """An IAM user creating or resetting their own console password: risky when made with access keys.

    CreateLoginProfile/UpdateLoginProfile need no current password (ChangePassword does), so whoever holds a
    user's access keys can give themselves the user's console. From a console session it is the user changing
    their own password; a record without an access key id (never written by CloudTrail) is not judged.
    """
    if event.event_name == "DeleteLoginProfile":
        return Assessment(False, f"DeleteLoginProfile: {caller} removed their own console password")
    if _from_console_session(event):
        return Assessment(False, f"{event.event_name}: {caller} changed their own password from a console session")
    key = event.access_key_id
    if not key:
        return Assessment(False, f"{event.event_name}: {caller}'s own password, credentials not recorded")
    return Assessment(
        True,
        f"{event.event_name}: console password {'created' if event.event_name == 'CreateLoginProfile' else 'reset'} "
        f"for user {caller} by that user with access key {key[:32]} (not a console session): whoever holds the "
        "keys gives themselves the user's console",
        resource={"type": "AWS::IAM::User", "id": caller},
        remediable=False,
    )


@decision("login_profile_for_other_user")
def login_profile_for_other_user(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Create/Update/DeleteLoginProfile aimed at a user other than the caller (set, reset or removed), or an
    IAM user's own console password created or reset with access keys rather than from a console session."""
    target = event.req("userName")
    caller = _caller_user_name(event)
    if not isinstance(target, str) or not target:
        if event.identity_type == "IAMUser":
            if caller:
                return _own_password_set_with_keys(event, caller)
            return Assessment(False, f"{event.event_name} without userName: the caller's own password")
        return Assessment(
            True,
            f"{event.event_name} without userName by {event.identity_type or 'unknown'}: "
            "targets the root user's password (AssumeRoot) or an unreadable request",
            resource={"type": "AWS::::Account", "id": event.account},
            remediable=False,
        )
    if caller and caller == target:
        return _own_password_set_with_keys(event, caller)
    return Assessment(
        True,
        f"{event.event_name}: console password {'removed' if event.event_name == 'DeleteLoginProfile' else 'set'} "
        f"for user {target} by {_who(event)}",
        resource={"type": "AWS::IAM::User", "id": target},
        remediable=False,
    )


@decision("access_key_for_other_user")
def access_key_for_other_user(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """CreateAccessKey for a user other than the caller (by an IAM user, a role or root)."""
    target = event.req("userName")
    if not isinstance(target, str) or not target:
        return Assessment(False, "CreateAccessKey without userName: a key for the caller itself")
    caller = _caller_user_name(event)
    if caller and caller == target:
        return Assessment(False, f"CreateAccessKey: {caller} created a key for themselves")
    key = event.resp("accessKey", "accessKeyId")
    return Assessment(
        True,
        f"access key {key if isinstance(key, str) else '?'} created for user {target} by {_who(event)}",
        resource={"type": "AWS::IAM::User", "id": target},
        params={"user_name": target, "access_key_id": key if isinstance(key, str) else ""},
        remediable=False,
    )


@decision("federation_token_by_iam_user")
def federation_token_by_iam_user(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """sts:GetFederationToken called with an IAM user's long-term key."""
    if event.identity_type != "IAMUser":
        return Assessment(False, f"GetFederationToken by {event.identity_type or 'unknown'}, not an IAM user")
    name = event.req("name")
    policy = load_policy(event.req("policy"))
    wide = bool(policy and admin_like_statements(policy))
    user = _caller_user_name(event) or event.principal_arn
    return Assessment(
        True,
        f"IAM user {user or '<unknown>'} minted federation token {name if isinstance(name, str) else '?'}"
        f"{' with an admin-like session policy' if wide else ''} (key {event.access_key_id or '?'}); "
        "these sessions outlive key deactivation",
        resource={"type": "AWS::IAM::User", "id": user} if user else {},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# Identity providers
# --------------------------------------------------------------------------- #


@decision("identity_provider_changed")
def identity_provider_changed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A SAML/OIDC identity provider or a Roles Anywhere trust anchor created or changed.

    Providers that IAM Identity Center manages (invokedBy sso.amazonaws.com) are expected.
    """
    if event.invoked_by == "sso.amazonaws.com":
        return Assessment(False, "managed by IAM Identity Center")
    name = (
        event.req("name")
        or event.req("url")
        or event.req("sAMLProviderArn")
        or event.req("trustAnchorId")
        or event.resp("sAMLProviderArn")
        or event.resp("openIDConnectProviderArn")
        or dig(event.response, "trustAnchor", "trustAnchorArn")
    )
    label = name if isinstance(name, str) and name else "<unnamed>"
    return Assessment(
        True,
        f"{event.event_source.split('.')[0]}:{event.event_name} {label} by {_who(event)}",
        resource={"type": "AWS::IAM::Provider", "id": label},
        remediable=False,
    )


@decision("iam_user_created")
def iam_user_created(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """CreateUser: informational, for correlation with keys, passwords and policies that follow."""
    user = event.req("userName")
    user_s = user if isinstance(user, str) and user else "<unknown>"
    return Assessment(
        True,
        f"IAM user {user_s} created by {_who(event)}",
        resource={"type": "AWS::IAM::User", "id": user_s},
        remediable=False,
    )
