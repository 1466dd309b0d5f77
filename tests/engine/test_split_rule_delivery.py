"""A catalog rule deployed as several EventBridge rules (a split pattern) is still acted on once per event.

Every part's target sends the same input (the rule id and the whole event), so when one event reaches the
engine through two parts (overlapping parts of a ``$or`` or prefix split, or EventBridge's own at-least-once
delivery), the second invocation has the same idempotency key and is a duplicate: one alert, one action.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from engine_world import FakeContext, World, metric_total, real_rules
from trailguard_engine import handler
from trailguard_engine.matcher import matches
from trailguard_engine.pattern_split import split_pattern

from stacks.detection import engine_input_template
from stacks.forwarding import PATTERN_SPLIT_CHARS

SPLIT_RULE = "failed-critical-action"


def _delivered(rule_id: str, event: dict[str, Any]) -> Any:
    """What EventBridge sends a part's target: its input template with the whole event in it."""
    return json.loads(engine_input_template(rule_id).replace("<aws.events.event.json>", json.dumps(event)))


def test_one_event_through_two_parts_of_a_split_rule_is_handled_once(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    (rule,) = [r for r in real_rules() if r.id == SPLIT_RULE]
    parts = split_pattern(rule.event_pattern, PATTERN_SPLIT_CHARS)
    assert len(parts) > 1, "the rule this test is about is no longer split: pick another"
    event = rule.examples_positive[0]
    assert sum(matches(p, event) for p in parts) == 1  # a value-list split: disjoint for a scalar eventName
    first = handler.handler(_delivered(rule.id, event), FakeContext())
    second = handler.handler(_delivered(rule.id, event), FakeContext())  # as if a second part matched too
    assert [f["rule"] for f in first["findings"]] == [rule.id]
    assert first["findings"][0]["duplicate"] is False
    assert second["findings"][0]["duplicate"] is True
    assert len(world.messages()) == 1
    assert metric_total(capsys.readouterr().out, "Duplicates", rule=rule.id) == 1
