"""Decisions for identity gaps the public rule sets cover and the catalog lacked (issue 14 §3, wave 2).

* IAM calls made from **S3 Browser**, a Windows S3 client: an intrusion set (Permiso's "GUI-vil") used it with
  stolen keys to create users, access keys, console passwords and its templated inline policy. An S3 client
  has no routine reason to manage IAM identities, so the user agent alone is the signal.
* **Principal enumeration through trust policies**: ``UpdateAssumeRolePolicy`` refuses a trust policy naming
  a principal that does not exist (``MalformedPolicyDocument``), so an attacker who may update one role's trust
  policy can test thousands of user and role ARNs of any account (Pacu's ``iam__enum_roles`` and
  ``iam__enum_users``, Quiet Riot). One failure is a typo; many in minutes by one principal is the scan. The
  decision says whether one call *qualifies*; the rule's ``params.threshold`` (:mod:`trailguard_engine.window`)
  counts them per principal.

Both are pure and alert only: nothing here is remediated.
"""

from __future__ import annotations

import re

from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import parse_policy, request_too_large
from trailguard_engine.runtime_config import RuntimeConfig

#: S3 Browser's user agent ("S3 Browser 11.5.7 https://s3browser.com"), in any casing and spacing.
S3_BROWSER = re.compile(r"s3[\s_-]*browser", re.IGNORECASE)
#: The placeholder of S3 Browser's policy template: a policy written with it is the tool's default, unedited.
S3_BROWSER_TEMPLATE = "<your-bucket-name>"
#: IAM's refusal of a trust policy naming a principal that does not exist; CloudTrail spells IAM error codes
#: with or without the ``Exception`` suffix.
MALFORMED_POLICY = frozenset({"malformedpolicydocument", "malformedpolicydocumentexception"})


def _who(event: CloudTrailEvent) -> str:
    return event.principal_arn or event.access_key_id or "unknown principal"


@decision("s3_browser_iam_call")
def s3_browser_iam_call(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """An IAM identity call (user, access key, console password, inline policy) from the S3 Browser client."""
    if S3_BROWSER.search(event.user_agent) is None:
        return Assessment(False, f"{event.event_name} not from S3 Browser")
    target = event.req("userName")
    user = target if isinstance(target, str) and target else ""
    detail = ""
    if event.event_name == "PutUserPolicy":
        if request_too_large(event.request):
            detail = " (request too large to record: read the policy live)"
        else:
            parsed = parse_policy(event.req("policyDocument"))
            text = str(parsed.document) if parsed.document is not None else str(event.req("policyDocument"))
            if S3_BROWSER_TEMPLATE in text.lower():
                detail = " with S3 Browser's unedited policy template"
    return Assessment(
        True,
        f"{event.event_name} on user {user or '(the caller)'} from S3 Browser by {_who(event)}{detail}",
        resource={"type": "AWS::IAM::User", "id": user or _who(event)},
        remediable=False,
    )


@decision("iam_trust_policy_principal_probe")
def iam_trust_policy_principal_probe(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """UpdateAssumeRolePolicy refused as ``MalformedPolicyDocument``: one probe of a principal's existence."""
    if event.event_name != "UpdateAssumeRolePolicy":
        return Assessment(False, f"{event.event_name} is not a trust policy update")
    if not event.failed:
        return Assessment(False, "trust policy update succeeded: not a refused probe")
    if event.error_code.strip().lower() not in MALFORMED_POLICY:
        return Assessment(False, f"refused with {event.error_code[:80]}, not MalformedPolicyDocument")
    role = event.req("roleName")
    role_s = role if isinstance(role, str) and role else "?"
    message = event.error_message[:200]
    return Assessment(
        True,
        f"trust policy of role {role_s[:128]} refused ({event.error_code}: {message or 'no message'}) "
        f"for {_who(event)}",
        {"type": "AWS::IAM::Role", "id": role_s[:128]},
        remediable=False,
    )
