"""``trailguard verify``: check CloudTrail digest signatures, the digest chain and every log file."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table
from trailguard_engine import integrity as ig

from trailguard import verify as vf
from trailguard.cli import app
from trailguard.output import OUTPUT_TABLE_OR_JSON_HELP, TableOrJson, wants_json

_STATUSES = {
    "digests": ("valid", "invalid", "missing", "not-checked"),
    "log_files": ("valid", "modified", "deleted", "unlisted", "not-checked"),
}


def _table(report: ig.Report) -> Table:
    """One row per status, one column per kind of file (narrow enough for an 80-column terminal)."""
    counts = report.counts()
    table = Table(title="CloudTrail log file integrity", title_justify="left")
    table.add_column("status")
    table.add_column("digest files", justify="right")
    table.add_column("log files", justify="right")
    for status in ("valid", "invalid", "missing", "modified", "deleted", "unlisted", "not-checked"):
        cells = [str(counts[kind][status]) if status in _STATUSES[kind] else "-" for kind in ("digests", "log_files")]
        table.add_row(status, *cells)
    return table


@contextmanager
def _progress(enabled: bool) -> Iterator[ig.Progress | None]:
    """A rich progress bar on a terminal; nothing when piped (or with --json)."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} read"), transient=True
    ) as bar:
        tasks: dict[str, object] = {}

        def tick(phase: str, n: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=None)
            bar.advance(tasks[phase], n)  # type: ignore[arg-type]

        yield tick


@app.command("verify")
def verify_command(
    source: Annotated[
        str, typer.Argument(help="The log archive: s3://BUCKET or s3://BUCKET/PREFIX, or a local synced copy of it.")
    ],
    since: Annotated[str | None, typer.Option(help="Only digests ending at or after this UTC time.")] = None,
    until: Annotated[str | None, typer.Option(help="Only digests ending before this UTC time (+1 h).")] = None,
    account: Annotated[list[str] | None, typer.Option(help="Only this account (repeatable).")] = None,
    region: Annotated[
        list[str] | None, typer.Option(help="Only digests and log files of this region (repeatable).")
    ] = None,
    public_keys: Annotated[
        list[Path] | None,
        typer.Option(
            help="JSON of `aws cloudtrail list-public-keys` (repeatable, e.g. one per region); "
            "default: cloudtrail:ListPublicKeys in each digest's region."
        ),
    ] = None,
    signatures: Annotated[
        Path | None,
        typer.Option(
            help=f"Local tree only: the side file written by --fetch-signatures (default: "
            f"<tree>/{vf.SIDE_FILE_NAME} when present)."
        ),
    ] = None,
    fetch_signatures: Annotated[
        Path | None,
        typer.Option(help="With s3://...: write every digest's signature to this side file, then exit."),
    ] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="S3 and CloudTrail endpoint (e.g. a local emulator).")
    ] = None,
    aws_region: Annotated[str | None, typer.Option("--aws-region", help="Region of the S3 client.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=128, help="Parallel reads.")] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="Machine output: counts, problems, every object.")] = False,
    output: Annotated[TableOrJson | None, typer.Option("-o", "--output", help=OUTPUT_TABLE_OR_JSON_HELP)] = None,
) -> None:
    """Verify CloudTrail log file integrity: each digest's signature and chain, and every log file it lists.

    Exit status: 0 when everything checked is valid, 1 on any integrity failure (invalid or missing
    digest; modified, deleted or unlisted log file), 2 on a usage or access error.

    \b
    Examples:
      trailguard verify s3://trailguard-archive-111122223333-us-east-1 --since 2026-11-01
      trailguard verify ./AWSLogs-copy --json > integrity.json
    """
    as_json = wants_json(as_json, output)
    try:
        src = vf.parse_source(source)
        t_since = vf.parse_time(since) if since else None
        t_until = vf.parse_time(until) if until else None
        if t_since and t_until and t_since > t_until:
            raise vf.VerifyUsageError("--since is after --until")
        show_bar = not as_json and sys.stdout.isatty()
        if fetch_signatures is not None:
            if src.kind != "s3":
                raise vf.VerifyUsageError("--fetch-signatures reads object metadata: give an s3:// source")
            reader = ig.S3Reader(vf.make_client("s3", aws_region, endpoint_url))
            with _progress(show_bar) as tick:
                found, without = vf.fetch_signatures(
                    reader, src, since=t_since, until=t_until, accounts=account, workers=workers, progress=tick
                )
            vf.write_side_file(fetch_signatures, src, found)
            lines = [f"{fetch_signatures}: {len(found)} digest signature(s) from {src.describe()}"]
            lines += [f"s3://{src.bucket}/{k}: digest has no signature metadata" for k in without]
            typer.echo("\n".join(lines))
            return
        if src.kind == "s3" and signatures is not None:
            raise vf.VerifyUsageError("--signatures is for a local tree; s3:// digests carry their own")
        now = t_until or datetime.now(UTC)  # only to bound ListPublicKeys
        keys = vf.key_source(
            list(public_keys or []), region=aws_region, endpoint_url=endpoint_url, since=t_since, until=now
        )
        with _progress(show_bar) as tick:
            report = vf.run(
                src,
                keys,
                since=t_since,
                until=t_until,
                accounts=account,
                regions=region,
                signatures_file=signatures,
                endpoint_url=endpoint_url,
                region=aws_region,
                workers=workers,
                progress=tick,
            )
    except vf.VerifyUsageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except (vf.VerifyAccessError, ig.AccessError) as exc:
        typer.echo(f"error: cannot read: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps({"source": src.describe(), **report.to_json()}))
    else:
        console = Console()
        console.print(_table(report))
        problems = [p.line() for p in report.problems()]
        if not report.digests:
            problems.append(f"{src.describe()}: no digest files found (is log file validation on? wrong prefix?)")
        if problems:
            typer.echo("\n".join(problems))  # one write: PYTHONUNBUFFERED makes every echo a syscall
    if not report.ok:
        raise typer.Exit(1)
