"""LakeRunner against botocore's Stubber, and the Lake CTE that presents an event data store as the Glue table."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
import sqlglot
from botocore.stub import Stubber
from sqlglot import exp

from trailguard.pricing import LAKE_QUERY_PER_GB_SCANNED
from trailguard.retro.engines import Backoff, RemoteQueryError, filter_condition, with_cloudtrail
from trailguard.retro.lake import (
    LAKE_CTE,
    MAX_STATEMENT,
    LakeRunner,
    event_data_store_id,
    lake_cost,
    lake_cte,
)
from trailguard.sqlcatalog import CLOUDTRAIL_COLUMNS, PARTITION_COLUMNS, load_queries

QID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
STORE = "EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE"
#: sqlglot reads identifiers as Trino does: a bare ``a-b`` is a subtraction. Lake's documented FROM takes the bare
#: ID, so the parse tests put a plain identifier where the store ID goes.
PARSE_STORE = "EXAMPLEstore0001"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def _client() -> Any:
    return boto3.client("cloudtrail", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")


def _runner(client: Any, clock: FakeClock, **kw: Any) -> LakeRunner:
    return LakeRunner(client, sleep=clock.sleep, clock=clock, poll=Backoff(1.0, 2.0, 4.0), **kw)


def _described(state: str, **extra: Any) -> dict[str, Any]:
    return {
        "QueryId": QID,
        "QueryStatus": state,
        "QueryStatistics": {"EventsMatched": 2, "EventsScanned": 900, "BytesScanned": 2 * 1024**3,
                            "ExecutionTimeInMillis": 800},
        **extra,
    }  # fmt: skip


def test_a_query_starts_with_inlined_literals_polls_and_pages() -> None:
    client, clock = _client(), FakeClock()
    with Stubber(client) as stub:
        stub.add_response(
            "start_query",
            {"QueryId": QID},
            {"QueryStatement": f"SELECT eventname FROM {STORE} WHERE eventname = 'it''s' AND n > 3"},
        )
        stub.add_response("describe_query", _described("QUEUED"), {"QueryId": QID})
        stub.add_response("describe_query", _described("RUNNING"), {"QueryId": QID})
        stub.add_response("describe_query", _described("FINISHED"), {"QueryId": QID})
        stub.add_response(
            "get_query_results",
            {"QueryStatus": "FINISHED", "QueryResultRows": [[{"eventname": "ConsoleLogin"}, {"n": "4"}]],
             "NextToken": "page-2"},
            {"QueryId": QID, "MaxQueryResults": 1000},
        )  # fmt: skip
        stub.add_response(
            "get_query_results",
            {"QueryStatus": "FINISHED", "QueryResultRows": [[{"eventname": "StopLogging"}]]},
            {"QueryId": QID, "MaxQueryResults": 1000, "NextToken": "page-2"},
        )
        result = _runner(client, clock).run(
            f"SELECT eventname FROM {STORE} WHERE eventname = ? AND n > ?", ["'it''s'", "3"]
        )
        rows = list(result.rows)
        stub.assert_no_pending_responses()
    assert result.columns == ("eventname", "n")
    assert rows == [{"eventname": "ConsoleLogin", "n": "4"}, {"eventname": "StopLogging", "n": None}]
    assert result.bytes_scanned == 2 * 1024**3
    assert result.cost_usd == pytest.approx(2 * LAKE_QUERY_PER_GB_SCANNED)
    assert result.engine_ms == 800
    assert clock.sleeps == [1.0, 2.0]


@pytest.mark.parametrize("state", ["FAILED", "CANCELLED", "TIMED_OUT"])
def test_end_states_other_than_finished_are_errors(state: str) -> None:
    client, clock = _client(), FakeClock()
    with Stubber(client) as stub:
        stub.add_response("describe_query", _described(state, ErrorMessage="Query exceeded limits"), {"QueryId": QID})
        with pytest.raises(RemoteQueryError, match=f"{state}: Query exceeded limits"):
            _runner(client, clock).wait(QID)


def test_a_query_past_the_timeout_is_cancelled() -> None:
    client, clock = _client(), FakeClock()
    with Stubber(client) as stub:
        for _ in range(3):  # t = 0, 1, 3: the third is past the 2 s timeout
            stub.add_response("describe_query", _described("RUNNING"), {"QueryId": QID})
        stub.add_response("cancel_query", {"QueryId": QID, "QueryStatus": "CANCELLED"}, {"QueryId": QID})
        with pytest.raises(RemoteQueryError, match="cancelled it"):
            _runner(client, clock, timeout_s=2.0).wait(QID)
        stub.assert_no_pending_responses()


def test_throttling_is_retried() -> None:
    client, clock = _client(), FakeClock()
    with Stubber(client) as stub:
        stub.add_client_error("start_query", "ThrottlingException", "slow down", 400)
        stub.add_response("start_query", {"QueryId": QID}, {"QueryStatement": "SELECT 1"})
        assert _runner(client, clock).start("SELECT 1") == QID
    assert clock.sleeps == [1.0]


def test_statements_over_lakes_limit_are_refused_before_the_call() -> None:
    with pytest.raises(RemoteQueryError, match="at most 10,000"):
        _runner(_client(), FakeClock()).start("SELECT '" + "x" * MAX_STATEMENT + "'")


def test_placeholders_in_strings_and_comments_are_left_alone() -> None:
    client, clock = _client(), FakeClock()
    with Stubber(client) as stub:
        stub.add_response("start_query", {"QueryId": QID}, {"QueryStatement": "SELECT '?' -- ?\n, 'v'"})
        _runner(client, clock).start("SELECT '?' -- ?\n, ?", ["'v'"])
    with pytest.raises(RemoteQueryError, match="1 '\\?' placeholders but 2"):
        _runner(client, clock).start("SELECT ?", ["'a'", "'b'"])


def test_store_ids_and_arns_are_accepted_and_anything_else_refused() -> None:
    assert event_data_store_id(STORE) == STORE
    arn = f"arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/{STORE}"
    assert event_data_store_id(arn) == STORE
    for bad in ("", "x", "abc; DROP TABLE x", "abc) UNION SELECT 1 --", "a b", '"abc"', "abc'", "a/b",
                "arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/x y"):  # fmt: skip
        with pytest.raises(RemoteQueryError):
            event_data_store_id(bad)


def _cte_columns(sql: str) -> list[str]:
    tree = sqlglot.parse_one(sql, read="trino")
    cte = next(c for c in tree.find_all(exp.CTE) if c.alias == "cloudtrail")
    inner = cte.this
    while not inner.selects or inner.selects[0].alias_or_name == "*":
        inner = inner.find(exp.Subquery).this if inner.find(exp.Subquery) else inner
    return [s.alias_or_name for s in inner.selects]


def test_the_cte_presents_exactly_the_glue_columns() -> None:
    expected = [c for c, _t, _k in CLOUDTRAIL_COLUMNS] + list(PARTITION_COLUMNS)
    assert _cte_columns(lake_cte(PARSE_STORE) + " SELECT * FROM cloudtrail") == expected
    assert LAKE_CTE.startswith("WITH cloudtrail AS (SELECT ") and LAKE_CTE.endswith(f"FROM {STORE})")


def test_every_named_query_parses_as_trino_inside_the_cte_and_fits_lakes_limit() -> None:
    cond, params = filter_condition(
        since="2024-05-01T00:00:00Z", until="2024-06-01T00:00:00Z", accounts=["111122223333"],
        regions=["us-east-1"], principals=["arn:aws:iam::*:role/ci-*", "alice"],
    )  # fmt: skip
    cte = lake_cte(PARSE_STORE, since="2024-05-01T00:00:00Z", until="2024-06-01T00:00:00Z", condition=cond)
    for query in load_queries().values():
        sql = with_cloudtrail(cte, query.athena_sql())
        tree = sqlglot.parse_one(sql, read="trino")
        assert isinstance(tree, exp.Query), query.name
        tables = {t.name for t in tree.find_all(exp.Table)}
        assert tables == {PARSE_STORE, "cloudtrail"}, (query.name, tables)
        full = len(sql) + sum(len(p) for p in params) + 40 * len(query.placeholders())
        assert full <= MAX_STATEMENT, (query.name, full)


def test_the_time_window_reaches_lakes_own_event_time() -> None:
    cte = lake_cte(PARSE_STORE, since="2024-05-01T00:00:00Z", until="2024-05-02T12:30:00Z")
    assert f"FROM {PARSE_STORE} WHERE eventTime>=TIMESTAMP '2024-05-01 00:00:00' AND " in cte
    assert "eventTime<TIMESTAMP '2024-05-02 12:30:00')" in cte
    with pytest.raises(RemoteQueryError):
        lake_cte(PARSE_STORE, since="2024-05-01' OR 1=1")


def test_a_query_with_its_own_with_is_merged_not_nested() -> None:
    sql = with_cloudtrail(lake_cte(PARSE_STORE), "WITH x AS (SELECT eventname FROM cloudtrail) SELECT * FROM x")
    tree = sqlglot.parse_one(sql, read="trino")
    assert [c.alias for c in tree.find_all(exp.CTE)] == ["cloudtrail", "x"]


def test_cost_is_per_gb_scanned() -> None:
    assert lake_cost(0) == 0.0
    assert lake_cost(10 * 1024**3) == pytest.approx(10 * LAKE_QUERY_PER_GB_SCANNED)
