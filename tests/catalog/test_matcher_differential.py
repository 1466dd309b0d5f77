"""Differential test: our EventBridge matcher against moto's ``EventPattern``.

Every filter type ``trailguard_engine.matcher`` supports is generated: literals
(string, number, boolean, null), ``prefix``, ``suffix``, ``equals-ignore-case``
(alone and inside prefix/suffix), ``anything-but`` (value, list, prefix, suffix,
equals-ignore-case, wildcard), ``numeric``, ``exists``, ``cidr``, ``wildcard``,
nested objects and ``$or``.

Deliberate divergences, each pinned by its own test below and kept out of the
generated comparison:

* **Arrays of objects.** moto does not descend into them; EventBridge does
  (aws/event-ruler flattens arrays, with array consistency). Ours follows
  EventBridge. The generated events use arrays of scalars only.
* **Booleans are not numbers.** moto compares with Python ``==`` and
  ``isinstance(v, int)``, so ``true`` matches the literal ``1`` and
  ``numeric [">", 0]``. JSON and EventBridge keep the types apart; ours does too.
  Cases mixing a boolean event value with a numeric filter are skipped.
* **Empty objects.** moto keeps ``{}`` as a leaf value (so ``exists: true`` and
  ``anything-but`` match it); EventBridge flattens objects into leaf paths and an
  empty object has none. Ours follows EventBridge. Generated nested objects are
  never empty. (Non-empty objects under a leaf filter agree: neither matches;
  this was a bug in our matcher, found by this test and fixed.)
* **cidr on numbers.** moto hands the event value to ``ipaddress.ip_address``,
  which accepts integers (``0`` is ``0.0.0.0``). EventBridge IP matching applies
  to string IP addresses only; ours does too. Cases mixing a ``cidr`` filter with
  a numeric event value are skipped, and pinned by their own test.
"""

from __future__ import annotations

import json
from typing import Any

from catalog_helpers import eventbridge_variants, moto_raw
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from trailguard_engine.matcher import matches

KEYS = ["a", "b", "c"]
WORDS = [
    "",
    "x",
    "X",
    "ab",
    "Abc",
    "abc",
    "cba",
    "a*c",
    "trail",
    "TRAIL-x",
    "10.0.0.5",
    "192.168.1.9",
    "::1",
    "2001:db8::7",
]

strings = st.sampled_from(WORDS)
numbers = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.5, 2.0, 1e3]))
scalars = st.one_of(strings, numbers, st.booleans(), st.none())
leaf_values = st.one_of(scalars, st.lists(st.one_of(strings, numbers), max_size=3))
events = st.recursive(
    st.dictionaries(st.sampled_from(KEYS), leaf_values, max_size=3),
    lambda inner: st.dictionaries(st.sampled_from(KEYS), st.one_of(leaf_values, inner.filter(bool)), max_size=3),
    max_leaves=6,
)

wild = st.sampled_from(["*", "a*", "*c", "a*c", "*b*", "abc", "TRAIL*", "*.*"])
cidrs = st.sampled_from(["10.0.0.0/8", "192.168.0.0/16", "0.0.0.0/0", "2001:db8::/32", "::/0"])
numeric = st.lists(
    st.tuples(st.sampled_from(["<", "<=", "=", ">", ">="]), st.integers(-3, 3)), min_size=1, max_size=2
).map(lambda ops: {"numeric": [x for op in ops for x in op]})
filters = st.one_of(
    strings,
    numbers,
    st.booleans(),
    st.none(),
    strings.map(lambda s: {"prefix": s}),
    strings.map(lambda s: {"suffix": s}),
    strings.map(lambda s: {"equals-ignore-case": s}),
    strings.map(lambda s: {"prefix": {"equals-ignore-case": s}}),
    strings.map(lambda s: {"suffix": {"equals-ignore-case": s}}),
    st.one_of(strings, numbers).map(lambda v: {"anything-but": v}),
    st.lists(strings, min_size=1, max_size=3).map(lambda v: {"anything-but": v}),
    strings.filter(bool).map(lambda s: {"anything-but": {"prefix": s}}),
    strings.filter(bool).map(lambda s: {"anything-but": {"suffix": s}}),
    strings.map(lambda s: {"anything-but": {"equals-ignore-case": s}}),
    wild.map(lambda w: {"anything-but": {"wildcard": w}}),
    numeric,
    st.booleans().map(lambda b: {"exists": b}),
    cidrs.map(lambda c: {"cidr": c}),
    wild.map(lambda w: {"wildcard": w}),
)
leaves = st.lists(filters, min_size=1, max_size=3)
patterns = st.recursive(
    st.dictionaries(st.sampled_from(KEYS), leaves, min_size=1, max_size=3),
    lambda inner: st.one_of(
        st.dictionaries(st.sampled_from(KEYS), st.one_of(leaves, inner), min_size=1, max_size=3),
        st.lists(inner, min_size=1, max_size=3).map(lambda alts: {"$or": alts}),
    ),
    max_leaves=6,
)


def _has_bool(node: Any) -> bool:
    if isinstance(node, bool):
        return True
    if isinstance(node, dict):
        return any(_has_bool(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_bool(v) for v in node)
    return False


def _has_number_filter(node: Any) -> bool:
    if isinstance(node, bool):
        return False
    if isinstance(node, (int, float)):
        return True
    if isinstance(node, dict):
        return "numeric" in node or any(_has_number_filter(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_number_filter(v) for v in node)
    return False


def _has_cidr(node: Any) -> bool:
    if isinstance(node, dict):
        return "cidr" in node or any(_has_cidr(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_cidr(v) for v in node)
    return False


def _has_number(node: Any) -> bool:
    if isinstance(node, bool):
        return False
    if isinstance(node, (int, float)):
        return True
    if isinstance(node, dict):
        return any(_has_number(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_number(v) for v in node)
    return False


def test_cidr_never_matches_a_number() -> None:
    assert not matches({"a": [{"cidr": "0.0.0.0/0"}]}, {"a": 0})
    assert matches({"a": [{"cidr": "0.0.0.0/0"}]}, {"a": "0.0.0.0"})


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=patterns, event=events)
def test_matcher_agrees_with_moto(pattern: dict[str, Any], event: dict[str, Any]) -> None:
    assume(not (_has_bool(event) and _has_number_filter(pattern)))
    assume(not (_has_cidr(pattern) and _has_number(event)))
    assert matches(pattern, event) == moto_raw(pattern, event), json.dumps({"pattern": pattern, "event": event})


@settings(max_examples=200, deadline=None)
@given(pattern=patterns, event=events)
def test_catalog_shaped_events_agree(pattern: dict[str, Any], event: dict[str, Any]) -> None:
    """Wrapped like a real envelope (pattern under detail), the answer is the same."""
    assume(not (_has_bool(event) and _has_number_filter(pattern)))
    envelope = {"source": "aws.x", "detail": event}
    assert matches({"detail": pattern}, envelope) == moto_raw({"detail": pattern}, envelope)


def test_divergence_arrays_of_objects() -> None:
    pattern = {"detail": {"sel": {"rw": ["ReadOnly"]}}}
    event = {"detail": {"sel": [{"rw": "All"}, {"rw": "ReadOnly"}]}}
    assert matches(pattern, event) is True  # EventBridge (event-ruler) semantics
    assert moto_raw(pattern, event) is False  # moto's gap
    assert any(moto_raw(pattern, v) for v in eventbridge_variants(event))  # the helper the meta-tests use
    # array consistency: both fields must come from the same element
    both = {"detail": {"sel": {"rw": ["ReadOnly"], "inc": [True]}}}
    split = {"detail": {"sel": [{"rw": "ReadOnly", "inc": False}, {"rw": "All", "inc": True}]}}
    assert matches(both, split) is False
    assert not any(moto_raw(both, v) for v in eventbridge_variants(split))


def test_object_is_not_a_leaf() -> None:
    event = {"b": {"a": None}}
    for f in ({"anything-but": ""}, {"exists": True}, {"prefix": ""}):
        assert matches({"b": [f]}, event) is False
        assert moto_raw({"b": [f]}, event) is False
    assert matches({"b": [{"exists": False}]}, event) is True


def test_divergence_empty_object() -> None:
    event = {"b": {}}
    assert matches({"b": [{"exists": True}]}, event) is False
    assert moto_raw({"b": [{"exists": True}]}, event) is True


def test_divergence_booleans_are_not_numbers() -> None:
    event = {"a": True}
    for pattern in ({"a": [1]}, {"a": [{"numeric": [">", 0]}]}):
        assert matches(pattern, event) is False
        assert moto_raw(pattern, event) is True
