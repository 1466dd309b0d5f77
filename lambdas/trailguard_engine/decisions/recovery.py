"""Decisions about destroying what recovery depends on (issue 14, MITRE T1490 / T1485): database backups
and final snapshots, and AWS Backup vault policies that let someone else at the recovery points. AWS Backup deletions are plain ``request_resource`` rules (any successful call by a
non-service caller is the event); these need the request read as a whole.
"""

from __future__ import annotations

from trailguard_engine.decisions import decision
from trailguard_engine.decisions.evasion import field, is_false, is_true
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import external_grants, known_accounts, parse_policy, public_statements, request_too_large
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


@decision("backup_vault_policy")
def backup_vault_policy(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutBackupVaultAccessPolicy admitting anyone, or an account outside the organization and trusted list:
    they can then copy, restore or (with ``backup:DeleteRecoveryPoint``) destroy the vault's recovery points.
    The policy is read in every encoding CloudTrail logs it in; a request too large to log, or a policy that
    cannot be read, is an alert of its own (its content cannot be judged)."""
    req = event.request
    vault = field(req, "backupVaultName")
    vault = str(vault) if vault else "?"
    resource = {"type": "AWS::Backup::BackupVault", "id": vault}
    who = event.principal_arn or event.identity_type or "unknown principal"
    if request_too_large(req):
        return Assessment(True, f"vault access policy too large to log, set by {who}", resource, remediable=False)
    parsed = parse_policy(field(req, "policy"))
    if parsed.document is None:
        why = f"vault {vault} access policy cannot be read ({parsed.error}), set by {who}"
        return Assessment(True, why, resource, remediable=False)
    public = public_statements(parsed.document, event.account)
    external = external_grants(parsed.document, event.account, known_accounts(cfg), org_id=cfg.org_id)
    if not public and not external:
        return Assessment(False, f"vault {vault} access policy admits only this organization's accounts")
    parts = ([f"public: {'; '.join(public)}"] if public else []) + (
        [f"accounts outside the organization: {', '.join(external)}"] if external else []
    )
    return Assessment(True, f"vault {vault} access policy set by {who}: {'; '.join(parts)}", resource, remediable=False)
