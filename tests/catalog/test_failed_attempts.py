"""The failed-attempt rule: generated pattern is fresh, decision alerts only on watched access-denied calls."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from catalog_helpers import RULES
from trailguard_engine.catalog import RULES_DIR
from trailguard_engine.decisions.failed import FAILED_RULE_ID, critical_actions, is_access_denied
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.runtime_config import RuntimeConfig

from trailguard.catalog_tools import (
    failed_attempts_pattern,
    failed_attempts_stale,
    main,
    sync_failed_attempts,
)

FAILED = next(r for r in RULES if r.id == FAILED_RULE_ID)


def test_pattern_is_fresh() -> None:
    assert not failed_attempts_stale(), "run: python -m trailguard.catalog_tools sync-failed-attempts"
    assert main(["check-failed-attempts"]) == 0


def test_rule_is_alert_only() -> None:
    assert FAILED.matches_failed_calls
    assert FAILED.remediation is None
    assert FAILED.default_mode == "alert"
    ev = Evaluator(RULES, RuntimeConfig(rule_modes={FAILED_RULE_ID: "remediate"}))
    for example in FAILED.examples_positive:
        (finding,) = [f for f in ev.evaluate(example).findings if f.rule == FAILED_RULE_ID]
        assert finding.decision == "alert"
        assert finding.action is None


def test_every_critical_or_high_api_rule_is_covered() -> None:
    """For each CRITICAL/HIGH rule, its positive example turned into an AccessDenied raises this alert."""
    ev = Evaluator(RULES, RuntimeConfig())
    watched = {a.rule_id for a in critical_actions(RULES)}
    assert len(watched) >= 20
    for rule in RULES:
        if rule.id not in watched:
            continue
        event = copy.deepcopy(rule.examples_positive[0])
        event["detail"]["errorCode"] = "AccessDenied"
        event["detail"]["responseElements"] = None
        findings = [f for f in ev.evaluate(event).findings if f.rule == FAILED_RULE_ID]
        assert findings, rule.id
        assert findings[0].decision == "alert", rule.id
        assert rule.id in findings[0].reason
        # ... and the rule itself never acts on the failed call
        assert all(f.decision == "skip" for f in ev.evaluate(event).findings if f.rule == rule.id)


def test_unwatched_or_other_errors_are_ignored() -> None:
    ev = Evaluator(RULES, RuntimeConfig())
    base = copy.deepcopy(FAILED.examples_positive[0])
    base["detail"]["errorCode"] = "ThrottlingException"
    assert not [f for f in ev.evaluate(base).findings if f.rule == FAILED_RULE_ID]
    # same source, name watched elsewhere: the decision re-checks the exact pair
    other = copy.deepcopy(FAILED.examples_positive[0])
    other["source"], other["detail"]["eventSource"] = "aws.ssm", "ssm.amazonaws.com"
    other["detail"]["eventName"] = "DisableKey"  # a KMS name, refused by SSM: the pattern over-matches
    (finding,) = [f for f in ev.evaluate(other).findings if f.rule == FAILED_RULE_ID]
    assert finding.decision == "skip"
    assert "not watched" in finding.reason


@pytest.mark.parametrize(
    ("code", "denied"),
    [
        ("AccessDenied", True),
        ("AccessDeniedException", True),
        ("Client.UnauthorizedOperation", True),
        ("UnauthorizedOperation", True),
        ("TrailNotFoundException", False),
        ("", False),
        ("Unauthorized", False),
    ],
)
def test_is_access_denied(code: str, denied: bool) -> None:
    assert is_access_denied(code) is denied


def test_sync_rewrites_only_the_pattern(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules_dir)
    path = rules_dir / f"{FAILED_RULE_ID}.json"
    doc = json.loads(path.read_text())
    doc["event_pattern"]["detail"]["eventName"] = ["StopLogging"]
    path.write_text(json.dumps(doc))
    assert failed_attempts_stale(rules_dir)
    assert sync_failed_attempts(rules_dir) is True
    new = json.loads(path.read_text())
    assert new["event_pattern"] == failed_attempts_pattern(RULES)
    assert {k: v for k, v in new.items() if k != "event_pattern"} == {
        k: v for k, v in doc.items() if k != "event_pattern"
    }
    assert sync_failed_attempts(rules_dir) is False  # idempotent
    # a new HIGH rule makes it stale again
    extra = json.loads((rules_dir / "kms-key-disabled.json").read_text())
    extra["id"] = "zz-new-high-rule"
    extra["event_pattern"]["detail"]["eventName"] = ["DeleteAlias"]
    (rules_dir / "zz-new-high-rule.json").write_text(json.dumps(extra))
    assert failed_attempts_stale(rules_dir)


def test_pattern_is_deterministic() -> None:
    assert failed_attempts_pattern(RULES) == failed_attempts_pattern(reversed(RULES))
    names = failed_attempts_pattern(RULES)["detail"]["eventName"]
    literals = [n for n in names if isinstance(n, str)]
    assert literals == sorted(literals)
    assert len(set(literals)) == len(literals)
