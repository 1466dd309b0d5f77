"""``trailguard rules`` (list/show the catalog) and ``trailguard docs`` (generate the runbooks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from trailguard_engine.catalog import load_catalog
from trailguard_engine.model import SEVERITIES, Rule

from trailguard import runbooks
from trailguard.cli import app

DEFAULT_RUNBOOK_DIR = Path("docs/runbooks")


def rule_summary(rule: Rule) -> dict[str, Any]:
    """The ``rules --json`` object of one rule."""
    return {"id": rule.id, "severity": rule.severity, "default_mode": rule.default_mode, "mitre": list(rule.mitre)}


def rule_detail(rule: Rule) -> dict[str, Any]:
    rem = rule.remediation
    return {
        **rule_summary(rule),
        "title": rule.title,
        "description": rule.description,
        "category": rule.category,
        "references": {k: list(v) for k, v in sorted(rule.references.items())},
        "event_pattern": rule.event_pattern,
        "decision": rule.decision,
        "remediation": None
        if rem is None
        else {"action": rem.action, "description": rem.description, "permissions": list(rem.permissions)},
        "runbook": f"docs/runbooks/{rule.id}.md",
    }


@app.command("rules")
def rules_command(
    rule_id: Annotated[str | None, typer.Argument(help="Show one rule in detail.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the detection catalog, or show one rule."""
    catalog = load_catalog()
    if rule_id is not None:
        match = [r for r in catalog if r.id == rule_id]
        if not match:
            close = [r.id for r in catalog if rule_id in r.id]
            hint = f" (did you mean {', '.join(close[:5])}?)" if close else " (see 'trailguard rules')"
            typer.echo(f"error: unknown rule {rule_id!r}{hint}", err=True)
            raise typer.Exit(2)
        _show(match[0], json_output)
        return
    if json_output:
        typer.echo(json.dumps([rule_summary(r) for r in catalog], indent=2))
        return
    order = {s: i for i, s in enumerate(SEVERITIES)}
    table = Table(title=f"trailguard catalog: {len(catalog)} rules")
    for col in ("rule", "severity", "mode", "remediation", "MITRE"):
        table.add_column(col, overflow="fold")
    for r in sorted(catalog, key=lambda r: (order[r.severity], r.id)):
        table.add_row(
            r.id, r.severity, r.default_mode, r.remediation.action if r.remediation else "-", ", ".join(r.mitre)
        )
    Console(highlight=False).print(table)


def _show(rule: Rule, json_output: bool) -> None:
    detail = rule_detail(rule)
    if json_output:
        typer.echo(json.dumps(detail, indent=2))
        return
    console = Console(highlight=False)
    console.print(f"[bold]{rule.id}[/bold]: {rule.title}")
    for key in ("severity", "default_mode", "category", "decision"):
        console.print(f"  {key}: {detail[key]}", markup=False)
    console.print(f"  mitre: {', '.join(rule.mitre) or '-'}", markup=False)
    console.print(f"  description: {rule.description}", markup=False)
    if rule.remediation:
        console.print(f"  remediation: {rule.remediation.action}: {rule.remediation.description}", markup=False)
        console.print(f"  permissions: {', '.join(rule.remediation.permissions)}", markup=False)
    else:
        console.print("  remediation: none (alert only)", markup=False)
    console.print(f"  runbook: {detail['runbook']}", markup=False)
    console.print("  event pattern:", markup=False)
    console.print_json(json.dumps(rule.event_pattern))


@app.command("docs")
def docs_command(
    out: Annotated[Path, typer.Option("--out", help="Where the runbooks go.")] = DEFAULT_RUNBOOK_DIR,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 listing the files that are stale.")
    ] = False,
) -> None:
    """Generate the runbooks (one page per rule + an index) from the catalog."""
    generated = runbooks.generate()
    for p in generated.problems:
        typer.echo(f"warning: {p}", err=True)
    if check:
        stale = runbooks.stale_files(generated, out)
        if stale:
            for s in stale:
                typer.echo(f"stale: {s}")
            typer.echo("run 'trailguard docs' to regenerate", err=True)
            raise typer.Exit(1)
        typer.echo(f"ok: {len(generated.files)} runbook files in {out} are up to date")
        return
    changed = runbooks.write(generated, out)
    typer.echo(f"wrote {len(generated.files)} files to {out} ({len(changed)} changed)")
