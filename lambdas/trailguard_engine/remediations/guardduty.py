"""GuardDuty remediation: re-enable a disabled detector."""

from __future__ import annotations

from collections.abc import Mapping

from trailguard_engine.remediations import ActionResult, RemediationContext, error_code, remediation


def detector_tags(ctx: RemediationContext) -> Mapping[str, str]:
    try:
        tags = ctx.client("guardduty").get_detector(DetectorId=ctx.param("detector_id")).get("Tags") or {}
    except Exception as exc:
        if error_code(exc) == "BadRequestException":
            return {}
        raise
    return {str(k): str(v) for k, v in tags.items()}


@remediation("enable_guardduty_detector", resource="detector_id", tags=detector_tags)
def enable_guardduty_detector(ctx: RemediationContext) -> ActionResult:
    """Enable the detector if it is still disabled. No other detector setting changes."""
    det = ctx.param("detector_id")
    gd = ctx.client("guardduty")
    try:
        status = gd.get_detector(DetectorId=det).get("Status")
    except Exception as exc:
        if error_code(exc) == "BadRequestException":
            return ActionResult("failed", f"detector {det} not found in {ctx.region}", alert=True)
        raise
    if status == "ENABLED":
        return ActionResult("already_safe", f"detector {det} is enabled")
    gd.update_detector(DetectorId=det, Enable=True)
    return ActionResult("remediated", f"enabled GuardDuty detector {det}", (f"guardduty:UpdateDetector {det} enable",))
