"""Issue 8: the operator dashboard and the alarms that need a human, on the synthesized detection stack."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from operator_helpers import (
    DETECTION,
    dashboard_body,
    dead_letter_queue_lids,
    emitted_metric_names,
    expressions,
    flat,
    function_lid,
    function_service,
    resources,
    widget,
    widget_metrics,
)

from stacks.constructs import dashboard as dash
from stacks.detection import DRIFT_HANDLER, ENGINE_HANDLER, RECONCILE_HANDLER, VERIFY_HANDLER

HANDLERS = {
    "engine": ENGINE_HANDLER,
    "reconcile": RECONCILE_HANDLER,
    "drift": DRIFT_HANDLER,
    "verify": VERIFY_HANDLER,
}


@pytest.fixture(params=["standalone", "organization"])
def tpl(request: pytest.FixtureRequest) -> dict[str, Any]:
    synth = request.getfixturevalue(request.param)
    return dict(synth.templates[DETECTION])


def _alarms(tpl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in resources(tpl, "AWS::CloudWatch::Alarm").items()}


def _alert_topic(tpl: dict[str, Any]) -> str:
    env = resources(tpl, "AWS::Lambda::Function")[function_lid(tpl, ENGINE_HANDLER)]["Properties"]["Environment"]
    return flat(env["Variables"]["TRAILGUARD_ALERT_TOPIC_ARN"])


def _custom_alarm(tpl: dict[str, Any], metric: str) -> dict[str, Any]:
    found = [p for p in _alarms(tpl).values() if p.get("Namespace") == "Trailguard" and p.get("MetricName") == metric]
    assert len(found) == 1, f"expected one alarm on Trailguard/{metric}, got {len(found)}"
    return found[0]


# --------------------------------------------------------------------------- #
# the dashboard
# --------------------------------------------------------------------------- #


def test_one_dashboard_named_trailguard_only_in_the_detection_stack(standalone: Any, organization: Any) -> None:
    for synth in (standalone, organization):
        placed = [stack for stack, _, _ in synth.all_resources("AWS::CloudWatch::Dashboard")]
        assert placed == [DETECTION]
        assert dashboard_body(synth.templates[DETECTION])["_name"] == "trailguard"


def test_detections_and_outcomes_are_split_by_rule_with_search_not_hard_coded_ids(tpl: dict[str, Any]) -> None:
    body = dashboard_body(tpl)
    by_rule = [e for e in expressions(body) if "{Trailguard,rule,service}" in e]
    assert any('MetricName=("Detections")' in e for e in by_rule)
    outcomes = [e for e in by_rule if "RemediationsSucceeded" in e]
    assert len(outcomes) == 1
    for name in ("RemediationsSucceeded", "RemediationsFailed", "RemediationsSkipped", "DryRuns"):
        assert f'"{name}"' in outcomes[0]
    assert all(e.startswith("SEARCH(") for e in expressions(body))
    text = json.dumps(body)
    assert "tg-" not in text
    assert '"rule"' not in text


def test_every_metric_the_lambdas_emit_is_on_the_dashboard(tpl: dict[str, Any]) -> None:
    emitted = emitted_metric_names()
    assert {"Detections", "RemediationsFailed", "AssumeRoleFailures", "RejectedEvents"} <= emitted  # the scan works
    shown = set(re.findall(r'\\?"([A-Z][A-Za-z]+)\\?"', " ".join(expressions(dashboard_body(tpl)))))
    missing = emitted - shown
    assert not missing, f"metrics emitted by lambdas/trailguard_engine but not on the dashboard: {sorted(missing)}"


def test_second_path_and_drift_metrics_are_shown(tpl: dict[str, Any]) -> None:
    exprs = expressions(dashboard_body(tpl))
    reconcile = function_service(tpl, RECONCILE_HANDLER)
    for name in ("MissedByEventBridge", "EventsScanned", "FilesScanned"):
        assert any(f'"{name}"' in e and f'service="{reconcile}"' in e for e in exprs), name
    drift = function_service(tpl, DRIFT_HANDLER)
    assert any('"DriftDetected"' in e and f'service="{drift}"' in e for e in exprs)
    single = widget(dashboard_body(tpl), "caught from log files")
    assert single["type"] == "metric"
    assert single["properties"]["view"] == "singleValue"


def test_service_dimension_values_match_the_deployed_functions(tpl: dict[str, Any]) -> None:
    assert function_service(tpl, ENGINE_HANDLER) == dash.ENGINE_SERVICE
    assert function_service(tpl, RECONCILE_HANDLER) == dash.RECONCILE_SERVICE
    assert function_service(tpl, DRIFT_HANDLER) == dash.DRIFT_SERVICE
    for res in resources(tpl, "AWS::Lambda::Function").values():
        env = res["Properties"].get("Environment", {}).get("Variables", {})
        if "POWERTOOLS_METRICS_NAMESPACE" in env:
            assert env["POWERTOOLS_METRICS_NAMESPACE"] == dash.NAMESPACE


def test_search_dimension_sets_are_the_ones_the_engine_publishes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SEARCH schemas ({Trailguard,rule,service} ...) must be dimension sets the engine's EMF really has."""
    from trailguard_engine import handler

    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", dash.ENGINE_SERVICE)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", dash.NAMESPACE)
    handler._COUNTS.clear()
    handler._count("Detections", "s3-bucket-acl-public", "111122223333")
    handler._flush_counts()
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (doc,) = [d for d in docs if "Detections" in d]
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == dash.NAMESPACE
    published = {tuple(sorted(d)) for d in directive["Dimensions"]}
    assert {("service",), ("rule", "service"), ("account", "service")} <= published
    assert doc["service"] == dash.ENGINE_SERVICE


def test_every_dead_letter_queue_is_graphed_and_alarmed(tpl: dict[str, Any]) -> None:
    dlqs = dead_letter_queue_lids(tpl)
    assert len(dlqs) == 4  # rule-target DLQ, engine on-failure DLQ, reconcile and digest-verifier redrive DLQs
    graph = widget(dashboard_body(tpl), "Dead-letter queues")
    graphed = {m[3] for m in widget_metrics(graph)}
    assert graphed == {f"<{lid}.QueueName>" for lid in dlqs}
    topic = _alert_topic(tpl)
    for lid in dlqs:
        (alarm,) = [
            p
            for p in _alarms(tpl).values()
            if p.get("MetricName") == "ApproximateNumberOfMessagesVisible"
            and flat(p["Dimensions"][0]["Value"]) == f"<{lid}.QueueName>"
        ]
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert [flat(a) for a in alarm["AlarmActions"]] == [topic]


def test_lambda_errors_duration_and_throttles_for_every_function(tpl: dict[str, Any]) -> None:
    body = dashboard_body(tpl)
    lids = {name: function_lid(tpl, h) for name, h in HANDLERS.items()}
    for title, metric in (("errors", "Errors"), ("duration", "Duration"), ("throttles", "Throttles")):
        w = widget(body, f"Lambda {title}")
        shown = {m[3] for m in widget_metrics(w) if m[0] == "AWS/Lambda" and m[1] == metric}
        assert shown == {f"<Ref:{lid}>" for lid in lids.values()}, title


def test_the_alarm_status_widget_lists_every_alarm_of_the_stack(tpl: dict[str, Any]) -> None:
    status = widget(dashboard_body(tpl), "Alarms that need a human")
    assert status["type"] == "alarm"
    assert set(status["properties"]["alarms"]) == {f"<{lid}.Arn>" for lid in _alarms(tpl)}


# --------------------------------------------------------------------------- #
# alarms that need a human
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("metric", "handler"),
    [
        ("RemediationsFailed", ENGINE_HANDLER),
        ("AssumeRoleFailures", ENGINE_HANDLER),
        ("FlappingAlerts", ENGINE_HANDLER),
        ("HandOffFailures", RECONCILE_HANDLER),
    ],
)
def test_alarms_that_fire_on_the_first_occurrence(tpl: dict[str, Any], metric: str, handler: str) -> None:
    assert metric in emitted_metric_names()  # the alarm watches a metric the code really emits
    alarm = _custom_alarm(tpl, metric)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": function_service(tpl, handler)}]
    assert alarm["Statistic"] == "Sum"
    assert alarm["Period"] == 300
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert [flat(a) for a in alarm["AlarmActions"]] == [_alert_topic(tpl)]
    assert alarm["AlarmDescription"].startswith("trailguard [high]")


def test_missed_by_eventbridge_is_a_lower_severity_hourly_alarm(tpl: dict[str, Any]) -> None:
    assert "MissedByEventBridge" in emitted_metric_names()
    alarm = _custom_alarm(tpl, "MissedByEventBridge")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": function_service(tpl, RECONCILE_HANDLER)}]
    assert alarm["Period"] == 3600
    assert alarm["Threshold"] == 1
    assert alarm["AlarmDescription"].startswith("trailguard [low]")
    assert [flat(a) for a in alarm["AlarmActions"]] == [_alert_topic(tpl)]


def test_engine_errors_and_reconcile_backlog_are_alarmed(tpl: dict[str, Any]) -> None:
    alarms = _alarms(tpl).values()
    rate = [a for a in alarms if "Metrics" in a and any("errors" in json.dumps(m) for m in a["Metrics"])]
    assert len(rate) == 1
    assert rate[0]["Threshold"] == 5
    backlog = [a for a in alarms if a.get("MetricName") == "ApproximateAgeOfOldestMessage"]
    assert len(backlog) == 1
    queues = resources(tpl, "AWS::SQS::Queue")
    (reconcile_q,) = [lid for lid, q in queues.items() if q["Properties"].get("QueueName") == "trailguard-reconcile"]
    assert flat(backlog[0]["Dimensions"][0]["Value"]) == f"<{reconcile_q}.QueueName>"
    assert backlog[0]["Threshold"] == dash.RECONCILE_BACKLOG_SECONDS


def test_every_alarm_notifies_the_alert_topic_and_none_is_duplicated(tpl: dict[str, Any]) -> None:
    topic = _alert_topic(tpl)
    seen = set()
    for lid, alarm in _alarms(tpl).items():
        assert [flat(a) for a in alarm["AlarmActions"]] == [topic], lid
        assert alarm["AlarmDescription"].startswith("trailguard"), lid
        key = json.dumps(
            [alarm.get("Namespace"), alarm.get("MetricName"), alarm.get("Dimensions"), alarm.get("Metrics")],
            sort_keys=True,
        )
        assert key not in seen, f"duplicate alarm {lid}"
        seen.add(key)


def test_nag_stays_clean_with_the_dashboard(standalone: Any, organization: Any) -> None:
    for synth in (standalone, organization):
        report = json.loads((synth.outdir / "validation-report.json").read_text())
        for plugin in report["pluginReports"]:
            assert plugin["violations"] == [], plugin["pluginName"]


def test_integrity_failures_and_missing_digests_are_critical_alarms(tpl: dict[str, Any]) -> None:
    for metric, period in (("IntegrityFailures", 300), ("DigestsMissing", 3600)):
        assert metric in emitted_metric_names()
        alarm = _custom_alarm(tpl, metric)
        assert alarm["Dimensions"] == [{"Name": "service", "Value": function_service(tpl, VERIFY_HANDLER)}]
        assert alarm["Period"] == period and alarm["Threshold"] == 1
        assert alarm["AlarmDescription"].startswith("trailguard [critical]")
        assert [flat(a) for a in alarm["AlarmActions"]] == [_alert_topic(tpl)]
