"""Exfiltration and execution rules against a member admin who knows them (issue 14).

Each case is a legal request an attacker can send to copy data out, destroy it quietly or run code, spelled to
slip past a string-matching rule: look-alike account IDs, lifecycle rules in every spelling CloudTrail records,
the flat user-data form, a forged IaC user agent. Each goes the whole way: both pattern matchers (ours and
moto's, which stands in for EventBridge) and the evaluator with the shipped catalog. The other direction too:
replication inside the own account or organization, and long or disabled lifecycle rules, stay quiet.
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest
from moto.events.models import EventPattern
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.intended import IntendedExposure
from trailguard_engine.matcher import matches
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
ORG_ACCOUNT = "222233334444"
TRUSTED = "777788889999"
CLI = "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.8.0-45-generic md/arch#x86_64 lang/python#3.11.9"
TERRAFORM = "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.68.0"
ADMIN_ROLE = {
    "type": "AssumedRole",
    "principalId": "AROA3EXAMPLEADMIN01:mallory",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/mallory",
    "accountId": ACCOUNT,
    "accessKeyId": "ASIA3EXAMPLEKEY00001",
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROA3EXAMPLEADMIN01",
            "arn": f"arn:aws:iam::{ACCOUNT}:role/Admin",
            "accountId": ACCOUNT,
            "userName": "Admin",
        },
        "attributes": {"creationDate": "2026-10-01T11:40:00Z", "mfaAuthenticated": "false"},
    },
}
IAM_USER = {
    "type": "IAMUser",
    "principalId": "AIDA3EXAMPLEUSER0001",
    "arn": f"arn:aws:iam::{ACCOUNT}:user/bob",
    "accountId": ACCOUNT,
    "accessKeyId": "AKIA3EXAMPLEKEY00003",
    "userName": "bob",
}
CFG = RuntimeConfig(
    organization_accounts=frozenset({ORG_ACCOUNT}),
    intended=IntendedExposure(trusted_accounts=frozenset({TRUSTED})),
)
_ids = itertools.count(1)


def envelope(
    source: str, name: str, request: Any, *, identity: dict | None = None, ua: str = CLI, **detail: Any
) -> dict:
    n = next(_ids)
    record = {
        "eventVersion": "1.10",
        "userIdentity": copy.deepcopy(identity or ADMIN_ROLE),
        "eventTime": "2026-10-01T12:00:00Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": ua,
        "requestParameters": request,
        "responseElements": None,
        "requestID": f"0000000{n:05d}-req",
        "eventID": f"6f0c1d2e-3a4b-4c5d-8e9f-{n:012d}",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
        **detail,
    }
    return {
        "version": "0",
        "id": f"a0bbac1b-fd29-4bcf-865d-{n:012d}",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws." + source.split(".", maxsplit=1)[0],
        "account": ACCOUNT,
        "time": "2026-10-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": record,
    }


def verdict(rule_id: str, env: dict, cfg: RuntimeConfig = CFG) -> str:
    """``alert``, ``remediate``, ``skip`` (matched, judged benign or a notice) or ``unmatched``; both matchers agree."""
    rule = rules_by_id()[rule_id]
    ours = matches(rule.event_pattern, env)
    theirs = EventPattern.load(json.dumps(rule.event_pattern)).matches_event(env)
    assert ours == theirs, "our matcher and moto's (EventBridge) disagree"
    if not ours:
        return "unmatched"
    findings = [f for f in Evaluator(cfg=cfg).evaluate(env).findings if f.rule == rule_id]
    assert len(findings) == 1
    return findings[0].decision


# --------------------------------------------------------------------------- replication
def replication(account: Any = None, *, rules_as_list: bool = False) -> dict:
    dest: dict[str, Any] = {"Bucket": "arn:aws:s3:::replica-bucket"}
    if account is not None:
        dest["Account"] = account
        dest["AccessControlTranslation"] = {"Owner": "Destination"}
    rule = {"ID": "all", "Status": "Enabled", "Priority": 1, "Filter": {"Prefix": ""}, "Destination": dest}
    body = {"Role": f"arn:aws:iam::{ACCOUNT}:role/replication", "Rule": [rule] if rules_as_list else rule}
    req = {"bucketName": "orders-data", "replication": "", "ReplicationConfiguration": body}
    return envelope("s3.amazonaws.com", "PutBucketReplication", req)


@pytest.mark.parametrize(
    "account",
    [
        "111122223334",  # one digit off the own account
        " 111122223333",  # the own account with a space: not the own account as written
        "0111122223333",  # 13 digits
        "11112222333",  # 11 digits
        "111122223333*",
        "*",
        "222233334445",  # one digit off an organization account
        "arn:aws:iam::444455556666:root",  # an ARN naming an outside account
        444455556666,  # a number, not a string
    ],
)
def test_replication_lookalike_accounts_alert(account: Any) -> None:
    assert verdict("s3-replication-external", replication(account)) == "alert"
    assert verdict("s3-replication-external", replication(account, rules_as_list=True)) == "alert"


@pytest.mark.parametrize("account", [ACCOUNT, ORG_ACCOUNT, TRUSTED, int(ACCOUNT), f"arn:aws:iam::{ACCOUNT}:root"])
def test_replication_inside_the_organization_is_quiet(account: Any) -> None:
    assert verdict("s3-replication-external", replication(account)) == "skip"


def test_replication_owner_unstated_alerts() -> None:
    """Destination.Account is optional: a bucket elsewhere that grants the role receives the copies without it."""
    assert verdict("s3-replication-external", replication(None)) == "alert"


def test_replication_organization_account_unknown_list_alerts() -> None:
    """Without the organization's list, an organization account cannot be told from an outsider: alert, never silence."""
    assert verdict("s3-replication-external", replication(ORG_ACCOUNT), RuntimeConfig()) == "alert"


# --------------------------------------------------------------------------- lifecycle
def lifecycle(rules: Any, *, name: str = "PutBucketLifecycle", bucket: str = "orders-data", ua: str = CLI) -> dict:
    req = {"bucketName": bucket, "lifecycle": "", "LifecycleConfiguration": {"Rule": rules}}
    return envelope("s3.amazonaws.com", name, req, ua=ua)


SHORT_SPELLINGS = [
    {"ID": "a", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}},
    {"ID": "b", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": "1"}},
    {"ID": "c", "Status": "Enabled", "Filter": {"Prefix": "*"}, "Expiration": {"Days": 7}},
    {"ID": "d", "Status": "Enabled", "Prefix": "", "Expiration": {"Days": 2}},  # legacy top-level Prefix
    {"ID": "e", "Status": "Enabled", "Filter": {"Tag": {"Key": "k", "Value": "v"}}, "Expiration": {"Days": 1}},
    {
        "ID": "f",
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": "x/", "ObjectSizeGreaterThan": 0}},
        "Expiration": {"Days": 1},
    },
    {"ID": "g", "Status": "Enabled", "Filter": "", "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
    {
        "ID": "h",
        "Status": "Enabled",
        "Filter": {},
        "NoncurrentVersionExpiration": {"NoncurrentDays": "1", "NewerNoncurrentVersions": 0},
    },
    {"ID": "i", "Status": "Enabled", "Filter": {}, "Expiration": {"Date": "2026-10-02T00:00:00.000Z"}},
    {"ID": "j", "Status": "ENABLED", "Filter": {}, "Expiration": {"Days": 1}},
]


@pytest.mark.parametrize("short", SHORT_SPELLINGS, ids=lambda r: r["ID"])
@pytest.mark.parametrize("name", ["PutBucketLifecycle", "PutBucketLifecycleConfiguration"])
def test_lifecycle_spellings_alert(short: dict, name: str) -> None:
    assert verdict("s3-lifecycle-short-expiry", lifecycle(short, name=name)) == "alert"
    long = {"ID": "keep", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 3650}}
    # hidden behind a harmless first rule, as a list
    assert verdict("s3-lifecycle-short-expiry", lifecycle([long, short], name=name)) == "alert"


@pytest.mark.parametrize(
    "benign",
    [
        {"ID": "keep", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 400}},
        {"ID": "off", "Status": "Disabled", "Filter": {}, "Expiration": {"Days": 1}},
        {"ID": "markers", "Status": "Enabled", "Filter": {}, "Expiration": {"ExpiredObjectDeleteMarker": "true"}},
        {"ID": "mpu", "Status": "Enabled", "Filter": {}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
        {"ID": "cold", "Status": "Enabled", "Filter": {}, "Transition": {"Days": 0, "StorageClass": "GLACIER_IR"}},
    ],
    ids=lambda r: r["ID"],
)
def test_lifecycle_housekeeping_is_quiet(benign: dict) -> None:
    assert verdict("s3-lifecycle-short-expiry", lifecycle(benign)) == "skip"


def test_lifecycle_on_trail_archive_cannot_be_lowered_by_callers_config() -> None:
    """An operator may quiet IaC lifecycle changes; on trailguard's archive the caller class never lowers it."""
    cfg = RuntimeConfig(
        caller_modes={"s3-lifecycle-short-expiry": {"iac": "notice"}},
        iac_principal_patterns=(f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/*",),
    )
    archive = {"ID": "tidy", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 90}}
    on_archive = lifecycle(archive, bucket=f"trailguard-archive-{ACCOUNT}-us-east-1", ua=TERRAFORM)
    assert verdict("s3-lifecycle-short-expiry", on_archive, cfg) == "alert"
    scratch = lifecycle({**archive, "Expiration": {"Days": 1}}, bucket="scratch", ua=TERRAFORM)
    assert verdict("s3-lifecycle-short-expiry", scratch, cfg) == "skip"  # the operator's own choice elsewhere


# --------------------------------------------------------------------------- user data, SSM
@pytest.mark.parametrize(
    "request_parameters",
    [
        {"instanceId": "i-0a1b2c3d4e5f67890", "userData": "<sensitiveDataRemoved>"},
        {"instanceId": "i-0a1b2c3d4e5f67890", "userData": {"value": "<sensitiveDataRemoved>"}},
        {"instanceId": "i-0a1b2c3d4e5f67890", "attribute": "userData", "value": "<sensitiveDataRemoved>"},
        {"instanceId": "i-0a1b2c3d4e5f67890", "attribute": "USERDATA", "value": "<sensitiveDataRemoved>"},
    ],
)
def test_user_data_every_form_alerts(request_parameters: dict) -> None:
    env = envelope("ec2.amazonaws.com", "ModifyInstanceAttribute", request_parameters)
    assert verdict("ec2-userdata-modified", env) == "alert"


def test_user_data_other_attribute_flat_is_quiet() -> None:
    req = {"instanceId": "i-0a1b2c3d4e5f67890", "attribute": "instanceType", "value": "t3.large"}
    assert verdict("ec2-userdata-modified", envelope("ec2.amazonaws.com", "ModifyInstanceAttribute", req)) == "skip"


def test_ssm_command_forged_terraform_agent_still_a_person() -> None:
    req = {"instanceIds": ["i-0a1b2c3d4e5f67890"], "documentName": "AWS-RunShellScript", "parameters": "HIDDEN"}
    env = envelope("ssm.amazonaws.com", "SendCommand", req, identity=IAM_USER, ua=TERRAFORM)
    assert verdict("ssm-command-by-human", env) == "alert"


# --------------------------------------------------------------------------- exports and shares
@pytest.mark.parametrize(("owner", "expected"), [("111122223334", "alert"), (ORG_ACCOUNT, "skip"), (ACCOUNT, "skip")])
def test_dynamodb_export_lookalike_owner(owner: str, expected: str) -> None:
    req = {"tableArn": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders", "s3Bucket": "drop", "s3BucketOwner": owner}
    env = envelope("dynamodb.amazonaws.com", "ExportTableToPointInTime", req)
    assert verdict("dynamodb-export-external", env) == expected


@pytest.mark.parametrize(("account", "expected"), [("111122223334", "alert"), (TRUSTED, "skip")])
def test_redshift_share_lookalike(account: str, expected: str) -> None:
    req = {"snapshotIdentifier": "s", "accountWithRestoreAccess": account}
    env = envelope("redshift.amazonaws.com", "AuthorizeSnapshotAccess", req)
    assert verdict("redshift-snapshot-shared-external", env) == expected


@pytest.mark.parametrize("group", ["all", "ALL", "All"])
def test_fpga_public_group_any_case(group: str) -> None:
    req = {
        "fpgaImageId": "afi-1",
        "attribute": "loadPermission",
        "loadPermission": {"add": {"items": [{"group": group}]}},
    }
    assert verdict("ec2-fpga-image-shared", envelope("ec2.amazonaws.com", "ModifyFpgaImageAttribute", req)) == "alert"


@pytest.mark.parametrize("value", [True, "true", "True"])
def test_rds_public_any_spelling(value: Any) -> None:
    req = {"dBInstanceIdentifier": "orders", "publiclyAccessible": value, "applyImmediately": True}
    assert (
        verdict("rds-instance-publicly-accessible", envelope("rds.amazonaws.com", "ModifyDBInstance", req)) == "alert"
    )


def test_sse_c_by_s3_marker_without_header() -> None:
    """The request header can be absent from a record; S3's own SSEApplied = SSE_C still selects and decides."""
    env = envelope(
        "s3.amazonaws.com",
        "PutObject",
        {"bucketName": "orders-data", "key": "a.pdf"},
        additionalEventData={"SSEApplied": "SSE_C"},
        eventCategory="Data",
        managementEvent=False,
    )
    assert verdict("s3-sse-c-encryption", env) == "alert"


def test_no_rule_here_remediates() -> None:
    """These rules only alert: nothing here may act in an account (or on a resource) a record names."""
    ids = [
        "ssm-command-by-human", "ec2-instance-connect-key-pushed", "ec2-serial-console-access-enabled",
        "s3-replication-external", "s3-lifecycle-short-expiry", "s3-sse-c-encryption", "s3-bulk-delete-objects",
        "ec2-disk-export", "dynamodb-export-external", "rds-export-task", "redshift-snapshot-shared-external",
        "ec2-fpga-image-shared", "rds-instance-publicly-accessible", "rds-master-password-reset",
        "eks-cluster-admin-access", "eks-control-plane-logging-disabled", "route53domains-transfer",
        "account-region-enabled", "ec2-userdata-modified", "lambda-code-changed-by-human",
    ]  # fmt: skip
    rules = rules_by_id()
    assert all(rules[i].remediation is None and rules[i].default_mode == "alert" for i in ids)


def test_lifecycle_iac_notice_needs_the_operators_list() -> None:
    """The rule quiets listed pipelines on ordinary buckets; a forged Terraform user agent stays an alert."""
    short = {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}
    assert verdict("s3-lifecycle-short-expiry", lifecycle(short, ua=TERRAFORM)) == "alert"
    listed = RuntimeConfig(iac_principal_patterns=(f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/*",))
    assert verdict("s3-lifecycle-short-expiry", lifecycle(short, ua=TERRAFORM), listed) == "skip"
    archive = lifecycle(short, bucket=f"trailguard-archive-{ACCOUNT}-us-east-1", ua=TERRAFORM)
    assert verdict("s3-lifecycle-short-expiry", archive, listed) == "alert"


def test_lambda_code_by_mfa_role_session_on_the_cli() -> None:
    """A person who assumed a role with MFA and uses the CLI is a person: the pattern no longer pre-filters callers."""
    mfa_role = copy.deepcopy(ADMIN_ROLE)
    mfa_role["sessionContext"]["attributes"]["mfaAuthenticated"] = "true"
    req = {"functionName": "orders-api", "zipFile": "<sensitiveDataRemoved>"}
    env = envelope("lambda.amazonaws.com", "UpdateFunctionCode20150331v2", req, identity=mfa_role)
    assert verdict("lambda-code-changed-by-human", env) == "alert"
    env = envelope("lambda.amazonaws.com", "UpdateFunctionCode20150331v2", req, identity=ADMIN_ROLE, ua=TERRAFORM)
    assert verdict("lambda-code-changed-by-human", env) == "skip"  # a role session with no sign of a person


# --------------------------------------------------------------------------- robustness
MY_RULES = (
    "ssm-command-by-human", "ec2-instance-connect-key-pushed", "ec2-serial-console-access-enabled",
    "s3-replication-external", "s3-lifecycle-short-expiry", "s3-sse-c-encryption", "s3-bulk-delete-objects",
    "ec2-disk-export", "dynamodb-export-external", "rds-export-task", "redshift-snapshot-shared-external",
    "ec2-fpga-image-shared", "rds-instance-publicly-accessible", "rds-master-password-reset",
    "eks-cluster-admin-access", "eks-control-plane-logging-disabled", "route53domains-transfer",
    "account-region-enabled", "ec2-userdata-modified", "lambda-code-changed-by-human", "offensive-tooling-user-agent",
)  # fmt: skip
ODD: tuple[Any, ...] = (None, 7, "x", "", [], {}, [None, 1, "a"], True, {"items": "x"}, "9" * 400)


def _paths(obj: Any, prefix: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in list(obj.items())[:12]:
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:2]):
            out += _paths(v, (*prefix, i))
    return out


@pytest.mark.parametrize("rule_id", MY_RULES)
def test_crafted_field_types_never_break_a_decision(rule_id: str) -> None:
    """Any field of a positive or variant replaced by an odd value: the decision answers, it never raises
    (a raise would still alert, as a decision error, but it must not happen)."""
    from trailguard_engine.decisions import registry
    from trailguard_engine.events import CloudTrailEvent
    from trailguard_engine.model import Assessment

    rule = rules_by_id()[rule_id]
    fn = registry()[rule.decision]
    examples = [*rule.examples_positive, *(v["event"] for v in rule.examples_variants)]
    calls = 0
    for example in examples:
        detail = example["detail"]
        for field in ("requestParameters", "responseElements", "additionalEventData", "userIdentity"):
            for path in _paths(detail.get(field), (field,)):
                for value in ODD:
                    mutated = copy.deepcopy(detail)
                    cur: Any = mutated
                    for step in path[:-1]:
                        cur = cur[step]
                    cur[path[-1]] = value
                    a = fn(CloudTrailEvent({**example, "detail": mutated}), rule, CFG)
                    assert isinstance(a, Assessment) and a.reason, (path, value)
                    # alert-only rules: a risky verdict is never marked remediable, whatever the record says
                    assert not (a.risky and a.remediable), (path, value)
                    calls += 1
    assert calls > 20
