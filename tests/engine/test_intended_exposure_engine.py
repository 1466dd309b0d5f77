"""Intended exposure in the remediations, against moto (issue 15).

Security groups: public ports allowed per account, per VPC (read live) or by a bounded tag on the
group (read live) are never revoked; only the rules not covered are. S3: Block Public Access is
restored only when the bucket is public now, and only the settings needed.
"""

from __future__ import annotations

import json
from typing import Any

from engine_world import MEMBER, World, ct_event
from test_engine_remediations import _sg_event, _sg_rules, remediate

WORLD = "0.0.0.0/0"


def _group(world: World, tags: dict[str, str] | None = None) -> tuple[Any, str, str]:
    ec2 = world.member("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    gid = ec2.create_security_group(GroupName="edge", Description="d", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}
        ],
    )
    if tags:
        ec2.create_tags(Resources=[gid], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return ec2, gid, vpc


def _open(ec2: Any, gid: str, ports: list[tuple[str, int]]) -> tuple[set[tuple[Any, ...]], dict[str, Any]]:
    """Open ``ports`` to the world in one call; return the rules before and the CloudTrail event."""
    before = _sg_rules(ec2, gid)
    perms = [{"IpProtocol": p, "FromPort": n, "ToPort": n, "IpRanges": [{"CidrIp": WORLD}]} for p, n in ports]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    created = [r for r in rules if not r["IsEgress"] and r.get("CidrIpv4") == WORLD]
    event = _sg_event(gid, [{"proto": p, "from": n, "to": n, "v4": [WORLD]} for p, n in ports], created)
    return before, event


def test_tagged_wireguard_and_smtp_are_kept_and_nothing_is_written(world: World) -> None:
    """Old code revoked 51820/udp and 25/tcp (only 80 and 443 allowed): IaC re-added them, and the two flapped."""
    ec2, gid, _ = _group(world, {"trailguard:allow-public-ports": "51820/udp,25/tcp"})
    before, event = _open(ec2, gid, [("udp", 51820), ("tcp", 25)])
    finding = remediate(world, "revoke_public_sg_ingress", event)
    assert finding["status"] == "skipped", finding
    assert "intended exposure" in finding["detail"]
    assert "trailguard:allow-public-ports=25/tcp,51820/udp" in finding["detail"]
    assert ("ec2", "RevokeSecurityGroupIngress") not in world.member_calls()
    assert _sg_rules(ec2, gid) == before | {(False, "udp", 51820, 51820, WORLD), (False, "tcp", 25, 25, WORLD)}


def test_only_the_rules_the_tag_does_not_cover_are_revoked(world: World) -> None:
    ec2, gid, _ = _group(world, {"trailguard:allow-public-ports": "51820/udp"})
    before, event = _open(ec2, gid, [("udp", 51820), ("tcp", 3306), ("tcp", 51820)])
    finding = remediate(world, "revoke_public_sg_ingress", event)
    assert finding["status"] == "remediated", finding
    # protocol-aware: 51820/tcp is not 51820/udp
    assert _sg_rules(ec2, gid) == before | {(False, "udp", 51820, 51820, WORLD)}
    assert "kept intended" in finding["detail"]


def test_ports_allowed_for_the_vpc_are_read_live(world: World) -> None:
    ec2, gid, vpc = _group(world)
    world.set_runtime(intended_exposure={"public_ports_by_vpc": {vpc: ["500/udp", "4500/udp"]}})
    before, event = _open(ec2, gid, [("udp", 500), ("udp", 4500), ("tcp", 22)])
    finding = remediate(world, "revoke_public_sg_ingress", event)
    assert finding["status"] == "remediated", finding
    assert _sg_rules(ec2, gid) == before | {(False, "udp", 500, 500, WORLD), (False, "udp", 4500, 4500, WORLD)}
    assert f"config for VPC {vpc}" in finding["detail"]


def test_ports_allowed_for_the_account_are_not_even_flagged(world: World) -> None:
    ec2, gid, _ = _group(world)
    world.set_runtime(intended_exposure={"public_ports_by_account": {MEMBER: ["8443/tcp"]}})
    before, event = _open(ec2, gid, [("tcp", 8443)])
    out = world.invoke(event, "ec2-security-group-ingress-public")
    assert [f["decision"] for f in out["findings"]] == ["skip"], out
    assert world.member_calls() == []
    assert _sg_rules(ec2, gid) == before | {(False, "tcp", 8443, 8443, WORLD)}


def test_a_tag_that_is_too_wide_allows_nothing(world: World) -> None:
    ec2, gid, _ = _group(world, {"trailguard:allow-public-ports": "0-65535/tcp"})
    before, event = _open(ec2, gid, [("tcp", 8080)])
    finding = remediate(world, "revoke_public_sg_ingress", event)
    assert finding["status"] == "remediated", finding
    assert _sg_rules(ec2, gid) == before
    assert "ignored" in finding["detail"]


# --------------------------------------------------------------------------- #
# S3 Block Public Access: act only when the bucket is public now
# --------------------------------------------------------------------------- #

FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def _bucket(world: World, name: str, tags: dict[str, str] | None = None) -> Any:
    s3 = world.member("s3")
    s3.create_bucket(Bucket=name)
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=dict.fromkeys(FLAGS, True))
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    return s3


def _policy(s3: Any, bucket: str, action: str) -> None:
    stmt = {"Effect": "Allow", "Principal": "*", "Action": action, "Resource": f"arn:aws:s3:::{bucket}/*"}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [stmt]}))


def _delete_bpa(s3: Any, bucket: str) -> dict[str, Any]:
    s3.delete_public_access_block(Bucket=bucket)
    return ct_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": bucket, "publicAccessBlock": [""]})


def _bpa(s3: Any, bucket: str) -> dict[str, bool]:
    try:
        return dict(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"])
    except Exception:
        return {}


def _writes(world: World) -> list[tuple[str, str]]:
    return [c for c in world.member_calls() if c[1].startswith(("Put", "Delete"))]


def test_delete_bpa_on_a_bucket_that_is_not_public_changes_nothing(world: World) -> None:
    """Old code read a delete as "all off" and put all four back (fighting the stack update that removed them)."""
    s3 = _bucket(world, "stack-bucket")
    event = _delete_bpa(s3, "stack-bucket")
    finding = remediate(world, "restore_bucket_public_access_block", event)
    assert finding["status"] == "already_safe", finding
    assert "not public now" in finding["detail"]
    assert _writes(world) == []
    assert _bpa(s3, "stack-bucket") == {}


def test_account_level_bpa_makes_a_public_policy_not_public(world: World) -> None:
    s3 = _bucket(world, "acct-blocked")
    s3.delete_public_access_block(Bucket="acct-blocked")
    _policy(s3, "acct-blocked", "s3:GetObject")  # accepted while the bucket setting is off
    world.member("s3control").put_public_access_block(
        AccountId=MEMBER, PublicAccessBlockConfiguration=dict.fromkeys(FLAGS, True)
    )
    event = ct_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": "acct-blocked"})
    finding = remediate(world, "restore_bucket_public_access_block", event)
    assert finding["status"] == "already_safe", finding
    assert "account-level" in finding["detail"]
    assert _writes(world) == []


def test_public_acl_gets_only_the_acl_settings_and_is_verified(world: World) -> None:
    s3 = _bucket(world, "acl-public")
    event = _delete_bpa(s3, "acl-public")
    s3.put_bucket_acl(Bucket="acl-public", ACL="public-read")
    grants_before = s3.get_bucket_acl(Bucket="acl-public")["Grants"]
    finding = remediate(world, "restore_bucket_public_access_block", event)
    assert finding["status"] == "remediated", finding
    assert "verified not public now" in finding["detail"]
    assert _bpa(s3, "acl-public") == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False,
    }
    assert s3.get_bucket_acl(Bucket="acl-public")["Grants"] == grants_before  # nothing else changed
    assert _writes(world) == [("s3", "PutPublicAccessBlock")]


def test_put_with_missing_fields_is_judged_by_live_state(world: World) -> None:
    s3 = _bucket(world, "partial")
    s3.put_public_access_block(Bucket="partial", PublicAccessBlockConfiguration={"BlockPublicAcls": True})
    event = ct_event(
        "s3",
        "PutBucketPublicAccessBlock",
        {"bucketName": "partial", "PublicAccessBlockConfiguration": {"BlockPublicAcls": True}},
    )
    finding = remediate(world, "restore_bucket_public_access_block", event)
    assert finding["status"] == "already_safe", finding
    assert _writes(world) == []


def test_public_website_bucket_keeps_public_reads(world: World) -> None:
    s3 = _bucket(world, "www-example", {"trailguard:public-website": "true"})
    event = _delete_bpa(s3, "www-example")
    _policy(s3, "www-example", "s3:GetObject")
    finding = remediate(world, "restore_bucket_public_access_block", event)
    assert finding["status"] == "skipped", finding
    assert "public website" in finding["detail"]
    assert _writes(world) == []


def test_the_archive_invariant_still_restores_all_four(world: World) -> None:
    """The drift sweep's archive check and trailguard's own bucket keep the old, strict behaviour."""
    s3 = _bucket(world, "own-archive")
    world.set_runtime(trailguard_trail={"bucket": "own-archive"})
    event = _delete_bpa(s3, "own-archive")
    finding = remediate(world, "restore_bucket_public_access_block", event)
    assert finding["status"] == "remediated", finding
    assert _bpa(s3, "own-archive") == dict.fromkeys(FLAGS, True)
