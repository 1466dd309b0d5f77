"""Windowed thresholds: a rule that fires only when one principal does something often enough, quickly enough.

EventBridge judges one event at a time; bursts of credential reads (``GetSecretValue``, SSM reads with
decryption, ``GetPasswordData``, user-data reads) need a count over time per principal. A rule opts in with::

    "params": {"threshold": {"count": 10, "window_seconds": 600, "by": "principal", "distinct": "resource"}}

* ``count`` (2..:data:`MAX_COUNT`): how many distinct items fire the rule;
* ``window_seconds`` (:data:`MIN_WINDOW_SECONDS`..:data:`MAX_WINDOW_SECONDS`, a multiple of 60): within how long;
* ``by``: ``"principal"`` (the only key today; see :func:`principal_key`);
* ``distinct`` (optional): ``"event"`` (default) counts distinct CloudTrail events (``eventID``); ``"resource"``
  counts the distinct resources the decision names in ``Assessment.params["threshold_items"]`` (secret ids,
  parameter names, instance ids: a batch read of 20 secrets counts 20, the same secret read 100 times counts 1).

Threshold rules alert; they never remediate (checked at catalog load by :func:`validate_threshold`).

First seen ("new terms", as Elastic's new-terms rules): a rule opts in with::

    "params": {"first_seen": {"history_days": 30, "learning_days": 14}}

and fires only when one of the event's *terms* was not seen for the rule in the event's account within
``history_days`` before the event. A term is the principal key (:func:`principal_key`: every session of a role
counts as the role) with each string the decision names in ``Assessment.params["first_seen_items"]`` (a policy
ARN, a protocol, a bucket); with none, the principal alone ("the first time this identity does this"). The same
semantics hold in the engine (state table) and in replay (memory, the records' own times as the clock):

* Learning: for ``learning_days`` after the first qualifying event the deployment saw for the rule (one
  ``seen#<rule>#start`` item, no TTL, read once per container), terms are recorded, never alerted.
* One item per term, ``seen#<rule>#<account>#<sha256(principal, term)>``: ``l`` the last sighting, ``fe`` the
  event that found it new, TTL ``expiration`` past the history. Per term one conditional ``UpdateItem``
  (``l`` only moves forward); one more for a new term (``fe``, so the firing event's redelivery fires again).
* Times are bounded by the engine clock as for thresholds: a forged future eventTime counts as now, so it cannot
  make a term look seen ahead of time; a forged old time can only end the learning earlier (more alerts).
* More than :data:`MAX_TERMS_PER_EVENT` terms: the first ones are checked and the event alerts anyway (a long
  list is never a way to hide a new term). A failing table alerts the event on its own (``FirstSeenStateErrors``).
* Metrics: ``FirstSeenFired``, ``FirstSeenKnown``, ``FirstSeenLearning``, ``FirstSeenStateErrors``.

Semantics (the same for the engine, on the DynamoDB state table, and for ``trailguard replay``, in memory):

* The rule's decision says whether one event *qualifies*; :class:`ThresholdGate` decides whether it fires.
* Items are counted per (rule, account, principal key) in buckets of ``window_seconds / 4`` of **event time**
  (``eventTime``, not the arrival time). An event fires when the buckets from four before its own to its own
  hold ``count`` distinct items or more: every ``count`` items within ``window_seconds`` fire (granularity may
  also fire a burst spread over up to 1.25 windows, never the other way round).
* Once per window: after a firing at time ``f`` (event time, never later than the engine clock), the key does
  not fire again for events before ``f + window_seconds``; those are counted and reported as suppressed.
* Idempotent: an item is a digest, stored in a set, so a redelivered event (EventBridge retry, the log-file
  path, Lambda's retry) adds nothing. The event that fired is remembered (``fe``): its redelivery fires again,
  so a failure to send the alert the first time is retried, and the idempotency layer keeps it to one alert.
* The clock is the event time, bounded by the engine's injected clock: a time more than
  :data:`~trailguard_engine.runtime_config.MAX_FUTURE_SKEW_SECONDS` in the future counts as *now*, one more
  than :data:`LATE_SECONDS` in the past counts as *now - LATE_SECONDS* (a late backlog can only fire earlier),
  an unreadable time counts as now. Buckets are pruned relative to the engine clock, never to an event time,
  so a forged eventTime can neither push old counts out of the window (reset) nor fill a future window so
  that the real burst lands in an "already fired" window (pre-fill): a firing's time is at most the clock.
* Bounded: a bucket holds at most ``count`` digests (plus the items of one event; a full bucket means the
  threshold is met) and only the buckets of the last ``LATE_SECONDS + 1.25 * window`` are kept, so an item
  is at most a few tens of KB however many calls a principal makes; each principal has its own TTL'd item.
* Failures (throttling, DynamoDB errors): the event alerts on its own, with the error in the reason, and the
  ``ThresholdStateErrors`` metric counts it: a broken counter never silences credential access.

DynamoDB item ``window#<rule>#<account>#<sha256(principal key)[:32]>``: ``b<bucket index>`` string sets of
16-hex digests, ``principal`` (for the alert), ``fa``/``fe`` (time and event digest of the last firing),
``expiration`` (TTL). Calls per qualifying event: one ``UpdateItem`` (add, prune, return the item); one more,
conditional, for the event that fires (so two concurrent events cannot both fire); rarely one to remove
buckets left behind by a long pause.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.exceptions import CatalogError
from trailguard_engine.model import EventResult, Finding, Rule, overall_verdict
from trailguard_engine.runtime_config import MAX_FUTURE_SKEW_SECONDS

MIN_COUNT = 2
MAX_COUNT = 100
MIN_WINDOW_SECONDS = 60
MAX_WINDOW_SECONDS = 86400
#: A window is cut into this many buckets; counting looks at this many plus the event's own.
BUCKETS_PER_WINDOW = 4
#: How late (event time before the engine clock) an event may arrive and still be counted at its own time:
#: EventBridge delivers within minutes, the log-file path within about 15 minutes.
LATE_SECONDS = 900
#: Stale buckets removed by every update, behind the kept span (more only after a long pause: one extra call).
PRUNE_BUCKETS = 4
#: Items one event may add (a BatchGetSecretValue names at most 20 secrets).
MAX_ITEMS_PER_EVENT = MAX_COUNT
PRINCIPAL_MAX = 512
ITEM_PREFIX = "window#"
BUCKET_PREFIX = "b"
DISTINCT = ("event", "resource")
#: The key the decision uses to name the resources an event touched (``distinct: resource``).
ITEMS_PARAM = "threshold_items"
#: The key the decision uses to name what, besides the principal, makes an event's terms (first-seen rules).
FIRST_SEEN_ITEMS_PARAM = "first_seen_items"
DAY = 86400
MAX_HISTORY_DAYS = 90
MAX_LEARNING_DAYS = 30
#: Terms one event may check (each costs one state-table call): the rest of a long list is not checked.
MAX_TERMS_PER_EVENT = 20
TERM_MAX = 512
SEEN_PREFIX = "seen#"

_ROLE_ISSUER = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:.*/)?([^/]+)$")
_ASSUMED = re.compile(r"^arn:aws[a-z-]*:sts::(\d{12}):assumed-role/([^/]+)/.*$")
_USER = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):user/(?:.*/)?([^/]+)$")
_ROOT = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):root$")
_FEDERATED = re.compile(r"^arn:aws[a-z-]*:sts::(\d{12}):federated-user/.*$")

log = logging.getLogger("trailguard.window")


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError (without importing botocore), else ""."""
    resp = getattr(exc, "response", None)
    err = resp.get("Error") if isinstance(resp, Mapping) else None
    code = err.get("Code") if isinstance(err, Mapping) else None
    return code if isinstance(code, str) else ""


# --------------------------------------------------------------------------- #
# The rule parameter
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, slots=True)
class Threshold:
    count: int
    window_seconds: int
    by: str = "principal"
    distinct: str = "event"

    @property
    def bucket_seconds(self) -> int:
        return self.window_seconds // BUCKETS_PER_WINDOW

    def describe(self) -> str:
        unit = "distinct resources" if self.distinct == "resource" else "calls"
        return f"{self.count} {unit} within {self.window_seconds} s by one principal"


def validate_threshold(value: Any, where: str = "params.threshold") -> Threshold:
    """Parse a rule's ``params.threshold``; raise :class:`CatalogError` naming what is wrong."""
    if not isinstance(value, Mapping):
        raise CatalogError(f"{where}: expected an object with count, window_seconds and by")
    unknown = sorted(str(k) for k in set(value) - {"count", "window_seconds", "by", "distinct"})
    if unknown:
        raise CatalogError(f"{where}: unknown keys {unknown}")
    count, seconds = value.get("count"), value.get("window_seconds")
    if not isinstance(count, int) or isinstance(count, bool) or not MIN_COUNT <= count <= MAX_COUNT:
        raise CatalogError(f"{where}.count: expected an integer from {MIN_COUNT} to {MAX_COUNT}, got {count!r}")
    if (
        not isinstance(seconds, int)
        or isinstance(seconds, bool)
        or not MIN_WINDOW_SECONDS <= seconds <= MAX_WINDOW_SECONDS
        or seconds % 60
    ):
        raise CatalogError(
            f"{where}.window_seconds: expected a multiple of 60 from {MIN_WINDOW_SECONDS} to {MAX_WINDOW_SECONDS}, "
            f"got {seconds!r}"
        )
    by = value.get("by")
    if by != "principal":
        raise CatalogError(f"{where}.by: expected 'principal', got {by!r}")
    distinct = value.get("distinct", "event")
    if distinct not in DISTINCT:
        raise CatalogError(f"{where}.distinct: expected one of {DISTINCT}, got {distinct!r}")
    return Threshold(count, seconds, by, distinct)


def check_rule(rule: Rule, where: str) -> None:
    """Catalog-load check of a threshold or first-seen rule: a valid parameter, one gate, and alert-only."""
    has_threshold, has_first = "threshold" in rule.params, "first_seen" in rule.params
    if not (has_threshold or has_first):
        return
    if has_threshold and has_first:
        raise CatalogError(f"{where}: params.threshold and params.first_seen cannot be combined")
    if has_threshold:
        validate_threshold(rule.params["threshold"], f"{where}: params.threshold")
    else:
        validate_first_seen(rule.params["first_seen"], f"{where}: params.first_seen")
    kind = "threshold" if has_threshold else "first-seen"
    if rule.remediation is not None or rule.default_mode == "remediate":
        raise CatalogError(f"{where}: a {kind} rule alerts only (remediation null, default_mode alert or off)")


def threshold_of(rule: Rule | None) -> Threshold | None:
    if rule is None or "threshold" not in rule.params:
        return None
    return validate_threshold(rule.params["threshold"])


@dataclass(frozen=True, slots=True)
class FirstSeen:
    """``params.first_seen``: fire only on a term not seen within ``history_days`` (after ``learning_days``)."""

    history_days: int
    learning_days: int

    @property
    def history_seconds(self) -> int:
        return self.history_days * DAY

    @property
    def learning_seconds(self) -> int:
        return self.learning_days * DAY

    def describe(self) -> str:
        return f"not seen in the {self.history_days} days before"


def validate_first_seen(value: Any, where: str = "params.first_seen") -> FirstSeen:
    """Parse a rule's ``params.first_seen``; raise :class:`CatalogError` naming what is wrong."""
    if not isinstance(value, Mapping):
        raise CatalogError(f"{where}: expected an object with history_days and learning_days")
    unknown = sorted(str(k) for k in set(value) - {"history_days", "learning_days"})
    if unknown:
        raise CatalogError(f"{where}: unknown keys {unknown}")
    history, learning = value.get("history_days"), value.get("learning_days")
    if not isinstance(history, int) or isinstance(history, bool) or not 1 <= history <= MAX_HISTORY_DAYS:
        raise CatalogError(f"{where}.history_days: expected an integer from 1 to {MAX_HISTORY_DAYS}, got {history!r}")
    if not isinstance(learning, int) or isinstance(learning, bool) or not 0 <= learning <= MAX_LEARNING_DAYS:
        raise CatalogError(
            f"{where}.learning_days: expected an integer from 0 to {MAX_LEARNING_DAYS}, got {learning!r}"
        )
    return FirstSeen(history, learning)


def first_seen_of(rule: Rule | None) -> FirstSeen | None:
    if rule is None or "first_seen" not in rule.params:
        return None
    return validate_first_seen(rule.params["first_seen"])


def gated(rule: Rule | None) -> bool:
    """True when the rule's qualifying findings go through the gate (a threshold or a first-seen rule)."""
    return rule is not None and ("threshold" in rule.params or "first_seen" in rule.params)


# --------------------------------------------------------------------------- #
# Who and when
# --------------------------------------------------------------------------- #
def principal_key(event: CloudTrailEvent) -> str:
    """Whose burst this is: the role (not the session), the IAM user, root, or the service.

    The session name of an assumed role is chosen by whoever calls ``AssumeRole``: keyed by session, an
    attacker could spread reads over many sessions of one role, each under the threshold. So every session
    of a role counts together (by the issuing role's account and name, case-insensitive as IAM is), and a
    federated user counts with the IAM user that issued it. Sessions of one Identity Center permission set
    share a role, so its users count together (more alerts, never fewer).
    """
    for arn in (event.session_issuer_arn, event.principal_arn):
        for pattern, kind in ((_ROLE_ISSUER, "role"), (_ASSUMED, "role"), (_USER, "user")):
            m = pattern.match(arn or "")
            if m:
                return f"{kind}/{m.group(1)}/{m.group(2).lower()}"
        m = _ROOT.match(arn or "")
        if m:
            return f"root/{m.group(1)}"
    arn = event.principal_arn
    if _FEDERATED.match(arn):
        return arn  # no issuer recorded: the federated user itself
    if arn:
        return arn[:PRINCIPAL_MAX]
    if event.invoked_by:
        return f"service/{event.invoked_by[:200]}"
    if event.access_key_id:
        return f"key/{event.access_key_id[:128]}"
    return "unknown"


def parse_time(raw: str) -> float | None:
    if not raw or len(raw) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


def counted_time(raw: str, now: float | None) -> tuple[float, str]:
    """``(time to count the event at, why it differs from eventTime or "")``; ``now`` None trusts eventTime."""
    at = parse_time(raw)
    if now is None:
        return (at, "") if at is not None else (0.0, "eventTime unreadable")
    if at is None:
        return now, "eventTime unreadable: counted now"
    if at > now + MAX_FUTURE_SKEW_SECONDS:
        return now, "eventTime in the future: counted now"
    if at < now - LATE_SECONDS:
        return now - LATE_SECONDS, f"eventTime more than {LATE_SECONDS} s late: counted {LATE_SECONDS} s ago"
    return at, ""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# --------------------------------------------------------------------------- #
# Storage: DynamoDB for the engine, memory for replay (the same three operations)
# --------------------------------------------------------------------------- #
class BucketFull(Exception):
    """The event's bucket already holds ``count`` digests: the threshold is met without adding more."""


class WindowStore(Protocol):
    def add(
        self, item_id: str, bucket: str, *, digests: list[str], cap: int, stale: list[str], principal: str, exp: int
    ) -> Mapping[str, Any]:
        """Add ``digests`` to ``bucket`` unless it holds ``cap`` or more (then :class:`BucketFull`); drop
        the ``stale`` buckets; return the whole item as ``{name: set | str | float}``."""
        ...

    def fire(self, item_id: str, at: float, event: str, cut: float) -> bool:
        """Record a firing at ``at`` by ``event`` unless one is recorded after ``cut`` by another event."""
        ...

    def remove(self, item_id: str, names: list[str]) -> None: ...

    def touch(self, item_id: str, at: float, event: str, exp: int) -> Mapping[str, Any] | None:
        """First-seen terms: record the term seen at ``at`` (``l``) unless a later sighting is recorded and the
        term did not first fire on ``event`` (then :class:`SeenLater`); return the item as it was (None: new)."""
        ...

    def mark_first(self, item_id: str, event: str) -> None:
        """Remember that ``event`` found the term new (``fe``), so its redelivery fires again."""
        ...

    def advance(self, at: float) -> None:
        """The newest counted time (the memory store's TTL clock; DynamoDB keeps its own)."""
        ...

    def start(self, item_id: str, at: float) -> float:
        """The learning start of a first-seen rule: set to ``at`` if unset (never expires); return it."""
        ...


class SeenLater(Exception):
    """The term was already recorded at or after this event's time: seen, not new."""


class DynamoWindowStore:
    """The window items in the engine's state table (the table, key ``id`` and TTL ``expiration``)."""

    def __init__(self, *, table: str, client: Any) -> None:
        self.table = table
        self.client = client
        #: DynamoDB calls made (measured by the tests and the benchmark).
        self.calls = 0

    def add(
        self, item_id: str, bucket: str, *, digests: list[str], cap: int, stale: list[str], principal: str, exp: int
    ) -> Mapping[str, Any]:
        names = {"#b": bucket, "#e": "expiration", "#p": "principal"}
        remove = ""
        if stale:
            remove = " REMOVE " + ", ".join(f"#s{i}" for i in range(len(stale)))
            names.update({f"#s{i}": s for i, s in enumerate(stale)})
        self.calls += 1
        try:
            resp = self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": item_id}},
                UpdateExpression=f"ADD #b :d SET #e = :exp, #p = if_not_exists(#p, :p){remove}",
                ConditionExpression="attribute_not_exists(#b) OR size(#b) < :cap",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":d": {"SS": sorted(set(digests))},
                    ":exp": {"N": str(exp)},
                    ":p": {"S": principal[:PRINCIPAL_MAX] or "unknown"},
                    ":cap": {"N": str(cap)},
                },
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise BucketFull(bucket) from exc
            raise
        return _plain(resp.get("Attributes", {}))

    def fire(self, item_id: str, at: float, event: str, cut: float) -> bool:
        self.calls += 1
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": item_id}},
                UpdateExpression="SET #fa = :fa, #fe = :fe",
                ConditionExpression="attribute_not_exists(#fa) OR #fa <= :cut OR #fe = :fe",
                ExpressionAttributeNames={"#fa": "fa", "#fe": "fe"},
                ExpressionAttributeValues={
                    ":fa": {"N": repr(float(at))},
                    ":fe": {"S": event},
                    ":cut": {"N": repr(float(cut))},
                },
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def remove(self, item_id: str, names: list[str]) -> None:
        if not names:
            return
        self.calls += 1
        self.client.update_item(
            TableName=self.table,
            Key={"id": {"S": item_id}},
            UpdateExpression="REMOVE " + ", ".join(f"#s{i}" for i in range(len(names))),
            ExpressionAttributeNames={f"#s{i}": n for i, n in enumerate(names)},
        )

    def touch(self, item_id: str, at: float, event: str, exp: int) -> Mapping[str, Any] | None:
        self.calls += 1
        try:
            resp = self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": item_id}},
                UpdateExpression="SET #l = :at, #e = :exp",
                ConditionExpression="attribute_not_exists(#l) OR #l < :at OR #fe = :fe",
                ExpressionAttributeNames={"#l": "l", "#e": "expiration", "#fe": "fe"},
                ExpressionAttributeValues={":at": {"N": repr(float(at))}, ":exp": {"N": str(exp)}, ":fe": {"S": event}},
                ReturnValues="ALL_OLD",
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise SeenLater(item_id) from exc
            raise
        return _plain(resp.get("Attributes") or {}) or None

    def advance(self, at: float) -> None:
        return None

    def mark_first(self, item_id: str, event: str) -> None:
        self.calls += 1
        self.client.update_item(
            TableName=self.table,
            Key={"id": {"S": item_id}},
            UpdateExpression="SET #fe = :fe",
            ExpressionAttributeNames={"#fe": "fe"},
            ExpressionAttributeValues={":fe": {"S": event}},
        )

    def start(self, item_id: str, at: float) -> float:
        self.calls += 1
        resp = self.client.update_item(
            TableName=self.table,
            Key={"id": {"S": item_id}},
            UpdateExpression="SET #s = if_not_exists(#s, :at)",
            ExpressionAttributeNames={"#s": "s"},
            ExpressionAttributeValues={":at": {"N": repr(float(at))}},
            ReturnValues="ALL_NEW",
        )
        value = _plain(resp.get("Attributes") or {}).get("s")
        return value if isinstance(value, float) else float(at)


def _plain(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in attrs.items():
        if not isinstance(value, Mapping):
            continue
        if "SS" in value:
            out[name] = set(value["SS"])
        elif "N" in value:
            try:
                out[name] = float(value["N"])
            except ValueError:
                continue
        elif "S" in value:
            out[name] = str(value["S"])
    return out


class MemoryWindowStore:
    """The same items in a dict (``trailguard replay``, tests, an engine without a state table).

    Bounded like the table: buckets are pruned the same way, and items whose ``expiration`` lies before
    the newest counted time (:meth:`advance`) are dropped every :data:`SWEEP_EVERY` writes (DynamoDB's TTL;
    items without one, a first-seen rule's learning start, are kept).
    """

    SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self._adds = 0
        self._now = 0.0

    def add(
        self, item_id: str, bucket: str, *, digests: list[str], cap: int, stale: list[str], principal: str, exp: int
    ) -> Mapping[str, Any]:
        self.calls += 1
        self._sweep()
        item = self.items.setdefault(item_id, {})
        held = item.get(bucket)
        if isinstance(held, set) and len(held) >= cap:
            raise BucketFull(bucket)
        item.setdefault(bucket, set()).update(digests)
        item["expiration"] = exp
        item.setdefault("principal", principal[:PRINCIPAL_MAX] or "unknown")
        for s in stale:
            item.pop(s, None)
        return {k: (set(v) if isinstance(v, set) else v) for k, v in item.items()}

    def fire(self, item_id: str, at: float, event: str, cut: float) -> bool:
        self.calls += 1
        item = self.items.setdefault(item_id, {})
        fa, fe = item.get("fa"), item.get("fe")
        if fa is not None and fa > cut and fe != event:
            return False
        item["fa"], item["fe"] = float(at), event
        return True

    def remove(self, item_id: str, names: list[str]) -> None:
        if names:
            self.calls += 1
            for n in names:
                self.items.get(item_id, {}).pop(n, None)

    def advance(self, at: float) -> None:
        self._now = max(self._now, at)

    def _sweep(self) -> None:
        self._adds += 1
        if self._adds % self.SWEEP_EVERY == 0:
            now = self._now
            self.items = {k: v for k, v in self.items.items() if v.get("expiration", now) >= now}

    def touch(self, item_id: str, at: float, event: str, exp: int) -> Mapping[str, Any] | None:
        self.calls += 1
        self._sweep()
        item = self.items.get(item_id)
        if item is not None and isinstance(item.get("l"), float) and item["l"] >= at and item.get("fe") != event:
            raise SeenLater(item_id)
        old = dict(item) if item else None
        item = self.items.setdefault(item_id, {})
        item["l"], item["expiration"] = float(at), exp
        return old

    def mark_first(self, item_id: str, event: str) -> None:
        self.calls += 1
        self.items.setdefault(item_id, {})["fe"] = event

    def start(self, item_id: str, at: float) -> float:
        self.calls += 1
        item = self.items.setdefault(item_id, {})
        return float(item.setdefault("s", float(at)))


# --------------------------------------------------------------------------- #
# The gate
# --------------------------------------------------------------------------- #
#: (metric name, rule id, account) -> counted by the engine's metric function.
MetricFn = Callable[[str, str, str], None]


@dataclass(frozen=True, slots=True)
class Count:
    """What the gate concluded for one qualifying event."""

    verdict: str  # "fire" | "below" | "suppressed" | "error"
    count: int
    threshold: Threshold
    principal: str
    note: str = ""
    #: The start of the counted span (event time, seconds since the epoch): the runbook's query window.
    since: float = 0.0


class ThresholdGate:
    """Turns the qualifying findings of threshold rules into at most one alert per principal and window, and
    those of first-seen rules into an alert only for a term not seen within the rule's history.

    ``clock`` (seconds since the epoch) bounds event times (the engine passes its clock); None trusts each
    event's own time (``trailguard replay`` over recorded logs, where "now" is the record's time).
    """

    def __init__(
        self,
        store: WindowStore,
        *,
        clock: Callable[[], float] | None,
        metric: MetricFn | None = None,
        logger: Any = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.metric: MetricFn = metric or (lambda name, rule, account: None)
        self.log = logger or log
        #: First-seen rules whose learning period is over (read once per container, then never again).
        self._learned: set[str] = set()

    # ------------------------------------------------------------------ #
    def apply(self, event: CloudTrailEvent, findings: Iterable[Finding], rules: Mapping[str, Rule]) -> list[Finding]:
        """The findings with every threshold or first-seen rule's qualifying finding gated (others unchanged)."""
        out = []
        for f in findings:
            rule = rules.get(f.rule)
            qualifies = f.decision != "skip" or f.silenced_by is not None
            th = threshold_of(rule) if qualifies else None
            fs = first_seen_of(rule) if qualifies and th is None else None
            if th is not None:
                out.append(self._gate(event, f, th))
            elif fs is not None:
                out.append(self._first_seen(event, f, fs))
            else:
                out.append(f)
        return out

    def apply_result(self, event: CloudTrailEvent, result: EventResult, rules: Mapping[str, Rule]) -> EventResult:
        if not result.findings or not any(gated(rules.get(f.rule)) for f in result.findings):
            return result
        findings = tuple(self.apply(event, result.findings, rules))
        return replace(result, verdict=overall_verdict(findings), findings=findings)

    def _gate(self, event: CloudTrailEvent, f: Finding, th: Threshold) -> Finding:
        c = self.count(event, f, th)
        if c.verdict == "fire":
            self.metric("ThresholdFired", f.rule, event.account)
            note = f" ({c.note})" if c.note else ""
            since = datetime.fromtimestamp(c.since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            reason = (
                f"{c.count} since {since}: threshold {th.describe()} reached by {c.principal}{note}; last: {f.reason}"
            )
            params = {
                **f.params,
                "threshold": {"count": c.count, "limit": th.count, "window_seconds": th.window_seconds, "since": since},
            }
            params["principal_key"] = c.principal
            return replace(f, reason=reason[:1000], params=params)
        if c.verdict == "error":
            self.metric("ThresholdStateErrors", f.rule, event.account)
            return replace(f, reason=f"{f.reason} (threshold state unavailable: {c.note}; alerted on this event alone)")
        if c.verdict == "suppressed":
            self.metric("ThresholdSuppressed", f.rule, event.account)
            why = f"already alerted for {c.principal} within the window ({c.count} counted, {c.note})"
        else:
            self.metric("ThresholdCounted", f.rule, event.account)
            why = f"counted {c.count} of {th.count} within {th.window_seconds} s for {c.principal}"
        return replace(f, decision="skip", action=None, reason=f"{why}; {f.reason}"[:1000], silenced_by=None)

    def count(self, event: CloudTrailEvent, f: Finding, th: Threshold) -> Count:
        """Count ``event`` for ``f.rule`` and say whether it fires (never raises: errors are a verdict)."""
        principal = principal_key(event)
        try:
            c = self._count(event, f, th, principal)
        except Exception as exc:  # throttling, a broken table, a bug: alert rather than drop
            self.log.error("threshold state for %s (%s) unavailable: %s", f.rule, principal, exc)
            return Count("error", 0, th, principal, f"{type(exc).__name__}: {exc}"[:300])
        return c

    def _count(self, event: CloudTrailEvent, f: Finding, th: Threshold, principal: str) -> Count:
        now = self.clock() if self.clock is not None else None
        at, note = counted_time(event.event_time, now)
        ref = now if now is not None else at
        self.store.advance(ref)
        size = th.bucket_seconds
        k = int(at // size)
        since = float((k - BUCKETS_PER_WINDOW) * size)
        kept_from = int((ref - LATE_SECONDS) // size) - BUCKETS_PER_WINDOW
        stale = [f"{BUCKET_PREFIX}{i}" for i in range(kept_from - PRUNE_BUCKETS, kept_from)]
        event_ref = event.event_id or event.detail.get("requestID") or event.envelope_id or ""
        me = digest(f"event:{event_ref}")
        digests = [me]
        if th.distinct == "resource":
            items = [str(x) for x in f.params.get(ITEMS_PARAM) or () if isinstance(x, str) and x]
            if items:
                digests = sorted({digest(f"res:{x}") for x in items})[:MAX_ITEMS_PER_EVENT]
        item_id = (
            f"{ITEM_PREFIX}{f.rule}#{event.account or 'unknown'}#{hashlib.sha256(principal.encode()).hexdigest()[:32]}"
        )
        exp = int(max(ref, at)) + LATE_SECONDS + 2 * th.window_seconds + MAX_FUTURE_SKEW_SECONDS
        fire_at = min(at, now) if now is not None else at
        cut = at - th.window_seconds
        try:
            item = self.store.add(
                item_id, f"{BUCKET_PREFIX}{k}", digests=digests, cap=th.count, stale=stale, principal=principal, exp=exp
            )
        except BucketFull:
            if self.store.fire(item_id, fire_at, me, cut):
                return Count("fire", th.count, th, principal, _join(note, "bucket full"), since=since)
            return Count("suppressed", th.count, th, principal, _join(note, "bucket full"), since=since)
        seen: set[str] = set()
        leftovers = []
        for name, value in item.items():
            if not (name.startswith(BUCKET_PREFIX) and name[1:].lstrip("-").isdigit() and isinstance(value, set)):
                continue
            idx = int(name[1:])
            if idx < kept_from - PRUNE_BUCKETS:
                leftovers.append(name)
            if k - BUCKETS_PER_WINDOW <= idx <= k:
                seen |= value
        if leftovers:
            self.store.remove(item_id, sorted(leftovers))
        n = len(seen)
        if n < th.count:
            return Count("below", n, th, principal, note, since=since)
        fa, fe = item.get("fa"), item.get("fe")
        if fe == me:
            return Count("fire", n, th, principal, _join(note, "redelivered"), since=since)
        if isinstance(fa, float) and fa > cut:
            when = datetime.fromtimestamp(fa, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return Count("suppressed", n, th, principal, _join(note, f"last alert at {when}"), since=since)
        if self.store.fire(item_id, fire_at, me, cut):
            return Count("fire", n, th, principal, note, since=since)
        return Count("suppressed", n, th, principal, _join(note, "another event fired first"), since=since)

    # ------------------------------------------------------------------ #
    # First seen ("new terms")
    # ------------------------------------------------------------------ #
    def _first_seen(self, event: CloudTrailEvent, f: Finding, fs: FirstSeen) -> Finding:
        s = self.seen(event, f, fs)
        if s.verdict == "fire":
            self.metric("FirstSeenFired", f.rule, event.account)
            shown = ", ".join(t or "(this identity)" for t in s.new[:5]) + (" ..." if len(s.new) > 5 else "")
            note = f" ({s.note})" if s.note else ""
            reason = f"first time for {s.principal}: {shown}, {fs.describe()}{note}; {f.reason}"
            params = {
                **f.params,
                "first_seen": {"new": list(s.new[:20]), "history_days": fs.history_days},
                "principal_key": s.principal,
            }
            return replace(f, reason=reason[:1000], params=params)
        if s.verdict == "error":
            self.metric("FirstSeenStateErrors", f.rule, event.account)
            return replace(
                f, reason=f"{f.reason} (first-seen state unavailable: {s.note}; alerted on this event alone)"
            )
        if s.verdict == "learning":
            self.metric("FirstSeenLearning", f.rule, event.account)
            why = f"learning what {s.principal} and the others do ({s.note}): recorded, not alerted"
        else:
            self.metric("FirstSeenKnown", f.rule, event.account)
            why = f"seen for {s.principal} within {fs.history_days} days: not new"
        return replace(f, decision="skip", action=None, reason=f"{why}; {f.reason}"[:1000], silenced_by=None)

    def seen(self, event: CloudTrailEvent, f: Finding, fs: FirstSeen) -> Seen:
        """Record ``event``'s terms for ``f.rule`` and say whether one is new (never raises: errors are a verdict)."""
        principal = principal_key(event)
        try:
            return self._seen(event, f, fs, principal)
        except Exception as exc:  # throttling, a broken table, a bug: alert rather than drop
            self.log.error("first-seen state for %s (%s) unavailable: %s", f.rule, principal, exc)
            return Seen("error", (), principal, f"{type(exc).__name__}: {exc}"[:300])

    def _seen(self, event: CloudTrailEvent, f: Finding, fs: FirstSeen, principal: str) -> Seen:
        now = self.clock() if self.clock is not None else None
        at, note = counted_time(event.event_time, now)
        ref = now if now is not None else at
        self.store.advance(ref)
        terms, more = first_seen_terms(f.params)
        learning = self._learning_until(f.rule, fs, at)
        event_ref = event.event_id or event.detail.get("requestID") or event.envelope_id or ""
        me = digest(f"event:{event_ref}")
        exp = int(max(ref, at)) + fs.history_seconds + LATE_SECONDS + MAX_FUTURE_SKEW_SECONDS
        new: list[str] = []
        for term in terms:
            item_id = seen_item_id(f.rule, event.account, principal, term)
            try:
                old = self.store.touch(item_id, at, me, exp)
            except SeenLater:
                continue
            last = old.get("l") if old else None
            if old is None or not isinstance(last, float) or last < at - fs.history_seconds or old.get("fe") == me:
                new.append(term)
                if learning is None:
                    self.store.mark_first(item_id, me)
        if learning is not None:
            until = datetime.fromtimestamp(learning, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return Seen("learning", tuple(new), principal, _join(note, f"learning period until {until}"))
        if more:
            # A request naming more terms than are checked is not assumed known: alert (never a way to hide).
            return Seen("fire", tuple(new) or ("(more terms than checked)",), principal, _join(note, more))
        return Seen("fire" if new else "known", tuple(new), principal, note)

    def _learning_until(self, rule: str, fs: FirstSeen, at: float) -> float | None:
        """The end of the rule's learning period when ``at`` lies in it, else None (learned: cached)."""
        if not fs.learning_days or rule in self._learned:
            return None
        start = self.store.start(f"{SEEN_PREFIX}{rule}#start", at)
        end = start + fs.learning_seconds
        if at >= end:
            self._learned.add(rule)
            return None
        return end


@dataclass(frozen=True, slots=True)
class Seen:
    """What the gate concluded for one qualifying event of a first-seen rule."""

    verdict: str  # "fire" | "known" | "learning" | "error"
    new: tuple[str, ...]
    principal: str
    note: str = ""


def first_seen_terms(params: Mapping[str, Any]) -> tuple[list[str], str]:
    """``(terms to check, why some were left out or "")``: the decision's items, or the principal alone ("")."""
    raw = params.get(FIRST_SEEN_ITEMS_PARAM)
    items = sorted({x.strip()[:TERM_MAX] for x in raw or () if isinstance(x, str) and x.strip()})
    if not items:
        return [""], ""
    if len(items) > MAX_TERMS_PER_EVENT:
        return items[:MAX_TERMS_PER_EVENT], f"{len(items)} terms, {MAX_TERMS_PER_EVENT} checked"
    return items, ""


def seen_item_id(rule: str, account: str, principal: str, term: str) -> str:
    """``seen#<rule>#<account>#<sha256(principal, term)>``: one state item per term."""
    key = hashlib.sha256(f"{principal}\x00{term}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{SEEN_PREFIX}{rule}#{account or 'unknown'}#{key}"


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b
