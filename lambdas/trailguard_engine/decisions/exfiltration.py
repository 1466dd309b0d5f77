"""Decisions for exfiltration and data destruction: copies of data leaving the organization, short lifecycles,
ransomware-style encryption and bulk deletes, public or re-keyed databases.

"External" means an account that is neither the event's own account nor one of the organization's accounts nor
``intended_exposure.trusted_accounts`` (:func:`trailguard_engine.policy.known_accounts`: the cached Organizations
account list in the engine, the config's list in replay; unknown organization accounts look external, an alert). A value that
is not a plain 12-digit account ID (a look-alike with a space, 13 digits, a wildcard) is external: AWS either
rejects it (the call fails and nothing fires) or it names something we cannot prove is ours.

S3 object calls (PutObject, CopyObject, CreateMultipartUpload, DeleteObjects) are CloudTrail *data* events: the
trail records them only with ``features.data_events.s3`` on (off by default; the trail archive bucket's own
objects are never recorded). Without it the SSE-C and bulk-delete rules never see an event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, as_list, dig
from trailguard_engine.events import get_ci as _ci
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import known_accounts
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import ITEMS_PARAM, MAX_ITEMS_PER_EVENT

_ACCOUNT_ID = re.compile(r"^\d{12}$")
#: Account IDs inside ARNs (``arn:aws:iam::444455556666:role/x``).
_ARN_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:(\d{12}):")
DEFAULT_MAX_EXPIRY_DAYS = 7
#: Shortest archive retention trailguard's config accepts (``retention.archive_days`` >= 365).
DEFAULT_ARCHIVE_MIN_DAYS = 365
DEFAULT_ARCHIVE_PREFIXES = ("trailguard-archive-",)
#: Keys of a DeleteObjects record that names them, per counted item (params.keys_per_item).
DEFAULT_KEYS_PER_ITEM = 10
#: Request-body bytes per key when a DeleteObjects record does not list its keys (params.body_bytes_per_key).
DEFAULT_BODY_BYTES_PER_KEY = 64
SSE_C_HEADER = "x-amz-server-side-encryption-customer-algorithm"


def external_account(value: Any, event: CloudTrailEvent, cfg: RuntimeConfig) -> str | None:
    """``value`` (an account ID or an ARN naming one) when it is outside the organization, else None.

    Not a plain 12-digit ID (look-alikes, wildcards, ``all``) counts as external: we cannot prove it is ours.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:012d}"
    if not isinstance(value, str):
        return None if value is None else repr(value)
    m = _ARN_ACCOUNT.match(value)
    account = m.group(1) if m else value
    if _ACCOUNT_ID.match(account) and (account == event.account or account in known_accounts(cfg)):
        return None
    return value


def _int(value: Any) -> int | None:
    """Days as CloudTrail logs them: an int, or a string of digits (XML bodies)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _principal(event: CloudTrailEvent) -> str:
    return event.principal_arn or event.access_key_id or "unknown principal"


def _too_large(event: CloudTrailEvent) -> bool:
    return event.request.get("omitted") is True or event.request.get("omitted") == "true"


def _bucket(event: CloudTrailEvent) -> str:
    b = event.req("bucketName")
    return b if isinstance(b, str) else ""


# --------------------------------------------------------------------------- #
# S3 replication
# --------------------------------------------------------------------------- #
@decision("s3_replication_external")
def s3_replication_external(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutBucketReplication to a destination outside the organization, or whose owner the request hides.

    ``Destination.Account`` is optional: without it the destination may still belong to another account that
    granted the replication role in its bucket policy, so an unstated owner is reported too. A destination
    stated to be the own account, an organization account or a trusted one is not.
    """
    bucket = _bucket(event)
    resource = {"type": "AWS::S3::Bucket", "id": bucket}
    if _too_large(event):
        return Assessment(
            True, f"replication of {bucket or '?'} set with a request too large to log", resource, remediable=False
        )
    config = _ci(event.request, "ReplicationConfiguration")
    findings: list[str] = []
    for r in as_list(_ci(config, "Rule")):
        if not isinstance(r, Mapping):
            continue
        status = _ci(r, "Status")
        if isinstance(status, str) and status.lower() == "disabled":
            continue
        dest = _ci(r, "Destination")
        target = _ci(dest, "Bucket")
        target_txt = target if isinstance(target, str) else "?"
        account = _ci(dest, "Account")
        if account is None:
            findings.append(f"{target_txt} (owner not stated: may be another account)")
            continue
        ext = external_account(account, event, cfg)
        if ext is not None:
            findings.append(f"{target_txt} in external account {ext}")
    if not findings:
        return Assessment(False, "replication stays in this account or the organization (or is disabled)", resource)
    return Assessment(
        True,
        f"bucket {bucket or '?'} replicates to {'; '.join(findings[:5])} (by {_principal(event)})",
        resource,
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# S3 lifecycle
# --------------------------------------------------------------------------- #
def _archive_bucket(bucket: str, rule: Rule, cfg: RuntimeConfig) -> bool:
    deployed = cfg.deployed_trail.get("bucket", "")
    if deployed and bucket.lower() == deployed.lower():
        return True
    prefixes = [p for p in as_list(rule.params.get("archive_bucket_prefixes")) if isinstance(p, str) and p]
    return bucket.lower().startswith(tuple(p.lower() for p in prefixes or DEFAULT_ARCHIVE_PREFIXES))


def _rule_expiries(r: Mapping[str, Any], event_time: datetime | None) -> list[tuple[str, int | None]]:
    """``(what, days)`` for each expiration in one lifecycle rule; days None when unreadable."""
    out: list[tuple[str, int | None]] = []
    exp = _ci(r, "Expiration")
    if isinstance(exp, Mapping):
        days = _ci(exp, "Days")
        date = _ci(exp, "Date")
        if days is not None:
            out.append(("Expiration.Days", _int(days)))
        elif date is not None:
            when = _time(date)
            left = (when - event_time).days if when and event_time else None
            out.append((f"Expiration.Date {date}", max(left, 0) if left is not None else None))
        # ExpiredObjectDeleteMarker alone removes only delete markers: not a data expiry.
    nve = _ci(r, "NoncurrentVersionExpiration")
    if isinstance(nve, Mapping) and _ci(nve, "NoncurrentDays") is not None:
        out.append(("NoncurrentVersionExpiration.NoncurrentDays", _int(_ci(nve, "NoncurrentDays"))))
    return out


@decision("s3_lifecycle_short_expiry")
def s3_lifecycle_short_expiry(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A lifecycle rule that expires objects (current or noncurrent) within ``params.max_days`` days; on the
    trail archive bucket, within ``params.archive_min_days`` (the shortest retention the config allows).

    Days may be logged as a number or a string; ``Expiration.Date`` counts from the event time. Disabled rules
    do not count; filters do not exempt a rule (a prefix or tag filter still deletes what it selects).
    """
    bucket = _bucket(event)
    archive = _archive_bucket(bucket, rule, cfg)
    limit = _int(rule.params.get("max_days")) or DEFAULT_MAX_EXPIRY_DAYS
    if archive:
        limit = max(limit, _int(rule.params.get("archive_min_days")) or DEFAULT_ARCHIVE_MIN_DAYS)
    resource = {"type": "AWS::S3::Bucket", "id": bucket}
    what = f"trail archive bucket {bucket}" if archive else f"bucket {bucket or '?'}"
    if _too_large(event):
        return Assessment(
            True,
            f"lifecycle of {what} set with a request too large to log",
            resource,
            remediable=False,
            own_resource=archive,
        )
    config = _ci(event.request, "LifecycleConfiguration")
    if config is None:
        return Assessment(False, "no lifecycle configuration in the request", resource)
    event_time = _time(event.event_time)
    short: list[str] = []
    for r in as_list(_ci(config, "Rule")):
        if not isinstance(r, Mapping):
            continue
        status = _ci(r, "Status")
        if isinstance(status, str) and status.strip().lower() == "disabled":
            continue
        rid = _ci(r, "ID")
        for kind, days in _rule_expiries(r, event_time):
            if days is None:
                short.append(f"rule {rid or '?'}: {kind} unreadable")
            elif days < limit if archive else days <= limit:
                short.append(f"rule {rid or '?'}: {kind} {days}")
    if not short:
        return Assessment(False, f"no enabled expiration shorter than the limit ({limit} days) on {what}", resource)
    return Assessment(
        True,
        f"short expiry on {what} (limit {limit} days): {'; '.join(short[:5])} (by {_principal(event)})",
        resource,
        remediable=False,
        own_resource=archive,
    )


# --------------------------------------------------------------------------- #
# S3 object calls (data events)
# --------------------------------------------------------------------------- #
@decision("s3_sse_c_write")
def s3_sse_c_write(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """An object written with a customer-provided key (SSE-C): the ransomware pattern (only the key's holder can
    read it back). Judged by the request header, or by S3's own ``additionalEventData.SSEApplied`` = ``SSE_C``.
    """
    header = _ci(event.request, SSE_C_HEADER)
    applied = event.additional.get("SSEApplied")
    if not header and not (isinstance(applied, str) and applied.upper() == "SSE_C"):
        return Assessment(False, "no customer-provided encryption key on the written object")
    bucket = _bucket(event)
    key = event.req("key")
    return Assessment(
        True,
        f"{event.event_name} wrote {bucket or '?'}/{key if isinstance(key, str) else '?'} with a customer-provided "
        f"key (SSE-C {header or applied}) by {_principal(event)}",
        {"type": "AWS::S3::Bucket", "id": bucket},
        remediable=False,
    )


def _deleted_keys(event: CloudTrailEvent) -> int | None:
    """How many keys a DeleteObjects record names, or None when it names none (CloudTrail often omits them)."""
    delete = _ci(event.request, "Delete")
    objs = _ci(delete, "Object") if isinstance(delete, Mapping) else None
    n = len(as_list(objs)) if objs is not None else 0
    resources = event.detail.get("resources")
    n_res = 0
    if isinstance(resources, list):
        n_res = sum(
            1 for r in resources if isinstance(r, Mapping) and r.get("type") == "AWS::S3::Object" and r.get("ARN")
        )
    best = max(n, n_res)
    return best or None


@decision("s3_bulk_delete")
def s3_bulk_delete(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Every DeleteObjects call qualifies; the rule's ``params.threshold`` counts them per principal.

    CloudTrail usually logs DeleteObjects without its key list (up to 1,000 keys would not fit a record). A
    record that names its keys (request body or per-object ``resources``) counts one item per
    ``params.keys_per_item`` keys (100 keys make 10: a call naming that many reaches the threshold alone). A
    record without them is sized from ``additionalEventData.bytesTransferredIn``, the XML body that carried
    the key list: every key takes at least ``<Object><Key></Key></Object>`` (29 bytes) plus its name, so
    ``params.body_bytes_per_key`` (64) bytes per key estimates the count (a caller can pad the body, which
    only makes an alert likelier, never shrink it below its keys). With neither, a call counts as one item.
    """
    if event.event_name != "DeleteObjects":
        return Assessment(False, f"{event.event_name} is not a bulk delete")
    if event.identity_type == "AWSService":
        return Assessment(False, f"deleted by the AWS service {event.invoked_by or 'itself'}")
    n = _deleted_keys(event)
    per_item = max(1, _int(rule.params.get("keys_per_item")) or DEFAULT_KEYS_PER_ITEM)
    size = f"{n} keys" if n is not None else "an unlisted number of keys (up to 1,000)"
    if n is None:
        body = _int(event.additional.get("bytesTransferredIn"))
        per_key = max(1, _int(rule.params.get("body_bytes_per_key")) or DEFAULT_BODY_BYTES_PER_KEY)
        if body is not None and body >= per_key:
            n = body // per_key
            size = f"about {n} keys (estimated from its {body}-byte request body)"
    weight = 1 if n is None else min(MAX_ITEMS_PER_EVENT, max(1, -(-n // per_item)))
    ref = event.event_id or str(event.detail.get("requestID") or "") or event.envelope_id
    bucket = _bucket(event)
    return Assessment(
        True,
        f"DeleteObjects removed {size} from {bucket or '?'} by {_principal(event)}",
        {"type": "AWS::S3::Bucket", "id": bucket},
        {ITEMS_PARAM: [f"call:{ref}#{i}" for i in range(weight)]},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# Exports of instances, images, tables and snapshots
# --------------------------------------------------------------------------- #
@decision("ec2_export")
def ec2_export(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """CreateInstanceExportTask, ExportImage or CreateStoreImageTask: a whole disk image written to an S3 bucket."""
    name = event.event_name
    if name == "CreateInstanceExportTask":
        source = event.req("instanceId")
        bucket = dig(_ci(event.request, "exportToS3"), "s3Bucket") or dig(
            _ci(event.request, "exportToS3Task"), "s3Bucket"
        )
        kind = "AWS::EC2::Instance"
    elif name == "ExportImage":
        source = event.req("imageId")
        bucket = dig(_ci(event.request, "s3ExportLocation"), "s3Bucket")
        kind = "AWS::EC2::Image"
    elif name == "CreateStoreImageTask":
        source = event.req("imageId")
        bucket = _ci(event.request, "bucket")
        kind = "AWS::EC2::Image"
    else:
        return Assessment(False, f"{name} exports nothing")
    src = source if isinstance(source, str) else ""
    return Assessment(
        True,
        f"{name}: {src or '?'} exported to s3://{bucket if isinstance(bucket, str) else '?'} by {_principal(event)}",
        {"type": kind, "id": src},
        remediable=False,
    )


@decision("dynamodb_export_external")
def dynamodb_export_external(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """ExportTableToPointInTime into a bucket owned by an account outside the organization (``s3BucketOwner``).

    ``S3BucketOwner`` is optional and the request does not otherwise say who owns the bucket. Exports that omit
    it are judged internal by default (analytics pipelines export daily to their own buckets); with
    ``params.alert_without_owner`` true they alert as "owner not stated".
    """
    table = _ci(event.request, "tableArn")
    tid = table if isinstance(table, str) else ""
    resource = {"type": "AWS::DynamoDB::Table", "id": tid}
    owner = _ci(event.request, "s3BucketOwner")
    bucket = _ci(event.request, "s3Bucket") or "?"
    if owner is None:
        if rule.params.get("alert_without_owner") is True:
            return Assessment(
                True,
                f"DynamoDB table {tid or '?'} exported to s3://{bucket} (owner not stated) by {_principal(event)}",
                resource,
                remediable=False,
            )
        return Assessment(False, "export states no bucket owner (judged the own account's bucket)", resource)
    ext = external_account(owner, event, cfg)
    if ext is None:
        return Assessment(False, "export to a bucket of this account or the organization", resource)
    return Assessment(
        True,
        f"DynamoDB table {tid or '?'} exported to s3://{bucket} owned by external account {ext} (by {_principal(event)})",
        resource,
        remediable=False,
    )


@decision("rds_export_task")
def rds_export_task(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """RDS StartExportTask: a snapshot or cluster exported to S3 as Parquet."""
    if event.event_name != "StartExportTask":
        return Assessment(False, f"{event.event_name} exports nothing")
    source = event.req("sourceArn")
    src = source if isinstance(source, str) else ""
    return Assessment(
        True,
        f"RDS export of {src or '?'} to s3://{event.req('s3BucketName') or '?'} by {_principal(event)}",
        {"type": "AWS::RDS::DBSnapshot", "id": src},
        remediable=False,
    )


@decision("redshift_snapshot_shared")
def redshift_snapshot_shared(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """AuthorizeSnapshotAccess granting restore to an account outside the organization."""
    snap = _ci(event.request, "snapshotIdentifier") or _ci(event.request, "snapshotArn")
    sid = snap if isinstance(snap, str) else ""
    ext = external_account(_ci(event.request, "accountWithRestoreAccess"), event, cfg)
    resource = {"type": "AWS::Redshift::ClusterSnapshot", "id": sid}
    if ext is None:
        return Assessment(False, "snapshot shared inside the organization", resource)
    return Assessment(
        True,
        f"Redshift snapshot {sid or '?'} shared with external account {ext} by {_principal(event)}",
        resource,
        remediable=False,
    )


def _items(value: Any) -> list[Any]:
    """EC2 query-API lists render as ``{"items": [...]}`` (or ``item``); accept a bare list or object too."""
    if isinstance(value, Mapping):
        for k in ("items", "item"):
            if k in value:
                return as_list(value.get(k))
    return as_list(value)


@decision("fpga_image_shared")
def fpga_image_shared(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """ModifyFpgaImageAttribute adding load permission for everyone (group ``all``) or an external account,
    in the structured (``loadPermission.add``) or flat (``operationType`` + ``userId``/``userGroup``) form.
    """
    targets: list[Any] = []
    for item in _items(dig(_ci(event.request, "loadPermission"), "add")):
        if isinstance(item, Mapping):
            targets += [v for k, v in item.items() if k.lower() in ("group", "userid")]
    op = event.req("operationType")
    if not (isinstance(op, str) and op.lower() == "remove"):
        for key in ("userId", "userIds", "userGroup", "userGroups"):
            targets += _items(_ci(event.request, key))
    image = event.req("fpgaImageId")
    iid = image if isinstance(image, str) else ""
    resource = {"type": "AWS::EC2::FpgaImage", "id": iid}
    public = [t for t in targets if isinstance(t, str) and t.lower() == "all"]
    external = [
        e
        for t in targets
        if not (isinstance(t, str) and t.lower() == "all")
        for e in [external_account(t, event, cfg)]
        if e
    ]
    if not public and not external:
        return Assessment(False, "no load permission added outside the organization", resource)
    who = "everyone (all)" if public else f"external account(s) {', '.join(map(str, external[:5]))}"
    return Assessment(
        True, f"FPGA image {iid or '?'} shared with {who} by {_principal(event)}", resource, remediable=False
    )


# --------------------------------------------------------------------------- #
# RDS: public instances, master password resets
# --------------------------------------------------------------------------- #
def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _db_id(event: CloudTrailEvent) -> tuple[str, str]:
    for key, kind in (("dBInstanceIdentifier", "AWS::RDS::DBInstance"), ("dBClusterIdentifier", "AWS::RDS::DBCluster")):
        v = _ci(event.request, key)
        if isinstance(v, str) and v:
            return v, kind
    return "", "AWS::RDS::DBInstance"


@decision("rds_publicly_accessible")
def rds_publicly_accessible(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A DB instance or cluster created, restored or modified with ``publiclyAccessible`` true.

    Creating or restoring without the flag is public by default in a default VPC with an internet gateway (RDS
    API reference, PubliclyAccessible): for those calls the response's effective value counts too. A Modify
    response only echoes the current state, so there only the request counts.
    """
    db, kind = _db_id(event)
    asked = _ci(event.request, "publiclyAccessible")
    by_default = (
        asked is None
        and event.event_name.startswith(("Create", "Restore"))
        and _truthy(_ci(event.response, "publiclyAccessible"))
    )
    if not _truthy(asked) and not by_default:
        return Assessment(False, "publiclyAccessible not set to true", {"type": kind, "id": db})
    how = "publicly accessible by default (flag omitted, response says public)" if by_default else "publicly accessible"
    return Assessment(
        True,
        f"{event.event_name}: {db or '?'} made {how} by {_principal(event)}",
        {"type": kind, "id": db},
        remediable=False,
    )


@decision("rds_master_password_reset")
def rds_master_password_reset(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """ModifyDBInstance/ModifyDBCluster that sets a new master password, rotates the managed one, or turns
    Secrets Manager management of it on or off: whoever does it can log in as the master user.
    """
    if not event.event_name.startswith("Modify"):
        return Assessment(False, f"{event.event_name} is not a modification")
    db, kind = _db_id(event)
    what = []
    if _ci(event.request, "masterUserPassword") is not None:
        what.append("master password set")
    manage = _ci(event.request, "manageMasterUserPassword")
    if manage is not None:
        what.append(f"manageMasterUserPassword {str(manage).lower()}")
    if _truthy(_ci(event.request, "rotateMasterUserPassword")):
        what.append("managed master password rotated")
    if not what:
        return Assessment(False, "the master password was not changed", {"type": kind, "id": db})
    return Assessment(
        True,
        f"{event.event_name} on {db or '?'}: {', '.join(what)} by {_principal(event)}",
        {"type": kind, "id": db},
        remediable=False,
    )
