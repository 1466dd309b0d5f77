"""Decisions for network exposure: security groups and network ACLs opened to the internet.

Moved out of :mod:`trailguard_engine.decisions.exposure` (issue 14) so network semantics (CIDRs, prefix
lists, attached groups) live in one place. Design choice kept from there: ICMP/ICMPv6 from the internet is
**not** flagged (it exposes no service port, and revoking it breaks path-MTU discovery); any other
protocol number without ports (GRE, ESP, SCTP ...) opens the whole protocol and is flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trailguard_engine.decisions import decision
from trailguard_engine.decisions.exposure import (
    _ICMP,
    _PROTO_NAMES,
    ADMIN_PORTS,
    _as_int,
    _first_str,
    _items,
    _principal,
)
from trailguard_engine.events import CloudTrailEvent, as_list, dig
from trailguard_engine.events import get_ci as _ci
from trailguard_engine.intended import PortRange, covers
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.netranges import UNSURE, Source, judge, normalise, parse, reach, same_range
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


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class _Requested:
    """Everything a security-group request lets in: CIDR sources (with the rule id when the request names one)
    and prefix-list references (which cannot be read offline)."""

    sources: tuple[Source, ...] = ()
    rule_ids: tuple[str, ...] = ()
    prefix_lists: tuple[tuple[str, int, int, str], ...] = ()


def _requested(event: CloudTrailEvent) -> _Requested:
    """(protocol, ports, source) opened by the request, in every known shape: ``ipPermissions`` (SDK and
    console), the flat CLI form (``--cidr/--port``: top-level ``cidrIp``, ``ipProtocol``, ``fromPort``,
    ``toPort``), and ModifySecurityGroupRules (``CidrIpv4``, ``CidrIpv6``, ``PrefixListId``)."""
    sources: list[Source] = []
    rids: list[str] = []
    lists: list[tuple[str, int, int, str]] = []

    def add(proto: str, lo: int, hi: int, cidr: Any, rid: str = "") -> None:
        if isinstance(cidr, str) and cidr.strip():
            sources.append(Source(proto, lo, hi, cidr.strip()))
            rids.append(rid)

    if event.event_name == "ModifySecurityGroupRules":
        req = _ci(event.request, "ModifySecurityGroupRulesRequest") or event.request
        for upd in as_list(_ci(req, "SecurityGroupRule")):
            rule = _ci(upd, "SecurityGroupRule")
            if not isinstance(rule, Mapping):
                continue
            proto = _protocol(_ci(rule, "IpProtocol"))
            lo, hi = _port_span(proto, _ci(rule, "FromPort"), _ci(rule, "ToPort"))
            rid = _str(_ci(upd, "SecurityGroupRuleId"))
            for key in ("CidrIpv4", "CidrIpv6"):
                add(proto, lo, hi, _ci(rule, key), rid)
            pl = _str(_ci(rule, "PrefixListId"))
            if pl:
                lists.append((proto, lo, hi, pl))
        return _Requested(tuple(sources), tuple(rids), tuple(lists))
    for perm in _items(event.req("ipPermissions")):
        if not isinstance(perm, Mapping):
            continue
        proto = _protocol(perm.get("ipProtocol"))
        lo, hi = _port_span(proto, perm.get("fromPort"), perm.get("toPort"))
        for r in _items(perm.get("ipRanges")):
            add(proto, lo, hi, dig(r, "cidrIp"))
        for r in _items(perm.get("ipv6Ranges")):
            add(proto, lo, hi, dig(r, "cidrIpv6"))
        for r in _items(perm.get("prefixListIds")):
            pl = _str(dig(r, "prefixListId"))
            if pl:
                lists.append((proto, lo, hi, pl))
    # The flat form: AuthorizeSecurityGroupIngress(CidrIp=..., IpProtocol=..., FromPort=..., ToPort=...)
    for key in ("cidrIp", "cidrIpv6"):
        flat = event.req(key)
        if isinstance(flat, str) and flat.strip():
            proto = _protocol(event.req("ipProtocol"))
            lo, hi = _port_span(proto, event.req("fromPort"), event.req("toPort"))
            add(proto, lo, hi, flat)
    return _Requested(tuple(sources), tuple(rids), tuple(lists))


def _response_rule_ids(event: CloudTrailEvent, offending: list[dict[str, Any]]) -> list[str]:
    """securityGroupRuleIds from the response that match an offending (protocol, ports, range), by meaning."""
    ids: list[str] = []
    for item in _items(event.resp("securityGroupRuleSet")):
        if not isinstance(item, Mapping) or item.get("isEgress") in (True, "true"):
            continue
        rid = item.get("securityGroupRuleId")
        proto = _protocol(item.get("ipProtocol"))
        lo, hi = _port_span(proto, item.get("fromPort"), item.get("toPort"))
        for key in ("cidrIpv4", "cidrIpv6"):
            c = item.get(key)
            if not (isinstance(rid, str) and isinstance(c, str)):
                continue
            if any(
                (o["protocol"], o["from_port"], o["to_port"]) == (proto, lo, hi) and same_range(o["cidr"], c)
                for o in offending
            ):
                ids.append(rid)
    return sorted(set(ids))


def _describe(o: Mapping[str, Any]) -> str:
    what = "all traffic" if o["protocol"] == "-1" else f"{o['protocol']} {o['from_port']}-{o['to_port']}"
    written = f" (written {o['written']})" if o.get("written") and o["written"] != o["cidr"] else ""
    return f"{what} from {o['cidr']}{written}: {o['why']}"


@decision("sg_ingress_public")
def sg_ingress_public(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Ingress from the internet (judged by meaning, :mod:`trailguard_engine.netranges`) to any port outside
    ``cfg.allowed_public_ports``; a prefix list referenced on such a port is alerted (its entries cannot be read
    offline, so it is never revoked blindly)."""
    if event.event_name == "ModifySecurityGroupRules":
        group = _ci(_ci(event.request, "ModifySecurityGroupRulesRequest"), "GroupId")
    else:
        group = event.req("groupId")
    group_id = group if isinstance(group, str) else ""
    requested = _requested(event)
    verdict = judge(requested.sources)
    account_ranges = cfg.intended.account_ports(event.account)
    world = [(i, requested.sources[i]) for i in sorted(verdict)]
    offending: list[dict[str, Any]] = [
        {
            "protocol": s.protocol,
            "from_port": s.from_port,
            "to_port": s.to_port,
            "cidr": normalise(s.cidr),
            "written": s.cidr,
            "why": verdict[i],
            "_rid": requested.rule_ids[i],
        }
        for i, s in world
        if _opens_non_allowed(s.protocol, s.from_port, s.to_port, cfg.allowed_public_ports, account_ranges)
    ]
    lists = sorted(
        {
            pl
            for proto, lo, hi, pl in requested.prefix_lists
            if _opens_non_allowed(proto, lo, hi, cfg.allowed_public_ports, account_ranges)
        }
    )
    where = group_id or _first_str(event.req("groupName")) or "<unknown group>"
    listed = (
        f"; prefix list(s) {', '.join(lists)} referenced on a non-allowed port: their entries cannot be read "
        "offline (check them for wide public ranges; never revoked blindly)"
        if lists
        else ""
    )
    if not offending:
        if lists:
            return Assessment(
                True,
                f"{event.event_name} on {where} by {_principal(event)}{listed}",
                resource={"type": "AWS::EC2::SecurityGroup", "id": group_id} if group_id else {},
                remediable=False,
            )
        if world:
            return Assessment(
                False,
                f"{event.event_name} on {where}: only allowed public ports or ICMP open to the internet"
                + (
                    f" (allowed for account {event.account}: {', '.join(map(str, account_ranges))})"
                    if account_ranges
                    else ""
                ),
            )
        return Assessment(
            False, f"{event.event_name} on {where}: no source admits the internet or a very wide public range"
        )
    # a cover found only with ports ignored (a request fragmented over many port spans) is alerted, never revoked
    exact = [o for o in offending if not o["why"].startswith(UNSURE)]
    if not exact:
        desc = ", ".join(sorted({_describe(o) for o in offending}))
        return Assessment(
            True,
            f"{event.event_name} on {where} opened {desc} by {_principal(event)}{listed}: the ranges cover the "
            "internet when ports are ignored; the request spans too many port ranges to judge port by port, so "
            "nothing is revoked",
            resource={"type": "AWS::EC2::SecurityGroup", "id": group_id} if group_id else {},
            remediable=False,
        )
    if event.event_name == "ModifySecurityGroupRules":
        rule_ids = sorted({o["_rid"] for o in exact if o["_rid"]})
    else:
        rule_ids = _response_rule_ids(event, exact)
    unique: list[dict[str, Any]] = []
    for o in exact:
        spec = {k: o[k] for k in ("protocol", "from_port", "to_port", "cidr")}
        if spec not in unique:
            unique.append(spec)
    unique.sort(key=lambda d: (d["protocol"], d["from_port"], d["to_port"], d["cidr"]))
    desc = ", ".join(sorted({_describe(o) for o in offending}))
    reason = f"{event.event_name} on {where} opened {desc} by {_principal(event)}{listed}"
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
    """An ingress allow entry from the internet (any spelling, or a very wide public range) covering SSH or RDP."""
    acl = event.req("networkAclId")
    acl_id = acl if isinstance(acl, str) else "<unknown acl>"
    egress = event.req("egress")
    if egress is True or (isinstance(egress, str) and egress.strip().lower() == "true"):
        return Assessment(False, f"{event.event_name} on {acl_id}: egress entry")
    action = event.req("ruleAction")
    if not (isinstance(action, str) and action.strip().lower() == "allow"):
        return Assessment(False, f"{event.event_name} on {acl_id}: not an allow entry")
    found: list[tuple[str, str, str]] = []
    for key in ("cidrBlock", "ipv6CidrBlock"):
        c = event.req(key)
        net = parse(c)
        why = reach(net) if net is not None else None
        if why and isinstance(c, str):
            found.append((normalise(c), c.strip(), why))
    if not found:
        return Assessment(
            False,
            f"{event.event_name} on {acl_id}: the source admits neither the internet nor a very wide public range",
        )
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
    cidr, written, why = found[0]
    spelled = f" (written {written})" if written != cidr else ""
    return Assessment(
        True,
        f"{event.event_name} on {acl_id} rule {rule_no}: allows {cidr}{spelled} ({why}) to port(s) "
        f"{', '.join(map(str, covered))} ({'all traffic' if proto == '-1' else proto}) by {_principal(event)}",
        resource={"type": "AWS::EC2::NetworkAcl", "id": acl_id},
        params={"network_acl_id": acl_id, "rule_number": rule_no, "cidr": cidr, "ports": covered},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# Managed prefix lists
# --------------------------------------------------------------------------- #


def _prefix_list_entries(event: CloudTrailEvent) -> tuple[str, list[str]]:
    """(prefix list id or name, CIDRs the request adds) for CreateManagedPrefixList / ModifyManagedPrefixList."""
    req: Any = event.request
    wrapped = _ci(req, f"{event.event_name}Request")
    if isinstance(wrapped, Mapping):
        req = wrapped
    keys = ("AddEntry", "AddEntries") if event.event_name == "ModifyManagedPrefixList" else ("Entry", "Entries")
    cidrs: list[str] = []
    for key in keys:
        for entry in _items(_ci(req, key)):
            c = _ci(entry, "Cidr")
            if isinstance(c, str) and c.strip():
                cidrs.append(c.strip())
    name = _str(_ci(req, "PrefixListId"))
    if not name:
        resp = _ci(event.response, f"{event.event_name}Response")
        created = _ci(resp if isinstance(resp, Mapping) else event.response, "prefixList")
        name = _str(_ci(created, "prefixListId")) or _str(_ci(req, "PrefixListName"))
    return name or "<unknown prefix list>", cidrs


@decision("prefix_list_world")
def prefix_list_world(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A managed prefix list gains a range that admits the internet (alone, very wide, or as a covering set).

    Every security group, NACL or route that references the list inherits it; which ones do cannot be read
    offline, so this alerts and names the list (the entries are never removed blindly).
    """
    plist, cidrs = _prefix_list_entries(event)
    verdict = judge([Source("-1", -1, -1, c) for c in cidrs])
    if not verdict:
        return Assessment(
            False, f"{event.event_name} on {plist}: no added entry admits the internet or a very wide public range"
        )
    desc = ", ".join(f"{normalise(cidrs[i])} ({verdict[i]})" for i in sorted(verdict))
    return Assessment(
        True,
        f"{event.event_name} on prefix list {plist} added {desc} by {_principal(event)}: every security-group rule "
        "referencing the list now admits it",
        resource={"type": "AWS::EC2::PrefixList", "id": plist},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# Security groups attached to instances and network interfaces
# --------------------------------------------------------------------------- #


@decision("sg_attached")
def sg_attached(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """ModifyInstanceAttribute / ModifyNetworkInterfaceAttribute replacing the security groups (``groupSet``).

    Attaching a group that is already open to the internet exposes the instance without any ingress call
    (which the ingress rule would see). Whether a group is open is live state, not in the event: this alerts and
    names the groups and the target so the runbook's check (describe-security-group-rules) is one step; it
    never detaches (that could cut a production instance off its network).
    """
    groups: list[str] = []
    for item in _items(event.req("groupSet")):
        g = _str(dig(item, "groupId")) or _str(item)
        if g and g not in groups:
            groups.append(g)
    groups.sort()
    target = _str(event.req("instanceId")) or _str(event.req("networkInterfaceId")) or "<unknown target>"
    if not groups:
        return Assessment(False, f"{event.event_name} on {target}: the security groups are not changed")
    kind = "AWS::EC2::Instance" if target.startswith("i-") else "AWS::EC2::NetworkInterface"
    return Assessment(
        True,
        f"{event.event_name} set the security groups of {target} to {', '.join(groups)} by {_principal(event)}: "
        "check whether any of them admits the internet (an already-open group needs no ingress call)",
        resource={"type": kind, "id": target},
        params={"groups": groups, "target": target},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# EBS snapshot and AMI block public access
# --------------------------------------------------------------------------- #


@decision("block_public_access_weakened")
def block_public_access_weakened(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Snapshot or AMI block public access switched off, or snapshot block public access set to a weaker state.

    ``EnableSnapshotBlockPublicAccess`` with ``block-new-sharing`` (or ``unblocked``) is the same effect through the
    enable call: moving from ``block-all-sharing`` to ``block-new-sharing`` makes every snapshot shared publicly
    before the block public again. The previous state is not in the event, so the reason says both readings.
    """
    name = event.event_name
    if name.startswith("Disable"):
        return Assessment(True, f"{name} by {_principal(event)}: public sharing is allowed again", remediable=False)
    if name != "EnableSnapshotBlockPublicAccess":
        return Assessment(False, f"{name}: enabling block public access")
    req: Any = _ci(event.request, f"{name}Request")
    state = _str(_ci(req if isinstance(req, Mapping) else event.request, "State")).lower()
    if state == "block-all-sharing":
        return Assessment(False, f"{name}: block-all-sharing (the strongest state)")
    return Assessment(
        True,
        f"{name} set state {state or '<none>'} by {_principal(event)}: if it was block-all-sharing, every snapshot "
        "shared publicly before is public again (if block public access was off, this turns it on)",
        remediable=False,
    )
