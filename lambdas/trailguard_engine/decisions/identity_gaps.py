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
* **Instance identity credentials used directly**: besides the instance profile's credentials, IMDS hands
  every instance the credentials of the AWS-reserved role ``aws:ec2-instance`` (session named by the instance
  id), meant for AWS features such as the SSM agent's ``RegisterManagedInstance``. A call signed with them
  from an IP address, anything else than that registration, is someone who read them from IMDS (SSRF, a
  foothold on the instance) and replays them, often just ``sts:GetCallerIdentity`` or refused probes.

All are pure and alert only: nothing here is remediated.
"""

from __future__ import annotations

import ipaddress
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


#: The session of an AWS-reserved role (``aws:ec2-instance``, the EC2 instance identity role): IAM role names
#: cannot contain a colon, so no customer role looks like this.
#: Services whose on-instance agents use the identity credentials (Systems Manager's RegisterManagedInstance and
#: Default Host Management; EC2 Instance Connect's host keys): their calls from the instance are the design.
#: The documented sample (Sigma) exempts RegisterManagedInstance only; the whole service is exempted here
#: because the agents' other calls are not documented call by call, at the price of missing a replay there.
IDENTITY_ROLE_FEATURES = frozenset({"ssm.amazonaws.com", "ec2-instance-connect.amazonaws.com"})
_RESERVED_SESSION = re.compile(r"^arn:aws[a-z-]*:sts::\d{12}:assumed-role/(aws:[^/]+)/(.+)$")


@decision("instance_identity_credentials_used")
def instance_identity_credentials_used(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A call signed with an AWS-reserved role session (the instance identity credentials from IMDS), made from
    an IP address rather than by AWS internally, to a service other than those the credentials are for."""
    m = _RESERVED_SESSION.match(event.principal_arn)
    if m is None:
        return Assessment(False, "not an AWS-reserved (aws:*) role session")
    if event.event_source in IDENTITY_ROLE_FEATURES:
        return Assessment(
            False, f"{event.event_source}: a feature the instance identity credentials are for (SSM agent, EIC)"
        )
    try:
        ip = ipaddress.ip_address(event.source_ip.strip())
    except ValueError:
        return Assessment(False, f"made by AWS ({event.source_ip[:80] or 'no source address'}), not from an address")
    role, session = m.group(1), m.group(2)
    failed = f" (failed: {event.error_code[:80]})" if event.failed else ""
    return Assessment(
        True,
        f"{event.event_source[:80]} {event.event_name[:80]} with the {role[:64]} credentials of {session[:64]} "
        f"from {ip}{failed}: instance identity credentials lifted from IMDS and used directly",
        {"type": "AWS::EC2::Instance", "id": session[:64]},
        remediable=False,
    )
