"""Credential reads that matter in bursts: secrets, decrypted parameters, Windows passwords, user data.

Each decision says whether one event *qualifies* and names the resources it read in
``params["threshold_items"]``; the rule's ``params.threshold`` (:mod:`trailguard_engine.window`) decides
when a principal's qualifying reads add up to an alert. One read is normal; many distinct ones in minutes
are the credential-harvesting step of an intrusion (Stratus Red Team secretsmanager-retrieve-secrets,
ssm-retrieve-securestring-parameters, ec2-get-password-data, ec2-download-user-data).
"""

from __future__ import annotations

import json
from typing import Any

from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, as_list
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import ITEMS_PARAM, MAX_ITEMS_PER_EVENT

#: BatchGetSecretValue returns at most this many secrets per call (its MaxResults ceiling and the
#: SecretIdList limit): a filter-based batch, whose record does not say how many came back, counts as this.
BATCH_PAGE_MAX = 20


def _qualifies(reason: str, items: list[str], **extra: Any) -> Assessment:
    kept = sorted({i for i in items if i})[:MAX_ITEMS_PER_EVENT]
    return Assessment(True, reason, {}, {ITEMS_PARAM: kept, **extra}, remediable=False)


def _strings(value: Any) -> list[str]:
    return [v for v in as_list(value) if isinstance(v, str) and v]


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _aws_itself(event: CloudTrailEvent) -> bool:
    """An AWS service reading with its own identity (not a role session): never a person's burst."""
    return event.identity_type == "AWSService"


def _int_param(rule: Rule, key: str, default: int) -> int:
    v = rule.params.get(key, default)
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else default


@decision("secrets_bulk_read")
def secrets_bulk_read(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """GetSecretValue (one secret) or BatchGetSecretValue (each secret id; a filter batch counts a full page)."""
    if _aws_itself(event):
        return Assessment(False, f"read by the AWS service {event.invoked_by or 'itself'}")
    name = event.event_name
    if name == "GetSecretValue":
        secret = event.req("secretId")
        ids = _strings(secret) or [f"unnamed:{event.event_id}"]
        return _qualifies(f"secret value read: {ids[0][:200]}", ids)
    if name == "BatchGetSecretValue":
        ids = _strings(event.req("secretIdList"))
        if ids:
            return _qualifies(f"batch read of {len(ids)} secret values", ids)
        filters = event.req("filters")
        page = event.req("maxResults")
        n = (
            page
            if isinstance(page, int) and not isinstance(page, bool) and 0 < page < BATCH_PAGE_MAX
            else BATCH_PAGE_MAX
        )
        key = json.dumps(filters, sort_keys=True, default=str)[:500]
        return _qualifies(
            f"batch read of up to {n} secret values selected by filters {key[:200]}",
            [f"filters:{key}#{i}" for i in range(n)],
        )
    return Assessment(False, f"{name} does not return secret values")


@decision("ssm_decrypted_read")
def ssm_decrypted_read(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """GetParameter(s)/GetParametersByPath/GetParameterHistory with ``withDecryption`` true: values in clear.

    A by-path read does not say how many parameters came back: a recursive read of the root ``/`` counts as
    the whole threshold (everything), any other path as ``params.path_weight`` parameters.
    """
    if not _true(event.req("withDecryption")):
        return Assessment(False, "read without decryption: SecureString values stay encrypted")
    if _aws_itself(event):
        return Assessment(False, f"read by the AWS service {event.invoked_by or 'itself'}")
    name = event.event_name
    if name in ("GetParameter", "GetParameterHistory"):
        names = _strings(event.req("name")) or [f"unnamed:{event.event_id}"]
        what = "every version of parameter" if name == "GetParameterHistory" else "parameter"
        return _qualifies(f"decrypted read of {what} {names[0][:200]}", names)
    if name == "GetParameters":
        names = _strings(event.req("names")) or [f"unnamed:{event.event_id}"]
        return _qualifies(f"decrypted read of {len(names)} parameters", names)
    if name == "GetParametersByPath":
        path = event.req("path")
        path = path if isinstance(path, str) and path else "/"
        recursive = _true(event.req("recursive"))
        threshold = rule.params.get("threshold") or {}
        everything = int(threshold.get("count", MAX_ITEMS_PER_EVENT)) if isinstance(threshold, dict) else 1
        n = everything if recursive and path.strip() == "/" else _int_param(rule, "path_weight", 3)
        n = max(1, min(n, MAX_ITEMS_PER_EVENT))
        scope = "recursive " if recursive else ""
        return _qualifies(
            f"decrypted {scope}read of every parameter under {path[:200]}", [f"path:{path}#{i}" for i in range(n)]
        )
    return Assessment(False, f"{name} does not return parameter values")


@decision("ec2_password_data_read")
def ec2_password_data_read(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """GetPasswordData, failed calls included (the technique is mostly refused attempts on many instances)."""
    if _aws_itself(event):
        return Assessment(False, f"read by the AWS service {event.invoked_by or 'itself'}")
    instances = _strings(event.req("instanceId")) or [f"unnamed:{event.event_id}"]
    failed = f" (failed: {event.error_code or 'error'})" if event.failed else ""
    return _qualifies(f"Windows password data requested for {instances[0][:64]}{failed}", instances)


@decision("ec2_userdata_read")
def ec2_userdata_read(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """DescribeInstanceAttribute for ``userData`` (user data often holds bootstrap secrets), failed calls too."""
    attribute = event.req("attribute")
    if not (isinstance(attribute, str) and attribute.strip().lower() == "userdata"):
        return Assessment(False, f"instance attribute {str(attribute)[:64]!r} is not user data")
    if _aws_itself(event):
        return Assessment(False, f"read by the AWS service {event.invoked_by or 'itself'}")
    instances = _strings(event.req("instanceId")) or [f"unnamed:{event.event_id}"]
    failed = f" (failed: {event.error_code or 'error'})" if event.failed else ""
    return _qualifies(f"user data read for {instances[0][:64]}{failed}", instances)
