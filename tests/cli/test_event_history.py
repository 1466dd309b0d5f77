"""Event History (``LookupEvents``) as a replay source: pagination, rate limit, retries, regions, order, range.

moto does not implement ``lookup_events``: these tests use botocore's Stubber, which checks every request and
response against the CloudTrail service model (``StartTime``, ``EndTime``, ``MaxResults``, ``NextToken``; Events
with ``EventTime`` and the record as the ``CloudTrailEvent`` JSON string). No test sleeps: the token bucket and
the backoff get a fake clock whose sleep advances it.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cli_helpers import bare
from trailguard_engine.evaluate import Evaluator

from trailguard.event_history import (
    MAX_LOOKBACK,
    PAGE_SIZE,
    EventHistoryError,
    RegionProgress,
    TokenBucket,
    iter_event_history,
)
from trailguard.replay import Problem, replay

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """A monotonic clock that only moves when someone sleeps (thread-safe)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


_boto3: Any = boto3  # boto3-stubs' overloads want literal service names


def _client(service: str, region: str) -> Any:
    return _boto3.client(
        service, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing"
    )  # credentials are never used: the Stubber answers before signing


class Stubs:
    """One stubbed client per (service, region), handed out by the factory iter_event_history calls."""

    def __init__(self) -> None:
        self.stubbers: dict[tuple[str, str], Stubber] = {}
        self.clients: dict[tuple[str, str], Any] = {}

    def stub(self, service: str, region: str) -> Stubber:
        key = (service, region)
        if key not in self.stubbers:
            self.clients[key] = _client(service, region)
            self.stubbers[key] = Stubber(self.clients[key])
            self.stubbers[key].activate()
        return self.stubbers[key]

    def factory(self, service: str, region: str) -> Any:
        self.stub(service, region)
        return self.clients[(service, region)]

    def assert_done(self) -> None:
        for s in self.stubbers.values():
            s.assert_no_pending_responses()


def record(event_id: str, when: datetime, name: str = "DescribeInstances", region: str = "us-east-1") -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333"},
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.1",
        "userAgent": "aws-cli/2",
        "requestParameters": None,
        "responseElements": None,
        "requestID": f"req-{event_id}",
        "eventID": event_id,
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management",
    }


def event(rec: dict[str, Any]) -> dict[str, Any]:
    """A LookupEvents ``Event`` as the API returns it."""
    return {
        "EventId": rec["eventID"],
        "EventName": rec["eventName"],
        "ReadOnly": "true",
        "EventTime": datetime.strptime(rec["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
        "EventSource": rec["eventSource"],
        "Username": "alice",
        "Resources": [],
        "CloudTrailEvent": json.dumps(rec),
    }


def params(start: datetime, end: datetime, token: str | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"StartTime": start, "EndTime": end, "MaxResults": PAGE_SIZE}
    if token:
        p["NextToken"] = token
    return p


def run(stubs: Stubs, clock: FakeClock | None = None, **kwargs: Any) -> list[Any]:
    clock = clock or FakeClock()
    kwargs.setdefault("now", NOW)
    return list(iter_event_history(stubs.factory, clock=clock, sleep=clock.sleep, **kwargs))


def test_pages_are_followed_with_next_token_and_yielded_oldest_first() -> None:
    since = NOW - timedelta(hours=6)
    recs = [record(f"e{i}", since + timedelta(minutes=i)) for i in range(5)]
    newest_first = [event(r) for r in reversed(recs)]
    stubs = Stubs()
    ct = stubs.stub("cloudtrail", "us-east-1")
    ct.add_response("lookup_events", {"Events": newest_first[:3], "NextToken": "page-2"}, params(since, NOW))
    ct.add_response("lookup_events", {"Events": newest_first[3:]}, params(since, NOW, "page-2"))
    items = run(stubs, since=since, until=None, regions=["us-east-1"])
    stubs.assert_done()
    assert [obj["eventID"] for _, _, obj in items] == ["e0", "e1", "e2", "e3", "e4"]
    assert [(label, n) for label, n, _ in items] == [("event-history:us-east-1", n) for n in range(1, 6)]
    assert items[0][2] == recs[0]  # the CloudTrailEvent string, parsed: the record itself


def test_regions_run_in_parallel_and_merge_by_time_deterministically() -> None:
    since = NOW - timedelta(hours=1)
    east = [record("east-1", since + timedelta(minutes=10)), record("east-2", since + timedelta(minutes=30))]
    west = [record("west-1", since + timedelta(minutes=20), region="eu-west-1"),
            record("west-2", since + timedelta(minutes=30), region="eu-west-1")]  # fmt: skip
    seen: list[RegionProgress] = []
    lock = threading.Lock()

    def progress(p: RegionProgress) -> None:
        with lock:
            seen.append(p)

    def once() -> list[str]:
        stubs = Stubs()
        stubs.stub("cloudtrail", "us-east-1").add_response(
            "lookup_events", {"Events": [event(r) for r in reversed(east)]}, params(since, NOW)
        )
        stubs.stub("cloudtrail", "eu-west-1").add_response(
            "lookup_events", {"Events": [event(r) for r in reversed(west)]}, params(since, NOW)
        )
        items = run(stubs, since=since, until=None, regions="us-east-1,eu-west-1", on_progress=progress)
        stubs.assert_done()
        return [obj["eventID"] for _, _, obj in items]

    # same time (minute 30) in both: the region listed first comes first
    assert once() == ["east-1", "west-1", "east-2", "west-2"]
    assert once() == ["east-1", "west-1", "east-2", "west-2"]
    assert {(p.region, p.done, p.events) for p in seen} == {("us-east-1", True, 2), ("eu-west-1", True, 2)}


def test_long_ranges_are_read_in_windows_oldest_first_without_duplicating_edge_events() -> None:
    since = NOW - timedelta(days=2)
    mid = since + timedelta(days=1)
    first = record("day1", since + timedelta(hours=1))
    edge = record("edge", mid)  # both windows' requests return it: StartTime and EndTime are inclusive
    second = record("day2", mid + timedelta(hours=1))
    stubs = Stubs()
    ct = stubs.stub("cloudtrail", "us-east-1")
    ct.add_response("lookup_events", {"Events": [event(edge), event(first)]}, params(since, mid))
    ct.add_response("lookup_events", {"Events": [event(second), event(edge)]}, params(mid, NOW))
    items = run(stubs, since=since, until=None, regions=["us-east-1"])
    stubs.assert_done()
    assert [obj["eventID"] for _, _, obj in items] == ["day1", "edge", "day2"]


def test_throttling_is_retried_with_backoff_without_sleeping() -> None:
    since = NOW - timedelta(hours=1)
    rec = record("e1", since + timedelta(minutes=5))
    stubs = Stubs()
    ct = stubs.stub("cloudtrail", "us-east-1")
    ct.add_client_error("lookup_events", service_error_code="ThrottlingException", http_status_code=400)
    ct.add_client_error("lookup_events", service_error_code="ThrottlingException", http_status_code=400)
    ct.add_response("lookup_events", {"Events": [event(rec)]}, params(since, NOW))
    clock = FakeClock()
    items = run(stubs, clock, since=since, until=None, regions=["us-east-1"])
    stubs.assert_done()
    assert [obj["eventID"] for _, _, obj in items] == ["e1"]
    assert 1.0 in clock.sleeps and 2.0 in clock.sleeps  # exponential backoff: 1 s, then 2 s


def test_throttling_that_never_ends_is_an_error_with_a_hint() -> None:
    since = NOW - timedelta(hours=1)
    stubs = Stubs()
    ct = stubs.stub("cloudtrail", "us-east-1")
    for _ in range(3):
        ct.add_client_error("lookup_events", service_error_code="ThrottlingException", http_status_code=400)
    with pytest.raises(EventHistoryError, match=r"us-east-1: LookupEvents failed: .*still throttled after 2 retries"):
        run(stubs, since=since, until=None, regions=["us-east-1"], max_retries=2)


def test_access_denied_names_the_permission() -> None:
    stubs = Stubs()
    stubs.stub("cloudtrail", "eu-west-1").add_client_error(
        "lookup_events", service_error_code="AccessDeniedException", service_message="nope", http_status_code=400
    )
    with pytest.raises(EventHistoryError, match=r"eu-west-1: .*AccessDeniedException.*cloudtrail:LookupEvents"):
        run(stubs, since=NOW - timedelta(hours=1), until=None, regions=["eu-west-1"])


def test_token_bucket_keeps_to_two_requests_per_second() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(20):
        bucket.acquire()
        times.append(clock())
    # never more than 2 acquisitions in any one-second span
    assert all(times[i + 2] - times[i] >= 1.0 - 1e-9 for i in range(len(times) - 2))
    assert times[-1] == pytest.approx(9.5)  # one every half second


def test_every_request_goes_through_the_region_bucket() -> None:
    since = NOW - timedelta(hours=1)
    stubs = Stubs()
    ct = stubs.stub("cloudtrail", "us-east-1")
    for i in range(6):
        resp: dict[str, Any] = {"Events": []}
        if i < 5:
            resp["NextToken"] = f"t{i + 1}"
        ct.add_response("lookup_events", resp, params(since, NOW, f"t{i}" if i else None))
    clock = FakeClock()
    run(stubs, clock, since=since, until=None, regions=["us-east-1"])
    stubs.assert_done()
    assert clock() == pytest.approx(2.5)  # 6 requests at 2/s, evenly spaced: the last one at t=2.5 s


def test_all_regions_are_the_enabled_ones() -> None:
    since = NOW - timedelta(hours=1)
    stubs = Stubs()
    stubs.stub("ec2", "us-east-1").add_response(
        "describe_regions",
        {"Regions": [
            {"RegionName": "us-east-1", "Endpoint": "ec2.us-east-1.amazonaws.com", "OptInStatus": "opt-in-not-required"},
            {"RegionName": "ap-east-1", "Endpoint": "ec2.ap-east-1.amazonaws.com", "OptInStatus": "opted-in"},
        ]},
        {"AllRegions": False},
    )  # fmt: skip
    for region in ("us-east-1", "ap-east-1"):
        stubs.stub("cloudtrail", region).add_response("lookup_events", {"Events": []}, params(since, NOW))
    assert run(stubs, since=since, until=None, regions="all") == []
    stubs.assert_done()


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        (NOW - MAX_LOOKBACK - timedelta(days=1), None, "Event History keeps 90 days"),
        (NOW - timedelta(hours=1), NOW - timedelta(hours=2), "empty time range"),
    ],
)
def test_bad_ranges_are_refused_before_any_call(since: datetime, until: datetime | None, message: str) -> None:
    stubs = Stubs()
    with pytest.raises(EventHistoryError, match=message):
        run(stubs, since=since, until=until, regions=["us-east-1"])
    assert stubs.clients == {}


def test_exactly_ninety_days_is_allowed() -> None:
    since = NOW - MAX_LOOKBACK
    stubs = Stubs()
    ct = stubs.stub("cloudtrail", "us-east-1")
    spans = [(since + timedelta(days=i), since + timedelta(days=i + 1)) for i in range(90)]
    for start, end in spans:
        ct.add_response("lookup_events", {"Events": []}, params(start, end))
    assert run(stubs, since=since, until=None, regions=["us-east-1"]) == []
    stubs.assert_done()


def test_unreadable_cloudtrail_event_is_a_skipped_input_and_events_are_judged(
    stop_logging_example: dict[str, Any],
) -> None:
    since = NOW - timedelta(hours=1)
    rec = {**bare(stop_logging_example), "eventTime": (since + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    broken = {**event(record("bad", since + timedelta(minutes=1))), "CloudTrailEvent": "{not json"}
    stubs = Stubs()
    stubs.stub("cloudtrail", "us-east-1").add_response(
        "lookup_events", {"Events": [event(rec), broken]}, params(since, NOW)
    )
    clock = FakeClock()
    problems: list[Problem] = []
    verdicts: list[str] = []
    items = iter_event_history(
        stubs.factory, since=since, until=None, regions=["us-east-1"], now=NOW, clock=clock, sleep=clock.sleep
    )
    summary = replay(items, Evaluator(), on_problem=problems.append, on_result=lambda r: verdicts.append(r.verdict))
    assert (summary.events, summary.rejected) == (1, 1)
    assert verdicts == ["remediate"]
    assert str(problems[0]).startswith("event-history:us-east-1:1: CloudTrailEvent is not valid JSON")


def test_a_session_is_accepted_as_the_source() -> None:
    """Anything with ``.client(service, region_name=...)`` (a boto3 Session, e.g. from --profile) is a source."""
    stubs = Stubs()
    made: list[tuple[str, str]] = []

    class Session:
        def client(self, service: str, region_name: str) -> Any:
            made.append((service, region_name))
            stubs.stub(service, region_name).add_response(
                "lookup_events", {"Events": []}, params(NOW - timedelta(hours=1), NOW)
            )
            return stubs.clients[(service, region_name)]

    clock = FakeClock()
    out = list(
        iter_event_history(
            Session(), since=NOW - timedelta(hours=1), until=None, regions=["sa-east-1"], now=NOW,
            clock=clock, sleep=clock.sleep,
        )
    )  # fmt: skip
    assert out == []
    assert made == [("cloudtrail", "sa-east-1")]
    stubs.assert_done()
