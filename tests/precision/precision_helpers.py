"""The benign precision set: loading, placeholders, the live state each scenario implies, and counting.

Each ``benign/<scenario>.json`` holds CloudTrail records (EventBridge envelopes) that IaC pipelines, AWS
services or Identity Center really send, plus the live resources they act on (``setup``). IDs that AWS
would generate (security groups, VPCs, AMIs, snapshots, KMS keys) are written as placeholders,
``{{sg:wireguard}}``; the engine run resolves them to the IDs moto generated, the replay run to fixed
look-alike IDs. ``{{sgr:<sg ref>:<proto>:<port>:<cidr>}}`` names one rule of a set-up group.

``benign_config.yaml`` is the operator config the scenarios imply (callers, intended exposure); it
goes through ``trailguard.config`` exactly as a deployment's does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
BENIGN_DIR = HERE / "benign"
CONFIG_PATH = HERE / "benign_config.yaml"
MEMBER = "111122223333"
REGION = "us-east-1"

#: trailguard's own trail as the detection stack writes it into the runtime document. In this fixture
#: the trail, its archive bucket, key and log group live in the member account (``cdk-redeploy-...``).
TRAILGUARD_TRAIL = {
    "arn": f"arn:aws:cloudtrail:{REGION}:{MEMBER}:trail/trailguard",
    "bucket": f"trailguard-archive-{MEMBER}-{REGION}",
    "kms_key": f"arn:aws:kms:{REGION}:{MEMBER}:alias/trailguard-trail",
    "log_group": "/trailguard/cloudtrail/trailguard",
}

_PLACEHOLDER = re.compile(r"\{\{([a-z]+):([^}]+)\}\}")
#: Calls that only read: anything else the engine makes in a member account is a write.
_READ_PREFIXES = ("Get", "Describe", "List", "Head", "Lookup", "Search", "Check", "Simulate")


@dataclass(frozen=True)
class Scenario:
    id: str
    caller: str
    description: str
    replay_knows: bool
    replay_note: str
    setup: tuple[dict[str, Any], ...]
    records: tuple[dict[str, Any], ...]


def load_scenarios() -> list[Scenario]:
    out = []
    for path in sorted(BENIGN_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        assert doc["scenario"] == path.stem, f"{path.name}: scenario id must match the file name"
        out.append(
            Scenario(
                id=doc["scenario"],
                caller=doc["caller"],
                description=doc["description"],
                replay_knows=bool(doc.get("replay_knows", True)),
                replay_note=doc.get("replay_note", ""),
                setup=tuple(doc.get("setup", [])),
                records=tuple(doc["records"]),
            )
        )
    return out


def records(scenarios: list[Scenario]) -> Iterator[tuple[Scenario, int, dict[str, Any]]]:
    for s in scenarios:
        for i, r in enumerate(s.records):
            yield s, i, r


# --------------------------------------------------------------------------- #
# Placeholders
# --------------------------------------------------------------------------- #


def resolve(obj: Any, ids: Mapping[str, str]) -> Any:
    """``obj`` with every ``{{kind:ref}}`` replaced from ``ids`` (keys ``kind:ref``); unknown ones raise."""
    if isinstance(obj, str):

        def sub(m: re.Match[str]) -> str:
            key = f"{m.group(1)}:{m.group(2)}"
            if key not in ids:
                raise KeyError(f"unresolved placeholder {{{{{key}}}}}")
            return ids[key]

        return _PLACEHOLDER.sub(sub, obj)
    if isinstance(obj, Mapping):
        return {resolve(k, ids): resolve(v, ids) for k, v in obj.items()}
    if isinstance(obj, list):
        return [resolve(v, ids) for v in obj]
    return obj


def replace_literals(obj: Any, mapping: Mapping[str, str]) -> Any:
    """``obj`` with every string equal to a key of ``mapping`` (or containing one) rewritten."""
    if isinstance(obj, str):
        for old, new in mapping.items():
            obj = obj.replace(old, new)
        return obj
    if isinstance(obj, Mapping):
        return {k: replace_literals(v, mapping) for k, v in obj.items()}
    if isinstance(obj, list):
        return [replace_literals(v, mapping) for v in obj]
    return obj


def placeholders(obj: Any) -> set[str]:
    found: set[str] = set()
    text = json.dumps(obj)
    for m in _PLACEHOLDER.finditer(text):
        found.add(f"{m.group(1)}:{m.group(2)}")
    return found


def _hex(key: str, n: int) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:n]


def fake_ids(keys: set[str]) -> dict[str, str]:
    """Fixed look-alike IDs for the replay run (no AWS)."""
    out = {}
    for key in keys:
        kind = key.split(":", 1)[0]
        h = _hex(key, 17)
        if kind == "kms":
            u = _hex(key, 32)
            out[key] = f"arn:aws:kms:{REGION}:{MEMBER}:key/{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
        elif kind in ("sg", "vpc", "ami", "snap", "sgr"):
            out[key] = f"{kind}-{h}"
        else:
            raise KeyError(f"no fake ID for placeholder kind {kind!r}")
    return out


# --------------------------------------------------------------------------- #
# Config
# --------------------------------------------------------------------------- #


def config_data() -> dict[str, Any]:
    data = yaml.safe_load(CONFIG_PATH.read_text())
    assert isinstance(data, dict)
    return data


def runtime_document(ids: Mapping[str, str]) -> dict[str, Any]:
    """The runtime document a deployment of ``benign_config.yaml`` writes (placeholders resolved)."""
    from trailguard.config import parse_config

    cfg = parse_config(resolve(config_data(), ids), str(CONFIG_PATH))
    doc = cfg.runtime_document()
    doc["trailguard_trail"] = dict(TRAILGUARD_TRAIL)  # what stacks/detection.py adds
    return doc


# --------------------------------------------------------------------------- #
# Live state (moto), through a client factory acting in the member account
# --------------------------------------------------------------------------- #

Client = Callable[[str], Any]


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    # aws:* tags (aws:cloudformation:stack-name) are written by AWS itself; callers may not set them.
    return [{"Key": k, "Value": v} for k, v in tags.items() if not k.startswith("aws:")]


def _bpa(settings: list[bool]) -> dict[str, bool]:
    names = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    return dict(zip(names, settings, strict=True))


def _trust(step: Mapping[str, Any]) -> str:
    if "federated" in step:
        principal: dict[str, str] = {"Federated": step["federated"]}
        action = ["sts:AssumeRoleWithSAML", "sts:TagSession"]
    else:
        principal = {"Service": step.get("service", "lambda.amazonaws.com")}
        action = ["sts:AssumeRole"]
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": principal, "Action": action}]}
    )


@dataclass
class LiveWorld:
    """Creates each scenario's resources in the member account and snapshots their state."""

    client: Client
    ids: dict[str, str] = field(default_factory=dict)
    #: (kind, ref or name) of everything created, for the before/after comparison.
    resources: list[tuple[str, str]] = field(default_factory=list)

    def setup(self, scenarios: list[Scenario]) -> None:
        # Plain resources first (VPCs, buckets, keys, roles), trails and stacks after what they use.
        order = {"vpc": 0, "account_public_access_block": 0, "kms_key": 1, "log_group": 1, "role": 1, "bucket": 1}
        steps = [st for s in scenarios for st in s.setup]
        for step in sorted(steps, key=lambda st: order.get(st["kind"], 2)):
            getattr(self, f"_setup_{step['kind']}")(resolve(step, self.ids) if step["kind"] != "vpc" else step)

    # -- setup steps ------------------------------------------------------ #
    def _setup_vpc(self, st: dict[str, Any]) -> None:
        vpc = self.client("ec2").create_vpc(CidrBlock=st["cidr"])["Vpc"]["VpcId"]
        self.ids[f"vpc:{st['ref']}"] = vpc

    def _setup_security_group(self, st: dict[str, Any]) -> None:
        ec2 = self.client("ec2")
        vpc = self.ids[f"vpc:{st['vpc']}"]
        gid = ec2.create_security_group(GroupName=st["name"], Description=st["name"], VpcId=vpc)["GroupId"]
        self.ids[f"sg:{st['ref']}"] = gid
        if st.get("tags"):
            ec2.create_tags(Resources=[gid], Tags=_tags(st["tags"]))
        for rule in st.get("ingress", []):
            rng = (
                {"Ipv6Ranges": [{"CidrIpv6": rule["cidr"]}]}
                if ":" in rule["cidr"]
                else {"IpRanges": [{"CidrIp": rule["cidr"]}]}
            )
            ports = {} if rule["proto"] == "-1" else {"FromPort": rule["from"], "ToPort": rule["to"]}
            ec2.authorize_security_group_ingress(
                GroupId=gid, IpPermissions=[{"IpProtocol": rule["proto"], **ports, **rng}]
            )
        for r in self._sg_rules(gid):
            if not r.get("IsEgress"):
                cidr = r.get("CidrIpv4") or r.get("CidrIpv6")
                self.ids[f"sgr:{st['ref']}:{r['IpProtocol']}:{r['FromPort']}:{cidr}"] = r["SecurityGroupRuleId"]
        self.resources.append(("sg", gid))

    def _sg_rules(self, gid: str) -> list[dict[str, Any]]:
        resp = self.client("ec2").describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])
        return list(resp["SecurityGroupRules"])

    def _setup_account_public_access_block(self, st: dict[str, Any]) -> None:
        self.client("s3control").put_public_access_block(
            AccountId=MEMBER, PublicAccessBlockConfiguration=_bpa(st["settings"])
        )
        self.resources.append(("account_bpa", MEMBER))

    def _setup_bucket(self, st: dict[str, Any]) -> None:
        s3 = self.client("s3")
        name = st["name"]
        s3.create_bucket(Bucket=name)
        if st.get("tags"):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(st["tags"])})
        if st.get("website"):
            s3.put_bucket_website(
                Bucket=name,
                WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "404.html"}},
            )
        if st.get("public_access_block"):
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=_bpa(st["public_access_block"]))
        if st.get("policy"):
            s3.put_bucket_policy(Bucket=name, Policy=json.dumps(st["policy"]))
        if st.get("trail_bucket"):
            s3.put_bucket_policy(Bucket=name, Policy=json.dumps(_trail_bucket_policy(name)))
        if st.get("acl"):
            s3.put_bucket_acl(Bucket=name, ACL=st["acl"])
        self.resources.append(("bucket", name))

    def _setup_kms_key(self, st: dict[str, Any]) -> None:
        kms = self.client("kms")
        meta = kms.create_key(Description=st["ref"])["KeyMetadata"]
        arn = meta["Arn"]
        self.ids[f"kms:{st['ref']}"] = arn
        if st.get("alias"):
            kms.create_alias(AliasName=st["alias"], TargetKeyId=arn)
        if st.get("pending_deletion"):
            kms.schedule_key_deletion(KeyId=meta["KeyId"], PendingWindowInDays=30)  # moto wants the bare ID here
        self.resources.append(("kms", arn))

    def _setup_log_group(self, st: dict[str, Any]) -> None:
        self.client("logs").create_log_group(logGroupName=st["name"])

    def _setup_role(self, st: dict[str, Any]) -> None:
        iam = self.client("iam")
        iam.create_role(RoleName=st["name"], Path=st.get("path", "/"), AssumeRolePolicyDocument=_trust(st))
        for arn in st.get("attached", []):
            iam.attach_role_policy(RoleName=st["name"], PolicyArn=arn)
        self.resources.append(("role", st["name"]))

    def _setup_trail(self, st: dict[str, Any]) -> None:
        ct = self.client("cloudtrail")
        kwargs: dict[str, Any] = {
            "Name": st["name"],
            "S3BucketName": st["bucket"],
            "IsMultiRegionTrail": st.get("multi_region", False),
            "EnableLogFileValidation": st.get("log_validation", False),
            "IncludeGlobalServiceEvents": st.get("global_events", True),
        }
        if st.get("kms_key"):
            kwargs["KmsKeyId"] = st["kms_key"]
        if st.get("log_group_arn"):
            kwargs["CloudWatchLogsLogGroupArn"] = st["log_group_arn"]
            kwargs["CloudWatchLogsRoleArn"] = st["log_role_arn"]
        ct.create_trail(**kwargs)
        if st.get("logging", True):
            ct.start_logging(Name=st["name"])
        self.resources.append(("trail", st["name"]))

    def _setup_stack(self, st: dict[str, Any]) -> None:
        template = {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}
        self.client("cloudformation").create_stack(StackName=st["name"], TemplateBody=json.dumps(template))

    def _setup_image(self, st: dict[str, Any]) -> None:
        ec2 = self.client("ec2")
        base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        inst = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
        ami = ec2.create_image(InstanceId=inst["InstanceId"], Name=st["name"])["ImageId"]
        self.ids[f"ami:{st['ref']}"] = ami
        lp = st.get("launch_permission", {})
        adds: list[dict[str, str]] = []
        if lp.get("Group"):
            adds.append({"Group": lp["Group"]})
        adds += [{"UserId": u} for u in lp.get("UserIds", [])]
        adds += [{"OrganizationArn": a} for a in lp.get("OrganizationArns", [])]
        adds += [{"OrganizationalUnitArn": a} for a in lp.get("OrganizationalUnitArns", [])]
        if adds:
            ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": adds})
        self.resources.append(("image", ami))

    def _setup_snapshot(self, st: dict[str, Any]) -> None:
        ec2 = self.client("ec2")
        vol = ec2.create_volume(Size=st.get("size", 8), AvailabilityZone=f"{REGION}a")["VolumeId"]
        snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
        self.ids[f"snap:{st['ref']}"] = snap
        if st.get("share_with"):
            ec2.modify_snapshot_attribute(
                SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=st["share_with"]
            )
        if st.get("public"):
            ec2.modify_snapshot_attribute(
                SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
            )
        self.resources.append(("snapshot", snap))

    def _setup_db_snapshot(self, st: dict[str, Any]) -> None:
        rds = self.client("rds")
        rds.create_db_instance(
            DBInstanceIdentifier=st["instance"],
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            MasterUsername="app",
            MasterUserPassword="not-a-secret-1",
            AllocatedStorage=20,
        )
        rds.create_db_snapshot(DBSnapshotIdentifier=st["snapshot"], DBInstanceIdentifier=st["instance"])
        if st.get("share_with"):
            rds.modify_db_snapshot_attribute(
                DBSnapshotIdentifier=st["snapshot"], AttributeName="restore", ValuesToAdd=st["share_with"]
            )
        self.resources.append(("db_snapshot", st["snapshot"]))

    def _setup_db_cluster_snapshot(self, st: dict[str, Any]) -> None:
        rds = self.client("rds")
        rds.create_db_cluster(
            DBClusterIdentifier=st["cluster"],
            Engine="aurora-postgresql",
            MasterUsername="app",
            MasterUserPassword="not-a-secret-1",
        )
        rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=st["snapshot"], DBClusterIdentifier=st["cluster"])
        if st.get("share_with"):
            rds.modify_db_cluster_snapshot_attribute(
                DBClusterSnapshotIdentifier=st["snapshot"], AttributeName="restore", ValuesToAdd=st["share_with"]
            )
        self.resources.append(("db_cluster_snapshot", st["snapshot"]))

    # -- state ------------------------------------------------------------ #
    def state(self) -> dict[str, Any]:
        """Everything a remediation could change on the set-up resources, JSON-comparable."""
        out: dict[str, Any] = {}
        for kind, ident in self.resources:
            out[f"{kind}:{ident}"] = getattr(self, f"_state_{kind}")(ident)
        return json.loads(json.dumps(out, default=str, sort_keys=True))

    def _state_sg(self, gid: str) -> Any:
        return sorted(
            (r["IpProtocol"], r.get("FromPort"), r.get("ToPort"), r.get("CidrIpv4") or r.get("CidrIpv6") or "")
            for r in self._sg_rules(gid)
            if not r.get("IsEgress")
        )

    def _state_account_bpa(self, account: str) -> Any:
        return self.client("s3control").get_public_access_block(AccountId=account)["PublicAccessBlockConfiguration"]

    def _state_bucket(self, name: str) -> Any:
        s3 = self.client("s3")
        out: dict[str, Any] = {}
        try:
            out["bpa"] = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        except s3.exceptions.ClientError:
            out["bpa"] = None
        try:
            out["policy"] = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
        except s3.exceptions.ClientError:
            out["policy"] = None
        out["acl"] = s3.get_bucket_acl(Bucket=name)["Grants"]
        return out

    def _state_kms(self, arn: str) -> Any:
        meta = self.client("kms").describe_key(KeyId=arn)["KeyMetadata"]
        return {"state": meta["KeyState"], "enabled": meta["Enabled"]}

    def _state_role(self, name: str) -> Any:
        iam = self.client("iam")
        return {
            "attached": sorted(
                p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            ),
            "inline": sorted(iam.list_role_policies(RoleName=name)["PolicyNames"]),
        }

    def _state_trail(self, name: str) -> Any:
        ct = self.client("cloudtrail")
        trail = ct.get_trail(Name=name)["Trail"]
        return {"trail": trail, "logging": ct.get_trail_status(Name=name)["IsLogging"]}

    def _state_image(self, ami: str) -> Any:
        attr = self.client("ec2").describe_image_attribute(ImageId=ami, Attribute="launchPermission")
        return sorted(json.dumps(p, sort_keys=True) for p in attr.get("LaunchPermissions", []))

    def _state_snapshot(self, snap: str) -> Any:
        attr = self.client("ec2").describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
        return sorted(json.dumps(p, sort_keys=True) for p in attr.get("CreateVolumePermissions", []))

    def _state_db_snapshot(self, ident: str) -> Any:
        res = self.client("rds").describe_db_snapshot_attributes(DBSnapshotIdentifier=ident)
        return res["DBSnapshotAttributesResult"]["DBSnapshotAttributes"]

    def _state_db_cluster_snapshot(self, ident: str) -> Any:
        res = self.client("rds").describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=ident)
        return res["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"]


def _trail_bucket_policy(bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AWSCloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": f"arn:aws:s3:::{bucket}",
            },
            {
                "Sid": "AWSCloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/{MEMBER}/*",
                "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
            },
        ],
    }


def is_write(operation: str) -> bool:
    return not operation.startswith(_READ_PREFIXES)


# --------------------------------------------------------------------------- #
# Outcomes
# --------------------------------------------------------------------------- #


@dataclass
class Row:
    """What one record got: the per-scenario table printed on failure."""

    scenario: str
    index: int
    event: str
    caller: str
    verdict: str = "none"
    alerts: int = 0
    notices: int = 0
    remediations: int = 0
    #: Change records (severity INFO findings): filed as INFORMATIONAL, never an alert.
    records: int = 0
    detail: list[str] = field(default_factory=list)

    def line(self) -> str:
        head = f"{self.scenario}[{self.index}] {self.event} ({self.caller})"
        counts = (
            f"verdict={self.verdict} remediations={self.remediations} alerts={self.alerts} notices={self.notices} "
            f"records={self.records}"
        )
        return f"{head:70} {counts}" + "".join(f"\n      {d}" for d in self.detail)


def table(rows: list[Row], title: str) -> str:
    n = len(rows)
    rem = sum(r.remediations for r in rows)
    alerts = sum(r.alerts for r in rows)
    notices = sum(r.notices for r in rows)
    share = 100.0 * alerts / max(n, 1)
    lines = [
        f"{title}: {n} records, {rem} remediations, {alerts} alerts ({share:.1f}%), {notices} low-severity notices"
    ]
    lines += [r.line() for r in rows if r.remediations or r.alerts or r.verdict != "none"]
    quiet = [r for r in rows if not (r.remediations or r.alerts or r.verdict != "none")]
    lines.append(
        f"({len(quiet)} records with no verdict: " + ", ".join(f"{r.scenario}[{r.index}]" for r in quiet) + ")"
    )
    return "\n".join(lines)


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every SNS message delivered to the test queue so far: subject, attributes and body."""
    out = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            env = json.loads(m["Body"])
            attrs = {k: v.get("Value") for k, v in env.get("MessageAttributes", {}).items()}
            out.append({"subject": env.get("Subject", ""), "attributes": attrs, "body": json.loads(env["Message"])})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def deepcopy(obj: Any) -> Any:
    return copy.deepcopy(obj)
