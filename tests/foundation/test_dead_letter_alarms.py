"""Issue 20: no silent queues. Every dead-letter / on-failure queue in every synthesized template (both
example configs and the bare default, StackSet member template included) has an alarm on its depth; the
member forwarding DLQs are also rolled up to the security account by the drift sweep."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dlq_alarm_helpers import all_templates, dead_letter_targets, unwatched_dead_letter_queues, watched_queues
from foundation_helpers import as_list, flat
from trailguard_engine.member_queues import FORWARD_DLQ_NAME

from stacks import names

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_STANDALONE = ROOT / "config" / "example-standalone.yaml"


@dataclass
class _Templates:
    templates: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def example_standalone(tmp_path_factory: pytest.TempPathFactory) -> _Templates:
    """config/example-standalone.yaml (the session fixtures cover the bare default and the organization example)."""
    import aws_cdk as cdk

    from stacks.app_builder import build_app
    from trailguard.config import load_config

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk-example-standalone")), context=context)
    build_app(app, load_config(EXAMPLE_STANDALONE))
    return _Templates({s.stack_name: s.template for s in app.synth().stacks})


SYNTHS = ["standalone", "organization", "example_standalone"]


@pytest.mark.parametrize("synth_name", SYNTHS)
def test_every_dead_letter_queue_has_an_alarm(request: pytest.FixtureRequest, synth_name: str) -> None:
    synth = request.getfixturevalue(synth_name)
    templates = all_templates(synth)
    problems = {name: unwatched_dead_letter_queues(tpl) for name, tpl in sorted(templates.items())}
    assert {k: v for k, v in problems.items() if v} == {}
    # The generic detection found the queues it must have found (a detector that finds nothing passes too).
    found = {name: sorted(dead_letter_targets(tpl)) for name, tpl in templates.items()}
    detection = found["TrailguardDetection"]
    assert len(detection) == 4, detection  # rule targets, engine on-failure, reconcile and digest redrive
    members = [n for n in templates if n.startswith("TrailguardMember-") or "/" in n]
    assert members
    for name in members:
        assert len(found[name]) == 1, (name, found[name])


# --------------------------------------------------------------------------- #
# The checker itself: each way of making a queue a dead-letter target is recognised
# --------------------------------------------------------------------------- #
def _queue(name: str | None = None) -> dict[str, Any]:
    return {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name} if name else {}}


def _alarm(dimension_value: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Namespace": "AWS/SQS",
            "Dimensions": [{"Name": "QueueName", "Value": dimension_value}],
        },
    }


ARN = {"Fn::GetAtt": ["Dlq", "Arn"]}
USERS: dict[str, dict[str, Any]] = {
    "sqs redrive": {
        "Type": "AWS::SQS::Queue",
        "Properties": {"RedrivePolicy": {"deadLetterTargetArn": ARN, "maxReceiveCount": 5}},
    },
    "sns redrive (JSON string)": {
        "Type": "AWS::SNS::Subscription",
        "Properties": {"RedrivePolicy": json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:named-dlq"})},
    },
    "eventbridge target": {
        "Type": "AWS::Events::Rule",
        "Properties": {"Targets": [{"Id": "t", "Arn": "x", "DeadLetterConfig": {"Arn": ARN}}]},
    },
    "lambda dlq": {"Type": "AWS::Lambda::Function", "Properties": {"DeadLetterConfig": {"TargetArn": ARN}}},
    "event invoke config": {
        "Type": "AWS::Lambda::EventInvokeConfig",
        "Properties": {"DestinationConfig": {"OnFailure": {"Destination": ARN}}},
    },
    "event source mapping": {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {"DestinationConfig": {"OnFailure": {"Destination": ARN}}},
    },
}


@pytest.mark.parametrize("user", list(USERS))
def test_checker_flags_an_unwatched_dead_letter_queue(user: str) -> None:
    queue = _queue("named-dlq") if "sns" in user else _queue()
    template = {"Resources": {"Dlq": queue, "User": USERS[user]}}
    assert sorted(dead_letter_targets(template)) == ["Dlq"]
    assert len(unwatched_dead_letter_queues(template)) == 1
    value = "named-dlq" if "sns" in user else {"Fn::GetAtt": ["Dlq", "QueueName"]}
    template["Resources"]["Alarm"] = _alarm(value)
    assert watched_queues(template) == {"Dlq"}
    assert unwatched_dead_letter_queues(template) == []


def test_checker_accepts_metric_math_alarms_and_rejects_other_metrics() -> None:
    template: dict[str, Any] = {"Resources": {"Dlq": _queue(), "User": USERS["sqs redrive"]}}
    math = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "Metrics": [
                {
                    "Id": "m",
                    "MetricStat": {
                        "Metric": {
                            "MetricName": "ApproximateNumberOfMessagesVisible",
                            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["Dlq", "QueueName"]}}],
                        }
                    },
                }
            ]
        },
    }
    other = _alarm({"Fn::GetAtt": ["Dlq", "QueueName"]})
    other["Properties"]["MetricName"] = "NumberOfMessagesDeleted"
    template["Resources"]["Other"] = other
    assert unwatched_dead_letter_queues(template) != []
    template["Resources"]["Math"] = math
    assert unwatched_dead_letter_queues(template) == []


def test_checker_reports_a_target_that_is_not_a_local_queue() -> None:
    template = {"Resources": {"User": USERS["eventbridge target"]}}
    assert any("cannot resolve" in p for p in unwatched_dead_letter_queues(template))


# --------------------------------------------------------------------------- #
# The roll-up: member DLQ named, readable by the drift sweep only, alarmed centrally
# --------------------------------------------------------------------------- #
def _member_templates(synth: Any) -> dict[str, dict[str, Any]]:
    return {n: t for n, t in all_templates(synth).items() if n.startswith("TrailguardMember-") or "/" in n}


@pytest.mark.parametrize("synth_name", ["standalone", "organization"])
def test_member_dlq_is_named_alarmed_and_readable_by_the_sweep_only(
    request: pytest.FixtureRequest, synth_name: str
) -> None:
    synth = request.getfixturevalue(synth_name)
    from trailguard.config import load_config

    cfg = load_config(None if synth_name == "standalone" else ROOT / "config" / "example-organization.yaml")
    for name, tpl in _member_templates(synth).items():
        res = tpl["Resources"]
        queues = [r for r in res.values() if r["Type"] == "AWS::SQS::Queue"]
        assert [q["Properties"]["QueueName"] for q in queues] == [FORWARD_DLQ_NAME], name
        alarms = [r["Properties"] for r in res.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
        assert [a["AlarmName"] for a in alarms] == [FORWARD_DLQ_NAME], name
        assert alarms[0]["ComparisonOperator"] == "GreaterThanThreshold" and alarms[0]["Threshold"] == 0
        policy = next(
            r
            for r in res.values()
            if r["Type"] == "AWS::IAM::ManagedPolicy"
            and r["Properties"].get("ManagedPolicyName") == names.REMEDIATION_POLICY_NAME
        )
        sqs_statements = [
            s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if any(str(a).startswith("sqs:") for a in as_list(s["Action"]))
        ]
        assert len(sqs_statements) == 1, name
        st = sqs_statements[0]
        assert st["Action"] == ["sqs:GetQueueAttributes"]
        resources = sorted(flat(r) for r in as_list(st["Resource"]))
        assert len(resources) == len(cfg.governed_regions)
        for region in cfg.governed_regions:
            own = ("${AWS::AccountId}", cfg.organization.management_account_id if cfg.organization else "")
            assert any(r.endswith(tuple(f":sqs:{region}:{a}:{FORWARD_DLQ_NAME}" for a in own)) for r in resources), (
                region,
                resources,
            )


@pytest.mark.parametrize("synth_name", ["standalone", "organization"])
def test_detection_alarms_on_the_member_roll_up(request: pytest.FixtureRequest, synth_name: str) -> None:
    synth = request.getfixturevalue(synth_name)
    res = synth.templates["TrailguardDetection"]["Resources"]
    alarms = [r["Properties"] for r in res.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    rollup = [
        a
        for a in alarms
        if {m.get("MetricStat", {}).get("Metric", {}).get("MetricName") for m in a.get("Metrics", [])}
        >= {"MemberDlqMessages", "MemberDlqUnreadable"}
    ]
    assert len(rollup) == 1
    alarm = rollup[0]
    assert alarm["AlarmActions"], "the roll-up alarm must notify"
    for m in alarm["Metrics"]:
        if "MetricStat" in m:
            metric = m["MetricStat"]["Metric"]
            assert metric["Namespace"] == "Trailguard"
            assert metric["Dimensions"] == [{"Name": "service", "Value": "trailguard-drift"}]
    drift = next(
        r["Properties"]
        for r in res.values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == "trailguard_engine.drift.handler"
    )
    env = drift["Environment"]["Variables"]
    assert env["TRAILGUARD_FORWARD_DLQ_NAME"] == FORWARD_DLQ_NAME
    assert env["TRAILGUARD_GOVERNED_REGIONS"]
    assert env["TRAILGUARD_MEMBER_ACCOUNTS"]
    assert "TRAILGUARD_STATE_TABLE" in env
