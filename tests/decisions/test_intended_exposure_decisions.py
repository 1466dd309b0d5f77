"""Intended exposure in the decisions and in the runtime document (issue 15)."""

from __future__ import annotations

import pytest
from trailguard_engine.exceptions import RuntimeConfigError
from trailguard_engine.intended import IntendedExposure, PortRange, covers, parse_port_specs
from trailguard_engine.runtime_config import RuntimeConfig

from trailguard.config import parse_config

ACCOUNT = "111122223333"
GID = "sg-0123456789abcdef0"


def _open(ev, proto: str, port: int, account: str = ACCOUNT):
    perm = {"ipProtocol": proto, "fromPort": port, "toPort": port, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}
    e = ev("AuthorizeSecurityGroupIngress", {"groupId": GID, "ipPermissions": {"items": [perm]}})
    return e


def test_default_allows_only_80_and_443(run, ev):
    """Documented default: 80 and 443 only; WireGuard, IPsec, SMTP and 8443 need an allowance."""
    for proto, port in (("tcp", 80), ("tcp", 443), ("udp", 443)):
        assert not run("ec2-security-group-ingress-public", _open(ev, proto, port)).risky
    for proto, port in (("udp", 51820), ("udp", 500), ("udp", 4500), ("tcp", 25), ("tcp", 8443)):
        assert run("ec2-security-group-ingress-public", _open(ev, proto, port)).risky


def test_ports_allowed_for_the_account_are_not_risky_and_are_protocol_aware(run, ev):
    cfg = RuntimeConfig(intended=IntendedExposure(ports_by_account={ACCOUNT: parse_port_specs(["51820/udp"])}))
    a = run("ec2-security-group-ingress-public", _open(ev, "udp", 51820), cfg)
    assert not a.risky
    assert "51820/udp" in a.reason
    assert run("ec2-security-group-ingress-public", _open(ev, "tcp", 51820), cfg).risky


def test_another_accounts_allowance_does_not_apply(run, ev):
    cfg = RuntimeConfig(intended=IntendedExposure(ports_by_account={"444455556666": parse_port_specs(["25/tcp"])}))
    assert run("ec2-security-group-ingress-public", _open(ev, "tcp", 25), cfg).risky


def test_covers_needs_every_port_of_a_range() -> None:
    ranges = parse_port_specs(["500/udp", "4500/udp", "60000-60010/udp"])
    assert covers("udp", 60000, 60010, (), ranges)
    assert not covers("udp", 60000, 60011, (), ranges)
    assert covers("udp", 500, 500, (), ranges)
    assert not covers("udp", 500, 4500, (), ranges)
    assert covers("tcp", 80, 80, {80, 443}, ranges)
    assert not covers("tcp", 80, 443, {80, 443}, ranges)
    assert covers("tcp", 79, 81, {80}, (PortRange("tcp", 79, 79), PortRange("tcp", 81, 81)))


def test_runtime_document_round_trip() -> None:
    cfg = parse_config(
        {
            "intended_exposure": {
                "public_ports_by_account": {ACCOUNT: ["51820/udp", "25/TCP"]},
                "public_ports_by_vpc": {"vpc-0123456789abcdef0": ["500/udp", "4500/udp"]},
                "public_ami_accounts": [ACCOUNT],
                "public_website_tag": {"site": "public"},
            }
        }
    )
    rc = RuntimeConfig.from_document(cfg.runtime_document())
    assert rc.intended.account_ports(ACCOUNT) == (PortRange("tcp", 25, 25), PortRange("udp", 51820, 51820))
    assert rc.intended.vpc_ports("vpc-0123456789abcdef0") == (PortRange("udp", 500, 500), PortRange("udp", 4500, 4500))
    assert rc.intended.public_ami_accounts == {ACCOUNT}
    assert rc.intended.is_website({"site": "public"}) == "site=public"
    defaults = RuntimeConfig.from_document(parse_config({}).runtime_document()).intended
    assert defaults == IntendedExposure()


@pytest.mark.parametrize(
    "section",
    [
        {"public_ports_by_account": {ACCOUNT: ["22"]}},
        {"public_ports_by_account": {"1234": ["22/tcp"]}},
        {"public_ports_by_vpc": {"vpc-x": ["22/tcp"]}},
        {"tag_max_ports": 0},
        {"tag_forbidden_ports": ["22"]},
        {"public_ami_accounts": ["abc"]},
        {"public_website_tag": {"k": 1}},
        [],
    ],
)
def test_bad_runtime_sections_are_refused(section) -> None:
    with pytest.raises(RuntimeConfigError, match="intended_exposure"):
        RuntimeConfig.from_document({"intended_exposure": section})
