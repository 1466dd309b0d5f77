"""Defense-evasion decisions (issue 14): suppressing, narrowing or filtering detective controls, and destroying
backups. Each test names the request shape it proves and would fail if the decision stopped reading it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.decisions.detective import log_group_name
from trailguard_engine.decisions.evasion import field, is_false, recorder_narrowing
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment
from trailguard_engine.runtime_config import RuntimeConfig

Ev = Callable[..., CloudTrailEvent]
Run = Callable[..., Assessment]
GD = "guardduty.amazonaws.com"
SH = "securityhub.amazonaws.com"
DET = "2ac6d1e0c8f94e4f9a1c3b7d5e0f1a2b"


# --------------------------------------------------------------------------- helpers


def test_field_matches_keys_without_case_and_prefers_the_exact_key() -> None:
    req = {"Workflow": {"Status": "SUPPRESSED"}, "workflow": {"status": "NEW"}}
    assert field(req, "Workflow", "Status") == "SUPPRESSED"
    assert field({"workflow": {"status": "x"}}, "Workflow", "Status") == "x"
    assert field({"a": 1}, "a", "b") is None
    assert field(None, "a") is None


@pytest.mark.parametrize(
    ("value", "expected"), [(False, True), ("false", True), (" FALSE ", True), (0, False), (None, False), (True, False)]
)
def test_is_false_reads_booleans_in_both_forms(value: Any, expected: bool) -> None:
    assert is_false(value) is expected


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("/trailguard/cloudtrail", "/trailguard/cloudtrail"),
        ("arn:aws:logs:us-east-1:111122223333:log-group:/trailguard/cloudtrail:*", "/trailguard/cloudtrail"),
        ("arn:aws:logs:us-east-1:111122223333:log-group:/Org/CLOUDTRAIL", "/Org/CLOUDTRAIL"),
        (" vpc-flow ", "vpc-flow"),
        (None, ""),
    ],
)
def test_log_group_name_reads_names_and_arns(raw: Any, name: str) -> None:
    assert log_group_name(raw) == name


# --------------------------------------------------------------------------- GuardDuty


def test_detector_suspended_is_remediable_with_the_detector(ev: Ev, run: Run) -> None:
    a = run("guardduty-detector-disabled", ev("UpdateDetector", {"detectorId": DET, "enable": False}, source=GD))
    assert a.risky and a.remediable and a.params == {"detector_id": DET}


def test_detector_suspended_as_a_string_flag(ev: Ev, run: Run) -> None:
    a = run("guardduty-detector-disabled", ev("UpdateDetector", {"detectorId": DET, "enable": "false"}, source=GD))
    assert a.risky and a.remediable


def test_detector_left_enabled_is_not_risky(ev: Ev, run: Run) -> None:
    a = run("guardduty-detector-disabled", ev("UpdateDetector", {"detectorId": DET, "enable": True}, source=GD))
    assert not a.risky
    a = run("guardduty-detector-disabled", ev("UpdateDetector", {"detectorId": DET, "features": []}, source=GD))
    assert not a.risky


def test_stop_monitoring_members_alerts_without_remediation(ev: Ev, run: Run) -> None:
    a = run(
        "guardduty-detector-disabled",
        ev("StopMonitoringMembers", {"detectorId": DET, "accountIds": ["444455556666"]}, source=GD),
    )
    assert a.risky and not a.remediable and "444455556666" in a.reason


def test_detector_suspended_without_an_id_is_alert_only(ev: Ev, run: Run) -> None:
    a = run("guardduty-detector-disabled", ev("UpdateDetector", {"enable": False}, source=GD))
    assert a.risky and not a.remediable


@pytest.mark.parametrize(
    "request_",
    [
        {"detectorId": DET, "features": [{"name": "S3_DATA_EVENTS", "status": "DISABLED"}]},
        {"detectorId": DET, "features": [{"name": "RUNTIME_MONITORING", "status": "ENABLED",
                                          "additionalConfiguration": [{"name": "ECS_FARGATE_AGENT_MANAGEMENT", "status": "DISABLED"}]}]},
        {"detectorId": DET, "features": {"name": "LAMBDA_NETWORK_LOGS", "status": "disabled"}},
        {"detectorId": DET, "dataSources": {"kubernetes": {"auditLogs": {"enable": False}}}},
        {"detectorId": DET, "dataSources": {"malwareProtection": {"scanEc2InstanceWithFindings": {"ebsVolumes": False}}}},
    ],
)  # fmt: skip
def test_protection_plan_off_fires(ev: Ev, run: Run, request_: dict[str, Any]) -> None:
    a = run("guardduty-protection-disabled", ev("UpdateDetector", request_, source=GD))
    assert a.risky and not a.remediable


def test_protection_plans_on_do_not_fire(ev: Ev, run: Run) -> None:
    req = {
        "detectorId": DET,
        "features": [{"name": "S3_DATA_EVENTS", "status": "ENABLED"}],
        "dataSources": {"s3Logs": {"enable": True}},
    }
    assert not run("guardduty-protection-disabled", ev("UpdateDetector", req, source=GD)).risky


def test_organization_auto_enable_none_fires_and_all_does_not(ev: Ev, run: Run) -> None:
    off = {"detectorId": DET, "autoEnableOrganizationMembers": "NONE"}
    on = {
        "detectorId": DET,
        "autoEnableOrganizationMembers": "ALL",
        "features": [{"name": "S3_DATA_EVENTS", "autoEnable": "ALL"}],
    }
    assert run("guardduty-protection-disabled", ev("UpdateOrganizationConfiguration", off, source=GD)).risky
    assert not run("guardduty-protection-disabled", ev("UpdateOrganizationConfiguration", on, source=GD)).risky


# --------------------------------------------------------------------------- Security Hub


def test_batch_update_findings_suppressed(ev: Ev, run: Run) -> None:
    req = {
        "FindingIdentifiers": [{"Id": "f1", "ProductArn": "p"}, {"Id": "f2", "ProductArn": "p"}],
        "Workflow": {"Status": "SUPPRESSED"},
    }
    a = run("securityhub-findings-suppressed", ev("BatchUpdateFindings", req, source=SH))
    assert a.risky and "2 Security Hub" in a.reason


@pytest.mark.parametrize("status", ["NEW", "NOTIFIED", "RESOLVED", None])
def test_batch_update_findings_other_status_is_not_risky(ev: Ev, run: Run, status: str | None) -> None:
    req: dict[str, Any] = {"FindingIdentifiers": [{"Id": "f1", "ProductArn": "p"}], "Note": {"Text": "x"}}
    if status:
        req["Workflow"] = {"Status": status}
    assert not run("securityhub-findings-suppressed", ev("BatchUpdateFindings", req, source=SH)).risky


def test_automation_rule_that_suppresses_fires_unless_disabled(ev: Ev, run: Run) -> None:
    actions = [{"Type": "FINDING_FIELDS_UPDATE", "FindingFieldsUpdate": {"Workflow": {"Status": "SUPPRESSED"}}}]
    on = {"RuleName": "quiet", "RuleStatus": "ENABLED", "Actions": actions}
    assert run("securityhub-findings-suppressed", ev("CreateAutomationRule", on, source=SH)).risky
    # RuleStatus defaults to ENABLED when omitted
    assert run(
        "securityhub-findings-suppressed", ev("CreateAutomationRule", {"RuleName": "q", "Actions": actions}, source=SH)
    ).risky
    off = {**on, "RuleStatus": "DISABLED"}
    assert not run("securityhub-findings-suppressed", ev("CreateAutomationRule", off, source=SH)).risky
    batch = {"UpdateAutomationRulesRequestItems": [{"RuleArn": "arn:r1", "Actions": actions}]}
    assert run("securityhub-findings-suppressed", ev("BatchUpdateAutomationRules", batch, source=SH)).risky


def test_legacy_update_findings_archived(ev: Ev, run: Run) -> None:
    assert run(
        "securityhub-findings-suppressed", ev("UpdateFindings", {"Filters": {}, "RecordState": "ARCHIVED"}, source=SH)
    ).risky
    assert not run(
        "securityhub-findings-suppressed", ev("UpdateFindings", {"Filters": {}, "RecordState": "ACTIVE"}, source=SH)
    ).risky


def test_control_disabled_both_apis(ev: Ev, run: Run) -> None:
    one = {"StandardsControlArn": "arn:c", "ControlStatus": "DISABLED"}
    assert run("securityhub-control-disabled", ev("UpdateStandardsControl", one, source=SH)).risky
    assert not run(
        "securityhub-control-disabled", ev("UpdateStandardsControl", {**one, "ControlStatus": "ENABLED"}, source=SH)
    ).risky
    batch = {"StandardsControlAssociationUpdates": [
        {"StandardsArn": "s", "SecurityControlId": "IAM.1", "AssociationStatus": "ENABLED"},
        {"StandardsArn": "s", "SecurityControlId": "CloudTrail.1", "AssociationStatus": "DISABLED"},
    ]}  # fmt: skip
    a = run("securityhub-control-disabled", ev("BatchUpdateStandardsControlAssociations", batch, source=SH))
    assert a.risky and "CloudTrail.1" in a.reason and "IAM.1" not in a.reason


# --------------------------------------------------------------------------- Config


def test_recorder_stopped_is_remediable(ev: Ev, run: Run) -> None:
    a = run(
        "config-recorder-stopped",
        ev("StopConfigurationRecorder", {"configurationRecorderName": "default"}, source="config.amazonaws.com"),
    )
    assert a.risky and a.remediable and a.params == {"recorder": "default"}


@pytest.mark.parametrize(
    ("group", "mode", "narrowed"),
    [
        ({"allSupported": True, "includeGlobalResourceTypes": True}, None, False),
        ({"allSupported": True, "includeGlobalResourceTypes": False}, {"recordingFrequency": "CONTINUOUS"}, False),
        ({"allSupported": False, "resourceTypes": ["AWS::S3::Bucket"]}, None, True),
        ({"allSupported": "false", "resourceTypes": []}, None, True),
        ({"recordingStrategy": {"useOnly": "EXCLUSION_BY_RESOURCE_TYPES"}, "exclusionByResourceTypes": {"resourceTypes": ["AWS::IAM::Role"]}}, None, True),
        ({"allSupported": True}, {"recordingFrequency": "DAILY"}, True),
        ({"allSupported": True}, {"recordingFrequency": "CONTINUOUS", "recordingModeOverrides": [{"resourceTypes": ["AWS::EC2::SecurityGroup"], "recordingFrequency": "DAILY"}]}, True),
    ],
)  # fmt: skip
def test_recorder_narrowing(group: dict[str, Any], mode: dict[str, Any] | None, narrowed: bool) -> None:
    rec: dict[str, Any] = {"name": "default", "recordingGroup": group}
    if mode:
        rec["recordingMode"] = mode
    assert bool(recorder_narrowing({"configurationRecorder": rec})) is narrowed


def test_put_recorder_narrowed_is_alert_only(ev: Ev, run: Run) -> None:
    req = {
        "configurationRecorder": {
            "name": "default",
            "recordingGroup": {"allSupported": False, "resourceTypes": ["AWS::S3::Bucket"]},
        }
    }
    a = run("config-recorder-stopped", ev("PutConfigurationRecorder", req, source="config.amazonaws.com"))
    assert a.risky and not a.remediable


def test_disassociate_resource_types_alerts(ev: Ev, run: Run) -> None:
    req = {
        "configurationRecorderArn": "arn:aws:config:us-east-1:111122223333:configuration-recorder/default/x",
        "resourceTypes": ["AWS::IAM::Role"],
    }
    a = run("config-recorder-stopped", ev("DisassociateResourceTypes", req, source="config.amazonaws.com"))
    assert a.risky and not a.remediable and "AWS::IAM::Role" in a.reason


# --------------------------------------------------------------------------- Macie, WAF


def test_macie_paused_only(ev: Ev, run: Run) -> None:
    assert run("macie-paused", ev("UpdateMacieSession", {"status": "PAUSED"}, source="macie2.amazonaws.com")).risky
    assert not run("macie-paused", ev("UpdateMacieSession", {"status": "ENABLED"}, source="macie2.amazonaws.com")).risky
    assert not run(
        "macie-paused",
        ev("UpdateMacieSession", {"findingPublishingFrequency": "SIX_HOURS"}, source="macie2.amazonaws.com"),
    ).risky


def _waf(conf: dict[str, Any]) -> dict[str, Any]:
    return {
        "loggingConfiguration": {
            "resourceArn": "arn:aws:wafv2:us-east-1:111122223333:regional/webacl/a/1",
            "logDestinationConfigs": ["arn:d"],
            **conf,
        }
    }


@pytest.mark.parametrize(
    ("conf", "risky"),
    [
        ({}, False),
        ({"loggingFilter": {"defaultBehavior": "KEEP", "filters": [{"behavior": "KEEP"}]}}, False),
        ({"loggingFilter": {"defaultBehavior": "DROP", "filters": [{"behavior": "KEEP"}]}}, True),
        ({"loggingFilter": {"defaultBehavior": "KEEP", "filters": [{"behavior": "DROP"}]}}, True),
        ({"redactedFields": [{"singleHeader": {"name": "authorization"}}]}, False),
        ({"redactedFields": [{"method": {}}]}, True),
        ({"redactedFields": [{"type": "HEADER", "data": "cookie"}]}, False),
        ({"redactedFields": [{"type": "BODY"}]}, True),
    ],
)
def test_waf_logging_filter(ev: Ev, run: Run, conf: dict[str, Any], risky: bool) -> None:
    a = run("waf-logging-filtered", ev("PutLoggingConfiguration", _waf(conf), source="wafv2.amazonaws.com"))
    assert a.risky is risky, a.reason


# --------------------------------------------------------------------------- CloudWatch Logs


@pytest.mark.parametrize(
    ("group", "days", "risky"),
    [
        ("/trailguard/cloudtrail", 30, True),
        ("/trailguard/cloudtrail", 365, False),
        ("/trailguard/cloudtrail", 3653, False),
        ("/Org/CloudTrail/Mgmt", 1, True),
        ("/aws/lambda/orders", 1, False),
        ("arn:aws:logs:us-east-1:111122223333:log-group:vpc-flow-logs:*", 7, True),
    ],
)
def test_retention_cut(ev: Ev, run: Run, group: str, days: int, risky: bool) -> None:
    key = "logGroupIdentifier" if group.startswith("arn:") else "logGroupName"
    a = run(
        "security-log-retention-cut",
        ev("PutRetentionPolicy", {key: group, "retentionInDays": days}, source="logs.amazonaws.com"),
    )
    assert a.risky is risky, a.reason


def test_retention_not_a_number_is_not_risky(ev: Ev, run: Run) -> None:
    a = run(
        "security-log-retention-cut",
        ev(
            "PutRetentionPolicy",
            {"logGroupName": "/trailguard/x", "retentionInDays": True},
            source="logs.amazonaws.com",
        ),
    )
    assert not a.risky


def test_log_group_deleted_by_arn_identifier(ev: Ev, run: Run) -> None:
    req = {"logGroupIdentifier": "arn:aws:logs:us-east-1:111122223333:log-group:/trailguard/cloudtrail"}
    assert run("security-log-group-deleted", ev("DeleteLogGroup", req, source="logs.amazonaws.com")).risky


# --------------------------------------------------------------------------- Backup and RDS


def test_backup_service_lifecycle_is_skipped_but_invoked_by_is_not(ev: Ev, run: Run) -> None:
    req = {"backupVaultName": "v", "recoveryPointArn": "arn:rp"}
    service = {"type": "AWSService", "invokedBy": "backup.amazonaws.com"}
    assert not run(
        "backup-recovery-point-deleted", ev("DeleteRecoveryPoint", req, identity=service, source="backup.amazonaws.com")
    ).risky
    role = {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/Admin/m", "accountId": "111122223333",
            "invokedBy": "cloudformation.amazonaws.com"}  # fmt: skip
    assert run(
        "backup-recovery-point-deleted", ev("DeleteRecoveryPoint", req, identity=role, source="backup.amazonaws.com")
    ).risky


@pytest.mark.parametrize(
    ("req", "risky"),
    [
        ({"deletionProtection": False}, True),
        ({"deletionProtection": "false"}, True),
        ({"backupRetentionPeriod": 0}, True),
        ({"backupRetentionPeriod": 1}, False),
        ({"deletionProtection": True, "backupRetentionPeriod": 7}, False),
        ({"backupRetentionPeriod": False}, False),
        ({}, False),
    ],
)
def test_rds_protection_weakened(ev: Ev, run: Run, req: dict[str, Any], risky: bool) -> None:
    a = run(
        "rds-protection-weakened",
        ev("ModifyDBInstance", {"dBInstanceIdentifier": "db1", **req}, source="rds.amazonaws.com"),
    )
    assert a.risky is risky


@pytest.mark.parametrize(
    ("req", "risky"),
    [
        ({"skipFinalSnapshot": True}, True),  # deleteAutomatedBackups defaults to true
        ({"skipFinalSnapshot": True, "deleteAutomatedBackups": True}, True),
        ({"skipFinalSnapshot": True, "deleteAutomatedBackups": False}, False),
        ({"skipFinalSnapshot": False, "finalDBSnapshotIdentifier": "f"}, False),
        ({}, False),  # SkipFinalSnapshot defaults to false
    ],
)
def test_rds_deleted_without_backup(ev: Ev, run: Run, req: dict[str, Any], risky: bool) -> None:
    for name, key in (("DeleteDBInstance", "dBInstanceIdentifier"), ("DeleteDBCluster", "dBClusterIdentifier")):
        a = run("rds-deleted-without-backup", ev(name, {key: "db1", **req}, source="rds.amazonaws.com"))
        assert a.risky is risky
        assert not (a.risky and a.remediable)


# --------------------------------------------------------------------------- KMS


def test_kms_key_of_another_account_is_alert_only(ev: Ev, run: Run) -> None:
    own = run(
        "kms-key-disabled",
        ev("DisableKey", {"keyId": "arn:aws:kms:us-east-1:111122223333:key/k1"}, source="kms.amazonaws.com"),
    )
    assert own.risky and own.remediable
    other = run(
        "kms-key-disabled",
        ev("DisableKey", {"keyId": "arn:aws:kms:us-east-1:444455556666:key/k1"}, source="kms.amazonaws.com"),
    )
    assert other.risky and not other.remediable
    region = run(
        "kms-key-disabled",
        ev("DisableKey", {"keyId": "arn:aws:kms:eu-west-1:111122223333:key/k1"}, source="kms.amazonaws.com"),
    )
    assert region.risky and not region.remediable


# --------------------------------------------------------------------------- EBS default key


def _ebs(key: str) -> dict[str, Any]:
    return {"ModifyEbsDefaultKmsKeyIdRequest": {"KmsKeyId": key}}


@pytest.mark.parametrize(
    ("key", "risky"),
    [
        ("arn:aws:kms:us-east-1:999988887777:key/k", True),
        ("arn:aws:kms:us-east-1:999988887777:alias/x", True),
        ("arn:aws:kms:us-east-1:111122223333:key/k", False),
        ("alias/ebs", False),
        ("0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6", False),
    ],
)
def test_ebs_default_key_of_another_account(ev: Ev, run: Run, key: str, risky: bool) -> None:
    a = run("ebs-default-kms-key-external", ev("ModifyEbsDefaultKmsKeyId", _ebs(key)))
    assert a.risky is risky, a.reason


def test_ebs_default_key_of_an_organization_account_is_not_risky(ev: Ev, run: Run) -> None:
    event = ev("ModifyEbsDefaultKmsKeyId", {"kmsKeyId": "arn:aws:kms:us-east-1:999988887777:key/k"})
    assert run("ebs-default-kms-key-external", event).risky
    org = RuntimeConfig(organization_accounts=frozenset({"111122223333", "999988887777"}))
    assert not run("ebs-default-kms-key-external", event, org).risky


# --------------------------------------------------------------------------- AWS Backup vault policy


def _vault(policy: Any) -> dict[str, Any]:
    return {"backupVaultName": "v", "policy": policy}


def _stmt(principal: Any, effect: str = "Allow", **extra: Any) -> str:
    stmt = {"Effect": effect, "Principal": principal, "Action": "backup:*", "Resource": "*", **extra}
    return json.dumps({"Version": "2012-10-17", "Statement": [stmt]})


def test_vault_policy_for_an_outside_account_fires(ev: Ev, run: Run) -> None:
    a = run("backup-vault-policy-exposed", ev("PutBackupVaultAccessPolicy", _vault(_stmt({"AWS": "999988887777"}))))
    assert a.risky and "999988887777" in a.reason and not a.remediable


def test_vault_policy_for_an_organization_account_does_not(ev: Ev, run: Run) -> None:
    event = ev("PutBackupVaultAccessPolicy", _vault(_stmt({"AWS": "arn:aws:iam::999988887777:root"})))
    org = RuntimeConfig(organization_accounts=frozenset({"111122223333", "999988887777"}))
    assert not run("backup-vault-policy-exposed", event, org).risky


def test_vault_policy_public_deny_and_org_pinned(ev: Ev, run: Run) -> None:
    assert run("backup-vault-policy-exposed", ev("PutBackupVaultAccessPolicy", _vault(_stmt("*")))).risky
    deny = _vault(_stmt({"AWS": "*"}, "Deny"))
    assert not run("backup-vault-policy-exposed", ev("PutBackupVaultAccessPolicy", deny)).risky
    loose = _stmt("*", Condition={"StringLike": {"aws:PrincipalOrgID": "o-*"}})
    assert run("backup-vault-policy-exposed", ev("PutBackupVaultAccessPolicy", _vault(loose))).risky


def test_vault_policy_unreadable_or_omitted_alerts(ev: Ev, run: Run) -> None:
    assert run("backup-vault-policy-exposed", ev("PutBackupVaultAccessPolicy", _vault("{not json"))).risky
    omitted = {"reason": "requestParameters too large", "omitted": True}
    assert run("backup-vault-policy-exposed", ev("PutBackupVaultAccessPolicy", omitted)).risky


def test_log_stream_deletion_names_the_stream(ev: Ev, run: Run) -> None:
    req = {"logGroupName": "/trailguard/cloudtrail", "logStreamName": "s1"}
    a = run("security-log-group-deleted", ev("DeleteLogStream", req, source="logs.amazonaws.com"))
    assert a.risky and "stream s1" in a.reason


def test_organization_legacy_auto_enable_false_fires(ev: Ev, run: Run) -> None:
    legacy = {"detectorId": DET, "autoEnable": False}
    assert run("guardduty-protection-disabled", ev("UpdateOrganizationConfiguration", legacy, source=GD)).risky
    sources = {"detectorId": DET, "dataSources": {"s3Logs": {"autoEnable": False}}}
    assert run("guardduty-protection-disabled", ev("UpdateOrganizationConfiguration", sources, source=GD)).risky
    on = {"detectorId": DET, "autoEnable": True, "dataSources": {"s3Logs": {"autoEnable": True}}}
    assert not run("guardduty-protection-disabled", ev("UpdateOrganizationConfiguration", on, source=GD)).risky


# --------------------------------------------------------------------------- property: casing never hides a marker

MARKERS = ["cloudtrail", "trailguard", "flowlogs", "vpc-flow", "guardduty", "aws-waf-logs", "controltower"]
NAME_CHARS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_/.", max_size=20)


@given(
    marker=st.sampled_from(MARKERS),
    flips=st.lists(st.booleans(), min_size=20, max_size=20),
    before=NAME_CHARS,
    after=NAME_CHARS,
    days=st.sampled_from([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653]),
    as_arn=st.booleans(),
)
def test_any_casing_or_spelling_of_a_marker_is_judged_the_same(
    *, marker: str, flips: list[bool], before: str, after: str, days: int, as_arn: bool
) -> None:
    """The verdict depends only on the retention, never on the marker's casing or on name vs ARN."""
    cased = "".join(c.upper() if f else c for c, f in zip(marker, flips, strict=False))
    group = f"{before}{cased}{after}"
    req = (
        {"logGroupIdentifier": f"arn:aws:logs:us-east-1:111122223333:log-group:{group}:*"}
        if as_arn
        else {"logGroupName": group}
    )
    rule = rules_by_id()["security-log-retention-cut"]
    record = {
        "eventName": "PutRetentionPolicy",
        "eventSource": "logs.amazonaws.com",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"},
        "requestParameters": {**req, "retentionInDays": days},
    }
    event = CloudTrailEvent({"detail-type": "AWS API Call via CloudTrail", "account": "111122223333", "detail": record})
    verdict = registry()[rule.decision](event, rule, RuntimeConfig())
    assert verdict.risky is (days < 365), verdict.reason
