"""Engine state in the DynamoDB table ``TRAILGUARD_STATE_TABLE`` (key ``id``, TTL ``expiration``).

Several kinds of items share the table:

* Powertools idempotency records, one per (account, CloudTrail ``eventID``, rule id, digest of
  the fields that matter), so an event delivered twice (EventBridge retries, the reconciliation
  path, concurrent deliveries) leads to exactly one action, and a forged copy that reuses a real
  ``eventID`` with other content cannot pre-claim the real event;
* one claim per (account, ``eventID``, rule) holding the first digest seen: a second, different
  digest for the same ``eventID`` is a forgery (or a corrupted copy) and is alarmed;
* per-resource action counters for the rate limit, one per resource per hour (only actions
  that changed something count), a one-shot "flapping alert sent" marker per resource per hour
  and a one-shot "failure alerted" marker per event and rule (Lambda's retries alert once);
* per-account alert counters, one per source account per hour, and a one-shot
  "alert budget exhausted" marker per account per hour;
* the log-file ledger (:class:`LogFileLedger`): ``verified#<bucket>/<key>`` holds the SHA-256 of a
  log file that a signed, chained CloudTrail digest listed, written only by the digest verifier
  (its role may write no other item; the engine and reconcile roles are denied these items), and
  ``pending#<bucket>/<key>`` marks a file whose remediable findings were handed over alert-only
  before its digest arrived, so the verifier can ask for a rescan; ``digest-accounts`` and
  ``digest-heads#<account>`` remember the newest digest seen per account and region for the hourly
  missing-digest check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError

from trailguard_engine.remediations import error_code

#: How long a processed event is remembered. CloudTrail log files (the
#: reconciliation path) arrive within minutes; two days leaves a wide margin.
IDEMPOTENCY_SECONDS = 2 * 24 * 3600
#: Shared by every trailguard function so both delivery paths dedupe together.
KEY_PREFIX = "trailguard"
WINDOW_SECONDS = 3600


#: The CloudTrail fields that say what happened, where and when. Two records with the same
#: ``eventID`` but a different value for any of these are not the same event.
DIGEST_FIELDS = ("recipientAccountId", "awsRegion", "eventSource", "eventName", "requestParameters", "eventTime")


def event_digest(detail: Mapping[str, Any], account: str) -> str:
    """SHA-256 over the fields that matter (canonical JSON), plus the envelope account."""
    doc = {"account": account, **{k: detail.get(k) for k in DIGEST_FIELDS}}
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _run(*, key: dict[str, str], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return work()


class Idempotency:
    """Runs ``work`` at most once per ``key`` (Powertools DynamoDB persistence)."""

    def __init__(self, *, table: str, client: Any, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.layer = DynamoDBPersistenceLayer(
            table_name=table, key_attr="id", expiry_attr="expiration", boto3_client=client
        )
        self.config = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_SECONDS, raise_on_no_idempotency_key=True)
        self._once = idempotent_function(
            _run, data_keyword_argument="key", persistence_store=self.layer, config=self.config, key_prefix=KEY_PREFIX
        )

    def register_context(self, context: Any) -> None:
        """Lets Powertools expire an in-progress record if the function times out."""
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            self.config.register_lambda_context(context)

    def once(self, key: dict[str, str], work: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """``(result, ran)``: ``ran`` is False when a stored result of an earlier run was returned.

        An exception in ``work`` deletes the in-progress record (so a retry can
        act) and propagates.
        """
        ran: list[bool] = []

        def tracked() -> dict[str, Any]:
            ran.append(True)
            return work()

        result = self._once(key=key, work=tracked)
        return dict(result), bool(ran)

    def seen(self, key: dict[str, str]) -> bool:
        """True when ``key`` has a live record (handled, or being handled): one consistent GetItem.

        Used by the reconciliation path to tell events EventBridge delivered from missed ones.
        """
        self.layer.configure(self.config, key_prefix=KEY_PREFIX)
        try:
            record = self.layer.get_record(data=key)
        except IdempotencyItemNotFoundError:
            return False
        return record is not None and not record.is_expired

    def claim_event_id(self, claim: str, digest: str) -> str | None:
        """Record ``digest`` as the content of ``claim`` (account, eventID, rule); return the other
        digest when an earlier, different content was recorded for it (a forged copy), else None."""
        client, table = self.layer.client, self.layer.table_name
        try:
            client.put_item(
                TableName=table,
                Item={
                    "id": {"S": f"claim#{claim}"},
                    "digest": {"S": digest},
                    "expiration": {"N": str(int(self._now()) + IDEMPOTENCY_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(id) OR #d = :d",
                ExpressionAttributeNames={"#d": "digest"},
                ExpressionAttributeValues={":d": {"S": digest}},
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            item = client.get_item(TableName=table, Key={"id": {"S": f"claim#{claim}"}}, ConsistentRead=True)
            return str(item.get("Item", {}).get("digest", {}).get("S") or "unknown")
        return None

    def _now(self) -> float:
        return self.clock()


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    count: int
    limit: int
    window: int


class RateLimiter:
    """Fixed hourly window counter per resource, atomic in DynamoDB.

    ``clock`` (seconds since the epoch) is required: the window a hit lands in depends on the time of
    day, so callers pass the one clock they own (the handler's seam) rather than reading the wall clock here.
    """

    def __init__(self, *, table: str, client: Any, clock: Callable[[], float]) -> None:
        self.table = table
        self.client = client
        self.clock = clock

    def _window(self) -> int:
        return int(self.clock() // WINDOW_SECONDS)

    def _add(self, item_id: str, delta: int, window: int) -> int:
        resp = self.client.update_item(
            TableName=self.table,
            Key={"id": {"S": item_id}},
            UpdateExpression="ADD #c :n SET #e = if_not_exists(#e, :exp)",
            ExpressionAttributeNames={"#c": "actions", "#e": "expiration"},
            ExpressionAttributeValues={":n": {"N": str(delta)}, ":exp": {"N": str((window + 2) * WINDOW_SECONDS)}},
            ReturnValues="UPDATED_NEW",
        )
        return int(resp["Attributes"]["actions"]["N"])

    def _once(self, item_id: str, expiration: int) -> bool:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={"id": {"S": item_id}, "expiration": {"N": str(expiration)}},
                ConditionExpression="attribute_not_exists(id)",
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def hit(self, resource: str, limit: int) -> RateDecision:
        """Claim one action on ``resource``; allowed while the count is within ``limit``.

        A claim whose action then changed nothing (failed, already safe, skipped) is given back
        with :meth:`release`: only actions that changed something use the budget.
        """
        window = self._window()
        count = self._add(f"rate#{window}#{resource}", 1, window)
        return RateDecision(count <= limit, count, limit, window)

    def release(self, resource: str, window: int) -> None:
        """Give back a claim made by :meth:`hit` in ``window`` (the action changed nothing)."""
        self._add(f"rate#{window}#{resource}", -1, window)

    def first_flap(self, resource: str, window: int) -> bool:
        """True exactly once per resource and window: whoever wins sends the flapping alert."""
        return self._once(f"flap#{window}#{resource}", (window + 2) * WINDOW_SECONDS)

    def first_failure(self, key: str) -> bool:
        """True exactly once per failing (event, rule): Lambda's retries of one event alert once."""
        return self._once(f"fail#{key}", int(self.clock()) + IDEMPOTENCY_SECONDS)

    def alert(self, account: str, limit: int) -> RateDecision:
        """Count one alert for source ``account`` this hour; allowed while within ``limit``."""
        window = self._window()
        count = self._add(f"alerts#{window}#{account}", 1, window)
        return RateDecision(count <= limit, count, limit, window)

    def first_over_budget(self, account: str, window: int) -> bool:
        """True exactly once per account and window: one "alert budget exhausted" notice."""
        return self._once(f"alertbudget#{window}#{account}", (window + 2) * WINDOW_SECONDS)


# --------------------------------------------------------------------------- #
# The log-file ledger: which log files a valid digest vouched for
# --------------------------------------------------------------------------- #
VERIFIED_PREFIX = "verified#"
PENDING_PREFIX = "pending#"
DIGEST_ACCOUNTS_ID = "digest-accounts"
DIGEST_HEADS_PREFIX = "digest-heads#"
SUSPECTS_PREFIX = "suspects#"
#: A verified record outlives every rescan it can serve (digests arrive within about two hours).
VERIFIED_SECONDS = 2 * 24 * 3600
#: A pending mark waits for the file's digest (about an hour, more when delivery lags).
PENDING_SECONDS = 24 * 3600
#: How long the newest digest per account and region is remembered without a newer one.
DIGEST_HEAD_SECONDS = 90 * 24 * 3600


def ledger_id(prefix: str, bucket: str, key: str) -> str:
    return f"{prefix}{bucket}/{key}"


@dataclass(frozen=True, slots=True)
class VerifiedFile:
    """A log file a valid digest listed: the SHA-256 it listed, and which digest said so."""

    bucket: str
    key: str
    sha256: str
    digest_key: str

    def matches(self, sha256: str) -> bool:
        """True when ``sha256`` (hex, any case) is the hash the digest vouched for."""
        return hmac.compare_digest(self.sha256.lower().encode(), str(sha256).lower().encode())


class LogFileLedger:
    """``verified#``, ``pending#`` and digest-head items in the state table (see the module docstring)."""

    def __init__(self, *, table: str, client: Any, clock: Callable[[], float]) -> None:
        self.table = table
        self.client = client
        self.clock = clock

    def _get(self, item_id: str) -> dict[str, Any] | None:
        resp = self.client.get_item(TableName=self.table, Key={"id": {"S": item_id}}, ConsistentRead=True)
        item = resp.get("Item")
        if not item:
            return None
        exp = item.get("expiration", {}).get("N")
        if exp is not None and float(exp) <= self.clock():
            return None  # expired but not yet removed by DynamoDB's TTL sweep
        return dict(item)

    # ---- verified files (written by the digest verifier only) -------------- #
    def verified(self, bucket: str, key: str) -> VerifiedFile | None:
        item = self._get(ledger_id(VERIFIED_PREFIX, bucket, key))
        if item is None or "sha256" not in item:
            return None
        return VerifiedFile(bucket, key, str(item["sha256"]["S"]), str(item.get("digest", {}).get("S", "")))

    def record_verified(self, bucket: str, key: str, sha256: str, digest_key: str) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                "id": {"S": ledger_id(VERIFIED_PREFIX, bucket, key)},
                "sha256": {"S": sha256.lower()},
                "digest": {"S": digest_key},
                "expiration": {"N": str(int(self.clock()) + VERIFIED_SECONDS)},
            },
        )

    # ---- files waiting for their digest (written by reconcile) ------------ #
    def mark_pending(self, bucket: str, key: str, sha256: str) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                "id": {"S": ledger_id(PENDING_PREFIX, bucket, key)},
                "sha256": {"S": sha256.lower()},
                "expiration": {"N": str(int(self.clock()) + PENDING_SECONDS)},
            },
        )

    def pending(self, bucket: str, key: str) -> str | None:
        """The SHA-256 reconcile read for a file waiting for its digest, or None."""
        item = self._get(ledger_id(PENDING_PREFIX, bucket, key))
        return str(item["sha256"]["S"]) if item and "sha256" in item else None

    def clear_pending(self, bucket: str, key: str) -> None:
        self.client.delete_item(TableName=self.table, Key={"id": {"S": ledger_id(PENDING_PREFIX, bucket, key)}})

    # ---- newest digest per account and region (missing-digest check) ------ #
    def record_digest_head(self, account: str, region: str, end_time: str) -> None:
        """Remember ``end_time`` (ISO 8601 UTC) as the newest digest of ``account``/``region`` unless a newer one is."""
        exp = {"N": str(int(self.clock()) + DIGEST_HEAD_SECONDS)}
        self.client.update_item(
            TableName=self.table,
            Key={"id": {"S": DIGEST_ACCOUNTS_ID}},
            UpdateExpression="ADD #a :a SET #e = :exp",
            ExpressionAttributeNames={"#a": "accounts", "#e": "expiration"},
            ExpressionAttributeValues={":a": {"SS": [account]}, ":exp": exp},
        )
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": DIGEST_HEADS_PREFIX + account}},
                UpdateExpression="SET #r = :t, #e = :exp",
                ConditionExpression="attribute_not_exists(#r) OR #r < :t",
                ExpressionAttributeNames={"#r": f"region:{region}", "#e": "expiration"},
                ExpressionAttributeValues={":t": {"S": end_time}, ":exp": exp},
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise  # a newer digest is already recorded: nothing to do

    def digest_heads(self) -> dict[tuple[str, str], str]:
        """``{(account, region): end time of the newest digest seen}``."""
        accounts = self._get(DIGEST_ACCOUNTS_ID)
        out: dict[tuple[str, str], str] = {}
        for account in sorted((accounts or {}).get("accounts", {}).get("SS", [])):
            item = self._get(DIGEST_HEADS_PREFIX + account) or {}
            for name, value in item.items():
                if name.startswith("region:") and "S" in value:
                    out[(account, name.removeprefix("region:"))] = str(value["S"])
        return out

    def first_missing_alert(self, account: str, region: str, last_end: str) -> bool:
        """True exactly once per (account, region, newest digest): one alert per gap, not one per hour."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "id": {"S": f"digest-missing#{account}/{region}#{last_end}"},
                    "expiration": {"N": str(int(self.clock()) + VERIFIED_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(id)",
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # ---- suspects: log files no digest listed yet (judged an hour later) -- #
    def add_suspects(self, hour: int, bucket: str, keys: list[str]) -> None:
        self.client.update_item(
            TableName=self.table,
            Key={"id": {"S": f"{SUSPECTS_PREFIX}{hour}"}},
            UpdateExpression="ADD #f :f SET #e = :exp",
            ExpressionAttributeNames={"#f": "files", "#e": "expiration"},
            ExpressionAttributeValues={
                ":f": {"SS": sorted({f"{bucket}/{k}" for k in keys})},
                ":exp": {"N": str(int(self.clock()) + VERIFIED_SECONDS)},
            },
        )

    def suspects(self, hour: int) -> list[tuple[str, str]]:
        """``(bucket, key)`` of every suspect recorded in ``hour`` (hours since the epoch)."""
        item = self._get(f"{SUSPECTS_PREFIX}{hour}") or {}
        out = []
        for entry in sorted(item.get("files", {}).get("SS", [])):
            bucket, _, key = entry.partition("/")
            out.append((bucket, key))
        return out

    def clear_suspects(self, hour: int) -> None:
        self.client.delete_item(TableName=self.table, Key={"id": {"S": f"{SUSPECTS_PREFIX}{hour}"}})
