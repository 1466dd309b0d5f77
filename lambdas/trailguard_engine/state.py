"""Engine state in the DynamoDB table ``TRAILGUARD_STATE_TABLE`` (key ``id``, TTL ``expiration``).

Two kinds of items share the table:

* Powertools idempotency records, one per (CloudTrail ``eventID``, rule id),
  so an event delivered twice (EventBridge retries, the reconciliation path,
  concurrent deliveries) leads to exactly one action;
* per-resource action counters for the rate limit, one per resource per
  hour, and a one-shot "flapping alert sent" marker per resource per hour.
"""

from __future__ import annotations

from collections.abc import Callable
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


def _run(*, key: dict[str, str], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return work()


class Idempotency:
    """Runs ``work`` at most once per ``key`` (Powertools DynamoDB persistence)."""

    def __init__(self, *, table: str, client: Any) -> None:
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

    def hit(self, resource: str, limit: int) -> RateDecision:
        """Count one action on ``resource``; allowed while the count is within ``limit``."""
        window = int(self.clock() // WINDOW_SECONDS)
        resp = self.client.update_item(
            TableName=self.table,
            Key={"id": {"S": f"rate#{window}#{resource}"}},
            UpdateExpression="ADD #c :one SET #e = if_not_exists(#e, :exp)",
            ExpressionAttributeNames={"#c": "actions", "#e": "expiration"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":exp": {"N": str((window + 2) * WINDOW_SECONDS)}},
            ReturnValues="UPDATED_NEW",
        )
        count = int(resp["Attributes"]["actions"]["N"])
        return RateDecision(count <= limit, count, limit, window)

    def first_flap(self, resource: str, window: int) -> bool:
        """True exactly once per resource and window: whoever wins sends the flapping alert."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "id": {"S": f"flap#{window}#{resource}"},
                    "expiration": {"N": str((window + 2) * WINDOW_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(id)",
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True
