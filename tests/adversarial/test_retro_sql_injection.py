"""Catalog patterns reach SQL: a pattern literal is data, never SQL, and never a LIKE wildcard.

A deployed ``cdk.out`` can be edited by whoever can write it, so retro must treat pattern values as hostile.
Each literal must compile to SQL that (DuckDB) selects exactly the records the matcher matches and (Trino)
parses as one SELECT whose string literals are the pattern's own values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlglot
from sqlglot import exp
from trailguard_engine.events import wrap_record
from trailguard_engine.matcher import matches

from trailguard import hunt
from trailguard.retro.rows import columns, record_from_row, select_list
from trailguard.retro.sqlcompile import compile_pattern

HOSTILE = [
    "'",
    "''",
    "\\",
    "\\'",
    "%",
    "_",
    "!",
    "*",
    "--",
    "/*",
    "x'; DROP TABLE cloudtrail; --",
    "') OR TRUE OR ('",
    "a\nb",
    "\u212a\u00e9\u0130",
    "$1",
    '"',
]


def _wildcard_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*")


def _patterns(text: str) -> list[dict[str, Any]]:
    return [
        {"detail": {"eventName": [text]}},
        {"detail": {"eventName": [{"prefix": text}]}},
        {"detail": {"eventName": [{"suffix": text}]}},
        {"detail": {"eventName": [{"wildcard": _wildcard_literal(text)}]}},
        {"detail": {"eventName": [{"equals-ignore-case": text}]}},
        {"detail": {"eventName": [{"anything-but": [text]}]}},
        {"detail": {"eventName": [{"anything-but": {"prefix": text}}]}},
        {"detail": {"userIdentity": {"arn": [text]}}},
        {"detail": {"resources": {"ARN": [text]}}},
        {"detail": {"requestParameters": {"name": [text]}}},
        {"source": [f"aws.{text}"]},
    ]


def _records(text: str) -> list[dict[str, Any]]:
    values = [text, text + "x", "x" + text, "", "anything", "a", text.upper(), text.lower(), "'" + text]
    out = []
    for i, v in enumerate(dict.fromkeys(values)):
        out.append({
            "eventTime": "2024-05-01T00:00:00Z", "eventSource": v + ".amazonaws.com", "eventName": v,
            "eventID": f"e{i}", "userIdentity": {"arn": v}, "resources": [{"ARN": v}], "requestParameters": {"name": v},
        })  # fmt: skip
    return out


@pytest.mark.parametrize("text", HOSTILE, ids=repr)
def test_hostile_literals_select_exactly_what_the_matcher_matches(text: str, tmp_path: Path) -> None:
    records = _records(text)
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    con = hunt.connect(hunt.discover([path]))
    try:
        for pattern in _patterns(text):
            pred = compile_pattern(pattern, dialect="duckdb")
            sql = f"SELECT {select_list('duckdb')}, coalesce({pred.sql}, FALSE) FROM cloudtrail"
            rows = con.execute(sql).fetchall()
            assert len(rows) == len(records)
            n = len(columns())
            for row in rows:
                record = record_from_row(dict(zip(columns(), row[:n], strict=True)))
                matched = matches(pattern, wrap_record(record))
                assert bool(row[n]) or not matched, (pattern, record)
                if pred.exact:
                    assert bool(row[n]) == matched, (pattern, pred.sql, record)
            assert con.execute("SELECT count(*) FROM cloudtrail").fetchone() == (len(records),)
    finally:
        con.close()


@pytest.mark.parametrize("text", HOSTILE, ids=repr)
def test_trino_form_is_one_select_whose_literals_are_the_pattern_values(text: str) -> None:
    for pattern in _patterns(text):
        pred = compile_pattern(pattern, dialect="trino")
        statements = sqlglot.parse(f"SELECT 1 FROM cloudtrail WHERE {pred.sql}", read="trino")
        assert len(statements) == 1
        (tree,) = statements
        assert isinstance(tree, exp.Select)
        assert not list(tree.find_all(exp.Drop, exp.Command))
        literals = {lit.this for lit in tree.find_all(exp.Literal) if lit.is_string}
        if pattern == {"detail": {"eventName": [text]}}:
            assert text in literals
    literal = compile_pattern({"detail": {"eventName": [text]}}, dialect="trino").sql
    assert literal == "eventname = '" + text.replace("'", "''") + "'"


def test_hostile_json_keys_never_reach_a_json_path() -> None:
    key = "a\"]') OR 1=1 --"
    for dialect in ("trino", "duckdb"):
        pred = compile_pattern({"detail": {"eventName": ["X"], "requestParameters": {key: ["x"]}}}, dialect=dialect)
        assert pred.sql == "(eventname = 'X' AND requestparameters IS NOT NULL)"
        assert not pred.exact
