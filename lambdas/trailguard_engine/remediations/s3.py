"""S3 bucket remediations: Block Public Access, ACL and bucket policy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from trailguard_engine.events import as_list
from trailguard_engine.remediations import ActionResult, RemediationContext, error_code, remediation, tag_list_to_map

BPA_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
PUBLIC_GROUPS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


def bucket_tags(ctx: RemediationContext) -> Mapping[str, str]:
    try:
        resp = ctx.client("s3").get_bucket_tagging(Bucket=ctx.param("bucket"))
    except Exception as exc:
        if error_code(exc) in ("NoSuchTagSet", "NoSuchBucket"):
            return {}
        raise
    return tag_list_to_map(resp.get("TagSet"))


@remediation("restore_bucket_public_access_block", resource="bucket", tags=bucket_tags)
def restore_bucket_public_access_block(ctx: RemediationContext) -> ActionResult:
    """Turn on all four bucket-level Block Public Access settings (only if one is off)."""
    bucket = ctx.param("bucket")
    s3 = ctx.client("s3")
    try:
        current = s3.get_public_access_block(Bucket=bucket).get("PublicAccessBlockConfiguration", {})
    except Exception as exc:
        if error_code(exc) == "NoSuchBucket":
            return ActionResult("already_safe", f"bucket {bucket} no longer exists")
        if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        current = {}
    off = [f for f in BPA_FLAGS if current.get(f) is not True]
    if not off:
        return ActionResult("already_safe", f"bucket {bucket}: all four Block Public Access settings are on")
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=dict.fromkeys(BPA_FLAGS, True))
    return ActionResult(
        "remediated",
        f"bucket {bucket}: turned on {', '.join(off)}",
        (f"s3:PutBucketPublicAccessBlock {bucket} ({', '.join(off)} -> true)",),
    )


def _is_public_grant(grant: Mapping[str, Any]) -> bool:
    grantee = grant.get("Grantee") or {}
    return grantee.get("Type") == "Group" and grantee.get("URI") in PUBLIC_GROUPS


@remediation("make_bucket_acl_private", resource="bucket", tags=bucket_tags)
def make_bucket_acl_private(ctx: RemediationContext) -> ActionResult:
    """Remove the AllUsers/AuthenticatedUsers grants; keep the owner, log-delivery and every other grant."""
    bucket = ctx.param("bucket")
    s3 = ctx.client("s3")
    try:
        acl = s3.get_bucket_acl(Bucket=bucket)
    except Exception as exc:
        if error_code(exc) == "NoSuchBucket":
            return ActionResult("already_safe", f"bucket {bucket} no longer exists")
        raise
    grants = acl.get("Grants", [])
    public = [g for g in grants if _is_public_grant(g)]
    if not public:
        return ActionResult("already_safe", f"bucket {bucket}: ACL has no public grants")
    kept = [g for g in grants if not _is_public_grant(g)]
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Owner": acl["Owner"], "Grants": kept})
    removed = [f"{g['Grantee'].get('URI', '').rsplit('/', 1)[-1]}:{g.get('Permission')}" for g in public]
    return ActionResult(
        "remediated",
        f"bucket {bucket}: removed public ACL grants {', '.join(removed)}; kept {len(kept)} other grant(s)",
        (f"s3:PutBucketAcl {bucket} (removed {', '.join(removed)})",),
    )


def is_public_statement(statement: Mapping[str, Any]) -> bool:
    """True if an Allow statement grants access to anyone on the internet (conditions considered)."""
    if statement.get("Effect") != "Allow":
        return False
    from policyuniverse.statement import Statement  # noqa: PLC0415 - lazy: ~120 ms of import, only needed here

    return bool(Statement(dict(statement)).is_internet_accessible())


@remediation("remove_public_bucket_policy_statements", resource="bucket", tags=bucket_tags)
def remove_public_bucket_policy_statements(ctx: RemediationContext) -> ActionResult:
    """Delete only the public statements; delete the policy if none remain."""
    bucket = ctx.param("bucket")
    s3 = ctx.client("s3")
    try:
        raw = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except Exception as exc:
        if error_code(exc) in ("NoSuchBucketPolicy", "NoSuchBucket"):
            return ActionResult("already_safe", f"bucket {bucket} has no bucket policy")
        raise
    doc = json.loads(raw)
    statements = [s for s in as_list(doc.get("Statement")) if isinstance(s, Mapping)]
    public = [s for s in statements if is_public_statement(s)]
    if not public:
        return ActionResult("already_safe", f"bucket {bucket}: no public statements in the bucket policy")
    labels = [str(s.get("Sid") or f"#{statements.index(s)}") for s in public]
    remaining = [s for s in statements if not is_public_statement(s)]
    if not remaining:
        s3.delete_bucket_policy(Bucket=bucket)
        return ActionResult(
            "remediated",
            f"bucket {bucket}: every statement was public ({', '.join(labels)}); deleted the policy",
            (f"s3:DeleteBucketPolicy {bucket}",),
        )
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({**doc, "Statement": remaining}))
    return ActionResult(
        "remediated",
        f"bucket {bucket}: removed public statement(s) {', '.join(labels)}; kept {len(remaining)}",
        (f"s3:PutBucketPolicy {bucket} (removed {', '.join(labels)})",),
    )
