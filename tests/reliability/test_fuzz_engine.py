"""Fuzzing the decision path: mutated and generated events never crash it and never remediate when malformed.

The seeds are every example event of every catalog rule; hypothesis mutates
them (drops fields, swaps types, nulls, huge and unicode strings, unknown
event names) and also generates events from scratch: up to 10,500 inputs per
run (``max_examples``). The volume is printed, never asserted: how many examples
hypothesis tries depends on its search, and under ``CI`` it is the same every run.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trailguard_engine.catalog import load_catalog
from trailguard_engine.evaluate import DECISION_ERROR, Evaluator
from trailguard_engine.exceptions import RejectedEvent
from trailguard_engine.model import EventResult
from trailguard_engine.runtime_config import RuntimeConfig

SEEDS: list[dict[str, Any]] = [e for r in load_catalog() for e in (*r.examples_positive, *r.examples_negative)]
# Every rule in remediate mode, so the property is tested where it matters most.
EVALUATOR = Evaluator(cfg=RuntimeConfig(mode_override="remediate"))
STATS = {"judged": 0, "rejected": 0, "remediate": 0}

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF), max_size=30),
    st.just("x" * 100_000),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths(v, (*prefix, i))
    return out


def mutate(event: dict, path: tuple, action: str, value: Any) -> dict:
    ev = copy.deepcopy(event)
    parent = ev
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "drop":
        if isinstance(parent, dict):
            parent.pop(last, None)
        else:
            parent.pop(last)
    elif action == "rename" and isinstance(parent, dict):
        parent[f"{last}Unknown"] = parent.pop(last)
    else:
        parent[last] = value
    return ev


ACCOUNT = re.compile(r"^\d{12}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


def well_formed_for_action(envelope: dict) -> bool:
    """An independent statement of what a remediable event must look like."""
    d = envelope.get("detail")
    account = envelope.get("account") or (d.get("recipientAccountId") if isinstance(d, dict) else None)
    region = envelope.get("region") or (d.get("awsRegion") if isinstance(d, dict) else None)
    return (
        isinstance(d, dict)
        and isinstance(d.get("eventID"), str)
        and bool(d["eventID"])
        and isinstance(account, str)
        and bool(ACCOUNT.match(account))
        and isinstance(region, str)
        and bool(REGION.match(region))
        and isinstance(d.get("userIdentity"), dict)
        and not d.get("errorCode")
    )


def judge(obj: Any) -> EventResult | None:
    try:
        result = EVALUATOR.evaluate(obj)
    except RejectedEvent as exc:
        assert str(exc), "a rejection must say why"
        STATS["rejected"] += 1
        return None
    STATS["judged"] += 1
    assert result.verdict in ("remediate", "alert", "record", "none")
    for f in result.findings:
        assert f.decision in ("remediate", "alert", "skip")
        assert isinstance(f.reason, str) and f.reason
        assert not f.reason.startswith(DECISION_ERROR), f"decision function raised: {f.reason}"
        if f.decision == "remediate":
            STATS["remediate"] += 1
            assert f.action, "a remediation without an action"
            assert well_formed_for_action(obj if "detail" in obj else {"detail": obj}), (
                f"remediated a malformed event: {f}"
            )
            assert all(isinstance(k, str) for k in f.params)
    return result


def _total() -> int:
    return STATS["judged"] + STATS["rejected"]


@settings(max_examples=7_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def _mutated_catalog_examples(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(SEEDS))
    n = data.draw(st.integers(min_value=1, max_value=4))
    ev = seed
    for _ in range(n):
        ps = paths(ev)
        if not ps:
            break
        path = data.draw(st.sampled_from(ps))
        action = data.draw(st.sampled_from(["drop", "replace", "rename"]))
        ev = mutate(ev, path, action, data.draw(junk) if action == "replace" else None)
    if data.draw(st.booleans()):  # also judge the bare record form
        judge(ev.get("detail") if isinstance(ev, dict) else ev)
    judge(ev)


cloudtrail_record = st.fixed_dictionaries(
    {
        "eventName": st.one_of(
            st.sampled_from(sorted({s["detail"]["eventName"] for s in SEEDS})), st.text(max_size=40)
        ),
        "eventSource": st.one_of(
            st.sampled_from(sorted({s["detail"]["eventSource"] for s in SEEDS})), st.text(max_size=40)
        ),
    },
    optional={
        # a bare object is a record only with a time and an id (events.not_a_record): often both, sometimes not
        "eventTime": st.one_of(st.just("2024-05-01T12:00:00Z"), junk),
        "requestID": st.one_of(st.uuids().map(str), junk),
        "eventID": st.one_of(st.uuids().map(str), junk),
        "awsRegion": st.one_of(st.sampled_from(["us-east-1", "eu-west-1"]), junk),
        "recipientAccountId": st.one_of(st.just("111122223333"), junk),
        "errorCode": st.one_of(st.just("AccessDenied"), junk),
        "userIdentity": st.one_of(
            st.fixed_dictionaries({"type": st.sampled_from(["Root", "IAMUser", "AssumedRole"])}), junk
        ),
        "requestParameters": st.one_of(st.dictionaries(st.text(max_size=10), junk, max_size=4), junk),
        "responseElements": st.one_of(st.dictionaries(st.text(max_size=10), junk, max_size=4), junk),
        "userAgent": st.one_of(st.sampled_from(["aws-cli/2", "kali", "Pacu"]), junk),
    },
)


def test_mutated_catalog_examples() -> None:
    before, remediations = _total(), STATS["remediate"]
    _mutated_catalog_examples()
    judged = _total() - before
    print(f"fuzz (mutated examples): {judged} inputs judged or rejected")
    assert STATS["remediate"] > remediations, "fuzzing never reached a remediation: the property was not exercised"


@settings(max_examples=3_500, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    obj=st.one_of(
        cloudtrail_record,
        junk,
        st.builds(lambda r: {"detail-type": "x", "source": "aws.x", "detail": r}, cloudtrail_record),
    )
)
def _generated_events(obj: Any) -> None:
    judge(obj)


def test_generated_events() -> None:
    before, accepted = _total(), STATS["judged"]
    _generated_events()
    judged = _total() - before
    print(f"fuzz (generated events): {judged} inputs judged or rejected")
    assert STATS["judged"] > accepted, "no generated event got past validation: the decision path was not fuzzed"
