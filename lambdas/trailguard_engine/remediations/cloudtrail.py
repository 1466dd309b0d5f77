"""CloudTrail remediations."""

from __future__ import annotations

from collections.abc import Mapping

from trailguard_engine.remediations import ActionResult, RemediationContext, remediation


def _trail_arn(ctx: RemediationContext) -> str:
    trail = ctx.param("trail")
    if trail.startswith("arn:"):
        return trail
    return f"arn:{ctx.partition()}:cloudtrail:{ctx.region}:{ctx.account}:trail/{trail}"


def _trail_region(arn: str, default: str) -> str:
    """Trail APIs must be called in the trail's home region (a multi-region trail's events come from everywhere)."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else default


def trail_tags(ctx: RemediationContext) -> Mapping[str, str]:
    arn = _trail_arn(ctx)
    ct = ctx.session_client("cloudtrail", _trail_region(arn, ctx.region))
    resp = ct.list_tags(ResourceIdList=[arn])
    out: dict[str, str] = {}
    for entry in resp.get("ResourceTagList", []):
        for t in entry.get("TagsList", []) or []:
            out[str(t.get("Key"))] = str(t.get("Value", ""))
    return out


@remediation("start_logging", resource="trail", tags=trail_tags)
def start_logging(ctx: RemediationContext) -> ActionResult:
    """Start the trail again if it is still stopped. Changes nothing else on the trail."""
    arn = _trail_arn(ctx)
    ct = ctx.session_client("cloudtrail", _trail_region(arn, ctx.region))
    if ct.get_trail_status(Name=arn).get("IsLogging"):
        return ActionResult("already_safe", f"trail {arn} is logging")
    ct.start_logging(Name=arn)
    return ActionResult("remediated", f"started logging on {arn}", (f"cloudtrail:StartLogging {arn}",))
