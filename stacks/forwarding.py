"""Catalog-derived wiring shared by the member and detection stacks.

Two things are computed here from ``load_catalog()`` and nothing else:

* :func:`forwarding_patterns`: the compact union of every catalog event pattern, which the
  member stacks' forwarding rules use on each account's default bus. Each returned pattern is
  a *generalisation* of some catalog patterns (constraints dropped, value sets merged), so the
  union is a superset of the catalog: every event a catalog rule matches is forwarded.
* :func:`remediation_statements`: the union of the permissions the catalog declares for the
  remediations that run through the member role, with resources scoped to the member account
  where the action supports it. Remediations registered with ``needs_member_role=False`` (today
  only the root access key, through ``sts:AssumeRoot``) run with the engine's own credentials:
  their permissions are listed by :func:`engine_remediation_actions` and never reach the member
  role, which exists in every account (the management account included).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trailguard_engine.matcher import PatternError, validate_pattern
from trailguard_engine.model import Rule
from trailguard_engine.pattern_split import PatternTooLargeError, pattern_size, split_pattern
from trailguard_engine.remediations import registry

#: EventBridge's default event-pattern size quota (characters). It can be raised to 4096
#: through Service Quotas, but the member stack must deploy in accounts that never asked.
MAX_PATTERN_CHARS = 2048
#: Every deployed pattern (central and forwarding rules) is split above this size, 448 characters
#: (22%) under the quota. Growth of the catalog is absorbed at synth (more parts), so the headroom
#: is for what synth does not control: how the service counts (the documentation says
#: "characters" of the pattern without fixing the serialisation; ``pattern_size`` already counts
#: a space after every separator, 5-6% above the compact JSON CloudFormation sends), and a part
#: that cannot be split further (its largest list is one filter), which fails the tests here with
#: room to spare instead of failing a deploy in every member account. 448 characters are about 19
#: event names at 23 characters each with quotes and separator (failed-critical-action's average). A split costs
#: one rule per part (the bus quota is 300 rules, 30 with wildcards: see the detection tests) and
#: no permission (the engine's one ``rule/<bus>/tg-*`` permission covers every part).
PATTERN_SPLIT_CHARS = 1600


@dataclass(frozen=True)
class ForwardingPattern:
    """One forwarding rule: a pattern and whether it must also see read-only management events."""

    pattern: dict[str, Any]
    read_only_events: bool

    @property
    def size(self) -> int:
        return pattern_size(self.pattern)


def _name_filters(detail: Any) -> list[Any] | None:
    """Every eventName filter a ``detail`` pattern requires one of, or None if it does not require one.

    An eventName array is an OR of values and filters (strings, ``prefix``, ...), so the arrays of
    several patterns, or of every alternative of a ``detail.$or``, can be concatenated.
    """
    if not isinstance(detail, Mapping):
        return None
    names = detail.get("eventName")
    if isinstance(names, list) and names:
        return list(names)
    alternatives = detail.get("$or")
    if isinstance(alternatives, list) and alternatives:
        merged: list[Any] = []
        for alt in alternatives:
            alt_names = alt.get("eventName") if isinstance(alt, Mapping) else None
            if not (isinstance(alt_names, list) and alt_names):
                return None
            merged.extend(alt_names)
        return merged
    return None


def _filter_key(f: Any) -> str:
    return f if isinstance(f, str) else json.dumps(f, sort_keys=True)


def _plain_strings(value: Any) -> list[str] | None:
    """The list if it is a non-empty list of plain strings (no content filters), else None."""
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def forwarding_patterns(rules: Iterable[Rule], *, max_chars: int = PATTERN_SPLIT_CHARS) -> list[ForwardingPattern]:
    """Compact superset of the catalog patterns, split to respect the pattern size quota.

    Patterns of the shape ``{source: [..], detail-type: [..], detail: {eventName: [..], ...}}``
    (plain string lists for source and detail-type; any filters for eventName, also inside a
    ``detail.$or``) are merged per (detail-type set, read-only flag) into one pattern with the
    union of sources and eventName filters; every other ``detail`` constraint is dropped, which
    only widens the match. Patterns without a plain ``eventName`` list are merged into a
    separate pattern that keeps just their sources (so they do not widen the others to every
    event name of those sources).
    Anything else (a top-level ``$or``, content filters on source or detail-type, no source)
    is forwarded verbatim as its own pattern. Any pattern above ``max_chars`` is split exactly
    (:func:`~trailguard_engine.pattern_split.split_pattern`: merged eventName lists into chunks,
    verbatim patterns at their largest list or ``$or``).
    """
    groups: dict[tuple[bool, tuple[str, ...], bool], tuple[set[str], dict[str, Any]]] = {}
    verbatim: list[ForwardingPattern] = []
    for rule in rules:
        p = rule.event_pattern
        sources = _plain_strings(p.get("source"))
        dtypes = _plain_strings(p.get("detail-type"))
        extra_top = set(p) - {"source", "detail-type", "detail", "account", "region"}
        if sources is None or dtypes is None or extra_top:
            verbatim.append(ForwardingPattern(dict(p), rule.read_only_events))
            continue
        names = _name_filters(p.get("detail"))
        key = (rule.read_only_events, tuple(sorted(set(dtypes))), names is not None)
        group_sources, group_names = groups.setdefault(key, (set(), {}))
        group_sources.update(sources)
        group_names.update((_filter_key(f), f) for f in names or ())

    out: list[ForwardingPattern] = []
    for (read_only, group_dtypes, by_name), (group_sources, group_names) in sorted(groups.items()):
        base: dict[str, Any] = {"source": sorted(group_sources), "detail-type": list(group_dtypes)}
        if not by_name:
            out.append(ForwardingPattern(base, read_only))
            continue
        ordered = [group_names[k] for k in sorted(group_names)]
        merged = {**base, "detail": {"eventName": ordered}}
        out.extend(ForwardingPattern(p, read_only) for p in _split(merged, max_chars))
    for fp in verbatim:
        out.extend(ForwardingPattern(p, fp.read_only_events) for p in _split(fp.pattern, max_chars))
    for fp in out:  # a merged pattern must still be one EventBridge accepts
        try:
            validate_pattern(fp.pattern)
        except PatternError as exc:
            raise ValueError(f"forwarding pattern rejected as EventBridge would: {exc}: {fp.pattern}") from exc
    return out


def _split(pattern: dict[str, Any], max_chars: int) -> list[dict[str, Any]]:
    try:
        return split_pattern(pattern, max_chars)
    except PatternError as exc:
        raise ValueError(f"forwarding pattern rejected as EventBridge would: {exc}: {pattern}") from exc
    except PatternTooLargeError as exc:
        raise ValueError(f"forwarding pattern exceeds the {max_chars}-character limit: {exc}") from exc


# --------------------------------------------------------------------------- #
# Remediation permissions
# --------------------------------------------------------------------------- #

#: Resource ARN templates for actions known to support resource-level permissions.
#: ``{p}`` is the partition, ``{a}`` the account. Actions not listed here (Describe*, most
#: List*, Config, Security Hub...) do not support resource-level permissions and get "*".
_RESOURCE_SCOPES: dict[str, tuple[str, ...]] = {
    "cloudtrail": ("arn:{p}:cloudtrail:*:{a}:trail/*",),
    "s3": ("arn:{p}:s3:::*",),
    "kms": ("arn:{p}:kms:*:{a}:key/*",),
    "iam": ("arn:{p}:iam::{a}:user/*", "arn:{p}:iam::{a}:group/*", "arn:{p}:iam::{a}:role/*"),
    "guardduty": ("arn:{p}:guardduty:*:{a}:detector/*",),
}
_ACTION_SCOPES: dict[str, tuple[str, ...]] = {
    "ec2:RevokeSecurityGroupIngress": ("arn:{p}:ec2:*:{a}:security-group/*", "arn:{p}:ec2:*:{a}:security-group-rule/*"),
    "ec2:ModifySnapshotAttribute": ("arn:{p}:ec2:*::snapshot/*",),
    "ec2:ModifyImageAttribute": ("arn:{p}:ec2:*::image/*",),
    "rds:ModifyDBSnapshotAttribute": ("arn:{p}:rds:*:{a}:snapshot:*",),
    "rds:ModifyDBClusterSnapshotAttribute": ("arn:{p}:rds:*:{a}:cluster-snapshot:*",),
    "rds:DescribeDBSnapshotAttributes": ("arn:{p}:rds:*:{a}:snapshot:*",),
    "rds:DescribeDBClusterSnapshotAttributes": ("arn:{p}:rds:*:{a}:cluster-snapshot:*",),
}
#: Actions of a scoped service that still only accept "*" as their resource.
_UNSCOPED_ACTIONS: frozenset[str] = frozenset(
    {
        "cloudtrail:DescribeTrails",
        "cloudtrail:ListTrails",
        "s3:ListAllMyBuckets",
        "s3:GetAccountPublicAccessBlock",
        "kms:ListKeys",
        "kms:ListAliases",
        "kms:CreateKey",
        "iam:ListUsers",
        "iam:ListRoles",
        "iam:ListGroups",
        "iam:GetAccountSummary",
        "iam:ListAccountAliases",
        "guardduty:ListDetectors",
        "guardduty:CreateDetector",
    }
)


def runs_through_member_role(rule: Rule) -> bool:
    """Whether the rule's remediation acts through the member role (every registered one but a few)."""
    if rule.remediation is None:
        return False
    registered = registry().get(rule.remediation.action)
    if registered is None:  # the catalog meta-tests refuse unregistered actions; stay on the safe side
        raise ValueError(f"{rule.id}: remediation action {rule.remediation.action!r} is not registered")
    return registered.needs_member_role


def _declared(rules: Iterable[Rule], *, member_role: bool) -> list[str]:
    actions: set[str] = set()
    for rule in rules:
        if rule.remediation is None or runs_through_member_role(rule) is not member_role:
            continue
        for a in rule.remediation.permissions:
            if "*" in a or ":" not in a:
                raise ValueError(f"{rule.id}: remediation permission {a!r} must be one exact service:Action")
            actions.add(a)
    return sorted(actions)


def remediation_actions(rules: Iterable[Rule]) -> list[str]:
    """Sorted union of every action the catalog's member-role remediations declare."""
    return _declared(rules, member_role=True)


def engine_remediation_actions(rules: Iterable[Rule]) -> list[str]:
    """Sorted union of the actions declared by remediations that run with the engine's own credentials.

    For the root access key these are ``sts:AssumeRoot`` (granted to the engine role, pinned to one
    task policy) and the calls made *inside* the privileged root session, which the AWS-managed task
    policy authorizes: no IAM policy of trailguard grants those.
    """
    return _declared(rules, member_role=False)


def scope_for(action: str, *, partition: str, account: str) -> tuple[str, ...]:
    """Resource ARNs an action is granted on in the member account."""
    if action in _UNSCOPED_ACTIONS:
        return ("*",)
    templates = _ACTION_SCOPES.get(action) or _RESOURCE_SCOPES.get(action.split(":", 1)[0])
    if not templates:
        return ("*",)
    return tuple(t.format(p=partition, a=account) for t in templates)


def remediation_statements(rules: Iterable[Rule], *, partition: str, account: str) -> list[dict[str, Any]]:
    """IAM policy statements (JSON form) covering exactly :func:`remediation_actions`.

    Actions with the same resource scope share one statement, so the policy stays small.
    """
    by_scope: dict[tuple[str, ...], list[str]] = {}
    for action in remediation_actions(rules):
        by_scope.setdefault(scope_for(action, partition=partition, account=account), []).append(action)
    statements = []
    for i, (resources, actions) in enumerate(sorted(by_scope.items(), key=lambda kv: kv[1][0])):
        statements.append(
            {
                "Sid": f"CatalogRemediation{i}",
                "Effect": "Allow",
                "Action": sorted(actions),
                "Resource": list(resources) if len(resources) > 1 else resources[0],
            }
        )
    return statements
