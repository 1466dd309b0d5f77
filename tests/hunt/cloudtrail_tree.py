"""A small generated CloudTrail log tree with known events, for the hunt and query tests.

Layout as CloudTrail writes it: standalone ``AWSLogs/<account>/CloudTrail/<region>/yyyy/mm/dd/``
and organization ``AWSLogs/<orgId>/<account>/CloudTrail/<region>/yyyy/mm/dd/``, gzip
``{"Records": [...]}`` files, plus one JSON Lines file of bare records and a digest
file that must be ignored.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

STANDALONE = "111111111111"
MEMBER = "222222222222"
ORG_ID = "o-exampleorg1"
CLI = "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.amzn.2023 prompt/off command/x"
BOTO = "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.6"


def iam_user(name: str, account: str = STANDALONE, key: str | None = None) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": f"AIDA{name.upper():0<16}"[:21],
        "arn": f"arn:aws:iam::{account}:user/{name}",
        "accountId": account,
        "accessKeyId": key or f"AKIA{name.upper():X<16}"[:20],
        "userName": name,
    }


def root(account: str = STANDALONE, **extra: Any) -> dict[str, Any]:
    return {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root", "accountId": account} | extra


def assumed_role(role: str, session: str, account: str = STANDALONE) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLESESSION01",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLE",
                "arn": f"arn:aws:iam::{account}:role/{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {"creationDate": "2024-05-01T08:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def rec(
    event_id: str,
    name: str,
    source: str,
    identity: dict[str, Any],
    time: str,
    *,
    region: str = "us-east-1",
    account: str | None = None,
    ip: str = "198.51.100.10",
    agent: str = CLI,
    params: Any = None,
    response: Any = None,
    extra: Any = None,
    error: tuple[str, str] | None = None,
    read_only: bool = False,
    event_type: str = "AwsApiCall",
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": time,
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": agent,
        "requestParameters": params,
        "responseElements": response,
        "requestID": f"req-{event_id}",
        "eventID": event_id,
        "readOnly": read_only,
        "eventType": event_type,
        "managementEvent": True,
        "recipientAccountId": account or identity.get("accountId", STANDALONE),
        "eventCategory": "Management",
    }
    if extra is not None:
        r["additionalEventData"] = extra
    if error is not None:
        r["errorCode"], r["errorMessage"] = error
    return r


def login(event_id: str, identity: dict[str, Any], time: str, *, mfa: str, ok: bool = True, ip: str = "198.51.100.20"):
    return rec(
        event_id, "ConsoleLogin", "signin.amazonaws.com", identity, time, ip=ip,
        agent="Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/125.0",
        response={"ConsoleLogin": "Success" if ok else "Failure"},
        extra={"LoginTo": "https://console.aws.amazon.com/", "MobileVersion": "No", "MFAUsed": mfa},
        error=None if ok else ("", "Failed authentication"),
        event_type="AwsConsoleSignIn",
    )  # fmt: skip


ALICE = iam_user("alice", key="AKIAALICEEXAMPLE0001")
BOB = iam_user("bob")
CAROL = iam_user("carol")
MALLORY = iam_user("mallory", key="AKIAMALLORYEXAMPLE01")
EVE = {"type": "IAMUser", "accountId": STANDALONE, "principalId": STANDALONE, "userName": "eve"}
CI_ROLE = assumed_role("ci-deployer", "build-42")
MEMBER_ADMIN = assumed_role("OrgAdmin", "ops", account=MEMBER)


def events() -> list[dict[str, Any]]:
    """Every generated record (each eventID names what it is)."""
    d1, d2 = "2024-05-01", "2024-05-02"
    evs = [
        # --- logging tampering
        rec("ev-stop-logging", "StopLogging", "cloudtrail.amazonaws.com", ALICE, f"{d1}T10:00:00Z",
            params={"name": "arn:aws:cloudtrail:us-east-1:111111111111:trail/trailguard"}),
        rec("ev-update-trail", "UpdateTrail", "cloudtrail.amazonaws.com", BOB, f"{d2}T09:00:00Z",
            params={"name": "trailguard", "isMultiRegionTrail": False}),
        rec("ev-describe-trails", "DescribeTrails", "cloudtrail.amazonaws.com", ALICE, f"{d1}T09:59:00Z",
            read_only=True),
        # --- root
        login("ev-root-login-nomfa", root(), f"{d1}T07:00:00Z", mfa="No"),
        rec("ev-root-list-buckets", "ListBuckets", "s3.amazonaws.com", root(), f"{d1}T07:05:00Z", read_only=True),
        rec("ev-root-invoked-by-service", "Decrypt", "kms.amazonaws.com",
            root(invokedBy="cloudtrail.amazonaws.com"), f"{d1}T07:06:00Z", read_only=True),
        rec("ev-root-service-event", "CredentialChange", "iam.amazonaws.com", root(), f"{d1}T07:07:00Z",
            event_type="AwsServiceEvent"),
        # --- console logins
        login("ev-carol-login-nomfa", CAROL, f"{d1}T08:00:00Z", mfa="No"),
        login("ev-bob-login-mfa", BOB, f"{d1}T08:01:00Z", mfa="Yes"),
        login("ev-sso-login", CI_ROLE, f"{d1}T08:02:00Z", mfa="No"),
        login("ev-eve-fail-1", EVE, f"{d1}T08:10:00Z", mfa="No", ok=False, ip="203.0.113.99"),
        login("ev-eve-fail-2", EVE, f"{d1}T08:11:00Z", mfa="No", ok=False, ip="203.0.113.99"),
        login("ev-eve-fail-3", EVE, f"{d1}T08:12:00Z", mfa="No", ok=False, ip="203.0.113.99"),
        # --- alice in and out of the window; one via JSON Lines below
        rec("ev-alice-early", "ListUsers", "iam.amazonaws.com", ALICE, "2024-04-30T23:00:00Z", read_only=True),
        rec("ev-alice-getcaller", "GetCallerIdentity", "sts.amazonaws.com", ALICE, f"{d1}T09:00:00Z",
            read_only=True),
        # --- access denied storm by mallory (12) and a single denial by bob
        *[
            rec(f"ev-mallory-denied-{i:02d}", action, svc, MALLORY, f"{d1}T11:{i:02d}:00Z",
                ip="203.0.113.66", agent=BOTO, error=("AccessDenied", "not authorized"), read_only=True)
            for i, (action, svc) in enumerate(
                [("ListBuckets", "s3.amazonaws.com"), ("ListUsers", "iam.amazonaws.com"),
                 ("DescribeInstances", "ec2.amazonaws.com"), ("ListKeys", "kms.amazonaws.com")] * 3
            )
        ],
        rec("ev-bob-denied", "GetBucketPolicy", "s3.amazonaws.com", BOB, f"{d1}T11:30:00Z",
            error=("AccessDenied", "denied"), read_only=True),
        # --- public exposure
        rec("ev-put-bucket-acl", "PutBucketAcl", "s3.amazonaws.com", CI_ROLE, f"{d1}T12:00:00Z",
            params={"bucketName": "data-bucket", "x-amz-acl": ["public-read"]}),
        rec("ev-put-bucket-policy-failed", "PutBucketPolicy", "s3.amazonaws.com", MALLORY, f"{d1}T12:01:00Z",
            params={"bucketName": "data-bucket"}, error=("AccessDenied", "denied")),
        rec("ev-snapshot-public", "ModifySnapshotAttribute", "ec2.amazonaws.com", CI_ROLE, f"{d1}T12:02:00Z",
            params={"snapshotId": "snap-0123456789abcdef0", "attributeType": "CREATE_VOLUME_PERMISSION",
                    "createVolumePermission": {"add": {"items": [{"group": "all"}]}}}),
        rec("ev-sg-open-ssh", "AuthorizeSecurityGroupIngress", "ec2.amazonaws.com", ALICE, f"{d1}T12:03:00Z",
            params={"groupId": "sg-0aaa", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22,
                    "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}),
        rec("ev-sg-private", "AuthorizeSecurityGroupIngress", "ec2.amazonaws.com", ALICE, f"{d1}T12:04:00Z",
            params={"groupId": "sg-0bbb", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 5432,
                    "toPort": 5432, "ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}}]}}),
        # --- IAM
        rec("ev-attach-admin", "AttachUserPolicy", "iam.amazonaws.com", ALICE, f"{d1}T13:00:00Z",
            params={"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
        rec("ev-create-key-for-bob", "CreateAccessKey", "iam.amazonaws.com", ALICE, f"{d1}T13:01:00Z",
            params={"userName": "bob"},
            response={"accessKey": {"userName": "bob", "accessKeyId": "AKIANEWKEYFORBOB0001", "status": "Active"}}),
        rec("ev-deactivate-mfa", "DeactivateMFADevice", "iam.amazonaws.com", ALICE, f"{d1}T13:02:00Z",
            params={"userName": "carol", "serialNumber": "arn:aws:iam::111111111111:mfa/carol"}),
        # --- KMS
        rec("ev-schedule-key-deletion", "ScheduleKeyDeletion", "kms.amazonaws.com", MALLORY, f"{d1}T14:00:00Z",
            params={"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "pendingWindowInDays": 7}, agent=BOTO),
        # --- user agents
        rec("ev-kali", "ListBuckets", "s3.amazonaws.com", MALLORY, f"{d1}T15:00:00Z", read_only=True,
            agent="aws-cli/1.22.34 Python/3.9.11 Linux/5.15.0-kali3-amd64 botocore/1.24.0"),
        rec("ev-python-requests", "GetCallerIdentity", "sts.amazonaws.com", MALLORY, f"{d1}T15:01:00Z",
            read_only=True, agent="python-requests/2.31.0"),
        # --- detective controls
        rec("ev-gd-delete", "DeleteDetector", "guardduty.amazonaws.com", MALLORY, f"{d1}T16:00:00Z",
            params={"detectorId": "12abc34d567e8fa901bc2d34e56789f0"}),
        rec("ev-gd-disable", "UpdateDetector", "guardduty.amazonaws.com", MALLORY, f"{d1}T16:01:00Z",
            params={"detectorId": "12abc", "enable": False}),
        rec("ev-gd-enable", "UpdateDetector", "guardduty.amazonaws.com", ALICE, f"{d1}T16:02:00Z",
            params={"detectorId": "12abc", "enable": True}),
        rec("ev-config-stop", "StopConfigurationRecorder", "config.amazonaws.com", MALLORY, f"{d1}T16:03:00Z",
            params={"configurationRecorderName": "default"}),
        rec("ev-securityhub-off", "DisableSecurityHub", "securityhub.amazonaws.com", MALLORY, f"{d1}T16:04:00Z"),
        # --- organization member (org-trail layout, other region and day)
        rec("ev-member-leave-org", "LeaveOrganization", "organizations.amazonaws.com", MEMBER_ADMIN,
            f"{d2}T10:00:00Z", region="us-east-1"),
        rec("ev-member-eu", "RunInstances", "ec2.amazonaws.com", MEMBER_ADMIN, f"{d2}T10:05:00Z",
            region="eu-west-1", agent=BOTO),
    ]  # fmt: skip
    return evs


JSONL_EVENTS = [
    rec("ev-jsonl-alice", "ListRoles", "iam.amazonaws.com", ALICE, "2024-05-01T09:30:00Z", read_only=True),
]


def _day_dir(base: Path, r: dict[str, Any]) -> Path:
    account = r["recipientAccountId"]
    y, m, d = r["eventTime"][:10].split("-")
    prefix = base / "AWSLogs" / (f"{ORG_ID}/{account}" if account == MEMBER else account)
    return prefix / "CloudTrail" / r["awsRegion"] / y / m / d


def write_tree(base: Path) -> Path:
    """Write the log tree under ``base`` and return ``base``."""
    groups: dict[Path, list[dict[str, Any]]] = defaultdict(list)
    for r in events():
        groups[_day_dir(base, r)].append(r)
    for i, (folder, recs) in enumerate(sorted(groups.items())):
        folder.mkdir(parents=True, exist_ok=True)
        account = recs[0]["recipientAccountId"]
        region = recs[0]["awsRegion"]
        half = max(1, len(recs) // 2)  # two files per folder, like real delivery
        for j, chunk in enumerate((recs[:half], recs[half:])):
            if not chunk:
                continue
            name = f"{account}_CloudTrail_{region}_{folder.name}T{i:02d}{j}0Z_abc{i}{j}.json.gz"
            with gzip.open(folder / name, "wt", encoding="utf-8") as fh:
                json.dump({"Records": chunk}, fh)
    digest = base / "AWSLogs" / STANDALONE / "CloudTrail-Digest" / "us-east-1" / "2024" / "05" / "01"
    digest.mkdir(parents=True)
    with gzip.open(digest / f"{STANDALONE}_CloudTrail-Digest_us-east-1_x.json.gz", "wt") as fh:
        json.dump({"awsAccountId": STANDALONE, "digestStartTime": "2024-05-01T00:00:00Z", "logFiles": []}, fh)
    extra = base / "exports"
    extra.mkdir()
    (extra / "bare.jsonl").write_text("".join(json.dumps(r) + "\n" for r in JSONL_EVENTS), encoding="utf-8")
    return base
