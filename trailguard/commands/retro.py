"""``trailguard retro``: the detection catalog over months of logs, on DuckDB, Athena or CloudTrail Lake."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.exceptions import RuntimeConfigError

from trailguard.cli import app
from trailguard.commands.replay import (
    ConfigOption,
    FailOnOption,
    ModeOverrideOption,
    OnlyFindingsOption,
    OutOption,
    RuleOption,
    SeverityOption,
    _run,
    _runtime,
)
from trailguard.exceptions import ConfigError, TrailguardError
from trailguard.filters import (
    FilterError,
    PrincipalOption,
    UntilOption,
    event_filter,
    parse_severity,
    parse_time,
    select_rules,
)
from trailguard.output import (
    EXIT_BROKEN_PIPE,
    EXIT_CODES_HELP,
    Format,
    OutputError,
    PipeClosed,
    open_sink,
    quiet_broken_pipe,
)
from trailguard.replay import Item, build_evaluator
from trailguard.retro import run as retro_lib
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
from trailguard.retro.engines import RemoteQueryError, qualified_table
from trailguard.retro.plan import PlanError, ScanPlan, parse_list

#: The window when --since is not given: CloudTrail Event History's reach, a sensible first retro.
DEFAULT_SINCE = "90d"

_EPILOG = (
    EXIT_CODES_HELP + "\n\n\b\nExamples:\n"
    "  trailguard retro AWSLogs/ --since 30d --severity high\n"
    "  trailguard retro --engine athena --since 90d --accounts 111122223333 -o sarif --out retro.sarif\n"
    "  trailguard retro --engine lake --event-data-store EXAMPLE-f852-4e8f --rule root-account-usage --show-sql"
)


def _now() -> datetime:
    """The clock --since/--until are relative to (a seam for tests)."""
    return datetime.now(UTC)


@app.command("retro", epilog=_EPILOG)
def retro_command(
    paths: Annotated[
        list[str] | None, typer.Argument(help="duckdb: CloudTrail log files or directories (an AWSLogs/ tree).")
    ] = None,
    engine: EngineOption = Engine.duckdb,
    since: Annotated[
        str, typer.Option("--since", help="Window start: ISO 8601 or a time ago (90d, 12h).")
    ] = DEFAULT_SINCE,
    until: UntilOption = None,
    accounts: Annotated[
        list[str] | None, typer.Option("--accounts", "--account", help="Only these accounts (comma list; repeatable).")
    ] = None,
    regions: Annotated[
        list[str] | None, typer.Option("--regions", "--region", help="Only these regions (comma list; repeatable).")
    ] = None,
    principal: PrincipalOption = None,
    rule: RuleOption = None,
    severity: SeverityOption = None,
    output: Annotated[
        Format | None,
        typer.Option("--output", "-o", help="table (default), json, jsonl, csv, sarif, ocsf, asff (as replay)."),
    ] = None,
    out: OutOption = None,
    only_findings: OnlyFindingsOption = False,
    fail_on: FailOnOption = None,
    config: ConfigOption = None,
    mode_override: ModeOverrideOption = None,
    show_sql: Annotated[
        bool, typer.Option("--show-sql", help="Print the statements the engine would run, then exit (no AWS calls).")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=32, help="athena/lake: queries run in parallel.")] = 4,
    workgroup: WorkgroupOption = DEFAULT_WORKGROUP,
    database: DatabaseOption = DEFAULT_DATABASE,
    table: TableOption = DEFAULT_TABLE,
    event_data_store: EventDataStoreOption = None,
    profile: ProfileOption = None,
    aws_region: AwsRegionOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if any input was skipped.")] = False,
) -> None:
    """Retro-detection: scan a window of logs with the catalog compiled to SQL, judge the candidates locally.

    The engine (DuckDB over local files, Athena over the deployed table, or CloudTrail Lake) reads only the
    partitions in the window (account, region, date) and returns only the events some rule's pattern could match;
    the matcher and the decision functions then judge them exactly as `trailguard replay` does (dry-run, no
    changes). Output, filters and exit codes are replay's; the scan's queries, bytes scanned and cost go to stderr.
    """
    err = Console(stderr=True, highlight=False, soft_wrap=True)

    def usage(message: str) -> NoReturn:
        err.print(f"error: {message}", markup=False)
        raise typer.Exit(2)

    fmt = output or Format.table
    now = _now()
    try:
        floor = parse_severity(fail_on, "--fail-on") if fail_on else None
        min_sev = parse_severity(severity) if severity else None
        plan = ScanPlan(
            parse_time(since, "--since", now),
            parse_time(until, "--until", now) if until else now,
            accounts=parse_list(accounts),
            regions=parse_list(regions),
        )
        selection = event_filter(since=None, until=None, principals=principal or (), now=now)
    except (FilterError, PlanError) as exc:
        usage(str(exc))
    if engine is Engine.duckdb and not paths:
        usage("--engine duckdb reads local logs: give PATHS (files or an AWSLogs/ directory)")
    if engine is not Engine.duckdb and paths:
        usage(f"--engine {engine.value} reads the deployed {engine.value} data: do not give PATHS")
    if engine is Engine.lake and not event_data_store:
        usage("--engine lake needs --event-data-store ID (or ARN)")
    try:
        runtime = _runtime(config)
        evaluator, _warnings = build_evaluator(
            runtime.cfg, mode_override=mode_override.value if mode_override else None
        )
        rules = select_rules(evaluator.rules, rule or (), min_sev)
        if rule or min_sev:
            evaluator = Evaluator(rules, evaluator.cfg)
    except FilterError as exc:
        usage(str(exc))
    except ConfigError as exc:
        for line in exc.problems:
            err.print(f"error: {line}", markup=False)
        raise typer.Exit(2) from exc
    except (TrailguardError, RuntimeConfigError) as exc:
        usage(str(exc))

    stats = retro_lib.RetroStats(engine=engine.value)
    try:
        if show_sql:
            _show_sql(engine, plan, rules, database=database, table=table, store=event_data_store)
            return
        items = _candidates(
            engine, paths or [], plan, rules, stats,
            jobs=jobs, workgroup=workgroup, database=database, table=table,
            store=event_data_store, profile=profile, aws_region=aws_region,
        )  # fmt: skip
    except (retro_lib.RetroError, RemoteQueryError, TrailguardError) as exc:
        usage(str(exc))
    for problem in stats.info.get("problems", ()):
        err.print(problem, markup=False)
    try:
        sink = open_sink(out)
    except OutputError as exc:
        usage(str(exc))
    try:
        code = _run(sink, fmt, [], evaluator, runtime, selection, floor, only_findings, strict, err, items)
    except PipeClosed:
        quiet_broken_pipe()
        raise typer.Exit(EXIT_BROKEN_PIPE) from None
    for warning in stats.warnings():
        err.print(warning, markup=False)
    err.print(stats.line(), markup=False)
    if out is not None:
        err.print(f"wrote {fmt.value} to {out}", markup=False)
    if strict and stats.info.get("problems") and not code:
        code = 1
    if code:
        raise typer.Exit(code)


def _candidates(
    engine: Engine,
    paths: Sequence[str],
    plan: ScanPlan,
    rules: Sequence[Any],
    stats: retro_lib.RetroStats,
    *,
    jobs: int,
    workgroup: str,
    database: str,
    table: str,
    store: str | None,
    profile: str | None,
    aws_region: str | None,
) -> Iterator[Item]:
    if engine is Engine.duckdb:
        return retro_lib.duckdb_items(paths, plan, rules, stats)
    relation, max_sql = _relation(engine, database, table, store)
    queries = retro_lib.remote_statements(
        plan, rules, relation=relation, max_sql=max_sql, engine=engine.value, stats=stats
    )
    if engine is Engine.athena:
        from trailguard.retro.athena import AthenaRunner  # noqa: PLC0415 - botocore only for remote engines

        runner = AthenaRunner(aws_client("athena", profile, aws_region), workgroup=workgroup, database=database)
        return retro_lib.remote_items(
            lambda q: runner.run_many(q, max_workers=jobs), queries, engine="athena", stats=stats
        )
    from trailguard.retro.lake import LakeRunner  # noqa: PLC0415

    lake = LakeRunner(aws_client("cloudtrail", profile, aws_region))
    return retro_lib.remote_items(lambda q: lake.run_many(q, max_workers=jobs), queries, engine="lake", stats=stats)


def _relation(engine: Engine, database: str, table: str, store: str | None) -> tuple[Any, int]:
    if engine is Engine.athena:
        return qualified_table(database, table), retro_lib.ATHENA_MAX_SQL
    from trailguard.retro.lake import event_data_store_id  # noqa: PLC0415

    return retro_lib.lake_relation(event_data_store_id(store or "")), retro_lib.LAKE_MAX_SQL


def _show_sql(
    engine: Engine, plan: ScanPlan, rules: Sequence[Any], *, database: str, table: str, store: str | None
) -> None:
    """The statements and their parameters, as the engine would receive them (nothing runs)."""
    if engine is Engine.duckdb:
        steps = retro_lib.duckdb_plan(plan, rules)
        typer.echo(f"-- scan into a temporary table; parameters: {steps.values}")
        typer.echo(steps.prefilter + ";")
        typer.echo("CREATE TEMP TABLE tg_hits (r BIGINT);")
        for i, batch in enumerate(steps.batches, 1):
            typer.echo(f"-- exact predicates, batch {i} of {len(steps.batches)}")
            typer.echo(batch + ";")
        typer.echo(steps.final + ";")
        return
    relation, max_sql = _relation(engine, database, table, store)
    queries = retro_lib.remote_statements(plan, rules, relation=relation, max_sql=max_sql, engine=engine.value)
    for i, (sql, params) in enumerate(queries, 1):
        typer.echo(f"-- statement {i} of {len(queries)}; parameters: {params}")
        typer.echo(sql + ";")


__all__ = ["DEFAULT_SINCE", "retro_command"]
