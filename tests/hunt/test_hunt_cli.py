"""``trailguard hunt``: listing, named queries, ad-hoc SQL, output formats, progress and errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from cloudtrail_tree import ALICE, MALLORY, events
from typer.testing import CliRunner

from trailguard import cli
from trailguard.cli import app
from trailguard.sqlcatalog import load_queries

cli._load_commands()  # as the console script does: every sub-command registered
runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["hunt", *args])


def test_list_shows_every_query() -> None:
    res = invoke("--list", "--format", "json")
    assert res.exit_code == 0, res.output
    listed = {q["name"]: q for q in json.loads(res.stdout)}
    assert set(listed) == set(load_queries())
    assert [p["name"] for p in listed["principal-activity"]["params"] if p["required"]] == ["principal"]
    table = invoke("--list")
    assert table.exit_code == 0
    assert "console-logins-without-mfa" in table.stdout


def test_named_query_json(log_tree: Path) -> None:
    res = invoke("root-activity", "--logs", str(log_tree), "--format", "json")
    assert res.exit_code == 0, res.stderr
    assert {r["eventid"] for r in json.loads(res.stdout)} == {"ev-root-login-nomfa", "ev-root-list-buckets"}
    assert "2 rows from" in res.stderr


def test_named_query_with_params_csv(log_tree: Path) -> None:
    res = invoke(
        "principal-activity", "--logs", str(log_tree), "-p", f"principal={ALICE['arn']}",
        "-p", "start=2024-05-01", "--param", "end=2024-05-02", "--format", "csv",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    expected = {
        e["eventID"] for e in events() if e["userIdentity"] is ALICE and "2024-05-01" <= e["eventTime"] < "2024-05-02"
    } | {"ev-jsonl-alice"}
    assert {r["eventid"] for r in rows} == expected
    assert rows[0]["requestparameters"] == "" or rows[0]["requestparameters"].startswith("{")


def test_named_query_table(log_tree: Path) -> None:
    res = invoke("access-denied-by-principal", "--logs", str(log_tree))
    assert res.exit_code == 0, res.stderr
    assert "mallory" in res.stdout
    assert "13" in res.stdout


def test_adhoc_sql(log_tree: Path) -> None:
    res = invoke(
        "--sql", "SELECT eventname, count(*) AS n FROM cloudtrail WHERE useridentity.arn = '"
        + MALLORY["arn"] + "' GROUP BY 1 ORDER BY 1", "--logs", str(log_tree), "--format", "json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    counts = {r["eventname"]: r["n"] for r in json.loads(res.stdout)}
    assert counts["ListBuckets"] == 4
    assert sum(counts.values()) == sum(1 for e in events() if e["userIdentity"] is MALLORY)


def test_progress_on_stderr_only(log_tree: Path) -> None:
    res = invoke("kms-key-deletion", "--logs", str(log_tree), "--format", "json", "--progress")
    assert res.exit_code == 0, res.stderr
    assert "scanning" in res.stderr
    assert "files" in res.stderr
    assert json.loads(res.stdout)[0]["eventid"] == "ev-schedule-key-deletion"


def test_show_sql_prints_athena_form() -> None:
    res = invoke("access-key-activity", "--show-sql")
    assert res.exit_code == 0
    assert "execution parameters in order: start, start, end, access_key_id" in res.stdout
    assert "= ?" in res.stdout
    assert "{{" not in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-query", "--logs", "."], "unknown query 'no-such-query'"),
        (["principal-activity", "--logs", "."], "needs --param principal"),
        (["root-activity", "--logs", ".", "-p", "start"], "expected name=value"),
        (["root-activity", "--logs", ".", "-p", "start=last tuesday"], "ISO-8601"),
        (["root-activity", "--logs", ".", "-p", "actor=x"], "no parameter 'actor'"),
        (["root-activity", "--logs", "/nonexistent/AWSLogs"], "no such file or directory"),
        (["root-activity"], "--logs DIR is required"),
        ([], "give a query name"),
        (["root-activity", "--sql", "select 1", "--logs", "."], "not both"),
        (["--sql", "select nothing from nowhere", "--logs", "LOGS"], "error: "),
    ],
)
def test_errors_are_one_line_exit_2(args: list[str], message: str, log_tree: Path) -> None:
    args = [str(log_tree) if a == "LOGS" else a for a in args]
    res = invoke(*args)
    assert res.exit_code == 2, (res.stdout, res.stderr)
    err = res.stderr.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in res.output


def test_directory_without_logs_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    res = invoke("root-activity", "--logs", str(tmp_path))
    assert res.exit_code == 2
    assert "no CloudTrail log files" in res.stderr


def test_a_corrupt_log_file_is_skipped_and_reported_and_strict_makes_it_fail(tmp_path: Path) -> None:
    day = tmp_path / "AWSLogs" / "111111111111" / "CloudTrail" / "us-east-1" / "2024" / "05" / "01"
    day.mkdir(parents=True)
    (day / "broken.json").write_text('{"Records": [{"eventName": "StopLogging", ')
    res = invoke("root-activity", "--logs", str(tmp_path))
    # Like replay: the damaged input is skipped with its reason, and the hunt still answers.
    assert res.exit_code == 0, res.stderr
    assert "broken.json" in res.stderr
    assert "1 inputs skipped" in res.stderr
    assert "Traceback" not in res.stderr
    strict = invoke("root-activity", "--logs", str(tmp_path), "--strict")
    assert strict.exit_code == 1
