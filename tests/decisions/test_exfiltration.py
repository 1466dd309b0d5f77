"""Exfiltration, destruction and other high-value changes: replication, lifecycle, SSE-C, bulk deletes, exports,
shares, public or re-keyed databases, EKS admin access and logging, domain transfers, opt-in Regions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.intended import IntendedExposure
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import ITEMS_PARAM

ACCOUNT = "111122223333"
OTHER = "444455556666"
ORG = "222233334444"
S3 = "s3.amazonaws.com"
RDS = "rds.amazonaws.com"
EKS = "eks.amazonaws.com"
Ev = Callable[..., CloudTrailEvent]
ORG_CFG = RuntimeConfig(organization_accounts=frozenset({ORG}))
TRUSTED_CFG = RuntimeConfig(intended=IntendedExposure(trusted_accounts=frozenset({OTHER})))


def replication(ev: Ev, *rules: dict, bucket: str = "orders") -> CloudTrailEvent:
    body = {"Role": f"arn:aws:iam::{ACCOUNT}:role/repl", "Rule": list(rules) if len(rules) > 1 else rules[0]}
    return ev("PutBucketReplication", {"bucketName": bucket, "ReplicationConfiguration": body}, source=S3)


def repl_rule(dest: str = "arn:aws:s3:::dest", account: Any = None, status: str = "Enabled") -> dict:
    d: dict[str, Any] = {"Bucket": dest}
    if account is not None:
        d["Account"] = account
    return {"ID": "r", "Status": status, "Destination": d}


# ------------------------------------------------------------------ replication
@pytest.mark.parametrize(
    ("account", "cfg", "risky"),
    [
        (OTHER, RuntimeConfig(), True),
        (ACCOUNT, RuntimeConfig(), False),
        (ORG, ORG_CFG, False),
        (ORG, RuntimeConfig(), True),  # organization list unknown: an organization account looks external (alert)
        (OTHER, TRUSTED_CFG, False),
        (None, RuntimeConfig(), True),  # owner not stated
        (int(OTHER), RuntimeConfig(), True),
        (int(ACCOUNT), RuntimeConfig(), False),
    ],
)
def test_replication_destination_account(ev: Ev, run, account: Any, cfg: RuntimeConfig, risky: bool) -> None:
    assert run("s3-replication-external", replication(ev, repl_rule(account=account)), cfg).risky is risky


def test_replication_disabled_rule_and_reason(ev: Ev, run) -> None:
    assert not run("s3-replication-external", replication(ev, repl_rule(account=OTHER, status="Disabled"))).risky
    a = run("s3-replication-external", replication(ev, repl_rule(account=ACCOUNT), repl_rule("arn:aws:s3:::x", OTHER)))
    assert a.risky and OTHER in a.reason and "arn:aws:s3:::x" in a.reason and a.resource["id"] == "orders"


def test_replication_too_large_to_log(ev: Ev, run) -> None:
    e = ev("PutBucketReplication", {"reason": "requestParameters too large", "omitted": True}, source=S3)
    assert run("s3-replication-external", e).risky


# ------------------------------------------------------------------ lifecycle
def lifecycle(ev: Ev, rules: Any, bucket: str = "orders", when: str = "2026-10-01T12:00:00Z") -> CloudTrailEvent:
    req = {"bucketName": bucket, "LifecycleConfiguration": {"Rule": rules}}
    return ev("PutBucketLifecycle", req, source=S3, eventTime=when)


@pytest.mark.parametrize(
    ("rule_body", "risky"),
    [
        ({"Status": "Enabled", "Expiration": {"Days": 1}}, True),
        ({"Status": "Enabled", "Expiration": {"Days": "3"}}, True),
        ({"Status": "Enabled", "Expiration": {"Days": 7}}, True),  # the limit is inclusive
        ({"Status": "Enabled", "Expiration": {"Days": 8}}, False),
        ({"Status": "Enabled", "Expiration": {"Days": "30"}}, False),
        ({"Status": "Disabled", "Expiration": {"Days": 1}}, False),
        ({"Status": "disabled", "Expiration": {"Days": 1}}, False),
        ({"Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}, True),
        ({"Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": "90"}}, False),
        ({"Status": "Enabled", "Expiration": {"ExpiredObjectDeleteMarker": True}}, False),
        ({"Status": "Enabled", "Transition": {"Days": 1, "StorageClass": "GLACIER"}}, False),
        ({"Status": "Enabled", "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}, False),
        ({"Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}, True),
        ({"Status": "Enabled", "Expiration": {"Date": "2026-10-03T00:00:00Z"}}, True),
        ({"Status": "Enabled", "Expiration": {"Date": "2027-10-03T00:00:00Z"}}, False),
        ({"Status": "Enabled", "Expiration": {"Date": "2020-01-01T00:00:00.000Z"}}, True),  # a past date: now
        ({"Status": "Enabled", "Expiration": {"Days": "soon"}}, True),  # unreadable: cannot rule out short
        ({"status": "Enabled", "expiration": {"days": 1}}, True),  # key case
    ],
)
def test_lifecycle_short_expiry(ev: Ev, run, rule_body: dict, risky: bool) -> None:
    assert run("s3-lifecycle-short-expiry", lifecycle(ev, rule_body)).risky is risky


def test_lifecycle_rule_list_any_short_rule(ev: Ev, run) -> None:
    rules = [
        {"ID": "keep", "Status": "Enabled", "Expiration": {"Days": 400}},
        {"ID": "nuke", "Status": "Enabled", "Expiration": {"Days": 2}},
    ]
    a = run("s3-lifecycle-short-expiry", lifecycle(ev, rules))
    assert a.risky and "nuke" in a.reason and "keep" not in a.reason


@pytest.mark.parametrize(
    ("bucket", "cfg", "days_expect"),
    [
        (f"trailguard-archive-{ACCOUNT}-us-east-1", RuntimeConfig(), (90, "archive")),
        (f"trailguard-archive-{ACCOUNT}-us-east-1", RuntimeConfig(), (364, "archive")),
        (f"trailguard-archive-{ACCOUNT}-us-east-1", RuntimeConfig(), (365, "quiet")),
        ("TRAILGUARD-ARCHIVE-x", RuntimeConfig(), (90, "archive")),
        ("org-trail-logs", RuntimeConfig(deployed_trail={"bucket": "org-trail-logs"}), (100, "archive")),
        ("org-trail-logs", RuntimeConfig(), (100, "quiet")),
    ],
)
def test_lifecycle_on_trail_archive(ev: Ev, run, bucket: str, cfg: RuntimeConfig, days_expect: tuple) -> None:
    """The trail archive: any expiry under the shortest allowed retention, and trailguard's own resource."""
    days, expect = days_expect
    a = run(
        "s3-lifecycle-short-expiry", lifecycle(ev, {"Status": "Enabled", "Expiration": {"Days": days}}, bucket), cfg
    )
    assert a.risky is (expect == "archive")
    if a.risky:
        assert a.own_resource and "trail archive" in a.reason


def test_lifecycle_without_configuration_and_too_large(ev: Ev, run) -> None:
    assert not run("s3-lifecycle-short-expiry", ev("PutBucketLifecycle", {"bucketName": "b"}, source=S3)).risky
    big = ev("PutBucketLifecycle", {"reason": "requestParameters too large", "omitted": True}, source=S3)
    assert run("s3-lifecycle-short-expiry", big).risky


# ------------------------------------------------------------------ SSE-C, bulk deletes
@pytest.mark.parametrize(
    ("request_extra", "additional", "risky"),
    [
        ({"x-amz-server-side-encryption-customer-algorithm": "AES256"}, {}, True),
        ({}, {"SSEApplied": "SSE_C"}, True),
        ({"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256"}, {}, True),
        ({"x-amz-server-side-encryption": "aws:kms"}, {"SSEApplied": "SSE_KMS"}, False),
        ({}, {"SSEApplied": "Default_SSE_S3"}, False),
        # reading an SSE-C source is not re-encrypting
        ({"x-amz-copy-source-server-side-encryption-customer-algorithm": "AES256"}, {"SSEApplied": "SSE_S3"}, False),
    ],
)
def test_sse_c(ev: Ev, run, request_extra: dict, additional: dict, risky: bool) -> None:
    req = {"bucketName": "orders", "key": "a.pdf", **request_extra}
    e = ev("CopyObject", req, source=S3, additionalEventData=additional, eventCategory="Data")
    assert run("s3-sse-c-encryption", e).risky is risky


def deletes(ev: Ev, n: int, *, as_resources: bool = False) -> CloudTrailEvent:
    keys = [{"Key": f"k{i}"} for i in range(n)]
    if as_resources:
        res = [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::orders/k{i}"} for i in range(n)]
        return ev("DeleteObjects", {"bucketName": "orders", "delete": ""}, source=S3, resources=res)
    return ev("DeleteObjects", {"bucketName": "orders", "Delete": {"Object": keys if n != 1 else keys[0]}}, source=S3)


@pytest.mark.parametrize(("n", "items"), [(1, 1), (10, 1), (11, 2), (99, 10), (100, 10), (1000, 100)])
def test_bulk_delete_counts_listed_keys_by_tens(ev: Ev, run, n: int, items: int) -> None:
    """Every DeleteObjects qualifies; a record naming its keys weighs one item per 10 keys (the threshold, 10,
    is reached by one call naming 100 keys), whether the keys are in the body or in ``resources``."""
    for e in (deletes(ev, n), deletes(ev, n, as_resources=True)):
        a = run("s3-bulk-delete-objects", e)
        assert a.risky and not a.remediable
        assert len(a.params[ITEMS_PARAM]) == items == len(set(a.params[ITEMS_PARAM]))


def test_bulk_delete_without_keys_counts_one_call(ev: Ev, run) -> None:
    a = run("s3-bulk-delete-objects", ev("DeleteObjects", {"bucketName": "orders", "delete": ""}, source=S3))
    assert a.risky and "unlisted number of keys" in a.reason and len(a.params[ITEMS_PARAM]) == 1


@pytest.mark.parametrize(
    ("body", "items"), [(None, 1), ("x", 1), (63, 1), (640, 1), (704, 2), ("6400", 10), (48213, 76), (10**9, 100)]
)
def test_bulk_delete_without_keys_is_sized_by_its_body(ev: Ev, run, body: Any, items: int) -> None:
    """The XML key list's size (bytesTransferredIn, 64 bytes a key) estimates an unlisted call's keys."""
    e = ev("DeleteObjects", {"bucketName": "orders", "delete": ""}, source=S3,
           additionalEventData={"bytesTransferredIn": body})  # fmt: skip
    a = run("s3-bulk-delete-objects", e)
    assert a.risky and len(a.params[ITEMS_PARAM]) == items
    if items > 1:
        assert "estimated from its" in a.reason


def test_listed_keys_win_over_the_body_size(ev: Ev, run) -> None:
    e = ev("DeleteObjects", {"bucketName": "o", "Delete": {"Object": [{"Key": "a"}, {"Key": "b"}]}}, source=S3,
           additionalEventData={"bytesTransferredIn": 64000})  # fmt: skip
    assert len(run("s3-bulk-delete-objects", e).params[ITEMS_PARAM]) == 1


# ------------------------------------------------------------------ exports and shares
def test_ec2_exports(ev: Ev, run) -> None:
    a = run(
        "ec2-disk-export", ev("CreateInstanceExportTask", {"instanceId": "i-1", "exportToS3": {"s3Bucket": "drop"}})
    )
    assert a.risky and "s3://drop" in a.reason and a.resource == {"type": "AWS::EC2::Instance", "id": "i-1"}
    b = run("ec2-disk-export", ev("ExportImage", {"imageId": "ami-1", "s3ExportLocation": {"s3Bucket": "drop"}}))
    assert b.risky and b.resource["type"] == "AWS::EC2::Image"
    assert not run("ec2-disk-export", ev("CreateImage", {"instanceId": "i-1"})).risky


@pytest.mark.parametrize(
    ("owner", "cfg", "risky"),
    [(OTHER, RuntimeConfig(), True), (ACCOUNT, RuntimeConfig(), False), (None, RuntimeConfig(), False),
     (ORG, ORG_CFG, False), (OTHER, TRUSTED_CFG, False), ("11112222333", RuntimeConfig(), True)],
)  # fmt: skip
def test_dynamodb_export_owner(ev: Ev, run, owner: Any, cfg: RuntimeConfig, risky: bool) -> None:
    req = {"tableArn": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders", "s3Bucket": "b"}
    if owner is not None:
        req["s3BucketOwner"] = owner
    e = ev("ExportTableToPointInTime", req, source="dynamodb.amazonaws.com")
    assert run("dynamodb-export-external", e, cfg).risky is risky


def test_rds_export_task(ev: Ev, run) -> None:
    e = ev(
        "StartExportTask", {"sourceArn": f"arn:aws:rds:us-east-1:{ACCOUNT}:snapshot:s", "s3BucketName": "b"}, source=RDS
    )
    a = run("rds-export-task", e)
    assert a.risky and "s3://b" in a.reason


@pytest.mark.parametrize(
    ("account", "cfg", "risky"),
    [
        (OTHER, RuntimeConfig(), True),
        (ACCOUNT, RuntimeConfig(), False),
        (ORG, ORG_CFG, False),
        (OTHER, TRUSTED_CFG, False),
    ],
)
def test_redshift_snapshot_share(ev: Ev, run, account: str, cfg: RuntimeConfig, risky: bool) -> None:
    e = ev(
        "AuthorizeSnapshotAccess",
        {"snapshotIdentifier": "s", "accountWithRestoreAccess": account},
        source="redshift.amazonaws.com",
    )
    assert run("redshift-snapshot-shared-external", e, cfg).risky is risky


@pytest.mark.parametrize(
    ("request_parameters", "risky"),
    [
        ({"loadPermission": {"add": {"items": [{"group": "all"}]}}}, True),
        ({"loadPermission": {"add": {"item": {"group": "all"}}}}, True),
        ({"loadPermission": {"add": [{"userId": OTHER}]}}, True),
        ({"loadPermission": {"add": {"items": [{"userId": ACCOUNT}]}}}, False),
        ({"loadPermission": {"remove": {"items": [{"group": "all"}]}}}, False),
        ({"operationType": "add", "userGroup": ["all"]}, True),
        ({"operationType": "add", "userId": [OTHER]}, True),
        ({"operationType": "add", "userId": [ACCOUNT]}, False),
        ({"operationType": "remove", "userGroup": ["all"]}, False),
        ({"description": "x"}, False),
    ],
)
def test_fpga_sharing(ev: Ev, run, request_parameters: dict, risky: bool) -> None:
    e = ev("ModifyFpgaImageAttribute", {"fpgaImageId": "afi-1", "attribute": "loadPermission", **request_parameters})
    assert run("ec2-fpga-image-shared", e).risky is risky


# ------------------------------------------------------------------ RDS
@pytest.mark.parametrize(
    ("name", "request_parameters", "risky"),
    [
        ("ModifyDBInstance", {"dBInstanceIdentifier": "db", "publiclyAccessible": True}, True),
        ("ModifyDBInstance", {"dBInstanceIdentifier": "db", "publiclyAccessible": "true"}, True),
        ("ModifyDBInstance", {"dBInstanceIdentifier": "db", "publiclyAccessible": False}, False),
        ("ModifyDBInstance", {"dBInstanceIdentifier": "db", "allocatedStorage": 100}, False),
        ("ModifyDBCluster", {"dBClusterIdentifier": "c", "publiclyAccessible": True}, True),
        ("RestoreDBInstanceFromDBSnapshot", {"dBInstanceIdentifier": "copy", "publiclyAccessible": True}, True),
        ("CreateDBInstance", {"dBInstanceIdentifier": "db"}, False),  # the default for a VPC without IGW is private
    ],
)
def test_rds_public(ev: Ev, run, name: str, request_parameters: dict, risky: bool) -> None:
    """The request's flag decides (a Modify response only echoes the current state)."""
    a = run("rds-instance-publicly-accessible", ev(name, request_parameters, source=RDS))
    assert a.risky is risky
    if risky:
        assert a.resource["id"] in ("db", "c", "copy")


@pytest.mark.parametrize(
    ("name", "request_parameters", "words"),
    [
        ("ModifyDBInstance", {"dBInstanceIdentifier": "db", "masterUserPassword": "****"}, "master password set"),
        (
            "ModifyDBCluster",
            {"dBClusterIdentifier": "c", "manageMasterUserPassword": True},
            "manageMasterUserPassword true",
        ),
        (
            "ModifyDBInstance",
            {"dBInstanceIdentifier": "db", "manageMasterUserPassword": False},
            "manageMasterUserPassword false",
        ),
        ("ModifyDBInstance", {"dBInstanceIdentifier": "db", "rotateMasterUserPassword": True}, "rotated"),
        ("ModifyDBInstance", {"dBInstanceIdentifier": "db", "rotateMasterUserPassword": False}, ""),
        ("ModifyDBInstance", {"dBInstanceIdentifier": "db", "allocatedStorage": 10}, ""),
        ("CreateDBInstance", {"dBInstanceIdentifier": "db", "masterUserPassword": "****"}, ""),
    ],
)
def test_rds_master_password(ev: Ev, run, name: str, request_parameters: dict, words: str) -> None:
    a = run("rds-master-password-reset", ev(name, request_parameters, source=RDS))
    assert a.risky is bool(words)
    if words:
        assert words in a.reason


# ------------------------------------------------------------------ EKS, domains, Regions
ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


@pytest.mark.parametrize(
    ("name", "request_parameters", "risky"),
    [
        ("AssociateAccessPolicy", {"policyArn": ADMIN, "accessScope": {"type": "cluster"}}, True),
        (
            "AssociateAccessPolicy",
            {"policyArn": ADMIN, "accessScope": {"type": "namespace", "namespaces": ["a"]}},
            True,
        ),
        (
            "AssociateAccessPolicy",
            {"policyArn": ADMIN.replace("ClusterAdmin", "Admin"), "accessScope": {"type": "cluster"}},
            True,
        ),
        (
            "AssociateAccessPolicy",
            {"policyArn": ADMIN.replace("ClusterAdmin", "Admin"), "accessScope": {"type": "namespace"}},
            False,
        ),
        (
            "AssociateAccessPolicy",
            {"policyArn": ADMIN.replace("ClusterAdmin", "View"), "accessScope": {"type": "cluster"}},
            False,
        ),
        ("CreateAccessEntry", {"kubernetesGroups": ["system:masters"]}, True),
        ("CreateAccessEntry", {"kubernetesGroups": ["readers"]}, False),
        ("CreateAccessEntry", {}, False),
    ],
)
def test_eks_cluster_admin(ev: Ev, run, name: str, request_parameters: dict, risky: bool) -> None:
    req = {"clusterName": "prod", "principalArn": f"arn:aws:iam::{ACCOUNT}:role/x", **request_parameters}
    assert run("eks-cluster-admin-access", ev(name, req, source=EKS)).risky is risky


def test_eks_admin_for_foreign_principal_is_named(ev: Ev, run) -> None:
    req = {"clusterName": "prod", "principalArn": f"arn:aws:iam::{OTHER}:role/x", "policyArn": ADMIN}
    a = run("eks-cluster-admin-access", ev("AssociateAccessPolicy", req, source=EKS))
    assert a.risky and f"another account, {OTHER}" in a.reason


@pytest.mark.parametrize(
    ("entries", "risky"),
    [
        ([{"types": ["audit"], "enabled": False}], True),
        ([{"types": ["api", "audit"], "enabled": "false"}], True),
        ([{"types": ["api"], "enabled": True}, {"types": ["audit"], "enabled": False}], True),
        ([{"types": ["api", "audit"], "enabled": True}], False),
        ([{"types": [], "enabled": False}], False),
        ({"types": ["audit"], "enabled": False}, True),
    ],
)
def test_eks_logging(ev: Ev, run, entries: Any, risky: bool) -> None:
    e = ev("UpdateClusterConfig", {"name": "prod", "logging": {"clusterLogging": entries}}, source=EKS)
    assert run("eks-control-plane-logging-disabled", e).risky is risky


def test_eks_config_without_logging(ev: Ev, run) -> None:
    e = ev("UpdateClusterConfig", {"name": "prod", "resourcesVpcConfig": {"endpointPublicAccess": True}}, source=EKS)
    assert not run("eks-control-plane-logging-disabled", e).risky


@pytest.mark.parametrize(
    ("name", "request_parameters", "risky"),
    [
        ("TransferDomainToAnotherAwsAccount", {"domainName": "example.com", "accountId": OTHER}, True),
        ("DisableDomainTransferLock", {"domainName": "example.com"}, True),
        ("TransferDomain", {"domainName": "example.com", "authCode": "HIDDEN"}, True),
        ("EnableDomainTransferLock", {"domainName": "example.com"}, False),
    ],
)
def test_domain_transfers(ev: Ev, run, name: str, request_parameters: dict, risky: bool) -> None:
    e = ev(name, request_parameters, source="route53domains.amazonaws.com")
    assert run("route53domains-transfer", e).risky is risky


def test_region_enabled_and_allowed(ev: Ev, run) -> None:
    from dataclasses import replace

    from trailguard_engine.catalog import rules_by_id
    from trailguard_engine.decisions.behaviour import account_region_enabled

    e = ev("EnableRegion", {"regionName": "me-central-1"}, source="account.amazonaws.com")
    a = run("account-region-enabled", e)
    assert a.risky and "me-central-1" in a.reason and ACCOUNT in a.reason
    rule = replace(rules_by_id()["account-region-enabled"], params={"allowed_regions": ["ME-CENTRAL-1"]})
    assert not account_region_enabled(e, rule, RuntimeConfig()).risky
    member = ev("EnableRegion", {"regionName": "ap-east-1", "accountId": OTHER}, source="account.amazonaws.com")
    assert OTHER in run("account-region-enabled", member).reason


@pytest.mark.parametrize(
    ("name", "request_parameters", "response_risky"),
    [
        (
            "CreateDBInstance",
            {"dBInstanceIdentifier": "db"},
            ({"dBInstanceIdentifier": "db", "publiclyAccessible": True}, True),
        ),
        ("RestoreDBInstanceFromDBSnapshot", {"dBInstanceIdentifier": "db"}, ({"publiclyAccessible": True}, True)),
        ("CreateDBInstance", {"dBInstanceIdentifier": "db"}, ({"publiclyAccessible": False}, False)),
        (
            "CreateDBInstance",
            {"dBInstanceIdentifier": "db", "publiclyAccessible": False},
            ({"publiclyAccessible": True}, False),
        ),
        ("ModifyDBInstance", {"dBInstanceIdentifier": "db"}, ({"publiclyAccessible": True}, False)),  # already public
    ],
)
def test_rds_public_by_default(ev: Ev, run, name: str, request_parameters: dict, response_risky: tuple) -> None:
    """Creating or restoring without the flag in a default VPC is public: the response's effective value counts."""
    response, risky = response_risky
    a = run("rds-instance-publicly-accessible", ev(name, request_parameters, response, source=RDS))
    assert a.risky is risky
    if risky:
        assert "by default" in a.reason


@pytest.mark.parametrize("key", ["RegionName", "regionName"])
def test_region_enabled_field_spellings(ev: Ev, run, key: str) -> None:
    e = ev("EnableRegion", {key: "af-south-1", "AccountId": OTHER}, source="account.amazonaws.com")
    a = run("account-region-enabled", e)
    assert a.risky and "af-south-1" in a.reason and OTHER in a.reason


@pytest.mark.parametrize("key", ["s3BucketOwner", "S3BucketOwner"])
def test_dynamodb_owner_field_spellings(ev: Ev, run, key: str) -> None:
    req = {"TableArn": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders", "S3Bucket": "b", key: OTHER}
    a = run("dynamodb-export-external", ev("ExportTableToPointInTime", req, source="dynamodb.amazonaws.com"))
    assert a.risky and "table/orders" in a.reason and OTHER in a.reason


def test_eks_update_access_entry_into_masters(ev: Ev, run) -> None:
    req = {
        "clusterName": "prod",
        "principalArn": f"arn:aws:iam::{ACCOUNT}:role/x",
        "kubernetesGroups": ["a", "system:masters"],
    }
    assert run("eks-cluster-admin-access", ev("UpdateAccessEntry", req, source=EKS)).risky
    # Kubernetes compares group names case-sensitively: another spelling grants nothing
    for groups in (["a"], ["SYSTEM:MASTERS"], ["system:masters-readers"]):
        req["kubernetesGroups"] = groups
        assert not run("eks-cluster-admin-access", ev("UpdateAccessEntry", req, source=EKS)).risky


def test_dynamodb_export_without_owner_by_param(ev: Ev, run) -> None:
    from dataclasses import replace

    from trailguard_engine.catalog import rules_by_id
    from trailguard_engine.decisions.exfiltration import dynamodb_export_external

    e = ev("ExportTableToPointInTime", {"tableArn": "arn:t", "s3Bucket": "b"}, source="dynamodb.amazonaws.com")
    rule = rules_by_id()["dynamodb-export-external"]
    assert not dynamodb_export_external(e, rule, RuntimeConfig()).risky
    strict = replace(rule, params={"alert_without_owner": True})
    a = dynamodb_export_external(e, strict, RuntimeConfig())
    assert a.risky and "owner not stated" in a.reason


def test_ami_store_task_is_an_export(ev: Ev, run) -> None:
    a = run("ec2-disk-export", ev("CreateStoreImageTask", {"imageId": "ami-1", "bucket": "drop"}))
    assert a.risky and "s3://drop" in a.reason and a.resource == {"type": "AWS::EC2::Image", "id": "ami-1"}
