"""Outputs for every detection: an SNS message and a Security Hub finding (ASFF).

The SNS subject is short and human (<= 100 ASCII characters, as SNS requires);
the body is JSON with who / what / where / rule / verdict / action / links.
The Security Hub finding is imported into the engine's own account (the only
account ``BatchImportFindings`` accepts with the default product ARN); the
affected account and region are carried in the resource and product fields.

A finding of severity ``INFO`` (a change record, :data:`~trailguard_engine.catalog.RECORD_SEVERITY`) is
never an SNS message: the engine imports it into Security Hub as an ``INFORMATIONAL`` finding and writes it
to its audit log (:func:`record`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trailguard_engine.catalog import RECORD_SEVERITY
from trailguard_engine.clients import ClientFactory, partition_for
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Finding, Rule

SUBJECT_MAX = 100
#: Outcome status of a change record.
RECORDED = "recorded"
#: Catalog severity -> Security Hub ``Severity.Label`` (Security Hub has no ``INFO`` label).
ASFF_SEVERITY_LABELS = {
    "CRITICAL": "CRITICAL",
    "HIGH": "HIGH",
    "MEDIUM": "MEDIUM",
    "LOW": "LOW",
    RECORD_SEVERITY: "INFORMATIONAL",
}
_NOT_SUBJECT = re.compile(r"[^\x20-\x7e]")
_ASFF_TYPES = {
    "AWS::S3::Bucket": "AwsS3Bucket",
    "AWS::EC2::SecurityGroup": "AwsEc2SecurityGroup",
    "AWS::CloudTrail::Trail": "AwsCloudTrailTrail",
    "AWS::KMS::Key": "AwsKmsKey",
    "AWS::IAM::User": "AwsIamUser",
    "AWS::IAM::Role": "AwsIamRole",
    "AWS::IAM::Group": "AwsIamGroup",
    "AWS::IAM::AccessKey": "AwsIamAccessKey",
    "AWS::EC2::Image": "AwsEc2Image",
    "AWS::EC2::Snapshot": "AwsEc2Snapshot",
    "AWS::RDS::DBSnapshot": "AwsRdsDbSnapshot",
    "AWS::RDS::DBClusterSnapshot": "AwsRdsDbClusterSnapshot",
    "AWS::GuardDuty::Detector": "AwsGuardDutyDetector",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the engine did about one finding, as reported to humans."""

    status: str  # alerted | remediated | already_safe | skipped | failed | dry_run | recorded
    detail: str = ""
    changes: tuple[str, ...] = ()
    #: Already covered by another message (a rate-limited event: the one flapping alert
    #: per resource and window speaks for all of them), so no per-event SNS/ASFF report.
    reported_elsewhere: bool = False


def is_record(finding: Finding) -> bool:
    """True for a change record (severity INFO): Security Hub INFORMATIONAL and the audit log, never SNS."""
    return finding.severity == RECORD_SEVERITY


def record(finding: Finding, event: CloudTrailEvent, status: str, *, security_hub: str) -> dict[str, Any]:
    """The audit-log document of one change record (one JSON log line per record).

    ``status``: ``recorded`` or ``silenced`` (a record skipped because of who made it or where);
    ``security_hub``: what became of its Security Hub finding (imported, off, over budget, failed ...).
    """
    return {
        "rule": finding.rule,
        "severity": finding.severity,
        "status": status,
        "reason": finding.reason[:1000],
        "resource": {str(k)[:100]: str(v)[:512] for k, v in finding.resource.items()},
        "principal": event.principal_arn[:1024],
        "principal_type": event.identity_type,
        "caller": finding.caller.kind if finding.caller is not None else None,
        "silenced_by": finding.silenced_by,
        "eventID": event.event_id,
        "eventName": event.event_name,
        "eventSource": event.event_source,
        "eventTime": event.event_time,
        "account": event.account,
        "region": event.region,
        "source_ip": event.source_ip,
        "security_hub": security_hub,
    }


def subject(finding: Finding, rule: Rule | None, event: CloudTrailEvent, outcome: Outcome) -> str:
    """A one-line ASCII subject of at most 100 characters."""
    title = rule.title if rule else finding.rule
    verb = {"remediated": "REMEDIATED", "failed": "ACTION FAILED", "dry_run": "DRY RUN"}.get(outcome.status, "ALERT")
    text = f"trailguard {verb} {finding.severity}: {title} ({event.account or '?'} {event.region or '?'})"
    text = _NOT_SUBJECT.sub("?", " ".join(text.split()))
    return text if len(text) <= SUBJECT_MAX else text[: SUBJECT_MAX - 3] + "..."


def console_link(event: CloudTrailEvent) -> str:
    region = event.region or "us-east-1"
    host = "console.amazonaws.cn" if region.startswith("cn-") else "console.aws.amazon.com"
    return f"https://{region}.{host}/cloudtrailv2/home?region={region}#/events/{event.event_id}"


def message(
    finding: Finding, rule: Rule | None, event: CloudTrailEvent, outcome: Outcome, *, runbook: str
) -> dict[str, Any]:
    """The structured JSON body of the SNS message."""
    return {
        "rule": finding.rule,
        "title": rule.title if rule else finding.rule,
        "severity": finding.severity,
        "verdict": finding.decision,
        "reason": finding.reason,
        "who": {
            "principal": event.principal_arn,
            "principal_type": event.identity_type,
            "session_issuer": event.session_issuer_arn,
            "access_key_id": event.access_key_id,
            "source_ip": event.source_ip,
            "user_agent": event.user_agent,
        },
        "what": {
            "event_name": event.event_name,
            "event_source": event.event_source,
            "event_id": event.event_id,
            "event_time": event.event_time,
        },
        "where": {"account": event.account, "region": event.region, "resource": dict(finding.resource)},
        "action": {
            "name": finding.action,
            "status": outcome.status,
            "detail": outcome.detail,
            "changes": list(outcome.changes),
        },
        "runbook": runbook,
        "console": console_link(event),
    }


def asff(
    finding: Finding,
    rule: Rule | None,
    event: CloudTrailEvent,
    outcome: Outcome,
    *,
    engine_account: str,
    engine_region: str,
    runbook: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The finding in AWS Security Finding Format."""
    partition = partition_for(engine_region)
    ts = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    created = event.event_time or ts
    res = finding.resource
    resource_id = res.get("id") or f"{event.account}/{event.region}/{event.event_name}"
    resolved = outcome.status in ("remediated", "already_safe")
    desc = f"{finding.reason}. Action: {outcome.status}" + (f" ({outcome.detail})" if outcome.detail else "")
    return {
        "SchemaVersion": "2018-10-08",
        "Id": f"trailguard/{finding.rule}/{event.event_id or event.envelope_id}",
        "ProductArn": f"arn:{partition}:securityhub:{engine_region}:{engine_account}:product/{engine_account}/default",
        "GeneratorId": f"trailguard/{finding.rule}",
        "AwsAccountId": engine_account,
        "Types": [
            f"Software and Configuration Checks/AWS Security Best Practices/{rule.category if rule else 'trailguard'}"
        ],
        "CreatedAt": created,
        "UpdatedAt": ts,
        "Severity": {"Label": ASFF_SEVERITY_LABELS.get(finding.severity, "INFORMATIONAL")},
        "Title": (rule.title if rule else finding.rule)[:256],
        "Description": desc[:1024],
        "Remediation": {"Recommendation": {"Text": "See the trailguard runbook for this rule."[:512], "Url": runbook}}
        if runbook.startswith("https://")
        else {"Recommendation": {"Text": f"See the trailguard runbook {runbook}"[:512]}},
        "SourceUrl": console_link(event),
        "Resources": [
            {
                "Type": _ASFF_TYPES.get(res.get("type", ""), "Other"),
                "Id": resource_id[:512],
                "Partition": partition,
                "Region": event.region or engine_region,
                "Details": {"Other": {"account": event.account, "eventName": event.event_name}},
            }
        ],
        "Workflow": {"Status": "RESOLVED" if resolved else "NEW"},
        "RecordState": "ACTIVE",
        "ProductFields": {
            "trailguard/rule": finding.rule,
            "trailguard/account": event.account,
            "trailguard/region": event.region,
            "trailguard/eventID": event.event_id,
            "trailguard/principal": event.principal_arn[:1024],
            "trailguard/action": finding.action or "",
            "trailguard/status": outcome.status,
            "trailguard/kind": "change-record" if is_record(finding) else "alert",
        },
    }


class Notifier:
    """Publishes to the alert topic and imports into Security Hub (engine account)."""

    def __init__(self, *, factory: ClientFactory, topic_arn: str, engine_account: str) -> None:
        self.factory = factory
        self.topic_arn = topic_arn
        self.engine_account = engine_account

    def publish(self, subject_line: str, body: Mapping[str, Any], *, attributes: Mapping[str, str]) -> str:
        """Send one SNS message; returns its MessageId. Errors propagate (the event goes to the DLQ)."""
        resp = self.factory.engine("sns").publish(
            TopicArn=self.topic_arn,
            Subject=subject_line,
            Message=json.dumps(body, default=str, sort_keys=True),
            MessageAttributes={k: {"DataType": "String", "StringValue": v or "-"} for k, v in attributes.items()},
        )
        return str(resp.get("MessageId", ""))

    def security_hub(self, finding_doc: Mapping[str, Any]) -> None:
        """Import one ASFF finding. Raises :class:`SecurityHubError` with the reason on failure."""
        resp = self.factory.engine("securityhub").batch_import_findings(Findings=[dict(finding_doc)])
        if resp.get("FailedCount"):
            raise SecurityHubError(json.dumps(resp.get("FailedFindings", []), default=str)[:500])


class SecurityHubError(Exception):
    """BatchImportFindings rejected the finding."""
