"""``trailguard hunt --engine athena|lake``: the SQL sent, the filters, the CLI errors, one end-to-end run on moto.

The remote SQL is also run for real on DuckDB over the generated log tree: with its ``?`` literals in place and
the Glue table replaced by the local view, it must return exactly the rows the local hunt returns with the same
filters (so the Athena form of the filters selects what the local form selects).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from moto import mock_aws
from moto.athena.models import QueryResults, athena_backends
from typer.testing import CliRunner

from trailguard import hunt as hunt_lib
from trailguard.cli import _load_commands, app
from trailguard.commands.hunt import Engine, _run, remote_query
from trailguard.filters import EventFilter
from trailguard.retro.engines import glob_regex, inline_parameters
from trailguard.sqlcatalog import get_query

_load_commands()
runner = CliRunner()
ACCOUNT = "123456789012"  # moto's default account

FILTERS = [
    EventFilter(),
    EventFilter(since="2024-05-01T12:00:00Z"),
    EventFilter(since="2024-05-01T00:00:00Z", until="2024-05-02T09:30:00Z"),
    EventFilter(accounts=("222222222222",)),
    EventFilter(regions=("eu-west-1", "us-east-1"), accounts=("111111111111", "222222222222")),
    EventFilter(principals=("arn:aws:iam::*:user/[ab]*",)),
    EventFilter(principals=("assumed-role/ci-", "user/mallory")),
    EventFilter(principals=("arn:aws:sts::*:assumed-role/?rgAdmin/*",), until="2024-05-03T00:00:00Z"),
]
QUERIES = [
    (None, {}, "SELECT eventid, eventtime, account, region FROM cloudtrail"),
    ("principal-activity", {"principal": "alice"}, None),
    ("root-activity", {"start": "2024-04-01"}, None),
    ("access-denied-by-principal", {"min_denied": "1"}, None),
]


def _local(named: Any, values: dict[str, str], sql: str | None, logset: hunt_lib.LogSet, sel: EventFilter) -> list[Any]:
    return sorted(map(repr, _run(named, values, sql, logset, sel, None).rows))


def _remote_on_duckdb(named: Any, values: dict[str, str], sql: str | None, logset: hunt_lib.LogSet,
                      sel: EventFilter) -> list[Any]:  # fmt: skip
    text, params = remote_query(Engine.athena, named, values, sql, sel, source="tg_glue")
    sqlglot.parse_one(text, read="trino")  # the Athena form is Trino
    with tempfile.TemporaryDirectory() as tmp:
        readable, _ = hunt_lib.salvage(logset, Path(tmp))
        con = hunt_lib.connect(readable)
        try:
            con.execute("ALTER VIEW cloudtrail RENAME TO tg_glue")
            return sorted(map(repr, hunt_lib.execute(con, inline_parameters(text, params)).rows))
        finally:
            con.close()


@pytest.mark.parametrize("selection", FILTERS, ids=[repr(f) for f in FILTERS])
@pytest.mark.parametrize(("name", "values", "sql"), QUERIES, ids=[q[0] or "sql" for q in QUERIES])
def test_the_remote_form_selects_what_the_local_hunt_selects(
    log_tree: Path, selection: EventFilter, name: str | None, values: dict[str, str], sql: str | None
) -> None:
    named = get_query(name) if name else None
    logset = hunt_lib.discover([log_tree])
    local = _local(named, values, sql, logset, selection)
    assert _remote_on_duckdb(named, values, sql, logset, selection) == local
    if named is None and not selection.active:
        assert len(local) == 47  # the whole tree: the comparison is not vacuous


def test_filters_prune_partitions_and_bind_every_value() -> None:
    sel = EventFilter(since="2024-05-01T12:00:00Z", until="2024-05-03T00:00:00Z", accounts=("111111111111",),
                      regions=("us-east-1",), principals=("x'y",))  # fmt: skip
    text, params = remote_query(
        Engine.athena, None, {}, "SELECT 1 FROM cloudtrail", sel, source='"trailguard"."cloudtrail"'
    )
    assert text.startswith('WITH cloudtrail AS (SELECT * FROM "trailguard"."cloudtrail" WHERE "date" >= ? AND ')
    assert "account IN (?)" in text and "region IN (?)" in text
    assert params == ["'2024/04/30'", "'2024-05-01T12:00:00Z'", "'2024/05/04'", "'2024-05-03T00:00:00Z'",
                      "'111111111111'", "'us-east-1'", "'x''y'"]  # fmt: skip
    assert "x'y" not in text  # values never pasted


def test_named_query_without_filters_reads_the_qualified_table_with_typed_parameters() -> None:
    q = get_query("access-denied-by-principal")
    text, params = remote_query(Engine.athena, q, {"min_denied": "5"}, None, EventFilter(), source='"db"."t"')
    assert text == q.athena_sql('"db"."t"')
    assert params == ["'1970-01-01'", "'1970-01-01'", "'9999-12-31'", "5"]  # timestamps quoted, the integer bare


def test_glob_regex_matches_as_fnmatch_does() -> None:
    import fnmatch
    import re

    arns = ["arn:aws:iam::1:user/alice", "arn:aws:iam::1:user/bob", "arn:aws:iam::1:user/carol", "a.b", "axb"]
    for pattern in ["*user/[ab]*", "*user/[!ab]*", "a.b", "a?b", "*:user/*"]:
        expected = [a for a in arns if fnmatch.fnmatchcase(a, pattern)]
        assert [a for a in arns if re.search(glob_regex(pattern), a)] == expected, pattern


def test_lake_query_runs_over_the_lake_cte() -> None:
    text, params = remote_query(Engine.lake, get_query("root-activity"), {}, None,
                                EventFilter(since="2024-05-01T00:00:00Z"), source="EXAMPLEstore0001")  # fmt: skip
    assert text.startswith("WITH cloudtrail AS (SELECT * FROM (SELECT eventVersion AS eventversion")
    assert "FROM EXAMPLEstore0001 WHERE eventTime>=TIMESTAMP '2024-05-01 00:00:00')" in text
    sqlglot.parse_one(inline_parameters(text, params), read="trino")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["root-activity", "--engine", "athena", "--logs", "x"], "drop --logs"),
        (["root-activity", "--engine", "lake"], "--event-data-store"),
        (["root-activity", "--engine", "lake", "--event-data-store", "x; DROP"], "event data store ID or ARN"),
        (["--sql", "DELETE FROM cloudtrail", "--engine", "athena"], "read-only"),
        (["--sql", "SELECT * FROM other_db.secrets", "--engine", "athena"], "reads only"),
        (["root-activity", "--engine", "athena", "--database", "x;y"], "--database"),
    ],
)
def test_remote_usage_errors_are_one_line_exit_2(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    res = runner.invoke(app, ["hunt", *args])
    assert res.exit_code == 2, res.output
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_without_credentials_the_error_says_how_to_get_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    res = runner.invoke(app, ["hunt", "root-activity", "--engine", "athena", "--aws-region", "us-east-1"])
    assert res.exit_code == 2, res.output
    assert "no AWS credentials found" in res.stderr


@mock_aws
def test_end_to_end_on_moto_athena(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    boto3.client("athena", region_name="us-east-1").create_work_group(
        Name="trailguard",
        Configuration={"ResultConfiguration": {"OutputLocation": "s3://tg-results/athena/"},
                       "EnforceWorkGroupConfiguration": True, "BytesScannedCutoffPerQuery": 10 * 1024**3},
    )  # fmt: skip
    backend = athena_backends[ACCOUNT]["us-east-1"]
    columns = ["eventtime", "eventname", "useridentity"]
    rows: list[list[str | None]] = [
        [*columns],
        ["2024-05-01T07:00:00Z", "ConsoleLogin", "{type=Root}"],
        ["2024-05-01T08:00:00Z", "StopLogging", None],
    ]
    backend.query_results_queue.append(
        QueryResults(
            rows=[{"Data": [{} if v is None else {"VarCharValue": v} for v in r]} for r in rows],
            column_info=[{"Name": c, "Type": "varchar"} for c in columns],
        )
    )
    monkeypatch.setattr("time.sleep", lambda s: pytest.fail(f"slept {s}s for real"))
    res = runner.invoke(app, ["hunt", "root-activity", "--engine", "athena", "--aws-region", "us-east-1",
                              "--account", "111111111111", "-o", "json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == [
        {"eventtime": "2024-05-01T07:00:00Z", "eventname": "ConsoleLogin", "useridentity": "{type=Root}"},
        {"eventtime": "2024-05-01T08:00:00Z", "eventname": "StopLogging", "useridentity": None},
    ]
    (execution,) = backend.executions.values()
    assert execution.workgroup is not None and execution.workgroup.name == "trailguard"
    context: Any = execution.context  # moto annotates it str; it keeps the request's dict
    assert context == {"Database": "trailguard", "Catalog": "AwsDataCatalog"}
    assert execution.config is None  # no ResultConfiguration: the workgroup's own location and encryption apply
    assert execution.query.startswith(
        'WITH cloudtrail AS (SELECT * FROM "trailguard"."cloudtrail" WHERE account IN (?))'
    )
    assert execution.execution_parameters == ["'111111111111'", "'1970-01-01'", "'1970-01-01'", "'9999-12-31'"]
    assert f"2 rows from athena query {execution.id}: 0 bytes scanned, $0.000048" in res.stderr
