"""The other half of the precision gate: the attack examples still get what they got before issue 15.

``attack_baseline.json`` records, for every rule's positive (attack) examples, the decision the catalog
gave them with the default config at commit a2aa67c, before caller classes and intended exposure existed.
Caller-aware modes must only spare IaC, services and Identity Center: an attack example that remediated
must still remediate, one that alerted must still alert (tests/catalog/test_rules.py::test_positive_example
checks the weaker "remediate or alert" for examples added since).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trailguard_engine.catalog import load_catalog
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.runtime_config import RuntimeConfig

BASELINE = json.loads((Path(__file__).resolve().parent / "attack_baseline.json").read_text())["rules"]
RULES = {r.id: r for r in load_catalog()}
EVALUATOR = Evaluator(tuple(RULES.values()), RuntimeConfig())


@pytest.mark.parametrize("rule_id", sorted(BASELINE))
def test_attack_examples_keep_their_verdict(rule_id: str) -> None:
    assert rule_id in RULES, f"rule {rule_id} left the catalog"
    rule = RULES[rule_id]
    examples = {ex["detail"]["eventID"]: ex for ex in rule.examples_positive}
    changed = []
    for before in BASELINE[rule_id]:
        ex = examples.get(before["eventID"])
        if ex is None:
            changed.append(f"{before['eventID']}: attack example removed (was {before['decision']})")
            continue
        mine = [f for f in EVALUATOR.evaluate(ex).findings if f.rule == rule_id]
        now = mine[0] if mine else None
        if now is None or now.decision != before["decision"] or now.action != before["action"]:
            got = f"{now.decision} ({now.reason})" if now else "no finding"
            changed.append(f"{before['eventID']}: was {before['decision']}, now {got}")
    assert not changed, "\n".join(changed)


def test_baseline_covers_every_rule_that_existed() -> None:
    assert len(BASELINE) >= 66
    assert sum(len(v) for v in BASELINE.values()) >= 140
    assert any(x["decision"] == "remediate" for v in BASELINE.values() for x in v)
