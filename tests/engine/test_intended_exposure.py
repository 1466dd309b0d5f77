"""Intended exposure in the remediations, against moto (issue 15).

Security groups: public ports allowed per account, per VPC (read live) or by a bounded tag on the
group (read live) are never revoked; only the rules not covered are. S3: Block Public Access is
restored only when the bucket is public now, and only the settings needed.
"""

from __future__ import annotations

from typing import Any

from engine_world import MEMBER, World
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
