"""``trailguard replay``: run CloudTrail events through the deployed rules, in dry-run."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.exceptions import RuntimeConfigError
from trailguard_engine.model import SEVERITIES, EventResult, Rule
from trailguard_engine.settings import Runtime

from trailguard.cli import app
from trailguard.config import load_config
from trailguard.event_history import EventHistoryError, RegionProgress, iter_event_history
from trailguard.exceptions import ConfigError, TrailguardError
from trailguard.filters import (
    AccountOption,
    EventFilter,
    FilterError,
    PrincipalOption,
    RegionOption,
    SinceOption,
    UntilOption,
    event_filter,
    parse_severity,
    parse_time,
    select_rules,
    severity_rank,
)
from trailguard.output import (
    EXIT_BROKEN_PIPE,
    EXIT_CODES_HELP,
    FindingRow,
    Format,
    OutputError,
    PipeClosed,
    Sink,
    asff_doc,
    console_for,
    event_json,
    finding_rows,
    findings_csv,
    findings_table,
    iter_jsonl,
    ocsf,
    open_sink,
    quiet_broken_pipe,
    sarif,
    sort_rows,
    write_json,
)
from trailguard.replay import (
    RECORD,
    STDIN,
    Item,
    Problem,
    ReplayInputError,
    ReplaySummary,
    SkippedFile,
    auto_jobs,
    build_evaluator,
    can_fork,
    expand_paths,
    iter_file,
    iter_stdin,
    replay,
    replay_files,
    skipped_summary,
)

#: Show a progress bar (stderr, terminals only) above this many input bytes.
PROGRESS_MIN_BYTES = 8 * 1024 * 1024
#: JSON Lines output is written in blocks of about this size: one write(2) per event costs more than judging
#: most of them (issue 19; stdout is unbuffered under PYTHONUNBUFFERED).
BLOCK_BYTES = 1 << 20


class ModeOverride(StrEnum):
    remediate = "remediate"
    alert = "alert"


# Options shared with ``trailguard retro`` (declared once).
OutOption = Annotated[Path | None, typer.Option("--out", help="Write the output to this file instead of stdout.")]
OnlyFindingsOption = Annotated[
    bool, typer.Option("--only-findings", help="Only findings: no summary tables, no events without findings.")
]
FailOnOption = Annotated[
    str | None,
    typer.Option("--fail-on", help="Exit 3 if a finding is at or above: info, low, medium, high, critical."),
]
RuleOption = Annotated[list[str] | None, typer.Option("--rule", help="Only this rule; repeatable.")]
SeverityOption = Annotated[
    str | None, typer.Option("--severity", help="Only rules at or above: info, low, medium, high, critical.")
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Deployment config (exemptions, rule modes, allowed ports).")
]
ModeOverrideOption = Annotated[
    ModeOverride | None,
    typer.Option("--mode-override", help="Judge every enabled rule in this mode (remediate: full auto-fix)."),
]


def _runtime(path: Path | None) -> Runtime:
    """The runtime config and the runbook links the engine would use."""
    cfg = load_config(path)
    return Runtime.from_document(cfg.runtime_document())


def _items(files: list[str], progress: Progress | None) -> Iterator[Item]:
    task = progress.add_task("replay", total=sum(_size(f) for f in files)) if progress else None
    for f in files:
        if f == STDIN:
            stream: IO[bytes] = sys.stdin.buffer
            yield from iter_stdin(stream)
            continue
        yield from iter_file(f)
        if progress is not None and task is not None:
            progress.advance(task, _size(f))


def _size(path: str) -> int:
    if path == STDIN:
        return 0
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def should_show_progress(files: list[str], err_console: Console, json_output: bool) -> bool:
    """Progress bar only for large inputs, on a terminal, and never with ``--json`` piped elsewhere."""
    return err_console.is_terminal and sum(_size(f) for f in files) >= PROGRESS_MIN_BYTES


def summary_tables(summary: ReplaySummary) -> list[Table]:
    """The human summary: verdict totals, then counts by rule (most severe first)."""
    totals = Table(title="replay summary", show_header=True)
    for col in ("events", "remediate", "alert", RECORD, "none", "rejected", "errors"):
        totals.add_column(col, justify="right")
    totals.add_row(
        str(summary.events),
        str(summary.verdicts.get("remediate", 0)),
        str(summary.verdicts.get("alert", 0)),
        str(summary.verdicts.get(RECORD, 0)),
        str(summary.verdicts.get("none", 0)),
        str(summary.rejected),
        str(summary.errors),
    )
    by_rule = Table(title="findings by rule", show_header=True)
    rules = summary.to_json()["rules"]
    by_rule.add_column("rule", no_wrap=True, min_width=max((len(r) for r in rules), default=4))
    by_rule.add_column("severity")
    for col in ("remediate", "alert", RECORD, "skip"):
        by_rule.add_column(col, justify="right")
    by_rule.add_column("actions", overflow="fold")
    order = {s: i for i, s in enumerate(SEVERITIES)}
    for rule_id in sorted(rules, key=lambda r: (order.get(rules[r]["severity"], 99), r)):
        row = rules[rule_id]
        actions = ", ".join(f"{a} x{n}" for (r, a), n in sorted(summary.actions.items()) if r == rule_id)
        by_rule.add_row(
            rule_id,
            row["severity"],
            str(row["remediate"]),
            str(row["alert"]),
            str(row[RECORD]),
            str(row["skip"]),
            actions or "-",
        )
    tables = [totals, by_rule]
    if summary.callers:
        # Who made the risky events (trailguard_engine.caller): acted on, alerted, or only noticed per class.
        by_caller = Table(title="risky findings by caller class", show_header=True)
        by_caller.add_column("caller", no_wrap=True)
        for col in ("remediate", "alert", "skip"):
            by_caller.add_column(col, justify="right")
        for kind in sorted({k for k, _ in summary.callers}):
            by_caller.add_row(kind, *(str(summary.callers.get((kind, d), 0)) for d in ("remediate", "alert", "skip")))
        tables.append(by_caller)
    return tables


_REPLAY_EPILOG = (
    EXIT_CODES_HELP + "\n\n\b\nExamples:\n"
    "  trailguard replay AWSLogs/ --since 7d --severity high\n"
    "  trailguard replay events.jsonl -o sarif --out trailguard.sarif --fail-on high\n"
    "  trailguard replay - -o jsonl --only-findings < events.jsonl | jq .rule"
)


def _now() -> datetime:
    """The clock --since/--until are relative to for Event History (a seam for tests)."""
    return datetime.now(UTC)


def _event_history(
    since: str | None, until: str | None, regions: str, profile: str | None, err: Console
) -> Iterator[Item]:
    """Items from CloudTrail Event History (``LookupEvents``), oldest first; 7 days unless --since says otherwise.

    A generator: nothing is called until replay reads, and a failure surfaces as :class:`EventHistoryError` there.
    """
    import boto3  # noqa: PLC0415 - only this source needs the SDK: replay of files stays light

    now = _now()
    start = parse_time(since, "--since", now) if since else now - timedelta(days=7)
    end = parse_time(until, "--until", now) if until else None
    try:
        session = boto3.Session(profile_name=profile) if profile else boto3.Session()
    except Exception as exc:  # botocore's ProfileNotFound and the like: one line, no traceback
        raise EventHistoryError(f"cannot open AWS profile {profile!r}: {exc}") from exc
    region_arg = "all" if regions == "all" else [r.strip() for r in regions.split(",") if r.strip()]
    if not err.is_terminal:

        def report(p: RegionProgress) -> None:
            if p.done:
                err.print(f"event history: {p.region}: {p.events} events", markup=False)

        yield from iter_event_history(session, since=start, until=end, regions=region_arg, on_progress=report)
        return
    # On a terminal: one bar per region (days fetched of the range, events so far); region threads call back.
    bar = Progress(
        TextColumn("event history {task.fields[region]:<15}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days, {task.fields[events]} events"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    tasks: dict[str, Any] = {}
    lock = threading.Lock()

    def update(p: RegionProgress) -> None:
        with lock:
            if p.region not in tasks:
                tasks[p.region] = bar.add_task("", total=p.windows_total, region=p.region, events=0)
        bar.update(tasks[p.region], completed=p.windows_done, events=p.events)

    with bar:
        yield from iter_event_history(session, since=start, until=end, regions=region_arg, on_progress=update)


@app.command("replay", epilog=_REPLAY_EPILOG)
def replay_command(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="JSON Lines files, CloudTrail log files (.json/.json.gz), directories, saved `aws cloudtrail "
            "lookup-events` output, CloudTrail Lake query results, or - for stdin."
        ),
    ] = None,
    event_history: Annotated[
        bool,
        typer.Option(
            "--event-history",
            help="Judge the account's CloudTrail Event History (LookupEvents, up to 90 days; nothing deployed).",
        ),
    ] = False,
    regions: Annotated[
        str, typer.Option("--regions", help="With --event-history: all (the enabled regions) or a comma list.")
    ] = "all",
    profile: Annotated[
        str | None, typer.Option("--profile", help="With --event-history: the AWS CLI profile to read with.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Same as -o jsonl: one JSON object per event.")] = False,
    output: Annotated[
        Format | None,
        typer.Option(
            "--output", "-o", help="table (default), json, jsonl (one line per event), csv, sarif, ocsf, asff."
        ),
    ] = None,
    out: OutOption = None,
    only_findings: OnlyFindingsOption = False,
    fail_on: FailOnOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    rule: RuleOption = None,
    severity: SeverityOption = None,
    account: AccountOption = None,
    region: RegionOption = None,
    principal: PrincipalOption = None,
    config: ConfigOption = None,
    mode_override: ModeOverrideOption = None,
    patterns_from: Annotated[
        Path | None,
        typer.Option("--patterns-from", help="Read the patterns from synthesized templates (cdk.out) instead."),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if any input was skipped.")] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Worker processes over the input files (default: the number of cores for 48 MiB of JSON or more, "
            "gzip counted 12 times, else 1); the output is the same as with --jobs 1. Standard input and a single "
            "file are judged in-process.",
        ),
    ] = None,
) -> None:
    """Run CloudTrail events through the deployed rules and the engine's decisions, in dry-run (no AWS calls).

    Each finding is shown with when, where, who (and the caller class), the rule, its severity, the verdict, the
    reason and the runbook; then the summary tables.
    """
    err = Console(stderr=True, highlight=False, soft_wrap=True)

    def usage(message: str) -> NoReturn:
        err.print(f"error: {message}", markup=False)
        raise typer.Exit(2)

    if json_output and output not in (None, Format.jsonl):
        usage(f"--json is -o jsonl; it cannot be combined with -o {output.value}")
    fmt = Format.jsonl if json_output else (output or Format.table)
    try:
        floor = parse_severity(fail_on, "--fail-on") if fail_on else None
        min_sev = parse_severity(severity) if severity else None
        selection = event_filter(
            since=since,
            until=until,
            accounts=account or (),
            regions=region or (),
            principals=principal or (),
            now=_now(),
        )
    except FilterError as exc:
        usage(str(exc))
    try:
        runtime = _runtime(config)
        evaluator, warnings = build_evaluator(
            runtime.cfg, mode_override=mode_override.value if mode_override else None, patterns_from=patterns_from
        )
        if rule or min_sev:
            evaluator = Evaluator(select_rules(evaluator.rules, rule or (), min_sev), evaluator.cfg)
        if event_history == bool(paths):
            usage("give log PATHS, or --event-history to read the account's Event History (not both)")
        skipped: list[SkippedFile] = []
        files = expand_paths(paths, skipped) if paths else []
        source = _event_history(since, until, regions, profile, err) if event_history else None
    except FilterError as exc:
        usage(str(exc))
    except ConfigError as exc:
        for line in exc.problems:
            err.print(f"error: {line}", markup=False)
        raise typer.Exit(2) from exc
    except (ReplayInputError, TrailguardError, RuntimeConfigError) as exc:
        usage(str(exc))
    for w in warnings:
        err.print(f"warning: {w}", markup=False)
    skipped_files = skipped_summary(skipped)
    if skipped_files:
        err.print(skipped_files, markup=False)
    try:
        sink = open_sink(out)
    except OutputError as exc:
        usage(str(exc))
    try:
        code = _run(
            sink,
            fmt,
            files,
            evaluator,
            runtime,
            selection,
            floor,
            only_findings,
            strict,
            err,
            source,
            jobs=jobs if jobs is not None else auto_jobs(files),
        )
    except EventHistoryError as exc:
        usage(str(exc))
    except PipeClosed:
        quiet_broken_pipe()
        raise typer.Exit(EXIT_BROKEN_PIPE) from None
    if out is not None:
        err.print(f"wrote {fmt.value} to {out}", markup=False)
    if code:
        raise typer.Exit(code)


def _run(
    sink: Sink,
    fmt: Format,
    files: list[str],
    evaluator: Evaluator,
    runtime: Runtime,
    selection: EventFilter,
    floor: str | None,
    only_findings: bool,
    strict: bool,
    err: Console,
    source: Iterator[Item] | None = None,
    *,
    jobs: int = 1,
) -> int:
    """Judge, write, and return the exit code (``source``: items from elsewhere than ``files``, e.g. Event History).

    With ``jobs`` > 1 and several files (no stdin), files are judged in worker processes; the output is the same.
    """
    runbook = runtime.runbook_url
    by_id = evaluator.by_id
    current: list[Any] = [None]  # the object being judged (replay calls on_result right after reading it)
    rows: list[FindingRow] = []
    worst = [0]
    block: list[bytes] = []
    pending = [0]

    def write(data: bytes) -> None:
        block.append(data)
        pending[0] += len(data)
        if pending[0] >= BLOCK_BYTES:
            flush_block()

    def flush_block() -> None:
        if block:
            data = b"".join(block)
            block.clear()
            pending[0] = 0
            sink.write(data)

    def on_problem(p: Problem) -> None:
        flush_block()
        sink.flush()
        err.print(str(p), markup=False)

    def note(obj: Any, r: EventResult) -> None:
        for f in r.findings:
            if f.decision != "skip":
                worst[0] = max(worst[0], severity_rank(f.severity))

    on_result: Callable[[EventResult], None]
    if fmt is Format.jsonl:
        dumps = orjson.dumps

        def on_result(r: EventResult) -> None:
            if r.verdict == "none":
                if not only_findings:
                    write(dumps(r.to_json() | _where(current[0])) + b"\n")
                return
            note(current[0], r)
            write(dumps(event_json(current[0], r, runbook)) + b"\n")

    else:

        def on_result(r: EventResult) -> None:
            if r.verdict == "none" and not any(f.decision != "skip" for f in r.findings):
                return
            note(current[0], r)
            rows.extend(finding_rows(current[0], r, by_id, runbook))

    def selected(items: Iterator[Item]) -> Iterator[Item]:
        keep = selection.matches if selection.active else None
        for item in items:
            obj = item[2]
            if keep is not None and not keep(obj):
                continue
            current[0] = obj
            yield item

    progress: Progress | None = None
    if source is None and should_show_progress(files, err, fmt is Format.jsonl):
        progress = Progress(
            TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True
        )
    parallel = source is None and jobs > 1 and len(files) > 1 and STDIN not in files and can_fork()
    try:
        with progress if progress is not None else contextlib.nullcontext():
            if parallel:
                summary = _replay_parallel(
                    files,
                    evaluator,
                    min(jobs, len(files)),
                    selection,
                    fmt is Format.jsonl and not only_findings,
                    write,
                    current,
                    on_result,
                    on_problem,
                    progress,
                )
            elif progress is not None:
                summary = replay(
                    selected(_items(files, progress)), evaluator, on_result=on_result, on_problem=on_problem
                )
            else:
                items = source if source is not None else _items(files, None)
                summary = replay(selected(items), evaluator, on_result=on_result, on_problem=on_problem)
    except ReplayInputError as exc:
        flush_block()
        sink.flush()
        err.print(f"error: {exc}", markup=False)
        return 2
    except KeyboardInterrupt:
        with contextlib.suppress(PipeClosed):
            flush_block()  # what was judged before the interrupt, as when every line was written at once
        raise
    flush_block()
    _emit(sink, fmt, sort_rows(rows), summary, by_id, runbook, only_findings)
    sink.close()
    if fmt is not Format.table and (summary.rejected or summary.errors):
        err.print(
            f"{summary.events} events judged, {summary.rejected} inputs skipped, {summary.errors} internal errors",
            markup=False,
        )
    if floor is not None and worst[0] >= severity_rank(floor):
        return 3
    if summary.errors or (strict and summary.rejected):
        return 1
    return 0


def _replay_parallel(
    files: list[str],
    evaluator: Evaluator,
    jobs: int,
    selection: EventFilter,
    none_lines: bool,
    write: Callable[[bytes], None],
    current: list[Any],
    on_result: Callable[[EventResult], None],
    on_problem: Callable[[Problem], None],
    progress: Progress | None,
) -> ReplaySummary:
    """:func:`replay_files` wired like the in-process path: same filter, same lines, same callbacks."""
    task = progress.add_task("replay", total=sum(_size(f) for f in files)) if progress else None

    def on_file(path: str) -> None:
        if progress is not None and task is not None:
            progress.advance(task, _size(path))

    return replay_files(
        files,
        evaluator,
        jobs=jobs,
        keep=selection.matches if selection.active else None,
        none_line=none_line if none_lines else None,
        on_output=write,
        on_object=lambda obj: current.__setitem__(0, obj),
        on_result=on_result,
        on_problem=on_problem,
        on_file=on_file,
    )


def none_line(obj: dict[str, Any]) -> bytes:
    """The JSON line of a bare record that matches no rule, built directly (no EventResult; issue 19).

    Byte for byte ``EventResult(eventID, eventName, "none", ()).to_json() | _where(obj)``, as the in-process path
    writes it (tests/cli/test_replay_jobs.py compares them).
    """
    eid = obj.get("eventID")
    doc = {"eventID": eid if isinstance(eid, str) else "", "eventName": obj["eventName"], "verdict": "none"}
    doc["findings"] = []
    doc.update(_where(obj))
    return orjson.dumps(doc) + b"\n"


def _where(obj: Any) -> dict[str, Any]:
    """eventTime, account, region and principal of an event without findings (no envelope built)."""
    rec = obj.get("detail") if "detail-type" in obj and type(obj.get("detail")) is dict else obj
    ident = rec.get("userIdentity")
    return {
        "eventTime": rec.get("eventTime"),
        "account": rec.get("recipientAccountId") or obj.get("account"),
        "region": rec.get("awsRegion") or obj.get("region"),
        "principal": ident.get("arn") if type(ident) is dict else None,
        "severity": None,
        "runbook": None,
    }


def _emit(
    sink: Sink,
    fmt: Format,
    rows: list[FindingRow],
    summary: ReplaySummary,
    by_id: dict[str, Rule],
    runbook: Callable[[str], str],
    only_findings: bool,
) -> None:
    if fmt is Format.jsonl:
        return  # written as the events were judged
    if fmt is Format.table:
        con = console_for(sink)
        if rows:
            con.print(findings_table(rows))
        else:
            con.print(f"No findings in {summary.events} events.")
        if not only_findings:
            for table in summary_tables(summary):
                con.print(table)
    elif fmt is Format.json:
        doc: dict[str, Any] = {"findings": [r.to_json() for r in rows]}
        if not only_findings:
            doc["summary"] = summary.to_json()
        write_json(sink, doc)
    elif fmt is Format.csv:
        sink.text(findings_csv(rows))
    elif fmt is Format.sarif:
        write_json(sink, sarif(rows, by_id, runbook))
    elif fmt is Format.ocsf:
        for line in iter_jsonl(ocsf(r) for r in rows):
            sink.write(line)
    elif fmt is Format.asff:
        write_json(sink, [asff_doc(r) for r in rows])
