"""CIDR bypasses of the network rules are closed (issue 14 §1), without new noise.

Attacker: an admin of one member account who wants a port reachable from the internet without trailguard
revoking it. Every legal spelling of "the internet" they could send — a ``/0`` with host bits, ``::/0`` in
other spellings, the IPv4-mapped block, two ``/1`` halves, a very wide public range, the CLI's flat request,
a prefix list, a world-covering prefix-list entry, an already-open group attached — is caught; narrow and
private ranges stay quiet. The remediation half plays against moto: the live rule AWS stores for a crafted
spelling is revoked, every other rule is kept, and a crafted finding cannot make it revoke a narrow rule.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment
from trailguard_engine.remediations.ec2 import offending_rules
from trailguard_engine.runtime_config import RuntimeConfig

_PATH = Path(__file__).resolve().parents[1] / "engine" / "engine_world.py"
if "engine_world" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("engine_world", _PATH)
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["engine_world"] = _module
    _spec.loader.exec_module(_module)

import engine_world as ew  # noqa: E402

#: This module plays against the engine's moto world for the remediation tests.
world = ew.world

ACCOUNT = "111122223333"
SG = "sg-0a1b2c3d4e5f60718"
CFG = RuntimeConfig()


def judge(rule_id: str, name: str, request: dict[str, Any], response: Any = None) -> Assessment:
    rule = rules_by_id()[rule_id]
    detail = {
        "eventName": name,
        "eventSource": "ec2.amazonaws.com",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/mallory"},
        "requestParameters": request,
        "responseElements": response if response is not None else {"_return": True},
    }
    event = CloudTrailEvent({"detail-type": "AWS API Call via CloudTrail", "account": ACCOUNT, "detail": detail})
    return registry()[rule.decision](event, rule, CFG)


def ingress(port: int, *, v4: tuple[str, ...] = (), v6: tuple[str, ...] = (), pls: tuple[str, ...] = ()) -> Assessment:
    perm = {
        "ipProtocol": "tcp",
        "fromPort": port,
        "toPort": port,
        "ipRanges": {"items": [{"cidrIp": c} for c in v4]} if v4 else {},
        "ipv6Ranges": {"items": [{"cidrIpv6": c} for c in v6]} if v6 else {},
        "prefixListIds": {"items": [{"prefixListId": p} for p in pls]} if pls else {},
    }
    return judge(
        "ec2-security-group-ingress-public",
        "AuthorizeSecurityGroupIngress",
        {"groupId": SG, "ipPermissions": {"items": [perm]}},
    )


def nacl(cidr_key: str, cidr: str, port: int = 22) -> Assessment:
    return judge(
        "nacl-admin-ports-open",
        "CreateNetworkAclEntry",
        {
            "networkAclId": "acl-0a1b2c3d4e5f60718",
            "ruleNumber": 100,
            "egress": False,
            "ruleAction": "allow",
            "aclProtocol": "6",
            "portRange": {"from": port, "to": port},
            cidr_key: cidr,
        },
    )


# --------------------------------------------------------------------------- #
# Each bypass is closed
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("v4", "v6", "canonical"),
    [
        (("10.1.2.3/0",), (), "0.0.0.0/0"),
        (("255.255.255.255/0",), (), "0.0.0.0/0"),
        (("0.0.0.0/00",), (), "0.0.0.0/0"),
        ((" 0.0.0.0/0 ",), (), "0.0.0.0/0"),
        ((), ("0::/0",), "::/0"),
        ((), ("0:0:0:0:0:0:0:0/0",), "::/0"),
        ((), ("ffff::1/0",), "::/0"),
        ((), ("::ffff:0:0/96",), "::ffff:0:0/96"),
        ((), ("::FFFF:0.0.0.0/96",), "::ffff:0:0/96"),
        ((), ("2000::/3",), "2000::/3"),
        ((), ("2600::/12",), "2600::/12"),
        (("52.0.0.0/8",), (), "52.0.0.0/8"),
        (("0.0.0.0/1", "128.0.0.0/1"), (), "128.0.0.0/1"),
    ],
)
def test_every_spelling_of_the_internet_is_revocable(v4: tuple[str, ...], v6: tuple[str, ...], canonical: str) -> None:
    a = ingress(22, v4=v4, v6=v6)
    assert a.risky and a.remediable, a.reason
    assert canonical in {o["cidr"] for o in a.params["offending"]}


def test_the_flat_cli_form_is_read() -> None:
    a = judge(
        "ec2-security-group-ingress-public",
        "AuthorizeSecurityGroupIngress",
        {
            "groupId": SG,
            "ipPermissions": {},
            "ipProtocol": "6",
            "fromPort": "22",
            "toPort": "22",
            "cidrIp": "1.2.3.4/0",
        },
    )
    assert a.risky and a.params["offending"] == [
        {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"}
    ]


def test_a_covering_set_split_across_permissions_of_one_call_is_caught() -> None:
    """Eight /3s on the same port, one permission each: no range is wider than /8, together they are the internet."""
    perms = [
        {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": f"{i * 32}.0.0.0/3"}]}}
        for i in range(8)
    ]
    a = judge(
        "ec2-security-group-ingress-public",
        "AuthorizeSecurityGroupIngress",
        {"groupId": SG, "ipPermissions": {"items": perms}},
    )
    assert a.risky


def test_a_covering_set_of_narrow_ranges_is_caught() -> None:
    """512 /9s: each narrower than the wide threshold, together the whole IPv4 internet."""
    pieces = tuple(f"{i >> 1}.{(i & 1) * 128}.0.0/9" for i in range(512))
    a = ingress(3389, v4=pieces)
    assert a.risky
    assert "the whole IPv4 internet" in a.reason


def test_all_traffic_and_a_port_range_cover_together() -> None:
    """An all-traffic half and a tcp-22 half cover port 22 (the all-traffic rule admits it too)."""
    perms = [
        {"ipProtocol": "-1", "ipRanges": {"items": [{"cidrIp": f"{i}.0.0.0/9"} for i in range(0, 128)]}},
        {"ipProtocol": "-1", "ipRanges": {"items": [{"cidrIp": f"{i}.128.0.0/9"} for i in range(0, 128)]}},
        {
            "ipProtocol": "tcp",
            "fromPort": 0,
            "toPort": 65535,
            "ipRanges": {"items": [{"cidrIp": "128.0.0.0/2"}, {"cidrIp": "192.0.0.0/2"}]},
        },
    ]
    a = judge(
        "ec2-security-group-ingress-public",
        "AuthorizeSecurityGroupIngress",
        {"groupId": SG, "ipPermissions": {"items": perms}},
    )
    assert a.risky
    assert any(o["cidr"] == "1.0.0.0/9" for o in a.params["offending"]), "the narrow all-traffic pieces are named too"


def test_modify_security_group_rules_with_another_spelling_is_caught() -> None:
    req = {
        "ModifySecurityGroupRulesRequest": {
            "GroupId": SG,
            "SecurityGroupRule": [
                {
                    "SecurityGroupRuleId": "sgr-1",
                    "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv6": "0::0/0"},
                },
                {
                    "SecurityGroupRuleId": "sgr-2",
                    "SecurityGroupRule": {
                        "IpProtocol": "tcp",
                        "FromPort": 22,
                        "ToPort": 22,
                        "CidrIpv4": "192.0.2.0/24",
                    },
                },
            ],
        }
    }
    a = judge("ec2-security-group-ingress-public", "ModifySecurityGroupRules", req)
    assert a.risky and a.params["rule_ids"] == ["sgr-1"], "only the rule that admits the internet is named"


def test_a_prefix_list_on_an_admin_port_alerts_and_is_never_revoked() -> None:
    a = ingress(22, pls=("pl-0123456abcabcabc1",))
    assert a.risky and not a.remediable
    assert "pl-0123456abcabcabc1" in a.reason
    assert not a.params, "no revoke params: a prefix list's entries cannot be read offline"


def test_a_prefix_list_beside_a_world_rule_is_named_in_the_remediation_reason() -> None:
    a = ingress(22, v4=("0.0.0.0/0",), pls=("pl-0123456abcabcabc1",))
    assert a.risky and a.remediable and "pl-0123456abcabcabc1" in a.reason
    assert a.params["offending"] == [{"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"}]


@pytest.mark.parametrize(
    ("key", "cidr"),
    [
        ("cidrBlock", "192.0.2.1/0"),
        ("cidrBlock", "32.0.0.0/4"),
        ("ipv6CidrBlock", "0::/0"),
        ("ipv6CidrBlock", "::ffff:0:0/96"),
    ],
)
def test_nacl_spellings_are_caught(key: str, cidr: str) -> None:
    assert nacl(key, cidr).risky


@pytest.mark.parametrize(
    "entries",
    [
        [{"Cidr": "0.0.0.0/0"}],
        [{"Cidr": "9.9.9.9/0"}],
        [{"Cidr": "0.0.0.0/1"}, {"Cidr": "128.0.0.0/1"}],
        [{"Cidr": "0:0::/0"}],
        {"Cidr": "::/0", "tag": 1},
    ],
)
def test_a_prefix_list_entry_admitting_the_internet_is_caught(entries: Any) -> None:
    a = judge(
        "ec2-prefix-list-world-entry",
        "ModifyManagedPrefixList",
        {
            "ModifyManagedPrefixListRequest": {
                "PrefixListId": "pl-0123456abcabcabc1",
                "CurrentVersion": 1,
                "AddEntry": entries,
            }
        },
    )
    assert a.risky and not a.remediable and "pl-0123456abcabcabc1" in a.reason


def test_attaching_groups_names_them_and_never_detaches() -> None:
    a = judge(
        "ec2-security-groups-attached",
        "ModifyInstanceAttribute",
        {
            "instanceId": "i-0abc",
            "groupSet": {"items": [{"groupId": "sg-2"}, {"groupId": "sg-1"}, {"groupId": "sg-1"}]},
        },
    )
    assert a.risky and not a.remediable
    assert a.params["groups"] == ["sg-1", "sg-2"]


# --------------------------------------------------------------------------- #
# No new noise
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("v4", "v6"),
    [
        (("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"), ()),
        (("0.0.0.0/8",), ()),  # "this network": never routed
        (("0.0.0.0/16",), ()),  # seen in the shared corpus: inside 0.0.0.0/8
        (("224.0.0.0/4", "240.0.0.0/4"), ()),  # multicast and reserved
        (("52.94.0.0/16", "203.0.113.0/24", "198.51.100.7/32"), ()),  # narrow public or documentation
        (("198.18.0.0/15", "169.254.0.0/16", "127.0.0.0/8"), ()),  # benchmarking, link-local, loopback
        ((), ("fd00::/8", "fe80::/10", "2001:db8::/32")),  # unique-local, link-local, documentation
        ((), ("2600:1f18::/32", "2a05:d018::/36")),  # provider-sized IPv6 blocks
        ((), ("::ffff:10.0.0.0/104",)),  # IPv4-mapped private
    ],
)
def test_private_reserved_and_narrow_ranges_stay_quiet(v4: tuple[str, ...], v6: tuple[str, ...]) -> None:
    a = ingress(22, v4=v4, v6=v6)
    assert not a.risky, a.reason
    for c in (*v4, *v6):
        assert not nacl("ipv6CidrBlock" if ":" in c else "cidrBlock", c).risky, c


def test_eight_public_slash_eights_are_wide_not_the_internet() -> None:
    """Each public /8 is a very wide range (named one by one); together they are not called the internet."""
    a = ingress(22, v4=tuple(f"{i}.0.0.0/8" for i in (3, 4, 8, 9, 11, 12, 13, 15)))
    assert a.risky
    assert "the whole IPv4 internet" not in a.reason and "very wide public IPv4 range (/8)" in a.reason


def test_the_world_on_allowed_ports_or_icmp_stays_quiet() -> None:
    assert not ingress(443, v4=("10.9.9.9/0", "0.0.0.0/1", "128.0.0.0/1")).risky
    a = judge(
        "ec2-security-group-ingress-public",
        "AuthorizeSecurityGroupIngress",
        {
            "groupId": SG,
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "icmp",
                        "fromPort": -1,
                        "toPort": -1,
                        "ipRanges": {"items": [{"cidrIp": "1.1.1.1/0"}]},
                    }
                ]
            },
        },
    )
    assert not a.risky


def test_garbage_cidrs_do_not_fire_or_raise() -> None:
    for junk in ("0.0.0.0", "/0", "0/0", "any", "0.0.0.0/33", "::/129", "", "0.0.0.0/-1"):
        assert not ingress(22, v4=(junk,)).risky, junk


# --------------------------------------------------------------------------- #
# The remediation judges live rules the same way (pure half)
# --------------------------------------------------------------------------- #


def _rule(rid: str, cidr: str, port: int = 22) -> dict[str, Any]:
    key = "CidrIpv6" if ":" in cidr else "CidrIpv4"
    return {"SecurityGroupRuleId": rid, "IpProtocol": "tcp", "FromPort": port, "ToPort": port, key: cidr}


def test_a_crafted_finding_cannot_make_the_revoke_touch_a_narrow_rule() -> None:
    live = [_rule("sgr-narrow", "192.0.2.0/24"), _rule("sgr-world", "0.0.0.0/0")]
    spec = [{"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "192.0.2.0/24"}]
    assert offending_rules(live, ["sgr-narrow"], spec, {80, 443}) == []


def test_a_covering_set_broken_since_the_event_is_not_revoked() -> None:
    """512 /9s were added; one was removed before the engine read the group: nothing admits the internet now."""
    pieces = [f"{i >> 1}.{(i & 1) * 128}.0.0/9" for i in range(512)]
    specs = [{"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": p} for p in pieces]
    live = [_rule(f"sgr-{i}", p) for i, p in enumerate(pieces) if p != "52.0.0.0/9"]
    assert offending_rules(live, [], specs, {80, 443}) == []
    live.append(_rule("sgr-back", "52.0.0.0/9"))
    revoked = {r["CidrIpv4"] for r in offending_rules(live, [], specs, {80, 443})}
    assert "52.0.0.0/9" in revoked and "8.0.0.0/9" in revoked, "the cover is whole again: its public pieces go"
    assert not revoked & {"10.0.0.0/9", "10.128.0.0/9", "127.0.0.0/9", "224.0.0.0/9", "0.0.0.0/9"}, "private never"


# --------------------------------------------------------------------------- #
# The remediation against moto
# --------------------------------------------------------------------------- #


def _group(w: Any) -> tuple[Any, str, set[tuple[Any, ...]]]:
    ec2 = w.member("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    gid = ec2.create_security_group(GroupName="web", Description="d", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]},
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "192.0.2.0/24"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        ],
    )
    return ec2, gid, _rules(ec2, gid)


def _rules(ec2: Any, gid: str) -> set[tuple[Any, ...]]:
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    return {
        (r["IsEgress"], r["IpProtocol"], r["FromPort"], r["ToPort"], r.get("CidrIpv4") or r.get("CidrIpv6"))
        for r in rules
    }


def _remediate(w: Any, gid: str, perms: list[dict[str, Any]]) -> dict[str, Any]:
    """The attacker's request as CloudTrail logs it (no securityGroupRuleSet: the revoke must match by meaning)."""
    event = ew.ct_event(
        "ec2", "AuthorizeSecurityGroupIngress", {"groupId": gid, "ipPermissions": {"items": perms}}, {"_return": True}
    )
    rule = rules_by_id()["ec2-security-group-ingress-public"]
    ew.force_remediate(w, rule)
    [finding] = w.invoke(event, rule.id)["findings"]
    return finding


def test_a_slash_zero_with_host_bits_is_revoked_as_aws_stores_it(world: Any) -> None:
    ec2, gid, before = _group(world)
    ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    perms = [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "10.1.2.3/0"}]}}]
    finding = _remediate(world, gid, perms)
    assert finding["status"] == "remediated", finding
    assert _rules(ec2, gid) == before, "the stored 0.0.0.0/0 on 22 is gone; the private, narrow and 443 rules stay"


def test_a_covering_pair_is_revoked_and_nothing_else(world: Any) -> None:
    ec2, gid, before = _group(world)
    halves = [{"CidrIp": "0.0.0.0/1"}, {"CidrIp": "128.0.0.0/1"}]
    ec2.authorize_security_group_ingress(
        GroupId=gid, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "IpRanges": halves}]
    )
    ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}],
    )
    perms = [
        {
            "ipProtocol": "tcp",
            "fromPort": 3389,
            "toPort": 3389,
            "ipRanges": {"items": [{"cidrIp": "0.0.0.0/1"}, {"cidrIp": "128.0.0.0/1"}]},
        },
        {
            "ipProtocol": "tcp",
            "fromPort": 8080,
            "toPort": 8080,
            "ipv6Ranges": {"items": [{"cidrIpv6": "0:0:0:0:0:0:0:0/0"}]},
        },
    ]
    finding = _remediate(world, gid, perms)
    assert finding["status"] == "remediated", finding
    assert _rules(ec2, gid) == before


def test_a_prefix_list_rule_is_alerted_and_left_in_place(world: Any) -> None:
    _ec2, gid, _before = _group(world)
    perms = [
        {
            "ipProtocol": "tcp",
            "fromPort": 22,
            "toPort": 22,
            "prefixListIds": {"items": [{"prefixListId": "pl-0123456abcabcabc1"}]},
        }
    ]
    finding = _remediate(world, gid, perms)
    assert finding["decision"] == "alert" and finding["status"] == "alerted", finding
    assert ("ec2", "RevokeSecurityGroupIngress") not in world.member_calls()


# --------------------------------------------------------------------------- #
# A request crafted to make the judgement expensive
# --------------------------------------------------------------------------- #


def _fragmented(extra: tuple[str, ...] = ()) -> Assessment:
    """512 /9s each on its own overlapping port span: more port segments than are judged exactly."""
    perms = [
        {
            "ipProtocol": "tcp",
            "fromPort": 1000 + i,
            "toPort": 2000 + i,
            "ipRanges": {"items": [{"cidrIp": f"{i >> 1}.{(i & 1) * 128}.0.0/9"}]},
        }
        for i in range(512)
    ]
    if extra:
        perms.append(
            {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": c} for c in extra]}}
        )
    return judge(
        "ec2-security-group-ingress-public",
        "AuthorizeSecurityGroupIngress",
        {"groupId": SG, "ipPermissions": {"items": perms}},
    )


def test_a_cover_fragmented_over_many_port_spans_is_alerted_not_revoked() -> None:
    """Judged with ports ignored (bounded work): the cover is reported, and nothing is revoked on a guess."""
    from trailguard_engine.netranges import MAX_SEGMENTS

    assert MAX_SEGMENTS < 512 * 2
    a = _fragmented()
    assert a.risky and not a.remediable and "too many port ranges" in a.reason


def test_fragmenting_the_request_does_not_shield_a_real_world_rule() -> None:
    a = _fragmented(("4.3.2.1/0",))
    assert a.risky and a.remediable
    assert a.params["offending"] == [{"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"}]


def test_the_revoke_never_acts_on_a_cover_judged_with_ports_ignored() -> None:
    live = [
        {
            "SecurityGroupRuleId": f"sgr-{i}",
            "IpProtocol": "tcp",
            "FromPort": 1000 + i,
            "ToPort": 2000 + i,
            "CidrIpv4": f"{i >> 1}.{(i & 1) * 128}.0.0/9",
        }
        for i in range(512)
    ]
    specs = [
        {"protocol": "tcp", "from_port": r["FromPort"], "to_port": r["ToPort"], "cidr": r["CidrIpv4"]} for r in live
    ]
    assert offending_rules(live, [], specs, {80, 443}) == []
