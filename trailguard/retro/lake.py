"""Run SQL on a CloudTrail Lake event data store, presented under the Glue table's column names and types.

What the AWS documentation says, and what follows from it here:

* SQL: "CloudTrail Lake supports all valid Trino SQL SELECT statements, functions, and operators"; only SELECT is
  allowed, and the FROM value is the event data store ID, the ID portion of its ARN (CloudTrail user guide,
  "CloudTrail Lake SQL constraints", docs.aws.amazon.com/awscloudtrail/latest/userguide/query-limitations.html).
  A WITH clause is part of a Trino SELECT, so :data:`LAKE_CTE` is a ``WITH cloudtrail AS (...)`` prefix.
* Parameters: "StartQuery requires you specify either the QueryStatement parameter, or a QueryAlias and any
  QueryParameters. In the current release, the QueryAlias and QueryParameters parameters are used only for the
  queries that populate the CloudTrail Lake dashboards" (CloudTrail API reference, StartQuery,
  docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_StartQuery.html). An ad-hoc statement therefore has no
  bind parameters: :class:`LakeRunner` takes the same ``?`` + literal list as Athena and puts each checked literal
  at its ``?`` token (:func:`trailguard.retro.engines.inline_parameters`). QueryStatement is at most 10,000
  characters (same page), which :data:`MAX_STATEMENT` enforces before the call.
* Schema (user guide, "Supported SQL schemas for event data stores"): the columns are CloudTrail's field names
  (Trino identifiers are case-insensitive), ``eventTime`` is a timestamp, ``readOnly`` a boolean,
  ``requestParameters``, ``responseElements``, ``additionalEventData`` and ``serviceEventDetails`` are
  ``map(varchar, varchar)``, ``userIdentity`` a row whose ``sessionContext.attributes.creationDate`` is a timestamp.
  The CTE turns these back into the Glue table's shape (:data:`trailguard.sqlcatalog.CLOUDTRAIL_COLUMNS`): times in
  CloudTrail's ``2024-05-01T12:00:00Z`` form, maps as JSON strings, ``readonly`` as ``'true'``/``'false'``, and
  the partition columns ``account`` (recipientAccountId), ``region`` (awsRegion), ``"date"`` (``yyyy/MM/dd``).
  One loss is Lake's, not ours: a map value that was a nested JSON object is stored as a string, so a JSON path
  into it (``$.policy.Statement``) finds nothing on Lake.
* Pricing: "CloudTrail Lake analyze: $0.005 per GB scanned" (:data:`trailguard.pricing.LAKE_QUERY_PER_GB_SCANNED`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from trailguard.pricing import LAKE_QUERY_PER_GB_SCANNED
from trailguard.retro.engines import (
    Backoff,
    ManyResults,
    RemoteQueryError,
    RemoteResult,
    Row,
    inline_parameters,
    with_retries,
)
from trailguard.sqlcatalog import CLOUDTRAIL_COLUMNS

#: StartQuery's QueryStatement limit (characters).
MAX_STATEMENT = 10_000
#: GetQueryResults page size (the API maximum is 1,000).
PAGE_SIZE = 1000
DEFAULT_TIMEOUT_S = 30 * 60.0

_STORE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,127}$")
_STORE_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:cloudtrail:[a-z0-9-]+:\d{12}:eventdatastore/([A-Za-z0-9][A-Za-z0-9-]{2,127})$"
)
_CT_TIME = "'%Y-%m-%dT%H:%i:%sZ'"


def _ctime(expr: str) -> str:
    return f"date_format({expr},{_CT_TIME})"


_U = "userIdentity"
_SC = f"{_U}.sessionContext"
_SA = f"{_SC}.attributes"
_SI = f"{_SC}.sessionIssuer"
_OB = f"{_U}.onBehalfOf"
#: Glue's ``useridentity`` struct, field by field (Lake's rows are read by name, never cast by position).
_IDENTITY_SHAPE = (
    "type varchar,principalid varchar,arn varchar,accountid varchar,invokedby varchar,accesskeyid varchar,"
    "username varchar,onbehalfof ROW(userid varchar,identitystorearn varchar),sessioncontext ROW(attributes "
    "ROW(mfaauthenticated varchar,creationdate varchar),sessionissuer ROW(type varchar,principalid varchar,"
    "arn varchar,accountid varchar,username varchar),sourceidentity varchar,ec2roledelivery varchar)"
)
_IDENTITY = (
    f"IF({_U} IS NULL,NULL,CAST(ROW({_U}.type,{_U}.principalId,{_U}.arn,{_U}.accountId,{_U}.invokedBy,"
    f"{_U}.accessKeyId,{_U}.userName,IF({_OB} IS NULL,NULL,ROW({_OB}.userId,{_OB}.identityStoreArn)),"
    f"IF({_SC} IS NULL,NULL,ROW(IF({_SA} IS NULL,NULL,ROW({_SA}.mfaAuthenticated,{_ctime(_SA + '.creationDate')})),"
    f"IF({_SI} IS NULL,NULL,ROW({_SI}.type,{_SI}.principalId,{_SI}.arn,{_SI}.accountId,{_SI}.userName)),"
    f"{_SC}.sourceIdentity,{_SC}.ec2RoleDelivery))) AS ROW({_IDENTITY_SHAPE})))"
)
#: Lake expressions for the Glue columns that are not a plain varchar copy.
_EXPRESSIONS: dict[str, str] = {
    "useridentity": _IDENTITY,
    "eventtime": _ctime("eventTime"),
    "readonly": "CAST(readOnly AS varchar)",
    "resources": "transform(resources,r->CAST(ROW(r.arn,r.accountId,r.type) AS "
    "ROW(arn varchar,accountid varchar,type varchar)))",
    "tlsdetails": "IF(tlsDetails IS NULL,NULL,CAST(ROW(tlsDetails.tlsVersion,tlsDetails.cipherSuite,"
    "tlsDetails.clientProvidedHostHeader) AS ROW(tlsversion varchar,ciphersuite varchar,"
    "clientprovidedhostheader varchar)))",
    "sessioncredentialfromconsole": "CAST(sessionCredentialFromConsole AS varchar)",
}
_JSON_MAPS = ("requestparameters", "responseelements", "additionaleventdata", "serviceeventdetails")


def _lake_column(name: str, key: str) -> str:
    if name in _EXPRESSIONS:
        return _EXPRESSIONS[name]
    if name in _JSON_MAPS:
        return f"json_format(CAST({key} AS JSON))"
    return key


def _select_list() -> str:
    cols = [f"{_lake_column(name, key)} AS {name}" for name, _hive, key in CLOUDTRAIL_COLUMNS]
    cols += ["recipientAccountId AS account", "awsRegion AS region", "date_format(eventTime,'%Y/%m/%d') AS \"date\""]
    return ",".join(cols)


#: ``WITH cloudtrail AS (...)`` over the event data store ``{store}``, with an optional raw-eventTime ``{where}``.
_SELECT = _select_list().replace("{", "{{").replace("}", "}}")
LAKE_CTE_TEMPLATE = "WITH cloudtrail AS (SELECT " + _SELECT + " FROM {store}{where})"  # noqa: S608 - store ID checked


def event_data_store_id(value: str) -> str:
    """The ID portion of an event data store ARN or ID; anything else (quotes, spaces, SQL) is refused."""
    text = value.strip()
    m = _STORE_ARN_RE.match(text)
    if m:
        return m.group(1)
    if _STORE_ID_RE.match(text):
        return text
    raise RemoteQueryError(
        f"--event-data-store {value[:60]!r}: expected an event data store ID or ARN "
        "(arn:aws:cloudtrail:<region>:<account>:eventdatastore/<id>)"
    )


def _lake_timestamp(moment: datetime | str) -> str:
    text = moment if isinstance(moment, str) else moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", text):
        raise RemoteQueryError(f"not a CloudTrail time: {text[:40]!r}")
    return f"TIMESTAMP '{text[:10]} {text[11:19]}'"


def lake_cte(
    store: str, *, since: datetime | str | None = None, until: datetime | str | None = None, condition: str = ""
) -> str:
    """:data:`LAKE_CTE_TEMPLATE` for one store.

    ``since``/``until`` (UTC) bound Lake's own eventTime so it scans less; ``condition`` is a WHERE over the Glue
    column names (e.g. :func:`trailguard.retro.engines.filter_condition`), applied to the presented rows.
    """
    conds = []
    if since is not None:
        conds.append(f"eventTime>={_lake_timestamp(since)}")
    if until is not None:
        conds.append(f"eventTime<{_lake_timestamp(until)}")
    where = (" WHERE " + " AND ".join(conds)) if conds else ""
    cte = LAKE_CTE_TEMPLATE.format(store=event_data_store_id(store), where=where)
    if condition:
        inner = cte[len("WITH cloudtrail AS (") : -1]
        cte = f"WITH cloudtrail AS (SELECT * FROM ({inner}) WHERE {condition})"  # noqa: S608 - values are bound
    return cte


#: The CTE for a placeholder store ID (documentation, tests); use :func:`lake_cte` for a real store.
LAKE_CTE = lake_cte("EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE")


def lake_cost(bytes_scanned: int) -> float:
    """USD for one Lake query at the per-GB-scanned price (GB = 2**30 bytes, as Athena's TB is 2**40)."""
    return bytes_scanned / 1024**3 * LAKE_QUERY_PER_GB_SCANNED


class LakeRunner:
    """Start, poll (with backoff) and page CloudTrail Lake queries; ``client`` is a boto3 ``cloudtrail`` client."""

    def __init__(
        self,
        client: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        poll: Backoff | None = None,
        owner_account_id: str | None = None,
    ) -> None:
        self.client = client
        self.sleep = sleep
        self.clock = clock
        self.timeout_s = timeout_s
        self.poll = poll or Backoff()
        self.owner_account_id = owner_account_id

    def _call(self, name: str, **kwargs: Any) -> Any:
        try:
            return with_retries(lambda: getattr(self.client, name)(**kwargs), backoff=self.poll, sleep=self.sleep)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise RemoteQueryError(
                f"CloudTrail Lake {name}: {err.get('Code', '?')}: {err.get('Message', exc)}"
            ) from exc
        except BotoCoreError as exc:
            raise RemoteQueryError(f"CloudTrail Lake {name}: {exc}") from exc

    def start(self, sql: str, parameters: Sequence[str] = ()) -> str:
        """StartQuery with the literals inlined (Lake has no parameters for ad-hoc statements)."""
        statement = inline_parameters(sql, parameters) if parameters else sql
        if len(statement) > MAX_STATEMENT:
            raise RemoteQueryError(
                f"CloudTrail Lake takes at most {MAX_STATEMENT:,} characters of SQL; this query has {len(statement):,}"
            )
        request: dict[str, Any] = {"QueryStatement": statement}
        if self.owner_account_id:
            request["EventDataStoreOwnerAccountId"] = self.owner_account_id
        return str(self._call("start_query", **request)["QueryId"])

    def wait(self, query_id: str) -> dict[str, Any]:
        """Poll DescribeQuery until FINISHED (returned); FAILED, CANCELLED, TIMED_OUT or our timeout raise."""
        started = self.clock()
        delays = self.poll.delays()
        while True:
            described: dict[str, Any] = self._call("describe_query", QueryId=query_id)
            state = described.get("QueryStatus")
            if state == "FINISHED":
                return described
            if state in ("FAILED", "CANCELLED", "TIMED_OUT"):
                raise RemoteQueryError(
                    f"CloudTrail Lake query {query_id} {state}: {described.get('ErrorMessage') or 'no reason given'}"
                )
            if self.clock() - started >= self.timeout_s:
                self._call("cancel_query", QueryId=query_id)
                raise RemoteQueryError(
                    f"CloudTrail Lake query {query_id} still {state} after {self.timeout_s:g}s: cancelled it"
                )
            self.sleep(next(delays))

    def pages(self, query_id: str) -> tuple[tuple[str, ...], Iterator[Row]]:
        """Columns (from the first row's keys) and every row; each row is a list of one-key ``{column: value}``."""
        first = self._call("get_query_results", QueryId=query_id, MaxQueryResults=PAGE_SIZE)
        rows_first = first.get("QueryResultRows", [])
        columns = tuple(k for cell in rows_first[0] for k in cell) if rows_first else ()

        def rows() -> Iterator[Row]:
            page = first
            while True:
                for raw in page.get("QueryResultRows", []):
                    row: Row = dict.fromkeys(columns)
                    for cell in raw:
                        row.update({k: (None if v is None else str(v)) for k, v in cell.items()})
                    yield row
                token = page.get("NextToken")
                if not token:
                    return
                page = self._call("get_query_results", QueryId=query_id, MaxQueryResults=PAGE_SIZE, NextToken=token)

        return columns, rows()

    def run(self, sql: str, parameters: Sequence[str] = ()) -> RemoteResult:
        query_id = self.start(sql, parameters)
        described = self.wait(query_id)
        stats = described.get("QueryStatistics", {})
        scanned = int(stats.get("BytesScanned") or 0)
        columns, rows = self.pages(query_id)
        return RemoteResult(
            engine="lake",
            query_id=query_id,
            columns=columns,
            rows=rows,
            bytes_scanned=scanned,
            engine_ms=stats.get("ExecutionTimeInMillis"),
            cost_usd=lake_cost(scanned),
            info={"events_scanned": stats.get("EventsScanned"), "events_matched": stats.get("EventsMatched")},
        )

    def _run_read(self, sql: str, parameters: Sequence[str]) -> RemoteResult:
        return self.run(sql, parameters).materialize()

    def run_many(self, queries: Sequence[tuple[str, Sequence[str]]], max_workers: int = 4) -> ManyResults:
        """Run ``(sql, parameters)`` pairs in parallel; results (fully read) in submission order, with totals."""
        with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="trailguard-lake") as pool:
            futures = [pool.submit(self._run_read, sql, params) for sql, params in queries]
            results = tuple(f.result() for f in futures)
        return ManyResults(results, sum(r.bytes_scanned for r in results), sum(r.cost_usd for r in results))
