"""Decisions for detective controls, log sources and KMS keys (trailguard's own resources: ``self_protection``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, as_list
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig

#: A session of a service-linked role: ``arn:<partition>:iam::<account>:role/aws-service-role/<service>/...``.
_SERVICE_LINKED = re.compile(
    r"^arn:aws(?:-[a-z]+)*:iam::\d{12}:role/aws-service-role/[a-z0-9.-]+\.amazonaws\.com(?:\.cn)?/"
)


def _strings(value: Any) -> list[str]:
    return [v for v in as_list(value) if isinstance(v, str) and v]


def _who(event: CloudTrailEvent) -> str:
    return event.principal_arn or event.identity_type or "unknown principal"


def _where(event: CloudTrailEvent) -> str:
    return f"{event.account or '?'}/{event.region or '?'}"


@decision("request_resource")
def request_resource(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Risky whenever it happened; names the resource from ``requestParameters``.

    Rule params: ``resource_type``; ``id_fields`` (request keys, first found wins; the
    account/region when none); ``remediation_params`` ({param: request key}, all
    required for the finding to be remediable); ``ignore_service_callers`` (calls an
    AWS service made on its own behalf, ``userIdentity.invokedBy``, are not risky);
    ``ignore_aws_service_identity`` (only an AWSService identity or a service-linked role session is skipped).
    """
    p = rule.params
    if p.get("ignore_service_callers") and event.invoked_by.endswith(".amazonaws.com"):
        return Assessment(False, f"{event.event_name} made by {event.invoked_by} for its own resources")
    if p.get("ignore_aws_service_identity") and (
        event.identity_type == "AWSService" or _SERVICE_LINKED.match(event.session_issuer_arn or "")
    ):
        # Only the service itself is skipped: ``userIdentity.type`` AWSService (AWS Backup's lifecycle expiry)
        # or a session of a service-linked role (IAM reserves the ``/aws-service-role/`` path, so no account
        # admin can create one). ``invokedBy`` on a customer role is no proof: CloudFormation runs anyone's stack.
        return Assessment(False, f"{event.event_name} made by the service {event.invoked_by or '?'} itself")
    rid = ""
    for key in _strings(p.get("id_fields")):
        values = _strings(event.req(key))
        if values:
            rid = ",".join(values)
            break
    rid = rid or _where(event)
    rtype = p.get("resource_type")
    resource = {"type": rtype if isinstance(rtype, str) else "", "id": rid}
    params: dict[str, Any] = {}
    remediable = True
    rp = p.get("remediation_params")
    if isinstance(rp, Mapping):
        for name, key in rp.items():
            value = event.req(str(key))
            if isinstance(value, str) and value:
                params[str(name)] = value
            else:
                remediable = False
    return Assessment(True, f"{event.event_name} on {rid} by {_who(event)}", resource, params, remediable)


@decision("flow_logs_deleted")
def flow_logs_deleted(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """DeleteFlowLogs: lists the flow log ids (EC2 query-API shape or the flat list)."""
    ids = _strings(event.req("flowLogIds"))
    for item in as_list(event.req("DeleteFlowLogsRequest", "FlowLogId")):
        if isinstance(item, Mapping):
            ids.extend(_strings(item.get("content")))
        elif isinstance(item, str) and item:
            ids.append(item)
    rid = ",".join(ids) or _where(event)
    return Assessment(True, f"flow logs deleted: {rid} by {_who(event)}", {"type": "AWS::EC2::FlowLog", "id": rid})


def log_group_name(raw: Any) -> str:
    """The log group a call names: ``logGroupName``, or a ``logGroupIdentifier`` that may be a name or a log
    group ARN (``arn:aws:logs:<region>:<account>:log-group:<name>`` with an optional ``:*``). Names stay
    case-sensitive, as in CloudWatch Logs."""
    if not isinstance(raw, str):
        return ""
    name = raw.strip()
    parts = name.split(":", 6)
    if name.startswith("arn:") and len(parts) >= 7 and parts[2] == "logs" and parts[5] == "log-group":
        name = parts[6]
        if name.endswith(":*"):
            name = name[:-2]
    return name


def _group(event: CloudTrailEvent) -> str:
    return log_group_name(event.req("logGroupName")) or log_group_name(event.req("logGroupIdentifier"))


def security_marker(group: str, rule: Rule) -> str | None:
    """The security marker (``params.name_markers``) the group's name holds, compared case-insensitively.

    CloudWatch Logs names are case-sensitive, so ``/Org/CLOUDTRAIL`` and ``/org/cloudtrail`` are two groups;
    the markers are a heuristic for "holds security logs" and must catch every casing of both.
    """
    lowered = group.lower()
    return next((m for m in _strings(rule.params.get("name_markers")) if m.lower() in lowered), None)


@decision("security_log_group")
def security_log_group(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Log group, stream and subscription deletions: risky only for groups whose name holds a security marker
    (case-insensitive)."""
    group = _group(event)
    if not group:
        return Assessment(False, f"{event.event_name} without a log group name")
    hit = security_marker(group, rule)
    if hit is None:
        return Assessment(False, f"log group {group} is not a security log group")
    what = {
        "DeleteSubscriptionFilter": f"subscription filter {event.req('filterName') or '?'} deleted from",
        "DeleteLogStream": f"stream {event.req('logStreamName') or '?'} deleted from",
    }.get(event.event_name, "deleted:")
    return Assessment(
        True,
        f"security log group {what} {group} (matches {hit!r}) by {_who(event)}",
        {"type": "AWS::Logs::LogGroup", "id": group},
    )


@decision("security_log_retention_cut")
def security_log_retention_cut(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutRetentionPolicy below ``params.min_retention_days`` on a security log group (same markers as
    ``security_log_group``): CloudWatch Logs then expires the evidence itself. DeleteRetentionPolicy
    (never expire) only lengthens retention and is not selected."""
    group = _group(event)
    hit = security_marker(group, rule) if group else None
    if hit is None:
        return Assessment(False, f"log group {group or '?'} is not a security log group")
    days = event.req("retentionInDays")
    floor = rule.params.get("min_retention_days")
    floor = floor if isinstance(floor, int) else 365
    if not isinstance(days, int) or isinstance(days, bool):
        return Assessment(False, f"retention {days!r} on {group} is not a number of days")
    if days >= floor:
        return Assessment(False, f"retention on {group} set to {days} days (at least {floor})")
    return Assessment(
        True,
        f"security log group {group} (matches {hit!r}) now expires events after {days} days by {_who(event)}",
        {"type": "AWS::Logs::LogGroup", "id": group},
        remediable=False,
    )


@decision("kms_key")
def kms_key(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """ScheduleKeyDeletion / DisableKey: names the key (ARN from the response when present).

    Whether the key may be touched (tagged protected, or a trail key) is checked
    live by the remediation; keys listed in ``protected_key_arns`` are named in the reason.
    """
    key = event.resp("keyId")
    if not isinstance(key, str) or not key:
        key = event.req("keyId")
    if not isinstance(key, str) or not key:
        return Assessment(True, f"{event.event_name} without a key id in the request", remediable=False)
    if not key.startswith("arn:") and event.region and event.account and not key.startswith("alias/"):
        key = f"arn:aws:kms:{event.region}:{event.account}:key/{key}"
    parts = key.split(":")
    if key.startswith("arn:") and (len(parts) < 6 or parts[3] != event.region or parts[4] != event.account):
        # KMS refuses DisableKey/ScheduleKeyDeletion across accounts: a record that names another account's
        # or region's key is malformed or forged, and the engine must not act on a key the record cannot own.
        return Assessment(
            True,
            f"{event.event_name} names {key}, outside the record's account and region {_where(event)}",
            {"type": "AWS::KMS::Key", "id": key},
            remediable=False,
        )
    protected = " (a protected trail key)" if key in cfg.protected_key_arns else ""
    window = event.req("pendingWindowInDays")
    when = f", deletion in {window} days" if isinstance(window, int) else ""
    return Assessment(
        True,
        f"{event.event_name} on {key}{protected}{when} by {_who(event)}",
        {"type": "AWS::KMS::Key", "id": key},
        {"key_id": key},
    )


@decision("guardduty_suppression")
def guardduty_suppression(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Archive filters, active trusted IP lists, threat lists turned off; NOOP filters and inactive lists are not."""
    detector = event.req("detectorId")
    det = detector if isinstance(detector, str) else ""
    if event.event_name in ("CreateFilter", "UpdateFilter"):
        if event.req("action") != "ARCHIVE":
            return Assessment(False, "filter does not archive findings")
        name = event.req("filterName") or event.req("name")
        return Assessment(
            True,
            f"GuardDuty suppression rule {name!s} on detector {det}",
            {"type": "AWS::GuardDuty::Filter", "id": str(name)},
        )
    activate = event.req("activate")
    off = activate is False or (isinstance(activate, str) and activate.strip().lower() == "false")
    if event.event_name in ("UpdateThreatIntelSet", "DeleteThreatIntelSet"):
        # A threat list makes GuardDuty alert on the addresses it names: turning one off silences those findings.
        if event.event_name == "UpdateThreatIntelSet" and not off:
            return Assessment(False, "threat list kept active (more findings, not fewer)")
        tis = event.req("threatIntelSetId")
        return Assessment(
            True,
            f"GuardDuty threat list {tis!s} {'deleted' if event.event_name.startswith('Delete') else 'deactivated'} "
            f"on detector {det}",
            {"type": "AWS::GuardDuty::ThreatIntelSet", "id": str(tis)},
        )
    if off:
        # An inactive trusted list suppresses nothing; activating it later (UpdateIPSet activate true) fires.
        return Assessment(False, "trusted IP list inactive (activate false): suppresses nothing")
    location = event.req("location")
    ipset = event.req("ipSetId") or event.resp("ipSetId") or event.req("name")
    return Assessment(
        True,
        f"GuardDuty trusted IP list {ipset!s} ({location or 'location unchanged'}) on detector {det}",
        {"type": "AWS::GuardDuty::IPSet", "id": str(ipset)},
    )
