"""``trailguard demo``: the end-to-end demo on the embedded AWS emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from trailguard.cli import app
from trailguard.demo.run import DemoError, DemoReport, run_demo


def report_table(report: DemoReport) -> Table:
    """change | rule | verdict | action | verified | live state."""
    table = Table(title="trailguard demo: attack scenario on the emulated account", show_lines=False)
    table.add_column("change", overflow="fold")
    table.add_column("rule", overflow="fold")
    table.add_column("verdict")
    table.add_column("action", overflow="fold")
    table.add_column("verified", justify="center")
    table.add_column("live state afterwards", overflow="fold")
    for rep in report.steps:
        rule = rep.step.rule or "(benign)"
        action = ", ".join(dict.fromkeys(rep.actions)) or ("alert" if rep.verdict == "alert" else "-")
        mark = "[green]✓[/green]" if rep.verified else "[red]✗[/red]"
        table.add_row(rep.step.title, rule, rep.verdict, action, mark, rep.detail)
    return table


def deployment_table(report: DemoReport) -> Table:
    """check | ok | what the emulator reports."""
    table = Table(title="trailguard demo: what cdk deploy created, as the emulator reports it")
    table.add_column("check")
    table.add_column("ok", justify="center")
    table.add_column("detail", overflow="fold")
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
    """cdk deploy into an embedded AWS emulator (moto), verify what was deployed, then attack it: detect, remediate, verify."""
    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        report = run_demo(outdir, do_synth=not no_synth, progress=lambda m: err.print(f"[dim]- {m}[/dim]"))
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
