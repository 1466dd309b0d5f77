"""The ``trailguard`` command line.

Each sub-command lives in its own module under ``trailguard.commands`` and
registers itself on :data:`app`; this module only wires them together.
"""

from __future__ import annotations

import importlib
import sys

import typer
from trailguard_engine.exceptions import CatalogError

app = typer.Typer(
    name="trailguard",
    help="CloudTrail foundation, detection catalog and safe remediation for AWS Organizations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Modules that define commands (each calls ``@app.command`` at import).
COMMAND_MODULES: tuple[str, ...] = (
    "trailguard.commands.basics",
    "trailguard.commands.replay",
    "trailguard.commands.hunt",
    "trailguard.commands.rules",
    "trailguard.commands.demo",
    "trailguard.commands.cost",
    "trailguard.commands.redrive",
    "trailguard.commands.verify",
)


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside an existing module
                raise


def main() -> None:
    """Console-script entry point."""
    _load_commands()
    try:
        app()
    except CatalogError as exc:  # a broken rule file: name it, no stack trace
        print(f"trailguard: catalog error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
