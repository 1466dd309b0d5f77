"""Tampering with one part of a split central rule is never silent, and splitting never narrows detection.

A catalog rule whose pattern is split (today ``failed-critical-action``) is deployed as ``tg-<id>``,
``tg-<id>-p2``, ... on the central bus. Disabling, deleting, redefining or re-targeting any part must
raise the self-protection finding like the rule's first part does; and an event crafted to sit at the
edge of a split (the first or last name of a part) must still reach the engine through some part.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from trailguard_engine.catalog import load_catalog, rules_by_id
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.matcher import matches
from trailguard_engine.pattern_split import split_pattern
from trailguard_engine.runtime_config import RuntimeConfig

from stacks.detection import central_rule_name
from stacks.forwarding import PATTERN_SPLIT_CHARS, forwarding_patterns

SPLIT = "failed-critical-action"
TAMPER = "eventbridge-rule-tampered"
EVALUATOR = Evaluator(load_catalog(), RuntimeConfig())


def _tamper(name: str, request: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(rules_by_id()[TAMPER].examples_positive[0])  # mallory, DisableRule on the central bus
    event["detail"]["eventName"] = name
    event["detail"]["requestParameters"] = request
    return event


def _parts() -> list[str]:
    n = len(split_pattern(rules_by_id()[SPLIT].event_pattern, PATTERN_SPLIT_CHARS))
    assert n > 1, f"{SPLIT} is no longer split: pick another rule for this test"
    return [central_rule_name(SPLIT, i) for i in range(1, n + 1)]


@pytest.mark.parametrize("action", ["DisableRule", "DeleteRule", "PutRule", "RemoveTargets"])
def test_every_part_of_a_split_rule_is_protected(action: str) -> None:
    for name in _parts():
        if action == "RemoveTargets":
            request: dict[str, Any] = {"rule": name, "eventBusName": "trailguard-central", "ids": ["engine"]}
        elif action == "PutRule":
            request = {"name": name, "eventBusName": "trailguard-central", "eventPattern": '{"source": ["x"]}'}
        else:
            request = {"name": name, "eventBusName": "trailguard-central"}
        result = EVALUATOR.evaluate(_tamper(action, request))
        mine = [f for f in result.findings if f.rule == TAMPER]
        assert mine, f"{action} on {name}: no finding"
        assert mine[0].decision in ("alert", "remediate"), f"{action} on {name}: {mine[0].decision} ({mine[0].reason})"


def test_names_at_the_edges_of_every_part_still_match() -> None:
    """The first and last event name of each part, as an attacker's failed call, reach the engine and the forwarder."""
    rule = rules_by_id()[SPLIT]
    parts = split_pattern(rule.event_pattern, PATTERN_SPLIT_CHARS)
    base = rule.examples_positive[0]
    forwarders = forwarding_patterns(load_catalog())
    for part in parts:
        for name in (part["detail"]["eventName"][0], part["detail"]["eventName"][-1]):
            literal = name if isinstance(name, str) else name["prefix"] + "X"
            ev = copy.deepcopy(base)
            ev["detail"]["eventName"] = literal
            assert matches(rule.event_pattern, ev) == any(matches(p, ev) for p in parts)
            if matches(rule.event_pattern, ev):
                assert any(matches(f.pattern, ev) for f in forwarders), literal
