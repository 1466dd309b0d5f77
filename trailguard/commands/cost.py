"""``trailguard cost``: monthly estimate by driver."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from trailguard.cli import app
from trailguard.config import Retention, TrailguardConfig, load_config
from trailguard.cost import PEAK_TO_AVERAGE, CostInputs, estimate, recommend_reserved_concurrency
from trailguard.exceptions import ConfigError
from trailguard.output import OUTPUT_TABLE_OR_JSON_HELP, TableOrJson, wants_json

_DEFAULTS = CostInputs(accounts=1, regions=1, events_per_day=0)


def _usage_error(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits: rates and ratios, where cents mean nothing."""
    return float(f"{value:.{digits}g}") if math.isfinite(value) and value else value


def _rounded(obj: Any, key: str = "") -> Any:
    """Money (``usd`` keys) to the cent, other floats to 4 significant digits, recursively."""
    if isinstance(obj, dict):
        return {k: _rounded(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v, key) for v in obj]
    if isinstance(obj, float):
        return round(obj, 2) if "usd" in key else _significant(obj)
    return obj


def _archive_min_days() -> int | None:
    for meta in Retention.model_fields["archive_days"].metadata:
        ge = getattr(meta, "ge", None)
        if isinstance(ge, int):
            return ge
    return None


def _from_config(cfg: TrailguardConfig, accounts: int | None) -> tuple[dict[str, Any], list[str]]:
    """The inputs a deployment config decides, and notes on what it cannot."""
    notes = []
    if cfg.mode == "standalone":
        n_accounts = 1
    elif accounts is not None:
        n_accounts = accounts
    elif cfg.org.accounts:
        n_accounts = len(set(cfg.org.accounts))
    else:
        raise _usage_error(
            "the config does not list organization.accounts: give the number of accounts with --accounts"
        )
    data = cfg.features.data_events
    r = cfg.retention
    if cfg.features.cloudtrail_lake.enabled:
        notes.append("CloudTrail Lake (features.cloudtrail_lake) is not priced by this estimate.")
    if data.network_activity:
        notes.append("Network activity data events (features.data_events.network_activity) are not priced.")
    return {
        "accounts": n_accounts,
        "regions": len(cfg.governed_regions),
        "data_events": data.s3 or data.lambda_,
        "cloudwatch_logs": True,  # the trail always delivers to CloudWatch Logs (the CIS metric alarms read it)
        "cloudwatch_retention_days": r.cloudwatch_logs_days,
        "insights": cfg.features.insights,
        "archive_days": r.archive_days,
        "ia_days": r.transition_to_infrequent_access_days,
        "glacier_days": r.transition_to_glacier_days,
    }, notes


@app.command()
def cost(
    events_per_day: Annotated[float, typer.Option(help="Management events per account per day, all regions.")],
    accounts: Annotated[
        int | None, typer.Option(help="Number of AWS accounts governed (with --config: its organization.accounts).")
    ] = None,
    regions: Annotated[
        int | None, typer.Option(help="Number of governed regions (with --config: its governed_regions).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Price this deployment config: its accounts, governed regions, retention and features. "
            "Options given on the command line override it.",
        ),
    ] = None,
    data_events: Annotated[
        bool | None, typer.Option("--data-events/--no-data-events", help="Include S3 and Lambda data events.")
    ] = None,
    data_events_per_day: Annotated[
        float | None, typer.Option(help="Data events per account per day (default: 4 x events-per-day).")
    ] = None,
    cloudwatch_logs: Annotated[
        bool | None,
        typer.Option(
            "--cloudwatch-logs/--no-cloudwatch-logs",
            help="The trail also delivers to CloudWatch Logs (always, with --config).",
        ),
    ] = None,
    cloudwatch_retention_days: Annotated[
        int | None, typer.Option(help="CloudWatch Logs retention in days (default: 400).")
    ] = None,
    insights: Annotated[
        bool | None, typer.Option("--insights/--no-insights", help="CloudTrail Insights (both types).")
    ] = None,
    existing_trail: Annotated[
        bool,
        typer.Option("--existing-trail", help="Another trail already logs management events (ours is a paid copy)."),
    ] = False,
    archive_days: Annotated[int | None, typer.Option(help="Days log files are kept (default: 2557).")] = None,
    ia_days: Annotated[
        int | None, typer.Option(help="Days before log files move to S3 Standard-IA (default: 90).")
    ] = None,
    glacier_days: Annotated[
        int | None, typer.Option(help="Days before log files move to S3 Glacier Flexible Retrieval (default: 365).")
    ] = None,
    forward_ratio: Annotated[
        float | None, typer.Option(help="Share of events that match a rule (default: measured).")
    ] = None,
    athena_queries: Annotated[int, typer.Option(help="Athena queries per month.")] = 100,
    athena_days_per_query: Annotated[
        float, typer.Option(help="Days of logs each Athena query scans (partition projection).")
    ] = _DEFAULTS.athena_days_per_query,
    peak_factor: Annotated[
        float, typer.Option(help="Peak over average event rate, for the engine's reserved concurrency.", min=1)
    ] = PEAK_TO_AVERAGE,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output (money rounded to cents).")] = False,
    output: Annotated[TableOrJson | None, typer.Option("-o", "--output", help=OUTPUT_TABLE_OR_JSON_HELP)] = None,
) -> None:
    """Estimate the monthly AWS bill of a trailguard deployment, broken down by driver.

    Exit codes: 0 estimate printed, 2 usage error (a bad or implausible value, an invalid --config).

    \b
    Examples:
      trailguard cost --accounts 50 --regions 17 --events-per-day 20000
      trailguard cost --config trailguard.yaml --events-per-day 20000
      trailguard cost --accounts 1 --regions 3 --events-per-day 5000 --json
    """
    as_json = wants_json(as_json, output)
    values: dict[str, Any] = {}
    notes: list[str] = []
    if config is not None:
        try:
            cfg = load_config(config)
        except ConfigError as exc:
            for problem in exc.problems:
                typer.echo(f"error: {problem}", err=True)
            typer.echo(f"error: fix the config (check it with: trailguard validate-config {config})", err=True)
            raise typer.Exit(2) from exc
        values, notes = _from_config(cfg, accounts)
    given = {
        "accounts": accounts,
        "regions": regions,
        "data_events": data_events,
        "cloudwatch_logs": cloudwatch_logs,
        "cloudwatch_retention_days": cloudwatch_retention_days,
        "insights": insights,
        "archive_days": archive_days,
        "ia_days": ia_days,
        "glacier_days": glacier_days,
        "forward_ratio": forward_ratio,
    }
    values.update({k: v for k, v in given.items() if v is not None})
    missing = [f"--{k}" for k in ("accounts", "regions") if k not in values]
    if missing:
        raise _usage_error(f"missing {' and '.join(missing)} (or price a deployment config with --config FILE)")
    inputs = replace(
        _DEFAULTS,
        events_per_day=events_per_day,
        data_events_per_day=data_events_per_day,
        existing_trail=existing_trail,
        athena_queries=athena_queries,
        athena_days_per_query=athena_days_per_query,
        **values,
    )
    errors = inputs.validate()
    if not math.isfinite(peak_factor):
        errors.append(f"--peak-factor must be a finite number, got {peak_factor}")
    if errors:
        for e in errors:
            typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    archive_min = _archive_min_days()
    if archive_min is not None and inputs.archive_days < archive_min:
        notes.append(
            f"--archive-days {inputs.archive_days} is below the {archive_min} days a deployment config accepts "
            "(retention.archive_days): this prices a retention trailguard will not deploy."
        )
    est = estimate(inputs)
    est.notes[:0] = notes
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
            "total_usd": est.total,
            "notes": est.notes,
            "engine_reserved_concurrency": {**asdict(advice), "note": quota_note},
        }
        typer.echo(json.dumps(_rounded(doc), indent=2))
        return
    n_accounts, n_regions = inputs.accounts, inputs.regions
    source = f" ({config})" if config is not None else ""
    table = Table(title=f"trailguard monthly cost estimate: {n_accounts} accounts x {n_regions} regions{source}")
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
