"""AthenaRunner against botocore's Stubber: the exact request shapes, polling, paging and every failure state."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from trailguard.pricing import ATHENA_MIN_BYTES_PER_QUERY, ATHENA_PER_TB_SCANNED
from trailguard.retro import athena
from trailguard.retro.athena import AthenaRunner, athena_cost
from trailguard.retro.engines import Backoff, RemoteQueryError

QID = "11111111-2222-3333-4444-555555555555"
ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    """Time that moves only when the runner sleeps: no real waiting, and the timeout is exact."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def _client() -> Any:
    return boto3.client("athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")


def _runner(client: Any, clock: FakeClock, **kw: Any) -> AthenaRunner:
    return AthenaRunner(
        client, workgroup="trailguard", database="trailguard", sleep=clock.sleep, clock=clock,
        poll=Backoff(initial=1.0, factor=2.0, maximum=4.0), **kw,
    )  # fmt: skip


def _workgroup(state: str = "ENABLED") -> dict[str, Any]:
    return {
        "WorkGroup": {
            "Name": "trailguard",
            "State": state,
            "Configuration": {
                "ResultConfiguration": {
                    "OutputLocation": "s3://results-bucket/athena/",
                    "EncryptionConfiguration": {
                        "EncryptionOption": "SSE_KMS",
                        "KmsKey": "arn:aws:kms:us-east-1:1:key/k",
                    },
                },
                "EnforceWorkGroupConfiguration": True,
                "BytesScannedCutoffPerQuery": 10 * 1024**3,
            },
        }
    }


def _execution(state: str, **status: Any) -> dict[str, Any]:
    return {
        "QueryExecution": {
            "QueryExecutionId": QID,
            "Status": {"State": state, **status},
            "Statistics": {"DataScannedInBytes": 3 * 1024**3, "EngineExecutionTimeInMillis": 1234},
            "ResultConfiguration": {"OutputLocation": f"s3://results-bucket/athena/{QID}.csv"},
        }
    }


def _page(
    rows: list[list[str | None]], token: str | None = None, columns: tuple[str, ...] = ("eventname", "n")
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ResultSet": {
            "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in r]} for r in rows],
            "ResultSetMetadata": {"ColumnInfo": [{"Name": c, "Type": "varchar"} for c in columns]},
        }
    }
    if token:
        out["NextToken"] = token
    return out


def test_a_query_runs_in_the_workgroup_with_its_parameters_and_pages_its_results() -> None:
    client, clock = _client(), FakeClock()
    with Stubber(client) as stub:
        stub.add_response("get_work_group", _workgroup(), {"WorkGroup": "trailguard"})
        stub.add_response(
            "start_query_execution",
            {"QueryExecutionId": QID},
            {
                "QueryString": "SELECT eventname, count(*) AS n FROM cloudtrail WHERE eventtime >= ? GROUP BY 1",
                "WorkGroup": "trailguard",
                "QueryExecutionContext": {"Database": "trailguard", "Catalog": "AwsDataCatalog"},
                "ExecutionParameters": ["'2024-05-01'"],
            },  # exactly these keys: no ResultConfiguration (the workgroup enforces its own)
        )
        stub.add_response("get_query_execution", _execution("QUEUED"), {"QueryExecutionId": QID})
        stub.add_response("get_query_execution", _execution("RUNNING"), {"QueryExecutionId": QID})
        stub.add_response("get_query_execution", _execution("SUCCEEDED"), {"QueryExecutionId": QID})
        stub.add_response(
            "get_query_results",
            _page([["eventname", "n"], ["ConsoleLogin", "3"]], token="t1"),
            {"QueryExecutionId": QID, "MaxResults": 1000},
        )
        stub.add_response(
            "get_query_results",
            _page([["StopLogging", None]]),
            {"QueryExecutionId": QID, "MaxResults": 1000, "NextToken": "t1"},
        )
        result = _runner(client, clock).run(
            "SELECT eventname, count(*) AS n FROM cloudtrail WHERE eventtime >= ? GROUP BY 1", ["'2024-05-01'"]
        )
        rows = list(result.rows)
        stub.assert_no_pending_responses()
    assert result.columns == ("eventname", "n")
    assert rows == [{"eventname": "ConsoleLogin", "n": "3"}, {"eventname": "StopLogging", "n": None}]  # header dropped
    assert result.query_id == QID
    assert result.bytes_scanned == 3 * 1024**3
    assert result.engine_ms == 1234
    assert result.cost_usd == pytest.approx(3 / 1024 * ATHENA_PER_TB_SCANNED)
    assert result.info["output_location"] == f"s3://results-bucket/athena/{QID}.csv"
    assert result.info["bytes_scanned_cutoff"] == 10 * 1024**3
    assert clock.sleeps == [1.0, 2.0]  # backoff between the QUEUED and RUNNING polls, no real sleeping


def test_no_parameters_means_no_execution_parameters_key() -> None:
    client, clock = _client(), FakeClock()
    with Stubber(client) as stub:
        stub.add_response(
            "start_query_execution",
            {"QueryExecutionId": QID},
            {
                "QueryString": "SELECT 1",
                "WorkGroup": "trailguard",
                "QueryExecutionContext": {"Database": "trailguard", "Catalog": "AwsDataCatalog"},
            },
        )
        assert _runner(client, clock).start("SELECT 1") == QID


def test_a_disabled_workgroup_is_refused_before_any_query() -> None:
    client, clock = _client(), FakeClock()
    with Stubber(client) as stub:
        stub.add_response("get_work_group", _workgroup("DISABLED"), {"WorkGroup": "trailguard"})
        with pytest.raises(RemoteQueryError, match="DISABLED"):
            _runner(client, clock).run("SELECT 1")
        stub.assert_no_pending_responses()


def test_failed_names_the_reason_and_athena_error() -> None:
    client, clock = _client(), FakeClock()
    failed = _execution(
        "FAILED",
        StateChangeReason="COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved",
        AthenaError={"ErrorCategory": 2, "ErrorType": 1006, "Retryable": False},
    )
    with Stubber(client) as stub:
        stub.add_response("get_query_execution", failed, {"QueryExecutionId": QID})
        with pytest.raises(RemoteQueryError) as err:
            _runner(client, clock).wait(QID)
    text = str(err.value)
    assert "FAILED" in text and "COLUMN_NOT_FOUND" in text
    assert "ErrorCategory=2" in text and "ErrorType=1006" in text and "Retryable=False" in text


def test_cancelled_is_an_error() -> None:
    client, clock = _client(), FakeClock()
    with Stubber(client) as stub:
        stub.add_response(
            "get_query_execution",
            _execution("CANCELLED", StateChangeReason="Query exhausted the bytes scanned limit"),
            {"QueryExecutionId": QID},
        )
        with pytest.raises(RemoteQueryError, match="CANCELLED: Query exhausted the bytes scanned limit"):
            _runner(client, clock).wait(QID)


def test_a_query_past_the_timeout_is_stopped() -> None:
    client, clock = _client(), FakeClock()
    with Stubber(client) as stub:
        for _ in range(4):  # polls at t=0, 1, 3, 7 (backoff 1, 2, 4): the one at 7 is past the 5 s timeout
            stub.add_response("get_query_execution", _execution("RUNNING"), {"QueryExecutionId": QID})
        stub.add_response("stop_query_execution", {}, {"QueryExecutionId": QID})
        with pytest.raises(RemoteQueryError, match="still RUNNING after 5s: stopped it"):
            _runner(client, clock, timeout_s=5.0).wait(QID)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [1.0, 2.0, 4.0]


@pytest.mark.parametrize("code", ["TooManyRequestsException", "ThrottlingException"])
def test_throttling_is_retried_with_backoff(code: str) -> None:
    client, clock = _client(), FakeClock()
    with Stubber(client) as stub:
        stub.add_client_error("start_query_execution", code, "Rate exceeded", 400)
        stub.add_client_error("start_query_execution", code, "Rate exceeded", 400)
        stub.add_response("start_query_execution", {"QueryExecutionId": QID}, {
            "QueryString": "SELECT 1", "WorkGroup": "trailguard", "QueryExecutionContext": ANY})  # fmt: skip
        assert _runner(client, clock).start("SELECT 1") == QID
    assert clock.sleeps == [1.0, 2.0]


def test_other_client_errors_are_not_retried() -> None:
    client, clock = _client(), FakeClock()
    with Stubber(client) as stub:
        stub.add_client_error("start_query_execution", "InvalidRequestException", "line 1: mismatched input", 400)
        with pytest.raises(RemoteQueryError, match="InvalidRequestException: line 1: mismatched input"):
            _runner(client, clock).start("SELEC 1")
    assert clock.sleeps == []


def test_parameters_must_be_sql_literals() -> None:
    client, clock = _client(), FakeClock()
    with pytest.raises(RemoteQueryError, match="not one SQL literal"):
        _runner(client, clock).start("SELECT ?", ["2024-05-01"])  # unquoted: Athena would read it as arithmetic
    with pytest.raises(RemoteQueryError, match="not one SQL literal"):
        _runner(client, clock).start("SELECT ?", ["'a' OR 1=1 --'"])


def test_run_many_returns_results_in_submission_order_with_totals() -> None:
    class Fake:
        """A thread-safe fake client: each query's id is its SQL, and its bytes its length."""

        def get_work_group(self, **_: Any) -> dict[str, Any]:
            return _workgroup()

        def start_query_execution(self, QueryString: str, **_: Any) -> dict[str, Any]:
            return {"QueryExecutionId": QueryString}

        def get_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:
            return {"QueryExecution": {"Status": {"State": "SUCCEEDED"},
                                       "Statistics": {"DataScannedInBytes": 100 * 1024**2 * len(QueryExecutionId)}}}  # fmt: skip

        def get_query_results(self, QueryExecutionId: str, **_: Any) -> dict[str, Any]:
            return _page([["q"], [QueryExecutionId]], columns=("q",))

    clock = FakeClock()
    queries: list[tuple[str, list[str]]] = [(f"SELECT {i}" + " " * i, []) for i in range(6)]
    many = _runner(Fake(), clock).run_many(queries, max_workers=3)
    assert [next(r.rows)["q"] for r in many.results] == [q for q, _ in queries]
    assert many.bytes_scanned == sum(100 * 1024**2 * len(q) for q, _ in queries)
    assert many.cost_usd == pytest.approx(sum(athena_cost(100 * 1024**2 * len(q)) for q, _ in queries))


def test_cost_has_athenas_10_mb_minimum() -> None:
    assert athena_cost(0) == athena_cost(1) == ATHENA_MIN_BYTES_PER_QUERY / 1024**4 * ATHENA_PER_TB_SCANNED
    assert athena_cost(1024**4) == pytest.approx(ATHENA_PER_TB_SCANNED)


def test_defaults_equal_the_deployed_names() -> None:
    """trailguard/ does not import stacks/ at runtime; this keeps the copied names equal to the stack's."""
    tree = ast.parse((ROOT / "stacks" / "security_tooling.py").read_text())
    consts = {
        t.id: n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    assert consts["DATABASE_NAME"] == athena.DEFAULT_DATABASE
    assert consts["WORKGROUP_NAME"] == athena.DEFAULT_WORKGROUP
    assert consts["ORG_TABLE"] == athena.DEFAULT_TABLE
