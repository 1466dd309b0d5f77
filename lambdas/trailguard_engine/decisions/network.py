"""Decisions for network exposure: security groups and network ACLs opened to the internet.

Moved out of :mod:`trailguard_engine.decisions.exposure` (issue 14) so network semantics (CIDRs, prefix
lists, attached groups) live in one place. Design choice kept from there: ICMP/ICMPv6 from the internet is
**not** flagged (it exposes no service port, and revoking it breaks path-MTU discovery); any other
protocol number without ports (GRE, ESP, SCTP ...) opens the whole protocol and is flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trailguard_engine.decisions import decision
from trailguard_engine.decisions.exposure import (
    _ICMP,
    _PROTO_NAMES,
    ADMIN_PORTS,
    WORLD_CIDRS,
    _as_int,
    _first_str,
    _items,
    _principal,
)
from trailguard_engine.events import CloudTrailEvent, as_list, dig
from trailguard_engine.intended import PortRange, covers
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig

# --------------------------------------------------------------------------- #
# Security groups
# --------------------------------------------------------------------------- #


def _protocol(value: Any) -> str:
    p = str(value).strip().lower() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    return _PROTO_NAMES.get(p, p)


def _port_span(proto: str, from_port: Any, to_port: Any) -> tuple[int, int]:
    if proto == "-1":
        return -1, -1
    lo, hi = _as_int(from_port), _as_int(to_port)
    if proto not in ("tcp", "udp"):
        return (lo if lo is not None else -1), (hi if hi is not None else -1)
    if lo is None or hi is None or lo < 0 or hi < 0:
        return 0, 65535  # tcp/udp without readable ports: assume every port
    return min(lo, hi), max(lo, hi)


def _opens_non_allowed(
    proto: str, lo: int, hi: int, allowed: frozenset[int], ranges: tuple[PortRange, ...] = ()
) -> bool:
    """True unless ICMP, or every port is allowed (global ports, or the account's protocol-aware ranges)."""
    if proto in _ICMP or not proto:
        return False
    # all traffic (-1) or a port-less protocol opens the whole protocol: never covered
    return not covers(proto, lo, hi, allowed, ranges)


def _world_cidrs(perm: Mapping[str, Any]) -> list[str]:
    cidrs: list[str] = []
    for r in _items(perm.get("ipRanges")):
        c = dig(r, "cidrIp")
        if isinstance(c, str) and c.strip() in WORLD_CIDRS:
            cidrs.append(c.strip())
    for r in _items(perm.get("ipv6Ranges")):
        c = dig(r, "cidrIpv6")
        if isinstance(c, str) and c.strip() in WORLD_CIDRS:
            cidrs.append(c.strip())
    return cidrs


def _requested_world_rules(event: CloudTrailEvent) -> list[dict[str, Any]]:
    """(protocol, ports, cidr) opened to the world by the request, in every known shape."""
    out: list[dict[str, Any]] = []
    if event.event_name == "ModifySecurityGroupRules":
        req = event.req("ModifySecurityGroupRulesRequest")
        for upd in as_list(dig(req, "SecurityGroupRule")):
            rule = dig(upd, "SecurityGroupRule")
            if not isinstance(rule, Mapping):
                continue
            proto = _protocol(rule.get("IpProtocol"))
            lo, hi = _port_span(proto, rule.get("FromPort"), rule.get("ToPort"))
            rid = dig(upd, "SecurityGroupRuleId")
            for key in ("CidrIpv4", "CidrIpv6"):
                c = rule.get(key)
                if isinstance(c, str) and c.strip() in WORLD_CIDRS:
                    out.append({"protocol": proto, "from_port": lo, "to_port": hi, "cidr": c.strip(), "_rid": rid})
        return out
    for perm in _items(event.req("ipPermissions")):
        if not isinstance(perm, Mapping):
            continue
        proto = _protocol(perm.get("ipProtocol"))
        lo, hi = _port_span(proto, perm.get("fromPort"), perm.get("toPort"))
        for cidr in _world_cidrs(perm):
            out.append({"protocol": proto, "from_port": lo, "to_port": hi, "cidr": cidr})
    # Legacy flat form: AuthorizeSecurityGroupIngress(CidrIp=..., IpProtocol=..., FromPort=..., ToPort=...)
    legacy = event.req("cidrIp")
    if isinstance(legacy, str) and legacy.strip() in WORLD_CIDRS:
        proto = _protocol(event.req("ipProtocol"))
        lo, hi = _port_span(proto, event.req("fromPort"), event.req("toPort"))
        out.append({"protocol": proto, "from_port": lo, "to_port": hi, "cidr": legacy.strip()})
    return out


def _response_rule_ids(event: CloudTrailEvent, offending: list[dict[str, Any]]) -> list[str]:
    """securityGroupRuleIds from the response that match an offending (protocol, ports, cidr)."""
    wanted = {(o["protocol"], o["from_port"], o["to_port"], o["cidr"]) for o in offending}
    ids: list[str] = []
    for item in _items(event.resp("securityGroupRuleSet")):
        if not isinstance(item, Mapping) or item.get("isEgress") in (True, "true"):
            continue
        rid = item.get("securityGroupRuleId")
        proto = _protocol(item.get("ipProtocol"))
        lo, hi = _port_span(proto, item.get("fromPort"), item.get("toPort"))
        for key in ("cidrIpv4", "cidrIpv6"):
            c = item.get(key)
            if isinstance(rid, str) and isinstance(c, str) and (proto, lo, hi, c.strip()) in wanted:
                ids.append(rid)
    return sorted(set(ids))


@decision("sg_ingress_public")
def sg_ingress_public(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Ingress from 0.0.0.0/0 or ::/0 to any port outside ``cfg.allowed_public_ports``."""
    if event.event_name == "ModifySecurityGroupRules":
        group = event.req("ModifySecurityGroupRulesRequest", "GroupId")
    else:
        group = event.req("groupId")
    group_id = group if isinstance(group, str) else ""
    world = _requested_world_rules(event)
    account_ranges = cfg.intended.account_ports(event.account)
    offending = [
        w
        for w in world
        if _opens_non_allowed(w["protocol"], w["from_port"], w["to_port"], cfg.allowed_public_ports, account_ranges)
    ]
    where = group_id or _first_str(event.req("groupName")) or "<unknown group>"
    if not offending:
        if world:
            return Assessment(
                False,
                f"{event.event_name} on {where}: only allowed public ports or ICMP open to the world"
                + (
                    f" (allowed for account {event.account}: {', '.join(map(str, account_ranges))})"
                    if account_ranges
                    else ""
                ),
            )
        return Assessment(False, f"{event.event_name} on {where}: nothing opened to 0.0.0.0/0 or ::/0")
    if event.event_name == "ModifySecurityGroupRules":
        rule_ids = sorted({o["_rid"] for o in offending if isinstance(o.get("_rid"), str)})
    else:
        rule_ids = _response_rule_ids(event, offending)
    clean = [{k: v for k, v in o.items() if not k.startswith("_")} for o in offending]
    unique = [dict(t) for t in sorted({tuple(sorted(c.items())) for c in clean})]
    desc = ", ".join(
        f"{o['protocol']} {o['from_port']}-{o['to_port']} from {o['cidr']}"
        if o["protocol"] != "-1"
        else f"all traffic from {o['cidr']}"
        for o in unique
    )
    reason = f"{event.event_name} on {where} opened {desc} to the internet by {_principal(event)}"
    if event.event_name == "ModifySecurityGroupRules":
        reason += " (ingress or egress is checked live before revoking)"
    reason += "; the group's VPC and allow tag are checked live before revoking"
    if not group_id:
        return Assessment(True, reason + "; no groupId in the request (default-VPC groupName only)", remediable=False)
    return Assessment(
        True,
        reason,
        resource={"type": "AWS::EC2::SecurityGroup", "id": group_id},
        params={"group_id": group_id, "rule_ids": rule_ids, "offending": unique},
    )


# --------------------------------------------------------------------------- #
# Network ACLs
# --------------------------------------------------------------------------- #


@decision("nacl_admin_ports_open")
def nacl_admin_ports_open(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """An ingress allow entry from the internet that covers SSH (22) or RDP (3389)."""
    acl = event.req("networkAclId")
    acl_id = acl if isinstance(acl, str) else "<unknown acl>"
    egress = event.req("egress")
    if egress is True or (isinstance(egress, str) and egress.lower() == "true"):
        return Assessment(False, f"{event.event_name} on {acl_id}: egress entry")
    action = event.req("ruleAction")
    if not (isinstance(action, str) and action.lower() == "allow"):
        return Assessment(False, f"{event.event_name} on {acl_id}: not an allow entry")
    cidr = ""
    for key in ("cidrBlock", "ipv6CidrBlock"):
        c = event.req(key)
        if isinstance(c, str) and c.strip() in WORLD_CIDRS:
            cidr = c.strip()
    if not cidr:
        return Assessment(False, f"{event.event_name} on {acl_id}: source is not 0.0.0.0/0 or ::/0")
    proto = _protocol(event.req("aclProtocol"))
    if proto == "-1":
        covered = list(ADMIN_PORTS)
    elif proto in ("tcp", "udp"):
        lo, hi = _port_span(proto, event.req("portRange", "from"), event.req("portRange", "to"))
        covered = [p for p in ADMIN_PORTS if lo <= p <= hi]
    else:
        covered = []
    if not covered:
        return Assessment(False, f"{event.event_name} on {acl_id}: protocol {proto or '?'} does not cover 22 or 3389")
    rule_no = _as_int(event.req("ruleNumber"))
    return Assessment(
        True,
        f"{event.event_name} on {acl_id} rule {rule_no}: allows {cidr} to port(s) "
        f"{', '.join(map(str, covered))} ({'all traffic' if proto == '-1' else proto}) by {_principal(event)}",
        resource={"type": "AWS::EC2::NetworkAcl", "id": acl_id},
        params={"network_acl_id": acl_id, "rule_number": rule_no, "cidr": cidr, "ports": covered},
        remediable=False,
    )
