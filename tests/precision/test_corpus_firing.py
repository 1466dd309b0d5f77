"""The shared corpus as a noise gate (issue 14): no remediation on benign records, no rule's firing doubled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus_firing import BASELINE, measure
from trailguard_engine.catalog import load_catalog

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def measured(corpus_dir: Path) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
    fired, benign = measure(corpus_dir)
    return dict(fired), benign


def test_no_remediation_on_benign_records(measured: tuple[dict[str, int], list[tuple[str, str, str]]]) -> None:
    _, benign = measured
    assert not benign, f"remediations on records labelled negative: {benign[:10]}"


def test_no_rule_doubles_its_firing_without_a_reason(
    measured: tuple[dict[str, int], list[tuple[str, str, str]]],
) -> None:
    fired, _ = measured
    baseline: dict[str, int] = json.loads(BASELINE.read_text(encoding="utf-8"))
    notes = {r.id: r for r in load_catalog()}
    louder = []
    for rule_id, count in fired.items():
        before = baseline.get(rule_id)
        if before is None:
            continue  # a new rule: held by its own examples and the benign gates
        if count > max(2 * before, 2) and not _noise_note(rule_id):
            louder.append(f"{rule_id}: {before} -> {count}")
    assert rule_id_known(notes, fired)
    assert not louder, f"rules firing more than twice their baseline without a noise_note: {louder}"


def _noise_note(rule_id: str) -> str | None:
    from trailguard_engine.catalog import RULES_DIR

    doc = json.loads((RULES_DIR / f"{rule_id}.json").read_text(encoding="utf-8"))
    return doc.get("noise_note")


def rule_id_known(rules: dict[str, object], fired: dict[str, int]) -> bool:
    """Every firing belongs to a catalog rule (the counter is keyed by real ids)."""
    return set(fired) <= set(rules)


def test_baseline_is_recorded() -> None:
    baseline = json.loads(BASELINE.read_text(encoding="utf-8"))
    assert baseline and all(isinstance(v, int) and v > 0 for v in baseline.values())
