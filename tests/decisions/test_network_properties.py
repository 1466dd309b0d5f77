"""Property tests for the CIDR decider (issue 14 §4): the verdict depends on the addresses, not the spelling.

Hypothesis generates equivalent spellings (host bits, IPv6 compression and case, IPv4-mapped IPv6), covering
sets (random partitions of the address space), private and narrow ranges, and orders; the security-group
decision, the NACL decision and the remediation's live judgement must agree on each.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment
from trailguard_engine.netranges import WIDE_V4_PREFIX, is_public, normalise, parse, reach
from trailguard_engine.remediations.ec2 import offending_rules
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
CFG = RuntimeConfig()
SG_RULE = rules_by_id()["ec2-security-group-ingress-public"]
NACL_RULE = rules_by_id()["nacl-admin-ports-open"]
PRIVATE_V4 = [ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")]


def _record(name: str, request: dict[str, Any]) -> CloudTrailEvent:
    detail = {
        "eventName": name,
        "eventSource": "ec2.amazonaws.com",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/mallory"},
        "requestParameters": request,
        "responseElements": {"_return": True},
    }
    return CloudTrailEvent({"detail-type": "AWS API Call via CloudTrail", "account": ACCOUNT, "detail": detail})


def sg(port: int, cidrs: list[str], proto: str = "tcp") -> Assessment:
    v4 = [{"cidrIp": c} for c in cidrs if ":" not in c]
    v6 = [{"cidrIpv6": c} for c in cidrs if ":" in c]
    perm = {"ipProtocol": proto, "fromPort": port, "toPort": port}
    perm["ipRanges"] = {"items": v4} if v4 else {}
    perm["ipv6Ranges"] = {"items": v6} if v6 else {}
    req = {"groupId": "sg-0a1b2c3d4e5f60718", "ipPermissions": {"items": [perm]}}
    return registry()[SG_RULE.decision](_record("AuthorizeSecurityGroupIngress", req), SG_RULE, CFG)


def nacl(cidr: str) -> Assessment:
    key = "ipv6CidrBlock" if ":" in cidr else "cidrBlock"
    req = {
        "networkAclId": "acl-0a1b2c3d4e5f60718",
        "ruleNumber": 100,
        "egress": False,
        "ruleAction": "allow",
        "aclProtocol": "6",
        "portRange": {"from": 22, "to": 22},
        key: cidr,
    }
    return registry()[NACL_RULE.decision](_record("CreateNetworkAclEntry", req), NACL_RULE, CFG)


def offending(a: Assessment) -> set[tuple[Any, ...]]:
    return {(o["protocol"], o["from_port"], o["to_port"], o["cidr"]) for o in a.params.get("offending", [])}


# --------------------------------------------------------------------------- #
# Strategies
# --------------------------------------------------------------------------- #

v4_nets = st.builds(
    lambda addr, plen: ipaddress.IPv4Network((addr, plen), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)
v6_nets = st.builds(
    lambda addr, plen: ipaddress.IPv6Network((addr, plen), strict=False),
    st.integers(0, 2**128 - 1),
    st.integers(0, 128),
)


def with_host_bits(net: ipaddress.IPv4Network | ipaddress.IPv6Network, bits: int) -> str:
    """The same range written with arbitrary host bits (AWS drops them)."""
    host = bits & int(net.hostmask)
    return f"{type(net.network_address)(int(net.network_address) | host)}/{net.prefixlen}"


def spellings(net: ipaddress.IPv4Network | ipaddress.IPv6Network, bits: int) -> list[str]:
    out = [str(net), with_host_bits(net, bits)]
    if net.version == 6:
        out += [f"{net.network_address.exploded}/{net.prefixlen}", str(net).upper()]
    return out


def partition(rng: random.Random, root: str, min_prefix: int, extra_splits: int) -> list[str]:
    """A random partition of ``root`` into ranges no wider than ``min_prefix``."""
    pieces = list(ipaddress.ip_network(root).subnets(new_prefix=min_prefix))
    for _ in range(extra_splits):
        i = rng.randrange(len(pieces))
        if pieces[i].prefixlen < pieces[i].max_prefixlen:
            pieces[i : i + 1] = list(pieces[i].subnets())
    rng.shuffle(pieces)
    return [str(p) for p in pieces]


# --------------------------------------------------------------------------- #
# Equivalent spellings
# --------------------------------------------------------------------------- #


@given(st.one_of(v4_nets, v6_nets), st.integers(0, 2**128 - 1))
def test_every_spelling_of_a_range_gets_the_same_verdict(net: Any, bits: int) -> None:
    verdicts = {reach(parse(s)) for s in spellings(net, bits)}  # type: ignore[arg-type]
    assert len(verdicts) == 1
    decisions = {(a.risky, frozenset(offending(a))) for a in (sg(22, [s]) for s in spellings(net, bits))}
    assert len(decisions) == 1, decisions
    assert len({nacl(s).risky for s in spellings(net, bits)}) == 1


@given(v4_nets)
def test_an_ipv4_range_and_its_ipv4_mapped_spelling_get_the_same_verdict(net: ipaddress.IPv4Network) -> None:
    mapped = f"::ffff:{net.network_address}/{96 + net.prefixlen}"
    assert (reach(net) is None) == (reach(parse(mapped)) is None)  # type: ignore[arg-type]
    assert sg(22, [str(net)]).risky == sg(22, [mapped]).risky
    assert nacl(str(net)).risky == nacl(mapped).risky


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**128 - 1))
def test_any_slash_zero_is_the_internet(v4: int, v6: int) -> None:
    for cidr in (f"{ipaddress.IPv4Address(v4)}/0", f"{ipaddress.IPv6Address(v6)}/0"):
        a = sg(22, [cidr])
        assert a.risky and a.remediable, cidr
        assert offending(a) == {("tcp", 22, 22, normalise(cidr))}
        assert normalise(cidr) in ("0.0.0.0/0", "::/0")
        assert nacl(cidr).risky


# --------------------------------------------------------------------------- #
# Covering sets
# --------------------------------------------------------------------------- #


@given(st.randoms(use_true_random=False), st.integers(0, 40), st.sampled_from(["0.0.0.0/0", "::/0"]))
def test_a_partition_of_the_internet_is_the_internet(rng: random.Random, splits: int, root: str) -> None:
    pieces = partition(rng, root, 2 if ":" not in root else 4, splits)
    a = sg(3389, pieces)
    assert a.risky and a.remediable
    named = {o[3] for o in offending(a)}
    public = {p for p in pieces if _public(p)}
    assert named == public, "every piece that admits public addresses is named, and only those"


def _public(cidr: str) -> bool:
    """Admits a public address (the oracle is the list of public blocks, through the IPv4-mapped view)."""
    net = parse(cidr)
    assert net is not None
    return is_public(net)


@settings(max_examples=25)  # hundreds of ranges per example
@given(st.randoms(use_true_random=False), st.integers(0, 30))
def test_a_narrow_partition_with_one_public_piece_missing_is_not_the_internet(rng: random.Random, splits: int) -> None:
    """Narrow pieces (/9 and longer) that leave out public addresses cover nothing: no finding at all."""
    pieces = partition(rng, "0.0.0.0/0", WIDE_V4_PREFIX + 1, splits)
    public = [p for p in pieces if _public(p)]
    pieces.remove(rng.choice(public))
    assert not sg(22, pieces).risky


@given(st.randoms(use_true_random=False), st.integers(0, 20))
def test_order_and_spelling_do_not_change_a_covering_set(rng: random.Random, splits: int) -> None:
    pieces = partition(rng, "0.0.0.0/0", 3, splits)
    respelled = [with_host_bits(ipaddress.ip_network(p), rng.getrandbits(32)) for p in pieces]
    rng.shuffle(respelled)
    assert offending(sg(22, pieces)) == offending(sg(22, respelled))


@settings(max_examples=25)  # hundreds of ranges per example
@given(st.randoms(use_true_random=False), st.integers(0, 30))
def test_covering_ranges_on_different_ports_cover_nothing(rng: random.Random, splits: int) -> None:
    """Two halves of the internet on two different ports leave each port half-open: only wide pieces count."""
    pieces = partition(rng, "0.0.0.0/0", WIDE_V4_PREFIX + 1, splits)
    half = len(pieces) // 2
    req_perms = [
        {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "ipRanges": {"items": [{"cidrIp": c} for c in chunk]}}
        for port, chunk in ((22, pieces[:half]), (3389, pieces[half:]))
    ]
    req = {"groupId": "sg-0a1b2c3d4e5f60718", "ipPermissions": {"items": req_perms}}
    a = registry()[SG_RULE.decision](_record("AuthorizeSecurityGroupIngress", req), SG_RULE, CFG)
    assert not a.risky


# --------------------------------------------------------------------------- #
# No new noise
# --------------------------------------------------------------------------- #


@given(st.lists(st.tuples(st.sampled_from(PRIVATE_V4), st.integers(0, 24), st.integers(0, 2**32 - 1)), max_size=30))
def test_private_ranges_never_fire_however_many_or_wide(parts: list[tuple[Any, int, int]]) -> None:
    cidrs = []
    for block, extra, bits in parts:
        plen = min(32, block.prefixlen + extra)
        sub = ipaddress.IPv4Network((int(block.network_address) | (bits & int(block.hostmask)), plen), strict=False)
        cidrs.append(str(sub))
    assert not sg(22, cidrs).risky
    assert all(not nacl(c).risky for c in cidrs)


@given(
    st.lists(
        st.builds(
            lambda a, p: str(ipaddress.IPv4Network((a, p), strict=False)),
            st.integers(0, 2**32 - 1),
            st.integers(WIDE_V4_PREFIX + 1, 32),
        ),
        max_size=60,
    )
)
def test_a_few_narrow_public_ranges_never_fire(cidrs: list[str]) -> None:
    """Fewer than 64 ranges of /9 or longer cannot cover the public IPv4 space (it needs hundreds)."""
    assert not sg(22, cidrs).risky


# --------------------------------------------------------------------------- #
# The remediation judges live rules with the same semantics
# --------------------------------------------------------------------------- #


def _live(cidrs: list[str], port: int) -> list[dict[str, Any]]:
    """Rules as AWS lists them (canonical CIDR)."""
    out = []
    for i, c in enumerate(cidrs):
        key = "CidrIpv6" if ":" in c else "CidrIpv4"
        out.append(
            {
                "SecurityGroupRuleId": f"sgr-{i:017d}",
                "IpProtocol": "tcp",
                "FromPort": port,
                "ToPort": port,
                key: normalise(c),
            }
        )
    return out


@given(st.randoms(use_true_random=False), st.integers(0, 20), st.lists(v4_nets, max_size=5))
def test_the_revoke_names_exactly_what_the_decision_named(rng: random.Random, splits: int, extra: list[Any]) -> None:
    pieces = partition(rng, "0.0.0.0/0", 2, splits) if rng.random() < 0.5 else []
    requested = [with_host_bits(n, rng.getrandbits(32)) for n in extra] + pieces
    a = sg(22, requested)
    live = _live(requested, 22)
    revoked = offending_rules(live, [], a.params.get("offending", []), CFG.allowed_public_ports)
    assert {(r["IpProtocol"], 22, 22, r.get("CidrIpv4")) for r in revoked} == offending(a)
