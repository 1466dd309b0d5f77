"""What a remote engine returns is event data: it reaches the analyst as text, and never reaches SQL.

Rows from Athena or CloudTrail Lake carry values that whoever made the call chose (user agents, ARNs, role
names). In the terminal table they must not be read as rich markup, in CSV they must not become spreadsheet
formulas. An event data store ID goes into Lake's FROM clause (Lake has no bind parameters for it): anything
but an ID or an ARN is refused before a request is made.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from moto import mock_aws
from moto.athena.models import QueryResults, athena_backends
from typer.testing import CliRunner

from trailguard.cli import _load_commands, app
from trailguard.retro.engines import RemoteQueryError
from trailguard.retro.lake import event_data_store_id, lake_cte

_load_commands()
runner = CliRunner()
HIDE = "[black on black]secret[/black on black]"
FORMULA = '=HYPERLINK("https://evil.example/?x","click")'


class FakeLake:
    """A CloudTrail client that answers one query with planted values, and records what it was asked."""

    def __init__(self, rows: list[list[dict[str, str]]]) -> None:
        self.rows = rows
        self.statements: list[str] = []

    def start_query(self, QueryStatement: str) -> dict[str, Any]:
        self.statements.append(QueryStatement)
        return {"QueryId": "q-1"}

    def describe_query(self, QueryId: str) -> dict[str, Any]:
        return {"QueryStatus": "FINISHED", "QueryStatistics": {"BytesScanned": 1024}}

    def get_query_results(self, **_: Any) -> dict[str, Any]:
        return {"QueryStatus": "FINISHED", "QueryResultRows": self.rows}


@pytest.fixture
def lake(monkeypatch: pytest.MonkeyPatch) -> FakeLake:
    fake = FakeLake([[{"useragent": HIDE}, {"arn": FORMULA}], [{"useragent": FORMULA}, {"arn": HIDE}]])
    monkeypatch.setattr("trailguard.commands.hunt.aws_client", lambda service, profile, region: fake)
    return fake


def test_markup_from_lake_is_printed_as_text(lake: FakeLake) -> None:
    res = runner.invoke(app, ["hunt", "--sql", "SELECT useragent, useridentity.arn AS arn FROM cloudtrail",
                              "--engine", "lake", "--event-data-store", "EXAMPLEstore0001", "--wide"],
                        env={"COLUMNS": "300"})  # fmt: skip
    assert res.exit_code == 0, res.output
    assert HIDE in res.stdout
    assert len(lake.statements) == 1


def test_formulas_from_lake_stay_text_in_csv(lake: FakeLake) -> None:
    res = runner.invoke(app, ["hunt", "--sql", "SELECT useragent, useridentity.arn AS arn FROM cloudtrail",
                              "--engine", "lake", "--event-data-store", "EXAMPLEstore0001", "-o", "csv"])  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows == [["useragent", "arn"], [HIDE, "'" + FORMULA], ["'" + FORMULA, HIDE]]


@mock_aws
def test_markup_and_formulas_from_athena_stay_text(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    boto3.client("athena", region_name="us-east-1").create_work_group(Name="trailguard")
    backend = athena_backends["123456789012"]["us-east-1"]
    for _ in range(2):
        rows = [["useragent"], [HIDE], [FORMULA]]
        backend.query_results_queue.append(
            QueryResults(
                rows=[{"Data": [{"VarCharValue": v} for v in r]} for r in rows],
                column_info=[{"Name": "useragent", "Type": "varchar"}],
            )
        )
    base = ["hunt", "--sql", "SELECT useragent FROM cloudtrail", "--engine", "athena", "--aws-region", "us-east-1"]
    table = runner.invoke(app, [*base, "--wide"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert HIDE in table.stdout
    as_csv = runner.invoke(app, [*base, "-o", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [["useragent"], [HIDE], ["'" + FORMULA]]


@pytest.mark.parametrize(
    "store",
    [
        "abc) UNION SELECT * FROM other --",
        "abc; DROP TABLE x",
        "abc' OR '1'='1",
        'abc" x',
        "abc\nWHERE 1=1",
        "abc/*x*/",
        "arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/abc def",
        "arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/abc)--",
    ],
)
def test_an_event_data_store_with_sql_in_it_is_refused(store: str, lake: FakeLake) -> None:
    with pytest.raises(RemoteQueryError):
        event_data_store_id(store)
    with pytest.raises(RemoteQueryError):
        lake_cte(store)
    res = runner.invoke(app, ["hunt", "root-activity", "--engine", "lake", "--event-data-store", store])
    assert res.exit_code == 2
    assert "event data store ID or ARN" in res.stderr
    assert lake.statements == []  # refused before any request
