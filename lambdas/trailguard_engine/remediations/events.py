"""EventBridge remediations: trailguard's own rules."""

from __future__ import annotations

from trailguard_engine.remediations import ActionResult, RemediationContext, remediation


@remediation("enable_eventbridge_rule", resource="rule")
def enable_eventbridge_rule(ctx: RemediationContext) -> ActionResult:
    """Enable the rule again if it is still disabled: ``EnableRule``, the exact inverse of ``DisableRule``.

    Pattern, targets, description and tags are left as they are. The decision offers this only for
    rules whose intended state is plain ``ENABLED`` (``EnableRule`` cannot restore
    ``ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS``), so it never disagrees with CloudFormation.
    """
    name, bus = ctx.param("rule"), ctx.param("event_bus")
    events = ctx.client("events")
    state = events.describe_rule(Name=name, EventBusName=bus).get("State")
    if state != "DISABLED":
        return ActionResult("already_safe", f"rule {bus}/{name} is {state}")
    events.enable_rule(Name=name, EventBusName=bus)
    return ActionResult("remediated", f"enabled rule {bus}/{name} again", (f"events:EnableRule {bus}/{name}",))
