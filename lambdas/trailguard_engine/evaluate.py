"""Decide what to do with an event: the code path shared by the engine, the
reconciliation function and ``trailguard replay``.

``Evaluator.evaluate(obj)`` normalises the input, finds the matching rules
through the pattern index, runs each rule's decision function and applies the
generic safety policy (failed calls, loop guard, exemptions, caller classes, modes). It makes
no AWS calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from trailguard_engine.caller import Caller, classify
from trailguard_engine.catalog import load_catalog
from trailguard_engine.decisions import registry
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.matcher import PatternIndex
from trailguard_engine.model import Assessment, EventResult, Finding, Rule, overall_verdict
from trailguard_engine.runtime_config import RuntimeConfig

#: Reason prefix of a finding whose decision function raised (tests assert it never happens).
DECISION_ERROR = "decision error"

#: Reason prefixes of skips that silence an event by who made it. The engine still reports those
#: that were risky with a low-severity notice: a name-alike role must never make trailguard silent.
LOOP_GUARD = "loop guard"
EXEMPT_ACCOUNT = "exempt account"
EXEMPT_REGION = "exempt region"
EXEMPT_PRINCIPAL = "exempt principal"
#: Catalog category of the rules that guard trailguard's own resources (no caller class lowers them).
SELF_PROTECTION = "self-protection"

_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_EVENT_ID = re.compile(r"^[A-Za-z0-9-]{8,128}$")


def remediation_blocker(event: CloudTrailEvent) -> str | None:
    """Why this event is too malformed to act on (it can still be alerted), or None.

    The remediation assumes a role in ``account`` and acts in ``region``; the
    idempotency key is the ``eventID``. If any of them is missing or not
    well-formed, acting could hit the wrong place or act twice.
    """
    if not _EVENT_ID.match(event.event_id):
        return "eventID missing or malformed"
    if not _ACCOUNT.match(event.account):
        return "account missing or not a 12-digit ID"
    if not _REGION.match(event.region):
        return "region missing or malformed"
    detail_region = event.detail.get("awsRegion")
    if isinstance(detail_region, str) and detail_region and detail_region != event.region:
        return f"envelope region {event.region} disagrees with awsRegion {detail_region}"
    recipient = event.detail.get("recipientAccountId")
    if isinstance(recipient, str) and recipient and recipient != event.account:
        return f"envelope account {event.account} disagrees with recipientAccountId {recipient}"
    if not event.identity:
        return "userIdentity missing"
    return None


def decide(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Finding:
    """The decision for one event and one matching rule."""

    def skip(
        reason: str, a: Assessment | None = None, silenced_by: str | None = None, caller: Caller | None = None
    ) -> Finding:
        return Finding(
            rule.id,
            rule.severity,
            "skip",
            None,
            reason,
            a.resource if a else {},
            a.params if a else {},
            silenced_by=silenced_by,
            caller=caller,
        )

    mode = cfg.mode_for(rule)
    if mode == "off":
        return skip("rule is off")
    if event.failed and not rule.matches_failed_calls:
        return skip(f"call failed ({event.error_code or 'malformed errorCode'}); nothing changed")

    fn = registry().get(rule.decision)
    if fn is None:  # caught by the catalog meta-tests; never silently pass
        return Finding(rule.id, rule.severity, "alert", None, f"unknown decision function {rule.decision!r}")
    try:
        a = fn(event, rule, cfg)
    except Exception as exc:  # a decision bug must not drop the event or crash the engine: alert, never act
        return Finding(
            rule.id,
            rule.severity,
            "alert",
            None,
            f"{DECISION_ERROR} in {rule.decision}: {type(exc).__name__}: {exc}"[:500],
        )
    if not a.risky:
        return skip(a.reason, a)

    # Who made it / where: never acted on, but a risky event is never silent either (the engine sends
    # a low-severity notice for these): a look-alike role name must not be a way to go unseen.
    caller = classify(event, cfg)
    silenced = _silenced(event, cfg, caller)
    if silenced is not None:
        kind, why = silenced
        return skip(f"{why}; {a.reason}", a, silenced_by=kind, caller=caller)

    # What the caller's class allows: the least of the rule mode and the class mode. Forgeable evidence
    # (a user agent, invokedBy CloudFormation) lowers to an alert at most, never to a notice.
    class_mode, source = cfg.caller_mode_for(rule, caller.kind)
    own = a.own_resource or rule.category == SELF_PROTECTION
    if own:
        class_mode = "remediate"  # trailguard's own resources: the caller class never lowers the action
    forgeable = class_mode == "notice" and not caller.can_silence
    if forgeable:
        class_mode = "alert"
    if class_mode == "notice":
        return skip(
            f"{caller.describe()}: notice only ({source}); {a.reason}",
            a,
            silenced_by=f"caller:{caller.kind}",
            caller=caller,
        )

    cidr = cfg.exempt_source(event.source_ip)
    acts = mode == "remediate" and rule.remediation is not None
    by_class = acts and class_mode != "remediate"
    # Also for a finding the caller class lowered: its live check reads in the event's account and region, so
    # a malformed or self-contradicting envelope keeps it an alert (the check never runs).
    blocker = remediation_blocker(event) if acts else None
    can_remediate = acts and not by_class and a.remediable and not cidr and not blocker
    if can_remediate and rule.remediation is not None:
        return Finding(
            rule.id,
            rule.severity,
            "remediate",
            rule.remediation.action,
            a.reason,
            a.resource,
            a.params,
            caller=caller,
            own_resource=own,
        )
    reason = a.reason
    if by_class:
        reason += f" ({caller.describe()}: alert only{'; that evidence can be forged, so never a notice' if forgeable else ''})"
    if cidr:
        reason += f" (source {event.source_ip} is in exempt network {cidr}: alert only)"
    if blocker and not by_class:
        reason += f" (not remediated: {blocker})"
    lowered = by_class and a.remediable and not cidr and not blocker
    return Finding(
        rule.id, rule.severity, "alert", None, reason, a.resource, a.params, caller=caller, lowered_by_caller=lowered
    )


def _silenced(event: CloudTrailEvent, cfg: RuntimeConfig, caller: Caller) -> tuple[str, str] | None:
    """``(kind, reason)`` when the event's maker or place exempts it from action, or None."""
    if caller.kind == "trailguard":
        return LOOP_GUARD, f"{LOOP_GUARD}: made by trailguard's own role ({caller.why})"
    if event.account and event.account in cfg.exempt_accounts:
        return EXEMPT_ACCOUNT, f"{EXEMPT_ACCOUNT} {event.account}"
    if event.region and event.region in cfg.exempt_regions:
        return EXEMPT_REGION, f"{EXEMPT_REGION} {event.region}"
    pat = cfg.exempt_principal(event.principal_arn)
    if pat:
        return EXEMPT_PRINCIPAL, f"{EXEMPT_PRINCIPAL} (matches {pat})"
    return None


def _read_only_management(envelope: Mapping[str, Any]) -> bool:
    detail = envelope.get("detail")
    if not isinstance(detail, Mapping):
        return False
    ro = detail.get("readOnly")
    read_only = ro is True or (isinstance(ro, str) and ro.lower() == "true")
    category = detail.get("eventCategory", "Management")
    return read_only and category in ("Management", None)


class Evaluator:
    """Matches events against the catalog and decides. Build once, reuse."""

    def __init__(self, rules: Iterable[Rule] | None = None, cfg: RuntimeConfig | None = None) -> None:
        self.rules: tuple[Rule, ...] = tuple(load_catalog() if rules is None else rules)
        self.cfg = cfg or RuntimeConfig()
        self.by_id = {r.id: r for r in self.rules}
        self.index: PatternIndex[Rule] = PatternIndex((r.event_pattern, r) for r in self.rules)

    def matching_rules(self, envelope: Mapping[str, Any]) -> list[Rule]:
        """Rules whose pattern matches and that EventBridge would actually deliver the event to.

        Read-only management events reach a rule only when it is deployed with
        ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS (``read_only_events``), so
        replay and the log-file path skip the others exactly as EventBridge does.
        """
        return self._delivered(envelope, self.index.match(envelope))

    def _delivered(self, envelope: Mapping[str, Any], matched: Iterable[Rule]) -> list[Rule]:
        seen: set[str] = set()
        out = []
        read_only = _read_only_management(envelope)
        for r in matched:
            if read_only and not r.read_only_events:
                continue
            if r.id not in seen:
                seen.add(r.id)
                out.append(r)
        return out

    def evaluate(self, obj: Any, only_rule: str | None = None, *, matched: Iterable[Rule] | None = None) -> EventResult:
        """Judge one input. Raises :class:`~trailguard_engine.exceptions.RejectedEvent` for bad input.

        ``matched``: the rules whose patterns match ``obj``, in the index's order, when the caller already knows
        them (replay memoizes them per distinct field values; issue 19).
        """
        envelope = to_envelope(obj)
        event = CloudTrailEvent(envelope)
        rules = self.matching_rules(envelope) if matched is None else self._delivered(envelope, matched)
        if only_rule is not None:
            rules = [r for r in rules if r.id == only_rule]
        findings = tuple(decide(event, r, self.cfg) for r in rules)
        return EventResult(event.event_id, event.event_name, overall_verdict(findings), findings)
