"""Builders for the windowed-threshold tests: qualifying events of the real catalog rules, at chosen times."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from trailguard_engine.catalog import parse_rule, rules_by_id
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.model import Finding, Rule
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import MemoryWindowStore, ThresholdGate

RULES = rules_by_id()
SECRETS = RULES["secretsmanager-secrets-bulk-read"]
SSM = RULES["ssm-parameters-decrypted-bulk-read"]
PASSWORD = RULES["ec2-password-data-read"]
USERDATA = RULES["ec2-userdata-bulk-read"]
THRESHOLD_RULES = tuple(r for r in RULES.values() if "threshold" in r.params)
TABLE = "trailguard-state"
REGION = "us-east-1"
#: 2026-10-01T12:00:00Z, the time of the catalog examples.
T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC).timestamp()
ACCOUNT = "111122223333"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def secret_read(
    n: int,
    t: float,
    *,
    session: str = "alice",
    role: str = "DevOps",
    event_id: str | None = None,
    secret: str | None = None,
    account: str = ACCOUNT,
) -> dict[str, Any]:
    """GetSecretValue of secret ``n`` (distinct per ``n``) by ``role``/``session`` at ``t``."""
    env = copy.deepcopy(next(e for e in SECRETS.examples_positive if e["detail"]["eventName"] == "GetSecretValue"))
    d = env["detail"]
    d["eventID"] = event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"sm-{role}-{session}-{n}-{t}"))
    d["eventTime"] = env["time"] = iso(t)
    d["requestParameters"] = {"secretId": secret or f"prod/app-{n:04d}/db"}
    ident = d["userIdentity"]
    ident["arn"] = f"arn:aws:sts::{account}:assumed-role/{role}/{session}"
    ident["principalId"] = f"AROA3EXAMPLEROLE0001:{session}"
    ident["accountId"] = account
    ident["sessionContext"]["sessionIssuer"]["arn"] = f"arn:aws:iam::{account}:role/{role}"
    ident["sessionContext"]["sessionIssuer"]["userName"] = role
    d["recipientAccountId"] = env["account"] = account
    return env


def evaluator() -> Evaluator:
    return Evaluator(None, RuntimeConfig())


class Judge:
    """The evaluator plus a gate, as the engine and replay chain them (no AWS)."""

    def __init__(self, store: Any = None, clock: Callable[[], float] | None = None) -> None:
        self.ev = evaluator()
        self.store = store if store is not None else MemoryWindowStore()
        self.metrics: list[tuple[str, str, str]] = []
        self.gate = ThresholdGate(self.store, clock=clock, metric=lambda *m: self.metrics.append(m))

    def finding(self, envelope: dict[str, Any], rule: Rule) -> Finding:
        result = self.ev.evaluate(envelope, only_rule=rule.id)
        result = self.gate.apply_result(CloudTrailEvent(to_envelope(envelope)), result, self.ev.by_id)
        (f,) = result.findings
        return f

    def decisions(self, envelopes: list[dict[str, Any]], rule: Rule) -> list[str]:
        return [self.finding(e, rule).decision for e in envelopes]


#: The request field that names the one resource a single-resource positive reads.
RESOURCE_FIELDS = ("secretId", "name", "instanceId", "roleName", "key", "bucketName")


def distinct_copies(rule: Rule, n: int, *, start: float = T0, step: float = 1.0) -> list[dict[str, Any]]:
    """``n`` copies of the rule's first single-resource positive, each on another resource, ``step`` s apart."""
    base = next(
        e
        for e in rule.examples_positive
        if any(k in (e["detail"].get("requestParameters") or {}) for k in RESOURCE_FIELDS)
    )
    out = []
    for i in range(n):
        env = copy.deepcopy(base)
        d = env["detail"]
        req = d["requestParameters"]
        field = next(k for k in RESOURCE_FIELDS if k in req)
        req[field] = f"i-{i:017x}" if field == "instanceId" else f"/copy/{rule.id}/{i}"
        d["eventID"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rule.id}-{i}-{start}"))
        d["eventTime"] = env["time"] = iso(start + i * step)
        out.append(env)
    return out


def first_seen_rule(history: int = 30, learning: int = 14, rule_id: str = "fs", **changes: Any) -> Rule:
    """A first-seen rule on secret reads (decision ``always``: every event qualifies) for the gate's tests."""
    doc: dict[str, Any] = {
        "id": rule_id,
        "title": "t",
        "description": "t",
        "severity": "MEDIUM",
        "category": "credential-access",
        "mitre": ["T1555"],
        "event_pattern": {"source": ["aws.secretsmanager"]},
        "read_only_events": True,
        "decision": "always",
        "params": {"first_seen": {"history_days": history, "learning_days": learning}},
        "remediation": None,
        "default_mode": "alert",
        "caller_modes": dict.fromkeys(("human", "iac", "service", "identity-center", "unknown"), "alert")
        | {"trailguard": "notice"},
        "runbook": {"triage": ["x"], "queries": ["principal-activity"], "undo": "x"},
        "examples": {"positive": [], "negative": []},
    }
    doc.update(changes)
    return parse_rule(doc, rule_id)
