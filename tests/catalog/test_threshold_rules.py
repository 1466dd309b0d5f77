"""Meta-tests for threshold rules (``params.threshold``, trailguard_engine.window).

``test_rules.py`` judges one example at a time with the bare evaluator: for a threshold rule that checks that
each positive *qualifies* (the decision alerts) and each negative does not. Here the examples go through the
gate as the engine and replay run them: a positive alone is counted (unless it carries the whole threshold,
like a large batch), ``count`` distinct reads within the window fire exactly once, ``count - 1`` never do,
and negatives are never counted.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from catalog_helpers import RULES
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.model import Rule
from trailguard_engine.window import ITEM_PREFIX, ITEMS_PARAM, MAX_COUNT, validate_threshold

_HELPERS = Path(__file__).resolve().parents[1] / "engine_core" / "window_helpers.py"
if "window_helpers" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("window_helpers", _HELPERS)
    assert _spec is not None and _spec.loader is not None
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["window_helpers"] = _mod
    _spec.loader.exec_module(_mod)

from window_helpers import T0, Judge, distinct_copies  # noqa: E402

THRESHOLD_RULES = [r for r in RULES if "threshold" in r.params]
by_rule = pytest.mark.parametrize("rule", THRESHOLD_RULES, ids=lambda r: r.id)


def test_the_credential_access_rules_are_threshold_rules() -> None:
    ids = {r.id for r in THRESHOLD_RULES}
    assert {
        "secretsmanager-secrets-bulk-read",
        "ssm-parameters-decrypted-bulk-read",
        "ec2-password-data-read",
        "ec2-userdata-bulk-read",
    } <= ids


@by_rule
def test_threshold_rule_shape(rule: Rule) -> None:
    th = validate_threshold(rule.params["threshold"])
    assert rule.remediation is None and rule.default_mode == "alert"
    names = rule.event_pattern["detail"]["eventName"]
    if any(str(n).startswith(("Get", "BatchGet", "Describe", "List")) for n in names):
        assert rule.read_only_events  # the reads are Get/Describe calls: delivered only with read-only events
    assert th.count <= MAX_COUNT


@by_rule
def test_each_positive_qualifies_and_alone_is_only_counted_unless_it_carries_the_threshold(rule: Rule) -> None:
    th = validate_threshold(rule.params["threshold"])
    for example in rule.examples_positive:
        judge = Judge(clock=None)
        (qualifying,) = [f for f in judge.ev.evaluate(example).findings if f.rule == rule.id]
        assert qualifying.decision == "alert", qualifying.reason
        items = qualifying.params.get(ITEMS_PARAM) or []
        if th.distinct == "resource":
            assert items, "a resource-counting decision names what the event read"
        gated = judge.finding(example, rule)
        assert gated.decision == ("alert" if len(items) >= th.count else "skip"), gated.reason


@by_rule
def test_count_distinct_reads_in_the_window_fire_once_and_one_fewer_never(rule: Rule) -> None:
    th = validate_threshold(rule.params["threshold"])
    step = (th.window_seconds - 1) / (3 * th.count)
    judge = Judge(clock=None)
    got = judge.decisions(distinct_copies(rule, 3 * th.count, start=T0, step=step), rule)
    assert got.index("alert") == th.count - 1
    assert got.count("alert") == 1
    judge = Judge(clock=None)
    assert set(judge.decisions(distinct_copies(rule, th.count - 1, start=T0, step=step), rule)) == {"skip"}


@by_rule
def test_negatives_are_never_counted(rule: Rule) -> None:
    judge = Judge(clock=None)
    for example in rule.examples_negative * 2:
        result = judge.ev.evaluate(example)
        gated = judge.gate.apply_result(CloudTrailEvent(to_envelope(example)), result, judge.ev.by_id)
        assert all(f.decision == "skip" for f in gated.findings if f.rule == rule.id)
    # Nothing was counted for this rule (another gated rule, such as a first-seen one, may record the same call).
    assert not [k for k in judge.store.items if k.startswith(f"{ITEM_PREFIX}{rule.id}#")]
