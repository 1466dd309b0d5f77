"""Meta-tests over every rule of the catalog (every helper's rules, not one area's)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from catalog_helpers import RULES, moto_matches
from trailguard_engine.decisions import registry
from trailguard_engine.evaluate import Evaluator, decide
from trailguard_engine.events import SIGNIN_DETAIL_TYPES, CloudTrailEvent, to_envelope
from trailguard_engine.matcher import matches
from trailguard_engine.model import MODES, SEVERITIES, Rule
from trailguard_engine.pattern_split import pattern_size, split_pattern
from trailguard_engine.runtime_config import RuntimeConfig

from stacks.forwarding import PATTERN_SPLIT_CHARS

ROOT = Path(__file__).resolve().parents[2]
QUERIES_DIR = ROOT / "trailguard" / "queries"
IAM_ACTION = re.compile(r"^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$")
# EventBridge's default quota on the size of one event pattern (adjustable to 4096).
MAX_PATTERN_CHARS = 2048

EVALUATOR = Evaluator(RULES, RuntimeConfig())
by_rule = pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)


def _examples(kind: str) -> list[tuple[Rule, int, dict]]:
    out = []
    for r in RULES:
        exs = r.examples_positive if kind == "positive" else r.examples_negative
        out.extend((r, i, ex) for i, ex in enumerate(exs))
    return out


POSITIVES = _examples("positive")
NEGATIVES = _examples("negative")


@by_rule
def test_rule_is_complete(rule: Rule) -> None:
    assert rule.examples_positive
    assert rule.examples_negative
    assert rule.runbook.triage
    assert all(t.strip() for t in rule.runbook.triage)
    assert rule.runbook.queries
    assert rule.runbook.undo.strip()
    assert rule.decision in registry(), f"decision {rule.decision!r} is not registered"
    assert rule.severity in SEVERITIES
    assert rule.default_mode in MODES
    assert rule.mitre
    assert all(re.fullmatch(r"T\d{4}(\.\d{3})?", t) for t in rule.mitre)


@by_rule
def test_remediation_declares_permissions(rule: Rule) -> None:
    if rule.remediation is None:
        assert rule.default_mode != "remediate"
        return
    perms = rule.remediation.permissions
    assert perms, "a remediation must declare its IAM actions"
    bad = [p for p in perms if not IAM_ACTION.fullmatch(p) or "*" in p]
    assert not bad, f"not service:Action form: {bad}"
    assert len(set(perms)) == len(perms)
    assert not rule.matches_failed_calls


@by_rule
def test_pattern_fits_eventbridge_quota(rule: Rule) -> None:
    """What is deployed fits the quota with headroom: the pattern itself, or the parts the stack splits it into.

    A catalog pattern may outgrow the quota (the detection stack splits it exactly); a part that cannot
    be split below ``PATTERN_SPLIT_CHARS`` fails here, 448 characters before it would fail a deploy.
    """
    assert PATTERN_SPLIT_CHARS < MAX_PATTERN_CHARS
    for part in split_pattern(rule.event_pattern, PATTERN_SPLIT_CHARS):
        assert pattern_size(part) <= PATTERN_SPLIT_CHARS, f"{pattern_size(part)} characters"
        assert len(json.dumps(part, separators=(",", ":"))) <= MAX_PATTERN_CHARS


@by_rule
def test_signin_patterns_list_both_spellings(rule: Rule) -> None:
    def detail_types(p: object) -> list[str]:
        if isinstance(p, dict):
            out = [v for v in p.get("detail-type", []) if isinstance(v, str)]
            for alt in p.get("$or", []):
                out.extend(detail_types(alt))
            return out
        return []

    dts = set(detail_types(rule.event_pattern))
    if dts & set(SIGNIN_DETAIL_TYPES):
        assert set(SIGNIN_DETAIL_TYPES) <= dts, f"lists only {sorted(dts & set(SIGNIN_DETAIL_TYPES))}"
    source = rule.event_pattern.get("source", [])
    if "aws.signin" in source and "detail-type" in rule.event_pattern:
        assert set(SIGNIN_DETAIL_TYPES) <= dts


@by_rule
def test_read_only_examples_need_read_only_events(rule: Rule) -> None:
    """A rule whose positives are Get/List/Describe calls is useless on a plain ENABLED rule."""
    ro = [ex for ex in rule.examples_positive if ex.get("detail", {}).get("readOnly") is True]
    if ro:
        assert rule.read_only_events, "positive examples are read-only events: set read_only_events"


@by_rule
def test_runbook_queries_exist(rule: Rule) -> None:
    if not QUERIES_DIR.is_dir():
        pytest.skip("trailguard/queries not present")
    available = {p.stem for p in QUERIES_DIR.glob("*.sql")}
    assert rule.runbook.queries, "a runbook names at least one query"
    for q in rule.runbook.queries:
        assert q in available, f"runbook query {q!r} has no trailguard/queries/{q}.sql"


@pytest.mark.parametrize(("rule", "i", "event"), POSITIVES, ids=lambda v: v.id if isinstance(v, Rule) else None)
def test_positive_example(rule: Rule, i: int, event: dict) -> None:
    assert matches(rule.event_pattern, event), "our matcher"
    assert moto_matches(rule.event_pattern, event), "moto's matcher"
    result = EVALUATOR.evaluate(event)
    mine = [f for f in result.findings if f.rule == rule.id]
    assert len(mine) == 1, "the pattern index must find the rule"
    finding = mine[0]
    if rule.default_mode == "remediate" and rule.remediation:
        # a decision may downgrade one event to an alert (remediable=False), never skip it
        assert finding.decision in ("remediate", "alert"), finding.reason
        if finding.decision == "remediate":
            assert finding.action == rule.remediation.action
            assert finding.params
    else:
        assert finding.decision == "alert", finding.reason


@pytest.mark.parametrize("rule", [r for r in RULES if r.remediation], ids=lambda r: r.id)
def test_remediation_is_exercised_by_a_positive(rule: Rule) -> None:
    """With the rule in remediate mode, at least one positive example remediates with params."""
    ev = Evaluator(RULES, RuntimeConfig(rule_modes={rule.id: "remediate"}))
    acted = []
    for example in rule.examples_positive:
        for f in ev.evaluate(example).findings:
            if f.rule == rule.id and f.decision == "remediate":
                assert f.action == rule.remediation.action
                assert f.params, "a remediation needs params from the decision"
                acted.append(f)
    assert acted, "no positive example leads to the remediation"


@pytest.mark.parametrize(("rule", "i", "event"), NEGATIVES, ids=lambda v: v.id if isinstance(v, Rule) else None)
def test_negative_example(rule: Rule, i: int, event: dict) -> None:
    """A negative either misses the pattern or reaches the decision and is skipped there.

    Patterns select API calls broadly (issue 14: a narrow string pattern is a bypass); the decision function
    judges. Both matchers must agree on which it is.
    """
    assert matches(rule.event_pattern, event) == moto_matches(rule.event_pattern, event), "the matchers disagree"
    result = EVALUATOR.evaluate(event)
    assert all(f.decision == "skip" for f in result.findings if f.rule == rule.id)


@pytest.mark.parametrize(("rule", "i", "event"), POSITIVES, ids=lambda v: v.id if isinstance(v, Rule) else None)
def test_failed_call_never_fires(rule: Rule, i: int, event: dict) -> None:
    """The same event as a failed call: only rules made for failed calls may act on it."""
    if rule.matches_failed_calls:
        pytest.skip("this rule is about failed calls")
    failed = copy.deepcopy(event)
    failed["detail"]["errorCode"] = "AccessDenied"
    failed["detail"]["errorMessage"] = "denied"
    finding = decide(CloudTrailEvent(to_envelope(failed)), rule, RuntimeConfig(rule_modes={rule.id: "remediate"}))
    assert finding.decision == "skip"
    for f in EVALUATOR.evaluate(failed).findings:
        if f.rule == rule.id:
            assert f.decision == "skip"


def test_catalog_has_console_signin_rules_with_both_spellings() -> None:
    signin = [r for r in RULES if "aws.signin" in r.event_pattern.get("source", [])]
    assert signin, "expected console sign-in rules in the catalog"
    for r in signin:
        assert set(SIGNIN_DETAIL_TYPES) <= set(r.event_pattern.get("detail-type", [])), r.id
