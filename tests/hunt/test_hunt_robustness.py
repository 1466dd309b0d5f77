"""hunt reads damaged input the way replay does, skips Insights/digest files by name, and its --sql is read-only.

Damaged files (a bad JSON line, a truncated gzip stream) no longer stop a hunt: their readable records are
hunted, each skipped input is reported as ``file:line: reason`` in ``HuntResult.problems``. Ad-hoc SQL is parsed
with sqlglot (DuckDB dialect) and refused unless it is one SELECT/WITH over ``cloudtrail``; the DuckDB
connection is locked down as well (external access off, configuration locked), tested apart from the parser.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import duckdb
import pytest
from cloudtrail_tree import ALICE, BOB, STANDALONE, rec

from trailguard import hunt
from trailguard.hunt import UnsafeSQLError, check_read_only
from trailguard.sqlcatalog import get_query

DAY = ("2024", "05", "01")


def _day(base: Path, account: str = STANDALONE, region: str = "us-east-1") -> Path:
    d = base / "AWSLogs" / account / "CloudTrail" / region / Path(*DAY)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _records(n: int, prefix: str = "ev") -> list[dict[str, object]]:
    return [
        rec(f"{prefix}-{i}", "StopLogging", "cloudtrail.amazonaws.com", ALICE if i % 2 else BOB,
            f"2024-05-01T10:{i:02d}:00Z", params={"name": "trailguard"})
        for i in range(n)
    ]  # fmt: skip


def _ids(result: hunt.HuntResult) -> list[str]:
    return sorted(r["eventid"] for r in result.records())


SQL_IDS = "SELECT eventid, account, region FROM cloudtrail ORDER BY eventid"


def test_bad_jsonl_lines_are_skipped_and_reported(tmp_path: Path) -> None:
    good = _records(3)
    path = tmp_path / "bare.jsonl"
    path.write_text(
        json.dumps(good[0]) + "\n{not json\n" + json.dumps(good[1]) + "\n[1, 2]\n" + json.dumps(good[2]) + "\n"
    )
    result = hunt.run_sql(SQL_IDS, hunt.discover([tmp_path]))
    assert _ids(result) == ["ev-0", "ev-1", "ev-2"]
    assert [(p.line, p.reason.split(" (")[0]) for p in result.problems] == [
        (2, "not valid JSON"),
        (4, "expected a JSON object, got list"),
    ]
    assert all(p.source == str(path.resolve()) for p in result.problems)


def test_truncated_gzip_log_keeps_complete_records_and_its_partition(tmp_path: Path) -> None:
    day = _day(tmp_path, region="eu-west-1")
    whole = gzip.compress(json.dumps({"Records": _records(40)}).encode())
    (day / f"{STANDALONE}_CloudTrail_eu-west-1_20240501T1000Z_cut.json.gz").write_bytes(whole[: len(whole) * 2 // 3])
    fine = _day(tmp_path, region="us-east-1") / f"{STANDALONE}_CloudTrail_us-east-1_20240501T1000Z_ok.json.gz"
    fine.write_bytes(gzip.compress(json.dumps({"Records": _records(2, "ok")}).encode()))
    result = hunt.run_sql(SQL_IDS, hunt.discover([tmp_path]))
    rows = result.records()
    salvaged = [r for r in rows if r["eventid"].startswith("ev-")]
    assert 0 < len(salvaged) < 40  # the records read before the cut
    assert {(r["account"], r["region"]) for r in salvaged} == {(STANDALONE, "eu-west-1")}  # still from the path
    assert sorted(r["eventid"] for r in rows if r["eventid"].startswith("ok-")) == ["ok-0", "ok-1"]
    assert len(result.problems) == 1
    assert "truncated gzip file" in result.problems[0].reason or "corrupt gzip" in result.problems[0].reason


def test_broken_records_document_is_salvaged_not_fatal(tmp_path: Path) -> None:
    day = _day(tmp_path)
    text = json.dumps({"Records": _records(2)})
    (day / "broken.json").write_text(text[: text.rindex("{")] + '{"eventName": "StopLogging", ')
    result = hunt.run_query(get_query("logging-tampering"), {}, hunt.discover([tmp_path]))
    assert len(result.rows) == 1
    assert [p.reason for p in result.problems] == ["Records[1]: incomplete JSON (damaged file); later records lost"]


def test_clean_input_has_no_problems_and_is_read_in_place(log_tree: Path, tmp_path: Path) -> None:
    logs = hunt.discover([log_tree])
    readable, problems = hunt.salvage(logs, tmp_path)
    assert problems == []
    assert readable.log_files == logs.log_files
    assert readable.jsonl_files == logs.jsonl_files
    assert list(tmp_path.iterdir()) == []


def test_insights_and_digest_files_are_skipped_by_name(tmp_path: Path) -> None:
    day = _day(tmp_path)
    (day / f"{STANDALONE}_CloudTrail_us-east-1_20240501T1000Z_a.json.gz").write_bytes(
        gzip.compress(json.dumps({"Records": _records(1)}).encode())
    )
    insight_dir = tmp_path / "AWSLogs" / STANDALONE / "CloudTrail-Insight" / "us-east-1" / Path(*DAY)
    insight_dir.mkdir(parents=True)
    insight = insight_dir / f"{STANDALONE}_CloudTrail-Insight_us-east-1_20240501T1000Z_b.json.gz"
    insight.write_bytes(gzip.compress(b'{"Records": [{"eventType": "AwsCloudTrailInsight", "insightDetails": {}}]}'))
    digest_dir = tmp_path / "AWSLogs" / STANDALONE / "CloudTrail-Digest" / "us-east-1" / Path(*DAY)
    digest_dir.mkdir(parents=True)
    (digest_dir / f"{STANDALONE}_CloudTrail-Digest_us-east-1_x.json.gz").write_bytes(gzip.compress(b"{}"))
    logs = hunt.discover([tmp_path])
    assert len(logs.log_files) == 1
    assert sorted(s.kind for s in logs.skipped) == ["digest", "insights"]
    assert _ids(hunt.run_sql(SQL_IDS, logs)) == ["ev-0"]


# --------------------------------------------------------------------------- #
# --sql is read-only
# --------------------------------------------------------------------------- #

ALLOWED = [
    "SELECT count(*) FROM cloudtrail",
    "FROM cloudtrail SELECT eventname",
    "WITH x AS (SELECT eventname FROM cloudtrail) SELECT * FROM x",
    "SELECT eventname FROM cloudtrail UNION SELECT eventsource FROM cloudtrail",
    "SELECT json_extract_string(requestparameters, '$.name') FROM cloudtrail c WHERE c.eventname LIKE 'Stop%'",
]

REFUSED = [
    ("COPY (SELECT * FROM cloudtrail) TO '/tmp/x.csv'", "COPY"),
    ("ATTACH '/tmp/x.db' AS other", "ATTACH"),
    ("DETACH other", "DETACH"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "COMMAND"),
    ("CREATE TABLE t AS SELECT * FROM cloudtrail", "CREATE"),
    ("CREATE OR REPLACE MACRO f(x) AS x", "CREATE"),
    ("INSERT INTO t SELECT * FROM cloudtrail", "INSERT"),
    ("UPDATE t SET a = 1", "UPDATE"),
    ("DELETE FROM t", "DELETE"),
    ("DROP VIEW cloudtrail", "DROP"),
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("SET enable_external_access = true", "SET"),
    ("SELECT 1; DROP VIEW cloudtrail", "exactly one statement"),
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv() is not allowed"),
    ("SELECT * FROM read_json_auto('/etc/x.json')", "read_json_auto() is not allowed"),
    ("SELECT read_text('/etc/passwd')", "read_text() is not allowed"),
    ("SELECT * FROM glob('/etc/*')", "glob() is not allowed"),
    ("SELECT getenv('HOME')", "getenv() is not allowed"),
    ("SELECT * FROM '/etc/passwd'", "is not a table here"),
    ("SELECT * FROM other.main.t", "is not allowed"),
    ("SELECT * FROM duckdb_settings()", "reads only the cloudtrail view"),
    ("WITH x AS (SELECT * FROM read_parquet('/tmp/a.parquet')) SELECT * FROM x", "read_parquet() is not allowed"),
]


@pytest.mark.parametrize("sql", ALLOWED)
def test_read_only_queries_pass(sql: str, log_tree: Path) -> None:
    check_read_only(sql)
    assert hunt.run_sql(sql, hunt.discover([log_tree])).columns


@pytest.mark.parametrize(("sql", "message"), REFUSED)
def test_writes_and_outside_reads_are_refused(sql: str, message: str, log_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(UnsafeSQLError, match=re.escape(message)):
        check_read_only(sql)
    with pytest.raises(UnsafeSQLError):
        hunt.run_sql(sql, hunt.discover([log_tree]))
    assert list(tmp_path.iterdir()) == []


def test_duckdb_itself_refuses_files_and_settings_after_the_view(log_tree: Path, tmp_path: Path) -> None:
    """Defence in depth: the connection hunt uses cannot write files or unlock itself, whatever the parser lets by."""
    con = hunt.connect(hunt.discover([log_tree]))
    try:
        assert con.execute("SELECT count(*) FROM cloudtrail").fetchall()[0][0] > 0  # the logs stay readable
        target = tmp_path / "out.csv"
        with pytest.raises(duckdb.Error, match="disabled by configuration"):
            con.execute(f"COPY (SELECT 1) TO '{target.as_posix()}'")
        with pytest.raises(duckdb.Error, match="disabled by configuration"):
            con.execute("SELECT * FROM read_csv('/etc/hostname')")
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")
        assert not target.exists()
    finally:
        con.close()
