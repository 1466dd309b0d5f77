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


#: Records as CloudTrail (or a SIEM export of them) wrote them; panther-analysis/rules holds a rule library's
#: hand-written test fixtures, some without a time or an id.
RAW_RECORD_FOLDERS = (
    "invictus-sigma-aws",
    "otrf-security-datasets",
    "zmallen-cloudtrail2sightings",
    "panther-analysis/scenarios",
)


def test_replay_of_the_corpus_skips_label_files_and_no_real_record(corpus_dir: Path) -> None:
    """``trailguard replay <corpus>`` walks the .labels.jsonl files too: their lines name calls, none is judged."""
    from trailguard.replay import Problem, expand_paths, iter_inputs, replay

    problems: list[Problem] = []
    summary = replay(
        iter_inputs(expand_paths([str(corpus_dir)])), Evaluator(RULES, RuntimeConfig()), on_problem=problems.append
    )
    lines = naming_a_call = 0
    for path in corpus_dir.rglob("*.labels.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            obj = json.loads(line) if line.strip() else None
            lines += obj is not None
            naming_a_call += isinstance(obj, dict) and all(
                isinstance(obj.get(k), str) for k in ("eventName", "eventSource")
            )
    not_records = [p for p in problems if p.reason.startswith("not a CloudTrail record:")]
    from_labels = [p for p in not_records if p.source.endswith(".labels.jsonl")]
    assert naming_a_call > 3000
    assert len(from_labels) == naming_a_call  # judged before: now skipped, with the reason
    assert len([p for p in problems if p.source.endswith(".labels.jsonl")]) == lines  # no label line is judged
    real = [
        p
        for p in problems
        if not p.source.endswith(".labels.jsonl") and any(f"/{d}/" in p.source for d in RAW_RECORD_FOLDERS)
    ]
    assert real == [], real[:3]  # no real record newly skipped (the CSV-rebuilt S3 events included)
    fixtures = [p for p in not_records if p not in from_labels]
    assert all("/panther-analysis/" in p.source for p in fixtures)
    print(
        f"\ncorpus replay: {summary.events} judged, {len(from_labels)} label lines and "
        f"{len(fixtures)} panther fixtures skipped as not CloudTrail records"
    )
