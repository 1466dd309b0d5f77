"""Fixtures for the engine tests: a moto world with the engine's table, topic and config.

The engine runs in account ENGINE (moto's default); events come from MEMBER, so
every remediation test is cross-account through the member role.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from frozen_clock import FrozenClock
from moto import mock_aws
from trailguard_engine import clients, handler
from trailguard_engine.caller import DEFAULT_CALLER_MODES
from trailguard_engine.catalog import load_catalog, parse_rule
from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, as_list, dig
from trailguard_engine.matcher import matches
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig

ENGINE = "123456789012"
MEMBER = "111122223333"
REGION = "us-east-1"
TABLE = "trailguard-state"
PARAM = "/trailguard/runtime-config"
ATTACKER = f"arn:aws:sts::{MEMBER}:assumed-role/Developer/mallory"


@dataclass
class FakeContext:
    function_name: str = "trailguard-engine"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ENGINE}:function:trailguard-engine"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 900_000  # Lambda's longest timeout: no in-progress record expires mid-test on a slow machine


# --------------------------------------------------------------------------- #
# Test-only decisions, used when the catalog has no rule for an action yet.
# --------------------------------------------------------------------------- #


def _resolve(template: Any, event: CloudTrailEvent) -> Any:
    if isinstance(template, str) and template.startswith(("$req.", "$resp.")):
        root, _, path = template[1:].partition(".")
        steps = [int(p) if p.isdigit() else p for p in path.split(".")]
        return event.req(*steps) if root == "req" else event.resp(*steps)
    if isinstance(template, Mapping):
        return {k: _resolve(v, event) for k, v in template.items()}
    return template


@decision("tg_test_params")
def _tg_test_params(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    params = _resolve(rule.params.get("params", {}), event)
    rid = _resolve(rule.params.get("resource", ""), event)
    return Assessment(
        True,
        f"{event.event_name} (test rule)",
        resource={"type": rule.params.get("type", ""), "id": str(rid)},
        params=params,
    )


@decision("tg_test_sg")
def _tg_test_sg(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    ids, specs = [], []
    for item in as_list(dig(event.response, "securityGroupRuleSet", "items")):
        cidr = item.get("cidrIpv4") or item.get("cidrIpv6")
        if item.get("isEgress") or cidr not in ("0.0.0.0/0", "::/0"):
            continue
        lo, hi, proto = item.get("fromPort"), item.get("toPort"), item.get("ipProtocol")
        if proto in ("tcp", "udp") and lo == hi and lo in cfg.allowed_public_ports:
            continue
        ids.append(item["securityGroupRuleId"])
        specs.append({"protocol": proto, "from_port": lo, "to_port": hi, "cidr": cidr})
    gid = event.req("groupId")
    return Assessment(
        bool(specs),
        "public ingress (test rule)",
        resource={"type": "AWS::EC2::SecurityGroup", "id": gid},
        params={"group_id": gid, "rule_ids": ids, "offending": specs},
    )


def _rule(rid: str, action: str, source: str, names: list[str], permissions: list[str], **params: Any) -> Rule:
    return parse_rule(
        {
            "id": rid,
            "title": f"test {action}",
            "description": "test rule",
            "severity": "HIGH",
            "category": "test",
            "mitre": [],
            "event_pattern": {"source": [source], "detail": {"eventName": names}},
            "decision": params.pop("decision", "tg_test_params"),
            "params": params,
            "remediation": {"action": action, "permissions": permissions, "description": "test"},
            "default_mode": "remediate",
            "caller_modes": dict(DEFAULT_CALLER_MODES),
            "runbook": {"triage": [], "queries": [], "undo": ""},
            "examples": {"positive": [], "negative": []},
        }
    )


#: The exact permissions each remediation needs (reads included). The least-privilege
#: test also checks every real catalog rule using the same action against the calls made.
TEST_RULES: dict[str, Rule] = {
    r.remediation.action: r  # type: ignore[union-attr]
    for r in [
        _rule(
            "test-stop-logging",
            "start_logging",
            "aws.cloudtrail",
            ["StopLogging"],
            [
                "cloudtrail:GetTrailStatus",
                "cloudtrail:StartLogging",
                "cloudtrail:ListTags",
                "cloudformation:DescribeStacks",
            ],
            params={"trail": "$req.name"},
            resource="$req.name",
            type="AWS::CloudTrail::Trail",
        ),
        _rule(
            "test-bpa",
            "restore_bucket_public_access_block",
            "aws.s3",
            ["PutBucketPublicAccessBlock", "DeleteBucketPublicAccessBlock"],
            [
                "s3:GetBucketPublicAccessBlock",
                "s3:PutBucketPublicAccessBlock",
                "s3:GetBucketTagging",
                "s3:GetBucketPolicyStatus",
                "s3:GetBucketPolicy",
                "s3:GetBucketAcl",
                "s3:GetAccountPublicAccessBlock",
            ],
            params={"bucket": "$req.bucketName"},
            resource="$req.bucketName",
            type="AWS::S3::Bucket",
        ),
        _rule(
            "test-acl",
            "make_bucket_acl_private",
            "aws.s3",
            ["PutBucketAcl"],
            ["s3:GetBucketAcl", "s3:PutBucketAcl", "s3:GetBucketTagging"],
            params={"bucket": "$req.bucketName"},
            resource="$req.bucketName",
            type="AWS::S3::Bucket",
        ),
        _rule(
            "test-policy",
            "remove_public_bucket_policy_statements",
            "aws.s3",
            ["PutBucketPolicy"],
            ["s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:GetBucketTagging"],
            params={"bucket": "$req.bucketName"},
            resource="$req.bucketName",
            type="AWS::S3::Bucket",
        ),
        _rule(
            "test-sg",
            "revoke_public_sg_ingress",
            "aws.ec2",
            ["AuthorizeSecurityGroupIngress"],
            ["ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules", "ec2:RevokeSecurityGroupIngress"],
            decision="tg_test_sg",
        ),
        _rule(
            "test-snap",
            "make_snapshot_private",
            "aws.ec2",
            ["ModifySnapshotAttribute"],
            ["ec2:DescribeSnapshots", "ec2:DescribeSnapshotAttribute", "ec2:ModifySnapshotAttribute"],
            params={"snapshot_id": "$req.snapshotId"},
            resource="$req.snapshotId",
        ),
        _rule(
            "test-ami",
            "make_ami_private",
            "aws.ec2",
            ["ModifyImageAttribute"],
            ["ec2:DescribeImages", "ec2:DescribeImageAttribute", "ec2:ModifyImageAttribute"],
            params={"image_id": "$req.imageId"},
            resource="$req.imageId",
        ),
        _rule(
            "test-dbsnap",
            "make_db_snapshot_private",
            "aws.rds",
            ["ModifyDBSnapshotAttribute"],
            ["rds:DescribeDBSnapshots", "rds:DescribeDBSnapshotAttributes", "rds:ModifyDBSnapshotAttribute"],
            params={"snapshot_id": "$req.dBSnapshotIdentifier"},
            resource="$req.dBSnapshotIdentifier",
        ),
        _rule(
            "test-clustersnap",
            "make_db_cluster_snapshot_private",
            "aws.rds",
            ["ModifyDBClusterSnapshotAttribute"],
            [
                "rds:DescribeDBClusterSnapshots",
                "rds:DescribeDBClusterSnapshotAttributes",
                "rds:ModifyDBClusterSnapshotAttribute",
            ],
            params={"snapshot_id": "$req.dBClusterSnapshotIdentifier"},
            resource="$req.dBClusterSnapshotIdentifier",
        ),
        _rule(
            "test-kms-delete",
            "cancel_key_deletion",
            "aws.kms",
            ["ScheduleKeyDeletion"],
            ["kms:DescribeKey", "kms:ListResourceTags", "kms:CancelKeyDeletion", "kms:EnableKey"],
            params={"key_id": "$req.keyId"},
            resource="$req.keyId",
            type="AWS::KMS::Key",
        ),
        _rule(
            "test-kms-disable",
            "enable_key",
            "aws.kms",
            ["DisableKey"],
            ["kms:DescribeKey", "kms:ListResourceTags", "kms:EnableKey"],
            params={"key_id": "$req.keyId"},
            resource="$req.keyId",
            type="AWS::KMS::Key",
        ),
        _rule(
            "test-config",
            "start_config_recorder",
            "aws.config",
            ["StopConfigurationRecorder"],
            ["config:DescribeConfigurationRecorderStatus", "config:StartConfigurationRecorder"],
            params={"recorder": "$req.configurationRecorderName"},
            resource="$req.configurationRecorderName",
        ),
        _rule(
            "test-guardduty",
            "enable_guardduty_detector",
            "aws.guardduty",
            ["UpdateDetector"],
            ["guardduty:GetDetector", "guardduty:UpdateDetector"],
            params={"detector_id": "$req.detectorId"},
            resource="$req.detectorId",
        ),
        _rule(
            "test-root-key",
            "deactivate_root_access_key",
            "aws.iam",
            ["CreateAccessKey"],
            ["sts:AssumeRoot", "iam:ListAccessKeys", "iam:DeleteAccessKey"],
            params={"access_key_id": "$resp.accessKey.accessKeyId"},
            resource="$resp.accessKey.accessKeyId",
        ),
        _rule(
            "test-admin",
            "detach_admin_policy",
            "aws.iam",
            ["AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy"],
            [
                "iam:ListAttachedUserPolicies",
                "iam:ListAttachedRolePolicies",
                "iam:ListAttachedGroupPolicies",
                "iam:DetachUserPolicy",
                "iam:DetachRolePolicy",
                "iam:DetachGroupPolicy",
                "iam:ListUserTags",
                "iam:ListRoleTags",
                "iam:GetRole",
            ],
            params={"principal_type": "user", "principal_name": "$req.userName", "policy_arn": "$req.policyArn"},
            resource="$req.userName",
            type="AWS::IAM::User",
        ),
    ]
}


def ct_event(
    source: str,
    name: str,
    request: Mapping[str, Any] | None,
    response: Mapping[str, Any] | None = None,
    *,
    account: str = MEMBER,
    region: str = REGION,
    principal: str = ATTACKER,
    error_code: str | None = None,
    event_id: str | None = None,
    identity: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An EventBridge envelope around a CloudTrail record of an API call."""
    detail: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": dict(identity)
        if identity is not None
        else {
            "type": "AssumedRole",
            "arn": principal,
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLE0000001",
            "principalId": "AROAEXAMPLE:mallory",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": principal.replace(":sts:", ":iam:").replace("assumed-role/", "role/").rsplit("/", 1)[0],
                    "accountId": account,
                }
            },
        },
        "eventTime": "2026-10-01T12:00:00Z",
        "eventSource": f"{source}.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": dict(request) if request is not None else None,
        "responseElements": dict(response) if response is not None else None,
        "requestID": str(uuid.uuid4()),
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
    }
    if error_code:
        detail["errorCode"] = error_code
        detail["errorMessage"] = "denied"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": f"aws.{source}",
        "account": account,
        "time": "2026-10-01T12:00:00Z",
        "region": region,
        "resources": [],
        "detail": detail,
    }


# --------------------------------------------------------------------------- #
# IAM action of a boto3 call (least-privilege check)
# --------------------------------------------------------------------------- #

_IAM_ACTION_EXCEPTIONS = {
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "DeletePublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
}


def iam_action(service: str, operation: str) -> str:
    """The IAM action authorising a boto3 call (service prefix + operation, with S3's renamed ones)."""
    return _IAM_ACTION_EXCEPTIONS.get((service, operation), f"{service}:{operation}")


def declared_covers(declared: tuple[str, ...] | list[str], action: str) -> bool:
    import fnmatch

    return any(fnmatch.fnmatchcase(action.lower(), d.lower()) for d in declared)


# --------------------------------------------------------------------------- #
# The moto world
# --------------------------------------------------------------------------- #


@dataclass
class World:
    topic_arn: str
    queue_url: str
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (account-kind, service, operation)
    runtime: dict[str, Any] = field(default_factory=dict)
    _member_creds: dict[str, str] | None = None

    def member(self, service: str, region: str = REGION) -> Any:
        """A client acting in MEMBER (as a human admin there, not through the engine)."""
        if self._member_creds is None:
            c = boto3.client("sts", region_name=REGION).assume_role(
                RoleArn=f"arn:aws:iam::{MEMBER}:role/Admin", RoleSessionName="test-admin"
            )["Credentials"]
            self._member_creds = {k: c[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
        creds = self._member_creds
        return boto3.client(
            service,
            region_name=region,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )

    def set_runtime(self, **overrides: Any) -> None:
        self.runtime.update(overrides)
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name=PARAM, Value=json.dumps(self.runtime), Type="String", Overwrite=True
        )
        if handler._LOADER:
            handler._LOADER[0].clear()

    def messages(self) -> list[tuple[str, dict[str, Any]]]:
        """Every SNS message published so far (drains the test queue)."""
        sqs = boto3.client("sqs", region_name=REGION)
        out = []
        while True:
            resp = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            msgs = resp.get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                env = json.loads(m["Body"])
                out.append((env.get("Subject", ""), json.loads(env["Message"])))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def findings(self) -> list[dict[str, Any]]:
        return list(boto3.client("securityhub", region_name=REGION).get_findings()["Findings"])

    def member_calls(self) -> list[tuple[str, str]]:
        return [(s, o) for kind, s, o in self.calls if kind == "member"]

    def invoke(self, envelope: Any, rule: str | None = None) -> dict[str, Any]:
        payload = envelope if rule is None else {"trailguard_rule": rule, "event": envelope}
        return handler.handler(payload, FakeContext())


def real_rules() -> tuple[Rule, ...]:
    return load_catalog()


def rule_for(action: str, envelope: Mapping[str, Any]) -> Rule:
    """The real catalog rule for ``action`` whose pattern matches ``envelope``, else the test rule."""
    for r in real_rules():
        if r.remediation and r.remediation.action == action and matches(r.event_pattern, envelope):
            return r
    return TEST_RULES[action]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[World]:
    # Loading AWS-managed IAM policies costs seconds per test: only tests marked managed_policies get them.
    managed = "true" if request.node.get_closest_marker("managed_policies") else "false"
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "TRAILGUARD_CONFIG_PARAMETER": PARAM,
        "TRAILGUARD_STATE_TABLE": TABLE,
        "TRAILGUARD_REMEDIATION_ROLE_NAME": "trailguard-remediation",
        "POWERTOOLS_SERVICE_NAME": "trailguard",
        "POWERTOOLS_METRICS_NAMESPACE": "Trailguard",
        "TRAILGUARD_TRACING": "false",
        "AWS_LAMBDA_FUNCTION_NAME": "trailguard-engine",
        "MOTO_IAM_LOAD_MANAGED_POLICIES": managed,
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("POWERTOOLS_IDEMPOTENCY_DISABLED", raising=False)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.update_time_to_live(
            TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
        )
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="trailguard-alerts")["TopicArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        q = sqs.create_queue(QueueName="alerts-test")["QueueUrl"]
        qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
        monkeypatch.setenv("TRAILGUARD_ALERT_TOPIC_ARN", topic)
        w = World(topic_arn=topic, queue_url=q)

        real_new_client = clients.new_client

        def recording_new_client(service: str, *, region: str, credentials: dict[str, str] | None = None) -> Any:
            c = real_new_client(service, region=region, credentials=credentials)
            kind = "member" if credentials is not None else "engine"

            def record(model: Any, **_: Any) -> None:
                w.calls.append((kind, model.service_model.service_name, model.name))

            c.meta.events.register("before-call", record)
            return c

        monkeypatch.setattr(clients, "new_client", recording_new_client)
        monkeypatch.setattr(handler, "clock", FrozenClock())  # no test may race the hourly window
        handler.reset()
        w.set_runtime(dry_run=False, rule_modes={}, security_hub_findings=True, runbook_base_url=None)
        engine = handler.get_engine(FakeContext())
        engine.rules = tuple(real_rules()) + tuple(TEST_RULES.values())
        yield w
        handler.reset()


def force_remediate(world: World, rule: Rule, **runtime: Any) -> None:
    modes = dict(world.runtime.get("rule_modes", {}))
    modes[rule.id] = "remediate"
    world.set_runtime(rule_modes=modes, **runtime)


def emf_lines(out: str) -> list[dict[str, Any]]:
    docs = []
    for raw in out.splitlines():
        line = raw.strip()
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def metric_total(out: str, name: str, **dims: str) -> float:
    """Sum of ``name`` across EMF documents whose dimension values match ``dims``."""
    total = 0.0
    for d in emf_lines(out):
        if name in d and all(d.get(k) == v for k, v in dims.items()):
            total += float(d[name]) if not isinstance(d[name], list) else sum(d[name])
    return total


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at the time (pytest swaps it per phase and per capsys)."""

    def write(self, text: str) -> int:
        import sys

        return sys.stdout.write(text)

    def flush(self) -> None:
        import sys

        sys.stdout.flush()


@pytest.fixture
def capture_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Send the handler's Powertools log lines to the current stdout so capsys sees them."""
    import logging

    h = handler.logger.registered_handler
    assert isinstance(h, logging.StreamHandler)
    old = h.stream
    h.stream = _CurrentStdout()
    yield
    h.stream = old


def log_lines(out: str) -> list[dict[str, Any]]:
    docs = []
    for raw in out.splitlines():
        line = raw.strip()
        if line.startswith("{") and '"_aws"' not in line:
            try:
                docs.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return docs
