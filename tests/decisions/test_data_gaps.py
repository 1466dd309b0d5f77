"""Unit tests of the data, storage and impact gap decisions (decisions/data_gaps.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.intended import IntendedExposure
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import ITEMS_PARAM

ACCOUNT = "111122223333"
ORG = "222233334444"
OTHER = "444455556666"
S3 = "s3.amazonaws.com"
RDS = "rds.amazonaws.com"
SQS = "sqs.amazonaws.com"
SNS = "sns.amazonaws.com"
Ev = Callable[..., CloudTrailEvent]
ORG_CFG = RuntimeConfig(organization_accounts=frozenset({ORG}))
TRUSTED_CFG = RuntimeConfig(intended=IntendedExposure(trusted_accounts=frozenset({OTHER})))
SERVICE = {"type": "AWSService", "invokedBy": "s3.amazonaws.com"}
APP = {
    "type": "AssumedRole",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/webhook-app/i-0abc",
    "accountId": ACCOUNT,
    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/webhook-app"}},
}
USER = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT, "userName": "alice"}


# ------------------------------------------------------------------ DeleteObject burst
def test_delete_object_names_bucket_key_and_version(ev: Ev, run) -> None:
    a = run("s3-objects-deleted-in-bulk", ev("DeleteObject", {"bucketName": "b", "key": "k/1"}, source=S3))
    assert a.risky and not a.remediable and a.params[ITEMS_PARAM] == ["b/k/1"]
    v = run(
        "s3-objects-deleted-in-bulk",
        ev("DeleteObject", {"bucketName": "b", "key": "k/1", "versionId": "v1"}, source=S3),
    )
    assert v.params[ITEMS_PARAM] == ["b/k/1?versionId=v1"] and "version of" in v.reason


def test_delete_object_key_from_resources_and_unnamed(ev: Ev, run) -> None:
    res = [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::b/deep/key.txt"}]
    a = run("s3-objects-deleted-in-bulk", ev("DeleteObject", {"bucketName": "b"}, source=S3, resources=res))
    assert a.params[ITEMS_PARAM] == ["b/deep/key.txt"]
    b = run("s3-objects-deleted-in-bulk", ev("DeleteObject", None, source=S3))
    assert b.risky and b.params[ITEMS_PARAM][0].startswith("unnamed:")


def test_delete_object_by_s3_itself_is_not_counted(ev: Ev, run) -> None:
    e = ev("DeleteObject", {"bucketName": "b", "key": "k"}, source=S3, identity=SERVICE)
    assert not run("s3-objects-deleted-in-bulk", e).risky


# ------------------------------------------------------------------ credential files
@pytest.mark.parametrize(
    ("key", "risky"),
    [("home/a/.aws/credentials", True), (".aws/credentials", True), ("x/id_rsa", True), ("id_ed25519", True),
     ("app/.env", True), ("app/.env.production", True), ("certs/server.PEM", True), ("k/putty.ppk", True),
     ("x/.docker/config.json", True), ("x/.kube/config", True), ("x/.git-credentials", True),
     ("home/a/.aws%2Fcredentials", True), ("x/ID_RSA", True),
     ("x/id_rsa.pub", False), ("x/credentials", False), ("app/config.json", False), ("docs/.envrc.md", False),
     ("state/terraform.tfstate", False), ("", False), ("x/.env/readme.md", False)],
)  # fmt: skip
def test_credential_file_names(ev: Ev, run, key: str, risky: bool) -> None:
    a = run("s3-credential-file-read", ev("GetObject", {"bucketName": "b", "key": key}, source=S3))
    assert a.risky is risky, a.reason
    if risky:
        assert a.resource == {"type": "AWS::S3::Object", "id": f"b/{key}"} and not a.remediable


def test_credential_read_by_a_service_is_quiet(ev: Ev, run) -> None:
    e = ev("GetObject", {"bucketName": "b", "key": "x/id_rsa"}, source=S3, identity=SERVICE)
    assert not run("s3-credential-file-read", e).risky


# ------------------------------------------------------------------ ransom notes
@pytest.mark.parametrize(
    ("key", "risky"),
    [("HOW_TO_DECRYPT.txt", True), ("a/b/ransom.html", True), ("README-recover-files.txt", True),
     ("YOUR_FILES_ARE_ENCRYPTED.txt", True), ("unlock-instructions.md", True), ("Re-Cover_FILES.TXT", True),
     ("HOW%20TO%20DECRYPT.txt", True),
     ("README.md", False), ("restore-procedure.pdf", False), ("decrypt.py", False), ("invoices/inv-1.pdf", False),
     ("howto/guide.md", False), ("", False)],
)  # fmt: skip
def test_ransom_note_names(ev: Ev, run, key: str, risky: bool) -> None:
    assert run("s3-ransom-note-uploaded", ev("PutObject", {"bucketName": "b", "key": key}, source=S3)).risky is risky


def test_ransom_note_only_in_the_last_segment(ev: Ev, run) -> None:
    """A folder named like a note (a security team's 'ransomware-drills/') does not make its files notes."""
    e = ev("PutObject", {"bucketName": "b", "key": "ransomware-drills/report.pdf"}, source=S3)
    assert not run("s3-ransom-note-uploaded", e).risky


# ------------------------------------------------------------------ RDS copies
SRC = f"arn:aws:rds:us-east-1:{ACCOUNT}:snapshot:orders"


def copy(ev: Ev, region: str = "us-east-1", cluster: bool = False, **req: Any) -> CloudTrailEvent:
    name = "CopyDBClusterSnapshot" if cluster else "CopyDBSnapshot"
    e = ev(name, req, source=RDS, awsRegion=region)
    env = dict(e.envelope)
    env["region"] = region
    return CloudTrailEvent(env)


@pytest.mark.parametrize(
    ("region", "req", "cfg", "risky"),
    [
        ("eu-west-1", {"sourceDBSnapshotIdentifier": SRC}, RuntimeConfig(), True),
        ("us-east-1", {"sourceDBSnapshotIdentifier": SRC}, RuntimeConfig(), False),
        ("us-east-1", {"sourceDBSnapshotIdentifier": "orders", "sourceRegion": "us-west-2"}, RuntimeConfig(), True),
        ("us-east-1", {"sourceDBSnapshotIdentifier": "orders", "kmsKeyId": f"arn:aws:kms:us-east-1:{OTHER}:key/k"},
         RuntimeConfig(), True),
        ("us-east-1", {"sourceDBSnapshotIdentifier": "orders", "kmsKeyId": f"arn:aws:kms:us-east-1:{OTHER}:key/k"},
         TRUSTED_CFG, False),
        ("us-east-1", {"sourceDBSnapshotIdentifier": "orders", "kmsKeyId": f"arn:aws:kms:us-east-1:{ORG}:key/k"},
         ORG_CFG, False),
        ("us-east-1", {"sourceDBSnapshotIdentifier": "orders", "kmsKeyId": f"arn:aws:kms:us-east-1:{ORG}:key/k"},
         RuntimeConfig(), True),
        ("us-east-1", {"sourceDBSnapshotIdentifier": "orders", "kmsKeyId": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"},
         RuntimeConfig(), False),
        ("us-east-1", {"sourceDBSnapshotIdentifier": "orders", "kmsKeyId": "alias/rds"}, RuntimeConfig(), False),
        # a shared snapshot of another account copied in: data comes in, not out
        ("us-east-1", {"sourceDBSnapshotIdentifier": f"arn:aws:rds:us-east-1:{OTHER}:snapshot:x"}, RuntimeConfig(),
         False),
    ],
)  # fmt: skip
def test_rds_copy(ev: Ev, run, region: str, req: dict, cfg: RuntimeConfig, risky: bool) -> None:  # noqa: PLR0917
    a = run("rds-snapshot-copied-out", copy(ev, region, **req), cfg)
    assert a.risky is risky, a.reason
    assert not (a.risky and a.remediable)


def test_rds_cluster_copy_and_case_of_field_names(ev: Ev, run) -> None:
    arn = f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster-snapshot:ledger"
    a = run("rds-snapshot-copied-out", copy(ev, "us-west-2", cluster=True, SourceDBClusterSnapshotIdentifier=arn))
    assert a.risky and a.resource["type"] == "AWS::RDS::DBClusterSnapshot" and "us-west-2" in a.reason


# ------------------------------------------------------------------ SQS purge
@pytest.mark.parametrize(
    ("queue", "risky"),
    [(f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/orders-dlq", True),
     (f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/Orders-DeadLetter.fifo", True),
     (f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/orders_dead_letter", True),
     (f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/trailguard-digests", True),
     (f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs-DLQ", True), ("jobs-dlq", True),
     (f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/orders-ingest", False), ("", False), (None, False)],
)  # fmt: skip
def test_sqs_purge(ev: Ev, run, queue: Any, risky: bool) -> None:
    assert run("sqs-dead-letter-queue-purged", ev("PurgeQueue", {"queueUrl": queue}, source=SQS)).risky is risky


# ------------------------------------------------------------------ EBS snapshot access removed
def snap_remove(ev: Ev, *ids: str, flat: bool = False) -> CloudTrailEvent:
    items = {"items": [{"userId": i} for i in ids]}
    if flat:
        return ev("ModifySnapshotAttribute", {"snapshotId": "snap-1", "operationType": "remove", "userIds": items})
    return ev("ModifySnapshotAttribute", {"snapshotId": "snap-1", "createVolumePermission": {"remove": items}})


@pytest.mark.parametrize(
    ("ids", "cfg", "risky"),
    [((ORG,), ORG_CFG, True), ((OTHER,), ORG_CFG, False), ((OTHER,), TRUSTED_CFG, True), ((OTHER,), RuntimeConfig(), True),
     ((ACCOUNT,), RuntimeConfig(), False), ((ACCOUNT, ORG), ORG_CFG, True), ((), RuntimeConfig(), False)],
)  # fmt: skip
def test_snapshot_access_removed(ev: Ev, run, ids: tuple[str, ...], cfg: RuntimeConfig, risky: bool) -> None:
    for flat in (False, True):
        a = run("ebs-snapshot-recovery-access-removed", snap_remove(ev, *ids, flat=flat), cfg)
        assert a.risky is risky, a.reason


def test_snapshot_made_private_is_quiet(ev: Ev, run) -> None:
    e = ev(
        "ModifySnapshotAttribute",
        {"snapshotId": "snap-1", "createVolumePermission": {"remove": {"items": [{"group": "all"}]}}},
    )
    assert not run("ebs-snapshot-recovery-access-removed", e).risky
    add = ev(
        "ModifySnapshotAttribute",
        {"snapshotId": "snap-1", "createVolumePermission": {"add": {"items": [{"userId": ORG}]}}},
    )
    assert not run("ebs-snapshot-recovery-access-removed", add, ORG_CFG).risky


# ------------------------------------------------------------------ SNS subscriptions
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:orders"
TG_TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:TrailguardDetection-AlertTopic1"


@pytest.mark.parametrize(
    ("topic", "protocol", "who", "risky"),
    [(TOPIC, "email", USER, True), (TOPIC, "https", USER, True), (TOPIC, "SMS", USER, True),
     (TOPIC, "https", APP, False), (TG_TOPIC, "https", APP, True), (TG_TOPIC, "Email-Json", APP, True),
     (TOPIC, "sqs", USER, False), (TG_TOPIC, "lambda", APP, False), (TOPIC, None, USER, False)],
)  # fmt: skip
def test_sns_subscription(ev: Ev, run, topic: str, protocol: Any, who: dict, risky: bool) -> None:  # noqa: PLR0917
    req = {"topicArn": topic, "protocol": protocol, "endpoint": "drop@example.net"}
    assert run("sns-external-subscription", ev("Subscribe", req, source=SNS, identity=who)).risky is risky


# ------------------------------------------------------------------ S3 default encryption key
def encryption(ev: Ev, *keys: Any, algo: str = "aws:kms") -> CloudTrailEvent:
    rules = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algo, "KMSMasterKeyID": k}} for k in keys]
    body = {"Rule": rules if len(rules) != 1 else rules[0]}
    return ev("PutBucketEncryption", {"bucketName": "b", "ServerSideEncryptionConfiguration": body}, source=S3)


@pytest.mark.parametrize(
    ("keys", "cfg", "risky"),
    [((f"arn:aws:kms:us-east-1:{OTHER}:key/k",), RuntimeConfig(), True),
     ((f"arn:aws:kms:us-east-1:{OTHER}:key/k",), TRUSTED_CFG, False),
     ((f"arn:aws:kms:us-east-1:{ORG}:alias/a",), ORG_CFG, False),
     ((f"arn:aws:kms:us-east-1:{ORG}:alias/a",), RuntimeConfig(), True),
     ((f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k",), RuntimeConfig(), False),
     (("1234abcd-12ab-34cd-56ef-1234567890ab",), RuntimeConfig(), False), (("alias/aws/s3",), RuntimeConfig(), False),
     ((f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k", f"arn:aws:kms:us-east-1:{OTHER}:key/k"), RuntimeConfig(), True),
     (("arn:aws:kms:us-east-1:11112222333:key/k",), RuntimeConfig(), True), (("arn:bogus",), RuntimeConfig(), True),
     ((None,), RuntimeConfig(), False), ((7,), RuntimeConfig(), False)],
)  # fmt: skip
def test_default_encryption_key(ev: Ev, run, keys: tuple[Any, ...], cfg: RuntimeConfig, risky: bool) -> None:
    a = run("s3-default-encryption-external-kms-key", encryption(ev, *keys), cfg)
    assert a.risky is risky, a.reason
    assert not (a.risky and a.remediable)
