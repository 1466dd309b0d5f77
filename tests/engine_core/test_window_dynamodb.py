"""The DynamoDB window store (moto) against the in-memory one: same verdicts, bounded items, calls per event."""

from __future__ import annotations

import json
from typing import Any

import pytest
from trailguard_engine.window import ITEM_PREFIX, DynamoWindowStore, MemoryWindowStore, parse_time
from window_helpers import PASSWORD, SECRETS, SSM, T0, TABLE, USERDATA, Judge, distinct_copies, secret_read


def _window_items(client: Any) -> list[dict[str, Any]]:
    items = client.scan(TableName=TABLE)["Items"]
    return [i for i in items if i["id"]["S"].startswith(ITEM_PREFIX)]


def _sequence() -> list[dict[str, Any]]:
    """Two principals, bursts, repeats, redeliveries, a pause longer than the kept span, then more."""
    seq = []
    for i in range(14):
        seq.append(secret_read(i, T0 + 20 * i))
        if i % 4 == 0:
            seq.append(secret_read(i, T0 + 20 * i))  # redelivered
        seq.append(secret_read(i, T0 + 20 * i + 5, role="Batch", secret="prod/one"))
    for i in range(12):
        seq.append(secret_read(500 + i, T0 + 3 * 3600 + 30 * i))  # after a long pause: a new burst
    return seq


def test_dynamodb_and_memory_give_the_same_verdicts(ddb: Any) -> None:
    clock = [T0]
    mem = Judge(clock=lambda: clock[0])
    dyn = Judge(store=DynamoWindowStore(table=TABLE, client=ddb), clock=lambda: clock[0])
    got_mem, got_dyn = [], []
    for env in _sequence():
        clock[0] = json_time(env) + 30  # the engine sees each event half a minute after it happened
        a, b = mem.finding(env, SECRETS), dyn.finding(env, SECRETS)
        got_mem.append((a.decision, a.reason.split(";")[0]))
        got_dyn.append((b.decision, b.reason.split(";")[0]))
    assert got_mem == got_dyn
    assert [d for d, _ in got_dyn].count("alert") == 2  # the first burst, then the one after the pause
    assert sum("counted 1 of 10" in r and "batch" in r for _, r in got_dyn) == 14  # one secret, read 14 times


def json_time(env: dict[str, Any]) -> float:
    t = parse_time(env["detail"]["eventTime"])
    assert t is not None
    return t


def test_one_call_per_qualifying_event_two_for_the_one_that_fires(ddb: Any) -> None:
    store = DynamoWindowStore(table=TABLE, client=ddb)
    judge = Judge(store=store, clock=lambda: T0 + 60)
    calls = []
    for i in range(12):
        before = store.calls
        judge.finding(secret_read(i, T0 + i), SECRETS)
        calls.append(store.calls - before)
    # the 10th fires (one more, conditional, update); the later ones find their bucket full (refused add, then
    # the refused conditional fire): never more than two calls
    assert calls == [1] * 9 + [2] + [2, 2]
    print(f"DynamoDB calls per qualifying event: {calls}")
    judge2 = Judge(store=store, clock=lambda: T0 + 600)
    spread = []
    for i in range(12):
        before = store.calls
        judge2.finding(secret_read(100 + i, T0 + 400 + 30 * i, role="Other"), SECRETS)
        spread.append(store.calls - before)
    assert spread == [1] * 9 + [2] + [1, 1]  # spread over buckets: the later ones read the firing marker


def test_item_has_ttl_and_stays_small_under_a_flood(ddb: Any) -> None:
    clock = [T0]
    store = DynamoWindowStore(table=TABLE, client=ddb)
    judge = Judge(store=store, clock=lambda: clock[0])
    for i in range(400):
        clock[0] = T0 + 7 * i
        judge.finding(secret_read(i, clock[0]), SECRETS)
    (item,) = _window_items(ddb)
    assert int(item["expiration"]["N"]) > clock[0]
    buckets = {k: v["SS"] for k, v in item.items() if k.startswith("b")}
    assert all(len(v) <= 10 for v in buckets.values())
    size = len(json.dumps(item))
    assert size < 8_000, size
    assert item["principal"]["S"] == "role/111122223333/devops"


def test_two_events_racing_to_fire_fire_once(ddb: Any) -> None:
    store = DynamoWindowStore(table=TABLE, client=ddb)
    item_id = f"{ITEM_PREFIX}r#a#p"
    assert store.fire(item_id, T0, "e1", T0 - 600)
    assert not store.fire(item_id, T0 + 1, "e2", T0 + 1 - 600)  # the other one lost
    assert store.fire(item_id, T0, "e1", T0 - 600)  # the winner's redelivery may fire again
    assert store.fire(item_id, T0 + 700, "e3", T0 + 100)  # a window later
    mem = MemoryWindowStore()
    assert [mem.fire(item_id, T0, "e1", T0 - 600), mem.fire(item_id, T0 + 1, "e2", T0 - 599)] == [True, False]


def test_a_full_bucket_fires_without_growing(ddb: Any) -> None:
    store = DynamoWindowStore(table=TABLE, client=ddb)
    judge = Judge(store=store, clock=lambda: T0 + 10)
    got = [judge.finding(secret_read(i, T0), SECRETS).decision for i in range(15)]
    assert got.count("alert") == 1
    (item,) = _window_items(ddb)
    (bucket,) = [v["SS"] for k, v in item.items() if k.startswith("b")]
    assert len(bucket) == 10  # the full bucket refused the five later digests


@pytest.mark.parametrize("rule", [SECRETS, SSM, PASSWORD, USERDATA], ids=lambda r: r.id)
def test_every_threshold_rule_fires_on_its_positives_repeated_over_distinct_resources(ddb: Any, rule: Any) -> None:
    """Each rule's per-event positives, varied over distinct resources, add up to one alert via DynamoDB."""
    judge = Judge(store=DynamoWindowStore(table=TABLE, client=ddb), clock=lambda: T0 + 60)
    got = [judge.finding(e, rule).decision for e in distinct_copies(rule, 30)]
    assert got.count("alert") == 1
