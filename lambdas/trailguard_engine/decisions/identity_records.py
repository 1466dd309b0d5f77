"""Identity, KMS and CloudShell decisions for items of the public rule sets the catalog lacked (issue 14, task B).

* :func:`identity_change_record`: the generic :func:`~trailguard_engine.decisions.common.change_record` (severity
  INFO: a Security Hub INFORMATIONAL finding and the audit log, never an SNS alert) with the resource type
  chosen by the request field that named the resource (``params.resource_types``: field -> type), so one
  record rule can group IAM calls on users, roles and groups and still name each resource with its own type.
* :func:`guardrail_policy_deleted`: ``iam:DeletePolicy`` of a customer-managed policy whose name or path says it
  is a guardrail (a permissions boundary, a deny or restrict policy, an SCP copy, a quarantine). Deleting one
  widens every principal it bounded at once; the name is the only thing the record says about the policy.
* :func:`cloudshell_iam_change`: IAM identity and permission writes made from AWS CloudShell (its SDKs add
  ``exec-env/CloudShell`` to the user agent). CloudShell runs with the console session's credentials: a
  hijacked console session (a stolen cookie, an adversary-in-the-middle phish) turns into lasting access by
  creating keys, users or policy grants there. The user agent is the caller's to choose: its absence proves
  nothing, and the other IAM rules judge the same calls whatever the user agent.
* :func:`exposed_key_inline_quarantine`: the inline form of AWS's quarantine of a leaked access key: an inline
  user policy named ``AWSExposedCredentialPolicy_DO_NOT_REMOVE`` (or ``AWSCompromisedKeyQuarantine*``) put on
  the user (the key must be treated as stolen) or deleted from it (the quarantine lifted). The managed-policy
  form is ``iam-compromised-key-quarantine``.

All are pure, never raise on a crafted request (fields are read only when they are strings) and alert only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from trailguard_engine.decisions import decision
from trailguard_engine.decisions.common import RESOURCE_FIELDS, change_record
from trailguard_engine.events import CloudTrailEvent, get_ci, text
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import is_allow, parse_policy, request_too_large, statements
from trailguard_engine.runtime_config import RuntimeConfig

#: ``params.resource_types`` of an :func:`identity_change_record` rule: request field -> CloudFormation-style type.
RESOURCE_TYPES = "resource_types"


# --------------------------------------------------------------------------- #
# Change records
# --------------------------------------------------------------------------- #
@decision("identity_change_record")
def identity_change_record(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A change record (see ``change_record``) typed by the request field that names the resource.

    ``params.resource_fields`` are tried in order (as ``change_record`` does); the first that holds a string
    names the resource and ``params.resource_types[field]`` gives its type (else ``params.resource_type``).
    """
    assessment = change_record(event, rule, cfg)
    if not assessment.risky or not assessment.resource:
        return assessment
    types = rule.params.get(RESOURCE_TYPES)
    if not isinstance(types, Mapping):
        return assessment
    for name in rule.params.get(RESOURCE_FIELDS) or ():
        if not isinstance(name, str):
            continue
        if text(get_ci(event.request, name)):
            rtype = types.get(name)
            if isinstance(rtype, str) and rtype:
                return Assessment(True, assessment.reason, {**assessment.resource, "type": rtype}, remediable=False)
            break
    return assessment


# --------------------------------------------------------------------------- #
# Guardrail policy deleted
# --------------------------------------------------------------------------- #
#: Words that name a guardrail policy, anywhere in its path or name (case-insensitive): a permissions
#: boundary, a deny/restrict policy (not "unrestricted"), a guardrail, a quarantine.
_GUARDRAIL_WORDS = re.compile(r"boundary|boundaries|deny|(?<!un)restrict|guardrail|quarantine", re.IGNORECASE)
#: "SCP" as a word of its own (scp-baseline, ScpBaseline, SCPBaseline, org_scp), not inside another word.
_SCP_CASED = re.compile(r"(?:^|[^A-Za-z])[Ss]cp(?:$|[^a-z])|SCP")
#: ``arn:<partition>:iam::<account>:policy/<path/><name>``
_POLICY_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}|aws):policy/(.+)$", re.IGNORECASE)


def guardrail_words(path_and_name: str) -> list[str]:
    """The guardrail words found in a policy's path and name (lower case, deduplicated, in order)."""
    found = [m.group(0).lower() for m in _GUARDRAIL_WORDS.finditer(path_and_name)]
    if _SCP_CASED.search(path_and_name):
        found.append("scp")
    return list(dict.fromkeys(found))


@decision("guardrail_policy_deleted")
def guardrail_policy_deleted(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """DeletePolicy of a customer-managed policy named like a guardrail (boundary, deny, restrict, SCP ...)."""
    if event.event_name != "DeletePolicy":
        return Assessment(False, f"{event.event_name} does not delete a managed policy")
    arn = text(get_ci(event.request, "policyArn"))
    m = _POLICY_ARN.match(arn)
    if m is None:
        return Assessment(False, f"policyArn {arn[:160] or '(none)'} is not an IAM policy ARN")
    path_and_name = m.group(2)
    words = guardrail_words(path_and_name)
    if not words:
        return Assessment(False, f"policy {path_and_name[:160]} is not named like a guardrail")
    return Assessment(
        True,
        f"guardrail policy {path_and_name[:160]} deleted by {event.actor[:200]} (named: {', '.join(words)}): "
        "every principal it bounded or denied is widened at once",
        {"type": "AWS::IAM::ManagedPolicy", "id": arn[:300]},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# IAM changes from CloudShell
# --------------------------------------------------------------------------- #
#: The execution environment CloudShell's SDKs and CLI add to the user agent (any casing, ``exec-env/`` or
#: the ``AWS_EXECUTION_ENV`` form some SDKs write).
CLOUDSHELL_AGENT = re.compile(r"exec[-_]env[/:=\s]*cloudshell", re.IGNORECASE)
#: The request field naming the principal an IAM call changes, with its type.
_PRINCIPAL_FIELDS = (("userName", "AWS::IAM::User"), ("roleName", "AWS::IAM::Role"), ("groupName", "AWS::IAM::Group"))


@decision("cloudshell_iam_change")
def cloudshell_iam_change(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """An IAM identity or permission write (the rule selects which) made from AWS CloudShell."""
    if CLOUDSHELL_AGENT.search(event.user_agent) is None:
        return Assessment(False, f"{event.event_name} not made from CloudShell")
    target, rtype = "", ""
    for name, kind in _PRINCIPAL_FIELDS:
        value = text(get_ci(event.request, name))
        if value:
            target, rtype = value, kind
            break
    if not target and event.event_name in ("CreateAccessKey", "CreateLoginProfile", "UpdateLoginProfile"):
        target, rtype = (event.identity_str("userName") or event.actor), "AWS::IAM::User"
    key = event.resp("accessKey", "accessKeyId")
    extra = f" (new key {key[:32]})" if isinstance(key, str) and key else ""
    on = f" on {target[:128]}" if target else ""
    return Assessment(
        True,
        f"{event.event_name}{on}{extra} from CloudShell by {event.actor[:200]}: a console session making lasting "
        "IAM access (keys, users, policy grants) is how a hijacked session persists",
        {"type": rtype, "id": target[:128]} if target else {},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# AWS's inline quarantine of an exposed key
# --------------------------------------------------------------------------- #
#: Inline policy names AWS uses to quarantine a user whose access key it found published.
EXPOSED_KEY_POLICY = re.compile(
    r"^(?:AWSExposedCredentialPolicy_DO_NOT_REMOVE|AWSCompromisedKeyQuarantine[\w+=,.@-]*)$", re.IGNORECASE
)


@decision("exposed_key_inline_quarantine")
def exposed_key_inline_quarantine(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutUserPolicy / DeleteUserPolicy of AWS's exposed-key quarantine inline policy (by its name)."""
    name = event.event_name
    if name not in ("PutUserPolicy", "DeleteUserPolicy"):
        return Assessment(False, f"{name} does not put or delete a user's inline policy")
    user = text(get_ci(event.request, "userName"))
    if name == "PutUserPolicy" and request_too_large(event.request):
        return Assessment(
            True,
            f"PutUserPolicy on user {user[:128] or '?'} by {event.actor[:200]}: CloudTrail omitted the request as too "
            "large (an inline user policy is at most 2 KB, so this is not an ordinary call) and its name cannot be "
            "compared with AWS's exposed-key quarantine: list the user's inline policies",
            {"type": "AWS::IAM::User", "id": user[:128]} if user else {},
            remediable=False,
        )
    policy = text(get_ci(event.request, "policyName"))
    if not EXPOSED_KEY_POLICY.match(policy):
        return Assessment(False, f"inline policy {policy[:128] or '?'} is not AWS's exposed-key quarantine")
    res = {"type": "AWS::IAM::User", "id": user[:128] or event.actor[:128]}
    if name == "DeleteUserPolicy":
        return Assessment(
            True,
            f"{policy[:128]} deleted from user {user[:128] or '?'} by {event.actor[:200]}: the quarantine AWS put on "
            "an exposed access key is lifted; confirm the exposed key was deleted first",
            res,
            remediable=False,
        )
    note = ""
    parsed = parse_policy(get_ci(event.request, "policyDocument"))
    if parsed.document is not None and any(is_allow(s) for s in statements(parsed.document)):
        note = " (its document ALLOWS actions: AWS's quarantine only denies, so this one is named to look like it)"
    return Assessment(
        True,
        f"{policy[:128]} put on user {user[:128] or '?'}{note}: AWS found an access key of this user published "
        "(for example in a public repository); treat the key as stolen even though the quarantine blocks its "
        "riskiest actions",
        res,
        remediable=False,
    )
