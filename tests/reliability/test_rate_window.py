"""The rate limiter's hourly windows follow the injected clock, never the machine's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from frozen_clock import FROZEN_AT, FrozenClock
from moto import mock_aws
from trailguard_engine.state import WINDOW_SECONDS, RateLimiter

TABLE = "trailguard-state"


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def test_hits_in_one_window_count_together_until_the_clock_crosses_the_hour(ddb: Any) -> None:
    clock = FrozenClock()
    limiter = RateLimiter(table=TABLE, client=ddb, clock=clock)
    first = [limiter.hit("acct/bucket:b", 2) for _ in range(3)]
    assert [(d.count, d.allowed) for d in first] == [(1, True), (2, True), (3, False)]
    assert len({d.window for d in first}) == 1
    clock.advance(WINDOW_SECONDS / 2 - 1)  # 10:59:59, still the same window
    assert limiter.hit("acct/bucket:b", 2).count == 4
    clock.advance(1)  # 11:00:00: a new window starts exactly at the boundary
    nxt = limiter.hit("acct/bucket:b", 2)
    assert (nxt.count, nxt.allowed, nxt.window) == (1, True, first[0].window + 1)


def test_the_window_and_its_expiry_come_from_the_clock(ddb: Any) -> None:
    limiter = RateLimiter(table=TABLE, client=ddb, clock=FrozenClock())
    window = limiter.hit("r", 1).window
    assert window == int(FROZEN_AT // WINDOW_SECONDS)
    item = ddb.get_item(TableName=TABLE, Key={"id": {"S": f"rate#{window}#r"}})["Item"]
    assert int(item["expiration"]["N"]) == (window + 2) * WINDOW_SECONDS


def test_the_limiter_has_no_default_wall_clock() -> None:
    with pytest.raises(TypeError):
        RateLimiter(table=TABLE, client=object())  # type: ignore[call-arg]
