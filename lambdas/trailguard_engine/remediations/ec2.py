"""EC2 remediations: security-group ingress, EBS snapshot and AMI sharing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trailguard_engine.intended import PortRange, covers
from trailguard_engine.netranges import Source, judge, same_range, sure
from trailguard_engine.remediations import (
    ActionResult,
    ParamError,
    RemediationContext,
    error_code,
    remediation,
    tag_list_to_map,
)

_PROTOCOLS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": "-1", "-1": "-1"}


def _proto(p: Any) -> str:
    s = str(p).lower()
    return _PROTOCOLS.get(s, s)


def _int(v: Any, default: int = -1) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


# --------------------------------------------------------------------------- #
# Security groups
# --------------------------------------------------------------------------- #


def _group(ctx: RemediationContext) -> Mapping[str, Any] | None:
    try:
        groups = ctx.client("ec2").describe_security_groups(GroupIds=[ctx.param("group_id")])["SecurityGroups"]
    except Exception as exc:
        if error_code(exc) == "InvalidGroup.NotFound":
            return None
        raise
    return groups[0] if groups else None


def sg_tags(ctx: RemediationContext) -> Mapping[str, str]:
    group = _group(ctx)
    return tag_list_to_map(group.get("Tags")) if group else {}


def _ingress_rules(ec2: Any, group_id: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Filters": [{"Name": "group-id", "Values": [group_id]}]}
    while True:
        resp = ec2.describe_security_group_rules(**kwargs)
        rules.extend(r for r in resp.get("SecurityGroupRules", []) if not r.get("IsEgress"))
        token = resp.get("NextToken")
        if not token:
            return rules
        kwargs["NextToken"] = token


def _cidr(rule: Mapping[str, Any]) -> str:
    return str(rule.get("CidrIpv4") or rule.get("CidrIpv6") or "")


def _allowed(rule: Mapping[str, Any], allowed_ports: Iterable[int], ranges: Iterable[PortRange] = ()) -> bool:
    """A public rule is allowed only for tcp/udp when every port of it is allowed (global ports or ``ranges``)."""
    proto = _proto(rule.get("IpProtocol"))
    lo, hi = _int(rule.get("FromPort")), _int(rule.get("ToPort"))
    if lo < 0 or hi < 0:
        return False
    return covers(proto, lo, hi, allowed_ports, ranges)


def _matches_spec(rule: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    """The live rule is the one the finding names: same protocol and ports, same range by meaning (a rule
    requested as ``10.1.2.3/0`` is the one AWS lists as ``0.0.0.0/0``)."""
    proto = _proto(spec.get("protocol", ""))
    if _proto(rule.get("IpProtocol")) != proto or not same_range(_cidr(rule), spec.get("cidr", "")):
        return False
    if proto == "-1":
        return True
    return _int(rule.get("FromPort")) == _int(spec.get("from_port"), -2) and _int(rule.get("ToPort")) == _int(
        spec.get("to_port"), -2
    )


def _source(rule: Mapping[str, Any]) -> Source:
    proto = _proto(rule.get("IpProtocol"))
    if proto == "-1":
        return Source(proto, -1, -1, _cidr(rule))
    return Source(proto, _int(rule.get("FromPort")), _int(rule.get("ToPort")), _cidr(rule))


def open_to_internet(rules: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The live ingress rules that admit the internet, judged together as the decision judges a request
    (:func:`trailguard_engine.netranges.judge`): alone, as a very wide public range, or as part of a covering set
    judged port by port (a cover found only with ports ignored is never revoked).
    """
    live = list(rules)
    verdict = sure(judge([_source(r) for r in live]))
    return [r for i, r in enumerate(live) if i in verdict]


def offending_rules(
    rules: Iterable[Mapping[str, Any]],
    rule_ids: Iterable[str],
    offending: Iterable[Mapping[str, Any]],
    allowed_ports: Iterable[int],
    ranges: Iterable[PortRange] = (),
) -> list[Mapping[str, Any]]:
    """The live ingress rules to revoke.

    A rule is revoked only if it admits the internet now (judged over all the group's live ingress rules, with
    the decision's semantics: any spelling of ``/0``, a very wide public range, a covering set), is not allowed
    (global ``allowed_ports`` or the protocol-aware ``ranges``), and is either one of ``rule_ids`` (when given) or
    matches an ``offending`` spec (when given). With both given, it must satisfy both.
    """
    live = list(rules)
    allowed = set(allowed_ports)
    allowed_ranges = tuple(ranges)
    public = open_to_internet(live)
    return [
        r
        for r in _named(live, rule_ids, offending)
        if any(r is p for p in public) and not _allowed(r, allowed, allowed_ranges)
    ]


def _named(
    rules: Iterable[Mapping[str, Any]], rule_ids: Iterable[str], offending: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The live rules the finding names (by id and/or by spec), allowed or not."""
    ids = set(rule_ids)
    specs = list(offending)
    out = []
    for r in rules:
        if ids and r.get("SecurityGroupRuleId") not in ids:
            continue
        if specs and not any(_matches_spec(r, s) for s in specs):
            continue
        out.append(r)
    return out


def _describe(rule: Mapping[str, Any]) -> str:
    proto = _proto(rule.get("IpProtocol"))
    ports = "all" if proto == "-1" else f"{rule.get('FromPort')}-{rule.get('ToPort')}"
    return f"{rule.get('SecurityGroupRuleId')} {proto}/{ports} from {_cidr(rule)}"


def intended_ranges(ctx: RemediationContext, group: Mapping[str, Any]) -> tuple[tuple[PortRange, ...], list[str]]:
    """The protocol-aware allowances for this group (account, live VPC, live tag) and how each was found."""
    intended = ctx.cfg.intended
    ranges: list[PortRange] = []
    why: list[str] = []
    for label, found in (
        (f"account {ctx.account}", intended.account_ports(ctx.account)),
        (f"VPC {group.get('VpcId')}", intended.vpc_ports(str(group.get("VpcId") or ""))),
    ):
        if found:
            ranges.extend(found)
            why.append(f"config for {label}: {','.join(map(str, found))}")
    tag = intended.tag_ports(tag_list_to_map(group.get("Tags")))
    if tag.ranges:
        ranges.extend(tag.ranges)
    described = tag.describe(intended.port_tag)
    if described:
        why.append(described)
    return tuple(ranges), why


@dataclass(frozen=True, slots=True)
class SgPlan:
    """What :func:`revoke_public_sg_ingress` would do, read live and without writing.

    ``result`` set: nothing to revoke (group gone, rules gone, or all intended), with why. Otherwise
    ``targets`` are the rules to revoke, ``kept_intended`` the named public rules allowed as intended.
    """

    result: ActionResult | None
    group_id: str = ""
    live: tuple[Mapping[str, Any], ...] = ()
    targets: tuple[Mapping[str, Any], ...] = ()
    kept_intended: tuple[Mapping[str, Any], ...] = ()
    because: str = ""


def _sg_plan(ctx: RemediationContext) -> SgPlan:
    """The read-only half of the revoke, shared by the remediation and its live check."""
    group_id = ctx.param("group_id")
    raw_ids = ctx.finding.params.get("rule_ids") or []
    raw_specs = ctx.finding.params.get("offending") or []
    if not isinstance(raw_ids, list) or not isinstance(raw_specs, list):
        raise ParamError("revoke_public_sg_ingress: rule_ids and offending must be lists")
    rule_ids = [i for i in raw_ids if isinstance(i, str) and i]
    specs = [s for s in raw_specs if isinstance(s, Mapping)]
    if not rule_ids and not specs:
        raise ParamError("revoke_public_sg_ingress: neither rule_ids nor offending given; refusing to guess")
    ec2 = ctx.client("ec2")
    group = _group(ctx)
    if group is None:
        return SgPlan(ActionResult("already_safe", f"security group {group_id} no longer exists"))
    try:
        live = _ingress_rules(ec2, group_id)
    except Exception as exc:
        if error_code(exc) == "InvalidGroup.NotFound":
            return SgPlan(ActionResult("already_safe", f"security group {group_id} no longer exists"))
        raise
    ranges, why = intended_ranges(ctx, group)
    public = open_to_internet(live)
    named_public = [r for r in _named(live, rule_ids, specs) if any(r is p for p in public)]
    targets = offending_rules(live, rule_ids, specs, ctx.cfg.allowed_public_ports, ranges)
    kept_intended = [r for r in named_public if r not in targets]
    because = f" ({'; '.join(why)})" if why else ""
    if not targets:
        if kept_intended:
            return SgPlan(
                ActionResult(
                    "skipped",
                    f"security group {group_id}: every offending public rule is intended exposure{because}; "
                    f"no change ({', '.join(_describe(r) for r in kept_intended)})",
                )
            )
        return SgPlan(
            ActionResult("already_safe", f"security group {group_id}: the offending rules are already gone{because}")
        )
    return SgPlan(None, group_id, tuple(live), tuple(targets), tuple(kept_intended), because)


def check_public_sg_ingress(ctx: RemediationContext) -> str | None:
    """Why the group needs nothing now (rules gone or all intended exposure), else None. Read-only."""
    plan = _sg_plan(ctx)
    return plan.result.detail if plan.result is not None else None


@remediation("revoke_public_sg_ingress", resource="group_id", tags=sg_tags, check=check_public_sg_ingress)
def revoke_public_sg_ingress(ctx: RemediationContext) -> ActionResult:
    """Revoke exactly the offending public ingress rules not covered by intended exposure; keep every other rule.

    Intended exposure is read live: the group's VPC (config ``public_ports_by_vpc``) and its allow
    tag (bounded; see :mod:`trailguard_engine.intended`). When everything the finding names is
    intended, nothing changes and the result says why.
    """
    plan = _sg_plan(ctx)
    if plan.result is not None:
        return plan.result
    ec2 = ctx.client("ec2")
    group_id, live, targets, kept_intended, because = (
        plan.group_id,
        plan.live,
        plan.targets,
        plan.kept_intended,
        plan.because,
    )
    ids = [str(r["SecurityGroupRuleId"]) for r in targets]
    ec2.revoke_security_group_ingress(GroupId=group_id, SecurityGroupRuleIds=ids)
    described = [_describe(r) for r in targets]
    kept = f"; kept intended {', '.join(_describe(r) for r in kept_intended)}" if kept_intended else ""
    return ActionResult(
        "remediated",
        f"security group {group_id}: revoked {len(ids)} public rule(s); "
        f"kept {len(live) - len(ids)} other ingress rule(s){kept}{because}",
        tuple(f"ec2:RevokeSecurityGroupIngress {group_id} {d}" for d in described),
    )


# --------------------------------------------------------------------------- #
# Snapshots and AMIs
# --------------------------------------------------------------------------- #


def snapshot_tags(ctx: RemediationContext) -> Mapping[str, str]:
    try:
        snaps = ctx.client("ec2").describe_snapshots(SnapshotIds=[ctx.param("snapshot_id")])["Snapshots"]
    except Exception as exc:
        if error_code(exc) == "InvalidSnapshot.NotFound":
            return {}
        raise
    return tag_list_to_map(snaps[0].get("Tags")) if snaps else {}


@remediation("make_snapshot_private", resource="snapshot_id", tags=snapshot_tags)
def make_snapshot_private(ctx: RemediationContext) -> ActionResult:
    """Remove the ``all`` group from the snapshot's createVolumePermission; keep account shares."""
    snap = ctx.param("snapshot_id")
    ec2 = ctx.client("ec2")
    try:
        perms = ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    except Exception as exc:
        if error_code(exc) == "InvalidSnapshot.NotFound":
            return ActionResult("already_safe", f"snapshot {snap} no longer exists")
        raise
    if not any(p.get("Group") == "all" for p in perms.get("CreateVolumePermissions", [])):
        return ActionResult("already_safe", f"snapshot {snap} is not public")
    # OperationType + GroupNames: the form every implementation honours (CreateVolumePermission.Remove is
    # equivalent on AWS but ignored by some emulators).
    ec2.modify_snapshot_attribute(
        SnapshotId=snap, Attribute="createVolumePermission", OperationType="remove", GroupNames=["all"]
    )
    return ActionResult(
        "remediated",
        f"snapshot {snap}: removed public (all) create-volume permission",
        (f"ec2:ModifySnapshotAttribute {snap} remove group all",),
    )


def image_tags(ctx: RemediationContext) -> Mapping[str, str]:
    try:
        images = ctx.client("ec2").describe_images(ImageIds=[ctx.param("image_id")])["Images"]
    except Exception as exc:
        if error_code(exc) in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
            return {}
        raise
    return tag_list_to_map(images[0].get("Tags")) if images else {}


@remediation("make_ami_private", resource="image_id", tags=image_tags)
def make_ami_private(ctx: RemediationContext) -> ActionResult:
    """Remove the ``all`` group from the AMI's launchPermission; keep account and org shares."""
    image = ctx.param("image_id")
    ec2 = ctx.client("ec2")
    try:
        perms = ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")
    except Exception as exc:
        if error_code(exc) in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
            return ActionResult("already_safe", f"image {image} no longer exists")
        raise
    if not any(p.get("Group") == "all" for p in perms.get("LaunchPermissions", [])):
        return ActionResult("already_safe", f"image {image} is not public")
    ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Remove": [{"Group": "all"}]})
    return ActionResult(
        "remediated",
        f"image {image}: removed public (all) launch permission",
        (f"ec2:ModifyImageAttribute {image} remove group all",),
    )
