"""Splitting an event pattern keeps its union exact: every part is valid, small enough, and together they
match exactly the events the original matches (not more, not less).

Checked with this package's matcher and with moto's ``EventPattern`` (where moto follows EventBridge,
see test_matcher_differential.py), over generated patterns of every filter type and over events built
from each pattern's own values, so that most of them match some alternative of some part.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from catalog_helpers import RULES, moto_matches, moto_raw
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_matcher_differential import WORDS, moto_differs, patterns
from trailguard_engine.matcher import matches, validate_pattern
from trailguard_engine.pattern_split import PatternTooLargeError, pattern_size, split_pattern

API = "AWS API Call via CloudTrail"


# --------------------------------------------------------------------------- #
# events built from a pattern's own values
# --------------------------------------------------------------------------- #
def _values_for(f: Any) -> list[Any]:
    """Event values that match the filter ``f``, and near misses."""
    if not isinstance(f, dict):
        return [f, "zz"]
    ((op, arg),) = f.items()
    if op in ("prefix", "suffix") and isinstance(arg, dict):
        arg = arg["equals-ignore-case"]
        return [arg.upper(), f"{arg}x".swapcase(), f"x{arg}".swapcase()]
    if op == "prefix":
        return [arg, f"{arg}x", f"x{arg}"]
    if op == "suffix":
        return [arg, f"x{arg}", f"{arg}x"]
    if op == "equals-ignore-case":
        return [arg.swapcase(), f"{arg}x"]
    if op == "wildcard":
        return [arg.replace("*", ""), arg.replace("*", "xy"), "zz"]
    if op == "cidr":
        net = ipaddress.ip_network(arg)
        return [str(net.network_address), "10.1.2.3", "2001:db8::1"]
    if op == "numeric":
        return [b for b in arg if not isinstance(b, str)] + [0, 3.5]
    if op == "exists":
        return ["x"]
    if op == "anything-but":
        inner = arg if isinstance(arg, list) else [arg]
        out: list[Any] = []
        for v in inner:
            out.extend(_values_for(v) if isinstance(v, dict) else [v])
        return [*out, "zz"]
    return ["zz"]


def _leaf_values(pattern: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], list[Any]]:
    """Every leaf path of the pattern (through ``$or`` alternatives) and values to try there."""
    out: dict[tuple[str, ...], list[Any]] = {}
    for key, sub in pattern.items():
        if key == "$or":
            for alt in sub:
                for p, vs in _leaf_values(alt, path).items():
                    out.setdefault(p, []).extend(vs)
        elif isinstance(sub, dict):
            for p, vs in _leaf_values(sub, (*path, key)).items():
                out.setdefault(p, []).extend(vs)
        else:
            out.setdefault((*path, key), []).extend(v for f in sub for v in _values_for(f))
    return out


def _set(event: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = event
    for step in path[:-1]:
        child = node.get(step)
        if not isinstance(child, dict):
            child = node[step] = {}
        node = child
    node[path[-1]] = value


@st.composite
def events_for(draw: st.DrawFn, pattern: dict[str, Any]) -> dict[str, Any]:
    """An event with, at each leaf path of ``pattern``: nothing, one value, or an array of values."""
    event: dict[str, Any] = {}
    for path, values in sorted(_leaf_values(pattern).items()):
        pool = st.sampled_from(sorted({json.dumps(v) for v in values} | {json.dumps(w) for w in WORDS[:4]}))
        choice = draw(st.sampled_from(["absent", "one", "one", "array"]))
        if choice == "one":
            _set(event, path, json.loads(draw(pool)))
        elif choice == "array":
            _set(event, path, [json.loads(v) for v in draw(st.lists(pool, max_size=3))])
    return event


def _union(parts: list[dict[str, Any]], event: dict[str, Any]) -> bool:
    return any(matches(p, event) for p in parts)


# --------------------------------------------------------------------------- #
# generated patterns
# --------------------------------------------------------------------------- #
#: A generated pattern with events built from its own values (most match some alternative of some part).
cases = patterns.flatmap(lambda p: st.tuples(st.just(p), st.lists(events_for(p), min_size=1, max_size=8)))


@example(
    case=(
        {"a": [{"exists": False}, "x"], "b": ["y", {"prefix": "a"}]},
        [{"a": "x"}, {}, {"a": "q", "b": "y"}, {"b": "abc"}, {"a": ["q", "x"], "b": ["abc", "q"]}],
    )
)
@example(case=({"$or": [{"a": ["x"]}, {"b": ["y", "z"]}], "c": {"$or": [{"a": ["1"]}, {"b": ["2"]}]}}, [{}]))
@settings(max_examples=400)
@given(case=cases)
def test_split_union_is_exact(case: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    """Split as far as it goes (limit: a third of the size): parts are valid and their union is the original."""
    pattern, events = case
    parts = split_pattern(pattern, max(1, pattern_size(pattern) // 3), strict=False)
    assert parts
    for p in parts:
        validate_pattern(p)
    if len(parts) > 1:
        assert all(pattern_size(p) < pattern_size(pattern) for p in parts)
    for ev in events:
        want = matches(pattern, ev)
        assert _union(parts, ev) == want, json.dumps({"pattern": pattern, "parts": parts, "event": ev})
        if moto_differs(pattern, ev) is None:
            assert any(moto_raw(p, ev) for p in parts) == moto_raw(pattern, ev), json.dumps({"parts": parts, "ev": ev})


@settings(max_examples=100)
@given(data=st.data(), rule=st.sampled_from(RULES), limit=st.sampled_from([150, 300, 600]))
def test_catalog_patterns_split_exactly(data: st.DataObject, rule: Any, limit: int) -> None:
    """Every catalog rule, split far below the real threshold, still matches exactly its examples and generated events."""
    parts = split_pattern(rule.event_pattern, limit, strict=False)
    for ev in [*rule.examples_positive, *rule.examples_negative]:
        assert _union(parts, ev) == matches(rule.event_pattern, ev)
        assert any(moto_matches(p, ev) for p in parts) == moto_matches(rule.event_pattern, ev)
    for _ in range(10):
        ev = data.draw(events_for(rule.event_pattern))
        assert _union(parts, ev) == matches(rule.event_pattern, ev), json.dumps(ev)


# --------------------------------------------------------------------------- #
# the shapes the catalog is heading for
# --------------------------------------------------------------------------- #
NAMES = [f"Put{w}Configuration{i:03d}" for i, w in enumerate(["Bucket", "Trail", "Key", "Role", "Policy"] * 40)]


def _big_rule_pattern() -> dict[str, Any]:
    """About 5,000 characters: a broad API selection, errorCode filters and a $or, as issue 14's rules will look."""
    return {
        "source": ["aws.s3", "aws.cloudtrail", "aws.kms", "aws.iam"],
        "detail-type": [API],
        "detail": {
            "eventName": [*NAMES[:170], {"prefix": "DeleteStack"}],
            "errorCode": [{"prefix": "AccessDenied"}, {"suffix": "UnauthorizedOperation"}],
            "$or": [
                {"userIdentity": {"type": ["IAMUser", "AssumedRole"]}},
                {"sourceIPAddress": [{"cidr": "0.0.0.0/0"}]},
            ],
        },
    }


def test_a_5000_character_pattern_is_split_under_the_threshold_exactly() -> None:
    pattern = _big_rule_pattern()
    assert pattern_size(pattern) > 5000
    parts = split_pattern(pattern, 1600)
    assert len(parts) >= 4
    assert all(pattern_size(p) <= 1600 for p in parts)
    # the largest list (eventName) was split; every other constraint is kept whole in every part
    assert [n for p in parts for n in p["detail"]["eventName"]] == pattern["detail"]["eventName"]
    for p in parts:
        assert {k: v for k, v in p["detail"].items() if k != "eventName"} == {
            k: v for k, v in pattern["detail"].items() if k != "eventName"
        }
    # parts are evened out: none is much smaller than another
    sizes = [pattern_size(p) for p in parts]
    assert max(sizes) - min(sizes) < 300
    denied = {"errorCode": "AccessDenied", "userIdentity": {"type": "IAMUser"}, "sourceIPAddress": "192.0.2.1"}
    for name in [*NAMES[:170], "DeleteStackSet", "DeleteStack"]:
        ev = {"source": "aws.kms", "detail-type": API, "detail": {"eventName": name, **denied}}
        assert matches(pattern, ev)
        hits = [i for i, p in enumerate(parts) if matches(p, ev)]
        assert len(hits) == 1, name  # a top-level value-list split: exactly one part matches
        assert any(moto_matches(p, ev) for p in parts)
    for miss in (
        {"eventName": NAMES[170], **denied},  # not in the selection
        {"eventName": NAMES[0], **denied, "errorCode": "Throttling"},  # another constraint fails
        {"eventName": NAMES[0], "errorCode": "AccessDenied"},  # neither $or alternative
    ):
        ev = {"source": "aws.kms", "detail-type": API, "detail": miss}
        assert not matches(pattern, ev)
        assert not any(matches(p, ev) or moto_matches(p, ev) for p in parts)


def test_or_alternatives_are_distributed_and_a_lone_one_is_merged() -> None:
    big = {f"k{i}": [f"{'v' * 40}{i}"] for i in range(8)}
    pattern = {
        "source": ["aws.iam"],
        "detail": {
            "eventSource": ["iam.amazonaws.com"],
            "$or": [{"requestParameters": big}, {"eventName": ["X", "Y"]}],
        },
    }
    parts = split_pattern(pattern, pattern_size(pattern) - 10)
    assert len(parts) == 2
    for p in parts:
        assert "$or" not in p["detail"]  # EventBridge refuses a one-element $or
        assert p["detail"]["eventSource"] == ["iam.amazonaws.com"]
        validate_pattern(p)
    both = {
        "source": "aws.iam",
        "detail": {
            "eventSource": "iam.amazonaws.com",
            "eventName": "X",
            "requestParameters": {f"k{i}": f"{'v' * 40}{i}" for i in range(8)},
        },
    }
    assert [matches(p, both) for p in parts] == [True, True]  # overlapping parts: the engine de-duplicates


def test_small_patterns_are_returned_unchanged_and_the_split_is_deterministic() -> None:
    for rule in RULES:
        if pattern_size(rule.event_pattern) <= 1600:
            assert split_pattern(rule.event_pattern, 1600) == [rule.event_pattern]
    big = _big_rule_pattern()
    assert split_pattern(big, 1600) == split_pattern(json.loads(json.dumps(big)), 1600)


def test_a_pattern_with_nothing_left_to_split_is_refused() -> None:
    pattern = {"detail": {"userAgent": [{"wildcard": "*" + "x" * 2000 + "*"}]}}
    with pytest.raises(PatternTooLargeError, match="cannot be split"):
        split_pattern(pattern, 1600)
    assert split_pattern(pattern, 1600, strict=False) == [pattern]
