"""Run SQL on Athena in the deployed ``trailguard`` workgroup, with backoff, paging and the cost of each query.

The request never carries a ResultConfiguration: the deployed workgroup enforces its own result location and KMS
encryption (and its bytes-scanned limit), so a client setting could only be overridden or refused.
:meth:`AthenaRunner.check_workgroup` reads those settings first (GetWorkGroup) and refuses a disabled workgroup.

Parameters are Athena execution parameters: one SQL literal per ``?`` in order of appearance (strings quoted,
``'2024-05-01'``), substituted by Athena, never pasted here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from trailguard.pricing import ATHENA_MIN_BYTES_PER_QUERY, ATHENA_PER_TB_SCANNED
from trailguard.retro.engines import (
    Backoff,
    ManyResults,
    RemoteQueryError,
    RemoteResult,
    Row,
    check_literal,
    with_retries,
)

#: Defaults of the deployed query layer (``stacks/security_tooling.py``; a test keeps them equal).
DEFAULT_DATABASE = "trailguard"
DEFAULT_WORKGROUP = "trailguard"
DEFAULT_TABLE = "cloudtrail"
DEFAULT_CATALOG = "AwsDataCatalog"
#: GetQueryResults page size (the API maximum).
PAGE_SIZE = 1000
DEFAULT_TIMEOUT_S = 30 * 60.0


def athena_cost(bytes_scanned: int) -> float:
    """USD for one query: Athena bills at least 10 MB per query, at the per-TB price (TB = 2**40 bytes)."""
    return max(bytes_scanned, ATHENA_MIN_BYTES_PER_QUERY) / 1024**4 * ATHENA_PER_TB_SCANNED


@dataclass(frozen=True)
class WorkGroupInfo:
    name: str
    state: str
    bytes_scanned_cutoff: int | None
    output_location: str | None
    enforced: bool
    encryption: str | None


class AthenaRunner:
    """Start, poll (with backoff) and page Athena queries in one workgroup; ``client`` is a boto3 Athena client."""

    def __init__(
        self,
        client: Any,
        *,
        workgroup: str = DEFAULT_WORKGROUP,
        database: str = DEFAULT_DATABASE,
        catalog: str = DEFAULT_CATALOG,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        poll: Backoff | None = None,
    ) -> None:
        self.client = client
        self.workgroup = workgroup
        self.database = database
        self.catalog = catalog
        self.sleep = sleep
        self.clock = clock
        self.timeout_s = timeout_s
        self.poll = poll or Backoff()
        self._workgroup_info: WorkGroupInfo | None = None

    def _call(self, name: str, **kwargs: Any) -> Any:
        try:
            return with_retries(lambda: getattr(self.client, name)(**kwargs), backoff=self.poll, sleep=self.sleep)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise RemoteQueryError(f"Athena {name}: {err.get('Code', '?')}: {err.get('Message', exc)}") from exc
        except BotoCoreError as exc:
            raise RemoteQueryError(f"Athena {name}: {exc}") from exc

    def check_workgroup(self) -> WorkGroupInfo:
        """The workgroup's state and enforced settings (GetWorkGroup); refuses a missing or disabled workgroup."""
        if self._workgroup_info is not None:
            return self._workgroup_info
        wg = self._call("get_work_group", WorkGroup=self.workgroup)["WorkGroup"]
        conf = wg.get("Configuration", {})
        result_conf = conf.get("ResultConfiguration", {})
        info = WorkGroupInfo(
            name=wg.get("Name", self.workgroup),
            state=wg.get("State", "UNKNOWN"),
            bytes_scanned_cutoff=conf.get("BytesScannedCutoffPerQuery"),
            output_location=result_conf.get("OutputLocation"),
            enforced=bool(conf.get("EnforceWorkGroupConfiguration", False)),
            encryption=result_conf.get("EncryptionConfiguration", {}).get("EncryptionOption"),
        )
        if info.state != "ENABLED":
            raise RemoteQueryError(f"Athena workgroup {self.workgroup!r} is {info.state}: enable it or use --workgroup")
        self._workgroup_info = info
        return info

    def start(self, sql: str, parameters: Sequence[str] = ()) -> str:
        """StartQueryExecution in the workgroup (no ResultConfiguration: the workgroup enforces its own)."""
        request: dict[str, Any] = {
            "QueryString": sql,
            "WorkGroup": self.workgroup,
            "QueryExecutionContext": {"Database": self.database, "Catalog": self.catalog},
        }
        if parameters:
            request["ExecutionParameters"] = [check_literal(p) for p in parameters]
        return str(self._call("start_query_execution", **request)["QueryExecutionId"])

    def wait(self, query_id: str) -> dict[str, Any]:
        """Poll GetQueryExecution until SUCCEEDED (returned); FAILED, CANCELLED or the timeout raise."""
        started = self.clock()
        delays = self.poll.delays()
        while True:
            execution: dict[str, Any] = self._call("get_query_execution", QueryExecutionId=query_id)["QueryExecution"]
            status = execution.get("Status", {})
            state = status.get("State")
            if state == "SUCCEEDED":
                return execution
            if state == "FAILED":
                err = status.get("AthenaError", {})
                detail = ", ".join(
                    f"{k}={err[k]}" for k in ("ErrorCategory", "ErrorType", "Retryable") if k in err
                )  # fmt: skip
                reason = status.get("StateChangeReason") or err.get("ErrorMessage") or "no reason given"
                raise RemoteQueryError(f"Athena query {query_id} FAILED: {reason}" + (f" ({detail})" if detail else ""))
            if state == "CANCELLED":
                raise RemoteQueryError(
                    f"Athena query {query_id} was CANCELLED: {status.get('StateChangeReason') or 'by a user or a limit'}"
                )
            if self.clock() - started >= self.timeout_s:
                self._call("stop_query_execution", QueryExecutionId=query_id)
                raise RemoteQueryError(
                    f"Athena query {query_id} still {state} after {self.timeout_s:g}s: stopped it (StopQueryExecution)"
                )
            self.sleep(next(delays))

    def pages(self, query_id: str) -> tuple[tuple[str, ...], Iterator[Row]]:
        """Columns (from the first page's ResultSetMetadata) and the rows of every page, header row dropped."""
        first = self._call("get_query_results", QueryExecutionId=query_id, MaxResults=PAGE_SIZE)
        info = first.get("ResultSet", {}).get("ResultSetMetadata", {}).get("ColumnInfo", [])
        columns = tuple(str(c.get("Name") or c.get("Label") or "") for c in info)

        def rows() -> Iterator[Row]:
            page = first
            header = True
            while True:
                for raw in page.get("ResultSet", {}).get("Rows", []):
                    values = [d.get("VarCharValue") for d in raw.get("Data", [])]  # no VarCharValue: NULL
                    if header:  # the first row of the first page holds the column names
                        header = False
                        continue
                    yield dict(zip(columns, values, strict=False))
                token = page.get("NextToken")
                if not token:
                    return
                page = self._call("get_query_results", QueryExecutionId=query_id, MaxResults=PAGE_SIZE, NextToken=token)

        return columns, rows()

    def run(self, sql: str, parameters: Sequence[str] = ()) -> RemoteResult:
        """Check the workgroup, start, wait, and return the result (rows paged as they are read)."""
        wg = self.check_workgroup()
        query_id = self.start(sql, parameters)
        execution = self.wait(query_id)
        stats = execution.get("Statistics", {})
        scanned = int(stats.get("DataScannedInBytes") or 0)
        columns, rows = self.pages(query_id)
        return RemoteResult(
            engine="athena",
            query_id=query_id,
            columns=columns,
            rows=rows,
            bytes_scanned=scanned,
            engine_ms=stats.get("EngineExecutionTimeInMillis"),
            cost_usd=athena_cost(scanned),
            info={
                "workgroup": wg.name,
                "output_location": execution.get("ResultConfiguration", {}).get("OutputLocation") or wg.output_location,
                "bytes_scanned_cutoff": wg.bytes_scanned_cutoff,
            },
        )

    def _run_read(self, sql: str, parameters: Sequence[str]) -> RemoteResult:
        return self.run(sql, parameters).materialize()

    def run_many(self, queries: Sequence[tuple[str, Sequence[str]]], max_workers: int = 4) -> ManyResults:
        """Run ``(sql, parameters)`` pairs in parallel; results (fully read) in submission order, with totals."""
        self.check_workgroup()
        with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="trailguard-athena") as pool:
            futures = [pool.submit(self._run_read, sql, params) for sql, params in queries]
            results = tuple(f.result() for f in futures)
        return ManyResults(
            results, sum(r.bytes_scanned for r in results), sum(r.cost_usd for r in results)
        )  # fmt: skip
