"""Decisions for CloudTrail tampering rules."""

from __future__ import annotations

from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig


def _trail_arn(event: CloudTrailEvent) -> str:
    name = event.req("name")
    if not isinstance(name, str) or not name:
        return ""
    if name.startswith("arn:"):
        return name
    return f"arn:aws:cloudtrail:{event.region}:{event.account}:trail/{name}"


@decision("trail_target")
def trail_target(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Risky whenever it happened; names the trail for the remediation."""
    arn = _trail_arn(event)
    if not arn:
        return Assessment(True, f"{event.event_name} without a trail name in the request", remediable=False)
    return Assessment(
        True,
        f"{event.event_name} on trail {arn} by {event.principal_arn or 'unknown principal'}",
        resource={"type": "AWS::CloudTrail::Trail", "id": arn},
        params={"trail": arn},
    )
