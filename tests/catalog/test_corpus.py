"""Every record of the shared corpus runs through the patterns and decisions without an exception.

Prints per-technique hits for the Invictus (Stratus Red Team) capture: for each
technique, how many of its positive records matched any rule pattern and how many
produced an alert or remediation (failed calls are skipped by every rule except
failed-critical-action, and many Stratus detonations fail by design).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from catalog_helpers import RULES
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.exceptions import RejectedEvent
from trailguard_engine.runtime_config import RuntimeConfig

pytestmark = pytest.mark.corpus


def test_every_corpus_record_evaluates(corpus_dir: Path) -> None:
    ev = Evaluator(RULES, RuntimeConfig())
    files = sorted(p for p in corpus_dir.rglob("*.jsonl") if not p.name.endswith(".labels.jsonl"))
    assert files
    seen = rejected = findings = 0
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            seen += 1
            try:
                result = ev.evaluate(json.loads(line))
            except RejectedEvent:
                rejected += 1
                continue
            findings += sum(1 for f in result.findings if f.decision != "skip")
    print(
        f"\ncorpus: {seen} records, {rejected} rejected as not CloudTrail records, {findings} alert/remediate findings"
    )
    assert seen > 3000
    assert rejected < seen * 0.05


def test_invictus_technique_hits(corpus_dir: Path) -> None:
    base = corpus_dir / "invictus-sigma-aws"
    records = (base / "cloudtrail_all.jsonl").read_text(encoding="utf-8").splitlines()
    labels = (base / "cloudtrail_all.labels.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(records) == len(labels)
    ev = Evaluator(RULES, RuntimeConfig())
    total: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    acted: Counter[str] = Counter()
    fp = 0
    for rec_line, lab_line in zip(records, labels, strict=True):
        label = json.loads(lab_line)
        result = ev.evaluate(json.loads(rec_line))
        hit = bool(result.findings)
        act = any(f.decision != "skip" for f in result.findings)
        if label["label"] == "positive":
            for t in label.get("technique_candidates") or ["<none>"]:
                total[t] += 1
                matched[t] += hit
                acted[t] += act
        elif label["label"] == "negative" and act:
            fp += 1
    print("\ninvictus technique: positives / pattern-matched / alert-or-remediate")
    for t in sorted(total):
        print(f"  {t}: {total[t]} / {matched[t]} / {acted[t]}")
    print(f"  negatives with an alert or remediation: {fp}")
    # Techniques whose capture holds a successful call or an access-denied one must be seen.
    # (cloudtrail-delete only failed with TrailNotFoundException: nothing happened, no rule fires.)
    for t in (
        "aws.defense-evasion.cloudtrail-event-selectors",
        "aws.defense-evasion.vpc-remove-flow-logs",
        "aws.defense-evasion.organizations-leave",
        "aws.persistence.lambda-overwrite-code",
    ):
        assert acted[t] >= 1, t
