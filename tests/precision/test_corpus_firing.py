"""The shared corpus as a noise gate (issue 14): no remediation on benign records, no alerting rule's firing doubled.

Change records (INFO rules) never page: they are counted apart and reported, never held to the baseline as noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus_firing import BASELINE, Measured, measure
from trailguard_engine.catalog import is_record_rule, load_catalog, parse_rule
from trailguard_engine.model import Rule


@pytest.fixture(scope="module")
def measured(corpus_dir: Path) -> Measured:
    return measure(corpus_dir)


@pytest.mark.corpus
def test_no_remediation_on_benign_records(measured: Measured) -> None:
    benign = measured.benign_remediations
    assert not benign, f"remediations on records labelled negative: {benign[:10]}"


@pytest.mark.corpus
def test_no_rule_doubles_its_firing_without_a_reason(measured: Measured) -> None:
    fired = dict(measured.fired)
    baseline: dict[str, int] = json.loads(BASELINE.read_text(encoding="utf-8"))
    notes = {r.id: r for r in load_catalog()}
    louder = [
        f"{rule_id}: {before} -> {count}"
        for rule_id, count, before in _held_to_baseline(fired, baseline)
        if count > max(2 * before, 2) and not _noise_note(rule_id)
    ]
    assert rule_id_known(notes, fired)
    assert not louder, f"rules firing more than twice their baseline without a noise_note: {louder}"


def _held_to_baseline(fired: dict[str, int], baseline: dict[str, int]) -> list[tuple[str, int, int]]:
    """(rule, count, baseline) of the alerting rules the baseline knows (a new rule is held by its own examples
    and the benign gates; a change record is never in ``fired``)."""
    return [(rule_id, count, baseline[rule_id]) for rule_id, count in sorted(fired.items()) if rule_id in baseline]


@pytest.mark.corpus
def test_change_records_are_counted_apart_and_reported(measured: Measured, capsys: pytest.CaptureFixture[str]) -> None:
    """INFO rules are not noise (they never page) but what they record on the corpus is reported."""
    records = {r.id for r in load_catalog() if is_record_rule(r)}
    assert not set(measured.fired) & records, "a change record was counted as an alert"
    assert set(measured.records) <= records, "an alerting rule was counted as a change record"
    with capsys.disabled():
        total = sum(measured.records.values())
        print(f"\ncorpus change records: {total} over {len(measured.records)} INFO rules", end="")
        for rule_id, n in sorted(measured.records.items()):
            print(f"\n  {rule_id}: {n} (on benign records: {measured.benign_records.get(rule_id, 0)})", end="")


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


def _info_rule() -> Rule:
    """A change-record rule over IAM group deletions (built here: the gate must not depend on which exist)."""
    return parse_rule(
        {
            "id": "test-iam-group-deleted-record",
            "title": "IAM group deleted (record)",
            "description": "test change record",
            "severity": "INFO",
            "category": "test",
            "mitre": [],
            "event_pattern": {"source": ["aws.iam"], "detail": {"eventName": ["DeleteGroup"]}},
            "decision": "change_record",
            "params": {"resource_fields": ["groupName"], "resource_type": "AWS::IAM::Group"},
            "remediation": None,
            "default_mode": "alert",
            "caller_modes": {
                "human": "alert",
                "iac": "alert",
                "service": "alert",
                "identity-center": "alert",
                "trailguard": "notice",
                "unknown": "alert",
            },
            "runbook": {"triage": [], "queries": [], "undo": ""},
            "examples": {"positive": [], "negative": []},
        }
    )


def _write_corpus(root: Path, rows: list[tuple[dict[str, object], str]]) -> Path:
    (root / "set").mkdir()
    (root / "set" / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r, _ in rows), encoding="utf-8")
    (root / "set" / "records.labels.jsonl").write_text(
        "".join(json.dumps({"label": label}) + "\n" for _, label in rows), encoding="utf-8"
    )
    return root


def _record(name: str, request: dict[str, object], n: int) -> dict[str, object]:
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "arn": "arn:aws:iam::111122223333:user/alice",
            "accountId": "111122223333",
            "userName": "alice",
        },
        "eventTime": "2026-10-01T12:00:00Z",
        "eventSource": ("iam" if name == "DeleteGroup" else "cloudtrail") + ".amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": request,
        "responseElements": None,
        "eventID": f"00000000-0000-4000-8000-{n:012d}",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management",
    }


def test_measure_counts_change_records_apart_from_alerts(tmp_path: Path) -> None:
    """Not marked corpus: a synthetic corpus, so the separation is tested wherever the shared corpus is absent."""
    rows = [(_record("DeleteGroup", {"groupName": f"g{i}"}, i), "negative") for i in range(5)]
    rows.append((_record("StopLogging", {"name": "org-trail"}, 99), "positive"))
    stop = next(r for r in load_catalog() if r.id == "cloudtrail-stop-logging")
    m = measure(_write_corpus(tmp_path, rows), (stop, _info_rule()))  # not the catalog's own records
    assert m.records == {"test-iam-group-deleted-record": 5}
    assert m.benign_records == {"test-iam-group-deleted-record": 5}
    assert "test-iam-group-deleted-record" not in m.fired, "a change record was counted as an alert"
    assert m.fired["cloudtrail-stop-logging"] == 1
    assert not m.benign_remediations
    # the baseline check only ever sees alerting rules: five records of a rule the baseline knew at 1 are not noise
    assert _held_to_baseline(dict(m.fired), {"test-iam-group-deleted-record": 1}) == []
