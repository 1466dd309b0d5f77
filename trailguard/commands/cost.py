"""``trailguard cost``: monthly estimate by driver."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from trailguard.cli import app
from trailguard.cost import PEAK_TO_AVERAGE, CostInputs, estimate, recommend_reserved_concurrency


@app.command()
def cost(
    accounts: Annotated[int, typer.Option(help="Number of AWS accounts governed.")],
    regions: Annotated[int, typer.Option(help="Number of governed regions.")],
    events_per_day: Annotated[float, typer.Option(help="Management events per account per day, all regions.")],
    data_events: Annotated[bool, typer.Option("--data-events", help="Include S3 and Lambda data events.")] = False,
    data_events_per_day: Annotated[
        float | None, typer.Option(help="Data events per account per day (default: 4 x events-per-day).")
    ] = None,
    cloudwatch_logs: Annotated[
        bool, typer.Option("--cloudwatch-logs", help="The trail also delivers to CloudWatch Logs.")
    ] = False,
    cloudwatch_retention_days: Annotated[int, typer.Option(help="CloudWatch Logs retention.")] = 400,
    insights: Annotated[bool, typer.Option("--insights", help="CloudTrail Insights (both types).")] = False,
    existing_trail: Annotated[
        bool,
        typer.Option("--existing-trail", help="Another trail already logs management events (ours is a paid copy)."),
    ] = False,
    archive_days: Annotated[int, typer.Option(help="Days log files are kept.")] = 2557,
    forward_ratio: Annotated[
        float | None, typer.Option(help="Share of events that match a rule (default: measured).")
    ] = None,
    athena_queries: Annotated[int, typer.Option(help="Athena queries per month.")] = 100,
    peak_factor: Annotated[
        float, typer.Option(help="Peak over average event rate, for the engine's reserved concurrency.", min=1)
    ] = PEAK_TO_AVERAGE,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Estimate the monthly AWS bill of a trailguard deployment, broken down by driver."""
    inputs = CostInputs(
        accounts=accounts,
        regions=regions,
        events_per_day=events_per_day,
        data_events=data_events,
        data_events_per_day=data_events_per_day,
        cloudwatch_logs=cloudwatch_logs,
        cloudwatch_retention_days=cloudwatch_retention_days,
        insights=insights,
        existing_trail=existing_trail,
        archive_days=archive_days,
        athena_queries=athena_queries,
    )
    if forward_ratio is not None:
        inputs = replace(inputs, forward_ratio=forward_ratio)
    errors = inputs.validate()
    if errors:
        for e in errors:
            typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    est = estimate(inputs)
    advice = recommend_reserved_concurrency(inputs, peak_factor=peak_factor)
    quota_note = (
        "Lambda lets functions reserve up to the account's unreserved concurrency minus 100 (the default "
        "quota is 1,000; new accounts can start at 10 or 50): on a low quota, set engine.reserved_concurrency: "
        "null or ask for a quota increase. See docs/deploy.md, 'Sizing the engine'."
    )
    if as_json:
        doc = {
            "inputs": asdict(inputs),
            "lines": [asdict(line) for line in est.lines],
            "total_usd": round(est.total, 2),
            "notes": est.notes,
            "engine_reserved_concurrency": {**asdict(advice), "note": quota_note},
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    table = Table(title=f"trailguard monthly cost estimate: {accounts} accounts x {regions} regions")
    table.add_column("driver")
    table.add_column("USD / month", justify="right")
    table.add_column("basis")
    for line in est.lines:
        table.add_row(line.driver, f"{line.usd:,.2f}", line.basis)
    table.add_row("[bold]total[/bold]", f"[bold]{est.total:,.2f}[/bold]", "")
    console = Console()
    console.print(table)
    for note in est.notes:
        console.print(f"note: {note}")
    console.print(
        f"recommended engine.reserved_concurrency: {advice.recommended} ({advice.basis}). {quota_note}",
        soft_wrap=True,
        highlight=False,
    )
