"""Decisions for suspicious-behaviour rules: tooling user agents, human Lambda changes, user data."""

from __future__ import annotations

import re
from functools import lru_cache

from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, as_list, dig
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig

DEFAULT_MARKERS = ("kali", "parrot", "pentoo", "pacu")
CONSOLE_AGENTS = ("console.amazonaws.com", "signin.amazonaws.com")


@lru_cache(maxsize=16)
def _marker_re(markers: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(m) for m in markers)
    # A marker must be a word of its own: "x86_64.kali.2024", "6.5.0-13parrot1", "Pacu/1.5" match;
    # "alkaline" does not.
    return re.compile(rf"(?<![a-z])({alternatives})(?![a-z])", re.IGNORECASE)


@decision("offensive_user_agent")
def offensive_user_agent(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Risky when the user agent names an offensive distribution or tool as a word of its own."""
    markers = tuple(m for m in as_list(rule.params.get("markers")) if isinstance(m, str) and m) or DEFAULT_MARKERS
    m = _marker_re(markers).search(event.user_agent)
    if m is None:
        return Assessment(False, "user agent has no offensive-tool marker as a word")
    who = event.principal_arn or event.access_key_id or "unknown principal"
    return Assessment(
        True,
        f"{event.event_name} from a {m.group(1).lower()} user agent by {who} (key {event.access_key_id or '-'})",
        {"type": "AWS::IAM::Principal", "id": who},
        remediable=False,
    )


def human_actor(event: CloudTrailEvent) -> str | None:
    """Why the caller counts as a person, or None for pipelines and services.

    A person is an IAM user or the root user; an IAM Identity Center session
    (role ``AWSReservedSSO_*``); or another assumed-role session that no AWS
    service invoked and that used the console or a browser.
    """
    kind = event.identity_type
    if kind in ("IAMUser", "Root"):
        return kind
    if kind != "AssumedRole":
        return None
    issuer = dig(event.identity, "sessionContext", "sessionIssuer", "userName")
    if isinstance(issuer, str) and issuer.startswith("AWSReservedSSO_"):
        return "IAM Identity Center session"
    ua = event.user_agent
    if not event.invoked_by and (ua.startswith("Mozilla/") or ua in CONSOLE_AGENTS):
        return "console session"
    return None


@decision("lambda_human_change")
def lambda_human_change(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Lambda code (or layers) changed by a person rather than a pipeline."""
    name = event.event_name
    if name.startswith("UpdateFunctionConfiguration") and not as_list(event.req("layers")):
        return Assessment(False, "configuration change without layers")
    if not name.startswith(("UpdateFunctionCode", "UpdateFunctionConfiguration")):
        return Assessment(False, f"{name} is not a code or layer change")
    actor = human_actor(event)
    if actor is None:
        return Assessment(False, "made by a pipeline or service, not a person")
    fn = event.req("functionName")
    fn_id = fn if isinstance(fn, str) else ""
    what = "layers" if name.startswith("UpdateFunctionConfiguration") else "code"
    return Assessment(
        True,
        f"Lambda {what} of {fn_id or '?'} changed by {event.principal_arn or 'unknown'} ({actor})",
        {"type": "AWS::Lambda::Function", "id": fn_id},
        remediable=False,
    )


@decision("ec2_userdata")
def ec2_userdata(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """ModifyInstanceAttribute: risky only when the user data attribute was set."""
    if "userData" not in event.request:
        return Assessment(False, "another instance attribute changed")
    instance = event.req("instanceId")
    iid = instance if isinstance(instance, str) else ""
    return Assessment(
        True,
        f"user data of {iid or '?'} modified by {event.principal_arn or 'unknown principal'}",
        {"type": "AWS::EC2::Instance", "id": iid},
        remediable=False,
    )
