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
    """Catalog-load check of a threshold rule: a valid parameter, and alert-only."""
    if "threshold" not in rule.params:
        return
    validate_threshold(rule.params["threshold"], f"{where}: params.threshold")
    if rule.remediation is not None or rule.default_mode == "remediate":
        raise CatalogError(f"{where}: a threshold rule alerts only (remediation null, default_mode alert or off)")


def threshold_of(rule: Rule | None) -> Threshold | None:
    if rule is None or "threshold" not in rule.params:
        return None
    return validate_threshold(rule.params["threshold"])


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
    the newest time seen are dropped every :data:`SWEEP_EVERY` additions (DynamoDB's TTL).
    """

    SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self._adds = 0
        self._newest = 0

    def add(
        self, item_id: str, bucket: str, *, digests: list[str], cap: int, stale: list[str], principal: str, exp: int
    ) -> Mapping[str, Any]:
        self.calls += 1
        self._adds += 1
        if self._adds % self.SWEEP_EVERY == 0:
            self.items = {k: v for k, v in self.items.items() if v.get("expiration", 0) >= self._newest}
        item = self.items.setdefault(item_id, {})
        held = item.get(bucket)
        if isinstance(held, set) and len(held) >= cap:
            raise BucketFull(bucket)
        item.setdefault(bucket, set()).update(digests)
        item["expiration"] = exp
        self._newest = max(self._newest, exp - 1)
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
    """Turns the qualifying findings of threshold rules into at most one alert per principal and window.

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

    # ------------------------------------------------------------------ #
    def apply(self, event: CloudTrailEvent, findings: Iterable[Finding], rules: Mapping[str, Rule]) -> list[Finding]:
        """The findings with every threshold rule's qualifying finding gated (others unchanged)."""
        out = []
        for f in findings:
            th = threshold_of(rules.get(f.rule))
            qualifies = f.decision != "skip" or f.silenced_by is not None
            out.append(self._gate(event, f, th) if th is not None and qualifies else f)
        return out

    def apply_result(self, event: CloudTrailEvent, result: EventResult, rules: Mapping[str, Rule]) -> EventResult:
        if not result.findings or not any(threshold_of(rules.get(f.rule)) for f in result.findings):
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


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b
