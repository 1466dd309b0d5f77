"""Decisions about destroying what recovery depends on (issue 14, MITRE T1490 / T1485): database backups
and final snapshots. AWS Backup deletions are plain ``request_resource`` rules (any successful call by a
non-service caller is the event); these need the request read as a whole.
"""

from __future__ import annotations

from trailguard_engine.decisions import decision
from trailguard_engine.decisions.evasion import field, is_false, is_true
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig


@decision("rds_deleted_without_backup")
def rds_deleted_without_backup(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """DeleteDBInstance / DeleteDBCluster that leaves nothing to restore from: no final snapshot
    (``skipFinalSnapshot`` true) and the automated backups deleted with it (``deleteAutomatedBackups``,
    whose API default is true: absent means deleted). Either one kept is a way back, so not risky."""
    req = event.request
    cluster = event.event_name == "DeleteDBCluster"
    ident = field(req, "dBClusterIdentifier" if cluster else "dBInstanceIdentifier")
    ident = str(ident) if ident else "?"
    if not is_true(field(req, "skipFinalSnapshot")):
        return Assessment(False, f"{ident}: a final snapshot is taken")
    if is_false(field(req, "deleteAutomatedBackups")):
        return Assessment(False, f"{ident}: automated backups are retained")
    kind = "cluster" if cluster else "instance"
    who = event.principal_arn or event.identity_type or "unknown principal"
    return Assessment(
        True,
        f"RDS {kind} {ident} deleted with no final snapshot and its automated backups by {who}",
        {"type": "AWS::RDS::DBCluster" if cluster else "AWS::RDS::DBInstance", "id": ident},
        remediable=False,
    )
