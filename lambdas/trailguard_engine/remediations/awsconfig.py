"""AWS Config remediation: restart a stopped configuration recorder."""

from __future__ import annotations

from trailguard_engine.remediations import ActionResult, RemediationContext, error_code, remediation


@remediation("start_config_recorder", resource="recorder")
def start_config_recorder(ctx: RemediationContext) -> ActionResult:
    """Start the recorder if it is still stopped (recorders cannot be tagged: no tag exemption)."""
    name = ctx.param("recorder")
    cfg = ctx.client("config")
    try:
        status = cfg.describe_configuration_recorder_status(ConfigurationRecorderNames=[name])
    except Exception as exc:
        if error_code(exc) == "NoSuchConfigurationRecorderException":
            return ActionResult("failed", f"configuration recorder {name} no longer exists", alert=True)
        raise
    entries = status.get("ConfigurationRecordersStatus", [])
    if entries and entries[0].get("recording"):
        return ActionResult("already_safe", f"configuration recorder {name} is recording")
    cfg.start_configuration_recorder(ConfigurationRecorderName=name)
    return ActionResult(
        "remediated", f"started configuration recorder {name}", (f"config:StartConfigurationRecorder {name}",)
    )
