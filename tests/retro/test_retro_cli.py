"""``trailguard retro``: the same findings as ``replay`` on the same events, from candidates the SQL selected.

The DuckDB engine runs end to end here (local files); the Athena and Lake engines run with a stand-in for the
query runner that returns what the engine would (every value a string, structs as JSON text), so the statements,
the merge of several statements and the rebuild of records from strings are exercised without AWS.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from trailguard_engine.catalog import load_catalog
from typer.testing import CliRunner

import trailguard.commands.replay
import trailguard.commands.retro as retro_cmd
from trailguard import hunt
from trailguard.cli import app
from trailguard.retro import run as retro_lib
from trailguard.retro.engines import ManyResults, RemoteResult, inline_parameters
from trailguard.retro.plan import ScanPlan
from trailguard.retro.rows import columns as row_columns
from trailguard.retro.rows import record_from_row, select_list

assert trailguard.commands.replay  # registers `replay` on the app

NOW = datetime(2026, 6, 1, tzinfo=UTC)
runner = CliRunner()


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retro_cmd, "_now", lambda: NOW)


def _records() -> list[dict[str, Any]]:
    """Every catalog example as a bare record, with a time inside the window and an account and region."""
    envelopes = [e for rule in load_catalog() for e in (*rule.examples_positive, *rule.examples_negative)]
    out = []
    for i, env in enumerate(envelopes):
        r = dict(env["detail"])
        r["eventID"] = f"ex-{i:05d}"
        r["eventTime"] = f"2026-05-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z"
        if i % 3 == 0:
            r["recipientAccountId"] = "222222222222"  # a second account, so that --accounts has something to prune
        r.setdefault("recipientAccountId", "111111111111")
        r.setdefault("awsRegion", "us-east-1" if i % 2 else "eu-west-1")
        out.append(r)
    out.sort(key=lambda r: (r["eventTime"], r["eventID"]))
    return out


def _tree(base: Path, records: list[dict[str, Any]]) -> Path:
    groups: dict[Path, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        y, m, d = r["eventTime"][:10].split("-")
        folder = base / "AWSLogs" / str(r["recipientAccountId"]) / "CloudTrail" / str(r["awsRegion"]) / y / m / d
        groups[folder].append(r)
    for folder, recs in groups.items():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{recs[0]['recipientAccountId']}_CloudTrail_x.json.gz").write_bytes(
            gzip.compress(json.dumps({"Records": recs}).encode())
        )
    return base


def _findings(output: str) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    out = []
    for line in output.splitlines():
        doc = json.loads(line)
        findings = tuple(sorted((f["rule"], f["decision"]) for f in doc.get("findings", [])))
        out.append((doc["eventID"], doc["verdict"], findings))
    return sorted(out)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tree(tmp_path_factory.mktemp("retro"), _records())


@pytest.fixture(scope="module")
def sorted_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("retro-jsonl") / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records()), encoding="utf-8")
    return path


def test_retro_on_duckdb_finds_what_replay_finds_on_every_catalog_example(tree: Path, sorted_jsonl: Path) -> None:
    retro = runner.invoke(app, ["retro", str(tree), "--since", "60d", "-o", "jsonl", "--only-findings"])
    assert retro.exit_code == 0, retro.output
    replay = runner.invoke(app, ["replay", str(sorted_jsonl), "-o", "jsonl", "--only-findings"])
    assert replay.exit_code == 0, replay.output
    got, want = _findings(retro.stdout), _findings(replay.stdout)
    assert len(want) > 200  # every rule has a positive example
    assert got == want
    assert "retro (duckdb): 1 queries" in retro.stderr


def test_only_candidates_reach_python(tree: Path) -> None:
    result = runner.invoke(
        app, ["retro", str(tree), "--since", "60d", "--rule", "cloudtrail-stop-logging", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    stop_logging = [r for r in _records() if r.get("eventName") == "StopLogging"]
    assert doc["summary"]["events"] == len(stop_logging) < len(_records()) / 20
    assert {f["rule"] for f in doc["findings"]} == {"cloudtrail-stop-logging"}


def test_the_window_and_accounts_prune_files_and_events(tree: Path) -> None:
    wide = runner.invoke(app, ["retro", str(tree), "--since", "60d", "-o", "json"])
    narrow = runner.invoke(
        app,
        [
            "retro",
            str(tree),
            "--since",
            "2026-05-10",
            "--until",
            "2026-05-12",
            "--accounts",
            "222222222222",
            "-o",
            "json",
        ],
    )
    assert wide.exit_code == narrow.exit_code == 0, narrow.output
    files = [int(line.split(" files")[0].rsplit(", ", 1)[-1]) for line in (wide.stderr, narrow.stderr)]
    assert 0 < files[1] < files[0] / 4  # two days (plus the margin) of one account's files
    times = [f["eventTime"] for f in json.loads(narrow.stdout)["findings"]]
    accounts = {f["account"] for f in json.loads(narrow.stdout)["findings"]}
    assert times and all("2026-05-10" <= t < "2026-05-12" for t in times)
    assert accounts == {"222222222222"}


def test_fail_on_gates_like_replay(tree: Path) -> None:
    result = runner.invoke(app, ["retro", str(tree), "--since", "60d", "--fail-on", "critical", "-o", "json"])
    assert result.exit_code == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "duckdb"], "give PATHS"),
        (["--engine", "athena", "x"], "do not give PATHS"),
        (["--engine", "lake"], "--event-data-store"),
        (["x", "--accounts", "1234"], "12-digit"),
        (["x", "--regions", "us-east-1'--"], "region name"),
        (["x", "--since", "2026-05-02", "--until", "2026-05-01"], "not before"),
        (["x", "--rule", "cloudtrail-stop-loging"], "did you mean"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["retro", *args])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_show_sql_for_athena_fits_one_statement_per_window_and_parses_as_trino() -> None:
    result = runner.invoke(app, ["retro", "--engine", "athena", "--since", "90d", "--show-sql"])
    assert result.exit_code == 0, result.output
    statements = [s for s in result.stdout.split(";\n") if s.strip()]
    assert len(statements) == 3  # 90 days in 31-day windows, every rule in one statement each
    for text in statements:
        _header, sql = text.split("\n", 1)
        assert len(sql.encode()) <= retro_lib.ATHENA_MAX_SQL
        assert 'FROM "trailguard"."cloudtrail" WHERE "date" >= ?' in sql
        sqlglot.parse_one(sql.replace("?", "'x'"), read="trino")


def test_lake_statements_stay_under_lakes_limit_with_coarse_predicates_for_the_big_rules() -> None:
    plan = ScanPlan(datetime(2026, 5, 1, tzinfo=UTC), NOW)
    stats = retro_lib.RetroStats("lake")
    queries = retro_lib.remote_statements(
        plan,
        load_catalog(),
        relation=retro_lib.lake_relation("EXAMPLE-f852-4e8f"),
        max_sql=retro_lib.LAKE_MAX_SQL,
        engine="lake",
        stats=stats,
    )
    assert all(len(inline_parameters(sql, params)) <= retro_lib.LAKE_MAX_SQL for sql, params in queries)
    assert stats.coarse_rules  # the longest predicates do not fit Lake's 10,000 characters
    assert stats.statements == len(queries) > 1


def _as_engine_rows(sql: str, con: Any) -> list[dict[str, str | None]]:
    """What Athena or Lake would return for the same selection: strings, structs as JSON text."""
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [{n: None if v is None else str(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def test_remote_rows_are_merged_across_statements_and_rebuilt_from_strings(tree: Path) -> None:
    """Two statements returning overlapping rows: each event is judged once; a duplicate delivery stays twice."""
    con = hunt.connect(hunt.discover([tree]), lock=False)
    rows = _as_engine_rows(f"SELECT {select_list('duckdb')} FROM cloudtrail ORDER BY eventid LIMIT 200", con)
    dup = rows[0]

    def run_many(queries: Any) -> ManyResults:
        results = (
            RemoteResult("athena", "q1", tuple(rows[0]), iter([*rows[: len(rows) // 2 + 5], dup]), 10, None, 0.1),
            RemoteResult("athena", "q2", tuple(rows[0]), iter(rows[len(rows) // 2 :]), 20, None, 0.2),
        )
        return ManyResults(results, 30, 0.3)

    stats = retro_lib.RetroStats("athena")
    items = list(retro_lib.remote_items(run_many, [("q", []), ("q", [])], engine="athena", stats=stats))
    assert len(items) == len(rows) + 1  # the duplicate delivery of rows[0] is kept once more
    assert stats.bytes_scanned == 30 and stats.cost_usd == pytest.approx(0.3) and stats.query_ids == ["q1", "q2"]
    times = [i[2]["eventTime"] for i in items]
    assert times == sorted(times)
    first = record_from_row(dup)
    assert any(i[2] == first for i in items)
    assert isinstance(first.get("userIdentity", {}), dict)


def test_on_lake_no_statement_reads_inside_json_fields_and_nested_json_text_is_parsed_back() -> None:
    """Lake keeps a nested object in requestParameters as JSON text: a path into it would be a subset there."""
    plan = ScanPlan(datetime(2026, 5, 1, tzinfo=UTC), NOW)
    queries = retro_lib.remote_statements(
        plan, load_catalog(), relation=retro_lib.lake_relation("EXAMPLE-f852-4e8f"), max_sql=retro_lib.LAKE_MAX_SQL,
        engine="lake",
    )  # fmt: skip
    for sql, _params in queries:
        predicates = sql.rsplit(" FROM cloudtrail WHERE ", 1)[1]  # the WHERE after the CTE and the select list
        assert "json_extract" not in predicates
        for column in ("requestparameters", "responseelements", "additionaleventdata"):
            assert column not in predicates
    rule = next(r for r in load_catalog() if r.id == "s3-account-block-public-access-removed")
    record = dict(rule.examples_positive[0]["detail"])
    row = dict.fromkeys(row_columns())
    row.update(
        eventversion="1.08", eventtime=record["eventTime"], eventsource=record["eventSource"],
        eventname=record["eventName"], awsregion=record["awsRegion"], eventid="lake-1", eventtype="AwsApiCall",
        recipientaccountid=record["recipientAccountId"], account=record["recipientAccountId"],
        useridentity=json.dumps(record["userIdentity"]),
        # as Lake stores it: a map of strings, the nested object as JSON text
        requestparameters=json.dumps({k: json.dumps(v) if isinstance(v, dict) else v
                                      for k, v in record["requestParameters"].items()}),
    )  # fmt: skip

    def run_many(queries: Any) -> ManyResults:
        return ManyResults((RemoteResult("lake", "q", tuple(row), iter([row]), 1, None, 0.0),), 1, 0.0)

    items = list(retro_lib.remote_items(run_many, [("q", [])], engine="lake", stats=retro_lib.RetroStats("lake")))
    (item,) = items
    assert item[2]["requestParameters"] == record["requestParameters"]
    from trailguard_engine.evaluate import Evaluator

    assert "s3-account-block-public-access-removed" in {f.rule for f in Evaluator().evaluate(item[2]).findings}
