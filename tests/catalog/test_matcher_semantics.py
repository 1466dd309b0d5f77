"""EventBridge's matching semantics, case by case, where moto cannot be the reference.

Every expected answer below is EventBridge's: from the content-filtering documentation and
the documented behaviour of aws/event-ruler (its README: arrays are "crushed out", array
consistency, ``exists`` applies to leaves; ``JsonRuleCompiler``'s validation messages). Each
case was also run through event-ruler itself (commit 337e8d9) when it was written; a 16,000-pair
random comparison with it agreed everywhere outside the two departures named in
``trailguard_engine.matcher``: ``cidr`` (event-ruler's range encoding lets very wide ranges
match numbers and the other address family) and one field twice in one ``$or`` combination
(event-ruler keeps whichever comes last; we refuse the pattern).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_matcher_differential import patterns as differential_patterns
from trailguard_engine.catalog import RULES_DIR, load_catalog, load_rule_file
from trailguard_engine.exceptions import CatalogError
from trailguard_engine.matcher import PatternError, PatternIndex, matches, validate_pattern

EXISTS_FALSE_UNDER_A = {"a": {"b": [{"exists": False}]}}

CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # --- exists applies to leaves; arrays are crushed out; [] contributes no leaf
    ("exists:false, array of scalars above", EXISTS_FALSE_UNDER_A, {"a": [1, 2]}, True),
    ("exists:false, empty array above", EXISTS_FALSE_UNDER_A, {"a": []}, True),
    ("exists:false, scalar above", EXISTS_FALSE_UNDER_A, {"a": "x"}, True),
    ("exists:false, objects without the field", EXISTS_FALSE_UNDER_A, {"a": [{"c": 1}]}, True),
    ("exists:false, one element has the field", EXISTS_FALSE_UNDER_A, {"a": [{"b": 1}, {"c": 1}]}, False),
    ("exists:false, the value is an object", {"a": [{"exists": False}]}, {"a": {"c": 1}}, True),
    ("exists:true, the value is []", {"a": [{"exists": True}]}, {"a": []}, False),
    ("exists:false, the value is []", {"a": [{"exists": False}]}, {"a": []}, True),
    ("exists:true, the value is [[]]", {"a": [{"exists": True}]}, {"a": [[]]}, False),
    ("exists:true, the value is null", {"a": [{"exists": True}]}, {"a": None}, True),
    ("exists:true, the value is [null]", {"a": [{"exists": True}]}, {"a": [None]}, True),
    ("exists:true, the value is an object", {"a": [{"exists": True}]}, {"a": {"c": 1}}, False),
    ("exists:true, the value is {}", {"a": [{"exists": True}]}, {"a": {}}, False),
    # --- arrays nested inside arrays
    ("literal in a nested array", {"a": [3]}, {"a": [[1, 2], [3]]}, True),
    ("literal not in a nested array", {"a": [4]}, {"a": [[1, 2], [3]]}, False),
    ("numeric in a nested array", {"a": [{"numeric": [">", 2]}]}, {"a": [[1, 2], [3]]}, True),
    ("object in a nested array", {"a": {"b": [2]}}, {"a": [[{"b": 1}], [{"b": 2}]]}, True),
    # --- array consistency
    ("fields from one element", {"a": {"b": [1], "c": [1]}}, {"a": [{"b": 1, "c": 1}, {"b": 2, "c": 2}]}, True),
    ("fields from two elements", {"a": {"b": [1], "c": [2]}}, {"a": [{"b": 1, "c": 1}, {"b": 2, "c": 2}]}, False),
    # exists:false is judged against the fields matched before it, in sorted path order
    ("absent after a match", {"a": {"b": [1], "c": [{"exists": False}]}}, {"a": [{"b": 1}, {"c": 2}]}, True),
    ("absent before a match", {"a": {"b": [{"exists": False}], "c": [1]}}, {"a": [{"b": 1}, {"c": 1}]}, False),
    # --- numbers: numeric value, not JSON text; EventBridge precision (6 decimals)
    ("300 vs 300.0", {"x": [300]}, {"x": 300.0}, True),
    ("300 vs '300'", {"x": [300]}, {"x": "300"}, False),
    ("numeric = vs 3.0e2", {"x": [{"numeric": ["=", 300]}]}, {"x": 3.0e2}, True),
    ("seventh decimal is below precision", {"x": [{"numeric": ["=", 1.5]}]}, {"x": 1.5000004}, True),
    ("sixth decimal counts", {"x": [{"numeric": [">", 1.5]}]}, {"x": 1.500001}, True),
    ("0.3 is 0.3 (no binary artefact)", {"x": [{"numeric": [">=", 0.3]}]}, {"x": 0.3}, True),
    ("event number beyond 5e9", {"x": [{"numeric": [">", 0]}]}, {"x": 6e9}, False),
    ("event number at 5e9", {"x": [{"numeric": ["<=", 5e9]}]}, {"x": 5e9}, True),
    ("negative range", {"x": [{"numeric": [">", -2, "<=", -1]}]}, {"x": -1.5}, True),
    # --- booleans are not numbers; string operators apply to strings only
    ("true vs 1", {"x": [True]}, {"x": 1}, False),
    ("1 vs true", {"x": [1]}, {"x": True}, False),
    ("0 vs false", {"x": [0]}, {"x": False}, False),
    ("numeric vs true", {"x": [{"numeric": [">", 0]}]}, {"x": True}, False),
    ("cidr vs a number", {"x": [{"cidr": "10.0.0.0/24"}]}, {"x": 167772161}, False),
    ("cidr vs a string address", {"x": [{"cidr": "10.0.0.0/24"}]}, {"x": "10.0.0.1"}, True),
    ("cidr vs an IPv6 string", {"x": [{"cidr": "2001:db8::/32"}]}, {"x": "2001:DB8::1"}, True),
    ("cidr vs a CIDR string", {"x": [{"cidr": "10.0.0.0/8"}]}, {"x": "10.0.0.1/32"}, False),
    ("prefix vs a number", {"x": [{"prefix": "1"}]}, {"x": 123}, False),
    ("wildcard vs a number", {"x": [{"wildcard": "1*"}]}, {"x": 123}, False),
    ("null vs null", {"x": [None]}, {"x": None}, True),
    ("empty string vs null", {"x": [""]}, {"x": None}, False),
    # --- anything-but: per value; needs a value; other types are "anything but"
    ("anything-but, one other element", {"x": [{"anything-but": "a"}]}, {"x": ["a", "b"]}, True),
    ("anything-but, only the excluded", {"x": [{"anything-but": "a"}]}, {"x": ["a"]}, False),
    ("anything-but, missing field", {"x": [{"anything-but": "a"}]}, {"y": 1}, False),
    ("anything-but, empty array", {"x": [{"anything-but": "a"}]}, {"x": []}, False),
    ("anything-but string vs a number", {"x": [{"anything-but": "a"}]}, {"x": 5}, True),
    ("anything-but string vs null", {"x": [{"anything-but": "a"}]}, {"x": None}, True),
    ("anything-but numbers vs '1'", {"x": [{"anything-but": [1, 2]}]}, {"x": "1"}, True),
    ("anything-but 300 vs 3e2", {"x": [{"anything-but": 300}]}, {"x": 3e2}, False),
    ("anything-but vs an object", {"x": [{"anything-but": "a"}]}, {"x": {"b": 1}}, False),
    # --- case folding as EventBridge does it
    ("equals-ignore-case folds ß", {"x": [{"equals-ignore-case": "straße"}]}, {"x": "STRASSE"}, True),
    ("equals-ignore-case keeps dotless i apart", {"x": [{"equals-ignore-case": "I"}]}, {"x": "ı"}, False),
    # --- $or, also nested under a field
    ("nested $or", {"a": {"$or": [{"b": [1]}, {"c": [2]}]}}, {"a": {"c": 2}}, True),
    ("$or beside a field", {"$or": [{"a": [1]}, {"b": [1]}], "c": [1]}, {"a": 1, "c": 1}, True),
    ("$or beside a field, field missing", {"$or": [{"a": [1]}, {"b": [1]}], "c": [1]}, {"a": 1}, False),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_eventbridge_semantics(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, event) is expected


def test_the_index_matches_like_the_function() -> None:
    index = PatternIndex((pattern, name) for name, pattern, _, _ in CASES)
    for name, _pattern, event, expected in CASES:
        assert (name in index.match(event)) is expected, name


REJECTED: list[tuple[Any, str]] = [
    ({"$or": [{"a": [1]}]}, "at least 2"),
    ({"$or": [{"a": [1]}, "b"]}, "must be an object"),
    ({"$or": []}, "at least 2"),
    ({"$or": {"a": [1]}}, "at least 2"),
    ({"$or": [{"prefix": ["a"]}, {"b": [1]}]}, "operator, not a field name"),
    ({"a": [{"wildcard": "a**b"}]}, "consecutive '*'"),
    ({"a": [{"wildcard": "a\\b"}]}, "invalid escape"),
    ({"a": [{"wildcard": "a\\"}]}, "invalid escape"),
    ({"a": [{"numeric": [">", 6e9]}]}, "outside -5.0e9..5.0e9"),
    ({"a": [{"numeric": ["<", -5.000001e9]}]}, "outside -5.0e9..5.0e9"),
    ({"a": [{"numeric": [">", 0.1234567]}]}, "more than 6 digits"),
    ({"a": [{"numeric": ["<", 10, ">", 0]}]}, "lower bound"),
    ({"a": [{"numeric": [">", 10, "<", 0]}]}, "bottom must be less than top"),
    ({"a": [{"numeric": [">", 0, ">", 1]}]}, "lower bound"),
    ({"a": [{"numeric": ["=", 1, "<", 5]}]}, "lower bound"),
    ({"a": [{"numeric": ["!=", 0]}]}, "unknown numeric operator"),
    ({"a": [{"numeric": [">", "1"]}]}, "must be numbers"),
    ({"a": [{"numeric": [">", True]}]}, "must be numbers"),
    ({"a": [{"numeric": [">"]}]}, "numeric takes"),
    ({"a": [{"anything-but": ["a", 1]}]}, "all strings or all numbers"),
    ({"a": [{"anything-but": []}]}, "at least one value"),
    ({"a": [{"anything-but": True}]}, "all strings or all numbers"),
    ({"a": [{"anything-but": None}]}, "all strings or all numbers"),
    ({"a": [{"anything-but": [7e9]}]}, "outside -5.0e9..5.0e9"),
    ({"a": [{"anything-but": {"anything-but": "x"}}]}, "unsupported operator inside anything-but"),
    ({"a": [{"anything-but": {"prefix": ""}}]}, "must not be empty"),
    ({"a": []}, "empty arrays"),
    ({"a": {}}, "empty objects"),
    ({}, "empty objects"),
    ({"a": "x"}, "object or an array"),
    ({"a": [[1]]}, "not an array"),
    ({"a": [{"prefix": 1}]}, "prefix takes a string"),
    ({"a": [{"prefix": ["x", "y"]}]}, "prefix takes a string"),
    ({"a": [{"equals-ignore-case": ["x"]}]}, "equals-ignore-case takes a string"),
    ({"a": [{"exists": "true"}]}, "true or false"),
    ({"a": [{"prefix": "a", "suffix": "b"}]}, "exactly one operator"),
    ({"a": [{"foo": "x"}]}, "unknown operator"),
    ({"a": [{"cidr": "10.0.0.0/33"}]}, "cidr"),
    ({"a": [{"cidr": "10.0.0.0"}]}, "address/prefix-length"),
    ({"a": [1], "$or": [{"a": [2]}, {"b": [1]}]}, "same field appears twice"),
    ({"a": [{"exists": True}], "$or": [{"b": [1]}] * 2, "c": {"$or": [{"d": [1]}] * 1001}}, "combinations"),
    ([{"a": [1]}], "must be a JSON object"),
]


@pytest.mark.parametrize(("pattern", "message"), REJECTED, ids=[f"{i}-{m}" for i, (_, m) in enumerate(REJECTED)])
def test_patterns_eventbridge_rejects_are_rejected(pattern: Any, message: str) -> None:
    with pytest.raises(PatternError, match=message.replace("*", r"\*").replace("(", r"\(")):
        validate_pattern(pattern)
    if isinstance(pattern, dict) and pattern:
        with pytest.raises(PatternError):
            matches(pattern, {"a": 1})  # matching refuses it too: nothing invalid is ever judged


ACCEPTED: list[Any] = [
    {"a": [{"wildcard": "a*b*c"}]},
    {"a": [{"wildcard": "\\*"}]},
    {"a": [{"numeric": [">=", 0, "<", 5e9]}]},
    {"a": [{"numeric": ["=", -5e9]}]},
    {"a": [{"numeric": [">", 0.000001]}]},
    {"a": [{"anything-but": {"wildcard": ["a*", "b"]}}]},
    {"a": [{"anything-but": {"prefix": ["a", "b"]}}]},
    {"a": [{"anything-but": [1, 2.5]}]},
    {"a": [{"exists": False}, "x", None, True, 1]},
    {"a": {"$or": [{"b": [1]}, {"c": [1]}]}},
    {"a": [{"prefix": ""}]},
    {"a": [{"prefix": {"equals-ignore-case": "X"}}]},
    {"a": [{"cidr": "10.0.0.1/24"}]},
]


@pytest.mark.parametrize("pattern", ACCEPTED, ids=[json.dumps(p) for p in ACCEPTED])
def test_valid_patterns_are_accepted(pattern: Any) -> None:
    validate_pattern(pattern)


def _rule_doc(**changes: Any) -> dict[str, Any]:
    doc = json.loads((RULES_DIR / "cloudtrail-stop-logging.json").read_text())
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ({"source": ["aws.cloudtrail"], "detail": {"$or": [{"eventName": ["StopLogging"]}]}}, "at least 2"),
        ({"source": ["aws.cloudtrail"], "detail": {"eventName": [{"wildcard": "Stop**"}]}}, "consecutive"),
        ({"source": ["aws.cloudtrail"], "detail": {"x": [{"numeric": [">", 1e10]}]}}, "outside"),
        ({"source": ["aws.cloudtrail"], "detail": {"x": [{"anything-but": ["a", 1]}]}}, "all strings"),
    ],
    ids=["one-element-or", "double-star", "number-out-of-range", "mixed-anything-but"],
)
def test_a_rule_with_a_pattern_eventbridge_rejects_does_not_load(tmp_path: Path, pattern: Any, message: str) -> None:
    path = tmp_path / "cloudtrail-stop-logging.json"
    path.write_text(json.dumps(_rule_doc(event_pattern=pattern)))
    with pytest.raises(CatalogError) as err:
        load_rule_file(path)
    text = str(err.value)
    assert text.startswith("cloudtrail-stop-logging.json: event_pattern: detail")  # names the rule and the field
    assert message in text
    # the CLI and the app load through the same function: the whole catalog refuses to load
    (tmp_path / "other.json").write_text(json.dumps(_rule_doc(id="other")))
    load_catalog.cache_clear()
    try:
        with pytest.raises(CatalogError, match=r"cloudtrail-stop-logging\.json"):
            load_catalog(tmp_path)
    finally:
        load_catalog.cache_clear()


def test_catalog_rules_do_not_select_by_cidr() -> None:
    """IP ranges are judged by decision functions with ``ipaddress``, never by a pattern.

    event-ruler encodes ``cidr`` as a range of hex strings, so very wide ranges also match
    numbers and the other address family (``0.0.0.0/1`` matches the number 1, ``::/1``
    matches "1.2.3.4"); a pattern with ``cidr`` could select what our matcher does not.
    """
    offenders = [r.id for r in load_catalog() if '"cidr"' in json.dumps(r.event_pattern)]
    assert offenders == []


# --------------------------------------------------------------------------- #
# Metamorphic properties: EventBridge crushes arrays out, so no oracle is needed to know that
# wrapping a value in an array, or reordering an array, never changes an answer. Events here
# include what moto cannot judge (arrays of objects, arrays inside arrays, empty arrays).
# --------------------------------------------------------------------------- #
_scalars = st.one_of(st.sampled_from(["", "x", "ab", "abc", "10.0.0.5"]), st.integers(-2, 2), st.booleans(), st.none())
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, min_size=1, max_size=3)
    ),
    max_leaves=8,
)
_events = st.dictionaries(st.sampled_from(["a", "b", "c"]), _values, min_size=1, max_size=3)


def _wrap_everywhere(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: [_wrap_everywhere(v)] for k, v in node.items()}
    if isinstance(node, list):
        return [_wrap_everywhere(v) for v in node]
    return node


def _reverse_arrays(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _reverse_arrays(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_reverse_arrays(v) for v in reversed(node)]
    return node


@settings(max_examples=400)
@given(pattern=differential_patterns, event=_events)
def test_wrapping_values_in_arrays_never_changes_the_answer(pattern: dict[str, Any], event: dict[str, Any]) -> None:
    expected = matches(pattern, event)
    assert matches(pattern, _wrap_everywhere(event)) is expected
    assert matches(pattern, {k: [[v]] for k, v in event.items()}) is expected


@settings(max_examples=400)
@given(pattern=differential_patterns, event=_events)
def test_reordering_arrays_never_changes_the_answer(pattern: dict[str, Any], event: dict[str, Any]) -> None:
    assert matches(pattern, _reverse_arrays(event)) is matches(pattern, event)


def _broken_catalog(tmp_path: Path) -> Path:
    bad = {"source": ["aws.cloudtrail"], "detail": {"$or": [{"eventName": ["StopLogging"]}]}}
    (tmp_path / "cloudtrail-stop-logging.json").write_text(json.dumps(_rule_doc(event_pattern=bad)))
    return tmp_path


def test_the_cli_names_the_broken_rule_without_a_stack_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from trailguard import cli
    from trailguard.commands import rules as rules_command

    rules_dir = _broken_catalog(tmp_path)
    cli._load_commands()
    monkeypatch.setattr(rules_command, "load_catalog", lambda: load_catalog(rules_dir))
    monkeypatch.setattr("sys.argv", ["trailguard", "rules"])
    load_catalog.cache_clear()
    try:
        with pytest.raises(SystemExit) as exit_:
            cli.main()
    finally:
        load_catalog.cache_clear()
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith("trailguard: catalog error: cloudtrail-stop-logging.json: event_pattern: detail: $or needs")
    assert "Traceback" not in err


def test_cdk_synth_names_the_broken_rule_without_a_stack_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from stacks import detection, member

    spec = importlib.util.spec_from_file_location("trailguard_cdk_app", RULES_DIR.parents[2] / "app.py")
    assert spec is not None and spec.loader is not None
    cdk_app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cdk_app)

    rules_dir = _broken_catalog(tmp_path)
    for module in (detection, member):
        monkeypatch.setattr(module, "load_catalog", lambda: load_catalog(rules_dir))
    # cdk.json's context, as `cdk synth` passes it (the jsii kernel is already running: no env var reaches it)
    context = json.loads((RULES_DIR.parents[2] / "cdk.json").read_text())["context"]
    real_app = cdk_app.cdk.App
    monkeypatch.setattr(
        cdk_app, "cdk", SimpleNamespace(App=lambda: real_app(context=context, outdir=str(tmp_path / "cdk.out")))
    )
    load_catalog.cache_clear()
    try:
        with pytest.raises(SystemExit) as exit_:
            cdk_app.main()
    finally:
        load_catalog.cache_clear()
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith("trailguard: catalog error: cloudtrail-stop-logging.json: event_pattern:")
