"""Decisions for CloudTrail tampering rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, as_list
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig


def _trail_arn(event: CloudTrailEvent) -> str:
    name = event.req("name")
    if not isinstance(name, str) or not name:
        return ""
    if name.startswith("arn:"):
        return name
    return f"arn:aws:cloudtrail:{event.region}:{event.account}:trail/{name}"


@decision("trail_target")
def trail_target(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Risky whenever it happened; names the trail for the remediation."""
    arn = _trail_arn(event)
    if not arn:
        return Assessment(True, f"{event.event_name} without a trail name in the request", remediable=False)
    own = _is_deployed_trail(arn, cfg)
    return Assessment(
        True,
        f"{event.event_name} on {'trailguard' + chr(39) + 's own ' if own else ''}trail {arn}"
        f" by {event.principal_arn or 'unknown principal'}",
        resource={"type": "AWS::CloudTrail::Trail", "id": arn},
        params={"trail": arn},
        own_resource=own,
    )


def _is_deployed_trail(arn: str, cfg: RuntimeConfig) -> bool:
    """True when ``arn`` is trailguard's own trail (``trailguard_trail.arn`` in the runtime document)."""
    deployed = cfg.deployed_trail.get("arn")
    return bool(deployed) and arn == deployed


def _str_list(value: object) -> list[str]:
    return [v for v in as_list(value) if isinstance(v, str)]


def _starts_with_any(name: str, prefixes: list[str]) -> bool:
    return any(name.startswith(p) for p in prefixes)


#: The UpdateTrail settings a caller may send. Terraform and CloudFormation re-send all of them on every
#: apply; a person changing one setting sends that one (plus the name).
_TRAIL_SETTINGS = (
    "s3BucketName",
    "s3KeyPrefix",
    "snsTopicName",
    "includeGlobalServiceEvents",
    "isMultiRegionTrail",
    "enableLogFileValidation",
    "isOrganizationTrail",
    "kmsKeyId",
    "cloudWatchLogsLogGroupArn",
    "cloudWatchLogsRoleArn",
)
#: A request naming at least this many settings is a full re-send (the IaC shape).
FULL_RESEND = 5
_FLAGS = (
    ("isMultiRegionTrail", "single-region"),
    ("enableLogFileValidation", "log file validation off"),
    ("includeGlobalServiceEvents", "global service events excluded"),
    ("isOrganizationTrail", "no longer an organization trail"),
)


def _log_group_name(arn: str) -> str:
    """``arn:aws:logs:<region>:<account>:log-group:<name>:*`` -> ``<name>`` (or the value as given)."""
    parts = arn.split(":")
    if len(parts) >= 7 and parts[5] == "log-group":
        return parts[6]
    return arn


def _against_deployed(req: Mapping[str, Any], deployed: Mapping[str, str], org: bool) -> list[str]:
    """What the request changes for the worse on trailguard's own trail, compared with its deployed configuration."""
    found = [label for key, label in _FLAGS if req.get(key) is False and (key != "isOrganizationTrail" or org)]
    bucket = req.get("s3BucketName")
    if "s3BucketName" in req and deployed.get("bucket") and bucket != deployed["bucket"]:
        found.append(f"bucket changed to {bucket or '<empty>'} (deployed: {deployed['bucket']})")
    if "kmsKeyId" in req:
        key = req.get("kmsKeyId")
        alias_arn = deployed.get("kms_key", "")
        accepted = {alias_arn, alias_arn.rsplit(":", 1)[-1]} - {""}
        if not key:
            found.append("KMS encryption removed")
        elif accepted and key not in accepted:
            found.append(f"KMS key changed to {key} (deployed: {alias_arn})")
    if "cloudWatchLogsLogGroupArn" in req:
        group = req.get("cloudWatchLogsLogGroupArn")
        if not group:
            found.append("log group removed")
        elif deployed.get("log_group") and _log_group_name(str(group)) != deployed["log_group"]:
            found.append(f"log group changed to {group} (deployed: {deployed['log_group']})")
    return found


def _explicit_removals(req: Mapping[str, Any]) -> list[str]:
    """Weakening a request states by itself, without knowing the trail's previous configuration."""
    found = [label for key, label in _FLAGS if req.get(key) is False]
    if "kmsKeyId" in req and not req.get("kmsKeyId"):
        found.append("KMS encryption removed")
    if "cloudWatchLogsLogGroupArn" in req and not req.get("cloudWatchLogsLogGroupArn"):
        found.append("log group removed")
    bucket = req.get("s3BucketName")
    if isinstance(bucket, str):
        found.append(f"bucket changed to {bucket or '<empty>'}")
    return found


@decision("trail_weakened")
def trail_weakened(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """UpdateTrail: risky only when it really changes a setting for the worse (see the rule description).

    * trailguard's own trail (``cfg.deployed_trail``, from the runtime document): every setting in the
      request is compared with the deployed configuration; an unchanged re-send is not risky.
    * any other trail: a request naming only a few settings (a person's change) is judged by what it
      states: a setting turned off, KMS or the log group removed, the bucket moved. A full re-send
      (Terraform or CloudFormation send every setting on each apply) cannot be told from an unchanged
      one without the trail's previous configuration, so it is not judged offline.
    """
    req = event.request
    arn = _trail_arn(event)
    deployed = cfg.deployed_trail
    own = bool(deployed.get("arn")) and arn == deployed.get("arn")
    sent = [k for k in _TRAIL_SETTINGS if k in req]
    if own:
        found = _against_deployed(req, deployed, org=bool(cfg.org_id))
        scope = "compared with trailguard's deployed trail"
    elif len(sent) >= FULL_RESEND:
        return Assessment(
            False,
            f"UpdateTrail on {arn or 'a trail'} re-sends {len(sent)} settings (the IaC shape); without the trail's "
            "previous configuration an unchanged re-send cannot be told from a change, so it is not judged",
        )
    else:
        found = _explicit_removals(req)
        scope = f"settings sent: {', '.join(sent) or 'none'}"
    if not found:
        return Assessment(False, f"UpdateTrail on {arn or 'a trail'} does not weaken it ({scope})")
    return Assessment(
        True,
        f"UpdateTrail weakened {arn or 'a trail'}: {', '.join(found)} ({scope})",
        resource={"type": "AWS::CloudTrail::Trail", "id": arn} if arn else {},
        remediable=False,
    )


_MGMT_FILTER_FIELDS = frozenset(
    {"readOnly", "eventSource", "eventName", "eventType", "userIdentity.arn", "sessionCredentialFromConsole"}
)


def _basic_selectors_weak(selectors: list[Any]) -> list[str]:
    mgmt = [s for s in selectors if isinstance(s, Mapping) and s.get("includeManagementEvents") is not False]
    if not mgmt:
        return ["no selector includes management events"]
    if not any(s.get("readWriteType", "All") == "All" for s in mgmt):
        kinds = sorted({str(s.get("readWriteType")) for s in mgmt})
        return [f"management events limited to {'/'.join(kinds)}"]
    full = [s for s in mgmt if s.get("readWriteType", "All") == "All"]
    if all(_str_list(s.get("excludeManagementEventSources")) for s in full):
        excluded = sorted({x for s in full for x in _str_list(s.get("excludeManagementEventSources"))})
        return [f"management events from {', '.join(excluded)} excluded"]
    return []


def _advanced_selectors_weak(selectors: list[Any]) -> list[str]:
    mgmt_filters: list[list[str]] = []
    for sel in selectors:
        if not isinstance(sel, Mapping):
            continue
        fields = [f for f in as_list(sel.get("fieldSelectors")) if isinstance(f, Mapping)]
        category = next((f for f in fields if f.get("field") == "eventCategory"), None)
        if category is None or "Management" not in _str_list(category.get("equals")):
            continue
        mgmt_filters.append(
            sorted(
                {f["field"] for f in fields if isinstance(f.get("field"), str) and f["field"] in _MGMT_FILTER_FIELDS}
            )
        )
    if not mgmt_filters:
        return ["no advanced selector records management events"]
    if all(mgmt_filters):
        return [f"management events filtered by {', '.join(mgmt_filters[0])}"]
    return []


@decision("event_selectors_weakened")
def event_selectors_weakened(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutEventSelectors / PutInsightSelectors: risky when management events (or all Insights) are dropped."""
    trail = event.req("trailName")
    trail_id = trail if isinstance(trail, str) else ""
    resource = {"type": "AWS::CloudTrail::Trail", "id": trail_id} if trail_id else {}
    if event.event_name == "PutInsightSelectors":
        kept = [s for s in as_list(event.req("insightSelectors")) if isinstance(s, Mapping) and s.get("insightType")]
        if kept:
            return Assessment(False, f"Insights still enabled on {trail_id}: {len(kept)} type(s)", resource)
        return Assessment(True, f"all CloudTrail Insights types removed from {trail_id}", resource, remediable=False)
    basic = event.req("eventSelectors")
    advanced = event.req("advancedEventSelectors")
    if isinstance(advanced, list) and advanced:
        weak = _advanced_selectors_weak(advanced)
    elif isinstance(basic, list):
        weak = _basic_selectors_weak(basic)
    else:
        return Assessment(False, "no event selectors in the request")
    if not weak:
        return Assessment(False, f"{trail_id} still records all management events", resource)
    return Assessment(True, f"PutEventSelectors on {trail_id}: {'; '.join(weak)}", resource, remediable=False)


@decision("trail_bucket_tampered")
def trail_bucket_tampered(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """S3 change on a trail archive bucket (name prefix from the rule's params)."""
    prefixes = _str_list(rule.params.get("trail_bucket_prefixes")) or ["trailguard-archive-"]
    bucket = event.req("bucketName")
    if not isinstance(bucket, str) or not _starts_with_any(bucket, prefixes):
        return Assessment(False, f"bucket {bucket!r} is not a trail archive bucket")
    if event.event_name == "PutBucketVersioning" and event.req("VersioningConfiguration", "Status") != "Suspended":
        return Assessment(False, f"versioning on {bucket} not suspended")
    return Assessment(
        True,
        f"{event.event_name} on trail archive bucket {bucket}",
        resource={"type": "AWS::S3::Bucket", "id": bucket},
        remediable=False,
    )
