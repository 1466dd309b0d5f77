"""``trailguard replay``: run CloudTrail events through the deployed rules, in dry-run."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from trailguard_engine.exceptions import RuntimeConfigError
from trailguard_engine.model import SEVERITIES, EventResult
from trailguard_engine.runtime_config import RuntimeConfig

from trailguard.cli import app
from trailguard.config import load_config
from trailguard.exceptions import ConfigError, TrailguardError
from trailguard.replay import (
    RECORD,
    STDIN,
    Item,
    Problem,
    ReplayInputError,
    ReplaySummary,
    build_evaluator,
    expand_paths,
    iter_file,
    iter_stdin,
    replay,
)

#: Show a progress bar (stderr, terminals only) above this many input bytes.
PROGRESS_MIN_BYTES = 8 * 1024 * 1024


class ModeOverride(StrEnum):
    remediate = "remediate"
    alert = "alert"


def _runtime_config(path: Path | None) -> RuntimeConfig:
    cfg = load_config(path)
    return RuntimeConfig.from_document(cfg.runtime_document())


def _writer() -> tuple[Callable[[bytes], object], Callable[[], object]]:
    buf = getattr(sys.stdout, "buffer", None)
    if buf is not None:
        return buf.write, buf.flush
    return (lambda b: sys.stdout.write(b.decode("utf-8"))), sys.stdout.flush


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


@app.command("replay")
def replay_command(
    paths: Annotated[
        list[str],
        typer.Argument(help="JSON Lines files, CloudTrail log files (.json/.json.gz), directories, or - for stdin."),
    ],
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per event on stdout.")] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="Deployment config (exemptions, rule modes, allowed ports).")
    ] = None,
    mode_override: Annotated[
        ModeOverride | None,
        typer.Option("--mode-override", help="Judge every enabled rule in this mode (remediate: full auto-fix)."),
    ] = None,
    patterns_from: Annotated[
        Path | None,
        typer.Option("--patterns-from", help="Read the patterns from synthesized templates (cdk.out) instead."),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if any input was skipped.")] = False,
) -> None:
    """Run CloudTrail events through the deployed rules and the engine's decisions, in dry-run (no AWS calls)."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        cfg = _runtime_config(config)
        evaluator, warnings = build_evaluator(
            cfg, mode_override=mode_override.value if mode_override else None, patterns_from=patterns_from
        )
        files = expand_paths(paths)
    except ConfigError as exc:
        for line in exc.problems:
            err.print(f"error: {line}", markup=False)
        raise typer.Exit(2) from exc
    except (ReplayInputError, TrailguardError, RuntimeConfigError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from exc
    for w in warnings:
        err.print(f"warning: {w}", markup=False)

    write, flush = _writer()

    def on_problem(p: Problem) -> None:
        flush()
        err.print(str(p), markup=False)

    on_result: Callable[[EventResult], None] | None = None
    if json_output:
        dumps = orjson.dumps

        def on_result(r: EventResult) -> None:
            write(dumps(r.to_json()) + b"\n")

    progress: Progress | None = None
    if should_show_progress(files, err, json_output):
        progress = Progress(
            TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True
        )
    try:
        if progress is not None:
            with progress:
                summary = replay(_items(files, progress), evaluator, on_result=on_result, on_problem=on_problem)
        else:
            summary = replay(_items(files, None), evaluator, on_result=on_result, on_problem=on_problem)
    except ReplayInputError as exc:
        flush()
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from exc
    flush()

    if json_output:
        if summary.rejected or summary.errors:
            err.print(
                f"{summary.events} events judged, {summary.rejected} inputs skipped, {summary.errors} internal errors",
                markup=False,
            )
    else:
        out = Console(highlight=False)
        for table in summary_tables(summary):
            out.print(table)
    if summary.errors:
        raise typer.Exit(1)
    if strict and summary.rejected:
        raise typer.Exit(1)
