"""Differential test: our EventBridge matcher against moto's ``EventPattern``.

Every filter type ``trailguard_engine.matcher`` supports is generated: literals
(string, number, boolean, null), ``prefix``, ``suffix``, ``equals-ignore-case``
(alone and inside prefix/suffix), ``anything-but`` (value, list, prefix, suffix,
equals-ignore-case, wildcard), ``numeric``, ``exists``, ``cidr``, ``wildcard``,
nested objects and ``$or``. Generated patterns are valid EventBridge patterns
(``$or`` has at least two alternatives); generated events have scalars, null,
arrays of scalars and empty arrays, at any depth.

Where moto is shown to differ from EventBridge, the case is excluded from the
generated comparison, and pinned by a test of its own below that shows both
answers (EventBridge's answer is established in test_matcher_semantics.py):

* **Arrays of objects and arrays inside arrays.** moto keeps a list whole
  (``_flatten_dict`` only walks dicts, and a list leaf is checked one level
  deep); EventBridge crushes arrays out at every depth, with array consistency.
  Neither is generated here.
* **Empty arrays and empty objects.** moto keeps ``[]`` and ``{}`` as present
  values, so ``exists: true`` matches them and ``exists: false`` does not;
  EventBridge has no leaf there. Cases with ``exists`` on such a path are skipped.
* **Booleans are not numbers.** moto compares with Python ``==`` and
  ``isinstance(v, (int, float))``, so ``true`` matches the literal ``1`` (and
  ``false`` matches ``0``) and ``numeric [">", 0]``; EventBridge keeps the types
  apart. Cases mixing booleans and numbers are skipped.
* **cidr on non-strings.** moto hands the value to ``ipaddress.ip_address``, which
  accepts integers and booleans (``False`` is ``0.0.0.0``); EventBridge matches IP
  addresses in strings only. Cases mixing ``cidr`` with non-string scalars are skipped.
"""

from __future__ import annotations

import json
from typing import Any

from catalog_helpers import eventbridge_variants, moto_raw
from hypothesis import assume, example, given, settings
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
leaf_values = st.one_of(scalars, st.lists(st.one_of(strings, numbers, st.none()), max_size=3))
events = st.recursive(
    st.dictionaries(st.sampled_from(KEYS), leaf_values, max_size=3),
    lambda inner: st.dictionaries(st.sampled_from(KEYS), st.one_of(leaf_values, inner.filter(bool)), max_size=3),
    max_leaves=6,
)

wild = st.sampled_from(["*", "a*", "*c", "a*c", "*b*", "abc", "TRAIL*", "*.*"])
cidrs = st.sampled_from(["10.0.0.0/8", "192.168.0.0/16", "0.0.0.0/0", "2001:db8::/32", "::/0"])
# Valid EventBridge numeric filters only: one comparison, or a lower bound then a higher upper bound.
numeric = st.one_of(
    st.tuples(st.sampled_from(["<", "<=", "=", ">", ">="]), st.integers(-3, 3)).map(lambda t: {"numeric": list(t)}),
    st.tuples(st.sampled_from([">", ">="]), st.integers(-3, 2), st.sampled_from(["<", "<="]), st.integers(1, 4))
    .filter(lambda t: t[1] < t[3])
    .map(lambda t: {"numeric": list(t)}),
)
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
        st.lists(inner, min_size=2, max_size=3).map(lambda alts: {"$or": alts}),
    ),
    max_leaves=6,
)


def _walk(node: Any) -> list[Any]:
    """Every node of a JSON tree (objects, arrays and scalars)."""
    out = [node]
    if isinstance(node, dict):
        for v in node.values():
            out.extend(_walk(v))
    elif isinstance(node, list):
        for v in node:
            out.extend(_walk(v))
    return out


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _number_filters(pattern: Any) -> bool:
    """Literal numbers, numeric, or anything-but numbers anywhere in the pattern."""
    return any(_is_number(n) or (isinstance(n, dict) and "numeric" in n) for n in _walk(pattern))


def moto_differs(pattern: Any, event: Any) -> str | None:
    """Why moto's answer is not EventBridge's for this pair (see the module docstring), or None."""
    p_nodes, e_nodes = _walk(pattern), _walk(event)
    if any(isinstance(n, bool) for n in e_nodes) and _number_filters(pattern):
        return "moto: booleans are numbers"
    literals = [x for n in p_nodes if isinstance(n, list) for x in n]  # a filter list's own members
    if any(isinstance(x, bool) for x in literals) and any(_is_number(n) for n in e_nodes):
        return "moto: a boolean literal equals 1 or 0"
    has_cidr = any(isinstance(n, dict) and "cidr" in n for n in p_nodes)
    if has_cidr and any(isinstance(n, (int, float)) for n in e_nodes):  # bool is an int too
        return "moto: cidr parses integers and booleans as addresses"
    has_exists = any(isinstance(n, dict) and "exists" in n for n in p_nodes)
    if has_exists and any(n == [] for n in e_nodes):
        return "moto: an empty array is a present value"
    return None


@example(pattern={"a": {"b": [{"exists": False}]}}, event={"a": [1, 2]})  # was our bug: arrays of scalars
@example(pattern={"a": {"b": [{"exists": False}]}}, event={"a": []})  # was our bug: empty array
@example(pattern={"a": {"b": [{"exists": False}]}}, event={"a": "x"})
@example(pattern={"a": [{"anything-but": "x"}]}, event={"a": ["x", None]})
@example(pattern={"a": [2]}, event={"a": 2.0})
@settings(max_examples=600)
@given(pattern=patterns, event=events)
def test_matcher_agrees_with_moto(pattern: dict[str, Any], event: dict[str, Any]) -> None:
    assume(moto_differs(pattern, event) is None)
    assert matches(pattern, event) == moto_raw(pattern, event), json.dumps({"pattern": pattern, "event": event})


@settings(max_examples=200)
@given(pattern=patterns, event=events)
def test_catalog_shaped_events_agree(pattern: dict[str, Any], event: dict[str, Any]) -> None:
    """Wrapped like a real envelope (pattern under detail), the answer is the same."""
    assume(moto_differs(pattern, event) is None)
    envelope = {"source": "aws.x", "detail": event}
    assert matches({"detail": pattern}, envelope) == moto_raw({"detail": pattern}, envelope)


def test_exclusions_are_narrow() -> None:
    """The filter above skips only the documented differences, not whole classes of input."""
    assert moto_differs({"a": [1]}, {"a": 1}) is None
    assert moto_differs({"a": [{"exists": True}]}, {"a": [1]}) is None
    assert moto_differs({"a": [{"cidr": "10.0.0.0/8"}]}, {"a": ["10.0.0.1", None]}) is None
    assert moto_differs({"a": [True]}, {"a": "x"}) is None
    assert moto_differs({"a": [{"numeric": [">", 0]}]}, {"b": True}) is not None
    assert moto_differs({"a": [{"exists": True}]}, {"a": []}) is not None


def test_divergence_cidr_on_non_strings() -> None:
    """Found by this test's random exploration: moto reads False as the address 0.0.0.0."""
    for value in (False, 0, 167772161):
        assert matches({"a": [{"cidr": "0.0.0.0/0"}]}, {"a": value}) is False
    assert moto_raw({"a": [{"cidr": "0.0.0.0/0"}]}, {"a": False}) is True
    assert moto_raw({"a": [{"cidr": "10.0.0.0/24"}]}, {"a": 167772161}) is True
    assert matches({"a": [{"cidr": "0.0.0.0/0"}]}, {"a": "0.0.0.0"})


def test_divergence_empty_array() -> None:
    assert matches({"a": [{"exists": True}]}, {"a": []}) is False
    assert matches({"a": [{"exists": False}]}, {"a": []}) is True
    assert moto_raw({"a": [{"exists": True}]}, {"a": []}) is True


def test_divergence_arrays_inside_arrays() -> None:
    assert matches({"a": [3]}, {"a": [[1, 2], [3]]}) is True
    assert moto_raw({"a": [3]}, {"a": [[1, 2], [3]]}) is False


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
    assert matches({"a": [False]}, {"a": 0}) is False
    assert moto_raw({"a": [False]}, {"a": 0}) is True
