"""The live check before an IaC alert cannot be a way to go unseen (issue 15).

Attacker: an admin of one member account. They choose their user agent (a Terraform one lowers a remediate
finding to an alert), the bucket's policy, ACL and tags and the security group's tags. The engine skips such
an alert only when the live state it reads itself, with the remediation's own helper, shows nothing to fix:
a bucket made public behind a Terraform user agent is still alerted, a tag cannot allow an admin port or an
unbounded range, and a check that cannot read the state (denied, throttled, no role) never silences.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from trailguard_engine import handler
from trailguard_engine.exceptions import AssumeRoleError
from trailguard_engine.remediations import s3 as s3_remediations

_PATH = Path(__file__).resolve().parents[1] / "engine" / "engine_world.py"
if "engine_world" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("engine_world", _PATH)
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["engine_world"] = _module
    _spec.loader.exec_module(_module)

import engine_world as ew  # noqa: E402

#: This module plays against the engine's moto world (the directory's default world is the reliability one).
world = ew.world

TERRAFORM_UA = "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.40.0"
FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
WORLD = "0.0.0.0/0"


def _iac(event: dict[str, Any]) -> dict[str, Any]:
    event["detail"]["userAgent"] = TERRAFORM_UA
    event["detail"]["eventID"] = str(uuid.uuid4())
    return event


def _invoke(w: Any, action: str, event: dict[str, Any]) -> dict[str, Any]:
    rule = ew.rule_for(action, event)
    ew.force_remediate(w, rule)
    w.messages()
    w.calls.clear()
    [finding] = w.invoke(event, rule.id)["findings"]
    assert finding["decision"] == "alert" and finding["caller"] == "iac", finding
    return finding


def _open_bucket(w: Any, name: str, how: str, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """A bucket the attacker makes public (``how``) behind a DeleteBucketPublicAccessBlock."""
    s3 = w.member("s3")
    s3.create_bucket(Bucket=name)
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    s3.delete_public_access_block(Bucket=name)
    if how == "acl":
        s3.put_bucket_acl(Bucket=name, ACL="public-read")
    else:
        stmt = {"Effect": "Allow", "Principal": "*", "Action": how, "Resource": f"arn:aws:s3:::{name}/*"}
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [stmt]}))
    return _iac(ew.ct_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": name, "publicAccessBlock": [""]}))


@pytest.mark.parametrize("how", ["s3:GetObject", "s3:*", "acl"])
def test_a_bucket_made_public_behind_a_terraform_user_agent_is_alerted(world: Any, how: str) -> None:
    event = _open_bucket(world, "exfil", how)
    finding = _invoke(world, "restore_bucket_public_access_block", event)
    assert finding["status"] == "alerted", finding
    assert len(world.messages()) == 1


@pytest.mark.parametrize("how", ["s3:PutObject", "s3:*", "acl-write"])
def test_a_website_tag_does_not_hide_public_writes(world: Any, how: str) -> None:
    tags = {"trailguard:public-website": "true"}
    if how == "acl-write":
        event = _open_bucket(world, "www-exfil", "s3:GetObject", tags)
        everyone = 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'
        # Explicit grants: moto drops the WRITE grant of the canned ACL public-read-write.
        world.member("s3").put_bucket_acl(Bucket="www-exfil", GrantRead=everyone, GrantWrite=everyone)
    else:
        event = _open_bucket(world, "www-exfil", how, tags)
    finding = _invoke(world, "restore_bucket_public_access_block", event)
    assert finding["status"] == "alerted", finding


def _sg(w: Any, tag: str, proto: str, port: int) -> dict[str, Any]:
    ec2 = w.member("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    gid = ec2.create_security_group(GroupName="edge", Description="d", VpcId=vpc)["GroupId"]
    ec2.create_tags(Resources=[gid], Tags=[{"Key": "trailguard:allow-public-ports", "Value": tag}])
    ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[{"IpProtocol": proto, "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": WORLD}]}],
    )
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    [created] = [r for r in rules if not r["IsEgress"] and r.get("CidrIpv4") == WORLD]
    item = {"ipProtocol": proto, "fromPort": port, "toPort": port, "ipRanges": {"items": [{"cidrIp": WORLD}]}}
    rule_item = {
        "groupOwnerId": ew.MEMBER,
        "groupId": gid,
        "securityGroupRuleId": created["SecurityGroupRuleId"],
        "isEgress": False,
        "ipProtocol": proto,
        "fromPort": port,
        "toPort": port,
        "cidrIpv4": WORLD,
    }
    return _iac(
        ew.ct_event(
            "ec2",
            "AuthorizeSecurityGroupIngress",
            {"groupId": gid, "ipPermissions": {"items": [item]}},
            {"_return": True, "securityGroupRuleSet": {"items": [rule_item]}},
        )
    )


@pytest.mark.parametrize(
    ("tag", "proto", "port"),
    [
        ("22/tcp", "tcp", 22),  # an admin port: a tag may never allow it
        ("3389/tcp,51820/udp", "tcp", 3389),
        ("0-65535/tcp", "tcp", 8080),  # wider than a tag may allow: allows nothing
        ("51820/udp", "tcp", 51820),  # another protocol
        ("51820/udp;22/tcp", "udp", 51820),  # a value that does not parse allows nothing
    ],
)
def test_a_tag_intended_py_refuses_cannot_skip_the_alert(world: Any, tag: str, proto: str, port: int) -> None:
    event = _sg(world, tag, proto, port)
    finding = _invoke(world, "revoke_public_sg_ingress", event)
    assert finding["status"] == "alerted", finding
    assert len(world.messages()) == 1


def _client_error(code: str) -> Exception:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, "GetBucketPolicyStatus")


@pytest.mark.parametrize(
    "error",
    [_client_error("AccessDenied"), _client_error("Throttling"), RuntimeError("boom"), ValueError("bad json")],
    ids=["denied", "throttled", "bug", "bad-data"],
)
def test_an_error_in_the_check_never_silences(world: Any, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def fail(*_: Any, **__: Any) -> Any:
        raise error

    monkeypatch.setattr(s3_remediations, "bucket_exposure", fail)
    # A bucket that is private: a working check would have skipped it, a failing one must not.
    s3 = world.member("s3")
    s3.create_bucket(Bucket="private")
    s3.put_public_access_block(Bucket="private", PublicAccessBlockConfiguration=dict.fromkeys(FLAGS, True))
    event = _iac(ew.ct_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": "private"}))
    finding = _invoke(world, "restore_bucket_public_access_block", event)
    assert finding["status"] == "alerted", finding
    assert "live check failed" in finding["detail"]
    assert len(world.messages()) == 1


def test_no_member_role_never_silences(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = handler.get_engine(ew.FakeContext())

    def no_role(account: str, region: str) -> Any:
        raise AssumeRoleError(f"cannot assume the remediation role in {account}")

    monkeypatch.setattr(engine.factory, "member", no_role)
    s3 = world.member("s3")
    s3.create_bucket(Bucket="private2")
    event = _iac(ew.ct_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": "private2"}))
    finding = _invoke(world, "restore_bucket_public_access_block", event)
    assert finding["status"] == "alerted", finding
    assert "AssumeRoleError" in finding["detail"]


def test_a_bucket_opened_and_closed_before_the_check_still_leaves_a_notice(world: Any) -> None:
    """The live read cannot see a window that closed before it: that event is never silent (LOW notice)."""
    event = _open_bucket(world, "blink", "s3:GetObject")
    s3 = world.member("s3")
    s3.delete_bucket_policy(Bucket="blink")
    s3.put_public_access_block(Bucket="blink", PublicAccessBlockConfiguration=dict.fromkeys(FLAGS, True))
    finding = _invoke(world, "restore_bucket_public_access_block", event)
    assert finding["status"] == "skipped", finding
    [(_, body)] = world.messages()
    assert body["severity"] == "LOW"
    assert "live state benign" in str(body) and "blink" in str(body)
