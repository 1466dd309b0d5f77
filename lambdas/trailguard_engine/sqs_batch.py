"""SQS partial batch responses without Powertools' batch utility (issue 19: about 30 ms of cold start).

Lambda's SQS event source with ``ReportBatchItemFailures`` deletes every message of the batch except
the ones listed in ``{"batchItemFailures": [{"itemIdentifier": <messageId>}]}``. :func:`process_batch`
runs one handler per record in order and lists the records whose handler raised, with the same
semantics the Powertools ``BatchProcessor`` (``raise_on_entire_batch_failure=False``) had: a failing
record never stops the others, and a batch that failed entirely is reported record by record, not raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_LOG = logging.getLogger("trailguard.batch")


@dataclass(frozen=True, slots=True)
class SqsMessage:
    """The fields of an SQS record the trailguard functions read."""

    message_id: str
    body: str
    receive_count: int = 1

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SqsMessage:
        attrs = record.get("attributes")
        raw = attrs.get("ApproximateReceiveCount") if isinstance(attrs, Mapping) else None
        try:
            count = int(raw) if raw is not None else 1
        except (TypeError, ValueError):
            count = 1
        body = record.get("body")
        return cls(str(record.get("messageId") or ""), body if isinstance(body, str) else "", count)


def process_batch(event: Any, handle: Callable[[SqsMessage], object], *, log: Any = None) -> dict[str, Any]:
    """Run ``handle`` on each record of the SQS ``event``; ``{"batchItemFailures": [...]}`` of those that raised.

    An event without a ``Records`` list is a wiring error and raises ``ValueError`` (so does Powertools).
    """
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise ValueError("not an SQS event: no Records list")
    failures: list[dict[str, str]] = []
    logger = log if log is not None else _LOG
    for record in records:
        message = SqsMessage.from_record(record if isinstance(record, Mapping) else {})
        try:
            handle(message)
        except Exception:
            logger.exception("message %s failed; it stays on the queue for a retry", message.message_id)
            failures.append({"itemIdentifier": message.message_id})
    return {"batchItemFailures": failures}
