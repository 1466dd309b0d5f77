"""Decisions for defense evasion beyond switching a control off (issue 14): suppressing, narrowing or
filtering what a detective control sees, and destroying what recovery depends on.

Patterns select the API calls broadly (eventSource + eventName); these functions read the request by
meaning. Request keys are looked up without regard to case (:func:`field`): CloudTrail logs most
services' parameters in camelCase but Security Hub's in PascalCase, and a decision must not go blind
because one service, or one SDK, spells a key differently. Enum values are compared upper-cased, as the
services document them. All of these are alert-only: the state before the change (which findings were
open, which resource types were recorded, which log retention applied) is not in the event, so nothing
can be restored safely offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, as_list
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import known_accounts
from trailguard_engine.runtime_config import RuntimeConfig


def field(obj: Any, *path: str) -> Any:
    """Walk mappings by key, matching each key case-insensitively (exact spelling first); None when missing."""
    cur = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        if key in cur:
            cur = cur[key]
            continue
        low = key.lower()
        cur = next((v for k, v in cur.items() if isinstance(k, str) and k.lower() == low), None)
    return cur


def is_false(value: Any) -> bool:
    """``false`` as a JSON boolean or as the string a form-encoded or hand-written request carries."""
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def upper(value: Any) -> str:
    return value.strip().upper() if isinstance(value, str) else ""


def _who(event: CloudTrailEvent) -> str:
    return event.principal_arn or event.identity_type or "unknown principal"


def _first_str(event: CloudTrailEvent, keys: Iterable[str]) -> str:
    for key in keys:
        values = [v for v in as_list(field(event.request, key)) if isinstance(v, str) and v]
        if values:
            return ",".join(values)
    return f"{event.account or '?'}/{event.region or '?'}"


def _alert(event: CloudTrailEvent, rtype: str, rid: str, what: str) -> Assessment:
    return Assessment(True, f"{what} by {_who(event)}", {"type": rtype, "id": rid}, remediable=False)


# --------------------------------------------------------------------------- #
# GuardDuty
# --------------------------------------------------------------------------- #


def _disabled_features(features: Any) -> list[str]:
    """GuardDuty ``features`` entries (and their ``additionalConfiguration``) set to DISABLED."""
    off: list[str] = []
    for feat in as_list(features):
        if not isinstance(feat, Mapping):
            continue
        name = str(field(feat, "name") or "?")
        if upper(field(feat, "status")) == "DISABLED":
            off.append(name)
        for extra in as_list(field(feat, "additionalConfiguration")):
            if isinstance(extra, Mapping) and upper(field(extra, "status")) == "DISABLED":
                off.append(f"{name}/{field(extra, 'name') or '?'}")
    return off


def _disabled_data_sources(sources: Any, prefix: str = "") -> list[str]:
    """Legacy ``dataSources``: any nested ``enable: false`` (s3Logs, kubernetes.auditLogs), ``ebsVolumes: false``
    (malwareProtection.scanEc2InstanceWithFindings) or, in the organization configuration, ``autoEnable: false``."""
    off: list[str] = []
    if not isinstance(sources, Mapping):
        return off
    for key, value in sources.items():
        here = f"{prefix}{key}"
        if isinstance(value, Mapping):
            off.extend(_disabled_data_sources(value, here + "."))
        elif str(key).lower() in ("enable", "ebsvolumes", "autoenable") and is_false(value):
            off.append(here)
    return off


@decision("guardduty_detector")
def guardduty_detector(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """GuardDuty suspended: ``UpdateDetector`` with ``enable`` false (remediable: the detector is named), or
    ``StopMonitoringMembers`` from the administrator (the same effect for member accounts; alert only, the
    detector re-enabled by the remediation is the administrator's own, which is still running)."""
    det = field(event.request, "detectorId")
    det = det if isinstance(det, str) and det else ""
    if event.event_name == "StopMonitoringMembers":
        accounts = [a for a in as_list(field(event.request, "accountIds")) if isinstance(a, str)]
        return _alert(
            event,
            "AWS::GuardDuty::Member",
            ",".join(accounts) or "?",
            f"GuardDuty monitoring stopped for member accounts {', '.join(accounts) or '?'} (detector {det or '?'})",
        )
    if not is_false(field(event.request, "enable")):
        return Assessment(False, "UpdateDetector leaves the detector enabled")
    resource = {"type": "AWS::GuardDuty::Detector", "id": det or "?"}
    if not det:
        return Assessment(True, f"GuardDuty detector suspended by {_who(event)}", resource, remediable=False)
    return Assessment(True, f"GuardDuty detector {det} suspended by {_who(event)}", resource, {"detector_id": det})


@decision("guardduty_protection_off")
def guardduty_protection_off(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """GuardDuty left running but blind: protection plans (``features``) or legacy ``dataSources`` disabled,
    on the own detector (UpdateDetector) or on members' (UpdateMemberDetectors), or organization
    auto-enable turned off for new and existing members (UpdateOrganizationConfiguration ``NONE``)."""
    req = event.request
    off = _disabled_features(field(req, "features")) + _disabled_data_sources(field(req, "dataSources"))
    if event.event_name == "UpdateOrganizationConfiguration":
        if upper(field(req, "autoEnableOrganizationMembers")) == "NONE":
            off.append("autoEnableOrganizationMembers=NONE")
        if is_false(field(req, "autoEnable")):
            off.append("autoEnable=false")
        for feat in as_list(field(req, "features")):
            if isinstance(feat, Mapping) and upper(field(feat, "autoEnable")) == "NONE":
                off.append(f"{field(feat, 'name') or '?'} autoEnable=NONE")
    if not off:
        return Assessment(False, f"{event.event_name} disables no protection plan")
    det = field(req, "detectorId")
    members = [a for a in as_list(field(req, "accountIds")) if isinstance(a, str)]
    scope = f" for members {', '.join(members)}" if members else ""
    return _alert(
        event,
        "AWS::GuardDuty::Detector",
        str(det or "?"),
        f"GuardDuty protection turned off on detector {det or '?'}{scope}: {', '.join(sorted(set(off)))}",
    )


# --------------------------------------------------------------------------- #
# Security Hub
# --------------------------------------------------------------------------- #


def _suppressing_actions(actions: Any) -> bool:
    for action in as_list(actions):
        if upper(field(action, "FindingFieldsUpdate", "Workflow", "Status")) == "SUPPRESSED":
            return True
    return False


@decision("securityhub_suppression")
def securityhub_suppression(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Findings hidden: ``BatchUpdateFindings`` to workflow status SUPPRESSED, the legacy ``UpdateFindings``
    to record state ARCHIVED, or an automation rule (created or updated) whose action suppresses every
    future finding it matches."""
    req = event.request
    name = event.event_name
    if name == "BatchUpdateFindings":
        if upper(field(req, "Workflow", "Status")) != "SUPPRESSED":
            return Assessment(False, "BatchUpdateFindings does not suppress")
        ids = [field(f, "Id") for f in as_list(field(req, "FindingIdentifiers"))]
        n = len(ids)
        return _alert(
            event,
            "AWS::SecurityHub::Finding",
            str(ids[0] if n == 1 else f"{n} findings"),
            (f"{n} Security Hub finding(s) suppressed"),
        )
    if name == "UpdateFindings":
        if upper(field(req, "RecordState")) != "ARCHIVED":
            return Assessment(False, "UpdateFindings does not archive")
        return _alert(event, "AWS::SecurityHub::Finding", "filter", "Security Hub findings archived by filter")
    rules = [req] if name == "CreateAutomationRule" else as_list(field(req, "UpdateAutomationRulesRequestItems"))
    hits = []
    for item in rules:
        if not isinstance(item, Mapping) or upper(field(item, "RuleStatus")) == "DISABLED":
            continue
        if _suppressing_actions(field(item, "Actions")):
            hits.append(str(field(item, "RuleName") or field(item, "RuleArn") or "?"))
    if not hits:
        return Assessment(False, f"{name}: no enabled automation rule that suppresses findings")
    return _alert(
        event,
        "AWS::SecurityHub::AutomationRule",
        ",".join(hits),
        f"Security Hub automation rule {', '.join(hits)} suppresses matching findings",
    )


@decision("securityhub_control_disabled")
def securityhub_control_disabled(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Controls switched off: ``UpdateStandardsControl`` ControlStatus DISABLED, or
    ``BatchUpdateStandardsControlAssociations`` with any association DISABLED (consolidated controls)."""
    req = event.request
    if event.event_name == "UpdateStandardsControl":
        if upper(field(req, "ControlStatus")) != "DISABLED":
            return Assessment(False, "control left enabled")
        arn = str(field(req, "StandardsControlArn") or "?")
        why = field(req, "DisabledReason")
        return _alert(
            event,
            "AWS::SecurityHub::StandardsControl",
            arn,
            f"Security Hub control {arn} disabled ({why or 'no reason'})",
        )
    off = []
    for item in as_list(field(req, "StandardsControlAssociationUpdates")):
        if isinstance(item, Mapping) and upper(field(item, "AssociationStatus")) == "DISABLED":
            off.append(f"{field(item, 'SecurityControlId') or '?'} in {field(item, 'StandardsArn') or '?'}")
    if not off:
        return Assessment(False, "no control association disabled")
    return _alert(
        event, "AWS::SecurityHub::StandardsControl", ",".join(off), f"Security Hub controls disabled: {'; '.join(off)}"
    )


# --------------------------------------------------------------------------- #
# AWS Config
# --------------------------------------------------------------------------- #


def recorder_narrowing(req: Mapping[str, Any]) -> list[str]:
    """How a ``PutConfigurationRecorder`` request records less than everything, continuously."""
    recorder = field(req, "configurationRecorder")
    if not isinstance(recorder, Mapping):
        return []
    why = []
    group = field(recorder, "recordingGroup")
    if isinstance(group, Mapping):
        strategy = upper(field(group, "recordingStrategy", "useOnly"))
        excluded = as_list(field(group, "exclusionByResourceTypes", "resourceTypes"))
        if is_false(field(group, "allSupported")) or strategy == "INCLUSION_BY_RESOURCE_TYPES":
            types = as_list(field(group, "resourceTypes"))
            why.append(f"records only {len(types)} listed resource type(s)")
        if strategy == "EXCLUSION_BY_RESOURCE_TYPES" or excluded:
            why.append(f"excludes {', '.join(map(str, excluded)) or 'resource types'}")
    mode = field(recorder, "recordingMode")
    if isinstance(mode, Mapping):
        if upper(field(mode, "recordingFrequency")) == "DAILY":
            why.append("records daily instead of continuously")
        for override in as_list(field(mode, "recordingModeOverrides")):
            if isinstance(override, Mapping) and upper(field(override, "recordingFrequency")) == "DAILY":
                why.append(f"records {', '.join(map(str, as_list(field(override, 'resourceTypes'))))} daily")
    return why


@decision("config_recorder")
def config_recorder(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """The Config recorder stopped (``StopConfigurationRecorder``: remediable, StartConfigurationRecorder is
    its exact inverse) or left running while recording less (``PutConfigurationRecorder`` narrowing the
    recording group or frequency, ``DisassociateResourceTypes``): the same blind spot by a sibling API,
    alert only because the previous recording group is not in the event."""
    req = event.request
    name = event.event_name
    if name == "StopConfigurationRecorder":
        rec = field(req, "configurationRecorderName")
        rec = rec if isinstance(rec, str) and rec else ""
        resource = {"type": "AWS::Config::ConfigurationRecorder", "id": rec or "?"}
        if not rec:
            return Assessment(True, f"Config recorder stopped by {_who(event)}", resource, remediable=False)
        return Assessment(True, f"Config recorder {rec} stopped by {_who(event)}", resource, {"recorder": rec})
    if name == "DisassociateResourceTypes":
        arn = str(field(req, "configurationRecorderArn") or "?")
        types = ", ".join(map(str, as_list(field(req, "resourceTypes")))) or "?"
        return _alert(
            event, "AWS::Config::ConfigurationRecorder", arn, f"Config recorder {arn} stops recording {types}"
        )
    why = recorder_narrowing(req)
    if not why:
        return Assessment(False, "the recorder still records all supported resource types continuously")
    rec = str(field(req, "configurationRecorder", "name") or "?")
    return _alert(event, "AWS::Config::ConfigurationRecorder", rec, f"Config recorder {rec} narrowed: {'; '.join(why)}")


# --------------------------------------------------------------------------- #
# WAF logging
# --------------------------------------------------------------------------- #

#: Redacting a header (credentials, cookies) is routine; redacting these hides the attack itself.
_REDACTION_KEPT = frozenset({"SINGLEHEADER", "HEADER"})


def _redacted(fields: Any) -> list[str]:
    """Redacted fields other than a single header: WAFv2 names them by key (``uriPath``, ``queryString``,
    ``method``), WAF Classic by ``type`` (``URI``, ``QUERY_STRING``, ``BODY``, ...)."""
    out: list[str] = []
    for item in as_list(fields):
        if not isinstance(item, Mapping):
            continue
        kind = upper(field(item, "type"))
        names = [kind] if kind else [str(k).upper() for k in item]
        out.extend(n for n in names if n and n not in _REDACTION_KEPT)
    return out


@decision("waf_logging_filtered")
def waf_logging_filtered(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """WAF logging kept but emptied: a logging filter that drops requests (default behaviour DROP, or any
    filter with behaviour DROP), or redaction of the URI, query string, method or body."""
    conf = field(event.request, "loggingConfiguration")
    if not isinstance(conf, Mapping):
        return Assessment(False, "no logging configuration in the request")
    why = []
    filt = field(conf, "loggingFilter")
    if isinstance(filt, Mapping):
        if upper(field(filt, "defaultBehavior")) == "DROP":
            why.append("requests matching no filter are dropped")
        dropping = [f for f in as_list(field(filt, "filters")) if upper(field(f, "behavior")) == "DROP"]
        if dropping:
            why.append(f"{len(dropping)} filter(s) drop matching requests")
    redacted = _redacted(field(conf, "redactedFields"))
    if redacted:
        why.append(f"redacts {', '.join(sorted(set(redacted)))}")
    if not why:
        return Assessment(False, "logging keeps every request")
    acl = str(field(conf, "resourceArn") or field(event.request, "resourceArn") or "?")
    return _alert(event, "AWS::WAFv2::LoggingConfiguration", acl, f"WAF logging for {acl} filtered: {'; '.join(why)}")


# --------------------------------------------------------------------------- #
# Generic: a request field with a given value
# --------------------------------------------------------------------------- #


@decision("request_value")
def request_value(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Risky when any of ``params.conditions`` holds: ``{"path": [keys], "is": "false"|"true"|<enum>}`` (keys
    matched case-insensitively, enums upper-cased, booleans also in string form), ``{"path": [...],
    "at_most": n}`` for a number, ``{"path": [...], "present": true}`` for a field that is set, or ``{"always": true}``. A condition with ``"events": [names]`` applies to
    those eventNames only. ``params.id_fields`` names the resource, ``params.resource_type`` its type;
    ``params.what`` labels the change. Alert only."""
    p = rule.params
    hits = []
    for cond in as_list(p.get("conditions")):
        if not isinstance(cond, Mapping):
            continue
        events = cond.get("events")
        if isinstance(events, list) and event.event_name not in events:
            continue
        if cond.get("always") is True:
            hits.append(event.event_name)
            continue
        path = [str(k) for k in as_list(cond.get("path"))]
        value = field(event.request, *path)
        want = cond.get("is")
        if cond.get("present") is True:
            ok = value is not None and value != ""
        elif want == "false":
            ok = is_false(value)
        elif want == "true":
            ok = is_true(value)
        elif isinstance(want, str):
            ok = upper(value) == want.upper()
        else:
            limit = cond.get("at_most")
            ok = isinstance(limit, int) and isinstance(value, int) and not isinstance(value, bool) and value <= limit
        if ok:
            hits.append(f"{'.'.join(path)}={value}")
    if not hits:
        return Assessment(False, f"{event.event_name} changes nothing this rule watches")
    rid = _first_str(event, [str(k) for k in as_list(p.get("id_fields"))])
    what = p.get("what") if isinstance(p.get("what"), str) else event.event_name
    return _alert(event, str(p.get("resource_type") or ""), rid, f"{what} on {rid} ({', '.join(hits)})")


# --------------------------------------------------------------------------- #
# EBS default encryption key
# --------------------------------------------------------------------------- #


def kms_key_account(value: Any) -> str:
    """The account in a KMS key or alias ARN (``arn:<partition>:kms:<region>:<account>:key/...``), else ''."""
    if not isinstance(value, str):
        return ""
    parts = value.strip().split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] == "kms":
        return parts[4]
    return ""


@decision("ebs_default_key_external")
def ebs_default_key_external(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """ModifyEbsDefaultKmsKeyId to a key of an account that is not ours: every new volume in the region is
    then encrypted with a key another account controls and can revoke (ransomware). A key id or alias
    without an ARN is always this account's; an organization or trusted account's key is not risky."""
    req = event.request
    key = field(req, "kmsKeyId") or field(req, "ModifyEbsDefaultKmsKeyIdRequest", "KmsKeyId")
    owner = kms_key_account(key)
    if not owner or owner == event.account:
        return Assessment(False, f"default EBS key {key or '?'} belongs to this account")
    if owner in known_accounts(cfg):
        return Assessment(False, f"default EBS key {key} belongs to the organization or trusted account {owner}")
    return _alert(
        event,
        "AWS::EC2::EBSDefaultKmsKey",
        str(key),
        f"default EBS encryption key set to {key}, owned by account {owner} outside the organization",
    )
