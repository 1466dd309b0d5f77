"""Engine state in the DynamoDB table ``TRAILGUARD_STATE_TABLE`` (key ``id``, TTL ``expiration``).

Several kinds of items share the table:

* idempotency records (:class:`Idempotency`; the format Powertools' utility wrote), one per (account, CloudTrail ``eventID``, rule id, digest of
  the fields that matter), so an event delivered twice (EventBridge retries, the reconciliation
  path, concurrent deliveries) leads to exactly one action, and a forged copy that reuses a real
  ``eventID`` with other content cannot pre-claim the real event;
* one claim per (account, ``eventID``, rule) holding the first digest seen: a second, different
  digest for the same ``eventID`` is a forgery (or a corrupted copy) and is alarmed;
* one rate item per resource (``rate#<resource>``) holding the claims of about the last three hours, each
  with its time and the principal and caller class of the change it undid, for the sliding-window rate
  limit (only actions that changed something count; see :class:`RateLimiter`); a "flapping alert sent"
  marker per resource per hour that remembers the principals it named; a one-shot "failure alerted"
  marker per event and rule (Lambda's retries alert once); a one-shot "IaC drift alerted" marker per
  (account, pipeline) and hour, keeping the highest severity sent;
* per-account alert counters, one per source account per hour, and a one-shot
  "alert budget exhausted" marker per account per hour;
* windowed-threshold counters (:mod:`trailguard_engine.window`): ``window#<rule>#<account>#<principal digest>``,
  string sets of item digests per quarter-window bucket of event time and the last firing, TTL'd;
* first-seen terms (:mod:`trailguard_engine.window`): ``seen#<rule>#<account>#<digest of principal and term>``,
  the last sighting and the event that found the term new, TTL'd past the rule's history, and one
  ``seen#<rule>#start`` per first-seen rule (the start of its learning period, kept without expiry);
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
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from trailguard_engine.remediations import error_code

#: How long a processed event is remembered. CloudTrail log files (the
#: reconciliation path) arrive within minutes; two days leaves a wide margin.
IDEMPOTENCY_SECONDS = 2 * 24 * 3600
#: Shared by every trailguard function so both delivery paths dedupe together.
KEY_PREFIX = "trailguard"
#: The fixed hour of the one-shot markers (flapping, IaC drift, alert budget) and of the alert budget.
WINDOW_SECONDS = 3600
#: The per-resource action limit counts the claims of the last hour, whatever the time of day.
SLIDING_WINDOW_SECONDS = 3600
#: A rate item's claims are kept in one set per fixed hour (``h<hour>``); each claim removes the sets of
#: 3 to this many hours ago (none of their stamps can be in a window any more). A set survives only a gap of
#: more than this many hours without claims that DynamoDB's TTL sweep (the item expires two hours after its
#: newest claim) has not caught up with yet; it holds at most the few kept claims of its hour, so the item stays
#: small. Each pruned hour is one REMOVE path in the claim's UpdateExpression: 72 made moto's expression
#: validator (quadratic in the paths) the slowest part of the engine tests, for no gain.
PRUNE_HOURS = 8
BUCKET_PREFIX = "h"
#: A rate item outlives the newest claim by two hours, then expires (TTL).
RATE_ITEM_SECONDS = 2 * 3600
#: Principal ARNs recorded with a claim are cut to this length (IAM ARNs are shorter), bounding item size.
PRINCIPAL_MAX = 512


#: The CloudTrail fields that say what happened, where and when. Two records with the same
#: ``eventID`` but a different value for any of these are not the same event.
DIGEST_FIELDS = ("recipientAccountId", "awsRegion", "eventSource", "eventName", "requestParameters", "eventTime")


def event_digest(detail: Mapping[str, Any], account: str) -> str:
    """SHA-256 over the fields that matter (canonical JSON), plus the envelope account."""
    doc = {"account": account, **{k: detail.get(k) for k in DIGEST_FIELDS}}
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


#: Idempotency record statuses (the values Powertools wrote, so records of an earlier version still count).
STATUS_IN_PROGRESS = "INPROGRESS"
STATUS_COMPLETED = "COMPLETED"


class IdempotencyInProgress(RuntimeError):
    """Another delivery of the same event is being handled right now: Lambda retries this one later."""


def record_id(key: Mapping[str, str]) -> str:
    """The state-table id of ``key``'s idempotency record (the id Powertools gave it: same records across upgrades)."""
    canonical = json.dumps(dict(key), sort_keys=True)
    return f"{KEY_PREFIX}#{hashlib.md5(canonical.encode(), usedforsecurity=False).hexdigest()}"


@dataclass(frozen=True, slots=True)
class Begun:
    """What :meth:`Idempotency.begin` found: ``stored`` is the result of an earlier run (a duplicate), else None;
    ``forged`` the digest an earlier, different content recorded for the claimed (account, eventID, rule)."""

    stored: dict[str, Any] | None
    forged: str | None = None


class Idempotency:
    """Runs ``work`` at most once per ``key``, with conditional writes on the state table.

    A run is **one** write before the work and one after (Powertools' idempotency utility made the same two, plus
    one more for the forged-copy claim, and cost about 30 ms of cold start):

    * :meth:`begin` puts the record ``INPROGRESS`` unless a live one exists, in the same ``TransactWriteItems`` as
      the forged-copy claim (``claim#<account>#<eventID>#<rule>`` holding the first digest seen), so both
      conditions are decided together;
    * after the work, one ``UpdateItem`` marks it ``COMPLETED`` with the result (returned to later duplicates);
      an exception in the work deletes the record instead (so Lambda's retry can act) and propagates.

    An ``INPROGRESS`` record whose in-progress deadline (the invocation's remaining time, when a Lambda context
    was registered) has passed belongs to a run that died (timeout, crash): the next delivery takes it over. A
    live one raises :class:`IdempotencyInProgress` (Lambda retries the event later). Concurrent deliveries meet
    in DynamoDB's condition check: exactly one begins.
    """

    def __init__(self, *, table: str, client: Any, clock: Callable[[], float]) -> None:
        self.table = table
        self.client = client
        self.clock = clock
        self._context: Any = None

    def register_context(self, context: Any) -> None:
        """Lets a run that times out expire its ``INPROGRESS`` record at the end of the invocation."""
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            self._context = context

    # ------------------------------------------------------------------ #
    def _item(self, key: Mapping[str, str]) -> dict[str, Any]:
        now = self.clock()
        item: dict[str, Any] = {
            "id": {"S": record_id(key)},
            "expiration": {"N": str(int(now) + IDEMPOTENCY_SECONDS)},
            "status": {"S": STATUS_IN_PROGRESS},
        }
        if self._context is not None:
            remaining = int(self._context.get_remaining_time_in_millis())
            item["in_progress_expiration"] = {"N": str(int(now * 1000) + remaining)}
        return item

    def _put_args(self, key: Mapping[str, str]) -> dict[str, Any]:
        now = self.clock()
        return {
            "TableName": self.table,
            "Item": self._item(key),
            "ConditionExpression": "attribute_not_exists(#id) OR #exp < :now OR "
            "(#st = :inprogress AND attribute_exists(#ipe) AND #ipe < :now_ms)",
            "ExpressionAttributeNames": {
                "#id": "id",
                "#exp": "expiration",
                "#st": "status",
                "#ipe": "in_progress_expiration",
            },
            "ExpressionAttributeValues": {
                ":now": {"N": str(int(now))},
                ":now_ms": {"N": str(int(now * 1000))},
                ":inprogress": {"S": STATUS_IN_PROGRESS},
            },
        }

    def _claim_args(self, claim: str, digest: str) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "Item": {
                "id": {"S": f"claim#{claim}"},
                "digest": {"S": digest},
                "expiration": {"N": str(int(self.clock()) + IDEMPOTENCY_SECONDS)},
            },
            "ConditionExpression": "attribute_not_exists(id) OR #d = :d",
            "ExpressionAttributeNames": {"#d": "digest"},
            "ExpressionAttributeValues": {":d": {"S": digest}},
        }

    def _get(self, item_id: str) -> dict[str, Any]:
        resp = self.client.get_item(TableName=self.table, Key={"id": {"S": item_id}}, ConsistentRead=True)
        return dict(resp.get("Item") or {})

    def _existing(self, key: Mapping[str, str]) -> Begun | None:
        """The live record of ``key`` another run wrote: its stored result, or :class:`IdempotencyInProgress`."""
        item = self._get(record_id(key))
        if not item:
            return None  # gone since the condition failed (that run failed and deleted it): try again
        if item.get("status", {}).get("S") == STATUS_COMPLETED:
            data = item.get("data", {}).get("S")
            stored = json.loads(data) if isinstance(data, str) else {}
            return Begun(dict(stored) if isinstance(stored, dict) else {})
        raise IdempotencyInProgress(f"event {key.get('eventID', '')} for {key.get('rule', '')} is being handled")

    def _put(self, key: Mapping[str, str], attempts: int = 3) -> Begun | None:
        """Put the record ``INPROGRESS``: None when taken, else what a live record holds."""
        for _ in range(attempts):
            try:
                self.client.put_item(**self._put_args(key))
            except Exception as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                existing = self._existing(key)
                if existing is not None:
                    return existing
                continue  # the other run failed and deleted its record since: try again
            return None
        raise IdempotencyInProgress(f"event {key.get('eventID', '')}: its record keeps changing; retry later")

    def begin(self, key: Mapping[str, str], claim: tuple[str, str] | None = None) -> Begun:
        """Take ``key`` (and record ``claim`` = (account#eventID#rule, digest)) in one conditional transaction."""
        if claim is None:
            return self._put(key) or Begun(None)
        try:
            self.client.transact_write_items(
                TransactItems=[{"Put": self._claim_args(*claim)}, {"Put": self._put_args(key)}]
            )
        except Exception as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = [
                str(r.get("Code") or "None") for r in getattr(exc, "response", {}).get("CancellationReasons", [])
            ]
            if len(reasons) != 2 or not set(reasons) <= {"None", "ConditionalCheckFailed"}:
                raise  # a conflict with another transaction, a throttle: Lambda retries the event
            forged = None
            if reasons[0] == "ConditionalCheckFailed":
                forged = str(self._get(f"claim#{claim[0]}").get("digest", {}).get("S") or "unknown")
            existing = self._existing(key) if reasons[1] == "ConditionalCheckFailed" else None
            if existing is None:
                existing = self._put(key)
            return Begun(existing.stored if existing else None, forged)
        return Begun(None)

    def complete(self, key: Mapping[str, str], result: Mapping[str, Any]) -> None:
        self.client.update_item(
            TableName=self.table,
            Key={"id": {"S": record_id(key)}},
            UpdateExpression="SET #st = :done, #data = :data, #exp = :exp REMOVE #ipe",
            ExpressionAttributeNames={
                "#st": "status",
                "#data": "data",
                "#exp": "expiration",
                "#ipe": "in_progress_expiration",
            },
            ExpressionAttributeValues={
                ":done": {"S": STATUS_COMPLETED},
                ":data": {"S": json.dumps(dict(result), sort_keys=True, default=str)},
                ":exp": {"N": str(int(self.clock()) + IDEMPOTENCY_SECONDS)},
            },
        )

    def abandon(self, key: Mapping[str, str]) -> None:
        """Delete ``key``'s record after a failed run, so that a retry can act."""
        self.client.delete_item(TableName=self.table, Key={"id": {"S": record_id(key)}})

    def once(
        self,
        key: dict[str, str],
        work: Callable[[], dict[str, Any]],
        *,
        claim: tuple[str, str] | None = None,
        on_forged: Callable[[str], None] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """``(result, ran)``: ``ran`` is False when a stored result of an earlier run was returned.

        ``claim`` (``account#eventID#rule``, digest) is recorded in the same write; ``on_forged`` is called with
        the earlier digest when it differs (before the work, which runs anyway: both copies are judged).
        An exception in ``work`` deletes the in-progress record (so a retry can act) and propagates.
        """
        begun = self.begin(key, claim)
        if begun.forged is not None and on_forged is not None:
            on_forged(begun.forged)
        if begun.stored is not None:
            return dict(begun.stored), False
        try:
            result = work()
        except BaseException:
            self.abandon(key)
            raise
        self.complete(key, result)
        return dict(result), True

    def seen(self, key: dict[str, str]) -> bool:
        """True when ``key`` has a live record (handled, or being handled): one consistent GetItem.

        Used by the reconciliation path to tell events EventBridge delivered from missed ones.
        """
        item = self._get(record_id(key))
        exp = item.get("expiration", {}).get("N")
        return bool(item) and (exp is None or float(exp) >= self.clock())

    def claim_event_id(self, claim: str, digest: str) -> str | None:
        """Record ``digest`` as the content of ``claim`` (account, eventID, rule); return the other
        digest when an earlier, different content was recorded for it (a forged copy), else None."""
        try:
            self.client.put_item(**self._claim_args(claim, digest))
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return str(self._get(f"claim#{claim}").get("digest", {}).get("S") or "unknown")
        return None

    def _now(self) -> float:
        return self.clock()


@dataclass(frozen=True, slots=True)
class Stamp:
    """One claimed action on a resource, as its rate item records it: when, and whose change it undid.

    ``caller`` and ``principal`` are the caller class and principal ARN of the event whose risky change
    the action undoes, so that a flapping alert can say who keeps reverting the remediation.
    """

    at: float
    token: str
    caller: str
    principal: str

    def encode(self) -> str:
        return "|".join((repr(self.at), self.token, self.caller, self.principal))

    @classmethod
    def decode(cls, raw: str) -> Stamp | None:
        at, _, rest = raw.partition("|")
        token, _, rest = rest.partition("|")
        caller, _, principal = rest.partition("|")
        try:
            return cls(float(at), token, caller, principal)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    count: int
    limit: int
    #: The fixed hour (hours since the epoch) of this claim: the one-shot markers are per hour.
    window: int
    #: This claim as stored, for :meth:`RateLimiter.release`; "" for alert-budget decisions.
    stamp: str = ""
    #: Every claim on the resource within the sliding window, this one included, oldest first.
    recent: tuple[Stamp, ...] = ()

    @property
    def others(self) -> tuple[Stamp, ...]:
        """The claims in the window other than this one."""
        return tuple(s for s in self.recent if s.encode() != self.stamp)

    def resumes_at(self) -> float:
        """For a refused claim: the time (seconds since the epoch) from which a new claim can be allowed.

        The refused claim itself is given back, so a new one is allowed once only ``limit - 1`` of the
        others are younger than the window.
        """
        times = sorted(s.at for s in self.others)
        if len(times) < self.limit:
            return 0.0
        return times[len(times) - self.limit] + SLIDING_WINDOW_SECONDS


class RateLimiter:
    """Per-resource sliding-window action limit, the per-account alert budget and hourly one-shot markers.

    Resource actions: one item per resource, ``rate#<resource>``, holding one string set per fixed hour
    (``h<hours since the epoch>``) of claim stamps (:class:`Stamp`: time, a unique token, the caller class
    and principal of the change undone). A claim (:meth:`hit`) is **one** ``UpdateItem``, as the fixed
    hourly counter was: it adds its stamp to this hour's set (``ADD``), removes the sets of 3 to
    :data:`PRUNE_HOURS` hours ago (``REMOVE``; no window reaches them) and returns the whole item. The claim
    is allowed when the stamps no older than :data:`SLIDING_WINDOW_SECONDS` number at most ``limit``, its
    own included.
    DynamoDB serialises the updates of one item, so the last of any group of claims sees all the others:
    never more than ``limit`` allowed (and kept) claims fall within any 3600 seconds, however they straddle
    an hour boundary (the fixed hourly counter allowed ``2 * limit`` across one). :meth:`release` gives a
    claim back by deleting exactly its stamp.

    The alert budget (:meth:`alert`) stays a fixed hourly counter: it caps noise, not actions.

    ``clock`` (seconds since the epoch) is required: callers pass the one clock they own (the handler's
    seam) rather than reading the wall clock here.
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

    def hit(self, resource: str, limit: int, *, caller: str = "unknown", principal: str = "") -> RateDecision:
        """Claim one action on ``resource``; allowed while the claims in the sliding window are within ``limit``.

        ``caller`` and ``principal`` say whose change the action undoes (recorded with the claim). A claim
        whose action then changed nothing (failed, already safe, skipped, refused) is given back with
        :meth:`release`: only actions that changed something use the budget.
        """
        now = self.clock()
        window = int(now // WINDOW_SECONDS)
        stamp = Stamp(
            now, uuid.uuid4().hex, caller.replace("|", "/") or "unknown", principal[:PRINCIPAL_MAX] or "unknown"
        ).encode()
        stale = ", ".join(f"{BUCKET_PREFIX}{window - k}" for k in range(3, PRUNE_HOURS + 1))
        resp = self.client.update_item(
            TableName=self.table,
            Key={"id": {"S": f"rate#{resource}"}},
            UpdateExpression=f"ADD #h :s SET #e = :exp REMOVE {stale}",
            ExpressionAttributeNames={"#h": f"{BUCKET_PREFIX}{window}", "#e": "expiration"},
            ExpressionAttributeValues={":s": {"SS": [stamp]}, ":exp": {"N": str(int(now) + RATE_ITEM_SECONDS)}},
            ReturnValues="ALL_NEW",
        )
        recent = _recent(resp.get("Attributes", {}), now - SLIDING_WINDOW_SECONDS)
        return RateDecision(len(recent) <= limit, len(recent), limit, window, stamp, recent)

    def release(self, resource: str, window: int, stamp: str) -> None:
        """Give back the claim ``stamp`` made by :meth:`hit` in ``window`` (the action changed nothing)."""
        self.client.update_item(
            TableName=self.table,
            Key={"id": {"S": f"rate#{resource}"}},
            UpdateExpression="DELETE #h :s SET #e = if_not_exists(#e, :exp)",
            ExpressionAttributeNames={"#h": f"{BUCKET_PREFIX}{window}", "#e": "expiration"},
            ExpressionAttributeValues={
                ":s": {"SS": [stamp]},
                ":exp": {"N": str(int(self.clock()) + RATE_ITEM_SECONDS)},
            },
        )

    def first_flap(self, resource: str, window: int) -> bool:
        """True exactly once per resource and window: whoever wins sends the flapping alert."""
        return self._once(f"flap#{window}#{resource}", (window + 2) * WINDOW_SECONDS)

    def flapping(self, resource: str, window: int, principal: str, named: list[str]) -> str | None:
        """The flapping alert's one-shot marker, per resource and hour, that also remembers who it named.

        One conditional ``UpdateItem`` (as :meth:`first_flap` was one conditional put): ``"first"`` for the
        first refused claim of the hour (send the flapping alert, naming ``named``); ``"new-principal"`` when
        ``principal`` is not among the principals named so far (say so: a change by someone else must not
        hide behind the first alert); None when it was already named (stay quiet, counted).
        """
        names = sorted({n[:PRINCIPAL_MAX] or "unknown" for n in [*named, principal]})
        one = principal[:PRINCIPAL_MAX] or "unknown"
        try:
            resp = self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": f"flap#{window}#{resource}"}},
                UpdateExpression="ADD #p :names SET #e = if_not_exists(#e, :exp)",
                ConditionExpression="attribute_not_exists(#p) OR NOT contains(#p, :one)",
                ExpressionAttributeNames={"#p": "principals", "#e": "expiration"},
                ExpressionAttributeValues={
                    ":names": {"SS": names},
                    ":one": {"S": one},
                    ":exp": {"N": str((window + 2) * WINDOW_SECONDS)},
                },
                ReturnValues="ALL_OLD",
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return "new-principal" if "principals" in resp.get("Attributes", {}) else "first"

    def first_failure(self, key: str) -> bool:
        """True exactly once per failing (event, rule): Lambda's retries of one event alert once."""
        return self._once(f"fail#{key}", int(self.clock()) + IDEMPOTENCY_SECONDS)

    def first_iac_alert(self, account: str, pipeline: str, severity_rank: int) -> bool:
        """True for the first alert this hour about IaC pipeline ``pipeline`` in ``account``, or a more severe one.

        One conditional put per alert (like the other one-shot markers). The marker keeps the highest
        severity sent, so a later finding of higher severity (``severity_rank``: larger is more severe) is
        still sent: an earlier low-severity alert cannot hide a critical change by the same pipeline.
        """
        window = self._window()
        digest = hashlib.sha256(pipeline.encode()).hexdigest()[:40]
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "id": {"S": f"iac#{window}#{account}#{digest}"},
                    "pipeline": {"S": pipeline[:PRINCIPAL_MAX] or "unknown"},
                    "severity": {"N": str(severity_rank)},
                    "expiration": {"N": str((window + 2) * WINDOW_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(id) OR #s < :s",
                ExpressionAttributeNames={"#s": "severity"},
                ExpressionAttributeValues={":s": {"N": str(severity_rank)}},
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def alert(self, account: str, limit: int) -> RateDecision:
        """Count one alert for source ``account`` this hour; allowed while within ``limit``."""
        window = self._window()
        count = self._add(f"alerts#{window}#{account}", 1, window)
        return RateDecision(count <= limit, count, limit, window)

    def first_over_budget(self, account: str, window: int) -> bool:
        """True exactly once per account and window: one "alert budget exhausted" notice."""
        return self._once(f"alertbudget#{window}#{account}", (window + 2) * WINDOW_SECONDS)


def _recent(item: Mapping[str, Any], cutoff: float) -> tuple[Stamp, ...]:
    """The stamps of a rate item no older than ``cutoff``, oldest first (later ones too: a faster clock)."""
    out = []
    for name, value in item.items():
        if name.startswith(BUCKET_PREFIX) and isinstance(value, Mapping):
            for raw in value.get("SS", ()):
                s = Stamp.decode(str(raw))
                if s is not None and s.at >= cutoff:
                    out.append(s)
    return tuple(sorted(out, key=lambda s: (s.at, s.token)))


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
