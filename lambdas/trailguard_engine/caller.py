"""Who made a CloudTrail event: the caller classifier every decision uses.

``classify(event, cfg)`` puts the caller of one event in one class:

* ``trailguard``: a session of trailguard's own roles (``RuntimeConfig.is_engine_principal``): the loop guard;
* ``service``: an AWS service acting on its own, proven by what a member admin cannot forge:
  ``userIdentity.type == "AWSService"`` or a session of a service-linked role (issuer path
  ``/aws-service-role/<service>/`` and name ``AWSServiceRoleFor*``; IAM reserves that path). A service acting
  with an ordinary, customer-managed role (``invokedBy`` a service principal on any other role session) is
  ``unknown``: anyone with admin can create such a role, and SSM Automation calls whatever its user asks;
* ``identity-center``: IAM Identity Center provisioning (its ``AWSServiceRoleForSSO`` service-linked role,
  or an ``AWSService`` identity invoked by ``sso.amazonaws.com``);
* ``iac``: an infrastructure-as-code pipeline: a principal listed in config ``callers.iac_principals``;
  a call made through CloudFormation (``invokedBy cloudformation.amazonaws.com``); a Terraform, CDK or
  Pulumi user agent;
* ``human``: the root user (always, whatever it goes through), IAM users, federated users, console sessions, Identity Center user sessions
  (``/aws-reserved/sso.amazonaws.com/`` roles), MFA-authenticated sessions;
* ``unknown``: anything else (for example a role session with no sign of a person).

Evidence an attacker with admin in a member account can forge (a user agent string, a role *named*
like a service-linked or Identity Center role at another path, a stack of their own) never buys more
than an alert: such callers carry ``can_silence=False`` and the evaluator never turns them into a
notice. Only unforgeable evidence (``service``, ``identity-center``, ``trailguard``) or the operator's
own ``iac_principals`` list can.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from trailguard_engine.events import CloudTrailEvent

if TYPE_CHECKING:
    from trailguard_engine.runtime_config import RuntimeConfig

CallerKind = Literal["human", "iac", "service", "identity-center", "trailguard", "unknown"]
CALLER_KINDS: tuple[CallerKind, ...] = get_args(CallerKind)

#: What a caller class can do to a rule's action: act as the rule says, alert only, or notice only.
CallerMode = Literal["remediate", "alert", "notice"]
CALLER_MODES: tuple[CallerMode, ...] = get_args(CallerMode)
#: Strength order: the effective action is the least of the rule mode and the caller-class mode.
MODE_RANK: dict[str, int] = {"notice": 0, "alert": 1, "remediate": 2}
#: The usual per-class defaults of a rule (each catalog file states its own explicitly).
DEFAULT_CALLER_MODES: dict[str, CallerMode] = {
    "human": "remediate",
    "iac": "alert",
    "service": "notice",
    "identity-center": "alert",
    "trailguard": "notice",
    "unknown": "remediate",
}

CLOUDFORMATION = "cloudformation.amazonaws.com"
SSO = "sso.amazonaws.com"

#: ``arn:<partition>:iam::<account>:role/aws-service-role/<service principal>/AWSServiceRoleFor<...>``.
#: IAM reserves the ``/aws-service-role/`` path: only AWS creates roles there, and their trust is fixed.
_SLR_ISSUER = re.compile(
    r"^arn:aws(?:-[a-z]+)*:iam::\d{12}:role/aws-service-role/([a-z0-9.-]+\.amazonaws\.com(?:\.cn)?)/"
    r"(AWSServiceRoleFor[\w+=,.@-]*)$"
)
#: ``arn:<partition>:iam::<account>:role/aws-reserved/sso.amazonaws.com/[<region>/]AWSReservedSSO_<set>_<id>``
_SSO_RESERVED_ISSUER = re.compile(
    r"^arn:aws(?:-[a-z]+)*:iam::\d{12}:role/aws-reserved/sso\.amazonaws\.com/(?:[a-z0-9-]+/)?"
    r"(AWSReservedSSO_[\w+=,.@-]+)$"
)
#: A service principal as CloudTrail writes it in ``invokedBy``.
_SERVICE_PRINCIPAL = re.compile(r"^[a-z0-9][a-z0-9.-]*\.amazonaws\.com(?:\.cn)?$")
#: ``invokedBy`` values that mean "a person through a front end", not a service acting.
_NOT_ACTING_SERVICES = frozenset({"signin.amazonaws.com", "console.amazonaws.com"})
#: IaC tools by user agent (case-insensitive; attacker-controlled, so they only ever lower to an alert).
_IAC_AGENTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?:^|[\s(])terraform[/ ]|terraform-provider-aws/|hashicorp/", re.IGNORECASE), "Terraform"),
    (re.compile(r"(?:^|[\s(])aws-cdk/|\bcdk-assets/|\bcdk-cli/", re.IGNORECASE), "AWS CDK"),
    (re.compile(r"(?:^|[\s(])pulumi(?:-aws)?/|\bpulumi/", re.IGNORECASE), "Pulumi"),
)
_HUMAN_TYPES = {
    "Root": "the root user",
    "IAMUser": "an IAM user",
    "FederatedUser": "a federated user (GetFederationToken)",
    "SAMLUser": "a SAML-federated user",
    "WebIdentityUser": "a web-identity-federated user",
    "IdentityCenterUser": "an Identity Center user",
}


@dataclass(frozen=True, slots=True)
class Caller:
    """The class of an event's caller and the one-line evidence for it."""

    kind: CallerKind
    #: One line: "invokedBy cloudformation.amazonaws.com", "Terraform user agent", ...
    why: str
    #: For ``iac``: what identifies the pipeline for per-pipeline de-duplication; "" otherwise.
    pipeline: str = ""
    #: False when the evidence is attacker-forgeable (user agent, invokedBy CloudFormation): such a
    #: caller may lower remediate to alert but never to a notice.
    can_silence: bool = True

    def describe(self) -> str:
        return f"{_LABEL[self.kind]} ({self.why})"


_LABEL: dict[str, str] = {
    "human": "caller is a human",
    "iac": "caller is IaC",
    "service": "caller is an AWS service",
    "identity-center": "caller is Identity Center",
    "trailguard": "caller is trailguard",
    "unknown": "caller is unknown",
}


#: ``callers.iac_principals`` entry: an IAM/STS principal ARN in the ``aws`` partition with a literal account ID;
#: fnmatch wildcards only in the resource part, after a literal ``role/``, ``user/`` or ``assumed-role/`` and a
#: literal first name character.
_IAC_PRINCIPAL = re.compile(r"^arn:aws:(?:iam|sts)::\d{12}:(?:role|user|assumed-role)/[^*?\[\]/\s][^\s]*$")


def iac_principal_error(pattern: object) -> str | None:
    """Why ``pattern`` is not an acceptable ``callers.iac_principals`` entry, or None when it is."""
    if not isinstance(pattern, str):
        return f"expected a string, got {type(pattern).__name__}"
    if _IAC_PRINCIPAL.match(pattern):
        return None
    parts = pattern.split(":", 5)
    if len(parts) == 6 and (any(c in parts[1] + parts[2] + parts[4] for c in "*?[]")):
        return (
            f"{pattern!r}: the partition, service and account of an IaC principal must be literal (an account "
            "wildcard lets any account admin create a matching role and pass as your pipeline)"
        )
    return (
        f"{pattern!r}: expected an IAM role/user or STS assumed-role ARN with its 12-digit account ID, such as "
        "'arn:aws:iam::111122223333:role/cfn-exec' or 'arn:aws:sts::111122223333:assumed-role/terraform-ci/*' "
        "(wildcards only in the name, after its first character)"
    )


def iac_agent(user_agent: str) -> str | None:
    """The IaC tool a user agent names (Terraform, AWS CDK, Pulumi), or None."""
    for pattern, tool in _IAC_AGENTS:
        if pattern.search(user_agent or ""):
            return tool
    return None


def _role_of(arn: str) -> str:
    """``arn:...:assumed-role/Role/session`` -> ``Role``; other ARNs unchanged."""
    m = re.match(r"^arn:[^:]+:sts::\d{12}:assumed-role/([^/]+)/", arn or "")
    return m.group(1) if m else arn


def _pipeline_principal(event: CloudTrailEvent) -> str:
    return event.session_issuer_arn or event.principal_arn or event.identity_str("principalId") or "unknown principal"


_STACK_TAG = "aws:cloudformation:stack-name"


def _stack_name(event: CloudTrailEvent) -> str:
    """The stack an event names, or "": CloudFormation's own API calls (``stackName``), or the
    ``aws:cloudformation:stack-name`` tag CloudFormation puts on what it creates (``aws:`` tags are reserved).
    """
    for key in ("stackName", "stackSetName"):
        v = event.request.get(key)
        if isinstance(v, str) and v:
            # A stack ID ARN (arn:...:stack/<name>/<uuid>) names the stack too.
            m = re.match(r"^arn:[^:]+:cloudformation:[^:]*:\d{12}:stack/([^/]+)/", v)
            return m.group(1) if m else v
    return _find_stack_tag(event.request, 0)


def _find_stack_tag(obj: object, depth: int) -> str:
    if depth > 6:
        return ""
    if isinstance(obj, dict):
        key = obj.get("Key", obj.get("key"))
        value = obj.get("Value", obj.get("value"))
        if key == _STACK_TAG and isinstance(value, str) and value:
            return value
        children: list[object] = list(obj.values())
    elif isinstance(obj, list):
        children = list(obj[:50])
    else:
        return ""
    for child in children:
        found = _find_stack_tag(child, depth + 1)
        if found:
            return found
    return ""


def classify(event: CloudTrailEvent, cfg: RuntimeConfig) -> Caller:
    """The caller class of ``event``. Never raises; falls back to ``unknown``.

    Remembered on the event for the same ``cfg`` object (the event is read-only, and so is the
    configuration the engine and replay hold): each matching rule of an event asks again.
    """
    memo = event.caller_memo
    if memo is not None and memo[0] is cfg:
        return memo[1]  # type: ignore[no-any-return]
    caller = _classify(event, cfg)
    event.caller_memo = (cfg, caller)
    return caller


def _classify(event: CloudTrailEvent, cfg: RuntimeConfig) -> Caller:
    arn = event.principal_arn
    itype = event.identity_type
    invoked_by = event.invoked_by
    issuer = event.session_issuer_arn

    # 1. trailguard itself (exact account, role and session; look-alikes are judged like anyone).
    if cfg.is_engine_principal(arn, event.account):
        return Caller("trailguard", f"session of trailguard's own role {_role_of(arn)}")

    # 2. The root user is always a person, whatever user agent or service it goes through.
    if itype == "Root":
        return Caller("human", _HUMAN_TYPES["Root"] + (f" via {invoked_by}" if invoked_by else ""))

    # 3. AWS services, proven by CloudTrail itself.
    if itype == "AWSService":
        who = invoked_by or "unnamed service"
        if invoked_by == SSO:
            return Caller("identity-center", f"AWS service identity invoked by {SSO}")
        return Caller("service", f"AWS service identity invoked by {who}")
    m = _SLR_ISSUER.match(issuer) if itype == "AssumedRole" else None
    if m is not None and _role_of(arn) == m.group(2):
        service, role = m.groups()
        via = f", invokedBy {invoked_by}" if invoked_by else ""
        if service == SSO:
            return Caller("identity-center", f"Identity Center service-linked role {role}{via}")
        return Caller("service", f"service-linked role {role} of {service}{via}")

    # 4. IaC: the operator's list (trusted), then CloudFormation and user agents (forgeable: alert at most).
    pattern = cfg.iac_principal(arn, issuer)
    if pattern:
        tool = "CloudFormation" if invoked_by == CLOUDFORMATION else (iac_agent(event.user_agent) or "IaC")
        return Caller(
            "iac",
            f"iac_principals: {pattern}",
            _stack_name(event) or f"{tool} via {_pipeline_principal(event)}",
        )
    if invoked_by == CLOUDFORMATION:
        return Caller(
            "iac",
            f"invokedBy {CLOUDFORMATION}",
            _stack_name(event) or f"CloudFormation via {_pipeline_principal(event)}",
            can_silence=False,
        )
    agent = iac_agent(event.user_agent)
    if agent is not None:
        return Caller(
            "iac",
            f"{agent} user agent",
            _stack_name(event) or f"{agent} via {_pipeline_principal(event)}",
            can_silence=False,
        )

    # 5. People.
    if itype in _HUMAN_TYPES:
        return Caller("human", _HUMAN_TYPES[itype])
    if itype == "AssumedRole":
        sso = _SSO_RESERVED_ISSUER.match(issuer)
        if sso is not None:
            return Caller("human", f"Identity Center user session ({sso.group(1)})")
        if _from_console(event):
            return Caller("human", f"console session of role {_role_of(arn)}")
        if event.mfa_authenticated:
            return Caller("human", f"MFA-authenticated session of role {_role_of(arn)}")
        # A service acting with an ordinary (customer-managed) role is not the service class: anyone with admin
        # can create such a role, and services such as SSM Automation call whatever their user asks.
        if is_service_principal(invoked_by) and invoked_by not in _NOT_ACTING_SERVICES:
            return Caller(
                "unknown", f"session of role {_role_of(arn)}, invokedBy {invoked_by} (not a service-linked role)"
            )
        return Caller("unknown", f"session of role {_role_of(arn) or 'unknown'}")
    return Caller("unknown", f"identity type {itype or 'missing'}")


def _from_console(event: CloudTrailEvent) -> bool:
    v = event.identity.get("sessionCredentialFromConsole")
    if v is True or v == "true":
        return True
    v = event.additional.get("SessionCredentialFromConsole")
    return v is True or v == "true"


#: IAM reserves the ``/aws-service-role/`` path (exactly: paths are case-sensitive) for service-linked roles.
_SLR_PATH = re.compile(r"^arn:aws(?:-[a-z]+)*:iam::\d{12}:role/aws-service-role/")


def service_linked_session(event: CloudTrailEvent) -> bool:
    """True for a session of a service-linked role: only AWS creates roles at that path and only the service
    can assume them, so the call is the service's own work (a look-alike path or name is an ordinary role)."""
    return event.identity_type == "AssumedRole" and bool(_SLR_PATH.match(event.session_issuer_arn or ""))


def is_service_principal(value: str) -> bool:
    return bool(_SERVICE_PRINCIPAL.match(value or ""))
