"""Decisions for persistence: credentials that outlive a response, and trust that lets an attacker back in.

What is judged here, and why (also in the rules' runbooks):

* "For another user": IAM user names are unique case-insensitively, so ``Alice`` and ``alice`` are one
  user; the caller's name comes from ``userIdentity.userName`` (or its ARN). Roles, root and federated
  callers have no user name: anything they do to a user is done to another user.
* MFA: a device enabled on another user lets its holder pass MFA as that user. An IAM user's own registration
  is self-service, unless it is made with the long-term ``AKIA`` key: console and GetSessionToken sessions use
  ``ASIA`` keys (and IAM refuses IAM calls from a session token without MFA), so that is a stolen key planting
  the attacker's device. The key id is written by AWS; a console user agent proves nothing.
* ``UpdateAccessKey`` to ``Active`` brings back a key someone deactivated (often an incident responder).
* Service-specific credentials (CodeCommit Git, Keyspaces, Bedrock API keys) are long-term secrets that
  key rotation and deactivation do not touch.
* ``GetSessionToken`` by an IAM user: the MFA workflow of the CLI sends the device's ``serialNumber``
  and is skipped; a session minted from the bare key (what tools do with a stolen key) is alerted.
* ``GetSigninToken``: the console federation endpoint turns temporary credentials into a console
  session. Identity Center portal sessions (their issuer is an ``/aws-reserved/sso.amazonaws.com/``
  role, a path IAM reserves) are skipped; a federated user (minted by ``GetFederationToken`` from an IAM
  user's key) and any other role session are alerted.
"""

from __future__ import annotations

import re

from trailguard_engine.decisions import decision
from trailguard_engine.decisions.iam_escalation import (
    DEFAULT_PRIVILEGED_ROLES,
    caller_user_name,
    iam_name,
    name_matches,
    patterns_param,
    same_name,
    who,
)
from trailguard_engine.events import CloudTrailEvent, as_list, dig
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig

_SSO_ISSUER = re.compile(
    r"^arn:aws[\w-]*:iam::\d{12}:role/aws-reserved/sso\.amazonaws\.com/(?:[\w-]+/)?AWSReservedSSO_"
)
_INSTANCE_SESSION = re.compile(r"^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
#: The task policies AssumeRoot accepts that give the member's root user a credential back.
_ROOT_CREDENTIAL_TASKS = frozenset({"iamcreaterootuserpassword"})


def _other_user(event: CloudTrailEvent, target: str) -> bool:
    """True when ``target`` names a user other than the caller (any target, for callers that are not users)."""
    return not same_name(target, caller_user_name(event))


def _user_resource(user: str) -> dict[str, str]:
    return {"type": "AWS::IAM::User", "id": user}


@decision("access_key_reactivated")
def access_key_reactivated(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """UpdateAccessKey with status Active: a deactivated key brought back."""
    status = event.req("status")
    if not (isinstance(status, str) and status.strip().casefold() == "active"):
        return Assessment(False, f"UpdateAccessKey to {status!r}, not Active")
    key = event.req("accessKeyId")
    user = iam_name(event.req("userName")) or caller_user_name(event) or "the caller"
    return Assessment(
        True,
        f"access key {key if isinstance(key, str) else '?'} of {user} reactivated by {who(event)}",
        resource=_user_resource(user),
        remediable=False,
    )


@decision("service_specific_credential")
def service_specific_credential(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Create/ResetServiceSpecificCredential: a long-term secret for CodeCommit, Keyspaces or Bedrock."""
    user = iam_name(event.req("userName")) or caller_user_name(event)
    service = event.req("serviceName") or event.resp("serviceSpecificCredential", "serviceName")
    cred = event.req("serviceSpecificCredentialId") or event.resp(
        "serviceSpecificCredential", "serviceSpecificCredentialId"
    )
    other = " (another user)" if user and _other_user(event, user) else ""
    verb = "reset" if event.event_name.startswith("Reset") else "created"
    return Assessment(
        True,
        f"service-specific credential {cred if isinstance(cred, str) else '?'} "
        f"{'for ' + service + ' ' if isinstance(service, str) else ''}{verb} for {user or '<unknown user>'}{other} "
        f"by {who(event)}",
        resource=_user_resource(user or "?"),
        remediable=False,
    )


@decision("key_material_for_other_user")
def key_material_for_other_user(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """UploadSSHPublicKey / UploadSigningCertificate for a user other than the caller (or root's own certificate)."""
    what = "SSH public key" if event.event_name == "UploadSSHPublicKey" else "signing certificate"
    target = iam_name(event.req("userName"))
    if not target:
        if event.identity_type == "Root":
            return Assessment(
                True,
                f"{what} uploaded for the root user (a long-term root credential) from {event.source_ip or '?'}",
                resource={"type": "AWS::::Account", "id": event.account},
                remediable=False,
            )
        return Assessment(False, f"{event.event_name} without userName: the caller's own {what}")
    if not _other_user(event, target):
        return Assessment(False, f"{event.event_name}: {target} uploaded their own {what}")
    return Assessment(
        True,
        f"{what} uploaded for user {target} by {who(event)}: a credential the caller holds, logged as {target}",
        resource=_user_resource(target),
        remediable=False,
    )


def _long_term_key(event: CloudTrailEvent) -> bool:
    """An IAM user calling with its long-term access key (``AKIA``; set by AWS, not forgeable in the record).

    Console sessions and GetSessionToken sessions use temporary ``ASIA`` keys, and IAM refuses IAM calls from a
    session token without MFA; so an IAM user's own MFA registration that succeeds with a long-term key is the API
    path a stolen key takes to plant the attacker's device (and then pass MFA conditions).
    """
    return event.identity_type == "IAMUser" and event.access_key_id.startswith("AKIA")


def _mfa_self_service(event: CloudTrailEvent, what: str, resource: dict[str, str]) -> Assessment:
    """An IAM user's own MFA registration: self-service in the console, suspicious with a long-term key."""
    if _long_term_key(event):
        return Assessment(
            True,
            f"{what} by IAM user {caller_user_name(event)} for itself with its long-term access key "
            f"{event.access_key_id} (the API, not the console): a stolen key registering the attacker's MFA device",
            resource=resource,
            remediable=False,
        )
    return Assessment(False, f"{what} by the user itself in a console or MFA session (self-service)")


@decision("mfa_for_other_user")
def mfa_for_other_user(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """EnableMFADevice on another user; CreateVirtualMFADevice by a role or federated session; an IAM user's own
    MFA registration made with its long-term access key."""
    if event.event_name == "CreateVirtualMFADevice":
        dev = event.req("virtualMFADeviceName") or event.resp("virtualMFADevice", "serialNumber")
        dev_s = dev if isinstance(dev, str) else "?"
        res = {"type": "AWS::IAM::VirtualMFADevice", "id": dev_s}
        if event.identity_type == "Root":
            return Assessment(False, "virtual MFA device created by the root user (its own setup; see root-activity)")
        if event.identity_type == "IAMUser":
            return _mfa_self_service(event, f"virtual MFA device {dev_s} created", res)
        return Assessment(
            True,
            f"virtual MFA device {dev_s} created by {who(event)} "
            "(not an IAM user creating its own): watch for EnableMFADevice on another user",
            resource=res,
            remediable=False,
        )
    target = iam_name(event.req("userName"))
    if not target:
        return Assessment(False, f"{event.event_name} without userName")
    serial = event.req("serialNumber")
    serial_s = serial if isinstance(serial, str) else "?"
    if not _other_user(event, target):
        return _mfa_self_service(event, f"MFA device {serial_s} enabled", _user_resource(target))
    return Assessment(
        True,
        f"MFA device {serial_s} enabled on user {target} by {who(event)}: "
        "whoever holds the device can pass MFA as that user",
        resource=_user_resource(target),
        remediable=False,
    )


@decision("identity_provider_modified")
def identity_provider_modified(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """OIDC thumbprint or client-ID changes, SAML provider metadata updates and deletions.

    Identity Center manages its own SAML providers (``invokedBy sso.amazonaws.com``): expected.
    """
    if event.invoked_by == "sso.amazonaws.com":
        return Assessment(False, "managed by IAM Identity Center")
    arn = event.req("openIDConnectProviderArn") or event.req("sAMLProviderArn") or event.resp("sAMLProviderArn")
    label = arn if isinstance(arn, str) and arn else "<unknown provider>"
    detail = {
        "UpdateOpenIDConnectProviderThumbprint": "thumbprints replaced (the issuer's TLS certificate pin)",
        "AddClientIDToOpenIDConnectProvider": f"client ID {event.req('clientID')!s} added (a new audience)",
        "UpdateSAMLProvider": "SAML metadata replaced (the signing certificate federated sign-in trusts)",
        "DeleteSAMLProvider": "SAML provider deleted (federated sign-in through it stops)",
    }.get(event.event_name)
    if detail is None:
        return Assessment(False, f"{event.event_name} does not change an identity provider's trust")
    return Assessment(
        True,
        f"{event.event_name} on {label}: {detail}; by {who(event)}",
        resource={"type": "AWS::IAM::Provider", "id": label},
        remediable=False,
    )


@decision("rolesanywhere_profile_changed")
def rolesanywhere_profile_changed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """IAM Roles Anywhere CreateProfile, or UpdateProfile of its roles or session scoping: what certificate holders get."""
    roles = [r for r in as_list(event.req("roleArns")) if isinstance(r, str)]
    name = event.req("name") or event.req("profileId") or dig(event.response, "profile", "name")
    label = name if isinstance(name, str) and name else "<unknown profile>"
    scoping = [k for k in ("sessionPolicy", "managedPolicyArns") if event.req(k) is not None]
    if event.event_name == "UpdateProfile" and not roles and not scoping:
        return Assessment(False, f"UpdateProfile {label}: roles and session scoping unchanged")
    pats = patterns_param(rule, "privileged_role_patterns", DEFAULT_PRIVILEGED_ROLES)
    privileged = [r for r in roles if name_matches(iam_name(r), pats)]
    extra = f"; privileged by name: {', '.join(privileged)}" if privileged else ""
    if scoping and event.event_name == "UpdateProfile":
        extra += f"; session scoping replaced ({', '.join(scoping)}: may widen what each session can do)"
    return Assessment(
        True,
        f"Roles Anywhere {event.event_name} {label} by {who(event)} lets certificate holders assume "
        f"{', '.join(roles) or 'its roles'}{extra}",
        resource={"type": "AWS::RolesAnywhere::Profile", "id": label},
        remediable=False,
    )


@decision("signin_token_minted")
def signin_token_minted(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """GetSigninToken: temporary credentials turned into a console session, outside Identity Center."""
    if _SSO_ISSUER.match(event.session_issuer_arn):
        return Assessment(False, "Identity Center portal session (reserved sso.amazonaws.com role path)")
    kind = event.identity_type or "unknown"
    session = event.principal_arn.rsplit("/", 1)[-1] if event.identity_type == "AssumedRole" else ""
    if kind == "FederatedUser":
        why = "a federated user (GetFederationToken from an IAM user's key): the classic stolen-key console pivot"
    elif _INSTANCE_SESSION.match(session):
        why = f"an EC2 instance's role session ({session}): workload credentials used for the console"
    else:
        why = f"a {kind} session outside Identity Center"
    return Assessment(
        True,
        f"console sign-in token minted by {who(event)} from {event.source_ip or '?'}: {why}",
        resource={"type": "AWS::IAM::Principal", "id": event.principal_arn or kind},
        remediable=False,
    )


@decision("session_token_without_mfa")
def session_token_without_mfa(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """GetSessionToken by an IAM user without an MFA serial number."""
    if event.identity_type != "IAMUser":
        return Assessment(False, f"GetSessionToken by {event.identity_type or 'unknown'}, not an IAM user")
    serial = event.req("serialNumber")
    if isinstance(serial, str) and serial.strip():
        return Assessment(False, "GetSessionToken with an MFA device (the CLI's MFA workflow)")
    user = caller_user_name(event) or event.principal_arn or "<unknown>"
    return Assessment(
        True,
        f"IAM user {user} minted a session token without MFA (key {event.access_key_id or '?'}) from "
        f"{event.source_ip or '?'}: a session from the bare long-term key",
        resource=_user_resource(user),
        remediable=False,
    )


@decision("assume_root")
def assume_root(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """sts:AssumeRoot: a privileged root session in a member account (centralized root access)."""
    target = event.req("targetPrincipal")
    task = event.req("taskPolicyArn", "arn") or event.req("taskPolicyArn")
    task_s = task if isinstance(task, str) else "?"
    task_name = iam_name(task_s)
    restores = task_name.casefold() in _ROOT_CREDENTIAL_TASKS
    return Assessment(
        True,
        f"AssumeRoot into {target if isinstance(target, str) else '?'} with task {task_name or '?'} by {who(event)}"
        + ("; this task gives the member's root user a password again" if restores else ""),
        resource={"type": "AWS::::Account", "id": target if isinstance(target, str) else "?"},
        remediable=False,
    )
