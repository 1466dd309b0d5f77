"""``trailguard hunt``: the Athena named queries (or ad-hoc SQL) over local CloudTrail logs, with DuckDB."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Annotated, NoReturn

import duckdb
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from trailguard import hunt as hunt_lib
from trailguard.cli import app
from trailguard.exceptions import TrailguardError
from trailguard.filters import (
    AccountOption,
    EventFilter,
    FilterError,
    PrincipalOption,
    RegionOption,
    SinceOption,
    UntilOption,
    event_filter,
)
from trailguard.output import (
    EXIT_BROKEN_PIPE,
    EXIT_CODES_HELP,
    Format,
    OutputError,
    PipeClosed,
    Sink,
    console_for,
    iter_jsonl,
    open_sink,
    quiet_broken_pipe,
    spreadsheet_safe,
)
from trailguard.replay import skipped_summary
from trailguard.retro import athena as athena_lib
from trailguard.retro import lake as lake_lib
from trailguard.retro.cli_options import (
    DEFAULT_DATABASE,
    DEFAULT_TABLE,
    DEFAULT_WORKGROUP,
    AwsRegionOption,
    DatabaseOption,
    Engine,
    EngineOption,
    EventDataStoreOption,
    ProfileOption,
    TableOption,
    WorkgroupOption,
    aws_client,
)
from trailguard.retro.engines import (
    RemoteResult,
    filter_condition,
    qualified_table,
    sql_literal,
    with_cloudtrail,
)
from trailguard.sqlcatalog import RELATION, Query, get_query, load_queries

#: Show a progress bar on stderr above this many input bytes (or with --progress).
PROGRESS_MIN_BYTES = 32 * 1024 * 1024


OutputFormat = Format
#: hunt prints log rows; these formats describe findings (replay).
_ROW_FORMATS = (Format.table, Format.json, Format.jsonl, Format.csv)
#: Columns shown without --wide (when the query returns them); nested or bulky ones are left to --wide / csv.
_WIDE_ONLY = frozenset(
    {
        "useragent", "requestparameters", "responseelements", "additionaleventdata", "resources", "useridentity",
        "serviceeventdetails", "tlsdetails", "requestid", "sharedeventid", "vpcendpointid", "eventversion",
        "eventtype", "managementevent", "readonly", "recipientaccountid", "eventcategory", "apiversion",
        "annotation", "errormessage", "sessioncredentialfromconsole", "insightdetails", "date",
    }
)  # fmt: skip
#: Identifier columns: never wrapped (a split ARN or ID cannot be copied).
_ID_HINTS = ("arn", "id", "account", "region", "time", "name", "source", "principal", "ip", "key")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _parse_params(raw: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in raw:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            _fail(f"--param {item!r}: expected name=value")
        if name.strip() in params:
            _fail(f"--param {name.strip()!r} given twice")
        params[name.strip()] = value
    return params


def _list_queries(fmt: Format) -> None:
    queries = load_queries()
    if fmt is Format.json:
        doc = [
            {
                "name": q.name,
                "title": q.title,
                "description": q.description,
                "params": [
                    {"name": p.name, "type": p.type, "required": p.default is None, "default": p.default,
                     "description": p.description}
                    for p in q.params
                ],
            }
            for q in queries.values()
        ]  # fmt: skip
        typer.echo(json.dumps(doc, indent=2))
        return
    if fmt is Format.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["name", "title", "required_params", "optional_params"])
        for q in queries.values():
            writer.writerow([q.name, q.title, " ".join(_required(q)), " ".join(_optional(q))])
        return
    table = Table(title=f"{len(queries)} hunt queries (same SQL as the Athena named queries)")
    table.add_column("query", style="bold")
    table.add_column("what it finds")
    table.add_column("--param (required)")
    table.add_column("--param (optional)", style="dim")
    for q in queries.values():
        table.add_row(q.name, q.title, ", ".join(_required(q)), ", ".join(_optional(q)))
    Console(width=max(120, Console().width)).print(table)


def _required(q: Query) -> list[str]:
    return [p.name for p in q.params if p.default is None]


def _optional(q: Query) -> list[str]:
    return [p.name for p in q.params if p.default is not None]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple):
        return json.dumps(hunt_lib.jsonable(value), separators=(",", ":"))
    return str(hunt_lib.jsonable(value))


def _emit(result: hunt_lib.HuntResult, fmt: Format, sink: Sink, wide: bool) -> None:
    if fmt is Format.json:
        sink.text(json.dumps([hunt_lib.jsonable(r) for r in result.records()], indent=2) + "\n")
    elif fmt is Format.jsonl:
        for line in iter_jsonl(hunt_lib.jsonable(r) for r in result.records()):
            sink.write(line)
    elif fmt is Format.csv:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(result.columns)
        for row in result.rows:
            writer.writerow([spreadsheet_safe(_cell(v)) for v in row])
        sink.text(buf.getvalue())
    else:
        shown = [i for i, c in enumerate(result.columns) if wide or c.lower() not in _WIDE_ONLY]
        if not shown:
            shown = list(range(len(result.columns)))
        hidden = [c for i, c in enumerate(result.columns) if i not in shown]
        table = Table(show_lines=False)
        for i in shown:
            col = result.columns[i]
            ident = any(h in col.lower() for h in _ID_HINTS)
            table.add_column(col, no_wrap=ident, overflow="ellipsis" if ident else "fold")
        for row in result.rows:
            table.add_row(*(Text(_cell(row[i])) for i in shown))  # log values are data, never rich markup
        console_for(sink).print(table)
        if hidden:
            typer.echo(
                f"{len(hidden)} columns not shown ({', '.join(hidden)}): --wide shows them, -o csv keeps all", err=True
            )


def _progress_bar(show: bool, files: int, size: int) -> tuple[Progress | None, hunt_lib.ProgressCallback | None]:
    if not show:
        return None, None
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]hunt[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=console.is_terminal,
    )
    task: TaskID = progress.add_task(f"scanning {files} files ({size / 1e6:.1f} MB)", total=100)

    def update(pct: float) -> None:
        progress.update(task, completed=pct)

    return progress, update


_HUNT_EPILOG = (
    EXIT_CODES_HELP.replace("3 findings at or above --fail-on", "3 rows found with --fail-on-rows")  # noqa: S608 (help text)
    + "\n\n\b\nExamples:\n"
    "  trailguard hunt --list\n"
    "  trailguard hunt root-activity --logs AWSLogs/ --since 7d\n"
    '  trailguard hunt --sql "SELECT eventname, count(*) FROM cloudtrail GROUP BY 1" --logs AWSLogs/ -o csv\n'
    "  trailguard hunt root-activity --engine athena --since 30d --account 111122223333\n"
    "  trailguard hunt root-activity --engine lake --event-data-store <id or ARN> --since 30d"
)


@app.command(epilog=_HUNT_EPILOG)
def hunt(
    query: Annotated[str | None, typer.Argument(help="Named query to run (see --list).")] = None,
    *,
    logs: Annotated[
        list[Path] | None,
        typer.Option(
            "--logs", "-l", help="CloudTrail log directory (e.g. a synced AWSLogs/ tree) or file; repeatable."
        ),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Query parameter as name=value; repeatable.")
    ] = None,
    sql: Annotated[
        str | None, typer.Option("--sql", help="Ad-hoc SQL over the 'cloudtrail' view instead of a named query.")
    ] = None,
    list_queries: Annotated[bool, typer.Option("--list", help="List the named queries and their parameters.")] = False,
    show_sql: Annotated[
        bool, typer.Option("--show-sql", help="Print the query's Athena SQL and parameter order, then exit.")
    ] = False,
    fmt: Annotated[
        Format,
        typer.Option("--output", "-o", "--format", "-f", help="table, json, jsonl or csv (--format is the old name)."),
    ] = Format.table,
    out: Annotated[Path | None, typer.Option("--out", help="Write the output to this file instead of stdout.")] = None,
    wide: Annotated[bool, typer.Option("--wide", help="Table: every column (default: the compact ones).")] = False,
    fail_on_rows: Annotated[
        bool, typer.Option("--fail-on-rows", help="Exit 3 when the query returns rows (a hunt gate in CI).")
    ] = False,
    since: SinceOption = None,
    until: UntilOption = None,
    account: AccountOption = None,
    region: RegionOption = None,
    principal: PrincipalOption = None,
    rule: Annotated[list[str] | None, typer.Option("--rule", help="replay only (hunt rows are not findings).")] = None,
    severity: Annotated[str | None, typer.Option("--severity", help="replay only.")] = None,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar on stderr (default: only for large inputs)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 if any input was skipped (bad lines, truncated files).")
    ] = False,
    engine: EngineOption = Engine.duckdb,
    workgroup: WorkgroupOption = DEFAULT_WORKGROUP,
    database: DatabaseOption = DEFAULT_DATABASE,
    table: TableOption = DEFAULT_TABLE,
    event_data_store: EventDataStoreOption = None,
    profile: ProfileOption = None,
    aws_region: AwsRegionOption = None,
) -> None:
    """Hunt through local CloudTrail logs with the same SQL as the Athena named queries.

    --since/--until/--account/--region/--principal filter the log events before the query runs (a WHERE clause
    on the cloudtrail view the query reads; on Athena it includes the partition columns, so Athena prunes).
    --engine athena runs in the deployed workgroup (its result location, encryption and bytes-scanned limit
    apply); --engine lake runs on a CloudTrail Lake event data store presented under the same column names.
    Both print the query ID, bytes scanned and cost on stderr.
    """
    if fmt not in _ROW_FORMATS:
        _fail(f"-o {fmt.value} describes findings; hunt prints log rows: use table, json, jsonl or csv "
              f"(or `trailguard replay -o {fmt.value}` for findings)")  # fmt: skip
    if rule or severity:
        _fail("--rule and --severity select findings: use them with `trailguard replay`; hunt filters log events "
              "(--since, --until, --account, --region, --principal)")  # fmt: skip
    if list_queries:
        _list_queries(fmt if fmt is not Format.jsonl else Format.json)
        return
    if query is None and sql is None:
        _fail("nothing to run: give a query name (see `trailguard hunt --list`) or --sql 'SELECT ... FROM cloudtrail'")
    if query is not None and sql is not None:
        _fail("give a query name or --sql, not both")
    try:
        selection = event_filter(
            since=since, until=until, accounts=account or (), regions=region or (), principals=principal or ()
        )
    except FilterError as exc:
        _fail(str(exc))
    try:
        named = get_query(query) if query is not None else None
        if named is not None and show_sql:
            typer.echo(f"-- {named.title}\n-- execution parameters in order: {', '.join(named.placeholders())}")
            typer.echo(named.athena_sql())
            return
        values = _parse_params(param or [])
        if named is not None:
            named.bind(values)  # validate before touching the logs
        elif values:
            _fail("--param only applies to named queries")
        if engine is not Engine.duckdb:
            if logs:
                _fail(f"--engine {engine.value} reads the deployed data, not local files: drop --logs "
                      "(or use --engine duckdb)")  # fmt: skip
            if sql is not None:
                hunt_lib.check_read_only(sql)
            _remote(engine, named, values, sql, selection, fmt, out, wide, fail_on_rows,
                    workgroup=workgroup, database=database, table=table, store=event_data_store,
                    profile=profile, aws_region=aws_region)  # fmt: skip
            return
        if not logs:
            _fail("--logs DIR is required (a CloudTrail log directory or file)")
        logset = hunt_lib.discover(logs)
        # Only the files whose AWSLogs/ account, region and date folders can hold selected events are read.
        logset = hunt_lib.prune(logset, since=selection.since, accounts=selection.accounts, regions=selection.regions)
        size = logset.total_bytes()
        show = progress if progress is not None else size >= PROGRESS_MIN_BYTES
        bar, on_progress = _progress_bar(show, logset.count, size)
        started = time.perf_counter()
        if bar is not None:
            bar.start()
        try:
            result = _run(named, values, sql, logset, selection, on_progress)
        finally:
            if bar is not None:
                bar.stop()
    except TrailguardError as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    try:
        sink = open_sink(out)
    except OutputError as exc:
        _fail(str(exc))
    try:
        _emit(result, fmt, sink, wide)
        sink.close()
    except PipeClosed:
        quiet_broken_pipe()
        raise typer.Exit(EXIT_BROKEN_PIPE) from None
    for problem in result.problems:
        typer.echo(str(problem), err=True)
    skipped_files = skipped_summary(list(logset.skipped))
    if skipped_files:
        typer.echo(skipped_files, err=True)
    bad = f", {len(result.problems)} inputs skipped" if result.problems else ""
    typer.echo(
        f"{len(result.rows)} rows from {logset.count} files{bad} in {time.perf_counter() - started:.2f}s", err=True
    )
    if fail_on_rows and result.rows:
        raise typer.Exit(3)
    if strict and result.problems:
        raise typer.Exit(1)


def _run(
    named: Query | None,
    values: dict[str, str],
    sql: str | None,
    logset: hunt_lib.LogSet,
    selection: EventFilter,
    on_progress: hunt_lib.ProgressCallback | None,
) -> hunt_lib.HuntResult:
    """Run the query on the cloudtrail view, narrowed first by the event filters (bound values, never pasted)."""
    if not selection.active:
        if named is not None:
            return hunt_lib.run_query(named, values, logset, on_progress=on_progress)
        return hunt_lib.run_sql(sql or "", logset, on_progress=on_progress)
    if named is None and not (sql or "").strip():
        raise hunt_lib.HuntError("empty SQL")
    where, bound = selection.sql()
    con = hunt_lib.connect(logset)
    try:
        # The filter values live in a one-row table: views cannot hold bound parameters.
        columns = ", ".join(f"${k} AS {k}" for k in bound)
        con.execute(f"CREATE TEMP TABLE tg_filter AS SELECT {columns}", bound)
        cond = where
        for k in sorted(bound, key=len, reverse=True):
            cond = cond.replace(f"${k}", f"(SELECT {k} FROM tg_filter)")  # noqa: S608 (names are ours)
        con.execute(f"ALTER VIEW {RELATION} RENAME TO tg_unfiltered")
        con.execute(f"CREATE TEMP VIEW {RELATION} AS SELECT * FROM tg_unfiltered WHERE {cond}")  # noqa: S608
        if named is not None:
            return hunt_lib.execute(con, named.duckdb_sql(), named.bind(values), on_progress=on_progress)
        return hunt_lib.execute(con, sql or "", None, on_progress=on_progress)
    except duckdb.Error as exc:
        raise hunt_lib.HuntError(f"cannot apply the filters: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()


def remote_query(
    engine: Engine,
    named: Query | None,
    values: dict[str, str],
    sql: str | None,
    selection: EventFilter,
    *,
    source: str,
) -> tuple[str, list[str]]:
    """The SQL and ``?`` literals a remote engine runs: the query over ``cloudtrail``, narrowed by the filters.

    ``source`` is the qualified Glue table (athena) or the event data store ID (lake). On Lake the CTE presents the
    store under the Glue names; on Athena a filtered CTE named ``cloudtrail`` reads the table (partition columns
    included, so Athena prunes); without filters a named query reads the table directly.
    """
    cond, params = filter_condition(
        since=selection.since, until=selection.until, accounts=selection.accounts, regions=selection.regions,
        principals=selection.principals,
    )  # fmt: skip
    body = named.athena_sql() if named is not None else (sql or "")
    if named is not None:
        bound = named.bind(values)
        params += [
            bound[n] if named.param(n).type == "integer" else sql_literal(bound[n]) for n in named.placeholders()
        ]
    if engine is Engine.lake:
        cte = lake_lib.lake_cte(source, since=selection.since, until=selection.until, condition=cond)
        return with_cloudtrail(cte, body), params
    if named is not None and not cond:
        return named.athena_sql(source), params
    where = f" WHERE {cond}" if cond else ""
    return with_cloudtrail(f"WITH {RELATION} AS (SELECT * FROM {source}{where})", body), params  # noqa: S608


def _remote(
    engine: Engine,
    named: Query | None,
    values: dict[str, str],
    sql: str | None,
    selection: EventFilter,
    fmt: Format,
    out: Path | None,
    wide: bool,
    fail_on_rows: bool,
    *,
    workgroup: str,
    database: str,
    table: str,
    store: str | None,
    profile: str | None,
    aws_region: str | None,
) -> None:
    started = time.perf_counter()
    result: RemoteResult
    if engine is Engine.lake:
        if not store:
            _fail("--engine lake needs --event-data-store ID (or ARN)")
        store_id = lake_lib.event_data_store_id(store)
        text, params = remote_query(engine, named, values, sql, selection, source=store_id)
        result = lake_lib.LakeRunner(aws_client("cloudtrail", profile, aws_region)).run(text, params)
    else:
        text, params = remote_query(engine, named, values, sql, selection, source=qualified_table(database, table))
        runner = athena_lib.AthenaRunner(
            aws_client("athena", profile, aws_region), workgroup=workgroup, database=database
        )
        result = runner.run(text, params)
    rows = tuple(tuple(r.get(c) for c in result.columns) for r in result.rows)
    try:
        sink = open_sink(out)
    except OutputError as exc:
        _fail(str(exc))
    try:
        _emit(hunt_lib.HuntResult(result.columns, rows), fmt, sink, wide)
        sink.close()
    except PipeClosed:
        quiet_broken_pipe()
        raise typer.Exit(EXIT_BROKEN_PIPE) from None
    typer.echo(
        f"{len(rows)} rows from {engine.value} query {result.query_id}: {result.bytes_scanned:,} bytes scanned, "
        f"${result.cost_usd:.6f} in {time.perf_counter() - started:.2f}s",
        err=True,
    )
    if fail_on_rows and rows:
        raise typer.Exit(3)
