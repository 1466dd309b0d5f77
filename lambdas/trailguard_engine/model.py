"""Plain data classes shared by the catalog, the decisions and the engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from trailguard_engine.caller import Caller

Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]
Mode = Literal["remediate", "alert", "off"]
DecisionKind = Literal["remediate", "alert", "skip"]
Verdict = Literal["remediate", "alert", "record", "none"]

SEVERITIES: tuple[Severity, ...] = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")
MODES: tuple[Mode, ...] = ("remediate", "alert", "off")


@dataclass(frozen=True, slots=True)
class RemediationSpec:
    """What a rule's remediation does and the IAM actions it needs (read and write)."""

    action: str
    permissions: tuple[str, ...]
    description: str


@dataclass(frozen=True, slots=True)
class Runbook:
    triage: tuple[str, ...]
    queries: tuple[str, ...]
    undo: str


@dataclass(frozen=True, slots=True)
class Rule:
    """One catalog rule, loaded from ``rules/<id>.json``."""

    id: str
    title: str
    description: str
    severity: Severity
    category: str
    mitre: tuple[str, ...]
    references: dict[str, tuple[str, ...]]
    event_pattern: dict[str, Any]
    read_only_events: bool
    decision: str
    params: dict[str, Any]
    remediation: RemediationSpec | None
    default_mode: Mode
    runbook: Runbook
    examples_positive: tuple[dict[str, Any], ...]
    examples_negative: tuple[dict[str, Any], ...]
    matches_failed_calls: bool = False
    #: Caller kind (``caller.CALLER_KINDS``) -> remediate|alert|notice. The effective action is the least of
    #: this and the rule mode. Empty (rules built in code) means the classifier's safe defaults.
    caller_modes: Mapping[str, str] = field(default_factory=dict)
    #: Legal variants of the positives (issue 14): each ``{"bypass", "why", "expect"?, "event"}``.
    examples_variants: tuple[dict[str, Any], ...] = ()
    bypass_classes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Assessment:
    """What a decision function concluded about one event, before modes apply.

    ``risky`` False means the pattern matched but the event is fine (for
    example a security group opened to the world on an allowed port).
    ``resource`` names the resource the remediation would touch and
    ``params`` carries what the remediation needs from the event.
    """

    risky: bool
    reason: str
    resource: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    remediable: bool = True
    #: The target is trailguard's own resource (its trail, rules, roles, functions, stacks): no caller class
    #: lowers the action. Its deployment pipeline is recognised by exact ARN in the decision instead, and a
    #: forged user agent or the attacker's own CloudFormation stack must not buy the attacker an alert-only.
    own_resource: bool = False


@dataclass(frozen=True, slots=True)
class Finding:
    """The decision for one (event, rule) pair: the unit the engine acts on."""

    rule: str
    severity: Severity
    decision: DecisionKind
    action: str | None
    reason: str
    resource: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    #: For a risky event skipped because of who made it or where (loop guard, exemptions): which one.
    silenced_by: str | None = None
    #: Who made the event (set by ``evaluate.decide`` for every finding of a risky event).
    caller: Caller | None = None
    #: An alert only because its caller class lowered remediate to alert (and for no other reason): the
    #: engine reads the live state first (the remediation's ``check``) and stays quiet when it is benign.
    lowered_by_caller: bool = False
    #: The target is trailguard's own resource (:attr:`Assessment.own_resource`): no exemption tag on it is
    #: honoured (a tag is set by whoever can tag the resource, and self-protection must not be switched off by one).
    own_resource: bool = False

    def to_json(self) -> dict[str, Any]:
        out = {
            "rule": self.rule,
            "severity": self.severity,
            "decision": self.decision,
            "action": self.action,
            "reason": self.reason,
        }
        if self.silenced_by:
            out["silenced_by"] = self.silenced_by
        if self.caller is not None:
            out["caller"] = self.caller.kind
        return out


@dataclass(frozen=True, slots=True)
class EventResult:
    """Every finding for one input event and the overall verdict."""

    event_id: str
    event_name: str
    verdict: Verdict
    findings: tuple[Finding, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "eventID": self.event_id,
            "eventName": self.event_name,
            "verdict": self.verdict,
            "findings": [f.to_json() for f in self.findings],
        }


def overall_verdict(findings: tuple[Finding, ...] | list[Finding]) -> Verdict:
    """``remediate`` if any finding remediates, else ``alert`` if any alerts, else ``record`` if a change-record
    rule (severity INFO: filed as INFORMATIONAL, never an alert) fired, else ``none``."""
    kinds = {f.decision for f in findings}
    if "remediate" in kinds:
        return "remediate"
    if any(f.decision == "alert" and f.severity != "INFO" for f in findings):
        return "alert"
    if "alert" in kinds:
        return "record"
    return "none"
