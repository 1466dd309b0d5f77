"""``trailguard redrive``: hand the events in a dead-letter queue back to the engine (dry run by default)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from trailguard_engine.catalog import rules_by_id

from trailguard import redrive as rd
from trailguard.cli import app
from trailguard.output import OUTPUT_TABLE_OR_JSON_HELP, TableOrJson, wants_json
from trailguard.redrive import Outcome, RedriveReport

_LABEL = {
    "resubmitted": "re-driven",
    "would-resubmit": "would re-drive",
    "left": "left in queue",
    "failed": "FAILED",
}


def _line(o: Outcome) -> str:
    head = f"{_LABEL[o.status]:<15} {o.message_id}"
    u = o.unwrapped
    if u is None:
        return f"{head}  {o.detail}"
    rule = u.rule or "every matching rule"
    where = f"{u.account or '?'}/{u.region or '?'}"
    return f"{head}  {u.kind}: {u.why}; rule {rule}; {u.event_name or '?'} {u.event_id or '?'} in {where} at {u.event_time or '?'}; {o.detail}"


def _summary(r: RedriveReport) -> str:
    parts = [f"{len(r.outcomes)} message(s) read"]
    if r.dry_run:
        parts.append(f"{r.count('would-resubmit')} would be re-driven (dry run: nothing sent or deleted)")
    else:
        parts.append(f"{r.count('resubmitted')} re-driven and deleted")
        if r.count("failed"):
            parts.append(f"{r.count('failed')} failed (the run stopped)")
    parts.append(f"{r.count('left')} left in the queue")
    return ", ".join(parts)


@app.command("redrive")
def redrive_command(
    queue_url: Annotated[str, typer.Option(help="URL of the dead-letter queue (EngineFailureDlq or RuleTargetDlq).")],
    function_name: Annotated[
        str | None,
        typer.Option(
            help="The engine function (name or ARN) to re-invoke. Required with --apply; with --dry-run it "
            "still refuses records that name another function."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run/--apply", help="--dry-run (default) only reports; --apply re-invokes and deletes."),
    ] = True,
    max_messages: Annotated[int, typer.Option(min=1, max=10_000, help="Read at most this many messages.")] = 10,
    region: Annotated[
        str | None, typer.Option(help="AWS region (default: the queue URL's, then your AWS configuration).")
    ] = None,
    wait_seconds: Annotated[int, typer.Option(min=0, max=20, help="SQS long-poll wait per receive, in seconds.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per message, then a summary.")] = False,
    output: Annotated[TableOrJson | None, typer.Option("-o", "--output", help=OUTPUT_TABLE_OR_JSON_HELP)] = None,
) -> None:
    """Unwrap the engine's dead letters, check each is a well-formed engine input, and re-invoke the engine.

    A message is deleted only after Lambda accepted the re-invocation (202). Messages that are not engine
    inputs are left in the queue and listed; the exit status is 1 when any was left or failed.

    \b
    Examples:
      trailguard redrive --queue-url https://sqs.us-east-1.amazonaws.com/111122223333/EngineFailureDlq
      trailguard redrive --queue-url URL --function-name trailguard-engine --apply
    """
    as_json = wants_json(as_json, output)
    if not dry_run and not function_name:
        typer.echo("error: --apply needs --function-name (the engine function to re-invoke)", err=True)
        raise typer.Exit(2)
    region = region or rd.region_of_queue(queue_url)
    sqs = rd.make_client("sqs", region)
    resubmit = None if dry_run else rd.lambda_resubmitter(rd.make_client("lambda", region), str(function_name))
    report = rd.redrive(
        sqs,
        queue_url,
        rules=rules_by_id(),
        resubmit=resubmit,
        function=function_name,
        max_messages=max_messages,
        wait_seconds=wait_seconds,
    )
    if as_json:
        lines = [json.dumps(o.to_json()) for o in report.outcomes]
        summary = {
            "summary": {
                "dry_run": report.dry_run,
                "read": len(report.outcomes),
                **{s: report.count(s) for s in ("resubmitted", "would-resubmit", "left", "failed")},
                "problems": report.problems,
            }
        }
        typer.echo("\n".join([*lines, json.dumps(summary)]))
    else:
        out = [_line(o) for o in report.outcomes] + [_summary(report)]
        typer.echo("\n".join(out))  # one write: PYTHONUNBUFFERED makes every echo a syscall
        for problem in report.problems:
            typer.echo(f"warning: {problem}", err=True)
    if not report.ok:
        raise typer.Exit(1)
