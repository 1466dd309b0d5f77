"""``trailguard demo``: the end-to-end demo on the embedded AWS emulator."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.status import Status
from rich.table import Table

from trailguard.cli import app
from trailguard.demo.run import DemoError, DemoReport, run_demo

_OUTCOME = {"remediate": "undone", "alert": "alerted", "record": "recorded", "none": "left alone"}

LEGEND = (
    "✓ = behaved as expected: a risky change was caught by its rule and undone or alerted, as the rule's mode says, "
    "and a benign change was left alone (a change record may be kept, never an alert). Rules remediate by default only "
    "where the fix is unambiguous and safe to repeat (restart a trail, revoke a public rule, make a snapshot or ACL "
    "private, restore Block Public Access). The others alert, because undoing the change could break something "
    "legitimate or must be a person's call (a key deletion is cancelled by its owner, an admin attachment may be "
    "intended, a bucket policy may be meant to be public). Switch a rule to remediate with rule_modes in your config."
)


def report_table(report: DemoReport) -> Table:
    """# | change | caught by | outcome | ✓: readable at 80 columns (the details follow as a list)."""
    table = Table(title="the attack, against what was deployed", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("change", ratio=1)
    table.add_column("caught by", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("✓", justify="center", no_wrap=True)
    for i, rep in enumerate(report.steps, 1):
        rule = rep.step.rule or "(benign)"
        mark = "[green]✓[/green]" if rep.verified else "[red]✗[/red]"
        table.add_row(str(i), rep.step.title, rule, _OUTCOME.get(rep.verdict, rep.verdict), mark)
    return table


def report_details(report: DemoReport) -> list[str]:
    """What each remediation changed (the engine's words), else the live state afterwards."""
    lines = []
    for i, rep in enumerate(report.steps, 1):
        if rep.changed:
            lines += [f"{i}. {c}" for c in dict.fromkeys(rep.changed)]
        else:
            lines.append(f"{i}. live state: {rep.detail}")
    return lines


def deployment_table(report: DemoReport) -> Table:
    """check | ok | what the emulator reports."""
    table = Table(title="what cdk deploy created, as the emulator reports it", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("ok", justify="center", no_wrap=True)
    table.add_column("detail", ratio=1)
    dep = report.deployment
    assert dep is not None  # only called with a deployment
    mode = "dry-run (the safe default)" if dep.dry_run_deployed else "live"
    table.add_row("first deploy", "[green]✓[/green]", f"remediation mode as deployed: {mode}")
    for c in dep.checks:
        table.add_row(c.name, "[green]✓[/green]" if c.ok else "[red]✗[/red]", c.detail)
    return table


@app.command("demo")
def demo_command(
    outdir: Annotated[Path, typer.Option("--outdir", help="Cloud assembly directory (synth output).")] = Path(
        "cdk.out"
    ),
    no_synth: Annotated[
        bool, typer.Option("--no-synth", help="Use the templates already in --outdir instead of synthesizing.")
    ] = False,
) -> None:
    """cdk deploy into an embedded AWS emulator (moto), verify what was deployed, then attack it: detect, remediate, verify.

    \b
    Examples:
      trailguard demo                       # synth, deploy, attack (about a minute warm)
      trailguard demo --no-synth --outdir cdk.out   # reuse a synthesized default app
    """
    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    started = time.monotonic()
    status = err.status("starting") if err.is_terminal else contextlib.nullcontext()

    def progress(message: str) -> None:
        err.print(f"[dim][{time.monotonic() - started:5.1f}s] {message}[/dim]")
        if isinstance(status, Status):
            status.update(f"{message} ...")

    try:
        with status:
            report = run_demo(outdir, do_synth=not no_synth, progress=progress)
    except DemoError as exc:
        err.print(f"demo failed: {exc}", markup=False)
        raise typer.Exit(2) from exc
    dep = report.deployment
    if dep is not None:
        console.print(dep.inventory.line(), markup=False)
        console.print(deployment_table(report))
        for m in dep.inventory.missing:
            console.print(f"missing: {m}", markup=False)
    if report.steps:
        console.print(report_table(report))
        for line in report_details(report):
            console.print(line, markup=False)
        console.print(LEGEND, markup=False)
    t = report.timings
    passed = sum(r.verified for r in report.steps)
    console.print(
        f"{passed}/{len(report.steps)} verified; synth {t.get('synth', 0):.1f}s, bootstrap {t.get('bootstrap', 0):.1f}s, "
        f"deploy {t.get('deploy', 0):.1f}s, setup {t.get('setup', 0):.1f}s, scenario {t.get('scenario', 0):.1f}s. "
        f"Engine log: {report.engine_log}",
        markup=False,
    )
    if not report.ok:
        raise typer.Exit(1)
