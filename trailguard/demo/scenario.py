"""The attack scenario: risky and benign changes made with real boto3 calls.

Each step makes its call against the emulator as the attacker, returns the
CloudTrail record AWS would write for it, and knows how to check the live
state afterwards for both outcomes: remediated, or left as is (alert only or
benign).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trailguard.demo.records import cloudtrail_record
from trailguard.demo.sandbox import Sandbox, client

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"

#: (ok, what was observed)
Check = tuple[bool, str]


@dataclass(frozen=True)
class Step:
    """One change. ``rule`` is the catalog rule that must catch it (None: benign)."""

    key: str
    title: str
    rule: str | None
    act: Callable[[Sandbox], dict[str, Any]]
    #: Live state when the change was undone (only for remediated steps).
    is_undone: Callable[[Sandbox], Check]
    #: Live state when the change is still in place (alert-only and benign steps).
    is_in_place: Callable[[Sandbox], Check]

    @property
    def benign(self) -> bool:
        return self.rule is None


def _record(sb: Sandbox, service: str, name: str, request: Any, response: Any, **kw: Any) -> dict[str, Any]:
    return cloudtrail_record(
        service=service,
        event_name=name,
        region=sb.region,
        caller=sb.attacker,
        request=request,
        response=response,
        event_time=datetime.now(UTC),
        **kw,
    )


def _s3_request(sb: Sandbox, bucket: str, **extra: Any) -> dict[str, Any]:
    return {"bucketName": bucket, "Host": f"{bucket}.s3.{sb.region}.amazonaws.com", **extra}


def _bucket_resource(sb: Sandbox, bucket: str) -> list[dict[str, Any]]:
    return [{"accountId": sb.account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]


# --------------------------------------------------------------------------- #
# CloudTrail: stop the trail
# --------------------------------------------------------------------------- #
def stop_logging(sb: Sandbox) -> dict[str, Any]:
    client("cloudtrail", region=sb.region, creds=sb.attacker_creds).stop_logging(Name=sb.trail_name)
    return _record(sb, "cloudtrail", "StopLogging", {"name": sb.trail_name}, None)


def trail_logging(sb: Sandbox) -> Check:
    on = bool(client("cloudtrail", region=sb.region).get_trail_status(Name=sb.trail_name)["IsLogging"])
    return on, f"trail {sb.trail_name} IsLogging={on}"


def trail_stopped(sb: Sandbox) -> Check:
    ok, text = trail_logging(sb)
    return not ok, text


# --------------------------------------------------------------------------- #
# EC2: security groups
# --------------------------------------------------------------------------- #
def _ip_permission_items(perms: list[dict[str, Any]]) -> dict[str, Any]:
    items = []
    for p in perms:
        items.append(
            {
                "ipProtocol": p["IpProtocol"],
                "fromPort": p["FromPort"],
                "toPort": p["ToPort"],
                "groups": {},
                "ipRanges": {"items": [{"cidrIp": r["CidrIp"]} for r in p.get("IpRanges", [])]},
                "ipv6Ranges": {},
                "prefixListIds": {},
            }
        )
    return {"items": items}


def _authorize(sb: Sandbox, group_id: str, perms: list[dict[str, Any]]) -> dict[str, Any]:
    resp = sb.attacker_client("ec2").authorize_security_group_ingress(GroupId=group_id, IpPermissions=perms)
    rule_set = [
        {
            "groupOwnerId": sb.account,
            "groupId": r["GroupId"],
            "securityGroupRuleId": r["SecurityGroupRuleId"],
            "isEgress": False,
            "ipProtocol": r["IpProtocol"],
            "fromPort": r["FromPort"],
            "toPort": r["ToPort"],
            "cidrIpv4": r["CidrIpv4"],
        }
        for r in resp.get("SecurityGroupRules", [])
    ]
    request = {"groupId": group_id, "ipPermissions": _ip_permission_items(perms)}
    response = {"requestId": resp["ResponseMetadata"]["RequestId"], "_return": True}
    if rule_set:
        response["securityGroupRuleSet"] = {"items": rule_set}
    return _record(sb, "ec2", "AuthorizeSecurityGroupIngress", request, response)


def _world(port: int) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


def open_ssh_and_https(sb: Sandbox) -> dict[str, Any]:
    return _authorize(sb, sb.web_sg, [_world(22), _world(443)])


def _ingress(sb: Sandbox, group_id: str) -> set[tuple[int, str]]:
    rules = client("ec2", region=sb.region).describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}]
    )["SecurityGroupRules"]
    return {(int(r.get("FromPort", -1)), r.get("CidrIpv4", "")) for r in rules if not r.get("IsEgress")}


def ssh_closed_https_kept(sb: Sandbox) -> Check:
    rules = _ingress(sb, sb.web_sg)
    ok = (22, "0.0.0.0/0") not in rules and (443, "0.0.0.0/0") in rules and (8080, sb.legit_cidr) in rules
    return ok, "ingress " + ", ".join(f"{p}<-{c}" for p, c in sorted(rules))


def ssh_open(sb: Sandbox) -> Check:
    rules = _ingress(sb, sb.web_sg)
    return (22, "0.0.0.0/0") in rules, "ingress " + ", ".join(f"{p}<-{c}" for p, c in sorted(rules))


def open_https_on_lb(sb: Sandbox) -> dict[str, Any]:
    return _authorize(sb, sb.lb_sg, [_world(443)])


def lb_https_open(sb: Sandbox) -> Check:
    rules = _ingress(sb, sb.lb_sg)
    return rules == {(443, "0.0.0.0/0")}, "ingress " + ", ".join(f"{p}<-{c}" for p, c in sorted(rules))


def lb_https_revoked(sb: Sandbox) -> Check:
    ok, text = lb_https_open(sb)
    return not ok, text


# --------------------------------------------------------------------------- #
# S3
# --------------------------------------------------------------------------- #
def delete_bpa(sb: Sandbox) -> dict[str, Any]:
    """Delete the bucket's Block Public Access, with a public-read policy waiting behind it.

    The policy is what makes the bucket public once Block Public Access is gone: the remediation acts
    only on a bucket that is public *now* (a deleted configuration on a private bucket changes nothing).
    The policy's own PutBucketPolicy is not replayed here; the deletion is the step trailguard catches.
    """
    s3 = sb.attacker_client("s3")
    s3.delete_public_access_block(Bucket=sb.data_bucket)
    s3.put_bucket_policy(Bucket=sb.data_bucket, Policy=json.dumps(_public_read_policy(sb.data_bucket)))
    return _record(
        sb,
        "s3",
        "DeleteBucketPublicAccessBlock",
        _s3_request(sb, sb.data_bucket, publicAccessBlock=[""]),
        None,
        resources=_bucket_resource(sb, sb.data_bucket),
        bucket=sb.data_bucket,
    )


def _bpa(sb: Sandbox) -> dict[str, Any] | None:
    s3 = client("s3", region=sb.region)
    try:
        return dict(s3.get_public_access_block(Bucket=sb.data_bucket)["PublicAccessBlockConfiguration"])
    except s3.exceptions.ClientError as exc:
        if "NoSuchPublicAccessBlockConfiguration" in str(exc):
            return None
        raise


def _public_read_policy(bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }


def bpa_restored(sb: Sandbox) -> Check:
    """The settings that block the public policy are back, so the bucket is not public any more."""
    conf = _bpa(sb) or {}
    blocked = bool(conf.get("BlockPublicPolicy")) and bool(conf.get("RestrictPublicBuckets"))
    return blocked, f"Block Public Access {conf or 'absent'}"


def bpa_absent(sb: Sandbox) -> Check:
    conf = _bpa(sb)
    return conf is None, f"Block Public Access {conf or 'absent'}"


def public_acl(sb: Sandbox) -> dict[str, Any]:
    sb.attacker_client("s3").put_bucket_acl(Bucket=sb.legacy_bucket, ACL="public-read")
    return _record(
        sb,
        "s3",
        "PutBucketAcl",
        _s3_request(sb, sb.legacy_bucket, acl=[""], **{"x-amz-acl": ["public-read"]}),
        None,
        resources=_bucket_resource(sb, sb.legacy_bucket),
        bucket=sb.legacy_bucket,
    )


def _public_grants(sb: Sandbox) -> list[str]:
    grants = client("s3", region=sb.region).get_bucket_acl(Bucket=sb.legacy_bucket)["Grants"]
    return [
        f"{g['Grantee'].get('URI', '').rsplit('/', 1)[-1]}:{g['Permission']}"
        for g in grants
        if g["Grantee"].get("URI") in (ALL_USERS, AUTHENTICATED_USERS)
    ]


def acl_private(sb: Sandbox) -> Check:
    pub = _public_grants(sb)
    return not pub, f"public grants {pub or 'none'}"


def acl_public(sb: Sandbox) -> Check:
    pub = _public_grants(sb)
    return bool(pub), f"public grants {pub or 'none'}"


def public_policy(sb: Sandbox) -> dict[str, Any]:
    policy = _public_read_policy(sb.legacy_bucket)
    sb.attacker_client("s3").put_bucket_policy(Bucket=sb.legacy_bucket, Policy=json.dumps(policy))
    return _record(
        sb,
        "s3",
        "PutBucketPolicy",
        _s3_request(sb, sb.legacy_bucket, bucketPolicy=policy, policy=[""]),
        None,
        resources=_bucket_resource(sb, sb.legacy_bucket),
        bucket=sb.legacy_bucket,
    )


def _policy_public(sb: Sandbox) -> bool:
    s3 = client("s3", region=sb.region)
    try:
        doc = json.loads(s3.get_bucket_policy(Bucket=sb.legacy_bucket)["Policy"])
    except s3.exceptions.ClientError as exc:
        if "NoSuchBucketPolicy" in str(exc):
            return False
        raise
    return any(
        st.get("Effect") == "Allow" and st.get("Principal") in ("*", {"AWS": "*"}) for st in doc.get("Statement", [])
    )


def policy_private(sb: Sandbox) -> Check:
    pub = _policy_public(sb)
    return not pub, f"bucket policy public={pub}"


def policy_public(sb: Sandbox) -> Check:
    pub = _policy_public(sb)
    return pub, f"bucket policy public={pub}"


def tag_bucket(sb: Sandbox) -> dict[str, Any]:
    tags = [{"Key": "owner", "Value": "analytics"}, {"Key": "cost-center", "Value": "cc-1042"}]
    sb.attacker_client("s3").put_bucket_tagging(Bucket=sb.data_bucket, Tagging={"TagSet": tags})
    tagging = {
        "TagSet": {"Tag": [{"Key": t["Key"], "Value": t["Value"]} for t in tags]},
        "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
    }
    return _record(
        sb,
        "s3",
        "PutBucketTagging",
        _s3_request(sb, sb.data_bucket, Tagging=tagging, tagging=[""]),
        None,
        resources=_bucket_resource(sb, sb.data_bucket),
        bucket=sb.data_bucket,
    )


def tags_kept(sb: Sandbox) -> Check:
    tags = {
        t["Key"]: t["Value"] for t in client("s3", region=sb.region).get_bucket_tagging(Bucket=sb.data_bucket)["TagSet"]
    }
    return tags.get("cost-center") == "cc-1042", f"tags {tags}"


def tags_removed(sb: Sandbox) -> Check:
    ok, text = tags_kept(sb)
    return not ok, text


# --------------------------------------------------------------------------- #
# EBS snapshot
# --------------------------------------------------------------------------- #
def public_snapshot(sb: Sandbox) -> dict[str, Any]:
    resp = sb.attacker_client("ec2").modify_snapshot_attribute(
        SnapshotId=sb.snapshot_id, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
    )
    request = {
        "snapshotId": sb.snapshot_id,
        "createVolumePermission": {"add": {"items": [{"group": "all"}]}},
        "attributeType": "CREATE_VOLUME_PERMISSION",
    }
    response = {"requestId": resp["ResponseMetadata"]["RequestId"], "_return": True}
    return _record(sb, "ec2", "ModifySnapshotAttribute", request, response)


def _snapshot_groups(sb: Sandbox) -> list[str]:
    perms = client("ec2", region=sb.region).describe_snapshot_attribute(
        SnapshotId=sb.snapshot_id, Attribute="createVolumePermission"
    )["CreateVolumePermissions"]
    return [p["Group"] for p in perms if "Group" in p]


def snapshot_private(sb: Sandbox) -> Check:
    groups = _snapshot_groups(sb)
    return "all" not in groups, f"createVolumePermission groups {groups or 'none'}"


def snapshot_public(sb: Sandbox) -> Check:
    groups = _snapshot_groups(sb)
    return "all" in groups, f"createVolumePermission groups {groups or 'none'}"


# --------------------------------------------------------------------------- #
# KMS
# --------------------------------------------------------------------------- #
def schedule_key_deletion(sb: Sandbox) -> dict[str, Any]:
    resp = sb.attacker_client("kms").schedule_key_deletion(KeyId=sb.key_id, PendingWindowInDays=7)
    deletion = resp["DeletionDate"]
    response = {
        "keyId": sb.key_arn,
        "deletionDate": deletion.strftime("%b %-d, %Y, %-I:%M:%S %p") if hasattr(deletion, "strftime") else deletion,
        "keyState": "PendingDeletion",
        "pendingWindowInDays": 7,
    }
    resources = [{"accountId": sb.account, "type": "AWS::KMS::Key", "ARN": sb.key_arn}]
    return _record(
        sb, "kms", "ScheduleKeyDeletion", {"keyId": sb.key_id, "pendingWindowInDays": 7}, response, resources=resources
    )


def _key_state(sb: Sandbox) -> str:
    return str(client("kms", region=sb.region).describe_key(KeyId=sb.key_id)["KeyMetadata"]["KeyState"])


def key_not_pending(sb: Sandbox) -> Check:
    state = _key_state(sb)
    return state != "PendingDeletion", f"key state {state}"


def key_pending(sb: Sandbox) -> Check:
    state = _key_state(sb)
    return state == "PendingDeletion", f"key state {state}"


# --------------------------------------------------------------------------- #
# IAM
# --------------------------------------------------------------------------- #
def attach_admin(sb: Sandbox) -> dict[str, Any]:
    sb.attacker_client("iam").attach_user_policy(UserName=sb.intern_user, PolicyArn=ADMIN_POLICY)
    return _record(sb, "iam", "AttachUserPolicy", {"userName": sb.intern_user, "policyArn": ADMIN_POLICY}, None)


def _admin_attached(sb: Sandbox) -> bool:
    attached = client("iam", region=sb.region).list_attached_user_policies(UserName=sb.intern_user)
    return any(p["PolicyArn"] == ADMIN_POLICY for p in attached["AttachedPolicies"])


def admin_detached(sb: Sandbox) -> Check:
    on = _admin_attached(sb)
    return not on, f"AdministratorAccess attached={on}"


def admin_attached(sb: Sandbox) -> Check:
    on = _admin_attached(sb)
    return on, f"AdministratorAccess attached={on}"


# --------------------------------------------------------------------------- #
# AWS Config
# --------------------------------------------------------------------------- #
def stop_recorder(sb: Sandbox) -> dict[str, Any]:
    sb.attacker_client("config").stop_configuration_recorder(ConfigurationRecorderName=sb.recorder)
    return _record(sb, "config", "StopConfigurationRecorder", {"configurationRecorderName": sb.recorder}, None)


def _recording(sb: Sandbox) -> bool:
    st = client("config", region=sb.region).describe_configuration_recorder_status(
        ConfigurationRecorderNames=[sb.recorder]
    )["ConfigurationRecordersStatus"]
    return bool(st and st[0].get("recording"))


def recorder_on(sb: Sandbox) -> Check:
    on = _recording(sb)
    return on, f"recorder {sb.recorder} recording={on}"


def recorder_off(sb: Sandbox) -> Check:
    on = _recording(sb)
    return not on, f"recorder {sb.recorder} recording={on}"


def scenario(rule_ids: dict[str, str]) -> list[Step]:
    """The steps in the order they run. ``rule_ids`` maps a step key to the catalog rule expected to catch it."""

    def r(key: str) -> str:
        return rule_ids[key]

    return [
        Step("stop-trail", "stop the CloudTrail trail", r("stop-trail"), stop_logging, trail_logging, trail_stopped),
        Step(
            "open-ssh",
            "open SSH (22) and HTTPS (443) to 0.0.0.0/0 in one call",
            r("open-ssh"),
            open_ssh_and_https,
            ssh_closed_https_kept,
            ssh_open,
        ),
        Step(
            "delete-bpa",
            "delete the bucket's Block Public Access",
            r("delete-bpa"),
            delete_bpa,
            bpa_restored,
            bpa_absent,
        ),
        Step("public-acl", "make a bucket ACL public-read", r("public-acl"), public_acl, acl_private, acl_public),
        Step(
            "public-snapshot",
            "share an EBS snapshot with everyone",
            r("public-snapshot"),
            public_snapshot,
            snapshot_private,
            snapshot_public,
        ),
        Step(
            "delete-key",
            "schedule deletion of the protected KMS key",
            r("delete-key"),
            schedule_key_deletion,
            key_not_pending,
            key_pending,
        ),
        Step(
            "attach-admin",
            "attach AdministratorAccess to a user",
            r("attach-admin"),
            attach_admin,
            admin_detached,
            admin_attached,
        ),
        Step(
            "public-policy",
            "bucket policy that lets anyone read",
            r("public-policy"),
            public_policy,
            policy_private,
            policy_public,
        ),
        Step(
            "stop-recorder",
            "stop the AWS Config recorder",
            r("stop-recorder"),
            stop_recorder,
            recorder_on,
            recorder_off,
        ),
        Step(
            "benign-https",
            "open HTTPS (443) to 0.0.0.0/0 on the load balancer",
            None,
            open_https_on_lb,
            lb_https_revoked,
            lb_https_open,
        ),
        Step("benign-tag", "tag a bucket", None, tag_bucket, tags_removed, tags_kept),
    ]
