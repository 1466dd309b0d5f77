"""Compiled SQL versus the matcher, on DuckDB: the shared corpus for every catalog rule, and hypothesis patterns.

For each row of the ``cloudtrail`` view the matcher runs on ``wrap_record(record_from_row(row))`` (what retro
hands to replay's evaluator). The SQL must select every row the matcher matches (never a subset) and exactly
those rows when the predicate says it is exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from trailguard_engine.catalog import load_catalog
from trailguard_engine.events import wrap_record
from trailguard_engine.matcher import PatternError, PatternIndex, matches, validate_pattern

from trailguard import hunt
from trailguard.replay import iter_file
from trailguard.retro.rows import columns, record_from_row, select_list
from trailguard.retro.sqlcompile import CompiledPredicate, compile_pattern, compile_rules

RULES = load_catalog()


def _connect(records: Iterable[Mapping[str, Any]], where: Path) -> duckdb.DuckDBPyConnection:
    path = where / "records.jsonl"
    with path.open("wb") as fh:
        for rec in records:
            fh.write(orjson.dumps(rec) + b"\n")
    return hunt.connect(hunt.discover([path]))


def _evaluate(
    con: duckdb.DuckDBPyConnection, preds: Sequence[CompiledPredicate]
) -> list[tuple[dict[str, Any], list[bool]]]:
    """Every row's rebuilt record and, per predicate, whether the SQL selects it (one scan)."""
    hits = ", ".join(f"coalesce({p.sql}, FALSE)" for p in preds)
    sql = f"SELECT {select_list('duckdb')}, {hits} FROM cloudtrail"
    cols = columns()
    out = []
    for row in con.execute(sql).fetchall():
        record = record_from_row(dict(zip(cols, row[: len(cols)], strict=True)))
        out.append((record, [bool(x) for x in row[len(cols) :]]))
    return out


def _corpus_records(corpus: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(corpus.rglob("*.jsonl")):
        if path.name.endswith(".labels.jsonl"):
            continue
        for _label, _line, obj in iter_file(str(path)):
            if not isinstance(obj, dict):
                continue
            rec = obj.get("detail") if "detail-type" in obj else obj
            if isinstance(rec, dict) and isinstance(rec.get("eventTime"), str) and rec.get("eventName"):
                records.append(rec)
    return [r for r in records if _fits_the_table(r)]


def _fits_the_table(rec: Mapping[str, Any]) -> bool:
    """The struct columns hold objects (a few corpus records carry a Python repr string; DuckDB refuses them)."""
    if not all(isinstance(rec.get(k, {}), dict) for k in ("userIdentity", "tlsDetails")):
        return False
    resources = rec.get("resources", [])
    return isinstance(resources, list) and all(isinstance(r, dict) for r in resources)


def test_every_catalog_rule_selects_at_least_what_the_matcher_matches_on_the_corpus(
    corpus_dir: Path, tmp_path: Path
) -> None:
    records = _corpus_records(corpus_dir)
    assert len(records) > 4000
    compiled = compile_rules(RULES, dialect="duckdb")
    ids = [r.id for r in RULES]
    preds = [compiled[i] for i in ids]
    index = PatternIndex([(r.event_pattern, r.id) for r in RULES])
    con = _connect(records, tmp_path)
    rows = _evaluate(con, preds)
    assert len(rows) == len(records)
    missed: list[tuple[str, str]] = []
    extra: list[tuple[str, str]] = []
    matched_rules: set[str] = set()
    for record, hits in rows:
        matched = set(index.match(wrap_record(record)))
        matched_rules |= matched
        for rule_id, hit, pred in zip(ids, hits, preds, strict=True):
            if rule_id in matched and not hit:
                missed.append((rule_id, str(record.get("eventID"))))
            elif hit and rule_id not in matched and pred.exact:
                extra.append((rule_id, str(record.get("eventID"))))
    assert missed == []  # never a subset
    assert extra == []  # exact where it says so
    assert len(matched_rules) >= 100  # the corpus exercises the catalog (not a vacuous comparison)


def test_most_catalog_rules_compile_exactly() -> None:
    for dialect in ("trino", "duckdb"):
        compiled = compile_rules(RULES, dialect=dialect)
        exact = sum(p.exact for p in compiled.values())
        # 196 of 222 at the time of writing: the 26 inexact rules read a JSON-string column (requestParameters...)
        assert exact / len(compiled) >= 0.85, (dialect, exact, len(compiled))
        for p in compiled.values():
            assert p.exact == (not p.why_inexact)


# --------------------------------------------------------------------------- #
# Hypothesis: generated patterns and records
# --------------------------------------------------------------------------- #
#: One small vocabulary for pattern values and record values, so that they meet: case folding (Kelvin sign, long
#: s, sharp s, dotted I, n preceded by apostrophe), LIKE and wildcard characters, quotes, addresses, sources.
_WORDS = [
    "a", "A", "k", "K", "\u212a", "s", "S", "\u017f", "ss", "\u00df", "i", "\u0130", "n", "\u0149", "x-y", "b*", "%",
    "_", "it's", "10.0.0.1", "fe80::1", "aws.s3", "s3.amazonaws.com", "",
]  # fmt: skip
_CHARS = "aAkK\u212as\u017f\u00dfi\u0130n\u0149*\\%_!' "
_text = st.sampled_from(_WORDS) | st.text(alphabet=_CHARS, max_size=3)


def _leaf_filter() -> st.SearchStrategy[Any]:
    word = st.sampled_from(_WORDS[:-1]) | st.text(alphabet=_CHARS, min_size=1, max_size=3)
    wildcard = st.text(alphabet="aK*\\%", max_size=4)
    return st.one_of(
        _text,
        st.none(),
        st.booleans(),
        st.integers(-3, 3),
        st.fixed_dictionaries({"prefix": word}),
        st.fixed_dictionaries({"suffix": word}),
        st.fixed_dictionaries({"prefix": st.fixed_dictionaries({"equals-ignore-case": word})}),
        st.fixed_dictionaries({"suffix": st.fixed_dictionaries({"equals-ignore-case": word})}),
        st.fixed_dictionaries({"equals-ignore-case": word}),
        st.fixed_dictionaries({"wildcard": wildcard}),
        st.fixed_dictionaries({"exists": st.booleans()}),
        st.fixed_dictionaries(
            {"cidr": st.sampled_from(["10.0.0.0/8", "fe80::/16", "0.0.0.0/0", "::/0", "10.0.0.1/32"])}
        ),
        st.fixed_dictionaries({"numeric": st.sampled_from([[">", 0], ["<=", 2], [">=", -1, "<", 3], ["=", 1]])}),
        st.fixed_dictionaries({"anything-but": st.lists(word, min_size=1, max_size=2) | word}),
        st.fixed_dictionaries({"anything-but": st.fixed_dictionaries({"prefix": word})}),
        st.fixed_dictionaries({"anything-but": st.fixed_dictionaries({"equals-ignore-case": word})}),
        st.fixed_dictionaries({"anything-but": st.fixed_dictionaries({"wildcard": wildcard})}),
        st.fixed_dictionaries({"anything-but": st.lists(st.integers(0, 3), min_size=1, max_size=2)}),
    )


_PATHS: list[tuple[str, ...]] = [
    ("source",),
    ("detail-type",),
    ("account",),
    ("region",),
    ("version",),
    ("detail", "eventName"),
    ("detail", "eventSource"),
    ("detail", "errorCode"),
    ("detail", "sourceIPAddress"),
    ("detail", "readOnly"),
    ("detail", "userIdentity", "type"),
    ("detail", "userIdentity", "sessionContext", "sessionIssuer", "arn"),
    ("detail", "resources", "ARN"),
    ("detail", "resources", "type"),
    ("detail", "requestParameters", "name"),
    ("detail", "requestParameters", "x-amz-acl"),
    ("detail", "requestParameters", "items", "group"),
    ("detail", "requestParameters", "items"),
    ("detail", "requestParameters"),
    ("detail", "notAColumn"),
]


@st.composite
def _patterns(draw: st.DrawFn) -> dict[str, Any]:
    def one_object() -> dict[str, Any]:
        paths = draw(st.lists(st.sampled_from(_PATHS), min_size=1, max_size=3, unique=True))
        obj: dict[str, Any] = {}
        for path in paths:
            node = obj
            for key in path[:-1]:
                sub = node.setdefault(key, {})
                if not isinstance(sub, dict):
                    break
                node = sub
            else:
                if path[-1] not in node:
                    node[path[-1]] = draw(st.lists(_leaf_filter(), min_size=1, max_size=3))
        return obj

    pattern = one_object()
    if draw(st.booleans()):
        alternatives = [one_object(), one_object()]
        pattern["$or"] = alternatives
    return pattern


def _pattern_words(node: Any) -> list[str]:
    """Every string in a pattern, with the near-misses and case variants a record should be tried with."""
    if isinstance(node, str):
        base = node.replace("\\", "").replace("*", "")
        variants = [node, base, base.upper(), base.casefold(), base + "x", "x" + base, base.replace("k", "\u212a")]
        return [*variants, base.replace("s", "\u017f"), base.replace("ss", "\u00df"), base.replace("i", "\u0130")]
    if isinstance(node, Mapping):
        return [w for v in node.values() for w in _pattern_words(v)]
    if isinstance(node, list):
        return [w for v in node for w in _pattern_words(v)]
    return []


def _values(words: Sequence[str]) -> st.SearchStrategy[str]:
    near = st.sampled_from(sorted(set(words))) if words else st.nothing()
    return near | _text


@st.composite
def _records(draw: st.DrawFn, words: Sequence[str]) -> dict[str, Any]:
    text = _values(words)
    scalar = st.one_of(text, st.none())
    json_value = st.recursive(
        st.one_of(text, st.none(), st.booleans(), st.integers(-2, 3)),
        lambda inner: (
            st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from(["group", "name"]), inner, max_size=2)
        ),
        max_leaves=4,
    )
    source = draw(text | st.sampled_from(["s3.amazonaws.com", " s3.amazonaws.com.cn", "ec2.amazonaws.com\n", ""]))
    rec: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventTime": "2024-05-01T00:00:00Z",
        "eventSource": source,
        "eventName": draw(text | st.just("ConsoleLogin")),
        "eventID": "id",
        "awsRegion": draw(text),
        "recipientAccountId": "111122223333",
    }
    for key in ("errorCode", "sourceIPAddress", "eventType"):
        value = draw(scalar | st.sampled_from(["AwsApiCall", "AwsServiceEvent", "10.1.2.3"]))
        if value is not None:
            rec[key] = value
    if draw(st.booleans()):
        rec["readOnly"] = draw(st.booleans() | text)
    if draw(st.booleans()):
        rec["userIdentity"] = {"type": draw(text), "sessionContext": {"sessionIssuer": {"arn": draw(text)}}}
    if draw(st.booleans()):
        rec["resources"] = draw(st.lists(st.fixed_dictionaries({"ARN": text}, optional={"type": text}), max_size=2))
    if draw(st.booleans()):
        rec["requestParameters"] = draw(
            st.dictionaries(st.sampled_from(["name", "x-amz-acl", "items"]), json_value, max_size=3)
        )
    if draw(st.booleans()):
        rec["serviceEventDetails"] = {"k": "v"}
    return rec


@settings(max_examples=70, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(pattern=_patterns(), data=st.data())
def test_generated_patterns_select_a_superset_and_exactly_when_exact(
    pattern: dict[str, Any], data: st.DataObject, tmp_path: Path
) -> None:
    try:
        validate_pattern(pattern)
    except PatternError:
        assume(False)
    pred = compile_pattern(pattern, dialect="duckdb")
    records = data.draw(st.lists(_records(_pattern_words(pattern)), min_size=1, max_size=8), label="records")
    for i, rec in enumerate(records):
        rec["eventID"] = f"id-{i}"
    con = _connect(records, tmp_path)
    try:
        rows = _evaluate(con, [pred])
    finally:
        con.close()
    assert len(rows) == len(records)
    for record, (hit,) in rows:
        matched = matches(pattern, wrap_record(record))
        assert hit or not matched, (pred.sql, record)
        if pred.exact:
            assert hit == matched, (pred.sql, record)
