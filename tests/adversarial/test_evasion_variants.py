"""Defense evasion by a legal variant of the same call (issue 14), played through the real catalog.

An admin of one member account crafts the request. Each case is the CloudTrail record the call produces,
in the EventBridge envelope, judged by :class:`Evaluator` (pattern index, decision, safety policy), the path
the engine and ``replay`` share:

* ARN and partial-ARN spellings, version-suffixed Lambda API names, and other casings of case-insensitive
  names (IAM) must still fire;
* names that only look like trailguard's (``trailguard-engine-copy``, another SSM casing, a lookalike bus)
  must not, because those services compare names exactly;
* a record naming another account's or region's key, a member-wide GuardDuty stop, or a narrowed Config
  recorder never lead to a remediation, even with the rule in remediate mode;
* only an unforgeable service identity silences a backup deletion (``invokedBy`` on a role does not).
"""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import quote

import pytest
from trailguard_engine.catalog import load_catalog
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.model import Finding
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
FOREIGN = "999988887777"
DEPLOY = f"arn:aws:iam::{ACCOUNT}:role/trailguard-deploy"
FN = "TrailguardDetection-Engine7B56DDA2-Qx3Lk9Rt2VbN"
RULES = load_catalog()
_ids = itertools.count(1)

ADMIN = {
    "type": "AssumedRole",
    "principalId": "AROA3EXAMPLEADMIN01:mallory",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/mallory",
    "accountId": ACCOUNT,
    "sessionContext": {
        "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/Admin", "userName": "Admin"},
        "attributes": {"mfaAuthenticated": "false"},
    },
}
PIPELINE = {
    **ADMIN,
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/trailguard-deploy/cdk",
    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": DEPLOY, "userName": "trailguard-deploy"}},
}


def envelope(
    source: str, name: str, request: Any, response: Any = None, identity: dict[str, Any] | None = None
) -> dict[str, Any]:
    n = next(_ids)
    return {
        "version": "0",
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws." + source.removesuffix(".amazonaws.com"),
        "account": ACCOUNT,
        "time": "2026-10-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.10",
            "userIdentity": identity or ADMIN,
            "eventTime": "2026-10-01T12:00:00Z",
            "eventSource": source,
            "eventName": name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.10",
            "userAgent": "aws-cli/2.17.20",
            "requestParameters": request,
            "responseElements": response,
            "eventID": f"10000000-0000-4000-8000-{n:012d}",
            "eventType": "AwsApiCall",
            "readOnly": False,
            "recipientAccountId": ACCOUNT,
        },
    }


def findings(event: dict[str, Any], rule_id: str, **modes: str) -> list[Finding]:
    cfg = RuntimeConfig(deployment_role_arns=frozenset({DEPLOY}), rule_modes={rule_id: modes.get("mode", "alert")})
    return [f for f in Evaluator(RULES, cfg).evaluate(event).findings if f.rule == rule_id]


def fires(event: dict[str, Any], rule_id: str) -> bool:
    return any(f.decision in ("alert", "remediate") for f in findings(event, rule_id))


LAMBDA, IAM, SSM, EVENTS = "lambda.amazonaws.com", "iam.amazonaws.com", "ssm.amazonaws.com", "events.amazonaws.com"

# --------------------------------------------------------------------------- spellings that must fire

MUST_FIRE = [
    ("trailguard-function-tampered", envelope(LAMBDA, "DeleteFunction20150331", {"functionName": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FN}"})),
    ("trailguard-function-tampered", envelope(LAMBDA, "UpdateFunctionCode20150331v2", {"functionName": f"{ACCOUNT}:function:{FN}"})),
    ("trailguard-function-tampered", envelope(LAMBDA, "PutFunctionConcurrency20171031", {"functionName": f"us-east-1:{ACCOUNT}:function:{FN}:$LATEST", "reservedConcurrentExecutions": 0})),
    ("trailguard-role-tampered", envelope(IAM, "DeleteRole", {"roleName": "TrailGuard-Engine"})),
    ("trailguard-role-tampered", envelope(IAM, "DeletePolicy", {"policyArn": f"arn:aws:iam::{ACCOUNT}:policy/TRAILGUARD-REMEDIATION"})),
    ("trailguard-role-tampered", envelope(IAM, "PutRolePolicy", {"roleName": "trailguard-engine", "policyName": "x", "policyDocument": quote(quote('{"Statement":[]}'))})),
    ("trailguard-role-tampered", envelope(IAM, "PutRolePolicy", {"reason": "requestParameters too large", "omitted": True})),
    ("trailguard-config-tampered", envelope(SSM, "DeleteParameter", {"name": f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/trailguard/runtime-config"})),
    ("trailguard-config-tampered", envelope(SSM, "PutParameter", {"name": "trailguard/runtime-config", "overwrite": True})),
    ("eventbridge-rule-tampered", envelope(EVENTS, "DisableRule", {"name": "tg-kms-key-disabled", "eventBusName": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/trailguard-central"})),
    ("security-log-group-deleted", envelope("logs.amazonaws.com", "DeleteLogGroup", {"logGroupName": "/AWS/CLOUDTRAIL/org"})),
    ("security-log-group-deleted", envelope("logs.amazonaws.com", "DeleteLogGroup", {"logGroupName": "/TRAILGUARD/engine"})),
    ("security-log-retention-cut", envelope("logs.amazonaws.com", "PutRetentionPolicy", {"logGroupName": "/Vpc/FlowLogs", "retentionInDays": 1})),
    ("waf-logging-deleted", envelope("waf.amazonaws.com", "DeleteLoggingConfiguration", {"resourceArn": f"arn:aws:waf::{ACCOUNT}:webacl/1"})),
    ("waf-logging-filtered", envelope("waf-regional.amazonaws.com", "PutLoggingConfiguration", {"loggingConfiguration": {"resourceArn": "arn:aws:waf-regional:us-east-1:1:webacl/1", "redactedFields": [{"type": "URI"}]}})),
    ("securityhub-findings-suppressed", envelope("securityhub.amazonaws.com", "BatchUpdateFindings", {"findingIdentifiers": [{"id": "f"}], "workflow": {"status": "Suppressed"}})),
    ("guardduty-detector-disabled", envelope("guardduty.amazonaws.com", "UpdateDetector", {"detectorId": "d1", "enable": "false"})),
    ("guardduty-protection-disabled", envelope("guardduty.amazonaws.com", "UpdateMemberDetectors", {"detectorId": "d1", "accountIds": [FOREIGN], "features": [{"name": "EKS_AUDIT_LOGS", "status": "disabled"}]})),
    ("rds-protection-weakened", envelope("rds.amazonaws.com", "ModifyDBCluster", {"dBClusterIdentifier": "c", "deletionProtection": False})),
]  # fmt: skip


@pytest.mark.parametrize(("rule_id", "event"), MUST_FIRE, ids=[f"{r}-{i}" for i, (r, _) in enumerate(MUST_FIRE)])
def test_variant_fires(rule_id: str, event: dict[str, Any]) -> None:
    assert fires(event, rule_id), findings(event, rule_id)


# --------------------------------------------------------------------------- lookalikes that must not

LOOKALIKES = [
    ("trailguard-role-tampered", envelope(IAM, "DeleteRole", {"roleName": "trailguard-engine-copy"})),
    ("trailguard-role-tampered", envelope(IAM, "DeletePolicy", {"policyArn": f"arn:aws:iam::{ACCOUNT}:policy/trailguard-engine-copy"})),
    ("trailguard-function-tampered", envelope(LAMBDA, "DeleteFunction20150331", {"functionName": "TrailguardDetectionCopy-Engine"})),
    ("trailguard-function-tampered", envelope(LAMBDA, "DeleteFunction20150331", {"functionName": "trailguarddetection-Engine7B56DDA2"})),
    ("trailguard-function-tampered", envelope(LAMBDA, "DeleteFunction20150331", {"functionName": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FN}:7"})),
    # SSM names are case-sensitive: /TrailGuard/... is someone else's parameter
    ("trailguard-config-tampered", envelope(SSM, "PutParameter", {"name": "/TrailGuard/runtime-config", "overwrite": True})),
    ("trailguard-config-tampered", envelope(SSM, "PutParameter", {"name": "/trailguard-copy/runtime-config"})),
    ("eventbridge-rule-tampered", envelope(EVENTS, "DisableRule", {"name": "tg-kms-key-disabled", "eventBusName": "trailguard-central-copy"})),
    ("eventbridge-rule-tampered", envelope(EVENTS, "DeleteEventBus", {"name": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/Trailguard-Central"})),
    ("security-log-group-deleted", envelope("logs.amazonaws.com", "DeleteLogGroup", {"logGroupName": "/aws/lambda/orders"})),
    ("security-log-retention-cut", envelope("logs.amazonaws.com", "PutRetentionPolicy", {"logGroupName": "/aws/ecs/web", "retentionInDays": 1})),
]  # fmt: skip


@pytest.mark.parametrize(("rule_id", "event"), LOOKALIKES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(LOOKALIKES)])
def test_lookalike_does_not_fire(rule_id: str, event: dict[str, Any]) -> None:
    assert not fires(event, rule_id), findings(event, rule_id)


def test_pipeline_request_too_large_is_not_tampering() -> None:
    event = envelope(
        IAM, "PutRolePolicy", {"reason": "requestParameters too large", "omitted": True}, identity=PIPELINE
    )
    assert not fires(event, "trailguard-role-tampered")


# --------------------------------------------------------------------------- never the wrong remediation


def test_foreign_key_arn_never_remediates() -> None:
    for key in (f"arn:aws:kms:us-east-1:{FOREIGN}:key/k1", f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k1"):
        for rule_id, name in (
            ("kms-key-disabled", "DisableKey"),
            ("kms-key-scheduled-for-deletion", "ScheduleKeyDeletion"),
        ):
            found = findings(envelope("kms.amazonaws.com", name, {"keyId": key}), rule_id, mode="remediate")
            assert [f.decision for f in found] == ["alert"], (key, found)
    own = findings(envelope("kms.amazonaws.com", "DisableKey", {"keyId": "k1"}), "kms-key-disabled", mode="remediate")
    assert [f.decision for f in own] == ["remediate"]
    assert own[0].params == {"key_id": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k1"}


def test_forged_response_key_of_another_account_never_remediates() -> None:
    """The response's keyId wins over the request's: a response naming a foreign key is still refused."""
    event = envelope(
        "kms.amazonaws.com",
        "ScheduleKeyDeletion",
        {"keyId": "k1"},
        {"keyId": f"arn:aws:kms:us-east-1:{FOREIGN}:key/k1"},
    )
    assert [f.decision for f in findings(event, "kms-key-scheduled-for-deletion", mode="remediate")] == ["alert"]


def test_member_wide_guardduty_stop_is_never_remediated_on_the_wrong_detector() -> None:
    event = envelope(
        "guardduty.amazonaws.com", "StopMonitoringMembers", {"detectorId": "admin-det", "accountIds": [FOREIGN]}
    )
    assert [f.decision for f in findings(event, "guardduty-detector-disabled", mode="remediate")] == ["alert"]
    suspended = envelope("guardduty.amazonaws.com", "UpdateDetector", {"detectorId": "d1", "enable": False})
    found = findings(suspended, "guardduty-detector-disabled", mode="remediate")
    assert [f.decision for f in found] == ["remediate"] and found[0].params == {"detector_id": "d1"}


def test_narrowed_recorder_is_alert_only_in_remediate_mode() -> None:
    req = {"configurationRecorder": {"name": "default", "recordingGroup": {"allSupported": False, "resourceTypes": []}}}
    event = envelope("config.amazonaws.com", "PutConfigurationRecorder", req)
    assert [f.decision for f in findings(event, "config-recorder-stopped", mode="remediate")] == ["alert"]


def test_only_a_service_identity_silences_a_backup_deletion() -> None:
    req = {"backupVaultName": "v", "recoveryPointArn": "arn:aws:backup:us-east-1:1:recovery-point:x"}
    service = {"type": "AWSService", "invokedBy": "backup.amazonaws.com"}
    assert not fires(
        envelope("backup.amazonaws.com", "DeleteRecoveryPoint", req, identity=service), "backup-recovery-point-deleted"
    )
    via_stack = {**ADMIN, "invokedBy": "cloudformation.amazonaws.com"}
    assert fires(
        envelope("backup.amazonaws.com", "DeleteRecoveryPoint", req, identity=via_stack),
        "backup-recovery-point-deleted",
    )
    named_like = {**ADMIN, "invokedBy": "backup.amazonaws.com"}
    assert fires(
        envelope("backup.amazonaws.com", "DeleteRecoveryPoint", req, identity=named_like),
        "backup-recovery-point-deleted",
    )


def test_new_evasion_rules_never_remediate() -> None:
    """Alert-only by construction: no remediation, so no mode can make them act."""
    new = {
        "guardduty-protection-disabled", "guardduty-findings-archived", "guardduty-members-removed",
        "guardduty-publishing-destination-deleted", "securityhub-findings-suppressed", "securityhub-control-disabled",
        "securityhub-product-import-disabled", "config-conformance-pack-deleted", "access-analyzer-archive-rule",
        "macie-paused", "waf-logging-filtered", "security-log-retention-cut", "backup-recovery-point-deleted",
        "backup-vault-lock-removed", "backup-vault-or-plan-deleted", "rds-backup-deleted", "rds-protection-weakened",
        "rds-deleted-without-backup",
    }  # fmt: skip
    by_id = {r.id: r for r in RULES}
    assert new <= set(by_id)
    assert all(by_id[r].remediation is None and by_id[r].default_mode == "alert" for r in new)
    for rid in sorted(new):
        for example in by_id[rid].examples_positive:
            assert {f.decision for f in findings(example, rid, mode="remediate")} == {"alert"}, rid


def test_url_encoded_policy_reaches_the_role_decision() -> None:
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    event = envelope(
        IAM, "PutRolePolicy", {"roleName": "TRAILGUARD-ENGINE", "policyName": "p", "policyDocument": quote(doc)}
    )
    found = findings(event, "trailguard-role-tampered")
    assert [f.decision for f in found] == ["alert"] and "TRAILGUARD-ENGINE" in found[0].reason


# --------------------------------------------------------------------------- who may silence


SLR_SECURITYHUB = {
    "type": "AssumedRole",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSServiceRoleForSecurityHub/securityhub",
    "accountId": ACCOUNT,
    "invokedBy": "securityhub.amazonaws.com",
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "arn": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/securityhub.amazonaws.com/AWSServiceRoleForSecurityHub",
        }
    },
}
#: An ordinary role an account admin created, named like the service-linked role, at another path.
FAKE_SLR = {
    **SLR_SECURITYHUB,
    "sessionContext": {
        "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/AWSServiceRoleForSecurityHub"}
    },
}


def test_config_rule_deleted_through_a_stack_still_fires() -> None:
    req = {"configRuleName": "cloudtrail-enabled"}
    via_stack = {**ADMIN, "invokedBy": "cloudformation.amazonaws.com"}
    assert fires(envelope("config.amazonaws.com", "DeleteConfigRule", req, identity=via_stack), "config-rule-deleted")
    assert fires(envelope("config.amazonaws.com", "DeleteConfigRule", req, identity=FAKE_SLR), "config-rule-deleted")
    slr = envelope(
        "config.amazonaws.com", "DeleteConfigRule", {"configRuleName": "securityhub-x"}, identity=SLR_SECURITYHUB
    )
    assert not fires(slr, "config-rule-deleted")


def test_eventbridge_rule_disabled_skips_trailguards_rules_and_services_only() -> None:
    ours = envelope(EVENTS, "DisableRule", {"name": "tg-kms-key-disabled", "eventBusName": "trailguard-central"})
    assert not fires(ours, "eventbridge-rule-disabled")
    assert fires(ours, "eventbridge-rule-tampered"), "trailguard's own rule is judged by the self-protection rule"
    forwarding = envelope(EVENTS, "DeleteRule", {"name": "trailguard-forward-0"})
    assert not fires(forwarding, "eventbridge-rule-disabled") and fires(forwarding, "eventbridge-rule-tampered")
    theirs = {"name": "securityhub-to-slack"}
    assert fires(envelope(EVENTS, "DisableRule", theirs), "eventbridge-rule-disabled")
    assert not fires(envelope(EVENTS, "DisableRule", theirs, identity=SLR_SECURITYHUB), "eventbridge-rule-disabled")
    assert fires(envelope(EVENTS, "DisableRule", theirs, identity=FAKE_SLR), "eventbridge-rule-disabled")
    # a lookalike of the central bus is someone else's bus: the generic rule judges it
    lookalike = envelope(
        EVENTS, "DeleteRule", {"name": "tg-kms-key-disabled", "eventBusName": "trailguard-central-copy"}
    )
    assert fires(lookalike, "eventbridge-rule-disabled") and not fires(lookalike, "eventbridge-rule-tampered")


def test_put_rule_disabled_is_caught_in_any_case() -> None:
    req = {"name": "securityhub-to-slack", "eventPattern": "{}", "state": "disabled"}
    assert fires(envelope(EVENTS, "PutRule", req), "eventbridge-rule-disabled")
    assert not fires(envelope(EVENTS, "PutRule", {**req, "state": "ENABLED"}), "eventbridge-rule-disabled")


def test_ebs_default_key_outside_the_organization() -> None:
    key = {"kmsKeyId": f"arn:aws:kms:us-east-1:{FOREIGN}:key/k"}
    event = envelope("ec2.amazonaws.com", "ModifyEbsDefaultKmsKeyId", key)
    assert fires(event, "ebs-default-kms-key-external")
    org = RuntimeConfig(organization_accounts=frozenset({ACCOUNT, FOREIGN}))
    assert not [f for f in Evaluator(RULES, org).evaluate(event).findings if f.decision != "skip"]


def test_kms_material_expiring_only_when_it_expires() -> None:
    expiring = {"keyId": "k", "expirationModel": "key_material_expires"}
    assert fires(envelope("kms.amazonaws.com", "ImportKeyMaterial", expiring), "kms-key-material-deleted")
    forever = {"keyId": "k", "expirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}
    assert not fires(envelope("kms.amazonaws.com", "ImportKeyMaterial", forever), "kms-key-material-deleted")
    assert fires(envelope("kms.amazonaws.com", "DeleteImportedKeyMaterial", {"keyId": "k"}), "kms-key-material-deleted")


def _slr(service: str, name: str, *, real: bool = True) -> dict[str, Any]:
    path = f"aws-service-role/{service}/" if real else ""
    return {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/s",
        "accountId": ACCOUNT,
        "invokedBy": service,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{path}{name}"}},
    }


@pytest.mark.parametrize(
    "case",
    [
        ("rds-backup-deleted", "rds.amazonaws.com", "DeleteDBSnapshot", {"dBSnapshotIdentifier": "awsbackup:job-1"},
         "backup.amazonaws.com", "AWSServiceRoleForBackup"),
        ("cloudwatch-alarms-silenced", "monitoring.amazonaws.com", "DeleteAlarms", {"alarmNames": ["cis-root-usage"]},
         "dynamodb.application-autoscaling.amazonaws.com", "AWSServiceRoleForApplicationAutoScaling_DynamoDBTable"),
        ("waf-acl-deleted", "wafv2.amazonaws.com", "DeleteWebACL", {"name": "FMManagedWebACLV2-x", "id": "1"},
         "fms.amazonaws.com", "AWSServiceRoleForFMS"),
    ],
)  # fmt: skip
def test_service_linked_role_is_skipped_but_its_lookalike_is_not(
    case: tuple[str, str, str, dict[str, Any], str, str],
) -> None:
    """A role named like a service-linked role, outside the reserved path, is an admin's own role."""
    rule_id, source, name, req, service, role = case
    assert not fires(envelope(source, name, req, identity=_slr(service, role)), rule_id)
    assert fires(envelope(source, name, req, identity=_slr(service, role, real=False)), rule_id)
