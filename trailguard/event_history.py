"""Management events from CloudTrail Event History (``LookupEvents``), before anything is deployed.

Every account has Event History: the last 90 days of management events, per region, without a trail. This
module pulls them and hands them to the same readers' item stream as log files (:data:`trailguard.replay.Item`),
so ``replay`` judges them unchanged.

How it talks to AWS, and why:

* ``LookupEvents`` is limited to 2 requests per second per account per region, so each region has its own token
  bucket (:class:`TokenBucket`, clock and sleep injectable so tests never sleep); ``ThrottlingException`` is
  retried with exponential backoff all the same.
* Pages hold at most 50 events (``MaxResults=50``) and are chained with ``NextToken``.
* Regions run in parallel, one thread per region (at most :data:`MAX_REGIONS`), since the limit is per region.
* Order: ``LookupEvents`` returns newest first. The range is cut into windows (a day by default) fetched oldest
  first; each window is sorted oldest first; regions are merged by event time (ties: region order, then the
  order within the region). So the stream is chronological and the same on every run, which threshold and
  first-seen rules need. Memory is bounded by one window per region plus a bounded queue.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from trailguard.exceptions import TrailguardError
from trailguard.replay import Item, record_from_lookup_event

#: Event History keeps 90 days of management events.
MAX_LOOKBACK = timedelta(days=90)
#: The largest page LookupEvents returns.
PAGE_SIZE = 50
#: LookupEvents' documented limit, per account and region.
REQUESTS_PER_SECOND = 2.0
#: One thread per region; more regions than this is a mistake in the region list.
MAX_REGIONS = 64
#: Events waiting per region before its thread pauses (the merge consumes in time order).
QUEUE_EVENTS = 5000
THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"})


class EventHistoryError(TrailguardError):
    """Event History cannot be read as asked (range, regions, credentials, API errors)."""


class _Client(Protocol):
    def lookup_events(self, **kwargs: Any) -> dict[str, Any]: ...


ClientFactory = Callable[[str, str], Any]


@dataclass(frozen=True, slots=True)
class RegionProgress:
    """Where one region's download is: windows fetched out of all, events so far, finished or not."""

    region: str
    windows_done: int
    windows_total: int
    events: int
    done: bool


class TokenBucket:
    """At most ``rate`` acquisitions per second, ``burst`` at once; thread-safe.

    The default burst of 1 spaces requests evenly (every 0.5 s at 2/s), so no one-second span ever holds more
    than ``rate`` requests, however the limit is measured.

    ``clock`` (seconds, monotonic) and ``sleep`` are injectable: tests pass a fake clock whose sleep advances it.
    """

    def __init__(
        self,
        rate: float = REQUESTS_PER_SECOND,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else 1.0
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds slept."""
        slept = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return slept
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)
            slept += wait


def client_factory(session_or_factory: Any) -> ClientFactory:
    """``(service, region) -> client`` from a boto3 Session (anything with ``.client``) or such a callable."""
    if hasattr(session_or_factory, "client"):
        session = session_or_factory
        return lambda service, region: session.client(service, region_name=region)
    if callable(session_or_factory):
        return session_or_factory  # type: ignore[no-any-return]
    raise TypeError("expected a boto3 Session or a (service, region) -> client callable")


def resolve_regions(
    factory: ClientFactory, regions: str | Sequence[str], *, home_region: str = "us-east-1"
) -> list[str]:
    """``"all"``: the regions enabled for the account (EC2 ``DescribeRegions``), sorted; else the given list."""
    if isinstance(regions, str):
        if regions.strip().lower() != "all":
            regions = [r for r in (p.strip() for p in regions.split(",")) if r]
        else:
            try:
                resp = factory("ec2", home_region).describe_regions(AllRegions=False)
            except Exception as exc:
                raise EventHistoryError(
                    f"cannot list the enabled regions (ec2:DescribeRegions): {_reason(exc)}; "
                    "pass --regions us-east-1,eu-west-1 instead"
                ) from exc
            names = [
                r["RegionName"]
                for r in resp.get("Regions", [])
                if r.get("OptInStatus", "opt-in-not-required") != "not-opted-in"
            ]
            return sorted(set(names))
    out = list(dict.fromkeys(r.strip() for r in regions if r.strip()))
    if not out:
        raise EventHistoryError("no regions given (use --regions all or a comma-separated list)")
    if len(out) > MAX_REGIONS:
        raise EventHistoryError(f"{len(out)} regions given; at most {MAX_REGIONS}")
    return out


def check_range(since: datetime, until: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The UTC range to read; refuses a start older than Event History keeps, or an empty range."""
    since = _utc(since)
    until = _utc(until) if until is not None else _utc(now)
    now = _utc(now)
    if since < now - MAX_LOOKBACK:
        raise EventHistoryError(
            f"Event History keeps 90 days: the start {since:%Y-%m-%dT%H:%M:%SZ} is older "
            f"(use --since 90d or later; older events are in a trail's S3 logs: trailguard replay <dir>)"
        )
    until = min(until, now)
    if since >= until:
        raise EventHistoryError(
            f"empty time range: start {since:%Y-%m-%dT%H:%M:%SZ} is not before end {until:%Y-%m-%dT%H:%M:%SZ}"
        )
    return since, until


def windows(since: datetime, until: datetime, size: timedelta) -> list[tuple[datetime, datetime]]:
    """``[since, until]`` cut into consecutive windows of ``size``, oldest first."""
    out = []
    start = since
    while start < until:
        end = min(start + size, until)
        out.append((start, end))
        start = end
    return out


def iter_event_history(
    session_or_client_factory: Any,
    *,
    since: datetime,
    until: datetime | None,
    regions: str | Sequence[str],
    on_progress: Callable[[RegionProgress], None] | None = None,
    now: datetime | None = None,
    window: timedelta = timedelta(days=1),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    max_retries: int = 8,
    backoff: float = 1.0,
    home_region: str = "us-east-1",
) -> Iterator[Item]:
    """Management events of ``regions`` between ``since`` and ``until`` (default: now), oldest first.

    Items are ``("event-history:<region>", n, record)`` with ``n`` counting events of that region from 1; an
    Event whose ``CloudTrailEvent`` cannot be read is a skipped input with its reason, like a bad log line.
    ``on_progress`` is called from the region threads (rich's ``Progress.update`` is thread-safe). Raises
    :class:`EventHistoryError` on a bad range or region list, and when a region's API calls fail for good.
    """
    factory = client_factory(session_or_client_factory)
    start, end = check_range(since, until, now or datetime.now(UTC))
    names = resolve_regions(factory, regions, home_region=home_region)
    spans = windows(start, end, window)
    try:
        clients = {r: factory("cloudtrail", r) for r in names}  # created here: boto3 sessions are not thread-safe
    except Exception as exc:
        raise EventHistoryError(f"cannot create a CloudTrail client: {_reason(exc)}") from exc
    stop = threading.Event()
    queues: dict[str, queue.Queue[Any]] = {r: queue.Queue(maxsize=QUEUE_EVENTS) for r in names}
    threads = [
        threading.Thread(
            target=_region_worker,
            name=f"trailguard-event-history-{r}",
            args=(
                _RegionJob(r, clients[r], spans, TokenBucket(clock=clock, sleep=sleep), sleep, max_retries, backoff),
                queues[r],
                stop,
                on_progress,
            ),
            daemon=True,
        )
        for r in names
    ]
    for t in threads:
        t.start()
    try:
        yield from _merge(names, queues)
    finally:
        stop.set()
        for q in queues.values():  # unblock producers waiting on a full queue
            _drain(q)
        for t in threads:
            t.join(timeout=5)


_DONE = object()


@dataclass
class _RegionJob:
    region: str
    client: _Client
    spans: list[tuple[datetime, datetime]]
    bucket: TokenBucket
    sleep: Callable[[float], None]
    max_retries: int
    backoff: float


def _region_worker(
    job: _RegionJob, out: queue.Queue[Any], stop: threading.Event, on_progress: Callable[[RegionProgress], None] | None
) -> None:
    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    count = 0
    try:
        for i, (start, end) in enumerate(job.spans):
            last = i == len(job.spans) - 1
            events = [
                ev
                for ev in _lookup_window(job, start, end, stop)
                if _in_window(ev.get("EventTime"), start, end, inclusive_end=last)
            ]
            events.sort(key=lambda ev: (_event_time(ev), str(ev.get("EventId", ""))))
            for ev in events:
                count += 1
                if not put(
                    (_event_time(ev), count, (f"event-history:{job.region}", count, record_from_lookup_event(ev, "")))
                ):
                    return
            if on_progress is not None:
                on_progress(RegionProgress(job.region, i + 1, len(job.spans), count, last))
    except EventHistoryError as exc:
        put(exc)
        return
    except Exception as exc:  # a bug or an unexpected SDK error: surface it in the caller's thread
        put(EventHistoryError(f"{job.region}: LookupEvents failed: {_reason(exc)}"))
        return
    put(_DONE)


def _lookup_window(job: _RegionJob, start: datetime, end: datetime, stop: threading.Event) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while not stop.is_set():
        params: dict[str, Any] = {"StartTime": start, "EndTime": end, "MaxResults": PAGE_SIZE}
        if token:
            params["NextToken"] = token
        resp = _call_with_retries(job, params)
        yield from resp.get("Events", [])
        token = resp.get("NextToken")
        if not token:
            return


def _call_with_retries(job: _RegionJob, params: dict[str, Any]) -> dict[str, Any]:
    attempt = 0
    while True:
        job.bucket.acquire()
        try:
            return job.client.lookup_events(**params)
        except Exception as exc:
            code = _error_code(exc)
            if code in THROTTLING_CODES and attempt < job.max_retries:
                job.sleep(min(job.backoff * (2**attempt), 20.0))
                attempt += 1
                continue
            hint = ""
            if code in ("AccessDenied", "AccessDeniedException", "UnrecognizedClientException"):
                hint = " (needs cloudtrail:LookupEvents in this region; is the region enabled for the account?)"
            elif code in THROTTLING_CODES:
                hint = f" (still throttled after {job.max_retries} retries; another tool may share the limit)"
            raise EventHistoryError(f"{job.region}: LookupEvents failed: {_reason(exc)}{hint}") from exc


def _merge(names: list[str], queues: dict[str, queue.Queue[Any]]) -> Iterator[Item]:
    heap: list[tuple[datetime, int, int, Item]] = []

    def pull(index: int) -> None:
        got = queues[names[index]].get()
        if got is _DONE:
            return
        if isinstance(got, BaseException):
            raise got
        when, seq, item = got
        heapq.heappush(heap, (when, index, seq, item))

    for i in range(len(names)):
        pull(i)
    while heap:
        _when, index, _seq, item = heapq.heappop(heap)
        yield item
        pull(index)


def _drain(q: queue.Queue[Any]) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def _in_window(t: Any, start: datetime, end: datetime, *, inclusive_end: bool) -> bool:
    """Windows share their edges (StartTime and EndTime are both inclusive): an edge event belongs to one."""
    if not isinstance(t, datetime):
        return True
    when: datetime = _utc(t)
    return bool(start <= when <= end) if inclusive_end else bool(start <= when < end)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _event_time(ev: dict[str, Any]) -> datetime:
    t = ev.get("EventTime")
    return _utc(t) if isinstance(t, datetime) else _EPOCH


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _reason(exc: BaseException) -> str:
    code = _error_code(exc)
    text = str(exc).strip().splitlines()
    msg = text[0] if text else type(exc).__name__
    return msg if not code or code in msg else f"{code}: {msg}"
