"""The failed-attempt rule: an access-denied call to an action a CRITICAL or HIGH rule watches.

The action list is derived from the catalog itself (:func:`critical_actions`), so
it can never drift from the rules; ``python -m trailguard.catalog_tools
sync-failed-attempts`` writes the same list into the rule's EventBridge pattern.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from trailguard_engine.catalog import load_catalog
from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig

FAILED_RULE_ID = "failed-critical-action"
WATCHED_SEVERITIES = ("CRITICAL", "HIGH")
ACCESS_DENIED_PREFIX = "AccessDenied"
UNAUTHORIZED_SUFFIX = "UnauthorizedOperation"
API_CALL = "AWS API Call via CloudTrail"
#: Data events (object reads and writes, function invocations): a refused one is routine (a missing object
#: grant, a scanner, a misconfigured client) and their volume is unbounded, so a single refusal is never an
#: attempted critical action; the rules that watch them count volume instead (issue 14).
DATA_EVENT_SOURCES_NAMES = frozenset(
    {
        ("s3.amazonaws.com", "GetObject"),
        ("s3.amazonaws.com", "PutObject"),
        ("s3.amazonaws.com", "CopyObject"),
        ("s3.amazonaws.com", "DeleteObject"),
        ("s3.amazonaws.com", "DeleteObjects"),
        ("s3.amazonaws.com", "HeadObject"),
        ("s3.amazonaws.com", "RestoreObject"),
        ("s3.amazonaws.com", "CreateMultipartUpload"),
        ("s3.amazonaws.com", "UploadPart"),
        ("s3.amazonaws.com", "UploadPartCopy"),
        ("s3.amazonaws.com", "CompleteMultipartUpload"),
        ("lambda.amazonaws.com", "Invoke"),
    }
)


@dataclass(frozen=True, slots=True)
class Action:
    """One watched action: an eventSource and an eventName literal or prefix."""

    event_source: str
    name: str
    is_prefix: bool
    rule_id: str

    def covers(self, event_source: str, event_name: str) -> bool:
        if event_source != self.event_source:
            return False
        return event_name.startswith(self.name) if self.is_prefix else event_name == self.name


def is_access_denied(error_code: str) -> bool:
    """``AccessDenied``, ``AccessDeniedException``, ``Client.UnauthorizedOperation`` ..."""
    return error_code.startswith(ACCESS_DENIED_PREFIX) or error_code.endswith(UNAUTHORIZED_SUFFIX)


def _literals(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _names(value: Any) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for f in value if isinstance(value, list) else []:
        if isinstance(f, str):
            out.append((f, False))
        elif isinstance(f, Mapping) and isinstance(f.get("prefix"), str):
            out.append((f["prefix"], True))
    return out


def _walk(detail: Mapping[str, Any], sources: list[str], rule_id: str) -> list[Action]:
    sources = _literals(detail.get("eventSource")) or sources
    found = [Action(s, n, p, rule_id) for s in sources for n, p in _names(detail.get("eventName"))]
    for branch in detail.get("$or", []) if isinstance(detail.get("$or"), list) else []:
        if isinstance(branch, Mapping):
            found.extend(_walk(branch, sources, rule_id))
    return found


def critical_actions(rules: Iterable[Rule]) -> tuple[Action, ...]:
    """Every (eventSource, eventName) the CRITICAL/HIGH rules watch, sorted and de-duplicated.

    Rules without a literal eventSource and eventName in their pattern (for
    example the user-agent rule) cannot be turned into actions and are left out,
    as are console sign-in rules (a refused sign-in carries no errorCode), burst (threshold) rules and
    data events (:data:`DATA_EVENT_SOURCES_NAMES`) and rules over read-only events (a refused
    ``AssumeRoot`` is logged read-only; this rule is deployed without read-only events).
    """
    seen: dict[tuple[str, str, bool, str], Action] = {}  # per rule: a refusal names every rule that watches it
    for rule in rules:
        if rule.severity not in WATCHED_SEVERITIES or rule.matches_failed_calls or rule.id == FAILED_RULE_ID:
            continue
        if rule.read_only_events:
            continue  # the failed-attempt rule is deployed without read-only events: it would never see these
        if rule.params.get("threshold"):
            continue  # a burst rule's signal is volume: one refused read is not an attempt at what it watches
        detail = rule.event_pattern.get("detail")
        detail_types = rule.event_pattern.get("detail-type")
        if not isinstance(detail, Mapping) or (isinstance(detail_types, list) and API_CALL not in detail_types):
            continue  # console sign-ins fail without an errorCode: only API calls can be access-denied
        for a in _walk(detail, [], rule.id):
            if (a.event_source, a.name) in DATA_EVENT_SOURCES_NAMES:
                continue
            seen.setdefault((a.event_source, a.name, a.is_prefix, a.rule_id), a)
    return tuple(seen[k] for k in sorted(seen))


@lru_cache(maxsize=1)
def _catalog_actions() -> dict[str, tuple[Action, ...]]:
    """The watched actions by event source (an event is compared with its own service's actions only)."""
    by_source: dict[str, list[Action]] = {}
    for a in critical_actions(load_catalog()):
        by_source.setdefault(a.event_source, []).append(a)
    return {source: tuple(actions) for source, actions in by_source.items()}


@decision("failed_critical")
def failed_critical(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Alert (never remediate) on an access-denied call to a watched action."""
    if not is_access_denied(event.error_code):
        return Assessment(False, f"not an access-denied failure ({event.error_code or 'no errorCode'})")
    hits = sorted(
        {
            a.rule_id
            for a in _catalog_actions().get(event.event_source, ())
            if a.covers(event.event_source, event.event_name)
        }
    )
    if not hits:
        return Assessment(False, f"{event.event_name} is not watched by a CRITICAL or HIGH rule")
    who = event.principal_arn or event.identity_type or "unknown principal"
    return Assessment(
        True,
        f"{event.error_code} on {event.event_source.split('.')[0]}:{event.event_name} by {who}"
        f" (attempted: {', '.join(hits)})",
        {"type": "AWS::IAM::Principal", "id": who},
        remediable=False,
    )
