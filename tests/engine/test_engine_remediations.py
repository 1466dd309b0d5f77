"""One moto test per remediation: safe -> risky change -> event -> handler -> risk gone, nothing else changed.

Every test also checks least privilege: each boto3 call the remediation made
maps to an IAM action declared in the rule's ``remediation.permissions``, for
the rule used and for every real catalog rule with the same action.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from engine_world import (
    MEMBER,
    REGION,
    TEST_RULES,
    World,
    ct_event,
    declared_covers,
    force_remediate,
    iam_action,
    real_rules,
    rule_for,
)


def remediate(world: World, action: str, envelope: dict[str, Any]) -> dict[str, Any]:
    rule = rule_for(action, envelope)
    force_remediate(world, rule)
    out = world.invoke(envelope, rule.id)
    assert_least_privilege(world, action, rule.id)
    [finding] = out["findings"]
    return finding


def assert_least_privilege(world: World, action: str, used_rule: str) -> None:
    calls = world.member_calls()
    assert calls, "the remediation made no member-account call"
    rules = [r for r in real_rules() if r.remediation and r.remediation.action == action]
    rules.append(TEST_RULES[action])
    missing = []
    for r in rules:
        assert r.remediation is not None
        for service, op in calls:
            if service == "sts" and op == "AssumeRole":
                continue
            act = iam_action(service, op)
            if not declared_covers(r.remediation.permissions, act):
                missing.append(f"{r.id}: {act} not in remediation.permissions")
    assert not missing, sorted(set(missing))


# --------------------------------------------------------------------------- #
# Security groups
# --------------------------------------------------------------------------- #


def _sg_event(gid: str, perms: list[dict[str, Any]], created: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    items = []
    for p in perms:
        ranges = [{"cidrIp": c} for c in p.get("v4", [])]
        v6 = [{"cidrIpv6": c} for c in p.get("v6", [])]
        items.append(
            {
                "ipProtocol": p["proto"],
                "fromPort": p["from"],
                "toPort": p["to"],
                "ipRanges": {"items": ranges} if ranges else {},
                "ipv6Ranges": {"items": v6} if v6 else {},
            }
        )
    resp = {
        "_return": True,
        "securityGroupRuleSet": {
            "items": [
                {
                    "groupOwnerId": MEMBER,
                    "groupId": gid,
                    "securityGroupRuleId": r["SecurityGroupRuleId"],
                    "isEgress": False,
                    "ipProtocol": r["IpProtocol"],
                    "fromPort": r["FromPort"],
                    "toPort": r["ToPort"],
                    **({"cidrIpv4": r["CidrIpv4"]} if "CidrIpv4" in r else {"cidrIpv6": r["CidrIpv6"]}),
                }
                for r in created
            ]
        },
    }
    return ct_event(
        "ec2", "AuthorizeSecurityGroupIngress", {"groupId": gid, "ipPermissions": {"items": items}}, resp, **kw
    )


def _sg_rules(ec2: Any, gid: str) -> set[tuple[Any, ...]]:
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    return {
        (r["IsEgress"], r["IpProtocol"], r["FromPort"], r["ToPort"], r.get("CidrIpv4") or r.get("CidrIpv6"))
        for r in rules
    }


def open_sg(world: World, name: str = "web") -> tuple[Any, str, dict[str, Any], set[tuple[Any, ...]]]:
    """A group with private rules, then one call adding 22/0.0.0.0/0, 3389/::/0 and the allowed 443/0.0.0.0/0."""
    ec2 = world.member("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    gid = ec2.create_security_group(GroupName=name, Description="d", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]},
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "192.0.2.0/24"}]},
        ],
    )
    safe = _sg_rules(ec2, gid)
    perms = [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    created = [
        r for r in rules if not r["IsEgress"] and (r.get("CidrIpv4") or r.get("CidrIpv6")) in ("0.0.0.0/0", "::/0")
    ]
    assert len(created) == 3
    event = _sg_event(
        gid,
        [
            {"proto": "tcp", "from": 22, "to": 22, "v4": ["0.0.0.0/0"]},
            {"proto": "tcp", "from": 3389, "to": 3389, "v6": ["::/0"]},
            {"proto": "tcp", "from": 443, "to": 443, "v4": ["0.0.0.0/0"]},
        ],
        created,
    )
    return ec2, gid, event, safe


def test_revoke_public_sg_ingress_revokes_exactly_the_offending_rules(world: World) -> None:
    ec2, gid, event, safe = open_sg(world)
    finding = remediate(world, "revoke_public_sg_ingress", event)
    assert finding["status"] == "remediated", finding
    after = _sg_rules(ec2, gid)
    # risk gone; the private rules, the egress rule and the allowed 443 added in the same call are kept
    assert after == safe | {(False, "tcp", 443, 443, "0.0.0.0/0")}
    assert ("ec2", "RevokeSecurityGroupIngress") in world.member_calls()


def test_revoke_public_sg_ingress_finds_rules_by_live_describe_without_ids(world: World) -> None:
    ec2, gid, event, safe = open_sg(world)
    event["detail"]["responseElements"] = {
        "_return": True
    }  # no securityGroupRuleSet: match live by protocol/ports/cidr
    finding = remediate(world, "revoke_public_sg_ingress", event)
    assert finding["status"] == "remediated", finding
    assert _sg_rules(ec2, gid) == safe | {(False, "tcp", 443, 443, "0.0.0.0/0")}


def test_revoke_public_sg_ingress_is_already_safe_when_the_rules_are_gone(world: World) -> None:
    ec2, gid, event, _safe = open_sg(world)
    ids = [
        i["securityGroupRuleId"]
        for i in event["detail"]["responseElements"]["securityGroupRuleSet"]["items"]
        if i.get("fromPort") != 443
    ]
    ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=ids)  # a human fixed it first
    finding = remediate(world, "revoke_public_sg_ingress", event)
    assert finding["status"] == "already_safe"
    assert ("ec2", "RevokeSecurityGroupIngress") not in world.member_calls()


# --------------------------------------------------------------------------- #
# S3
# --------------------------------------------------------------------------- #


def _bucket(world: World, name: str, **tags: str) -> Any:
    s3 = world.member("s3")
    s3.create_bucket(Bucket=name)
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    return s3


def test_restore_bucket_public_access_block(world: World) -> None:
    s3 = _bucket(world, "data-bucket")
    s3.put_public_access_block(
        Bucket="data-bucket",
        PublicAccessBlockConfiguration=dict.fromkeys(
            ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"], True
        ),
    )
    s3.put_bucket_versioning(Bucket="data-bucket", VersioningConfiguration={"Status": "Enabled"})
    s3.delete_public_access_block(Bucket="data-bucket")
    public = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data-bucket/*"}
    s3.put_bucket_policy(Bucket="data-bucket", Policy=json.dumps({"Version": "2012-10-17", "Statement": [public]}))
    event = ct_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": "data-bucket", "publicAccessBlock": ""})
    finding = remediate(world, "restore_bucket_public_access_block", event)
    assert finding["status"] == "remediated"
    # public through its policy now: only the policy settings are needed (tests/engine/test_intended_exposure_engine.py)
    cfg = s3.get_public_access_block(Bucket="data-bucket")["PublicAccessBlockConfiguration"]
    assert cfg == {
        "BlockPublicAcls": False,
        "IgnorePublicAcls": False,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert s3.get_bucket_versioning(Bucket="data-bucket")["Status"] == "Enabled"


def test_make_bucket_acl_private_keeps_owner_log_delivery_and_other_grants(world: World) -> None:
    s3 = _bucket(world, "acl-bucket")
    owner = s3.get_bucket_acl(Bucket="acl-bucket")["Owner"]
    partner = "a" * 64
    grants = [
        {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/s3/LogDelivery"}, "Permission": "WRITE"},
        {"Grantee": {"Type": "CanonicalUser", "ID": partner}, "Permission": "READ"},
    ]
    s3.put_bucket_acl(Bucket="acl-bucket", AccessControlPolicy={"Owner": owner, "Grants": grants})
    safe = s3.get_bucket_acl(Bucket="acl-bucket")["Grants"]
    public = [
        *grants,
        {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"},
        {
            "Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"},
            "Permission": "WRITE",
        },
    ]
    s3.put_bucket_acl(Bucket="acl-bucket", AccessControlPolicy={"Owner": owner, "Grants": public})
    event = ct_event("s3", "PutBucketAcl", {"bucketName": "acl-bucket", "AccessControlPolicy": {}})
    finding = remediate(world, "make_bucket_acl_private", event)
    assert finding["status"] == "remediated"
    after = s3.get_bucket_acl(Bucket="acl-bucket")["Grants"]
    key = lambda g: json.dumps(g, sort_keys=True)  # noqa: E731
    assert sorted(map(key, after)) == sorted(map(key, safe))


POLICY_PRIVATE = {
    "Sid": "OrgRead",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::pol-bucket/*",
    "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3"}},
}
POLICY_TLS = {
    "Sid": "DenyHttp",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::pol-bucket", "arn:aws:s3:::pol-bucket/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
POLICY_PUBLIC = {
    "Sid": "Public",
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::pol-bucket/*",
}


def test_remove_public_bucket_policy_statements_keeps_the_others(world: World) -> None:
    s3 = _bucket(world, "pol-bucket")
    doc = {"Version": "2012-10-17", "Id": "keep-me", "Statement": [POLICY_PRIVATE, POLICY_PUBLIC, POLICY_TLS]}
    s3.put_bucket_policy(Bucket="pol-bucket", Policy=json.dumps(doc))
    event = ct_event("s3", "PutBucketPolicy", {"bucketName": "pol-bucket", "bucketPolicy": doc})
    finding = remediate(world, "remove_public_bucket_policy_statements", event)
    assert finding["status"] == "remediated"
    after = json.loads(s3.get_bucket_policy(Bucket="pol-bucket")["Policy"])
    assert after == {"Version": "2012-10-17", "Id": "keep-me", "Statement": [POLICY_PRIVATE, POLICY_TLS]}


def test_remove_public_bucket_policy_deletes_a_policy_with_only_public_statements(world: World) -> None:
    s3 = _bucket(world, "pol-bucket")
    doc = {"Version": "2012-10-17", "Statement": POLICY_PUBLIC}  # a bare object, as the API allows
    s3.put_bucket_policy(Bucket="pol-bucket", Policy=json.dumps(doc))
    event = ct_event("s3", "PutBucketPolicy", {"bucketName": "pol-bucket", "bucketPolicy": doc})
    finding = remediate(world, "remove_public_bucket_policy_statements", event)
    assert finding["status"] == "remediated"
    assert ("s3", "DeleteBucketPolicy") in world.member_calls()
    with pytest.raises(Exception, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket="pol-bucket")


# --------------------------------------------------------------------------- #
# CloudTrail
# --------------------------------------------------------------------------- #


def test_start_logging(world: World) -> None:
    s3 = _bucket(world, "trail-bucket")
    del s3
    ct = world.member("cloudtrail")
    arn = ct.create_trail(Name="org-trail", S3BucketName="trail-bucket", IsMultiRegionTrail=True)["TrailARN"]
    ct.start_logging(Name=arn)
    before = ct.get_trail(Name=arn)["Trail"]
    ct.stop_logging(Name=arn)
    event = ct_event("cloudtrail", "StopLogging", {"name": arn})
    finding = remediate(world, "start_logging", event)
    assert finding["status"] == "remediated"
    assert ct.get_trail_status(Name=arn)["IsLogging"] is True
    assert ct.get_trail(Name=arn)["Trail"] == before


# --------------------------------------------------------------------------- #
# Snapshots and images
# --------------------------------------------------------------------------- #


def test_make_snapshot_private_keeps_account_shares(world: World) -> None:
    ec2 = world.member("ec2")
    vol = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=["444455556666"]
    )
    ec2.modify_snapshot_attribute(
        SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
    )
    event = ct_event(
        "ec2",
        "ModifySnapshotAttribute",
        {
            "snapshotId": snap,
            "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [{"group": "all"}]}},
        },
    )
    finding = remediate(world, "make_snapshot_private", event)
    assert finding["status"] == "remediated"
    perms = ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert perms["CreateVolumePermissions"] == [{"UserId": "444455556666"}]


def test_make_ami_private_keeps_account_shares(world: World) -> None:
    ec2 = world.member("ec2")
    inst = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image = ec2.create_image(InstanceId=inst, Name="golden")["ImageId"]
    ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": "444455556666"}]})
    ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    event = ct_event(
        "ec2",
        "ModifyImageAttribute",
        {
            "imageId": image,
            "attributeType": "launchPermission",
            "launchPermission": {"add": {"items": [{"group": "all"}]}},
        },
    )
    finding = remediate(world, "make_ami_private", event)
    assert finding["status"] == "remediated"
    perms = ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"]
    assert perms == [{"UserId": "444455556666"}]


def test_make_db_snapshot_private_removes_only_all(world: World) -> None:
    rds = world.member("rds")
    rds.create_db_instance(
        DBInstanceIdentifier="db1",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="u",
        MasterUserPassword="password1",
        AllocatedStorage=20,
    )
    rds.create_db_snapshot(DBInstanceIdentifier="db1", DBSnapshotIdentifier="snap1")
    rds.modify_db_snapshot_attribute(
        DBSnapshotIdentifier="snap1", AttributeName="restore", ValuesToAdd=["444455556666", "all"]
    )
    event = ct_event(
        "rds",
        "ModifyDBSnapshotAttribute",
        {"dBSnapshotIdentifier": "snap1", "attributeName": "restore", "valuesToAdd": ["all"]},
    )
    finding = remediate(world, "make_db_snapshot_private", event)
    assert finding["status"] == "remediated"
    attrs = rds.describe_db_snapshot_attributes(DBSnapshotIdentifier="snap1")["DBSnapshotAttributesResult"]
    assert attrs["DBSnapshotAttributes"] == [{"AttributeName": "restore", "AttributeValues": ["444455556666"]}]


def test_make_db_cluster_snapshot_private_removes_only_all(world: World) -> None:
    rds = world.member("rds")
    rds.create_db_cluster(
        DBClusterIdentifier="c1", Engine="aurora-postgresql", MasterUsername="u", MasterUserPassword="password1"
    )
    rds.create_db_cluster_snapshot(DBClusterIdentifier="c1", DBClusterSnapshotIdentifier="csnap1")
    rds.modify_db_cluster_snapshot_attribute(
        DBClusterSnapshotIdentifier="csnap1", AttributeName="restore", ValuesToAdd=["444455556666", "all"]
    )
    event = ct_event(
        "rds",
        "ModifyDBClusterSnapshotAttribute",
        {"dBClusterSnapshotIdentifier": "csnap1", "attributeName": "restore", "valuesToAdd": ["all"]},
    )
    finding = remediate(world, "make_db_cluster_snapshot_private", event)
    assert finding["status"] == "remediated"
    attrs = rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier="csnap1")
    assert attrs["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"] == [
        {"AttributeName": "restore", "AttributeValues": ["444455556666"]}
    ]


# --------------------------------------------------------------------------- #
# KMS
# --------------------------------------------------------------------------- #


def _key(world: World, **tags: str) -> tuple[Any, str]:
    kms = world.member("kms")
    key = kms.create_key(Description="trail key", Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])
    kid = key["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=kid)
    return kms, kid


def test_cancel_key_deletion_for_a_protected_key(world: World) -> None:
    kms, kid = _key(world, **{"trailguard:protected": "true"})
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    event = ct_event("kms", "ScheduleKeyDeletion", {"keyId": kid, "pendingWindowInDays": 7})
    finding = remediate(world, "cancel_key_deletion", event)
    assert finding["status"] == "remediated"
    meta = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled"
    assert kms.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"] is True


def test_cancel_key_deletion_leaves_unprotected_keys_alone_and_alerts(world: World) -> None:
    kms, kid = _key(world, team="payments")
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    event = ct_event("kms", "ScheduleKeyDeletion", {"keyId": kid, "pendingWindowInDays": 7})
    finding = remediate(world, "cancel_key_deletion", event)
    assert finding["status"] == "skipped"
    assert "not protected" in finding["detail"]
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    [(_subject, body)] = world.messages()
    assert body["action"]["status"] == "skipped"


def test_enable_key_for_a_protected_key(world: World) -> None:
    kms, kid = _key(world, **{"trailguard:protected": "true"})
    kms.disable_key(KeyId=kid)
    event = ct_event("kms", "DisableKey", {"keyId": kid})
    finding = remediate(world, "enable_key", event)
    assert finding["status"] == "remediated"
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"


def test_enable_key_listed_in_protected_key_arns(world: World) -> None:
    kms, kid = _key(world)
    arn = kms.describe_key(KeyId=kid)["KeyMetadata"]["Arn"]
    world.set_runtime(protected_key_arns=[arn])
    kms.disable_key(KeyId=kid)
    finding = remediate(world, "enable_key", ct_event("kms", "DisableKey", {"keyId": arn}))
    assert finding["status"] == "remediated"
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"


def test_enable_key_protected_by_alias_arn_as_the_stack_deploys_it(world: World) -> None:
    kms, kid = _key(world)
    other, other_id = _key(world)
    meta = kms.describe_key(KeyId=kid)["KeyMetadata"]
    kms.create_alias(AliasName="alias/trailguard-trail", TargetKeyId=kid)
    alias_arn = meta["Arn"].split(":key/")[0] + ":alias/trailguard-trail"
    world.set_runtime(protected_key_arns=[alias_arn])
    kms.disable_key(KeyId=kid)
    other.disable_key(KeyId=other_id)
    assert remediate(world, "enable_key", ct_event("kms", "DisableKey", {"keyId": kid}))["status"] == "remediated"
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
    # a key that is not behind the alias stays as the user left it
    assert remediate(world, "enable_key", ct_event("kms", "DisableKey", {"keyId": other_id}))["status"] == "skipped"
    assert other.describe_key(KeyId=other_id)["KeyMetadata"]["KeyState"] == "Disabled"


# --------------------------------------------------------------------------- #
# Config, GuardDuty, IAM
# --------------------------------------------------------------------------- #


def test_start_config_recorder(world: World) -> None:
    cfg = world.member("config")
    world.member("s3").create_bucket(Bucket="config-bucket")
    cfg.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": f"arn:aws:iam::{MEMBER}:role/config",
            "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True},
        }
    )
    cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "config-bucket"})
    cfg.start_configuration_recorder(ConfigurationRecorderName="default")
    before = cfg.describe_configuration_recorders()["ConfigurationRecorders"]
    cfg.stop_configuration_recorder(ConfigurationRecorderName="default")
    event = ct_event("config", "StopConfigurationRecorder", {"configurationRecorderName": "default"})
    finding = remediate(world, "start_config_recorder", event)
    assert finding["status"] == "remediated"
    status = cfg.describe_configuration_recorder_status()["ConfigurationRecordersStatus"][0]
    assert status["recording"] is True
    assert cfg.describe_configuration_recorders()["ConfigurationRecorders"] == before


def test_enable_guardduty_detector(world: World) -> None:
    gd = world.member("guardduty")
    det = gd.create_detector(Enable=True, FindingPublishingFrequency="SIX_HOURS")["DetectorId"]
    gd.update_detector(DetectorId=det, Enable=False)
    event = ct_event("guardduty", "UpdateDetector", {"detectorId": det, "enable": False})
    finding = remediate(world, "enable_guardduty_detector", event)
    assert finding["status"] == "remediated"
    after = gd.get_detector(DetectorId=det)
    assert after["Status"] == "ENABLED"
    assert after["FindingPublishingFrequency"] == "SIX_HOURS"


@pytest.mark.managed_policies
def test_detach_admin_policy_keeps_other_policies(world: World) -> None:
    iam = world.member("iam")
    iam.create_user(UserName="dev")
    iam.attach_user_policy(UserName="dev", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    iam.attach_user_policy(UserName="dev", PolicyArn=admin)
    event = ct_event("iam", "AttachUserPolicy", {"userName": "dev", "policyArn": admin})
    finding = remediate(world, "detach_admin_policy", event)
    assert finding["status"] == "remediated"
    attached = [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName="dev")["AttachedPolicies"]]
    assert attached == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
