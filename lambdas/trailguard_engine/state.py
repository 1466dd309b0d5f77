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
  "alert budget exhausted" marker per account per hour.
"""

from __future__ import annotations

import hashlib
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
