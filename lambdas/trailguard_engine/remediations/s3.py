"""S3 bucket remediations: Block Public Access, ACL and bucket policy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trailguard_engine.events import as_list
from trailguard_engine.policy import statement_public
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


def _restore_all_four(s3: Any, bucket: str) -> ActionResult:
    """trailguard's own archive bucket (drift sweep, or the deployed trail's bucket): all four on, public or not."""
    try:
        current = _bpa(s3.get_public_access_block, Bucket=bucket)
    except Exception as exc:
        if error_code(exc) == "NoSuchBucket":
            return ActionResult("already_safe", f"bucket {bucket} no longer exists")
        raise
    off = [f for f in BPA_FLAGS if not current[f]]
    if not off:
        return ActionResult("already_safe", f"bucket {bucket}: all four Block Public Access settings are on")
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=dict.fromkeys(BPA_FLAGS, True))
    return ActionResult(
        "remediated",
        f"bucket {bucket} (trailguard's archive): turned on {', '.join(off)}",
        (f"s3:PutBucketPublicAccessBlock {bucket} ({', '.join(off)} -> true)",),
    )


def _bpa(read: Any, **kwargs: Any) -> dict[str, bool]:
    """A PublicAccessBlockConfiguration as four booleans; a missing configuration is all off."""
    try:
        cfg = read(**kwargs).get("PublicAccessBlockConfiguration", {})
    except Exception as exc:
        if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        cfg = {}
    return {f: cfg.get(f) is True for f in BPA_FLAGS}


_READ_ACTIONS = ("s3:get", "s3:list")


def _read_only(actions: Any) -> bool:
    """True when every action is a Get*/List* action (what a public website needs: reads)."""
    values = as_list(actions)
    return bool(values) and all(isinstance(a, str) and a.lower().startswith(_READ_ACTIONS) for a in values)


@dataclass(frozen=True, slots=True)
class Exposure:
    """Whether a bucket is public right now, and through what (S3's own rules for "public")."""

    bucket_bpa: Mapping[str, bool]
    account_bpa: Mapping[str, bool]
    policy_public: bool
    policy_beyond_reads: bool
    acl_grants: tuple[str, ...]
    acl_beyond_reads: bool

    def effective(self, flag: str) -> bool:
        """S3 applies the most restrictive combination of the bucket and account settings."""
        return self.bucket_bpa[flag] or self.account_bpa[flag]

    @property
    def via_policy(self) -> bool:
        return self.policy_public and not self.effective("RestrictPublicBuckets")

    @property
    def via_acl(self) -> bool:
        return bool(self.acl_grants) and not self.effective("IgnorePublicAcls")

    @property
    def public(self) -> bool:
        return self.via_policy or self.via_acl

    @property
    def beyond_reads(self) -> bool:
        return (self.via_policy and self.policy_beyond_reads) or (self.via_acl and self.acl_beyond_reads)

    def needed(self) -> list[str]:
        """The settings that make the bucket non-public (and keep it so), as few as possible."""
        out = []
        if self.via_acl:
            out += ["BlockPublicAcls", "IgnorePublicAcls"]
        if self.via_policy:
            out += ["BlockPublicPolicy", "RestrictPublicBuckets"]
        return [f for f in BPA_FLAGS if f in out and not self.bucket_bpa[f]]

    def describe(self) -> str:
        parts = []
        if self.policy_public:
            parts.append(
                "bucket policy public" + (" (blocked by RestrictPublicBuckets)" if not self.via_policy else "")
            )
        if self.acl_grants:
            parts.append(
                f"ACL grants {', '.join(self.acl_grants)}"
                + (" (ignored: IgnorePublicAcls)" if not self.via_acl else "")
            )
        account_on = [f for f in BPA_FLAGS if self.account_bpa[f]]
        if account_on:
            parts.append(f"account-level {', '.join(account_on)} on")
        return "; ".join(parts) or "no public policy or ACL grant"


def bucket_exposure(s3: Any, s3control: Any, bucket: str, account: str) -> Exposure:
    """Read the bucket's public exposure live: policy status, policy, ACL, bucket and account BPA."""
    bucket_bpa = _bpa(s3.get_public_access_block, Bucket=bucket)
    account_bpa = _bpa(s3control.get_public_access_block, AccountId=account)
    try:
        policy_public = bool(s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"].get("IsPublic"))
    except Exception as exc:
        if error_code(exc) != "NoSuchBucketPolicy":
            raise
        policy_public = False
    beyond = False
    if policy_public:
        doc = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        public = [st for st in as_list(doc.get("Statement")) if isinstance(st, Mapping) and is_public_statement(st)]
        # IsPublic with no statement we can read as public: be careful, call it more than reads.
        beyond = not public or any("NotAction" in st or not _read_only(st.get("Action")) for st in public)
    grants = [g for g in s3.get_bucket_acl(Bucket=bucket).get("Grants", []) if _is_public_grant(g)]
    labels = tuple(f"{g['Grantee'].get('URI', '').rsplit('/', 1)[-1]}:{g.get('Permission')}" for g in grants)
    return Exposure(
        bucket_bpa=bucket_bpa,
        account_bpa=account_bpa,
        policy_public=policy_public,
        policy_beyond_reads=beyond,
        acl_grants=labels,
        acl_beyond_reads=any(g.get("Permission") != "READ" for g in grants),
    )


@dataclass(frozen=True, slots=True)
class BpaPlan:
    """What :func:`restore_bucket_public_access_block` would do, read live and without writing.

    ``result`` set: nothing to change (already safe, or a public website with reads only), with why.
    Otherwise ``before`` is the exposure to fix and ``website`` the website tag it carries, if any.
    """

    result: ActionResult | None
    before: Exposure | None = None
    website: str | None = None


def _bpa_plan(ctx: RemediationContext, s3: Any, s3control: Any, bucket: str) -> BpaPlan:
    """The read-only half of the BPA restore, shared by the remediation and its live check."""
    try:
        before = bucket_exposure(s3, s3control, bucket, ctx.account)
    except Exception as exc:
        if error_code(exc) == "NoSuchBucket":
            return BpaPlan(ActionResult("already_safe", f"bucket {bucket} no longer exists"))
        raise
    if not before.public:
        return BpaPlan(
            ActionResult("already_safe", f"bucket {bucket} is not public now ({before.describe()}): no change")
        )
    website = ctx.cfg.intended.is_website(ctx.tags(bucket_tags))
    if website and not before.beyond_reads:
        return BpaPlan(
            ActionResult(
                "skipped",
                f"bucket {bucket} is tagged {website} (a public website): public reads are intended; no change "
                f"({before.describe()})",
            )
        )
    return BpaPlan(None, before, website)


def _own_bucket(ctx: RemediationContext, bucket: str) -> bool:
    return ctx.finding.params.get("all_settings") is True or bucket == ctx.cfg.deployed_trail.get("bucket")


def check_bucket_public_access(ctx: RemediationContext) -> str | None:
    """Why the bucket needs nothing now (not public, or a public website serving reads), else None. Read-only."""
    bucket = ctx.param("bucket")
    if _own_bucket(ctx, bucket):
        return None  # trailguard's archive: all four settings, public or not; never judged benign here
    plan = _bpa_plan(ctx, ctx.client("s3"), ctx.client("s3control"), bucket)
    return plan.result.detail if plan.result is not None else None


@remediation(
    "restore_bucket_public_access_block", resource="bucket", tags=bucket_tags, check=check_bucket_public_access
)
def restore_bucket_public_access_block(ctx: RemediationContext) -> ActionResult:
    """Turn Block Public Access settings back on only if the bucket is public now, and only those needed.

    "Public now" is S3's own verdict read live: the bucket policy status, ACL grants to
    AllUsers/AuthenticatedUsers, and the bucket's and the account's Block Public Access (the most
    restrictive combination applies). A DeleteBucketPublicAccessBlock or a request without the
    configuration is judged by that, not taken as "all off". A bucket tagged as a public website
    (config ``intended_exposure.public_website_tag``) keeps public reads; anything more (public
    writes, ACL changes) is still remediated. The result is verified by reading the state again.
    """
    bucket = ctx.param("bucket")
    s3 = ctx.client("s3")
    if _own_bucket(ctx, bucket):
        return _restore_all_four(s3, bucket)
    s3control = ctx.client("s3control")
    plan = _bpa_plan(ctx, s3, s3control, bucket)
    if plan.result is not None:
        return plan.result
    assert plan.before is not None
    before, website = plan.before, plan.website
    needed = before.needed()
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={f: before.bucket_bpa[f] or f in needed for f in BPA_FLAGS},
    )
    after = bucket_exposure(s3, s3control, bucket, ctx.account)
    why = f" although tagged {website} (public access beyond reads)" if website else ""
    change = (f"s3:PutBucketPublicAccessBlock {bucket} ({', '.join(needed)} -> true)",)
    if after.public:
        return ActionResult(
            "failed",
            f"bucket {bucket}: turned on {', '.join(needed)}{why} but it is still public ({after.describe()})",
            change,
            alert=True,
        )
    return ActionResult(
        "remediated",
        f"bucket {bucket} was public ({before.describe()}){why}: turned on {', '.join(needed)}; "
        "verified not public now",
        change,
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
    """True if an Allow statement admits anyone (conditions considered): the decision's own judgement
    (:func:`trailguard_engine.policy.statement_public`), so the remediation removes exactly what was alerted."""
    return statement_public(statement) is not None


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
