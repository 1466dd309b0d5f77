"""The digest verifier's deployment (issue 13): its queue, schedule and least-privilege role; who may write the ledger."""

from __future__ import annotations

import json
from typing import Any

import pytest
from detection_helpers import resources_of

from stacks.detection import DIGEST_QUEUE_NAME, VERIFY_HANDLER

DETECTION = "TrailguardDetection"


@pytest.fixture(params=["standalone", "organization"])
def synth(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param)


def _role_lid(tpl: dict[str, Any], name: str) -> str:
    [lid] = [k for k, v in resources_of(tpl, "AWS::IAM::Role").items() if v["Properties"].get("RoleName") == name]
    return lid


def role_statements(tpl: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """Every statement of the inline policies attached to role ``name``, by Sid (CDK's grants have none)."""
    lid = _role_lid(tpl, name)
    out: dict[str, dict[str, Any]] = {}
    for pol in resources_of(tpl, "AWS::IAM::Policy").values():
        if {"Ref": lid} not in pol["Properties"]["Roles"]:
            continue
        for i, st in enumerate(pol["Properties"]["PolicyDocument"]["Statement"]):
            out[st.get("Sid") or f"#{i}:{json.dumps(st['Action'])}"] = st
    return out


def _actions(st: dict[str, Any]) -> set[str]:
    a = st["Action"]
    return {a} if isinstance(a, str) else set(a)


def _function(tpl: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [(lid, fn)] = [
        (k, v["Properties"])
        for k, v in resources_of(tpl, "AWS::Lambda::Function").items()
        if v["Properties"].get("Handler") == VERIFY_HANDLER
    ]
    return lid, fn


def test_the_verifier_reads_the_digest_queue_and_runs_hourly(synth: Any) -> None:
    tpl = synth.templates[DETECTION]
    lid, fn = _function(tpl)
    assert fn["Timeout"] == 300 and fn["ReservedConcurrentExecutions"] == 2
    env = fn["Environment"]["Variables"]
    assert {"TRAILGUARD_STATE_TABLE", "TRAILGUARD_ARCHIVE_BUCKET", "TRAILGUARD_RECONCILE_QUEUE_URL"} <= set(env)
    [queue_lid] = [
        k
        for k, v in resources_of(tpl, "AWS::SQS::Queue").items()
        if v["Properties"].get("QueueName") == DIGEST_QUEUE_NAME
    ]
    queue = resources_of(tpl, "AWS::SQS::Queue")[queue_lid]["Properties"]
    assert queue["VisibilityTimeout"] == 6 * 300 and queue["RedrivePolicy"]["maxReceiveCount"] == 5
    [mapping] = [
        m["Properties"]
        for m in resources_of(tpl, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": lid}
    ]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [queue_lid, "Arn"]} and mapping["BatchSize"] == 1
    schedules = [
        r["Properties"]
        for r in resources_of(tpl, "AWS::Events::Rule").values()
        if r["Properties"].get("ScheduleExpression") == "rate(1 hour)"
        and any(t["Arn"] == {"Fn::GetAtt": [lid, "Arn"]} for t in r["Properties"]["Targets"])
    ]
    assert len(schedules) == 1
    reconcile = next(
        v["Properties"]["Environment"]["Variables"]
        for v in resources_of(tpl, "AWS::Lambda::Function").values()
        if v["Properties"].get("Handler") == "trailguard_engine.reconcile.handler"
    )
    assert "TRAILGUARD_DIGEST_QUEUE_URL" in reconcile


def test_the_verifier_role_is_least_privilege(synth: Any) -> None:
    sts = role_statements(synth.templates[DETECTION], "trailguard-verify")
    assert _actions(sts["ReadDigestsAndLogFiles"]) == {"s3:GetObject"}
    assert json.dumps(sts["ReadDigestsAndLogFiles"]["Resource"]).rstrip('"]}').endswith("/AWSLogs/*")
    assert sts["ListLogFolders"]["Condition"] == {"StringLike": {"s3:prefix": ["AWSLogs/*"]}}
    assert sts["DecryptDigestsAndLogFiles"]["Condition"]["StringEquals"]["kms:ViaService"].startswith("s3.")
    assert sts["CloudTrailPublicKeys"]["Resource"] == "*" and _actions(sts["CloudTrailPublicKeys"]) == {
        "cloudtrail:ListPublicKeys"
    }
    writes = sts["WriteLedger"]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert "verified#*" in writes and "pending#*" not in writes
    assert sts["ClearPendingAndSuspects"]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == [
        "pending#*",
        "suspects#*",
    ]
    every = set().union(*(_actions(s) for s in sts.values()))
    assert not {a for a in every if a.endswith(":*") or a == "*"}
    assert not {"sts:AssumeRole", "lambda:InvokeFunction", "s3:PutObject", "s3:DeleteObject"} & every


def test_only_the_verifier_may_write_the_ledger_the_engine_trusts(synth: Any) -> None:
    tpl = synth.templates[DETECTION]
    deny = role_statements(tpl, "trailguard-engine")["OnlyTheVerifierWritesTheLedger"]
    assert deny["Effect"] == "Deny"
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} <= _actions(deny)
    assert "verified#*" in deny["Condition"]["ForAnyValue:StringLike"]["dynamodb:LeadingKeys"]
    reconcile = role_statements(tpl, "trailguard-reconcile")
    mark = reconcile["MarkFilesAwaitingTheirDigest"]
    assert _actions(mark) == {"dynamodb:PutItem"}
    assert mark["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["pending#*"]}}
    writers = [
        sid
        for sid, st in reconcile.items()
        if st.get("Effect", "Allow") == "Allow" and _actions(st) & {"dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    ]
    assert writers == []


def test_organization_archive_lets_the_verifier_read_and_list_log_folders(organization: Any) -> None:
    verifier = "role/trailguard-verify"
    policy = json.dumps(
        [
            r["Properties"]
            for r in resources_of(organization.templates["TrailguardLogArchive"], "AWS::S3::BucketPolicy").values()
        ]
    )
    assert verifier in policy
    [listing] = [
        st
        for r in resources_of(organization.templates["TrailguardLogArchive"], "AWS::S3::BucketPolicy").values()
        for st in r["Properties"]["PolicyDocument"]["Statement"]
        if st.get("Sid") == "AllowTrailguardVerifierListLogFolders"
    ]
    assert listing["Action"] == "s3:ListBucket"
    assert listing["Condition"]["StringLike"] == {"s3:prefix": ["AWSLogs/*"]}
    assert "aws:PrincipalOrgID" in listing["Condition"]["StringEquals"]
    keys = json.dumps(
        [
            r["Properties"]
            for r in resources_of(organization.templates["TrailguardLogArchive"], "AWS::KMS::Key").values()
        ]
    )
    assert verifier in keys
