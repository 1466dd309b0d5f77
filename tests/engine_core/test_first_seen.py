"""First-seen ("new terms") rules in the gate (trailguard_engine.window): parameter, learning, history, terms,
redelivery, bounds, failures, and the DynamoDB store against the memory one.

Every test injects its clock or trusts event times (as replay does); none reads the wall clock.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.exceptions import CatalogError
from trailguard_engine.model import Finding, Rule
from trailguard_engine.window import (
    DAY,
    FIRST_SEEN_ITEMS_PARAM,
    MAX_TERMS_PER_EVENT,
    SEEN_PREFIX,
    DynamoWindowStore,
    FirstSeen,
    MemoryWindowStore,
    ThresholdGate,
    first_seen_terms,
    validate_first_seen,
)
from window_helpers import T0, TABLE, first_seen_rule, secret_read

RULE = first_seen_rule()
RULES = {RULE.id: RULE}


# --------------------------------------------------------------------------- #
# The parameter
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "expected an object"),
        ({"history_days": 30}, "learning_days: expected an integer"),
        ({"history_days": 0, "learning_days": 1}, "history_days: expected an integer from 1 to 90"),
        ({"history_days": 91, "learning_days": 1}, "history_days"),
        ({"history_days": True, "learning_days": 1}, "history_days"),
        ({"history_days": 30, "learning_days": 31}, "learning_days: expected an integer from 0 to 30"),
        ({"history_days": 30, "learning_days": "7"}, "learning_days"),
        ({"history_days": 30, "learning_days": 7, "by": "x"}, r"unknown keys \['by'\]"),
    ],
)
def test_bad_first_seen_is_refused_with_a_clear_message(value: Any, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        validate_first_seen(value)


def test_catalog_load_keeps_first_seen_rules_alert_only_and_single_gated() -> None:
    assert validate_first_seen(RULE.params["first_seen"]) == FirstSeen(30, 14)
    remediating = {"action": "x", "permissions": ["iam:DeleteAccessKey"], "description": "x"}
    with pytest.raises(CatalogError, match="first-seen rule alerts only"):
        first_seen_rule(remediation=remediating)
    with pytest.raises(CatalogError, match="first-seen rule alerts only"):
        first_seen_rule(default_mode="remediate")
    both = {
        "first_seen": {"history_days": 30, "learning_days": 0},
        "threshold": {"count": 2, "window_seconds": 60, "by": "principal"},
    }
    with pytest.raises(CatalogError, match="cannot be combined"):
        first_seen_rule(params=both)
    with pytest.raises(CatalogError, match=r"fs: params.first_seen.history_days"):
        first_seen_rule(params={"first_seen": {"history_days": 0, "learning_days": 0}})


def test_terms_are_the_decisions_items_normalised_or_the_principal_alone() -> None:
    assert first_seen_terms({}) == ([""], "")
    assert first_seen_terms({FIRST_SEEN_ITEMS_PARAM: ["b", " a ", "", 3, "a"]}) == (["a", "b"], "")
    many = [f"t{i:03d}" for i in range(MAX_TERMS_PER_EVENT + 5)]
    terms, more = first_seen_terms({FIRST_SEEN_ITEMS_PARAM: many})
    assert len(terms) == MAX_TERMS_PER_EVENT and "25 terms" in more


# --------------------------------------------------------------------------- #
# The gate
# --------------------------------------------------------------------------- #
class Gate:
    """The gate on one rule, fed findings as the evaluator makes them (alert: the decision qualified it)."""

    def __init__(self, store: Any = None, clock: Any = None, rule: Rule = RULE) -> None:
        self.store = store if store is not None else MemoryWindowStore()
        self.metrics: list[str] = []
        self.rule = rule
        self.gate = ThresholdGate(self.store, clock=clock, metric=lambda name, r, a: self.metrics.append(name))

    def judge(self, env: dict[str, Any], items: list[str] | None = None) -> Finding:
        params = {FIRST_SEEN_ITEMS_PARAM: items} if items is not None else {}
        f = Finding(self.rule.id, self.rule.severity, "alert", None, "read a secret", params=params)
        (out,) = self.gate.apply(CloudTrailEvent(to_envelope(env)), [f], {self.rule.id: self.rule})
        return out


def read(
    t: float, *, role: str = "DevOps", session: str = "alice", n: int = 1, eid: str | None = None
) -> dict[str, Any]:
    return secret_read(n, t, role=role, session=session, event_id=eid)


def test_nothing_alerts_while_learning_and_what_was_learned_stays_known() -> None:
    g = Gate()
    assert g.judge(read(T0, role="App")).decision == "skip"  # starts the learning period
    learning = g.judge(read(T0 + 13 * DAY, role="DevOps"))
    assert learning.decision == "skip" and "learning period until" in learning.reason
    # After the learning period: a principal learned during it is known, a new one fires.
    known = g.judge(read(T0 + 15 * DAY, role="DevOps"))
    assert known.decision == "skip" and "not new" in known.reason
    new = g.judge(read(T0 + 15 * DAY + 60, role="Intruder"))
    assert new.decision == "alert" and "first time for role/111122223333/intruder" in new.reason
    assert new.params["first_seen"] == {"new": [""], "history_days": 30}
    assert g.metrics == ["FirstSeenLearning", "FirstSeenLearning", "FirstSeenKnown", "FirstSeenFired"]


def test_a_term_not_seen_for_longer_than_the_history_is_new_again() -> None:
    g = Gate(rule=first_seen_rule(learning=0))
    assert g.judge(read(T0)).decision == "alert"
    assert g.judge(read(T0 + 29 * DAY)).decision == "skip"
    assert g.judge(read(T0 + 58 * DAY)).decision == "skip"  # seen 29 days before: the history moves on
    assert g.judge(read(T0 + 89 * DAY)).decision == "alert"  # 31 days since the last sighting


def test_every_session_of_a_role_is_one_identity() -> None:
    g = Gate(rule=first_seen_rule(learning=0))
    assert g.judge(read(T0, session="a")).decision == "alert"
    assert g.judge(read(T0 + 60, session="b")).decision == "skip"


def test_one_new_item_among_known_ones_fires_and_names_it() -> None:
    g = Gate(rule=first_seen_rule(learning=0))
    assert g.judge(read(T0, n=1), ["arn:a", "arn:b"]).decision == "alert"
    assert g.judge(read(T0 + 60, n=2), ["arn:b", "arn:a"]).decision == "skip"
    f = g.judge(read(T0 + 120, n=3), ["arn:a", "arn:c", "arn:b"])
    assert f.decision == "alert" and f.params["first_seen"]["new"] == ["arn:c"]


def test_the_firing_event_redelivered_fires_again_and_a_known_one_stays_known() -> None:
    g = Gate(rule=first_seen_rule(learning=0))
    first = read(T0, eid="e-first-0001")
    assert g.judge(first).decision == "alert"
    assert g.judge(copy.deepcopy(first)).decision == "alert"  # Lambda retry: the idempotency layer keeps one alert
    second = read(T0 + 60, eid="e-second-0002")
    assert g.judge(second).decision == "skip"
    assert g.judge(copy.deepcopy(second)).decision == "skip"


def test_an_event_older_than_a_recorded_sighting_is_not_new() -> None:
    g = Gate(rule=first_seen_rule(learning=0))
    assert g.judge(read(T0 + 3600)).decision == "alert"
    assert g.judge(read(T0)).decision == "skip"  # delivered late, out of order


def test_more_terms_than_checked_alert_even_when_the_checked_ones_are_known() -> None:
    g = Gate(rule=first_seen_rule(learning=0))
    items = [f"arn:secret-{i:03d}" for i in range(MAX_TERMS_PER_EVENT + 1)]
    g.judge(read(T0), items[:MAX_TERMS_PER_EVENT])
    f = g.judge(read(T0 + 60), items)
    assert f.decision == "alert" and "21 terms, 20 checked" in f.reason


def test_a_broken_state_store_alerts_the_event_on_its_own() -> None:
    class Broken(MemoryWindowStore):
        def touch(self, *a: Any, **k: Any) -> Any:
            raise RuntimeError("ProvisionedThroughputExceededException")

    g = Gate(store=Broken(), rule=first_seen_rule(learning=0))
    f = g.judge(read(T0))
    assert f.decision == "alert" and "first-seen state unavailable" in f.reason
    assert g.metrics == ["FirstSeenStateErrors"]


def test_a_skipped_finding_is_not_counted_and_other_rules_pass_through() -> None:
    g = Gate()
    f = Finding(RULE.id, "MEDIUM", "skip", None, "not a secret read")
    other = Finding("other", "HIGH", "alert", None, "x")
    out = g.gate.apply(CloudTrailEvent(to_envelope(read(T0))), [f, other], RULES)
    assert out == [f, other] and g.store.calls == 0


def test_the_learning_start_is_read_once_per_container_after_learning() -> None:
    starts: list[float] = []

    class Counting(MemoryWindowStore):
        def start(self, item_id: str, at: float) -> float:
            starts.append(at)
            return super().start(item_id, at)

    g = Gate(store=Counting())
    g.judge(read(T0))
    g.judge(read(T0 + DAY, role="R"))
    for i in range(3):
        g.judge(read(T0 + 20 * DAY + i, role=f"R{i}"))
    assert starts == [T0, T0 + DAY, T0 + 20 * DAY]  # read while learning, and once to learn it is over


# --------------------------------------------------------------------------- #
# DynamoDB against memory
# --------------------------------------------------------------------------- #
def _sequence() -> list[tuple[dict[str, Any], list[str] | None]]:
    seq: list[tuple[dict[str, Any], list[str] | None]] = []
    for day in range(0, 40, 3):
        seq.append((read(T0 + day * DAY, role="App", eid=f"app-{day:04d}"), None))
        seq.append((read(T0 + day * DAY + 60, role="DevOps", eid=f"ops-{day:04d}"), [f"arn:s{day % 9}"]))
        if day % 9 == 0:
            seq.append((read(T0 + day * DAY + 60, role="DevOps", eid=f"ops-{day:04d}"), [f"arn:s{day % 9}"]))
    seq.append((read(T0 + 80 * DAY, role="App", eid="app-late"), None))
    return seq


def test_dynamodb_and_memory_give_the_same_verdicts(ddb: Any) -> None:
    clock = [T0]
    mem = Gate(clock=lambda: clock[0])
    dyn = Gate(store=DynamoWindowStore(table=TABLE, client=ddb), clock=lambda: clock[0])
    got_mem, got_dyn = [], []
    for env, items in _sequence():
        clock[0] = _time(env) + 30  # delivered 30 s after the call
        got_mem.append(mem.judge(env, items).decision)
        got_dyn.append(dyn.judge(env, items).decision)
    assert got_mem == got_dyn
    assert "alert" in got_mem and got_mem.count("skip") > got_mem.count("alert")
    assert mem.metrics == dyn.metrics
    items = ddb.scan(TableName=TABLE)["Items"]
    start = [i for i in items if i["id"]["S"] == f"{SEEN_PREFIX}{RULE.id}#start"]
    assert len(start) == 1 and "expiration" not in start[0]  # the learning start never expires
    terms = [i for i in items if i["id"]["S"] != start[0]["id"]["S"]]
    assert terms and all(i["id"]["S"].startswith(f"{SEEN_PREFIX}{RULE.id}#111122223333#") for i in terms)
    assert all(int(i["expiration"]["N"]) > float(i["l"]["N"]) + 30 * DAY for i in terms)


def test_calls_per_event_on_dynamodb(ddb: Any) -> None:
    store = DynamoWindowStore(table=TABLE, client=ddb)
    rule = first_seen_rule(learning=0)
    g = Gate(store=store, rule=rule, clock=lambda: T0 + 3600)
    calls = []
    for env, items in ((read(T0), ["a"]), (read(T0 + 60), ["a"]), (read(T0 + 120), ["a", "b"])):
        before = store.calls
        g.judge(env, items)
        calls.append(store.calls - before)
    assert calls == [2, 1, 3]  # new term: touch + mark; known: touch; one known and one new: 2 touches + 1 mark


def _time(env: dict[str, Any]) -> float:
    from trailguard_engine.window import parse_time

    t = parse_time(env["detail"]["eventTime"])
    assert t is not None
    return t


def test_the_memory_store_drops_only_expired_items_and_keeps_the_learning_start() -> None:
    store = MemoryWindowStore()
    store.SWEEP_EVERY = 3  # type: ignore[misc]  # sweep often
    g = Gate(store=store)
    g.judge(read(T0, role="A"))  # learning starts
    for i in range(10):  # others, within A's history: sweeps run, A's term and the start stay
        g.judge(read(T0 + 15 * DAY + i, role=f"B{i}"))
    assert g.judge(read(T0 + 16 * DAY, role="A")).decision == "skip"
    for i in range(10):  # much later: A's term has expired and is swept; the learning start stays
        g.judge(read(T0 + 100 * DAY + i, role=f"C{i}"))
    assert f"{SEEN_PREFIX}{RULE.id}#start" in store.items
    assert len(store.items) <= 1 + 10 + 1
    assert g.judge(read(T0 + 100 * DAY + 60, role="A")).decision == "alert"


def test_threshold_counts_survive_a_memory_sweep() -> None:
    """Regression: the memory store's sweep used to drop every item not written by the newest event."""
    from window_helpers import SECRETS, Judge
    from window_helpers import secret_read as sread

    store = MemoryWindowStore()
    store.SWEEP_EVERY = 2  # type: ignore[misc]
    judge = Judge(store=store)
    decisions = []
    for i in range(10):  # 10 distinct secrets by DevOps, interleaved with another role's reads
        judge.finding(sread(100 + i, T0 + 10 * i + 5, role="Other"), SECRETS)
        decisions.append(judge.finding(sread(i, T0 + 10 * i + 6), SECRETS).decision)  # a sweep runs before this add
    assert decisions[-1] == "alert" and decisions[:-1] == ["skip"] * 9
