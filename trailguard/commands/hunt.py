"""``trailguard hunt``: the Athena named queries (or ad-hoc SQL) over local CloudTrail logs, with DuckDB."""

from __future__ import annotations

import csv
import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from trailguard import hunt as hunt_lib
from trailguard.cli import app
from trailguard.exceptions import TrailguardError
from trailguard.sqlcatalog import Query, get_query, load_queries

#: Show a progress bar on stderr above this many input bytes (or with --progress).
PROGRESS_MIN_BYTES = 32 * 1024 * 1024


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


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


def _list_queries(fmt: OutputFormat) -> None:
    queries = load_queries()
    if fmt is OutputFormat.json:
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
    if fmt is OutputFormat.csv:
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


def _emit(result: hunt_lib.HuntResult, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        typer.echo(json.dumps([hunt_lib.jsonable(r) for r in result.records()], indent=2))
    elif fmt is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        for row in result.rows:
            writer.writerow([_cell(v) for v in row])
    else:
        table = Table(show_lines=False)
        for col in result.columns:
            table.add_column(col, overflow="fold")
        for row in result.rows:
            table.add_row(*(_cell(v) for v in row))
        Console(width=max(160, Console().width)).print(table)


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


@app.command()
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
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.table,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar on stderr (default: only for large inputs)."),
    ] = None,
) -> None:
    """Hunt through local CloudTrail logs with the same SQL as the Athena named queries."""
    if list_queries:
        _list_queries(fmt)
        return
    if (query is None) == (sql is None):
        _fail("give a query name (see --list) or --sql, not both")
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
        if not logs:
            _fail("--logs DIR is required (a CloudTrail log directory or file)")
        logset = hunt_lib.discover(logs)
        size = logset.total_bytes()
        show = progress if progress is not None else size >= PROGRESS_MIN_BYTES
        bar, on_progress = _progress_bar(show, logset.count, size)
        started = time.perf_counter()
        if bar is not None:
            bar.start()
        try:
            if named is not None:
                result = hunt_lib.run_query(named, values, logset, on_progress=on_progress)
            else:
                result = hunt_lib.run_sql(sql or "", logset, on_progress=on_progress)
        finally:
            if bar is not None:
                bar.stop()
    except TrailguardError as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    _emit(result, fmt)
    typer.echo(f"{len(result.rows)} rows from {logset.count} files in {time.perf_counter() - started:.2f}s", err=True)
