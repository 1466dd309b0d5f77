"""``trailguard version`` and ``trailguard validate-config``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from trailguard import __version__
from trailguard.cli import app
from trailguard.config import config_warnings, json_schema, load_config
from trailguard.exceptions import ConfigError


@app.command()
def version() -> None:
    """Print the trailguard version (same as ``trailguard --version``).

    \b
    Examples:
      trailguard version
    """
    typer.echo(f"trailguard {__version__}")


@app.command("validate-config")
def validate_config(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Config files to check (none: the built-in defaults).")
    ] = None,
    write_schema: Annotated[
        Path | None, typer.Option(help="Also write the JSON Schema of the config file to this path.")
    ] = None,
) -> None:
    """Validate config files; print one line per problem and exit 1 if any is invalid.

    Warnings (valid but probably unintended settings) go to stderr and do not change the exit status.

    Exit codes: 0 all valid, 1 a file is invalid, 2 usage error (or a --write-schema path it cannot write).

    \b
    Examples:
      trailguard validate-config config/example-organization.yaml
      trailguard validate-config        # the built-in defaults
      trailguard validate-config --write-schema config/trailguard.schema.json
    """
    if write_schema is not None:
        try:
            write_schema.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        except OSError as exc:
            hint = "create the directory first" if isinstance(exc, FileNotFoundError) else "choose a writable path"
            typer.echo(f"error: cannot write the schema to {write_schema} ({exc.strerror or exc}); {hint}", err=True)
            raise typer.Exit(2) from exc
        typer.echo(f"wrote {write_schema}")
    failed = False
    targets: list[Path | None] = list(paths) if paths else [None]
    for path in targets:
        label = str(path) if path else "<built-in defaults>"
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            failed = True
            for line in exc.problems:
                typer.echo(f"error: {line}", err=True)
            continue
        for warning in config_warnings(cfg):
            typer.echo(f"warning: {label}: {warning}", err=True)
        typer.echo(f"ok: {label} (mode {cfg.mode}, {len(cfg.governed_regions)} governed regions)")
    if failed:
        raise typer.Exit(1)
