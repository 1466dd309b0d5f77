"""An account admin controls the tags of their resources: intended-exposure tags must never widen.

Choices (docs/deploy.md, "Intended exposure"):

* ``trailguard:allow-public-ports`` may open at most ``tag_max_ports`` ports (16) in total and never a
  port of ``tag_forbidden_ports`` (22, 3389): wider or admin allowances belong in config, which
  member admins do not control;
* a value that does not parse strictly, entry by entry, is ignored as a whole, with the reason;
* a tag covers only the protocol it names: never all traffic (``-1``) or port-less protocols;
* the public-website tag covers public *reads* only.
"""

from __future__ import annotations

import json

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from intended_helpers import run
from moto import mock_aws
from trailguard_engine.intended import IntendedExposure, PortRange, covers

TAG = "trailguard:allow-public-ports"
WORLD = "0.0.0.0/0"
INTENDED = IntendedExposure()


@pytest.mark.parametrize(
    "value",
    [
        "0-65535/tcp",  # everything
        "1-1024/udp",
        "22/tcp",  # admin port
        "3389/tcp",
        "3380-3390/tcp",  # a small range that hides an admin port
        "20-30/tcp",
        "443/tcp,22/tcp",  # one bad entry spoils the whole value
        "51820",  # no protocol
        "51820/udp;25/tcp",
        "25/tcp,",
        ",25/tcp",
        "25/icmp",
        "25/-1",
        "-1/tcp",
        "70000/udp",
        "30-20/tcp",
        "0x19/tcp",
        "\u0662\u0665/tcp",  # Arabic-Indic digits: int() accepts them, the parser must not
        "25/tcp\n22/tcp",
        "",
        " ",
        ",".join(f"{p}/udp" for p in range(1000, 1017)),  # 17 entries, 17 ports
    ],
)
def test_a_bad_or_too_wide_tag_allows_nothing_and_says_why(value: str) -> None:
    allowance = INTENDED.tag_ports({TAG: value})
    assert allowance.ranges == ()
    assert allowance.ignored
    assert "ignored" in allowance.describe(TAG)


@given(st.text(max_size=80))
def test_no_tag_value_ever_allows_an_admin_port_or_more_than_the_bound(value: str) -> None:
    allowance = INTENDED.tag_ports({TAG: value})
    assert sum(r.size for r in allowance.ranges) <= INTENDED.tag_max_ports
    for port in (22, 3389):
        assert not covers("tcp", port, port, (), allowance.ranges)
        assert not covers("udp", port, port, (), allowance.ranges)
    assert not covers("-1", 0, 65535, (), allowance.ranges)


def test_a_tag_covers_only_its_protocol_and_never_all_traffic() -> None:
    ranges = INTENDED.tag_ports({TAG: "0-15/tcp"}).ranges
    assert covers("tcp", 0, 15, (), ranges)
    assert not covers("udp", 0, 0, (), ranges)
    assert not covers("-1", 0, 15, (), ranges)
    assert not covers("50", 0, 15, (), ranges)  # ESP: port-less


def test_config_may_allow_what_a_tag_may_not() -> None:
    relaxed = IntendedExposure(tag_forbidden_ports=frozenset(), tag_max_ports=1)
    assert relaxed.tag_ports({TAG: "22/tcp"}).ranges == (PortRange("tcp", 22, 22),)
    assert relaxed.tag_ports({TAG: "22-23/tcp"}).ranges == ()


@pytest.mark.parametrize("value", ["0-65535/tcp", "22/tcp", "22/tcp,443/tcp", "garbage"])
@mock_aws
def test_attacker_tag_does_not_stop_the_revoke(value: str) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    gid = ec2.create_security_group(GroupName="x", Description="d", VpcId=vpc)["GroupId"]
    ec2.create_tags(Resources=[gid], Tags=[{"Key": TAG, "Value": value}])
    ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": WORLD}]}],
    )
    spec = {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": WORLD}
    result, writes = run("revoke_public_sg_ingress", {"group_id": gid, "rule_ids": [], "offending": [spec]})
    assert result.status == "remediated", result
    assert writes == ["RevokeSecurityGroupIngress"]
    assert f"tag {TAG} ignored" in result.detail
    left = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    assert not [r for r in left if not r["IsEgress"] and r.get("CidrIpv4") == WORLD]


@mock_aws
def test_a_tag_on_another_group_covers_nothing_here() -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    tagged = ec2.create_security_group(GroupName="t", Description="d", VpcId=vpc)["GroupId"]
    ec2.create_tags(Resources=[tagged], Tags=[{"Key": TAG, "Value": "8080/tcp"}])
    gid = ec2.create_security_group(GroupName="x", Description="d", VpcId=vpc)["GroupId"]
    perm = {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": WORLD}]}
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])
    spec = {"protocol": "tcp", "from_port": 8080, "to_port": 8080, "cidr": WORLD}
    result, writes = run("revoke_public_sg_ingress", {"group_id": gid, "rule_ids": [], "offending": [spec]})
    assert result.status == "remediated" and writes == ["RevokeSecurityGroupIngress"]


FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _website_bucket(name: str) -> object:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "trailguard:public-website", "Value": "true"}]})
    return s3


@mock_aws
def test_website_tag_does_not_cover_public_writes_by_acl() -> None:
    s3 = _website_bucket("www-acl")
    owner = s3.get_bucket_acl(Bucket="www-acl")["Owner"]
    grants = [
        {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"},
        {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "WRITE"},
    ]
    s3.put_bucket_acl(Bucket="www-acl", AccessControlPolicy={"Owner": owner, "Grants": grants})
    result, writes = run("restore_bucket_public_access_block", {"bucket": "www-acl"})
    assert result.status == "remediated", result
    assert "although tagged trailguard:public-website=true" in result.detail
    assert writes == ["PutPublicAccessBlock"]
    cfg = s3.get_public_access_block(Bucket="www-acl")["PublicAccessBlockConfiguration"]
    assert cfg["IgnorePublicAcls"] and cfg["BlockPublicAcls"]


@pytest.mark.parametrize("action", ["s3:PutObject", "s3:*", "*", ["s3:GetObject", "s3:DeleteObject"]])
@mock_aws
def test_website_tag_does_not_cover_a_public_policy_beyond_reads(action: object) -> None:
    s3 = _website_bucket("www-pol")
    stmt = {"Effect": "Allow", "Principal": "*", "Action": action, "Resource": "arn:aws:s3:::www-pol/*"}
    s3.put_bucket_policy(Bucket="www-pol", Policy=json.dumps({"Version": "2012-10-17", "Statement": [stmt]}))
    result, writes = run("restore_bucket_public_access_block", {"bucket": "www-pol"})
    assert result.status == "remediated", result
    assert writes == ["PutPublicAccessBlock"]
    assert s3.get_public_access_block(Bucket="www-pol")["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"]


@mock_aws
def test_a_website_tag_with_another_value_is_not_a_website() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="www-no")
    s3.put_bucket_tagging(Bucket="www-no", Tagging={"TagSet": [{"Key": "trailguard:public-website", "Value": "True "}]})
    stmt = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::www-no/*"}
    s3.put_bucket_policy(Bucket="www-no", Policy=json.dumps({"Version": "2012-10-17", "Statement": [stmt]}))
    result, _ = run("restore_bucket_public_access_block", {"bucket": "www-no"})
    assert result.status == "remediated", result
