"""``trailguard retro --engine athena|lake`` end to end through the CLI, with botocore's Stubber for the AWS calls.

Only ``trailguard.commands.retro.aws_client`` is replaced: the statements, the runners, the paging, the merge and
the rebuild of records from the engines' strings are the real code. A record comes back as the engine would
return it (every value a string, structs as JSON text: rows of the local Glue-shaped view, stringified), and the
findings must be the ones ``replay`` gives for the same record.
"""

from __future__ import annotations

import gzip
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from sqlglot.tokenizer_core import TokenType
from sqlglot.tokens import Tokenizer
from trailguard_engine.catalog import load_catalog
from typer.testing import CliRunner

import trailguard.commands.replay
import trailguard.commands.retro as retro_cmd
from trailguard import hunt
from trailguard.cli import app
from trailguard.retro.athena import athena_cost
from trailguard.retro.lake import MAX_STATEMENT, lake_cost
from trailguard.retro.rows import select_list

assert trailguard.commands.replay  # registers `replay` on the app

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ACCOUNT = "111122223333"
STORE = "EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retro_cmd, "_now", lambda: NOW)


def _stop_logging(event_id: str, when: str, **changes: Any) -> dict[str, Any]:
    """The catalog's StopLogging example as a bare record, moved to ``when``."""
    rule = next(r for r in load_catalog() if r.id == "cloudtrail-stop-logging")
    record: dict[str, Any] = json.loads(json.dumps(rule.examples_positive[0]["detail"]))
    record.update(eventID=event_id, eventTime=when, **changes)
    return record


def _engine_rows(records: list[dict[str, Any]], tmp: Path) -> list[dict[str, str | None]]:
    """``records`` as Athena or Lake returns retro's SELECT list: every value a string, structs as JSON text."""
    by_folder: dict[Path, list[dict[str, Any]]] = {}
    for r in records:
        y, m, d = r["eventTime"][:10].split("-")
        folder = tmp / "AWSLogs" / r["recipientAccountId"] / "CloudTrail" / r["awsRegion"] / y / m / d
        by_folder.setdefault(folder, []).append(r)
    for folder, recs in by_folder.items():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "x_CloudTrail_x.json.gz").write_bytes(gzip.compress(json.dumps({"Records": recs}).encode()))
    con = hunt.connect(hunt.discover([tmp]), lock=False)
    try:
        cur = con.execute(f"SELECT {select_list('duckdb')} FROM cloudtrail ORDER BY eventid")
        names = [d[0] for d in cur.description]
        return [{n: None if v is None else str(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]
    finally:
        con.close()


def _replay_lines(records: list[dict[str, Any]], tmp: Path, *extra: str) -> list[dict[str, Any]]:
    path = tmp / "replay.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    res = runner.invoke(app, ["replay", str(path), "-o", "jsonl", *extra])
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.stdout.splitlines()]


def _findings(lines: list[dict[str, Any]]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    return sorted((d["eventID"], d["verdict"], d.get("findings", [])) for d in lines)


def _placeholders(sql: str) -> int:
    return sum(1 for t in Tokenizer(dialect="trino").tokenize(sql) if t.token_type is TokenType.PLACEHOLDER)


# --------------------------------------------------------------------------- #
# Athena
# --------------------------------------------------------------------------- #
def _athena() -> Any:
    return boto3.client("athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")


def _workgroup() -> dict[str, Any]:
    return {
        "WorkGroup": {
            "Name": "trailguard",
            "State": "ENABLED",
            "Configuration": {
                "ResultConfiguration": {
                    "OutputLocation": "s3://results/athena/",
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": "k"},
                },
                "EnforceWorkGroupConfiguration": True,
                "BytesScannedCutoffPerQuery": 100 * 1024**3,
            },
        }
    }


def _execution(qid: str, state: str, scanned: int = 0, **status: Any) -> dict[str, Any]:
    return {
        "QueryExecution": {
            "QueryExecutionId": qid,
            "Status": {"State": state, **status},
            "Statistics": {"DataScannedInBytes": scanned, "EngineExecutionTimeInMillis": 10},
        }
    }


def _athena_page(
    rows: list[dict[str, str | None]], names: list[str], *, header: bool, token: str | None = None
) -> dict[str, Any]:
    raw: list[list[str | None]] = [[*names]] if header else []
    raw += [[r[n] for n in names] for r in rows]
    page: dict[str, Any] = {
        "ResultSet": {
            "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in r]} for r in raw],
            "ResultSetMetadata": {"ColumnInfo": [{"Name": n, "Type": "varchar"} for n in names]},
        }
    }
    if token:
        page["NextToken"] = token
    return page


#: 90 days before NOW in 31-day windows; each bound as Athena receives it (a quoted SQL literal), in order:
#: "date" bounds a day wider ('yyyy/MM/dd'), the accounts, the regions, then the exact eventtime bounds.
WINDOWS = [
    ["'2026/03/02'", "'2026/04/04'", f"'{ACCOUNT}'", "'us-east-1'", "'2026-03-03T00:00:00Z'", "'2026-04-03T00:00:00Z'"],
    ["'2026/04/02'", "'2026/05/05'", f"'{ACCOUNT}'", "'us-east-1'", "'2026-04-03T00:00:00Z'", "'2026-05-04T00:00:00Z'"],
    ["'2026/05/03'", "'2026/06/02'", f"'{ACCOUNT}'", "'us-east-1'", "'2026-05-04T00:00:00Z'", "'2026-06-01T00:00:00Z'"],
]
SCANNED = [5 * 1024**3, 0, 2 * 1024**4]


def test_athena_end_to_end_finds_what_replay_finds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    records = [
        _stop_logging("ev-a", "2026-05-20T10:00:00Z"),
        _stop_logging("ev-b", "2026-05-21T10:00:00Z", userAgent="console.amazonaws.com"),
    ]
    rows = _engine_rows(records, tmp_path / "rows")
    names = list(rows[0])
    client = _athena()
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.athena.StartQueryExecution", lambda params, **_: sent.append(params)
    )
    monkeypatch.setattr(retro_cmd, "aws_client", lambda service, profile, region: client)
    with Stubber(client) as stub:
        stub.add_response("get_work_group", _workgroup(), {"WorkGroup": "trailguard"})
        for i, params in enumerate(WINDOWS):
            qid = f"q{i}"
            stub.add_response(
                "start_query_execution",
                {"QueryExecutionId": qid},
                {  # exactly these keys: no ResultConfiguration, the workgroup enforces its own location and key
                    "QueryString": ANY,
                    "WorkGroup": "trailguard",
                    "QueryExecutionContext": {"Database": "trailguard", "Catalog": "AwsDataCatalog"},
                    "ExecutionParameters": params,
                },
            )
            stub.add_response(
                "get_query_execution", _execution(qid, "SUCCEEDED", SCANNED[i]), {"QueryExecutionId": qid}
            )
            if i < 2:  # the older windows hold nothing: the header row only
                stub.add_response(
                    "get_query_results",
                    _athena_page([], names, header=True),
                    {"QueryExecutionId": qid, "MaxResults": 1000},
                )
                continue
            stub.add_response(  # the last window's rows over two pages
                "get_query_results",
                _athena_page(rows[:1], names, header=True, token="t2"),
                {"QueryExecutionId": qid, "MaxResults": 1000},
            )
            stub.add_response(
                "get_query_results",
                _athena_page(rows[1:], names, header=False),
                {"QueryExecutionId": qid, "MaxResults": 1000, "NextToken": "t2"},
            )
        res = runner.invoke(
            app,
            ["retro", "--engine", "athena", "--since", "90d", "--accounts", ACCOUNT, "--regions", "us-east-1",
             "--jobs", "1", "-o", "jsonl"],
        )  # fmt: skip
        stub.assert_no_pending_responses()
    assert res.exit_code == 0, res.output
    assert len(sent) == 3  # one statement per 31-day window: the whole catalog fits Athena's limit
    for sql, params in zip((p["QueryString"] for p in sent), WINDOWS, strict=True):
        assert 'FROM "trailguard"."cloudtrail" WHERE "date" >= ? AND "date" <= ? AND account IN (?)' in sql
        assert _placeholders(sql) == len(params)
        assert ACCOUNT not in sql and "2026" not in sql  # bound, never pasted
    got = _findings([json.loads(line) for line in res.stdout.splitlines()])
    want = _findings(_replay_lines(records, tmp_path))
    assert got == want
    assert [f[0] for f in got] == ["ev-a", "ev-b"] and all(f[2] for f in got)
    cost = sum(athena_cost(b) for b in SCANNED)
    assert f"retro (athena): 3 queries, 2 candidates, 2.0 TB scanned, ~${cost:.4f}" in res.stderr


def _fake_athena(started: list[dict[str, Any]], barrier: threading.Barrier) -> Any:
    lock = threading.Lock()

    class FakeAthena:
        """Thread-safe: start waits at ``barrier``, so the run passes only if the queries are in flight together."""

        def get_work_group(self, **_: Any) -> dict[str, Any]:
            return _workgroup()

        def start_query_execution(self, **request: Any) -> dict[str, Any]:
            with lock:
                started.append(request)
                qid = f"q{len(started)}"
            barrier.wait()
            return {"QueryExecutionId": qid}

        def get_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:
            return _execution(QueryExecutionId, "SUCCEEDED", 1024**3)

        def get_query_results(self, **_: Any) -> dict[str, Any]:
            return _athena_page([], ["eventid"], header=True)

    return FakeAthena()


def test_more_than_eight_accounts_are_account_groups_run_in_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = [f"{n:012d}" for n in range(100000000001, 100000000018)]  # 17 accounts: groups of 8, 8 and 1
    started: list[dict[str, Any]] = []
    barrier = threading.Barrier(3, timeout=30)  # broken (the run fails) unless the three queries run together
    fake = _fake_athena(started, barrier)
    monkeypatch.setattr(retro_cmd, "aws_client", lambda service, profile, region: fake)
    res = runner.invoke(
        app,
        ["retro", "--engine", "athena", "--since", "20d", "--accounts", ",".join(accounts), "--jobs", "3",
         "--rule", "cloudtrail-stop-logging"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    groups = sorted(tuple(p[2:-2]) for p in (r["ExecutionParameters"] for r in started))
    assert groups == sorted([tuple(f"'{a}'" for a in accounts[i : i + 8]) for i in (0, 8, 16)])
    assert "retro (athena): 3 queries, 0 candidates, 3.0 GB scanned" in res.stderr


@pytest.mark.parametrize(
    ("state", "status", "message"),
    [
        ("FAILED", {"StateChangeReason": "HIVE_BAD_DATA: malformed JSON", "AthenaError": {"ErrorCategory": 2}},
         "FAILED: HIVE_BAD_DATA: malformed JSON (ErrorCategory=2)"),
        ("CANCELLED", {"StateChangeReason": "Query exhausted the bytes scanned limit"},
         "CANCELLED: Query exhausted the bytes scanned limit"),
    ],
)  # fmt: skip
def test_failed_and_cancelled_queries_exit_2_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, state: str, status: dict[str, Any], message: str
) -> None:
    client = _athena()
    monkeypatch.setattr(retro_cmd, "aws_client", lambda service, profile, region: client)
    with Stubber(client) as stub:
        stub.add_response("get_work_group", _workgroup(), {"WorkGroup": "trailguard"})
        stub.add_response("start_query_execution", {"QueryExecutionId": "q0"}, None)
        stub.add_response("get_query_execution", _execution("q0", state, **status), {"QueryExecutionId": "q0"})
        res = runner.invoke(app, ["retro", "--engine", "athena", "--since", "10d", "--rule", "cloudtrail-stop-logging"])
        stub.assert_no_pending_responses()
    assert res.exit_code == 2, res.output
    assert message in res.stderr
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)  # typer.Exit(2), no crash
    assert res.stdout == ""


# --------------------------------------------------------------------------- #
# CloudTrail Lake
# --------------------------------------------------------------------------- #
def _lake() -> Any:
    return boto3.client("cloudtrail", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")


def _lake_rows(rows: list[dict[str, str | None]]) -> list[list[dict[str, str]]]:
    """Lake's QueryResultRows: one ``{column: value}`` per cell; a NULL cell is left out."""
    return [[{k: v} for k, v in r.items() if v is not None] for r in rows]


def test_lake_end_to_end_with_the_whole_catalog(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    records = [
        _stop_logging("ev-a", "2026-05-20T10:00:00Z"),
        _stop_logging("ev-b", "2026-05-21T10:00:00Z", sourceIPAddress="198.51.100.7"),
    ]
    rows = _engine_rows(records, tmp_path / "rows")
    # The dry run says how many statements the real run sends (Lake's 10,000-character limit splits the catalog).
    shown = runner.invoke(
        app,
        ["retro", "--engine", "lake", "--event-data-store", STORE, "--since", "10d", "--accounts", ACCOUNT,
         "--show-sql"],
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    count = shown.stdout.count("-- statement ")
    assert count > 1
    client = _lake()
    sent: list[str] = []
    client.meta.events.register(
        "provide-client-params.cloudtrail.StartQuery", lambda params, **_: sent.append(params["QueryStatement"])
    )
    monkeypatch.setattr(retro_cmd, "aws_client", lambda service, profile, region: client)
    scanned = [(i + 1) * 1024**3 for i in range(count)]
    with Stubber(client) as stub:
        for i in range(count):
            qid = f"aaaaaaaa-bbbb-cccc-dddd-{i:012d}"
            stub.add_response("start_query", {"QueryId": qid}, {"QueryStatement": ANY})
            stub.add_response(
                "describe_query",
                {"QueryId": qid, "QueryStatus": "FINISHED", "QueryStatistics": {"BytesScanned": scanned[i]}},
                {"QueryId": qid},
            )
            if i == 0:  # the first statement returns both events, over two pages
                stub.add_response(
                    "get_query_results",
                    {"QueryStatus": "FINISHED", "QueryResultRows": _lake_rows(rows[:1]), "NextToken": "page-2"},
                    {"QueryId": qid, "MaxQueryResults": 1000},
                )
                stub.add_response(
                    "get_query_results",
                    {"QueryStatus": "FINISHED", "QueryResultRows": _lake_rows(rows[1:])},
                    {"QueryId": qid, "MaxQueryResults": 1000, "NextToken": "page-2"},
                )
            else:
                stub.add_response(
                    "get_query_results",
                    {"QueryStatus": "FINISHED", "QueryResultRows": []},
                    {"QueryId": qid, "MaxQueryResults": 1000},
                )
        res = runner.invoke(
            app,
            ["retro", "--engine", "lake", "--event-data-store", STORE, "--since", "10d", "--accounts", ACCOUNT,
             "--jobs", "1", "-o", "jsonl"],
        )  # fmt: skip
        stub.assert_no_pending_responses()
    assert res.exit_code == 0, res.output
    assert len(sent) == count
    for statement in sent:
        assert statement.startswith("WITH cloudtrail AS (SELECT ")
        assert f" FROM {STORE} WHERE eventTime>=TIMESTAMP '2026-05-22 00:00:00' AND " in statement
        assert "?" not in statement and _placeholders(statement) == 0  # every value inlined, none left to bind
        assert len(statement) <= MAX_STATEMENT
        assert f"account IN ('{ACCOUNT}')" in statement
        assert "eventtime >= '2026-05-22T00:00:00Z' AND eventtime < '2026-06-01T00:00:00Z'" in statement
    assert _findings([json.loads(line) for line in res.stdout.splitlines()]) == _findings(
        _replay_lines(records, tmp_path)
    )
    cost = sum(lake_cost(b) for b in scanned)
    assert f"retro (lake): {count} queries, 2 candidates, " in res.stderr
    assert f"~${cost:.4f}" in res.stderr


def test_lake_failure_exits_2_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _lake()
    monkeypatch.setattr(retro_cmd, "aws_client", lambda service, profile, region: client)
    with Stubber(client) as stub:
        stub.add_response("start_query", {"QueryId": "aaaaaaaa-bbbb-cccc-dddd-000000000000"}, {"QueryStatement": ANY})
        stub.add_response(
            "describe_query",
            {
                "QueryId": "aaaaaaaa-bbbb-cccc-dddd-000000000000",
                "QueryStatus": "FAILED",
                "ErrorMessage": "Query exceeded limits",
            },
            {"QueryId": "aaaaaaaa-bbbb-cccc-dddd-000000000000"},
        )
        res = runner.invoke(
            app,
            ["retro", "--engine", "lake", "--event-data-store", STORE, "--since", "10d",
             "--rule", "cloudtrail-stop-logging"],
        )  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "FAILED: Query exceeded limits" in res.stderr and "Traceback" not in res.output
