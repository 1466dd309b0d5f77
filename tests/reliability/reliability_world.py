"""A moto world for the reliability tests: engine + reconcile + drift, wired as deployed.

* The engine, reconcile and drift functions run in ENGINE (moto's default account) with the
  environment variables ``stacks/detection.py`` gives them; risky events happen in MEMBER.
* The archive bucket really notifies an SQS queue (moto sends the S3 notifications, the
  ``s3:TestEvent`` included); :meth:`World.drain` turns received messages into the Lambda SQS
  event the event source mapping would deliver.
* moto cannot run Lambda functions without Docker, so the one Lambda-to-Lambda call (the
  reconcile function's asynchronous ``Invoke`` of the engine) goes to :class:`EngineFunction`,
  which runs the real engine handler in-process on the JSON payload, as Lambda would.
* Every boto3 client comes from ``clients.new_client`` (the engine's single seam); the world
  wraps it to record calls and to inject faults before moto answers (:meth:`World.fault`).
* Digest keys reach the reconcile queue like log files; reconcile forwards them to the digest
  queue, which :meth:`World.run_verifier` drains into the digest verifier. moto has no
  ``ListPublicKeys``: a test that verifies digests sets :attr:`World.public_keys` (its test key).
"""

from __future__ import annotations

import gzip
import io
import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.endpoint
import botocore.retries.bucket
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from frozen_clock import FrozenClock
from moto import mock_aws
from trailguard_engine import clients, drift, handler, reconcile, verify_digests
from trailguard_engine.integrity import KeySource

ENGINE = "123456789012"
MEMBER = "111122223333"
LOG_ARCHIVE = "444455556666"
REGION = "us-east-1"
TABLE = "trailguard-state"
PARAM = "/trailguard/runtime-config"
ENGINE_FUNCTION = "trailguard-engine"
ARCHIVE = f"trailguard-archive-{ENGINE}-{REGION}"
ATTACKER = f"arn:aws:sts::{MEMBER}:assumed-role/Developer/mallory"
TRAIL_NAME = "org-trail"
TRAIL_ARN = f"arn:aws:cloudtrail:{REGION}:{MEMBER}:trail/{TRAIL_NAME}"


@dataclass
class FakeContext:
    function_name: str = ENGINE_FUNCTION
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ENGINE}:function:{ENGINE_FUNCTION}"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 900_000  # Lambda's longest timeout: no in-progress record expires mid-test on a slow machine


# --------------------------------------------------------------------------- #
# CloudTrail records and log files
# --------------------------------------------------------------------------- #
def ct_record(
    source: str,
    name: str,
    request: Mapping[str, Any] | None,
    *,
    account: str = MEMBER,
    principal: str = ATTACKER,
    event_id: str | None = None,
    error_code: str | None = None,
    read_only: bool = False,
) -> dict[str, Any]:
    """A CloudTrail record as it appears in a log file."""
    rec: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": principal,
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLE0000001",
            "principalId": "AROAEXAMPLE:mallory",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": f"arn:aws:iam::{account}:role/Developer",
                    "accountId": account,
                }
            },
        },
        "eventTime": "2026-10-01T12:00:00Z",
        "eventSource": f"{source}.amazonaws.com",
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": dict(request) if request is not None else None,
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error_code:
        rec["errorCode"] = error_code
        rec["errorMessage"] = "denied"
    return rec


def envelope(record: Mapping[str, Any]) -> dict[str, Any]:
    """The EventBridge envelope the central bus delivers for ``record``."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws." + str(record["eventSource"]).removesuffix(".amazonaws.com"),
        "account": record["recipientAccountId"],
        "time": record["eventTime"],
        "region": record["awsRegion"],
        "resources": [],
        "detail": dict(record),
    }


def stop_logging_record(**kw: Any) -> dict[str, Any]:
    return ct_record("cloudtrail", "StopLogging", {"name": TRAIL_ARN}, **kw)


def log_file(records: list[dict[str, Any]]) -> bytes:
    return gzip.compress(json.dumps({"Records": records}).encode())


def log_key(account: str = MEMBER, suffix: str | None = None) -> str:
    tag = suffix or uuid.uuid4().hex[:16]
    return (
        f"AWSLogs/{account}/CloudTrail/{REGION}/2026/10/01/{account}_CloudTrail_{REGION}_20261001T1205Z_{tag}.json.gz"
    )


# --------------------------------------------------------------------------- #
# EMF metrics printed by the functions
# --------------------------------------------------------------------------- #
def emf_metrics(text: str, dimension: str = "rule") -> Counter[tuple[str, str]]:
    """Sum of every EMF metric printed in ``text``, keyed by (name, ``dimension`` value or "")."""
    out: Counter[tuple[str, str]] = Counter()
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        doc = json.loads(line)
        for m in doc["_aws"]["CloudWatchMetrics"]:
            for d in m["Metrics"]:
                value = doc[d["Name"]]
                total = sum(value) if isinstance(value, list) else value
                out[(d["Name"], str(doc.get(dimension, "")))] += int(total)
    return out


# --------------------------------------------------------------------------- #
# The engine function, as the reconcile function's Invoke reaches it
# --------------------------------------------------------------------------- #
@dataclass
class EngineFunction:
    """Runs the real engine handler for ``lambda:Invoke`` of ``trailguard-engine``."""

    invocations: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        if FunctionName != ENGINE_FUNCTION:
            raise AssertionError(f"invoked {FunctionName}, expected {ENGINE_FUNCTION}")
        payload = json.loads(Payload)
        with self.lock:
            self.invocations.append(payload)
        try:
            result = handler.handler(payload, FakeContext())
        except Exception as exc:  # an async invocation's error: Lambda retries, then the on-failure queue
            with self.lock:
                self.failures.append(exc)
        else:
            with self.lock:
                self.results.append(result)
        return {"StatusCode": 202 if InvocationType == "Event" else 200}


# --------------------------------------------------------------------------- #
# Fault injection before moto answers
# --------------------------------------------------------------------------- #
class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body.read()

    def read(self, *_: Any, **__: Any) -> bytes:
        return self._body.read()


def _error_response(protocol: str, status: int, code: str, url: str) -> AWSResponse:
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": f"injected {code}"}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code}
    else:
        body = f"<Error><Code>{code}</Code><Message>injected {code}</Message></Error>".encode()
        headers = {"Content-Type": "application/xml"}
    return AWSResponse(url, status, headers, _Raw(body))


FAULTS = {
    "throttle": (400, "ThrottlingException"),
    "slowdown": (503, "SlowDown"),
    "5xx": (500, "InternalFailure"),
    "denied": (403, "AccessDenied"),
    "denied-json": (400, "AccessDeniedException"),
}


@dataclass
class World:
    topic_arn: str
    alert_queue: str
    reconcile_queue: str
    reconcile_dlq: str
    engine_fn: EngineFunction
    digest_queue: str = ""
    #: What the verifier gets from ``cloudtrail:ListPublicKeys`` (moto has none): set by digest tests.
    public_keys: KeySource | None = None
    runtime: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, str, str, str]] = field(default_factory=list)  # (kind, account, service, operation)
    faults: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    fault_hits: Counter[tuple[str, str]] = field(default_factory=Counter)
    _creds: dict[str, dict[str, str]] = field(default_factory=dict)

    # ---- acting as a human in an account -------------------------------- #
    def client(self, service: str, account: str = MEMBER) -> Any:
        if account == ENGINE:
            return boto3.client(service, region_name=REGION)
        if account not in self._creds:
            c = boto3.client("sts", region_name=REGION).assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/Admin", RoleSessionName="test-admin"
            )["Credentials"]
            self._creds[account] = {k: c[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
        creds = self._creds[account]
        return boto3.client(
            service,
            region_name=REGION,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )

    def set_runtime(self, **overrides: Any) -> None:
        self.runtime.update(overrides)
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name=PARAM, Value=json.dumps(self.runtime), Type="String", Overwrite=True
        )
        for loaders in (handler._LOADER, reconcile._LOADER, drift._LOADER):
            for loader in loaders:
                loader.clear()

    def set_mode(self, rule: str, mode: str) -> None:
        self.set_runtime(rule_modes={**self.runtime.get("rule_modes", {}), rule: mode})

    # ---- observing --------------------------------------------------------- #
    def alerts(self) -> list[tuple[str, dict[str, Any]]]:
        """Every SNS message published so far (drains the subscribed queue)."""
        sqs = boto3.client("sqs", region_name=REGION)
        out = []
        while True:
            msgs = sqs.receive_message(QueueUrl=self.alert_queue, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                env = json.loads(m["Body"])
                out.append((env.get("Subject", ""), json.loads(env["Message"])))
                sqs.delete_message(QueueUrl=self.alert_queue, ReceiptHandle=m["ReceiptHandle"])

    def ops(self, service: str, operation: str, kind: str = "member") -> int:
        return sum(1 for k, _, s, o in self.calls if (k, s, o) == (kind, service, operation))

    # ---- the archive bucket -> SQS -> reconcile path ---------------------- #
    def put_log_file(self, records: list[dict[str, Any]], key: str | None = None, body: bytes | None = None) -> str:
        key = key or log_key()
        boto3.client("s3", region_name=REGION).put_object(
            Bucket=ARCHIVE, Key=key, Body=log_file(records) if body is None else body
        )
        return key

    def drain(self, *, max_messages: int = 10) -> dict[str, Any]:
        """Receive messages from the reconcile queue as the event source mapping would (Lambda SQS event)."""
        sqs = boto3.client("sqs", region_name=REGION)
        resp = sqs.receive_message(
            QueueUrl=self.reconcile_queue,
            MaxNumberOfMessages=max_messages,
            AttributeNames=["All"],
            VisibilityTimeout=0,
        )
        return {
            "Records": [
                sqs_record(m["Body"], m["MessageId"], m["Attributes"], m["ReceiptHandle"])
                for m in resp.get("Messages", [])
            ]
        }

    def run_verifier(self) -> dict[str, Any]:
        """Drain the digest queue into the digest verifier (as its event source mapping would); delete what succeeded."""
        sqs = boto3.client("sqs", region_name=REGION)
        msgs = sqs.receive_message(
            QueueUrl=self.digest_queue, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=0
        ).get("Messages", [])
        if not msgs:
            return {"batchItemFailures": []}
        event = {"Records": [sqs_record(m["Body"], m["MessageId"], m["Attributes"], m["ReceiptHandle"]) for m in msgs]}
        result = verify_digests.handler(event, FakeContext(function_name="trailguard-verify"))
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for r in event["Records"]:
            if r["messageId"] not in failed:
                sqs.delete_message(QueueUrl=self.digest_queue, ReceiptHandle=r["receiptHandle"])
        return result

    def discard(self) -> None:
        """Delete every pending message of the reconcile queue (e.g. the initial s3:TestEvent)."""
        sqs = boto3.client("sqs", region_name=REGION)
        while msgs := sqs.receive_message(QueueUrl=self.reconcile_queue, MaxNumberOfMessages=10).get("Messages"):
            for m in msgs:
                sqs.delete_message(QueueUrl=self.reconcile_queue, ReceiptHandle=m["ReceiptHandle"])

    def run_reconcile(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the reconcile handler and delete the messages it did not report as failed."""
        result = reconcile.handler(event, FakeContext(function_name="trailguard-reconcile"))
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        sqs = boto3.client("sqs", region_name=REGION)
        for r in event["Records"]:
            if r["messageId"] not in failed and r.get("receiptHandle"):
                sqs.delete_message(QueueUrl=self.reconcile_queue, ReceiptHandle=r["receiptHandle"])
        return result

    # ---- faults ------------------------------------------------------------ #
    def fault(self, service: str, operation: str, *kinds: str) -> None:
        """The next calls of ``operation`` fail with ``kinds`` in order (one per attempt, retries included)."""
        self.faults[(service, operation)] = list(kinds)


def sqs_record(
    body: str, message_id: str | None = None, attributes: Mapping[str, str] | None = None, receipt: str = ""
) -> dict[str, Any]:
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt,
        "body": body,
        "attributes": dict(attributes or {"ApproximateReceiveCount": "1"}),
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ENGINE}:trailguard-reconcile",
        "awsRegion": REGION,
    }


def notification(bucket: str, key: str, size: int = 100) -> str:
    """An S3 ObjectCreated notification body (keys are URL-encoded as S3 sends them)."""
    from urllib.parse import quote_plus

    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": REGION,
                    "eventTime": "2026-10-01T12:06:00.000Z",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": {"key": quote_plus(key, safe="/"), "size": size},
                    },
                }
            ]
        }
    )


ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "TRAILGUARD_CONFIG_PARAMETER": PARAM,
    "TRAILGUARD_STATE_TABLE": TABLE,
    "TRAILGUARD_REMEDIATION_ROLE_NAME": "trailguard-remediation",
    "TRAILGUARD_ENGINE_FUNCTION": ENGINE_FUNCTION,
    "TRAILGUARD_ARCHIVE_BUCKET": ARCHIVE,
    "TRAILGUARD_TRAIL_ARN": TRAIL_ARN,
    "TRAILGUARD_TRAIL_ACCOUNT": MEMBER,
    "TRAILGUARD_LOG_ARCHIVE_ACCOUNT": LOG_ARCHIVE,
    "TRAILGUARD_HOME_REGION": REGION,
    "POWERTOOLS_SERVICE_NAME": "trailguard",
    "POWERTOOLS_METRICS_NAMESPACE": "Trailguard",
    "TRAILGUARD_TRACING": "false",
    "AWS_LAMBDA_FUNCTION_NAME": ENGINE_FUNCTION,
}


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("POWERTOOLS_IDEMPOTENCY_DISABLED", raising=False)
    # Retries back off with time.sleep: keep the attempts, drop the waiting.
    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda s: None)
    monkeypatch.setattr(botocore.retries.bucket.time, "sleep", lambda s: None)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="trailguard-alerts")["TopicArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        alerts = sqs.create_queue(QueueName="alerts-test")["QueueUrl"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=_queue_arn(sqs, alerts))
        monkeypatch.setenv("TRAILGUARD_ALERT_TOPIC_ARN", topic)
        dlq = sqs.create_queue(QueueName="trailguard-reconcile-dlq")["QueueUrl"]
        queue = sqs.create_queue(
            QueueName="trailguard-reconcile",
            Attributes={
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": _queue_arn(sqs, dlq), "maxReceiveCount": "5"})
            },
        )["QueueUrl"]
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=ARCHIVE)
        s3.put_bucket_notification_configuration(
            Bucket=ARCHIVE,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": _queue_arn(sqs, queue),
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {
                                "FilterRules": [
                                    {"Name": "prefix", "Value": "AWSLogs/"},
                                    {"Name": "suffix", "Value": ".json.gz"},
                                ]
                            }
                        },
                    }
                ]
            },
        )
        digests = sqs.create_queue(QueueName="trailguard-digests")["QueueUrl"]
        monkeypatch.setenv("TRAILGUARD_DIGEST_QUEUE_URL", digests)
        monkeypatch.setenv("TRAILGUARD_RECONCILE_QUEUE_URL", queue)
        w = World(
            topic_arn=topic,
            alert_queue=alerts,
            reconcile_queue=queue,
            reconcile_dlq=dlq,
            engine_fn=EngineFunction(),
            digest_queue=digests,
        )
        real_new_client = clients.new_client

        def new_client(service: str, *, region: str, credentials: dict[str, str] | None = None) -> Any:
            if service == "lambda":
                return w.engine_fn
            c = real_new_client(service, region=region, credentials=credentials)
            kind = "member" if credentials is not None else "engine"
            account = _account_of(credentials)

            def record(model: Any, **_: Any) -> None:
                w.calls.append((kind, account, model.service_model.service_name, model.name))

            def inject(request: Any, event_name: str = "", **_: Any) -> Any:
                svc, operation_name = c.meta.service_model.service_name, event_name.rsplit(".", 1)[-1]
                plan = w.faults.get((svc, operation_name))
                if not plan:
                    return None
                kind_ = plan.pop(0)
                w.fault_hits[(svc, operation_name)] += 1
                url = request.url
                # botocore runs every before-send handler (first non-None response wins): point the
                # request elsewhere so moto does not carry out the call the fault stands for.
                request.url = "https://fault.invalid/"
                if kind_ == "timeout":
                    raise ReadTimeoutError(endpoint_url=url)
                status, code = FAULTS[kind_]
                return _error_response(c.meta.service_model.protocol, status, code, url)

            c.meta.events.register("before-call", record)
            c.meta.events.register_first("before-send", inject)
            return c

        monkeypatch.setattr(clients, "new_client", new_client)
        frozen = FrozenClock()
        monkeypatch.setattr(handler, "clock", frozen)  # no test may race the hourly window
        monkeypatch.setattr(verify_digests, "clock", frozen)
        monkeypatch.setattr(reconcile, "clock", frozen)

        def keys(factory: Any, around: Any) -> KeySource:
            if w.public_keys is None:
                raise AssertionError("this test verifies digests: set world.public_keys to its test key")
            return w.public_keys

        monkeypatch.setattr(verify_digests, "public_keys", keys)
        handler.reset()
        reconcile.reset()
        drift.reset()
        verify_digests.reset()
        w.set_runtime(dry_run=False, rule_modes={}, security_hub_findings=True, runbook_base_url=None)
        yield w
        handler.reset()
        reconcile.reset()
        drift.reset()
        verify_digests.reset()


def _account_of(credentials: dict[str, str] | None) -> str:
    if credentials is None:
        return ENGINE
    sts = boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    return str(sts.get_caller_identity()["Account"])


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def make_trail(w: World, *, logging: bool = True, account: str = MEMBER, **kw: Any) -> str:
    """A real moto trail (name TRAIL_NAME) in ``account``; returns its ARN."""
    s3 = w.client("s3", account)
    bucket = f"trail-logs-{account}"
    s3.create_bucket(Bucket=bucket)
    ct = w.client("cloudtrail", account)
    arn = str(ct.create_trail(Name=TRAIL_NAME, S3BucketName=bucket, **kw)["TrailARN"])
    if logging:
        ct.start_logging(Name=arn)
    return arn


#: What the engine says of a finding only a log file showed: alert-only until the file's integrity is verified.
LOG_FILE_ONLY = "seen only in a log file whose integrity has not been verified"


def alerted_from_log_file(w: World, rule: str = "cloudtrail-stop-logging") -> bool:
    """The engine judged ``rule`` from a log-file hand-off: alerted, with the reason, and not acted on."""
    return any(
        f["rule"] == rule and f["status"] == "alerted" and LOG_FILE_ONLY in f["reason"]
        for result in w.engine_fn.results
        for f in result.get("findings", [])
    )


def is_logging(w: World, account: str = MEMBER) -> bool:
    return bool(w.client("cloudtrail", account).get_trail_status(Name=TRAIL_ARN)["IsLogging"])
