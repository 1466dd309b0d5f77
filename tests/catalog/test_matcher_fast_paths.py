"""The matcher's fast paths (issue 19) give the answers of its full leaf-by-leaf search.

A field's test looks literal strings up in a set and memoizes the other filters per string value; an event
whose fields cross no array skips the array-consistency search. Both are compared here with the plain
definitions (``any(p(v) for p in predicates)`` over ``_leaves``), and the envelope id with ``uuid.uuid5``.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest
from trailguard_engine.catalog import load_catalog
from trailguard_engine.events import envelope_id_for
from trailguard_engine.matcher import Predicate, _leaves, _search, compile_pattern, matches

VALUES: list[Any] = ["1", 1, 1.0, True, False, None, "abc", "ab", "x-abc", "", 0, [], ["1", 1], [True, "abc"], {}]


def _reference(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """The search without fast paths: every field's leaves in full, predicates scanned one by one."""
    compiled = compile_pattern(pattern)
    for fields in compiled.alternatives:
        leaves = {f.path: list(_leaves(event, f.path)) for f in fields}
        plain = [type(f)(f.path, f.predicates, f.absent_ok, _scan(f.predicates)) for f in fields]
        if _search(plain, 0, {}, leaves):
            return True
    return False


def _scan(predicates: tuple[Predicate, ...]) -> Predicate:
    def test(v: Any) -> bool:
        return any(p(v) for p in predicates)

    return test


PATTERNS: list[dict[str, Any]] = [
    {"a": ["1", "abc"]},
    {"a": [1]},
    {"a": [True]},
    {"a": [None, "ab"]},
    {"a": ["1", {"prefix": "ab"}]},
    {"a": [{"anything-but": ["1", "abc"]}]},
    {"a": [{"numeric": [">", 0]}, "abc"]},
    {"a": [{"wildcard": "*bc"}, {"suffix": "b"}]},
    {"a": [{"exists": False}, "abc"]},
    {"a": [{"exists": True}]},
    {"a": [{"equals-ignore-case": "ABC"}, 1]},
    {"a": ["abc"], "b": {"c": [{"prefix": "x"}, True]}},
]


@pytest.mark.parametrize("pattern", PATTERNS, ids=str)
def test_field_tests_and_memo_agree_with_the_plain_scan(pattern: dict[str, Any]) -> None:
    """Every value twice (the second answer comes from the memo), in both orders: strings never stand in for
    numbers or booleans (``"1"``, ``1``, ``1.0`` and ``True`` are equal or alike as dict keys, not as values)."""
    for order in (VALUES, VALUES[::-1]):
        for a, b in itertools.product(order, ["xyz", True, ["x-1"], None]):
            for event in ({"a": a, "b": {"c": b}}, {"a": a}, {"b": [{"c": b}, {"c": a}]}, {"a": [a, {"z": a}]}):
                for _ in range(2):
                    assert matches(pattern, event) == _reference(pattern, event), (pattern, event)


def test_arrays_keep_element_consistency() -> None:
    """Fields read through one array must come from the same element: the fast path must hand this over."""
    pattern = {"r": {"k": ["a"], "v": ["1"]}}
    assert matches(pattern, {"r": [{"k": "a", "v": "1"}]})
    assert not matches(pattern, {"r": [{"k": "a", "v": "2"}, {"k": "b", "v": "1"}]})
    assert _reference(pattern, {"r": [{"k": "a", "v": "2"}, {"k": "b", "v": "1"}]}) is False


def test_catalog_examples_match_as_before() -> None:
    """Every catalog pattern on every catalog example: the fast paths change no answer."""
    rules = load_catalog()
    events = [dict(e) for r in rules for e in (*r.examples_positive, *r.examples_negative)]
    checked = 0
    for r in rules:
        for event in events:
            assert matches(r.event_pattern, event) == _reference(r.event_pattern, event), (r.id, event.get("id"))
            checked += 1
    assert checked > 1000


@pytest.mark.parametrize("seed", ["", "e-1", "00000000-0000-4000-8000-000000000000", "é€😀", "x" * 256])
def test_envelope_id_is_uuid5(seed: str) -> None:
    assert envelope_id_for(seed) == str(uuid.uuid5(uuid.NAMESPACE_URL, f"cloudtrail-event:{seed}"))
