"""Decisions for AWS Organizations rules."""

from __future__ import annotations

from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig


@decision("org_policy_detached")
def org_policy_detached(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """DetachPolicy: risky for the root (``r-``) or an OU (``ou-``), not for a single account."""
    target = event.req("targetId")
    policy = event.req("policyId")
    if not isinstance(target, str) or not target.startswith(("r-", "ou-")):
        return Assessment(False, f"policy detached from {target!s}, not from the root or an OU")
    kind = "root" if target.startswith("r-") else "OU"
    return Assessment(
        True,
        f"policy {policy!s} detached from the {kind} {target} by {event.principal_arn or 'unknown principal'}",
        {"type": "AWS::Organizations::Policy", "id": f"{policy!s}@{target}"},
    )
