"""Task C change records and data-rule extensions (decisions/data_records.py, decisions/data_gaps.py).

* the RDS log download record (one record per download, not per page an application reads);
* the INFO change-record rules for Lambda, RDS, S3 bucket configuration, SQS purges, CloudWatch Logs
  deletions, SES identities, EFS mount targets and EBS snapshot attributes: every selected call is recorded,
  AWS services' own calls and failed calls are not, calls of the same service the rule does not select never
  reach it;
* s3-gui-client-first-seen: S3 Browser and Cyberduck, once per principal and client (the first-seen gate);
* s3-credential-file-read: ``*.key`` files (small ones: a large .key is a Keynote document) and names with
  "private key" in them; s3-ransom-note-uploaded: notes that say the files were encrypted, locked or deleted.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from trailguard_engine.catalog import RULES_DIR, load_catalog, parse_rule
from trailguard_engine.decisions import registry
from trailguard_engine.decisions.data_gaps import credential_file, ransom_note
from trailguard_engine.decisions.data_records import first_portion, s3_gui_client
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import CloudTrailEvent, source_for, to_envelope
from trailguard_engine.matcher import matches
from trailguard_engine.model import Finding
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import FIRST_SEEN_ITEMS_PARAM, MemoryWindowStore, ThresholdGate

ACCOUNT = "111122223333"
USER = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT, "userName": "alice"}
APP = {
    "type": "AssumedRole",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/log-shipper/i-0abc",
    "accountId": ACCOUNT,
    "sessionContext": {
        "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/log-shipper", "userName": "log-shipper"},
        "attributes": {"mfaAuthenticated": "false"},
    },
}
CONSOLE_ROLE = {
    **APP,
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_DBA_0123456789abcdef/dana",
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "arn": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_DBA_0123456789abcdef",
            "userName": "AWSReservedSSO_DBA_0123456789abcdef",
        },
        "attributes": {"mfaAuthenticated": "false"},
    },
}
CLI = "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.9"

RULES = load_catalog()
EV = Evaluator(RULES, RuntimeConfig())
RULE_IDS = {r.id for r in RULES}


def record(
    source: str,
    name: str,
    request: Any = None,
    *,
    identity: dict[str, Any] | None = None,
    error: str | None = None,
    additional: dict[str, Any] | None = None,
    read_only: bool = False,
    n: int = 0,
) -> dict[str, Any]:
    eid = f"c0000000-0000-4000-8000-{n:012d}"
    detail: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity if identity is not None else USER,
        "eventTime": "2026-10-01T12:00:00Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": CLI,
        "requestParameters": request,
        "responseElements": None,
        "eventID": eid,
        "requestID": eid,
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
    }
    if additional is not None:
        detail["additionalEventData"] = additional
    if error:
        detail["errorCode"] = error
        detail["errorMessage"] = "denied"
    return {
        "version": "0",
        "id": eid,
        "detail-type": "AWS API Call via CloudTrail",
        "source": source_for(source),
        "account": ACCOUNT,
        "time": "2026-10-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def finding(rule_id: str, env: dict[str, Any]) -> Finding | None:
    """The rule's finding for ``env`` (None when its pattern does not select the event)."""
    got = [f for f in EV.evaluate(env).findings if f.rule == rule_id]
    assert len(got) <= 1
    return got[0] if got else None


def fires(rule_id: str, env: dict[str, Any]) -> bool:
    f = finding(rule_id, env)
    return f is not None and f.decision == "alert"


# ------------------------------------------------------------------ RDS log downloads
RDS = "rds.amazonaws.com"
LOG = {"dBInstanceIdentifier": "orders-db", "logFileName": "error/postgresql.log.2026-10-01-11"}


@pytest.mark.parametrize(
    ("marker", "start"),
    [(None, True), ("", True), ("0", True), (" 0 ", True), (0, True), (0.0, True), (-1, True), (True, True),
     (False, True), ([], True), ({"a": 1}, True), ("11:4096", False), ("1", False), (4096, False)],
)  # fmt: skip
def test_first_portion(marker: Any, start: bool) -> None:
    assert first_portion(marker) is start


@pytest.mark.parametrize(
    ("identity", "marker", "recorded"),
    [
        (APP, None, True),  # an application starting a download
        (APP, "0", True),
        (APP, "11:1048576", False),  # ... paging on: not recorded again
        (APP, 4096, False),
        (USER, "11:1048576", True),  # a person reading any portion
        (CONSOLE_ROLE, "11:1048576", True),  # an Identity Center session is a person
        (APP, {"crafted": "marker"}, True),  # a marker of another shape: unsure means record
    ],
)
def test_rds_log_download_records_downloads_not_pages(identity: dict, marker: Any, recorded: bool) -> None:
    req = dict(LOG) | ({"marker": marker} if marker is not None else {})
    env = record(RDS, "DownloadDBLogFilePortion", req, identity=identity, read_only=True)
    f = finding("rds-log-downloaded", env)
    assert f is not None
    assert (f.decision == "alert") is recorded, f.reason
    if recorded:
        assert f.severity == "INFO" and f.resource == {"type": "AWS::RDS::DBInstance", "id": "orders-db"}
        assert "change record" in f.reason and "error/postgresql.log" in f.reason
    else:
        assert "first portion" in f.reason


def test_rds_log_download_field_names_in_any_case_and_missing_request() -> None:
    req = {"DBInstanceIdentifier": "Orders-DB", "LogFileName": "slowquery/mysql-slowquery.log", "Marker": "5:1"}
    f = finding("rds-log-downloaded", record(RDS, "DownloadDBLogFilePortion", req, identity=APP, read_only=True))
    assert f is not None and f.decision == "skip", "PascalCase marker of a later page is still read"
    f = finding("rds-log-downloaded", record(RDS, "DownloadDBLogFilePortion", None, identity=APP, read_only=True))
    assert f is not None and f.decision == "alert" and f.resource == {}, "no request: a download start, no resource"


def test_rds_log_download_by_a_service_or_failed_is_not_recorded() -> None:
    svc = {"type": "AWSService", "invokedBy": "rds.amazonaws.com"}
    env = record(RDS, "DownloadDBLogFilePortion", LOG, identity=svc, read_only=True)
    f = finding("rds-log-downloaded", env)
    assert f is not None and f.decision == "skip"
    assert not fires("rds-log-downloaded", record(RDS, "DownloadDBLogFilePortion", LOG, error="AccessDenied"))


def test_rds_log_download_bounds_crafted_names() -> None:
    req = {"dBInstanceIdentifier": "d" * 5000, "logFileName": ["not", "a", "name"]}
    f = finding("rds-log-downloaded", record(RDS, "DownloadDBLogFilePortion", req, read_only=True))
    assert f is not None and f.decision == "alert"
    assert len(f.reason) < 600 and len(f.resource["id"]) <= 200


# ------------------------------------------------------------------ INFO change records
LAMBDA = "lambda.amazonaws.com"
S3 = "s3.amazonaws.com"
CASES: list[tuple[str, str, str, dict[str, Any], str]] = [
    ("lambda-function-changed", LAMBDA, "DeleteFunction20150331", {"functionName": "f"}, "f"),
    ("lambda-function-changed", LAMBDA, "UpdateFunctionConfiguration20150331v2", {"functionName": "f"}, "f"),
    ("lambda-function-changed", LAMBDA, "UpdateFunctionConfiguration20150331", {"functionName": "f"}, "f"),
    ("lambda-function-changed", LAMBDA, "AddPermission20150331v2", {"functionName": "f", "principal": "*"}, "f"),
    ("lambda-function-changed", LAMBDA, "AddPermission20150331", {"functionName": "f"}, "f"),
    ("lambda-function-changed", LAMBDA, "CreateEventSourceMapping20150331", {"functionName": "f"}, "f"),
    ("lambda-function-changed", LAMBDA, "PublishLayerVersion20181031", {"layerName": "l"}, "l"),
    ("rds-database-changed", RDS, "DeleteDBCluster", {"dBClusterIdentifier": "c"}, "c"),
    ("rds-database-changed", RDS, "DeleteDBInstance", {"dBInstanceIdentifier": "i"}, "i"),
    ("rds-database-changed", RDS, "DeleteGlobalCluster", {"globalClusterIdentifier": "g"}, "g"),
    ("rds-database-changed", RDS, "ModifyDBCluster", {"DBClusterIdentifier": "c"}, "c"),
    ("s3-bucket-configuration-changed", S3, "DeleteBucketPolicy", {"bucketName": "b"}, "b"),
    ("s3-bucket-configuration-changed", S3, "DeleteBucketCors", {"bucketName": "b"}, "b"),
    ("s3-bucket-configuration-changed", S3, "DeleteBucketLifecycle", {"bucketName": "b"}, "b"),
    ("s3-bucket-configuration-changed", S3, "DeleteBucketEncryption", {"bucketName": "b"}, "b"),
    ("s3-bucket-configuration-changed", S3, "DeleteBucketReplication", {"bucketName": "b"}, "b"),
    ("s3-bucket-configuration-changed", S3, "PutBucketEncryption", {"bucketName": "b"}, "b"),
    ("s3-bucket-configuration-changed", S3, "PutBucketLifecycle", {"bucketName": "b"}, "b"),
    ("s3-bucket-configuration-changed", S3, "PutBucketLogging", {"bucketName": "b"}, "b"),
    ("s3-bucket-configuration-changed", S3, "PutBucketReplication", {"bucketName": "b"}, "b"),
    ("s3-bucket-configuration-changed", S3, "PutBucketWebsite", {"bucketName": "b"}, "b"),
    ("sqs-queue-purged", "sqs.amazonaws.com", "PurgeQueue", {"queueUrl": "https://q/1/work"}, "https://q/1/work"),
    ("logs-group-or-stream-deleted", "logs.amazonaws.com", "DeleteLogGroup", {"logGroupName": "/a"}, "/a"),
    ("logs-group-or-stream-deleted", "logs.amazonaws.com", "DeleteLogStream", {"logGroupName": "/a"}, "/a"),
    ("ses-identity-deleted", "ses.amazonaws.com", "DeleteIdentity", {"identity": "example.com"}, "example.com"),
    ("ses-identity-deleted", "ses.amazonaws.com", "DeleteEmailIdentity", {"emailIdentity": "a@x.io"}, "a@x.io"),
    ("efs-mount-target-changed", "elasticfilesystem.amazonaws.com", "DeleteMountTarget", {"mountTargetId": "m"}, "m"),
    ("efs-mount-target-changed", "elasticfilesystem.amazonaws.com", "ModifyMountTargetSecurityGroups",
     {"mountTargetId": "m"}, "m"),
    ("ebs-snapshot-permission-changed", "ec2.amazonaws.com", "ModifySnapshotAttribute", {"snapshotId": "s"}, "s"),
    ("ebs-snapshot-permission-changed", "ec2.amazonaws.com", "ResetSnapshotAttribute", {"snapshotId": "s"}, "s"),
]  # fmt: skip
RECORD_RULES = sorted({c[0] for c in CASES} | {"rds-log-downloaded"})


@pytest.mark.parametrize("rule_id", RECORD_RULES)
def test_record_rules_are_info_records(rule_id: str) -> None:
    rule = next(r for r in RULES if r.id == rule_id)
    assert rule.severity == "INFO" and rule.remediation is None and rule.default_mode == "alert"
    assert "threshold" not in rule.params


@pytest.mark.parametrize(("rule_id", "source", "name", "req", "resource"), CASES)
def test_each_selected_call_is_recorded_with_its_resource(
    rule_id: str, source: str, name: str, req: dict, resource: str
) -> None:
    f = finding(rule_id, record(source, name, req))
    assert f is not None, "the pattern selects the call"
    assert f.decision == "alert" and f.severity == "INFO", f.reason
    assert f.resource.get("id") == resource and "change record" in f.reason


@pytest.mark.parametrize(("rule_id", "source", "name", "req", "resource"), CASES)
def test_service_and_failed_calls_are_not_recorded(
    rule_id: str, source: str, name: str, req: dict, resource: str
) -> None:
    svc = {"type": "AWSService", "invokedBy": source}
    f = finding(rule_id, record(source, name, req, identity=svc))
    assert f is not None and f.decision == "skip"
    assert not fires(rule_id, record(source, name, req, error="AccessDenied"))


@pytest.mark.parametrize(
    ("rule_id", "source", "name"),
    [
        ("lambda-function-changed", LAMBDA, "Invoke"),
        ("lambda-function-changed", LAMBDA, "GetFunction20150331v2"),
        ("lambda-function-changed", LAMBDA, "RemovePermission20150331v2"),
        ("rds-database-changed", RDS, "ModifyDBInstance"),
        ("rds-database-changed", RDS, "CreateDBCluster"),
        ("s3-bucket-configuration-changed", S3, "PutBucketTagging"),
        ("s3-bucket-configuration-changed", S3, "PutObject"),
        ("s3-bucket-configuration-changed", S3, "GetBucketPolicy"),
        ("sqs-queue-purged", "sqs.amazonaws.com", "DeleteMessage"),
        ("logs-group-or-stream-deleted", "logs.amazonaws.com", "PutLogEvents"),
        ("ses-identity-deleted", "ses.amazonaws.com", "SendEmail"),
        ("efs-mount-target-changed", "elasticfilesystem.amazonaws.com", "CreateMountTarget"),
        ("ebs-snapshot-permission-changed", "ec2.amazonaws.com", "CopySnapshot"),
        ("rds-log-downloaded", RDS, "DescribeDBLogFiles"),
    ],
)
def test_unselected_calls_never_reach_the_rule(rule_id: str, source: str, name: str) -> None:
    """No flood: object calls, sends and reads of the same service are not selected at all."""
    rule = next(r for r in RULES if r.id == rule_id)
    assert not matches(rule.event_pattern, record(source, name, {"x": "y"}))


def test_record_names_the_caller_and_survives_crafted_fields() -> None:
    req = {"functionName": {"nested": "object"}, "layerName": "x" * 5000}
    f = finding("lambda-function-changed", record(LAMBDA, "PublishLayerVersion20181031", req))
    assert f is not None and f.decision == "alert"
    assert "user/alice" in f.reason and len(f.resource["id"]) <= 300


# ------------------------------------------------------------------ credential files
@pytest.mark.parametrize(
    ("key", "size", "risky"),
    [
        ("etc/ssl/shop.example.com.key", None, True),
        ("etc/ssl/shop.example.com.KEY", 1704, True),
        ("etc/ssl/shop.key", 65536, True),
        ("decks/roadmap.key", 65537, False),  # a Keynote document, not a private key
        ("keys/public.key", 500, False),
        ("keys/server-public.key", None, False),
        ("x/.key", None, False),
        ("monkey", None, False),
        ("exports/gcp-Private_Key.json", None, True),
        ("PRIVATEKEY.txt", 10**9, True),
        ("x/private-key", None, True),
        ("docs/private-key-rotation.md", None, False),
        ("src/load_private_key.py", None, False),
        ("keys/public_private_key_pairs.txt", None, False),
        ("home/alice/.ssh/authorized_keys", None, False),  # public keys: not a secret
        ("home/alice/.aws/credentials", 10**9, True),  # the size only decides .key
    ],
)
def test_credential_file_key_and_private_key_names(key: str, size: int | None, risky: bool) -> None:
    assert (credential_file(key, size) is not None) is risky


@pytest.mark.parametrize(
    ("key", "out", "risky"),
    [
        ("ssl/a.key", 1704, True),
        ("ssl/a.key", "1704", True),
        ("ssl/a.key", 900000, False),
        ("ssl/a.key", True, True),  # not a size: unknown counts as a key
        ("ssl/a.key", -5, True),
        ("ssl/a.key", "lots", True),
        ("ssl/a.key", float("inf"), True),
        ("ssl/a.key", float("nan"), True),
        ("ssl/Private_Key.json", 900000, True),
        ("ssl/privateKey", None, True),
        ("ssl/PRIVATE-KEY.pem", None, True),
    ],
)
def test_credential_rule_selects_and_sizes_key_files(key: str, out: Any, risky: bool) -> None:
    env = record(S3, "GetObject", {"bucketName": "b", "key": key}, additional={"bytesTransferredOut": out})
    f = finding("s3-credential-file-read", env)
    assert f is not None, "the pattern selects the name"
    assert (f.decision == "alert") is risky, f.reason


# ------------------------------------------------------------------ ransom notes
@pytest.mark.parametrize(
    ("key", "risky"),
    [
        ("FILES-DELETED.txt", True),  # Stratus Red Team's note
        ("ALL_FILES_HAVE_BEEN_ENCRYPTED.txt", True),
        ("AllFilesHaveBeenEncrypted.TXT", True),
        ("DATA_ENCRYPTED.html", True),
        ("a/your-data-was-stolen.htm", True),
        ("file_locked.hta", True),
        ("FILES%20DELETED.txt", True),
        ("data-encrypted.bin", False),  # encrypted data, not a note
        ("exports/metadata_encrypted.txt", False),  # 'data' only as part of a word
        ("reports/deleted-files.txt", False),
        ("files_deleted.csv", False),
        ("PAYMENT_INFO.html", False),  # names legitimate files share: not judged
        ("RECOVERY_KEY.txt", False),
        ("READ_ME_FIRST.txt", False),
        ("files-deleted", False),
        (".txt", False),
    ],
)
def test_ransom_note_statements(key: str, risky: bool) -> None:
    assert (ransom_note(key) is not None) is risky
    f = finding("s3-ransom-note-uploaded", record(S3, "PutObject", {"bucketName": "b", "key": key}))
    assert f is not None and (f.decision == "alert") is risky, f.reason


def test_every_record_rule_is_in_the_catalog() -> None:
    assert set(RECORD_RULES) <= RULE_IDS


# ------------------------------------------------------------------ S3 desktop clients (first seen)
S3B = "S3 Browser 11.5.7 https://s3browser.com"
CYB = "Cyberduck/8.7.1.40770 (Mac OS X/14.0) (x86_64)"
GUI = "s3-gui-client-first-seen"


def s3_call(name: str, ua: str, *, identity: dict[str, Any] | None = None, n: int = 0) -> dict[str, Any]:
    env = record(S3, name, {"bucketName": "finance", "key": f"k/{n}"}, identity=identity, read_only=True, n=n)
    env["detail"]["userAgent"] = ua
    return env


@pytest.mark.parametrize(
    ("ua", "client"),
    [(S3B, "s3-browser"), ("S3BROWSER/12.0", "s3-browser"), ("s3_browser", "s3-browser"), (CYB, "cyberduck"),
     ("CYBERDUCK/9", "cyberduck"), (CLI, None), ("", None), ("Browser S3", None)],
)  # fmt: skip
def test_gui_client_names(ua: str, client: str | None) -> None:
    assert s3_gui_client(ua) == client


@pytest.mark.parametrize("ua", [S3B, "x S3Browser/12", "S3 BROWSER", CYB, "cyberduck-cli/9", "CYBERDUCK"])
def test_gui_client_pattern_selects_the_clients_and_names_the_term(ua: str) -> None:
    f = finding(GUI, s3_call("GetObject", ua))
    assert f is not None and f.decision == "alert" and f.severity == "LOW"
    assert f.params[FIRST_SEEN_ITEMS_PARAM] == [f"client:{s3_gui_client(ua)}"]
    assert f.resource == {"type": "AWS::S3::Bucket", "id": "finance"}


@pytest.mark.parametrize("ua", [CLI, "Boto3/1.35.0 md/Botocore#1.35.0", "", "aws-sdk-java/2.20"])
def test_gui_client_pattern_leaves_other_object_calls_out(ua: str) -> None:
    """No flood: an object call from any other client never reaches the engine."""
    rule = next(r for r in RULES if r.id == GUI)
    assert not matches(rule.event_pattern, s3_call("GetObject", ua))


def test_gui_client_by_a_service_is_not_judged() -> None:
    f = finding(GUI, s3_call("GetObject", S3B, identity={"type": "AWSService", "invokedBy": "s3.amazonaws.com"}))
    assert f is not None and f.decision == "skip"


def test_gui_client_alerts_once_per_principal_and_client_not_per_object() -> None:
    doc = json.loads((RULES_DIR / f"{GUI}.json").read_text(encoding="utf-8"))
    doc["params"]["first_seen"]["learning_days"] = 0
    rule = parse_rule(doc, GUI)
    ev = Evaluator([rule], RuntimeConfig())
    gate = ThresholdGate(MemoryWindowStore(), clock=None)

    def gated(env: dict[str, Any]) -> str:
        result = ev.evaluate(env)
        out = gate.apply_result(CloudTrailEvent(to_envelope(env)), result, ev.by_id)
        (f,) = [f for f in out.findings if f.rule == GUI]
        return f.decision

    downloads = [gated(s3_call("GetObject", CYB, n=i)) for i in range(1, 60)]
    assert downloads == ["alert"] + ["skip"] * 58, "one alert for a bulk download, not one per object"
    assert gated(s3_call("ListBuckets", S3B, n=100)) == "alert", "another client is a new term"
    assert gated(s3_call("GetObject", CYB, identity=APP, n=101)) == "alert", "another principal is a new term"


# ------------------------------------------------------------------ static site scripts (first seen)
SITE = "s3-static-site-script-first-write"


def site_put(key: Any, *, identity: dict[str, Any] | None = None, bucket: str = "www-shop", n: int = 0) -> dict:
    return record(S3, "PutObject", {"bucketName": bucket, "key": key}, identity=identity, n=n)


@pytest.mark.parametrize(
    ("key", "risky"),
    [("static/js/main.1a2b.js", True), ("www/static/js/chunk.mjs", True), ("Static/JS/Main.JS", True),
     ("static/js/main.js.map", False), ("static/css/main.css", False), ("js/static/x.css", False), ("", False),
     (["static/js/a.js"], False)],
)  # fmt: skip
def test_static_site_script_decision(key: Any, risky: bool) -> None:
    rule = next(r for r in RULES if r.id == SITE)
    a = registry()[rule.decision](CloudTrailEvent(to_envelope(site_put(key))), rule, RuntimeConfig())
    assert a.risky is risky, a.reason
    if risky:
        assert a.params[FIRST_SEEN_ITEMS_PARAM] == ["bucket:www-shop"] and not a.remediable


def test_static_site_pattern_selects_only_bundle_scripts() -> None:
    rule = next(r for r in RULES if r.id == SITE)
    assert matches(rule.event_pattern, site_put("static/js/main.1a2b.js"))
    for key in ("index.html", "static/css/main.css", "images/logo.js.png", "static/js/main.js.map"):
        assert not matches(rule.event_pattern, site_put(key)), key


def test_static_site_key_from_the_object_arn_and_unreadable_bucket_is_new() -> None:
    env = record(S3, "PutObject", {"x": 1})
    env["detail"]["resources"] = [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::www-b/static/js/a.js"}]
    rule = next(r for r in RULES if r.id == SITE)
    a = registry()[rule.decision](CloudTrailEvent(to_envelope(env)), rule, RuntimeConfig())
    assert a.risky and a.params[FIRST_SEEN_ITEMS_PARAM] == ["bucket:www-b"]
    a = registry()[rule.decision](
        CloudTrailEvent(to_envelope(record(S3, "PutObject", {"key": "static/js/a.js"}))), rule, RuntimeConfig()
    )
    assert a.risky and a.params[FIRST_SEEN_ITEMS_PARAM][0].startswith("bucket-unread:")


def test_static_site_pipeline_is_learned_a_new_principal_alerts_once() -> None:
    doc = json.loads((RULES_DIR / f"{SITE}.json").read_text(encoding="utf-8"))
    doc["params"]["first_seen"]["learning_days"] = 0
    rule = parse_rule(doc, SITE)
    ev = Evaluator([rule], RuntimeConfig())
    gate = ThresholdGate(MemoryWindowStore(), clock=None)

    def gated(env: dict[str, Any]) -> str:
        out = gate.apply_result(CloudTrailEvent(to_envelope(env)), ev.evaluate(env), ev.by_id)
        (f,) = [f for f in out.findings if f.rule == SITE]
        return f.decision

    deploy = [gated(site_put(f"static/js/chunk{i}.js", identity=APP, n=i)) for i in range(1, 30)]
    assert deploy == ["alert"] + ["skip"] * 28, "the deploying role alerts once, then is known for the bucket"
    assert gated(site_put("static/js/main.js", identity=USER, n=50)) == "alert", "a new principal for the site"
    assert gated(site_put("static/js/main.js", identity=USER, n=51)) == "skip"
    assert gated(site_put("static/js/main.js", identity=APP, bucket="www-other", n=52)) == "alert", "a new site"
