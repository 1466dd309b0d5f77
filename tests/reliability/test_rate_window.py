"""The per-resource rate limit is a sliding window over the injected clock, never the machine's.

A fixed hourly counter allowed ``2 * limit`` actions across an hour boundary (``limit`` at 10:59:59 and
``limit`` more at 11:00:01). The limiter counts the claims of the last 3600 seconds instead, with the
same DynamoDB cost: one ``UpdateItem`` per claim, one per give-back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from frozen_clock import FROZEN_AT, FrozenClock
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from trailguard_engine.state import (
    PRUNE_HOURS,
    SLIDING_WINDOW_SECONDS,
    WINDOW_SECONDS,
    RateLimiter,
)

TABLE = "trailguard-state"
HOUR_END = (FROZEN_AT // WINDOW_SECONDS + 1) * WINDOW_SECONDS  # 13:00:00, the next fixed-hour boundary


def _table() -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        yield _table()


def test_a_burst_on_each_side_of_the_hour_boundary_gets_one_budget(ddb: Any) -> None:
    """The fixed counter allowed 2 at 12:59:59 and 2 more at 13:00:01; the sliding window allows 2 in all."""
    clock = FrozenClock(HOUR_END - 1)
    limiter = RateLimiter(table=TABLE, client=ddb, clock=clock)
    before = [limiter.hit("acct/bucket:b", 2) for _ in range(2)]
    clock.advance(2)  # 13:00:01: a new fixed hour, the same sliding hour
    after = limiter.hit("acct/bucket:b", 2)
    assert [d.allowed for d in before] == [True, True]
    assert (after.allowed, after.count, after.window) == (False, 3, before[0].window + 1)


def test_the_budget_comes_back_only_after_3600_seconds_have_passed(ddb: Any) -> None:
    clock = FrozenClock()
    limiter = RateLimiter(table=TABLE, client=ddb, clock=clock)
    assert limiter.hit("r", 1).allowed
    clock.advance(SLIDING_WINDOW_SECONDS - 1)
    refused = limiter.hit("r", 1)
    assert not refused.allowed
    assert refused.resumes_at() == FROZEN_AT + SLIDING_WINDOW_SECONDS
    limiter.release("r", refused.window, refused.stamp)
    clock.advance(1)  # exactly 3600 s after the first action: still inside a closed 3600-second span
    again = limiter.hit("r", 1)
    assert not again.allowed
    limiter.release("r", again.window, again.stamp)
    clock.advance(1)
    assert limiter.hit("r", 1).allowed


def test_release_gives_back_exactly_its_own_claim(ddb: Any) -> None:
    clock = FrozenClock()
    limiter = RateLimiter(table=TABLE, client=ddb, clock=clock)
    kept = limiter.hit("r", 2, caller="human", principal="arn:aws:iam::111122223333:user/alice")
    given_back = limiter.hit("r", 2, caller="iac", principal="arn:aws:iam::111122223333:role/deploy")
    limiter.release("r", given_back.window, given_back.stamp)
    d = limiter.hit("r", 2, caller="unknown", principal="arn:aws:iam::111122223333:role/other")
    assert (d.allowed, d.count) == (True, 2)
    assert [(s.caller, s.principal) for s in d.others] == [("human", "arn:aws:iam::111122223333:user/alice")]
    assert kept.stamp in {s.encode() for s in d.recent}


def test_the_item_expires_and_old_hours_are_pruned_by_the_clock(ddb: Any) -> None:
    clock = FrozenClock()
    limiter = RateLimiter(table=TABLE, client=ddb, clock=clock)
    first = limiter.hit("r", 1)
    item = ddb.get_item(TableName=TABLE, Key={"id": {"S": "rate#r"}})["Item"]
    assert int(item["expiration"]["N"]) == int(FROZEN_AT) + 2 * 3600
    assert set(item) == {"id", "expiration", f"h{first.window}"}
    clock.advance(3 * WINDOW_SECONDS)
    later = limiter.hit("r", 1)
    assert (later.allowed, later.count) == (True, 1)
    item = ddb.get_item(TableName=TABLE, Key={"id": {"S": "rate#r"}})["Item"]
    assert set(item) == {"id", "expiration", f"h{later.window}"}  # the set of 3 hours ago is gone
    assert int(item["expiration"]["N"]) == int(clock()) + 2 * 3600
    assert PRUNE_HOURS >= 3


def test_a_claim_and_a_give_back_cost_one_dynamodb_call_each(ddb: Any) -> None:
    """The same cost as the fixed hourly counter: the previous hour's claims ride along in one item."""
    calls: Counter[str] = Counter()
    ddb.meta.events.register("before-call.dynamodb", lambda model, **_: calls.update([model.name]))
    clock = FrozenClock(HOUR_END - 1)
    limiter = RateLimiter(table=TABLE, client=ddb, clock=clock)
    d = limiter.hit("r", 3)
    assert calls == Counter({"UpdateItem": 1})
    clock.advance(2)  # across the boundary: still one call, and it sees the claim of the previous hour
    d2 = limiter.hit("r", 3)
    assert d2.count == 2
    assert calls == Counter({"UpdateItem": 2})
    limiter.release("r", d.window, d.stamp)
    assert calls == Counter({"UpdateItem": 3})


def test_the_limiter_has_no_default_wall_clock() -> None:
    with pytest.raises(TypeError):
        RateLimiter(table=TABLE, client=object())  # type: ignore[call-arg]


# A claim: (seconds after the start, whether the action then changed nothing and gives the claim back).
_claims = st.lists(st.tuples(st.integers(0, 4 * 3600), st.booleans()), min_size=1, max_size=12)


def test_never_more_than_limit_actions_in_any_3600_seconds(ddb: Any) -> None:
    """For every sorted sequence of claim times: at most ``limit`` kept claims in any closed 3600 s span,
    and a claim is refused only when ``limit`` kept claims really are in the 3600 s before it (exact)."""
    runs = iter(range(10**6))  # one resource per example: one moto table for the whole property

    @settings(max_examples=30)
    @given(claims=_claims, limit=st.integers(1, 4), start=st.integers(0, 3599))
    def prop(claims: list[tuple[int, bool]], limit: int, start: int) -> None:
        base = HOUR_END - 3600 + start  # anywhere in an hour, so runs straddle boundaries at every offset
        resource = f"acct/region/sg:sg-{next(runs)}"
        clock = FrozenClock(base)
        limiter = RateLimiter(table=TABLE, client=ddb, clock=clock)
        kept: list[int] = []
        for offset, gives_back in sorted(claims):
            clock.now = base + offset
            d = limiter.hit(resource, limit)
            in_window = [t for t in kept if t >= offset - SLIDING_WINDOW_SECONDS]
            assert d.allowed == (len(in_window) < limit), (offset, kept)
            if d.allowed and not gives_back:
                kept.append(offset)
            else:
                limiter.release(resource, d.window, d.stamp)
        for s in kept:
            assert sum(1 for t in kept if s <= t <= s + SLIDING_WINDOW_SECONDS) <= limit

    prop()
