"""RDS remediations: public DB and cluster snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trailguard_engine.remediations import ActionResult, RemediationContext, error_code, remediation, tag_list_to_map

_NOT_FOUND = ("DBSnapshotNotFound", "DBSnapshotNotFoundFault", "DBClusterSnapshotNotFoundFault")


def db_snapshot_tags(ctx: RemediationContext) -> Mapping[str, str]:
    try:
        snaps = ctx.client("rds").describe_db_snapshots(DBSnapshotIdentifier=ctx.param("snapshot_id"))["DBSnapshots"]
    except Exception as exc:
        if error_code(exc) in _NOT_FOUND:
            return {}
        raise
    return tag_list_to_map(snaps[0].get("TagList")) if snaps else {}


def db_cluster_snapshot_tags(ctx: RemediationContext) -> Mapping[str, str]:
    try:
        snaps = ctx.client("rds").describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=ctx.param("snapshot_id"))[
            "DBClusterSnapshots"
        ]
    except Exception as exc:
        if error_code(exc) in _NOT_FOUND:
            return {}
        raise
    return tag_list_to_map(snaps[0].get("TagList")) if snaps else {}


def _restore_values(attrs: list[Mapping[str, Any]]) -> list[str]:
    for a in attrs:
        if a.get("AttributeName") == "restore":
            return [str(v) for v in a.get("AttributeValues") or []]
    return []


@remediation("make_db_snapshot_private", resource="snapshot_id", tags=db_snapshot_tags)
def make_db_snapshot_private(ctx: RemediationContext) -> ActionResult:
    """Remove ``all`` from the snapshot's restore attribute; keep the accounts it is shared with."""
    snap = ctx.param("snapshot_id")
    rds = ctx.client("rds")
    try:
        resp = rds.describe_db_snapshot_attributes(DBSnapshotIdentifier=snap)
    except Exception as exc:
        if error_code(exc) in _NOT_FOUND:
            return ActionResult("already_safe", f"DB snapshot {snap} no longer exists")
        raise
    values = _restore_values(resp["DBSnapshotAttributesResult"].get("DBSnapshotAttributes", []))
    if "all" not in values:
        return ActionResult("already_safe", f"DB snapshot {snap} is not public")
    rds.modify_db_snapshot_attribute(DBSnapshotIdentifier=snap, AttributeName="restore", ValuesToRemove=["all"])
    return ActionResult(
        "remediated",
        f"DB snapshot {snap}: removed public (all) restore permission",
        (f"rds:ModifyDBSnapshotAttribute {snap} restore -all",),
    )


@remediation("make_db_cluster_snapshot_private", resource="snapshot_id", tags=db_cluster_snapshot_tags)
def make_db_cluster_snapshot_private(ctx: RemediationContext) -> ActionResult:
    """Remove ``all`` from the cluster snapshot's restore attribute; keep account shares."""
    snap = ctx.param("snapshot_id")
    rds = ctx.client("rds")
    try:
        resp = rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=snap)
    except Exception as exc:
        if error_code(exc) in _NOT_FOUND:
            return ActionResult("already_safe", f"DB cluster snapshot {snap} no longer exists")
        raise
    values = _restore_values(resp["DBClusterSnapshotAttributesResult"].get("DBClusterSnapshotAttributes", []))
    if "all" not in values:
        return ActionResult("already_safe", f"DB cluster snapshot {snap} is not public")
    rds.modify_db_cluster_snapshot_attribute(
        DBClusterSnapshotIdentifier=snap, AttributeName="restore", ValuesToRemove=["all"]
    )
    return ActionResult(
        "remediated",
        f"DB cluster snapshot {snap}: removed public (all) restore permission",
        (f"rds:ModifyDBClusterSnapshotAttribute {snap} restore -all",),
    )
