"""--since/--until/--rule/--severity/--account/--region/--principal on replay and hunt."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import bare, write_jsonl
from typer.testing import CliRunner

from trailguard.cli import _load_commands, app
from trailguard.filters import FilterError, event_filter, parse_time, principal_matches

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hunt"))
from cloudtrail_tree import ALICE, events, write_tree

_load_commands()
runner = CliRunner()
NOW = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)


def test_parse_time_relative_and_absolute() -> None:
    assert parse_time("7d", "--since", NOW) == datetime(2024, 5, 3, 12, 0, tzinfo=UTC)
    assert parse_time("30m", "--since", NOW) == datetime(2024, 5, 10, 11, 30, tzinfo=UTC)
    assert parse_time("2024-05-01", "--since", NOW) == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_time("2024-05-01T02:00:00+02:00", "--since", NOW) == datetime(2024, 5, 1, tzinfo=UTC)
    with pytest.raises(FilterError, match="ISO 8601"):
        parse_time("last tuesday", "--since", NOW)
    with pytest.raises(FilterError, match="not before"):
        event_filter(since="1d", until="2d", now=NOW)


def test_principal_substring_or_glob() -> None:
    arn = "arn:aws:sts::111122223333:assumed-role/ci-deploy/run-1"
    assert principal_matches(arn, "ci-deploy")
    assert principal_matches(arn, "arn:aws:sts::*:assumed-role/ci-*")
    assert not principal_matches(arn, "arn:aws:iam::*:user/*")


def _records(example: dict[str, Any]) -> list[dict[str, Any]]:
    rec = bare(example)
    return [
        {**rec, "eventID": "old", "eventTime": "2024-04-01T00:00:00Z"},
        {**rec, "eventID": "new", "eventTime": "2024-05-09T00:00:00Z"},
        {**rec, "eventID": "eu", "eventTime": "2024-05-09T00:00:00Z", "awsRegion": "eu-west-1"},
        {**rec, "eventID": "other", "eventTime": "2024-05-09T00:00:00Z", "recipientAccountId": "999999999999"},
    ]


@pytest.mark.parametrize(
    ("args", "ids"),
    [
        (["--since", "2024-05-01"], {"new", "eu", "other"}),
        (["--until", "2024-05-01T00:00:00Z"], {"old"}),
        (["--region", "eu-west-1"], {"eu"}),
        (["--account", "999999999999"], {"other"}),
        (["--principal", "assumed-role/Admin"], {"old", "new", "eu", "other"}),
        (["--principal", "arn:aws:iam::*:user/*"], set()),
    ],
)
def test_replay_event_filters(
    tmp_path: Path, stop_logging_example: dict[str, Any], args: list[str], ids: set[str]
) -> None:
    p = write_jsonl(tmp_path / "e.jsonl", _records(stop_logging_example))
    res = runner.invoke(app, ["replay", str(p), "--json", *args])
    assert res.exit_code == 0, res.stderr
    assert {json.loads(x)["eventID"] for x in res.stdout.splitlines()} == ids


def test_replay_rule_and_severity_filters(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    p = write_jsonl(tmp_path / "e.jsonl", [stop_logging_example])
    assert json.loads(runner.invoke(app, ["replay", str(p), "--json", "--severity", "critical"]).stdout)["verdict"] == (
        "remediate"
    )
    other = runner.invoke(app, ["replay", str(p), "--json", "--rule", "root-activity"])
    assert json.loads(other.stdout)["verdict"] == "none"
    bad = runner.invoke(app, ["replay", str(p), "--rule", "cloudtrail-stop-loging"])
    assert bad.exit_code == 2
    assert "did you mean: cloudtrail-stop-logging" in bad.stderr


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root: Path = write_tree(tmp_path_factory.mktemp("filters-logs"))
    return root


def test_hunt_filters_are_where_clauses(tree: Path) -> None:
    sql = "SELECT eventid FROM cloudtrail ORDER BY 1"
    res = runner.invoke(app, ["hunt", "--sql", sql, "--logs", str(tree), "-o", "json", "--principal", ALICE["arn"],
                              "--since", "2024-05-01", "--until", "2024-05-02"])  # fmt: skip
    assert res.exit_code == 0, res.stderr
    got = {r["eventid"] for r in json.loads(res.stdout)}
    expected = {
        e["eventID"]
        for e in events()
        if e["userIdentity"].get("arn") == ALICE["arn"] and "2024-05-01" <= e["eventTime"] < "2024-05-02"
    }
    assert expected and expected <= got
    assert all(e["userIdentity"].get("arn", "").find(ALICE["arn"]) >= 0 for e in events() if e["eventID"] in got)


def test_hunt_rejects_finding_filters(tree: Path) -> None:
    res = runner.invoke(app, ["hunt", "root-activity", "--logs", str(tree), "--rule", "x"])
    assert res.exit_code == 2 and "use them with `trailguard replay`" in res.stderr


def test_hunt_table_is_compact_by_default_and_wide_shows_every_column(tree: Path) -> None:
    sql = "SELECT eventid, eventname, useragent FROM cloudtrail ORDER BY 1 LIMIT 2"
    compact = runner.invoke(app, ["hunt", "--sql", sql, "--logs", str(tree)], env={"COLUMNS": "200"})
    assert compact.exit_code == 0, compact.stderr
    assert "useragent" not in compact.stdout and "eventname" in compact.stdout
    assert "1 columns not shown (useragent): --wide shows them" in compact.stderr
    wide = runner.invoke(app, ["hunt", "--sql", sql, "--logs", str(tree), "--wide"], env={"COLUMNS": "200"})
    assert "useragent" in wide.stdout


def test_replay_table_piped_keeps_each_identifier_on_one_line(
    tmp_path: Path, stop_logging_example: dict[str, Any]
) -> None:
    p = tmp_path / "e.jsonl"
    p.write_text(json.dumps(stop_logging_example) + "\n")
    # Not a terminal (CliRunner) and a narrow COLUMNS: the table is printed at full width, never wrapping an ARN.
    res = runner.invoke(app, ["replay", str(p)], env={"COLUMNS": "60"})
    arn = stop_logging_example["detail"]["userIdentity"]["arn"]
    assert any(arn in line for line in res.stdout.splitlines())
    assert any("cloudtrail-stop-logging" in line for line in res.stdout.splitlines())
