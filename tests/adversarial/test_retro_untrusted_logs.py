"""``trailguard retro`` over logs a member-account admin could have written into.

Attacker: an admin of one member account. They choose every caller-controlled value of their own account's
CloudTrail records (user agents, ARNs of their roles, request parameters) and, in a synced tree or a breached
archive, can plant whole files under their account's ``AWSLogs/<account>/`` folder. What they must not get:

* to silence a real event by putting a crafted record next to it (type-confused fields, a huge field);
* to reach the analyst's terminal or spreadsheet as markup or formulas through retro's output;
* to move a record into another account's scan by claiming that account in ``recipientAccountId``;
* to change what the scan's placeholders bind by putting ``?``, ``$tg_since``, quotes or ``--`` in a value.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.tokenizer_core import TokenType
from sqlglot.tokens import Tokenizer
from trailguard_engine.catalog import load_catalog
from typer.testing import CliRunner

import trailguard.commands.replay
import trailguard.commands.retro as retro_cmd
from trailguard import hunt
from trailguard.cli import app
from trailguard.retro import run as retro_lib
from trailguard.retro.engines import inline_parameters, qualified_table
from trailguard.retro.plan import ScanPlan
from trailguard.retro.rows import select_list

assert trailguard.commands.replay  # registers `replay` on the app

NOW = datetime(2026, 6, 1, tzinfo=UTC)
A = "111111111111"
B = "222222222222"
HIDE = "[black on black]secret[/black on black]"
FORMULA = '=HYPERLINK("https://evil.example/?x","click")'
HOSTILE = ["?", "$tg_since", "$1", "it's -- not a comment", "') OR TRUE --", "/* ? */"]
RULE = "cloudtrail-stop-logging"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retro_cmd, "_now", lambda: NOW)


def _stop_logging(event_id: str, account: str = B, **changes: Any) -> dict[str, Any]:
    """A real StopLogging record of ``account`` (the catalog's example), on 2026-05-20."""
    rule = next(r for r in load_catalog() if r.id == RULE)
    record: dict[str, Any] = json.loads(json.dumps(rule.examples_positive[0]["detail"]))
    record.update(eventID=event_id, eventTime="2026-05-20T10:00:00Z", recipientAccountId=account)
    record.update(changes)
    return record


def _plant(base: Path, folder_account: str, records: list[dict[str, Any]], name: str = "f") -> Path:
    folder = base / "AWSLogs" / folder_account / "CloudTrail" / "us-east-1" / "2026" / "05" / "20"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{folder_account}_CloudTrail_us-east-1_{name}.json.gz").write_bytes(
        gzip.compress(json.dumps({"Records": records}).encode())
    )
    return base


def _confused() -> list[dict[str, Any]]:
    """StopLogging look-alikes, each with one field of the wrong JSON type, and one with all of them."""
    changes: list[dict[str, Any]] = [
        {"userIdentity": "root"},
        {"resources": "arn:aws:cloudtrail:us-east-1:222222222222:trail/org-trail"},
        {"requestParameters": ["name", "org-trail"]},
        {"eventTime": "yesterday"},
        {"eventTime": 1779271200},
        {"userAgent": "x" * (1 << 20)},  # 1 MB
        {"readOnly": "maybe"},
        {"eventName": ["StopLogging"]},
    ]
    out = [_stop_logging(f"bad-{i}", **c) for i, c in enumerate(changes)]
    everything = {k: v for c in changes for k, v in c.items() if k != "eventTime"}
    out.append(_stop_logging("bad-all", **everything, eventTime="yesterday"))
    return out


def _retro(*args: str) -> Any:
    res = runner.invoke(app, ["retro", *args])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    return res


def _lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


# --------------------------------------------------------------------------- #
# Crafted records next to a real event
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("real_at", [0, 4, 9], ids=["first", "middle", "last"])
def test_type_confused_records_never_silence_a_real_stop_logging(tmp_path: Path, real_at: int) -> None:
    records = _confused()
    records.insert(real_at, _stop_logging("real-1"))
    tree = _plant(tmp_path, B, records)
    res = _retro(str(tree), "--since", "30d", "-o", "jsonl")  # the whole catalog, not one rule
    assert res.exit_code == 0, res.output
    found = {d["eventID"]: d for d in _lines(res.stdout)}
    assert RULE in {f["rule"] for f in found["real-1"]["findings"]}
    assert "internal error" not in res.stderr.replace("0 internal errors", "")


def test_a_huge_field_in_another_record_of_the_file_does_not_hide_the_real_one(tmp_path: Path) -> None:
    noise = _stop_logging("noise", eventName="DescribeTrails", userAgent="y" * (1 << 20), requestParameters=None)
    tree = _plant(tmp_path, B, [noise, _stop_logging("real-1"), noise])
    res = _retro(str(tree), "--since", "30d", "--rule", RULE, "-o", "jsonl")
    assert res.exit_code == 0, res.output
    assert [d["eventID"] for d in _lines(res.stdout)] == ["real-1"]


class FakeAthena:
    """Athena that returns planted rows as strings (as the Glue table gives them) and records every request."""

    def __init__(self, rows: list[dict[str, str | None]]) -> None:
        self.rows = rows
        self.requests: list[dict[str, Any]] = []

    def get_work_group(self, **_: Any) -> dict[str, Any]:
        return {"WorkGroup": {"Name": "trailguard", "State": "ENABLED", "Configuration": {}}}

    def start_query_execution(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"QueryExecutionId": f"q{len(self.requests)}"}

    def get_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:
        return {"QueryExecution": {"Status": {"State": "SUCCEEDED"}, "Statistics": {"DataScannedInBytes": 1}}}

    def get_query_results(self, **_: Any) -> dict[str, Any]:
        names = list(self.rows[0])
        raw: list[list[str | None]] = [[*names], *([r[n] for n in names] for r in self.rows)]
        return {
            "ResultSet": {
                "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in r]} for r in raw],
                "ResultSetMetadata": {"ColumnInfo": [{"Name": n} for n in names]},
            }
        }


def _as_athena_rows(records: list[dict[str, Any]], tmp: Path) -> list[dict[str, str | None]]:
    con = hunt.connect(hunt.discover([_plant(tmp, B, records)]), lock=False)
    try:
        cur = con.execute(f"SELECT {select_list('duckdb')} FROM cloudtrail ORDER BY eventid")
        names = [d[0] for d in cur.description]
        return [{n: None if v is None else str(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]
    finally:
        con.close()


def test_planted_strings_in_athena_rows_neither_crash_nor_silence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Rows whose struct columns are not JSON, or JSON of the wrong shape, next to the real event's row."""
    hostile = _stop_logging("real-2", userAgent=" ".join(HOSTILE))
    hostile["userIdentity"]["arn"] = f"arn:aws:sts::{B}:assumed-role/Admin/" + "".join(HOSTILE)
    rows = _as_athena_rows([_stop_logging("real-1"), hostile], tmp_path)
    bad: list[dict[str, str | None]] = []
    for i, (column, value) in enumerate(
        [("useridentity", "root"), ("useridentity", '"root"'), ("useridentity", "[1, 2]"), ("resources", "{"),
         ("resources", '"x"'), ("requestparameters", "[1]"), ("requestparameters", "not json"),
         ("tlsdetails", "[]"), ("readonly", "maybe"), ("eventtime", "yesterday")]
    ):  # fmt: skip
        row = dict(rows[0], eventid=f"bad-{i}")
        row[column] = value
        bad.append(row)
    fake = FakeAthena([*bad[:5], rows[0], *bad[5:], rows[1]])
    monkeypatch.setattr(retro_cmd, "aws_client", lambda service, profile, region: fake)
    res = _retro("--engine", "athena", "--since", "20d", "--accounts", B, "-o", "jsonl")
    assert res.exit_code == 0, res.output
    found = {d["eventID"]: d for d in _lines(res.stdout)}
    for real in ("real-1", "real-2"):
        assert RULE in {f["rule"] for f in found[real]["findings"]}, res.stderr
    # the hostile text came back as event data, verbatim, and went into no request
    assert found["real-2"]["principal"] == hostile["userIdentity"]["arn"]
    (request,) = fake.requests
    assert request["ExecutionParameters"] == [
        "'2026/05/11'", "'2026/06/02'", f"'{B}'", "'2026-05-12T00:00:00Z'", "'2026-06-01T00:00:00Z'"
    ]  # fmt: skip


# --------------------------------------------------------------------------- #
# Output: markup and formulas stay text
# --------------------------------------------------------------------------- #
@pytest.fixture
def marked_tree(tmp_path: Path) -> Path:
    record = _stop_logging("=1+1", userAgent=HIDE)
    record["userIdentity"]["arn"] = f"arn:aws:sts::{B}:assumed-role/Admin/{HIDE}"
    record["requestParameters"]["name"] = FORMULA
    record["sourceIPAddress"] = "@SUM(A1:A9)"
    return _plant(tmp_path, B, [record])


def test_rich_markup_in_fields_reaches_retros_table_as_text(marked_tree: Path) -> None:
    res = runner.invoke(app, ["retro", str(marked_tree), "--since", "30d"], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    assert HIDE in res.stdout  # printed literally, not interpreted as style tags that would hide "secret"
    assert FORMULA in res.stdout


def test_formulas_in_fields_reach_retros_csv_as_text(marked_tree: Path) -> None:
    res = runner.invoke(app, ["retro", str(marked_tree), "--since", "30d", "-o", "csv"])
    assert res.exit_code == 0, res.output
    (header, row) = list(csv.reader(io.StringIO(res.stdout)))
    cells = dict(zip(header, row, strict=True))
    assert cells["eventID"] == "'=1+1"
    assert cells["sourceIPAddress"] == "'@SUM(A1:A9)"
    assert cells["principal"].endswith(HIDE)
    for value in row:  # no cell starts with a character a spreadsheet reads as a formula
        assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


# --------------------------------------------------------------------------- #
# A record claiming another account
# --------------------------------------------------------------------------- #
@pytest.fixture
def claim_tree(tmp_path: Path) -> Path:
    """B's admin plants, in B's own folder, a StopLogging that claims account A as its recipient."""
    record = _stop_logging("claims-a", account=A)
    record["userIdentity"]["accountId"] = A
    return _plant(tmp_path, B, [record])


def test_the_path_partition_decides_what_retro_reads(claim_tree: Path) -> None:
    """--accounts A does not read B's folder, whatever the records inside claim: B cannot add to A's scan.

    --accounts B reads it (the file is B's), and the finding keeps the record's own claim as its account (A), as
    ``replay`` shows it, but never silently: stderr names the record, the folder and the claim.
    """
    for_a = _retro(str(claim_tree), "--since", "30d", "--accounts", A, "-o", "jsonl")
    assert for_a.exit_code == 0, for_a.output
    assert for_a.stdout == ""
    assert "0 candidates" in for_a.stderr
    for_b = _retro(str(claim_tree), "--since", "30d", "--accounts", B, "-o", "jsonl")
    assert for_b.exit_code == 0, for_b.output
    (doc,) = _lines(for_b.stdout)
    assert doc["eventID"] == "claims-a" and doc["account"] == A
    assert RULE in {f["rule"] for f in doc["findings"]}
    assert "1 candidate record(s) claim an account other than the AWSLogs/ folder" in for_b.stderr
    assert f"claims-a in AWSLogs/{B}/ claims account {A}" in for_b.stderr


def test_the_same_claim_on_athena_is_read_by_the_partition_account(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On Athena the partition column is the S3 path's account: the statement prunes by it, never by the claim."""
    record = _stop_logging("claims-a", account=A)
    (row,) = _as_athena_rows([record], tmp_path)
    assert row["account"] == B and row["recipientaccountid"] == A
    fake = FakeAthena([row])
    monkeypatch.setattr(retro_cmd, "aws_client", lambda service, profile, region: fake)
    res = _retro("--engine", "athena", "--since", "20d", "--accounts", B, "--rule", RULE, "-o", "jsonl")
    assert res.exit_code == 0, res.output
    (request,) = fake.requests
    where = request["QueryString"].split(' FROM "trailguard"."cloudtrail" WHERE ', 1)[1]
    assert where.startswith('"date" >= ? AND "date" <= ? AND account IN (?) AND ')
    assert "recipientaccountid" not in where
    assert f"'{B}'" in request["ExecutionParameters"]
    (doc,) = _lines(res.stdout)
    assert doc["account"] == A


# --------------------------------------------------------------------------- #
# Placeholder text inside values and pattern literals
# --------------------------------------------------------------------------- #
def _hostile_rule() -> Any:
    rule = next(r for r in load_catalog() if r.id == RULE)
    pattern = {"detail": {"eventSource": ["cloudtrail.amazonaws.com"], "eventName": HOSTILE}}
    return dataclasses.replace(rule, id="hostile-literals", event_pattern=pattern)


def _marks(sql: str) -> int:
    return sum(1 for t in Tokenizer(dialect="trino").tokenize(sql) if t.token_type is TokenType.PLACEHOLDER)


@pytest.mark.parametrize("accounts", [(), (A, B)], ids=["all-accounts", "two-accounts"])
def test_placeholder_text_in_a_pattern_literal_does_not_shift_remote_binding(accounts: tuple[str, ...]) -> None:
    plan = ScanPlan(datetime(2026, 5, 1, tzinfo=UTC), NOW, accounts=accounts)
    _where, expected = plan.split()[0].where(positional=True)
    for relation, limit in ((qualified_table("trailguard", "cloudtrail"), retro_lib.ATHENA_MAX_SQL),
                            (retro_lib.lake_relation("EXAMPLEstore0001"), retro_lib.LAKE_MAX_SQL)):  # fmt: skip
        (query,) = retro_lib.remote_statements(
            plan, [_hostile_rule()], relation=relation, max_sql=limit, engine="athena"
        )
        sql, params = query
        assert params == expected  # the plan's values only, in the plan's order
        assert _marks(sql) == len(params)
        inlined = inline_parameters(sql, params)  # what Lake receives (and what Athena's substitution gives)
        tree = sqlglot.parse_one(inlined, read="trino")
        literals = {lit.this for lit in tree.find_all(exp.Literal) if lit.is_string}
        assert set(HOSTILE) <= literals  # each value still one whole string literal
        assert {p.strip("'") for p in params} <= literals


def test_placeholder_text_in_a_pattern_literal_is_matched_as_text_on_duckdb(tmp_path: Path) -> None:
    """DuckDB binds ``$tg_since`` by name: the same text inside a string literal must stay text."""
    records = [_stop_logging(f"h-{i}", account=B, eventName=name) for i, name in enumerate(HOSTILE)]
    records.append(_stop_logging("plain", account=B, eventName="2026-05-12T00:00:00Z"))  # the bound value's text
    tree = _plant(tmp_path, B, records)
    stats = retro_lib.RetroStats("duckdb")
    plan = ScanPlan(datetime(2026, 5, 12, tzinfo=UTC), NOW, accounts=(B,))
    items = list(retro_lib.duckdb_items([tree], plan, [_hostile_rule()], stats))
    assert sorted(record["eventName"] for _label, _n, record in items) == sorted(HOSTILE)
