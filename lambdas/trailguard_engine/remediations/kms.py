"""KMS remediations: cancel deletion of / re-enable protected keys only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trailguard_engine.remediations import ActionResult, RemediationContext, error_code, remediation, tag_list_to_map


def key_tags(ctx: RemediationContext) -> Mapping[str, str]:
    try:
        resp = ctx.client("kms").list_resource_tags(KeyId=ctx.param("key_id"))
    except Exception as exc:
        if error_code(exc) == "NotFoundException":
            return {}
        raise
    return tag_list_to_map(resp.get("Tags"), "TagKey", "TagValue")


def _protected(ctx: RemediationContext, meta: Mapping[str, Any]) -> str | None:
    """Why the key is protected (ARN listed or tag present), or None."""
    arn = str(meta.get("Arn", ""))
    if arn in ctx.cfg.protected_key_arns:
        return f"{arn} is listed in protected_key_arns"
    # The deployment lists the trail keys by alias ARN (the key ids are not known
    # across accounts at synth time): resolve the aliases of this key's account and region.
    prefix = arn.split(":key/", 1)[0]
    for protected in sorted(ctx.cfg.protected_key_arns):
        if not protected.startswith(prefix + ":alias/"):
            continue
        try:
            resolved = ctx.client("kms").describe_key(KeyId=protected)["KeyMetadata"].get("Arn")
        except Exception as exc:
            if error_code(exc) == "NotFoundException":
                continue
            raise
        if resolved == arn:
            return f"{arn} is the protected key {protected}"
    want = ctx.cfg.protected_key_tag
    if want:
        tags = ctx.tags(key_tags)
        if all(tags.get(k) == v for k, v in want.items()):
            return "tagged " + ", ".join(f"{k}={v}" for k, v in want.items())
    return None


def _unprotected(key: str) -> ActionResult:
    return ActionResult(
        "skipped",
        f"key {key} is not protected (no protected_key_tag, not in protected_key_arns): not touching it",
        alert=True,
    )


@remediation("cancel_key_deletion", resource="key_id", tags=key_tags)
def cancel_key_deletion(ctx: RemediationContext) -> ActionResult:
    """Cancel a protected key's scheduled deletion and enable it again.

    CancelKeyDeletion leaves the key Disabled, which still breaks everything
    encrypting with it (a trail cannot write its logs): a protected key's
    intended state is Enabled, so it is re-enabled in the same step.
    """
    key = ctx.param("key_id")
    kms = ctx.client("kms")
    try:
        meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    except Exception as exc:
        if error_code(exc) == "NotFoundException":
            return ActionResult("failed", f"key {key} not found", alert=True)
        raise
    if meta.get("KeyState") != "PendingDeletion":
        return ActionResult("already_safe", f"key {key} is {meta.get('KeyState')}, not pending deletion")
    why = _protected(ctx, meta)
    if why is None:
        return _unprotected(key)
    kid = str(meta.get("KeyId") or key)  # the bare id: accepted everywhere, ARNs are not by every implementation
    kms.cancel_key_deletion(KeyId=kid)
    kms.enable_key(KeyId=kid)
    return ActionResult(
        "remediated",
        f"key {key} ({why}): cancelled the scheduled deletion and enabled it",
        (f"kms:CancelKeyDeletion {key}", f"kms:EnableKey {key}"),
    )


@remediation("enable_key", resource="key_id", tags=key_tags)
def enable_key(ctx: RemediationContext) -> ActionResult:
    """Enable a protected key that was disabled."""
    key = ctx.param("key_id")
    kms = ctx.client("kms")
    try:
        meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    except Exception as exc:
        if error_code(exc) == "NotFoundException":
            return ActionResult("failed", f"key {key} not found", alert=True)
        raise
    state = meta.get("KeyState")
    if state == "Enabled":
        return ActionResult("already_safe", f"key {key} is enabled")
    if state != "Disabled":
        return ActionResult("skipped", f"key {key} is {state}; only a Disabled key is re-enabled", alert=True)
    why = _protected(ctx, meta)
    if why is None:
        return _unprotected(key)
    kms.enable_key(KeyId=str(meta.get("KeyId") or key))
    return ActionResult("remediated", f"key {key} ({why}): enabled", (f"kms:EnableKey {key}",))
