"""The rule catalog: one JSON file per rule under ``rules/``.

This loader is what the Lambda functions, the CDK app and the CLI all use,
so the deployed patterns, the engine and ``replay`` cannot disagree. It checks
structure strictly enough to fail fast; the full schema (pydantic, with a JSON
Schema export) lives in ``trailguard.catalog_schema`` and is enforced in tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from trailguard_engine.caller import CALLER_KINDS, CALLER_MODES
from trailguard_engine.exceptions import CatalogError
from trailguard_engine.matcher import PatternError, compile_pattern
from trailguard_engine.model import MODES, SEVERITIES, RemediationSpec, Rule, Runbook
from trailguard_engine.window import check_rule as check_threshold

RULES_DIR = Path(__file__).with_name("rules")
#: Severity of change-record rules (kept as records, never alerts; see the engine) and their generic decision.
RECORD_SEVERITY = "INFO"
CHANGE_RECORD_DECISION = "change_record"


def is_record_rule(rule: Rule) -> bool:
    """True for a change-record rule: severity INFO (or the generic ``change_record`` decision)."""
    return rule.severity == RECORD_SEVERITY or rule.decision == CHANGE_RECORD_DECISION


def _req(doc: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    v = doc.get(key)
    if not isinstance(v, kind):
        raise CatalogError(f"{where}: {key}: expected {kind.__name__}")
    return v


def parse_rule(doc: Any, where: str = "<rule>") -> Rule:
    """Build a :class:`Rule` from a parsed JSON document."""
    if not isinstance(doc, Mapping):
        raise CatalogError(f"{where}: expected a JSON object")
    severity = _req(doc, "severity", str, where)
    if severity not in SEVERITIES:
        raise CatalogError(f"{where}: severity: expected one of {SEVERITIES}")
    mode = _req(doc, "default_mode", str, where)
    if mode not in MODES:
        raise CatalogError(f"{where}: default_mode: expected one of {MODES}")
    rem_doc = doc.get("remediation")
    remediation = None
    if rem_doc is not None:
        if not isinstance(rem_doc, Mapping):
            raise CatalogError(f"{where}: remediation: expected an object or null")
        remediation = RemediationSpec(
            action=_req(rem_doc, "action", str, where + ".remediation"),
            permissions=tuple(_req(rem_doc, "permissions", list, where + ".remediation")),
            description=_req(rem_doc, "description", str, where + ".remediation"),
        )
    pattern = _req(doc, "event_pattern", dict, where)
    try:
        # What EventBridge would refuse at deploy time is refused here, by rule name. The compiled form is kept
        # (by identity) for the evaluator, which compiles the same catalog objects: no second compilation.
        compile_pattern(pattern)
    except PatternError as exc:
        raise CatalogError(f"{where}: event_pattern: {exc}") from exc
    caller_modes = _caller_modes(doc, where)
    rb = _req(doc, "runbook", dict, where)
    ex = _req(doc, "examples", dict, where)
    refs = doc.get("references") or {}
    rule = Rule(
        id=_req(doc, "id", str, where),
        title=_req(doc, "title", str, where),
        description=_req(doc, "description", str, where),
        severity=severity,
        category=_req(doc, "category", str, where),
        mitre=tuple(_req(doc, "mitre", list, where)),
        references={str(k): tuple(v) for k, v in refs.items()},
        event_pattern=pattern,
        read_only_events=bool(doc.get("read_only_events", False)),
        decision=_req(doc, "decision", str, where),
        params=dict(doc.get("params") or {}),
        remediation=remediation,
        default_mode=mode,
        runbook=Runbook(
            triage=tuple(_req(rb, "triage", list, where + ".runbook")),
            queries=tuple(_req(rb, "queries", list, where + ".runbook")),
            undo=_req(rb, "undo", str, where + ".runbook"),
        ),
        examples_positive=tuple(_req(ex, "positive", list, where + ".examples")),
        examples_negative=tuple(_req(ex, "negative", list, where + ".examples")),
        matches_failed_calls=bool(doc.get("matches_failed_calls", False)),
        caller_modes=caller_modes,
        examples_variants=tuple(ex.get("variants") or ()),
        bypass_classes=tuple(doc.get("bypass_classes") or ()),
    )
    check_threshold(rule, where)  # params.threshold (windowed rules): valid, bounded, alert-only
    _check_record_rule(rule, where)
    return rule


def _check_record_rule(rule: Rule, where: str) -> None:
    """A change-record rule (severity INFO) records calls, it never acts and never pages.

    It has no remediation, its default mode is ``alert`` (kept as a record) or ``off``, and it has no
    ``params.threshold`` (a record is per call; a burst worth a human's look is an alerting rule). The
    generic ``change_record`` decision fires on every selected call, so it is for INFO rules only: at a
    higher severity it would page on routine work.
    """
    if rule.decision == CHANGE_RECORD_DECISION and rule.severity != RECORD_SEVERITY:
        raise CatalogError(
            f"{where}: decision {CHANGE_RECORD_DECISION!r} records every selected call: severity must be "
            f"{RECORD_SEVERITY!r}, not {rule.severity!r} (use a decision that judges the risky form to alert)"
        )
    if rule.severity != RECORD_SEVERITY:
        return
    if rule.remediation is not None:
        raise CatalogError(f"{where}: an INFO rule (change record) must have remediation null: records never act")
    if rule.default_mode not in ("alert", "off"):
        raise CatalogError(
            f"{where}: an INFO rule (change record) must have default_mode 'alert' or 'off', not {rule.default_mode!r}"
        )
    if "threshold" in rule.params:
        raise CatalogError(
            f"{where}: an INFO rule (change record) must not have params.threshold: a record is kept per call"
        )


def _caller_modes(doc: Mapping[str, Any], where: str) -> dict[str, str]:
    """``caller_modes``: every caller kind, each remediate|alert|notice; trailguard itself is always notice."""
    cm = _req(doc, "caller_modes", dict, where)
    missing = [k for k in CALLER_KINDS if k not in cm]
    extra = sorted(set(cm) - set(CALLER_KINDS))
    if missing or extra:
        raise CatalogError(
            f"{where}: caller_modes: needs exactly the kinds {CALLER_KINDS} (missing {missing}, unknown {extra})"
        )
    for kind, mode in cm.items():
        if mode not in CALLER_MODES:
            raise CatalogError(f"{where}: caller_modes.{kind}: expected one of {CALLER_MODES}, got {mode!r}")
    if cm["trailguard"] != "notice":
        raise CatalogError(f"{where}: caller_modes.trailguard: must be 'notice' (the loop guard)")
    return {k: cm[k] for k in CALLER_KINDS}


def load_rule_file(path: Path) -> Rule:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogError(f"{path.name}: cannot load ({exc})") from exc
    rule = parse_rule(doc, path.name)
    if rule.id != path.stem:
        raise CatalogError(f"{path.name}: id {rule.id!r} must equal the file name")
    return rule


@lru_cache(maxsize=4)
def load_catalog(rules_dir: Path = RULES_DIR) -> tuple[Rule, ...]:
    """All rules, sorted by id. Cached: the catalog is immutable at run time."""
    rules = tuple(load_rule_file(p) for p in sorted(rules_dir.glob("*.json")))
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise CatalogError(f"duplicate rule id {r.id!r}")
        seen.add(r.id)
    return rules


def rules_by_id(rules_dir: Path = RULES_DIR) -> dict[str, Rule]:
    return {r.id: r for r in load_catalog(rules_dir)}
