"""Decisions for CloudTrail tampering rules."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, as_list
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import (
    is_allow,
    known_accounts,
    parse_policy,
    request_too_large,
    statement_principals,
    statements,
)
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


def _key_account(key: object) -> str:
    """The account of a KMS key or alias ARN (``arn:aws:kms:<region>:<account>:key/...``), else ''."""
    if not isinstance(key, str) or not key.startswith("arn:"):
        return ""
    parts = key.split(":")
    return parts[4] if len(parts) > 5 and parts[4].isdigit() and len(parts[4]) == 12 else ""


def _foreign_key(key: object, event: CloudTrailEvent, cfg: RuntimeConfig) -> str:
    """Why ``key`` is a KMS key of an account that is not ours (not the record's, the organization's or a trusted
    one), or ''. Whoever holds such a key can stop the trail's delivery (disable it, drop CloudTrail's grant)
    and read every log file it encrypted."""
    account = _key_account(key)
    if not account or account == event.account or account in known_accounts(cfg):
        return ""
    return f"KMS key {key} is in account {account}, outside the organization and the trusted accounts"


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
    foreign = _foreign_key(req.get("kmsKeyId"), event, cfg)
    if own:
        found = _against_deployed(req, deployed, org=bool(cfg.org_id))
        scope = "compared with trailguard's deployed trail"
    elif foreign:
        found = [*_explicit_removals(req), foreign] if len(sent) < FULL_RESEND else [foreign]
        scope = f"settings sent: {', '.join(sent)}"
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


def _record_buckets(event: CloudTrailEvent) -> list[str]:
    """Bucket names in the record's ``resources`` (``arn:<partition>:s3:::<bucket>``): still there when
    CloudTrail omits ``requestParameters`` as too large."""
    out: list[str] = []
    for res in as_list(event.detail.get("resources")):
        arn = res.get("ARN") if isinstance(res, Mapping) else None
        if isinstance(arn, str) and arn.startswith("arn:") and ":s3:::" in arn:
            name = arn.split(":s3:::", 1)[1]
            if name and "/" not in name:
                out.append(name)
    return out


@decision("trail_bucket_tampered")
def trail_bucket_tampered(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """S3 change on a trail archive bucket (name prefix from the rule's params), named by the request or, when
    the request was too large to log, by the record's ``resources``."""
    prefixes = _str_list(rule.params.get("trail_bucket_prefixes")) or ["trailguard-archive-"]
    bucket = event.req("bucketName")
    omitted = request_too_large(event.request)
    if not isinstance(bucket, str) and omitted:
        bucket = next((b for b in _record_buckets(event) if _starts_with_any(b, prefixes)), None)
    if not isinstance(bucket, str) or not _starts_with_any(bucket, prefixes):
        return Assessment(False, f"bucket {bucket!r} is not a trail archive bucket")
    if (
        event.event_name == "PutBucketVersioning"
        and not omitted
        and event.req("VersioningConfiguration", "Status") != "Suspended"
    ):
        return Assessment(False, f"versioning on {bucket} not suspended")
    unread = " (the request was too large to log: its content cannot be inspected)" if omitted else ""
    return Assessment(
        True,
        f"{event.event_name} on trail archive bucket {bucket}{unread}",
        resource={"type": "AWS::S3::Bucket", "id": bucket},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# CloudTrail Lake event data stores
# --------------------------------------------------------------------------- #

#: Retention (days) below which an UpdateEventDataStore is judged a cut (``params.min_retention_days``).
DEFAULT_MIN_RETENTION_DAYS = 365


def _is_false(value: object) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def _filtered_management(selectors: list[Any]) -> list[str]:
    """Advanced selectors that keep management events but filter them (a data-event-only store is not judged:
    without its previous selectors, a store that never recorded management events cannot be told apart)."""
    weak = _advanced_selectors_weak(selectors)
    return [w for w in weak if w.startswith("management events filtered")]


@decision("event_data_store_weakened")
def event_data_store_weakened(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """UpdateEventDataStore that weakens a CloudTrail Lake store: retention cut below ``min_retention_days``,
    termination protection off, multi-region or organization scope off, management events filtered, or a KMS key
    outside our accounts. Each is stated by the request itself; a setting the request does not name is unchanged.
    """
    req = event.request
    store = req.get("eventDataStore")
    store_id = store if isinstance(store, str) and store else "<unknown event data store>"
    minimum = rule.params.get("min_retention_days", DEFAULT_MIN_RETENTION_DAYS)
    minimum = minimum if isinstance(minimum, int) and not isinstance(minimum, bool) else DEFAULT_MIN_RETENTION_DAYS
    found: list[str] = []
    retention = req.get("retentionPeriod")
    if isinstance(retention, str) and retention.strip().isdigit():
        retention = int(retention.strip())
    if isinstance(retention, int) and not isinstance(retention, bool) and retention < minimum:
        found.append(f"retention cut to {retention} days (below {minimum})")
    for key, label in (
        ("terminationProtectionEnabled", "termination protection off"),
        ("multiRegionEnabled", "single-region"),
        ("organizationEnabled", "no longer an organization store"),
    ):
        if _is_false(req.get(key)):
            found.append(label)
    selectors = req.get("advancedEventSelectors")
    if isinstance(selectors, list) and selectors:
        found.extend(_filtered_management(selectors))
    foreign = _foreign_key(req.get("kmsKeyId"), event, cfg)
    if foreign:
        found.append(foreign)
    resource = {"type": "AWS::CloudTrail::EventDataStore", "id": store_id}
    if not found:
        return Assessment(False, f"UpdateEventDataStore on {store_id} does not weaken it", resource)
    return Assessment(
        True,
        f"UpdateEventDataStore weakened {store_id}: {', '.join(found)} by {event.principal_arn or 'unknown principal'}",
        resource,
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# The trail's KMS key policy
# --------------------------------------------------------------------------- #

CLOUDTRAIL_SERVICE = "cloudtrail.amazonaws.com"
#: Condition key CloudTrail's statements in a trail key policy are pinned with.
CLOUDTRAIL_CONTEXT = "kms:encryptioncontext:aws:cloudtrail:arn"


def _names_cloudtrail(stmt: Mapping[str, Any]) -> bool:
    return any(s.strip().lower() == CLOUDTRAIL_SERVICE for s in statement_principals(stmt).services)


def _mentions_trail_context(stmt: Mapping[str, Any]) -> bool:
    cond = stmt.get("Condition")
    if not isinstance(cond, Mapping):
        return False
    return any(isinstance(v, Mapping) and any(str(k).lower() == CLOUDTRAIL_CONTEXT for k in v) for v in cond.values())


def _key_arn(event: CloudTrailEvent) -> str:
    key = event.req("keyId")
    if not isinstance(key, str) or not key:
        return ""
    if key.startswith("arn:") or not (event.region and event.account):
        return key
    return f"arn:aws:kms:{event.region}:{event.account}:key/{key}"


#: Condition keys a Deny for CloudTrail may negate to keep other trails or accounts off the key (AWS's
#: confused-deputy guidance): such a Deny protects the trail, it does not break it.
_DEPUTY_KEYS = frozenset({"aws:sourcearn", "aws:sourceaccount", CLOUDTRAIL_CONTEXT})
_NEGATED = ("stringnotequals", "stringnotlike", "arnnotequals", "arnnotlike")


def _confused_deputy_guard(stmt: Mapping[str, Any]) -> bool:
    """A Deny whose every condition negates the source trail or account (``StringNotEquals aws:SourceArn`` ...)."""
    cond = stmt.get("Condition")
    if not isinstance(cond, Mapping) or not cond:
        return False
    for op, entries in cond.items():
        name = str(op).lower().removeprefix("forallvalues:").removeprefix("foranyvalue:")
        if not name.startswith(_NEGATED) or not isinstance(entries, Mapping) or not entries:
            return False
        if any(str(k).lower() not in _DEPUTY_KEYS for k in entries):
            return False
        values = [v for e in entries.values() for v in as_list(e)]
        if not values or any(not isinstance(v, str) or v.strip() in ("", "*") for v in values):
            return False
    return True


def _actions(stmt: Mapping[str, Any]) -> list[str]:
    return [a.strip().lower() for a in as_list(stmt.get("Action")) if isinstance(a, str)]


def _allows_data_keys(stmt: Mapping[str, Any]) -> bool:
    """The statement lets its principal generate data keys (what CloudTrail needs to encrypt log files)."""
    if "NotAction" in stmt:
        return not any(fnmatchcase("kms:generatedatakey", a) for a in _actions({"Action": stmt.get("NotAction")}))
    return any(fnmatchcase("kms:generatedatakey", a) for a in _actions(stmt))


@decision("trail_key_policy")
def trail_key_policy(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutKeyPolicy that cuts CloudTrail off a trail's KMS key (the trail stops delivering log files).

    A key is a trail key when it is listed in ``protected_key_arns`` (the trail keys trailguard knows) or when its
    new policy itself speaks to CloudTrail (a statement for ``cloudtrail.amazonaws.com`` or pinned with
    ``kms:EncryptionContext:aws:cloudtrail:arn``). Risky: a Deny for CloudTrail (on any key: it has no other use);
    on a known trail key, CloudTrail's Allow dropped; on any trail key, CloudTrail's Allow no longer covering
    ``kms:GenerateDataKey*``. A policy that cannot be read is alerted on a known trail key, and an omitted request
    on any key (a key policy is at most 32 KB, so an omitted one is crafted). Who else the policy lets in (anyone,
    other accounts) is judged for every key, this one included, by ``kms-key-policy-public``.
    """
    key = _key_arn(event)
    known = bool(key) and key in cfg.protected_key_arns
    where = f"{key or 'a key'}{' (a protected trail key)' if known else ''}"
    resource = {"type": "AWS::KMS::Key", "id": key} if key else {}
    if request_too_large(event.request):
        return Assessment(
            True,
            f"PutKeyPolicy on {where}: the request was omitted as too large to log, so the new policy cannot be "
            "inspected (a key policy is at most 32 KB)",
            resource,
            remediable=False,
        )
    parsed = parse_policy(event.req("policy"))
    doc = parsed.document
    if doc is None:
        if known:
            return Assessment(
                True,
                f"PutKeyPolicy on {where}: the new policy cannot be read ({parsed.error})",
                resource,
                remediable=False,
            )
        return Assessment(False, f"PutKeyPolicy on {where}: no readable policy ({parsed.error})", resource)
    stmts = statements(doc)
    trail_key = known or any(_names_cloudtrail(s) or _mentions_trail_context(s) for s in stmts)
    grants = [s for s in stmts if is_allow(s) and _names_cloudtrail(s)]
    found: list[str] = []
    if any(not is_allow(s) and _names_cloudtrail(s) and not _confused_deputy_guard(s) for s in stmts):
        found.append("CloudTrail is denied the key")
    if known and not grants:
        found.append("CloudTrail's grant is dropped")
    elif trail_key and grants and not any(_allows_data_keys(s) for s in grants):
        found.append("CloudTrail's grant no longer covers kms:GenerateDataKey*")
    if not found:
        what = "a trail key" if trail_key else "not a trail key (no CloudTrail statement, not protected)"
        return Assessment(False, f"PutKeyPolicy on {where}: {what}; CloudTrail keeps its access", resource)
    return Assessment(
        True,
        f"PutKeyPolicy on {where} by {event.principal_arn or 'unknown principal'}: {'; '.join(found)}: the trail can "
        "no longer encrypt, so it stops delivering log files",
        resource,
        remediable=False,
    )
