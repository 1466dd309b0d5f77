"""Change-record rules (severity INFO) in the catalog: load-time checks, failed-attempt selection, coverage report.

An INFO rule records calls (Security Hub INFORMATIONAL + the engine's audit log), it never acts and never
pages: the loader refuses one with a remediation, a remediating default mode or a threshold, and the generic
``change_record`` decision at any other severity; the failed-attempt rule never watches its calls; the
coverage report counts what it covers as covered but says it is a record.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from catalog_helpers import RULES
from trailguard_engine.caller import DEFAULT_CALLER_MODES
from trailguard_engine.catalog import CHANGE_RECORD_DECISION, RECORD_SEVERITY, is_record_rule, parse_rule
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.exceptions import CatalogError
from trailguard_engine.model import Rule
from trailguard_engine.runtime_config import RuntimeConfig

from trailguard import coverage
from trailguard.catalog_tools import failed_attempt_sources, failed_attempts_pattern

RECORD = "test-iam-group-record"
HIGH = "test-iam-group-deleted-high"


def _doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": RECORD,
        "title": "IAM group changed (record)",
        "description": "test change record",
        "severity": "INFO",
        "category": "test",
        "mitre": [],
        "event_pattern": {
            "source": ["aws.iam"],
            "detail": {"eventSource": ["iam.amazonaws.com"], "eventName": ["CreateGroup", "DeleteGroup"]},
        },
        "decision": "change_record",
        "params": {"resource_fields": ["groupName"], "resource_type": "AWS::IAM::Group"},
        "remediation": None,
        "default_mode": "alert",
        "caller_modes": {**DEFAULT_CALLER_MODES, "human": "alert", "iac": "alert", "unknown": "alert"},
        "runbook": {"triage": [], "queries": [], "undo": ""},
        "examples": {"positive": [], "negative": []},
    }
    doc.update(over)
    return doc


def record_rule(**over: Any) -> Rule:
    return parse_rule(_doc(**over), "record.json")


def high_rule() -> Rule:
    """An alerting rule over one of the record rule's calls (the generic ``always`` decision)."""
    return parse_rule(
        _doc(
            id=HIGH,
            severity="HIGH",
            decision="always",
            params={},
            event_pattern={
                "source": ["aws.iam"],
                "detail": {"eventSource": ["iam.amazonaws.com"], "eventName": ["DeleteGroup"]},
            },
        ),
        "high.json",
    )


# --------------------------------------------------------------------------- #
# Load-time checks
# --------------------------------------------------------------------------- #


def test_a_well_formed_info_rule_loads() -> None:
    rule = record_rule()
    assert rule.severity == RECORD_SEVERITY and is_record_rule(rule)
    assert record_rule(default_mode="off").default_mode == "off"


@pytest.mark.parametrize(
    ("over", "message"),
    [
        (
            {"remediation": {"action": "start_logging", "permissions": [], "description": "x"}},
            "remediation null",
        ),
        ({"default_mode": "remediate"}, "default_mode 'alert' or 'off'"),
        (
            {
                "params": {
                    "resource_fields": ["groupName"],
                    "threshold": {"count": 5, "window_seconds": 600, "by": "principal", "distinct": "resource"},
                }
            },
            "params.threshold",
        ),
        ({"severity": "HIGH"}, "severity must be 'INFO'"),
        ({"severity": "LOW"}, "severity must be 'INFO'"),
    ],
    ids=["remediation", "default-mode-remediate", "threshold", "change-record-at-high", "change-record-at-low"],
)
def test_an_info_rule_that_could_act_or_page_is_refused_at_load(over: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError, match=r"record\.json") as exc:
        record_rule(**over)
    assert message in str(exc.value)


def test_an_info_rule_with_its_own_decision_is_held_to_the_same_checks() -> None:
    """Not only ``change_record``: any INFO rule is a record (e.g. a real decision at INFO for the benign form)."""
    assert record_rule(decision="always").severity == "INFO"
    with pytest.raises(CatalogError, match="remediation null"):
        record_rule(decision="always", remediation={"action": "start_logging", "permissions": [], "description": "x"})


def test_every_info_rule_of_the_catalog_is_a_record_that_never_acts() -> None:
    infos = [r for r in RULES if is_record_rule(r)]
    ev = Evaluator(RULES, RuntimeConfig(rule_modes={r.id: "remediate" for r in infos}))
    for rule in infos:
        assert rule.severity == RECORD_SEVERITY, rule.id
        assert rule.remediation is None and rule.default_mode in ("alert", "off"), rule.id
        assert "threshold" not in rule.params, rule.id
        assert rule.caller_modes["trailguard"] == "notice", rule.id
        for example in rule.examples_positive:
            findings = [f for f in ev.evaluate(example).findings if f.rule == rule.id]
            assert findings and all(f.decision == "alert" and f.action is None for f in findings), rule.id


# --------------------------------------------------------------------------- #
# Failed attempts: a refused change record is no attempt at a critical action
# --------------------------------------------------------------------------- #


def _names(pattern: dict[str, Any]) -> list[Any]:
    return list(pattern["detail"]["eventName"])


def test_failed_attempts_never_select_a_change_record_rules_calls() -> None:
    record, high = record_rule(), high_rule()
    assert failed_attempt_sources([record, high]) == [high]
    # DeleteGroup is watched because the HIGH rule watches it; CreateGroup (only recorded) is not
    assert "DeleteGroup" in _names(failed_attempts_pattern([high, record]))
    assert "CreateGroup" not in _names(failed_attempts_pattern([high, record]))
    assert failed_attempts_pattern([high, record]) == failed_attempts_pattern([high])


def test_failed_attempts_leave_out_a_change_record_decision_whatever_its_severity() -> None:
    """Belt and braces: a ``change_record`` rule built past the loader at HIGH still feeds nothing."""
    forged = dataclasses.replace(record_rule(), severity="HIGH")
    assert forged.decision == CHANGE_RECORD_DECISION and is_record_rule(forged)
    assert failed_attempt_sources([forged, high_rule()]) == [high_rule()]
    assert "CreateGroup" not in _names(failed_attempts_pattern([forged, high_rule()]))


def test_the_catalogs_info_rules_feed_no_failed_attempt() -> None:
    infos = {r.id for r in RULES if is_record_rule(r)}
    assert not infos & {r.id for r in failed_attempt_sources(RULES)}


# --------------------------------------------------------------------------- #
# Coverage report: covered by a record is covered, and said so
# --------------------------------------------------------------------------- #


def _item(iid: str, names: tuple[str, ...]) -> coverage.Item:
    return coverage.Item(
        source="elastic",
        id=iid,
        events=tuple(("iam.amazonaws.com", n) for n in names),
        condition="any such call",
        value="low",
        request={"groupName": "team"},
    )


def test_coverage_an_item_only_a_record_covers_is_covered_and_counted() -> None:
    classifier = coverage.Classifier((record_rule(), high_rule()))
    assert classifier.records == {RECORD}
    only = classifier.classify(_item("group_created", ("CreateGroup",)))
    mixed = classifier.classify(_item("group_deleted", ("DeleteGroup",)))
    both = classifier.classify(_item("group_churn", ("CreateGroup", "DeleteGroup")))
    assert (only.status, only.rules) == ("covered", (RECORD,))
    assert (mixed.status, mixed.rules) == ("covered", (HIGH, RECORD))
    assert (both.status, both.rules) == ("covered", (HIGH, RECORD))
    assert coverage.records_only(only, classifier.records)
    assert not coverage.records_only(mixed, classifier.records)
    sm = coverage.summarize([only, mixed, both], classifier.records)
    assert sm.counts["covered"] == 3 and sm.percent == 100.0  # a record still covers
    assert sm.records_only == 1
    assert coverage.summarize([only, mixed]).records_only == 0  # without the record ids nothing is counted


def test_coverage_report_marks_records_and_counts_them_per_source() -> None:
    classifier = coverage.Classifier((record_rule(), high_rule()))
    only = classifier.classify(_item("group_created", ("CreateGroup",)))
    mixed = classifier.classify(_item("group_deleted", ("DeleteGroup",)))
    assert only.rules == (RECORD,)
    source = coverage.Source("elastic", "Elastic", "elastic/detection-rules", "0" * 40, (only.item, mixed.item))
    text = coverage.render([source], {"elastic": [only, mixed]}, classifier.records)
    assert "covered by records only |" in text
    assert "| Elastic | 2 | 2 | 0 | 0 | 0 | 100.0% | 0 | 1 |" in text
    assert "| **total** | 2 | 2 | 0 | 0 | 0 | 100.0% | 0 | 1 |" in text
    assert f"| covered | {RECORD} (record) |" in text
    assert f"| covered | {HIGH}, {RECORD} (record) |" in text
    # an override naming only a record rule is a record-only item too
    judged = coverage.Result(only.item, "covered", (RECORD,), "judged", overridden=True)
    assert coverage.summarize([judged], classifier.records).records_only == 1
    # and the renderer keeps marking nothing when it is given no record ids
    plain = coverage.render([source], {"elastic": [only, mixed]})
    assert "(record)" not in plain.split("## Elastic", 1)[1]


def test_coverage_classifier_knows_the_catalogs_record_rules() -> None:
    assert coverage.Classifier(RULES).records == {r.id for r in RULES if is_record_rule(r)}
    assert coverage.record_rule_ids(RULES) == coverage.Classifier(RULES).records


def test_a_copy_of_an_info_rule_doc_with_a_threshold_names_the_file() -> None:
    doc = copy.deepcopy(_doc())
    doc["params"]["threshold"] = {"count": 3, "window_seconds": 600, "by": "principal", "distinct": "resource"}
    with pytest.raises(CatalogError, match=r"^x\.json: an INFO rule \(change record\) must not have params\.threshold"):
        parse_rule(doc, "x.json")
