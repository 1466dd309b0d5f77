"""Change records (severity INFO) in the engine: kept as records, never alerts, never the alert budget.

Through the handler against moto: an INFO finding is one audit-log line, metric ``ChangeRecords`` and a Security
Hub INFORMATIONAL finding, and no SNS message on any path (the finding, its notice when skipped because of who
made it, IaC de-duplication, failure reports); it has a Security Hub budget of its own per account and hour,
and the alert budget of the account is untouched by any number of records.
"""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest
from engine_world import (
    ATTACKER,
    MEMBER,
    TABLE,
    FakeContext,
    World,
    ct_event,
    log_lines,
    metric_total,
)
from frozen_clock import FROZEN_AT
from trailguard_engine import handler
from trailguard_engine.caller import DEFAULT_CALLER_MODES
from trailguard_engine.catalog import is_record_rule, load_catalog, parse_rule
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Finding, Rule
from trailguard_engine.notify import ASFF_SEVERITY_LABELS, Outcome, asff

RECORD = "test-iam-group-record"
STOP = "cloudtrail-stop-logging"
TERRAFORM_UA = "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.40.0"
NOW = "2026-10-01T12:00:00Z"


def record_rule(rid: str = RECORD, names: tuple[str, ...] = ("CreateGroup", "DeleteGroup")) -> Rule:
    """An INFO change-record rule as the catalog's are (built here: the tests must not depend on which exist)."""
    return parse_rule(
        {
            "id": rid,
            "title": "IAM group changed (record)",
            "description": "test change record",
            "severity": "INFO",
            "category": "test",
            "mitre": [],
            "event_pattern": {"source": ["aws.iam"], "detail": {"eventName": list(names)}},
            "decision": "change_record",
            "params": {"resource_fields": ["groupName"], "resource_type": "AWS::IAM::Group"},
            "remediation": None,
            "default_mode": "alert",
            "caller_modes": {**DEFAULT_CALLER_MODES, "human": "alert", "iac": "alert", "unknown": "alert"},
            "runbook": {"triage": [], "queries": [], "undo": ""},
            "examples": {"positive": [], "negative": []},
        }
    )


@pytest.fixture
def records(world: World) -> World:
    """The engine world with the INFO test rule in its catalog."""
    engine = handler.get_engine(FakeContext())
    engine.rules = (*(engine.rules or ()), record_rule())
    engine._evaluators.clear()
    return world


def group_event(n: int, *, name: str = "DeleteGroup", group: Any = None, **kw: Any) -> dict[str, Any]:
    e = ct_event("iam", name, {"groupName": f"team-{n}" if group is None else group}, **kw)
    e["detail"]["eventID"] = f"00000000-0000-4000-8000-{n:012d}"
    e["detail"]["eventTime"] = NOW
    return e


def stop_event(n: int) -> dict[str, Any]:
    e = ct_event("cloudtrail", "StopLogging", {"name": f"trail-{n}"})
    e["detail"]["eventID"] = f"00000000-0000-4000-9000-{n:012d}"
    return e


def change_records(out: str) -> list[dict[str, Any]]:
    return [line["change_record"] for line in log_lines(out) if "change_record" in line]


def table_ids(prefix: str) -> list[str]:
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=TABLE)["Items"]
    return sorted(i["id"]["S"] for i in items if i["id"]["S"].startswith(prefix))


# --------------------------------------------------------------------------- #
# Delivery
# --------------------------------------------------------------------------- #


@pytest.mark.usefixtures("capture_logs")
def test_an_info_finding_is_a_security_hub_informational_record_and_an_audit_line_never_sns(
    records: World, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    out = records.invoke(group_event(1), RECORD)
    [finding] = out["findings"]
    assert finding["severity"] == "INFO" and finding["decision"] == "alert"
    assert finding["status"] == "recorded"
    assert "Security Hub: imported" in finding["detail"]
    assert records.messages() == [], "a change record reached the SNS alert topic"

    [hub] = records.findings()
    assert hub["Severity"]["Label"] == "INFORMATIONAL"
    assert hub["ProductFields"]["trailguard/kind"] == "change-record"
    assert hub["ProductFields"]["trailguard/status"] == "recorded"
    assert hub["Resources"][0]["Type"] == "AwsIamGroup" and hub["Resources"][0]["Id"] == "team-1"

    text = capsys.readouterr().out
    [line] = change_records(text)
    assert line["rule"] == RECORD and line["status"] == "recorded"
    assert line["resource"] == {"type": "AWS::IAM::Group", "id": "team-1"}
    assert line["principal"] == ATTACKER
    assert line["eventID"] == "00000000-0000-4000-8000-000000000001"
    assert (line["account"], line["region"]) == (MEMBER, "us-east-1")
    assert "DeleteGroup on team-1" in line["reason"]
    assert line["security_hub"].startswith("imported")
    assert metric_total(text, "ChangeRecords", rule=RECORD) == 1
    assert metric_total(text, "Detections", rule=RECORD) == 0  # records do not swamp the detections graph


@pytest.mark.usefixtures("capture_logs")
def test_with_security_hub_off_a_record_is_the_audit_line_only(
    records: World, capsys: pytest.CaptureFixture[str]
) -> None:
    records.set_runtime(security_hub_findings=False)
    capsys.readouterr()
    assert records.invoke(group_event(2), RECORD)["findings"][0]["status"] == "recorded"
    assert records.messages() == [] and records.findings() == []
    [line] = change_records(capsys.readouterr().out)
    assert line["security_hub"].startswith("off")
    assert table_ids("alerts#") == [], "a record used a budget with nothing to import"


@pytest.mark.usefixtures("capture_logs")
def test_a_failed_call_or_an_aws_service_is_not_recorded(records: World, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert records.invoke(group_event(3, error_code="AccessDenied"), RECORD)["findings"][0]["status"] == "skipped"
    service = {"type": "AWSService", "invokedBy": "iam.amazonaws.com"}
    assert records.invoke(group_event(4, identity=service), RECORD)["findings"][0]["status"] == "skipped"
    assert records.messages() == [] and records.findings() == []
    assert change_records(capsys.readouterr().out) == []


def test_a_record_is_never_acted_on_even_when_configured_to_remediate(records: World) -> None:
    records.set_runtime(rule_modes={RECORD: "remediate"})
    out = records.invoke(group_event(5), RECORD)
    assert out["findings"][0]["status"] == "recorded"
    assert records.member_calls() == []  # no role assumed, no call in the member account
    assert records.messages() == []


@pytest.mark.usefixtures("capture_logs")
def test_a_crafted_request_field_cannot_crash_the_record_or_name_the_wrong_resource(
    records: World, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    for n, group in enumerate([{"nested": "x"}, ["a", "b"], "g" * 5000, True, ""], start=10):
        out = records.invoke(group_event(n, group=group), RECORD)
        assert out["findings"][0]["status"] == "recorded", group
    lines = change_records(capsys.readouterr().out)
    assert [ln["resource"].get("id", "") for ln in lines] == ["", "", "g" * 300, "", ""]
    assert all(len(ln["reason"]) <= 1000 for ln in lines)
    assert records.messages() == []


# --------------------------------------------------------------------------- #
# Notices, IaC de-duplication, failure reports: records on every path
# --------------------------------------------------------------------------- #


@pytest.mark.usefixtures("capture_logs")
def test_a_record_skipped_because_of_who_made_it_is_logged_and_counted_not_a_low_notice(
    records: World, capsys: pytest.CaptureFixture[str]
) -> None:
    records.set_runtime(exemptions={"accounts": [MEMBER]})
    capsys.readouterr()
    out = records.invoke(group_event(20), RECORD)
    assert out["findings"][0]["status"] == "skipped"
    assert "change record logged only" in out["findings"][0]["detail"]
    assert records.messages() == [], "an INFO finding was raised to a LOW notice on SNS"
    assert records.findings() == []
    text = capsys.readouterr().out
    [line] = change_records(text)
    assert line["status"] == "silenced" and line["silenced_by"] == "exempt account"
    assert metric_total(text, "ChangeRecordsSilenced", rule=RECORD) == 1
    assert metric_total(text, "SilencedRiskyEvents", rule=RECORD) == 0


def test_records_by_an_iac_pipeline_are_all_kept_and_never_touch_its_alert_marker(records: World) -> None:
    iac = []
    for n, name in ((30, "CreateGroup"), (31, "DeleteGroup"), (32, "DeleteGroup")):
        e = group_event(n, name=name)
        e["detail"]["userAgent"] = TERRAFORM_UA
        out = records.invoke(e, RECORD)["findings"][0]
        iac.append(out["status"])
        assert out["caller"] == "iac"
    assert iac == ["recorded"] * 3, "a record of the pipeline was de-duplicated away"
    assert table_ids("iac#") == [], "a record used up the pipeline's hourly IaC alert"
    assert records.messages() == []
    assert len(records.findings()) == 3


def test_a_failure_report_of_an_info_finding_is_a_record(records: World) -> None:
    """The reporting choke point: whatever path reports an INFO finding (a failure included), no SNS message."""
    engine = handler.get_engine(FakeContext())
    runtime = handler.get_runtime()
    event = CloudTrailEvent(group_event(40))
    finding = Finding(RECORD, "INFO", "alert", None, "DeleteGroup on team-40: change record", {"id": "team-40"})
    engine._report(event, finding, record_rule(), Outcome("failed", "boom"), runtime)
    engine._report_failure_once(event, finding, record_rule(), Outcome("failed", "boom"), runtime)
    assert records.messages() == []
    assert {f["Severity"]["Label"] for f in records.findings()} == {"INFORMATIONAL"}


# --------------------------------------------------------------------------- #
# Budgets
# --------------------------------------------------------------------------- #


@pytest.mark.usefixtures("capture_logs")
def test_records_have_their_own_budget_and_never_use_the_alert_budget(
    records: World, capsys: pytest.CaptureFixture[str]
) -> None:
    records.set_runtime(alerts_per_account_per_hour=3, rule_modes={STOP: "alert"})
    capsys.readouterr()
    for n in range(10):
        assert records.invoke(group_event(100 + n), RECORD)["findings"][0]["status"] == "recorded"
    assert records.messages() == [], "records reached SNS (or set off the budget-exhausted notice)"
    assert len(records.findings()) == 3  # the record budget: the same limit, its own counter
    text = capsys.readouterr().out
    assert metric_total(text, "ChangeRecords", rule=RECORD) == 10
    assert metric_total(text, "ChangeRecordsSuppressed", rule=RECORD) == 7
    assert metric_total(text, "AlertsSuppressed") == 0
    lines = change_records(text)
    assert len(lines) == 10, "a record over the Security Hub budget left no audit line"
    assert sum("over the hourly budget" in ln["security_hub"] for ln in lines) == 7

    # The alert budget of the account is whole: all three alerts go out, the fourth is over it.
    sent = [records.invoke(stop_event(n), STOP)["findings"][0]["status"] for n in range(4)]
    assert sent == ["alerted"] * 4
    msgs = records.messages()
    alerts = [b for _, b in msgs if b.get("rule") == STOP and b.get("verdict") == "alert"]
    assert len(alerts) == 3
    assert [b.get("alert") for _, b in msgs if b.get("alert")] == ["alert_budget_exhausted"]
    window = int(FROZEN_AT // 3600)
    assert table_ids(f"alerts#{window}#info#") == [f"alerts#{window}#info#{MEMBER}"]


def test_security_hub_severity_labels() -> None:
    """Security Hub has no INFO label: INFO maps to INFORMATIONAL, the others are unchanged."""
    assert ASFF_SEVERITY_LABELS == {
        "CRITICAL": "CRITICAL",
        "HIGH": "HIGH",
        "MEDIUM": "MEDIUM",
        "LOW": "LOW",
        "INFO": "INFORMATIONAL",
    }
    event = CloudTrailEvent(group_event(50))
    for severity, label in ASFF_SEVERITY_LABELS.items():
        f = Finding(RECORD, severity, "alert", None, "x")  # type: ignore[arg-type]
        doc = asff(
            f, record_rule(), event, Outcome("recorded"), engine_account=MEMBER, engine_region="us-east-1", runbook=""
        )
        assert doc["Severity"] == {"Label": label}
        assert doc["ProductFields"]["trailguard/kind"] == ("change-record" if severity == "INFO" else "alert")


# --------------------------------------------------------------------------- #
# The catalog's own INFO rules, through the engine
# --------------------------------------------------------------------------- #

CATALOG_RECORDS = sorted(r.id for r in load_catalog() if is_record_rule(r))


@pytest.mark.parametrize("rule_id", CATALOG_RECORDS)
def test_each_catalog_info_rule_is_kept_as_a_record_never_sent(world: World, rule_id: str) -> None:
    rule = next(r for r in load_catalog() if r.id == rule_id)
    world.set_runtime(rule_modes={rule_id: "remediate"})  # even so: a record is never acted on
    statuses = []
    for example in rule.examples_positive:
        out = world.invoke(copy.deepcopy(example), rule_id)
        statuses += [f["status"] for f in out["findings"] if f["rule"] == rule_id]
    assert "recorded" in statuses, (rule_id, statuses)
    assert set(statuses) <= {"recorded", "skipped"}, (rule_id, statuses)
    assert world.messages() == [], f"{rule_id}: a change record reached SNS"
    assert world.member_calls() == [], f"{rule_id}: the engine acted on a record"
    assert {f["Severity"]["Label"] for f in world.findings()} == {"INFORMATIONAL"}
