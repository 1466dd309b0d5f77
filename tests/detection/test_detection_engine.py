"""The detection stack's infrastructure: bus policy, engine, state, config, alerts, alarms, reconcile, drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match
from detection_helpers import resources_of
from trailguard_engine.model import Rule

from trailguard.config import load_config

EXAMPLE_ORG = Path(__file__).resolve().parents[2] / "config" / "example-organization.yaml"
STACK = "TrailguardDetection"


def _fn(synth: Any, handler: str) -> tuple[str, dict[str, Any]]:
    fns = resources_of(synth.templates[STACK], "AWS::Lambda::Function")
    (hit,) = [(k, v["Properties"]) for k, v in fns.items() if v["Properties"].get("Handler") == handler]
    return hit


def _statements(tpl: dict[str, Any], role_name: str) -> list[dict[str, Any]]:
    roles = resources_of(tpl, "AWS::IAM::Role")
    (rid,) = [k for k, v in roles.items() if v["Properties"].get("RoleName") == role_name]
    out: list[dict[str, Any]] = []
    for pol in resources_of(tpl, "AWS::IAM::Policy").values():
        if {"Ref": rid} in pol["Properties"]["Roles"]:
            out.extend(pol["Properties"]["PolicyDocument"]["Statement"])
    return out


def _actions(st: dict[str, Any]) -> list[str]:
    a = st["Action"]
    return [a] if isinstance(a, str) else list(a)


def test_bus_policy_allows_only_the_forwarding_roles_of_the_organization(organization: Any) -> None:
    cfg = load_config(EXAMPLE_ORG)
    (pol,) = organization.resources(STACK, "AWS::Events::EventBusPolicy").values()
    st = pol["Properties"]["Statement"]
    assert st["Action"] == "events:PutEvents"
    assert st["Effect"] == "Allow"
    assert st["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": cfg.org.org_id},
        "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/trailguard-forward-*"},
    }
    organization.template(STACK).has_resource_properties("AWS::Events::EventBus", {"Name": "trailguard-central"})


def test_bus_policy_standalone_is_the_accounts_forwarding_roles(standalone: Any) -> None:
    (pol,) = standalone.resources(STACK, "AWS::Events::EventBusPolicy").values()
    st = pol["Properties"]["Statement"]
    assert st["Principal"]["AWS"] == {"Fn::Join": ["", ["arn:aws:iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
    allowed = st["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    assert allowed == [
        {"Fn::Join": ["", ["arn:aws:iam::", {"Ref": "AWS::AccountId"}, f":role/trailguard-forward-{region}"]]}
        for region in load_config(None).governed_regions
    ]


@pytest.mark.parametrize("mode", ["standalone", "organization"])
def test_only_the_engine_may_assume_root_and_only_in_an_organization(mode: str, request: pytest.FixtureRequest) -> None:
    synth = request.getfixturevalue(mode)
    tpl = synth.templates[STACK]
    for role in ("trailguard-engine", "trailguard-drift", "trailguard-reconcile"):
        grants = [st for st in _statements(tpl, role) if "sts:AssumeRoot" in _actions(st)]
        if role != "trailguard-engine" or mode == "standalone":
            assert grants == [], role
            continue
        (st,) = grants
        assert _actions(st) == ["sts:AssumeRoot"]
        assert st["Resource"] == "arn:aws:iam::*:root"  # the region is known: CDK writes the partition
        assert st["Condition"] == {
            "StringEquals": {"sts:TaskPolicyArn": "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials"}
        }


@pytest.mark.parametrize("mode", ["standalone", "organization"])
def test_engine_function_contract(mode: str, request: pytest.FixtureRequest) -> None:
    synth = request.getfixturevalue(mode)
    lid, props = _fn(synth, "trailguard_engine.handler.handler")
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert len(props["Layers"]) == 1
    env = props["Environment"]["Variables"]
    assert set(env) >= {
        "TRAILGUARD_CONFIG_PARAMETER",
        "TRAILGUARD_STATE_TABLE",
        "TRAILGUARD_ALERT_TOPIC_ARN",
        "TRAILGUARD_REMEDIATION_ROLE_NAME",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "TRAILGUARD_TRACING",
    }
    assert env["TRAILGUARD_CONFIG_PARAMETER"] == "/trailguard/runtime-config"
    assert env["TRAILGUARD_REMEDIATION_ROLE_NAME"] == "trailguard-remediation"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Trailguard"
    assert env["TRAILGUARD_TRACING"] == "false"
    assert 1 <= props["ReservedConcurrentExecutions"] <= 100
    assert "KmsKeyArn" in props
    tpl = synth.templates[STACK]
    (cfg_res,) = resources_of(tpl, "AWS::Lambda::EventInvokeConfig").values()
    on_failure = cfg_res["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert tpl["Resources"][on_failure["Fn::GetAtt"][0]]["Type"] == "AWS::SQS::Queue"
    role = tpl["Resources"][props["Role"]["Fn::GetAtt"][0]]
    assert role["Properties"]["RoleName"] == "trailguard-engine"
    group = tpl["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert group["Properties"]["RetentionInDays"] == 400
    assert "KmsKeyId" in group["Properties"]
    assert lid


def test_engine_asset_excludes_caches(standalone: Any) -> None:
    from stacks.detection import ASSET_EXCLUDES

    assert "**/__pycache__" in ASSET_EXCLUDES
    manifest = next(standalone.outdir.glob("TrailguardDetection.assets.json"))
    sources = [a["source"]["path"] for a in json.loads(manifest.read_text())["files"].values()]
    asset_dirs = [standalone.outdir / p for p in sources if (standalone.outdir / p).is_dir()]
    code = [d for d in asset_dirs if (d / "trailguard_engine").is_dir()]
    assert code, "engine code asset not found"
    # Only bytecode compiled for Lambda's Python 3.12 ships (issue 19), one per module when 3.12 was found.
    pycs = list(code[0].rglob("*.pyc"))
    assert all(p.name.endswith(".cpython-312.pyc") and p.parent.name == "__pycache__" for p in pycs)
    from stacks.constructs.pyc_asset import find_lambda_python

    if find_lambda_python() is not None:
        assert len(pycs) == len(list(code[0].rglob("*.py")))
    assert (code[0] / "trailguard_engine" / "rules").is_dir()


def test_engine_iam_is_derived_and_has_no_star_actions(organization: Any) -> None:
    cfg = load_config(EXAMPLE_ORG)
    tpl = organization.templates[STACK]
    sts = _statements(tpl, "trailguard-engine")
    actions = {a for st in sts for a in _actions(st)}
    assert all(a != "*" and not a.endswith(":*") for a in actions)
    assume = [st for st in sts if "sts:AssumeRole" in _actions(st)]
    (st,) = assume
    assert st["Resource"] == "arn:aws:iam::*:role/trailguard-remediation"
    assert st["Condition"] == {"StringEquals": {"aws:ResourceOrgID": cfg.org.org_id}}
    assert {"sns:Publish", "securityhub:BatchImportFindings", "ssm:GetParameter", "dynamodb:PutItem"} <= actions
    for role_name in ("trailguard-reconcile", "trailguard-drift"):
        for s in _statements(tpl, role_name):
            assert all(a != "*" and not a.endswith(":*") for a in _actions(s)), role_name


def test_state_table(standalone: Any) -> None:
    standalone.template(STACK).has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": Match.object_like({"SSEEnabled": True, "SSEType": "KMS"}),
        },
    )


def _resolve_join(value: Any) -> str:
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "<" + (p.get("Ref") or "x") + ">" for p in parts)


@pytest.mark.parametrize("mode", ["standalone", "organization"])
def test_runtime_config_parameter(mode: str, request: pytest.FixtureRequest) -> None:
    synth = request.getfixturevalue(mode)
    cfg = load_config(EXAMPLE_ORG if mode == "organization" else None)
    (param,) = synth.resources(STACK, "AWS::SSM::Parameter").values()
    assert param["Properties"]["Name"] == "/trailguard/runtime-config"
    doc = json.loads(_resolve_join(param["Properties"]["Value"]))
    keys = cfg.runtime_document()
    stack_filled = ("protected_key_arns", "engine_account_id", "trailguard_trail")
    assert {k: v for k, v in doc.items() if k not in stack_filled} == {
        k: v for k, v in keys.items() if k not in stack_filled
    }
    # The loop guard trusts trailguard's own roles only in the account the engine runs in.
    engine_account = cfg.org.security_tooling_account_id if mode == "organization" else "<AWS::AccountId>"
    assert doc["engine_account_id"] == engine_account
    doc["engine_account_id"] = "123456789012" if mode == "standalone" else engine_account
    trail_account = cfg.org.delegated_admin_account_id if mode == "organization" else "<AWS::AccountId>"
    # The trail key lives beside the archive (log-archive stack); the logs key with the trail.
    archive_account = cfg.org.log_archive_account_id if mode == "organization" else "<AWS::AccountId>"
    assert any(f":{archive_account}:alias/trailguard-trail" in arn for arn in doc["protected_key_arns"])
    assert any(f":{trail_account}:alias/trailguard-logs" in arn for arn in doc["protected_key_arns"])
    from trailguard_engine.runtime_config import RuntimeConfig

    parsed = RuntimeConfig.from_document(doc)
    assert parsed.protected_key_arns == frozenset(doc["protected_key_arns"])
    # trailguard's own trail as deployed: UpdateTrail on it is judged against this.
    assert parsed.deployed_trail["bucket"] == f"trailguard-archive-{archive_account}-{cfg.home_region}"
    assert parsed.deployed_trail["kms_key"].endswith(f":{archive_account}:alias/trailguard-trail")
    assert parsed.deployed_trail["log_group"] == f"/trailguard/cloudtrail/{cfg.trail_name}"
    assert parsed.deployed_trail["arn"].endswith(f":trail/{cfg.trail_name}")
    if mode == "organization":  # replay knows the same trail from the config alone
        assert keys["trailguard_trail"] == {
            k: v.replace("<AWS::Partition>", "aws") for k, v in doc["trailguard_trail"].items()
        }
    assert parsed.dry_run is cfg.dry_run


def test_alert_topic_kms_and_emails(organization: Any) -> None:
    cfg = load_config(EXAMPLE_ORG)
    (topic,) = organization.resources(STACK, "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    subs = organization.resources(STACK, "AWS::SNS::Subscription").values()
    assert sorted(s["Properties"]["Endpoint"] for s in subs) == sorted(cfg.notifications.emails)


def test_alarms_on_dlqs_error_rate_and_throttles(standalone: Any) -> None:
    tpl = standalone.templates[STACK]
    alarms = list(resources_of(tpl, "AWS::CloudWatch::Alarm").values())
    topic_id = next(iter(resources_of(tpl, "AWS::SNS::Topic")))
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": topic_id}] for a in alarms)
    dlq_alarms = [a for a in alarms if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"]
    assert len(dlq_alarms) == 4  # rule targets, engine on-failure, reconcile, digest verifier (issue 13)
    queue_ids = {a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in dlq_alarms}
    engine_id, engine = _fn(standalone, "trailguard_engine.handler.handler")
    (invoke_cfg,) = resources_of(tpl, "AWS::Lambda::EventInvokeConfig").values()
    on_failure = invoke_cfg["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert on_failure in queue_ids
    rate = [
        a for a in alarms if any("errors" in m.get("Expression", "") for m in a["Properties"].get("Metrics", []))
    ]  # the other metric-math alarm is the member DLQ roll-up (issue 20)
    (rate_alarm,) = rate
    assert any("errors" in m.get("Expression", "") for m in rate_alarm["Properties"]["Metrics"])
    throttles = [a for a in alarms if a["Properties"].get("MetricName") == "Throttles"]
    assert {"Ref": engine_id} in [t["Properties"]["Dimensions"][0]["Value"] for t in throttles]
    assert engine


def test_reconcile_queue_accepts_the_archive_bucket(organization: Any) -> None:
    cfg = load_config(EXAMPLE_ORG)
    tpl = organization.templates[STACK]
    queues = resources_of(tpl, "AWS::SQS::Queue")
    (qid,) = [k for k, v in queues.items() if v["Properties"].get("QueueName") == "trailguard-reconcile"]
    q = queues[qid]["Properties"]
    assert "KmsMasterKeyId" in q
    assert "deadLetterTargetArn" in q["RedrivePolicy"]
    pols = [p for p in resources_of(tpl, "AWS::SQS::QueuePolicy").values() if {"Ref": qid} in p["Properties"]["Queues"]]
    (pol,) = pols
    (st,) = [
        s
        for s in pol["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "s3.amazonaws.com"}
    ]
    bucket = f"trailguard-archive-{cfg.org.log_archive_account_id}-{cfg.home_region}"
    assert st["Condition"]["ArnEquals"]["aws:SourceArn"] == f"arn:aws:s3:::{bucket}"
    assert st["Condition"]["StringEquals"]["aws:SourceAccount"] == cfg.org.log_archive_account_id
    (esm,) = [  # the digest verifier has its own queue and mapping (tests/detection/test_detection_verify.py)
        m
        for m in resources_of(tpl, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [qid, "Arn"]}
    ]
    assert esm["Properties"]["BatchSize"] <= 5
    assert esm["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    fid, fn = _fn(organization, "trailguard_engine.reconcile.handler")
    assert esm["Properties"]["FunctionName"] == {"Ref": fid}
    assert fn["Timeout"] * 6 <= q["VisibilityTimeout"]
    assert tpl["Resources"][fn["Role"]["Fn::GetAtt"][0]]["Properties"]["RoleName"] == "trailguard-reconcile"


def test_drift_is_hourly_with_its_own_role(standalone: Any) -> None:
    tpl = standalone.templates[STACK]
    fid, fn = _fn(standalone, "trailguard_engine.drift.handler")
    assert tpl["Resources"][fn["Role"]["Fn::GetAtt"][0]]["Properties"]["RoleName"] == "trailguard-drift"
    scheduled = [
        r["Properties"]
        for r in resources_of(tpl, "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
        and r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [fid, "Arn"]}
    ]
    (rule,) = scheduled  # the digest verifier's hourly check is a schedule of its own
    assert rule["ScheduleExpression"] == "rate(1 hour)"
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": [fid, "Arn"]}


def test_archive_notification_helper_targets_the_queue() -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from aws_cdk.assertions import Template

    from stacks.constructs.archive_notifications import add_archive_notifications, reconcile_queue_arn
    from stacks.names import Accounts

    stack = cdk.Stack(cdk.App())
    bucket = s3.Bucket(stack, "B")
    arn = reconcile_queue_arn(Accounts("1", "2", "3", "444455556666", "eu-west-1"))
    add_archive_notifications(bucket, arn)
    Template.from_stack(stack).has_resource_properties(
        "AWS::S3::Bucket",
        {
            "NotificationConfiguration": {
                "QueueConfigurations": [Match.object_like({"Event": "s3:ObjectCreated:*", "Queue": Match.any_value()})]
            }
        },
    )
    resolved = stack.resolve(arn)
    assert ":sqs:eu-west-1:444455556666:trailguard-reconcile" in json.dumps(resolved)


def test_every_rule_has_a_deterministic_name(standalone: Any, catalog: tuple[Rule, ...]) -> None:
    from trailguard_engine.pattern_split import split_pattern

    from stacks.detection import central_rule_name
    from stacks.forwarding import PATTERN_SPLIT_CHARS

    names = [
        r["Properties"]["Name"]
        for r in resources_of(standalone.templates[STACK], "AWS::Events::Rule").values()
        if "EventPattern" in r["Properties"]
    ]
    parts = {r.id: len(split_pattern(r.event_pattern, PATTERN_SPLIT_CHARS)) for r in catalog}
    assert sorted(names) == sorted(central_rule_name(rid, n) for rid, k in parts.items() for n in range(1, k + 1))
    assert all(len(n) <= 64 for n in names)


@pytest.mark.parametrize("mode", ["standalone", "organization"])
def test_archive_bucket_notifies_the_reconcile_queue(mode: str, request: pytest.FixtureRequest) -> None:
    synth = request.getfixturevalue(mode)
    buckets = synth.resources("TrailguardLogArchive", "AWS::S3::Bucket").values()
    configs = [
        b["Properties"]["NotificationConfiguration"] for b in buckets if "NotificationConfiguration" in b["Properties"]
    ]
    queue_cfgs = [q for c in configs for q in c.get("QueueConfigurations", [])]
    (qc,) = queue_cfgs
    assert qc["Event"] == "s3:ObjectCreated:*"
    assert ":trailguard-reconcile" in json.dumps(qc["Queue"])
    if mode == "organization":
        cfg = load_config(EXAMPLE_ORG)
        assert f":sqs:{cfg.home_region}:{cfg.org.security_tooling_account_id}:trailguard-reconcile" in json.dumps(
            qc["Queue"]
        )
    deps = synth.manifest["artifacts"]["TrailguardLogArchive"].get("dependencies", [])
    assert "TrailguardDetection" in deps
