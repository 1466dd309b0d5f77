"""The ``trailguard`` command line.

Each sub-command lives in its own module under ``trailguard.commands`` and
registers itself on :data:`app`; this module only wires them together.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import Annotated, Any

import typer
import typer.core
from trailguard_engine.exceptions import CatalogError

from trailguard import __version__

app = typer.Typer(
    name="trailguard",
    help="CloudTrail foundation, detection catalog and safe remediation for AWS Organizations.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)

#: Modules that define commands (each calls ``@app.command`` at import).
COMMAND_MODULES: tuple[str, ...] = (
    "trailguard.commands.basics",
    "trailguard.commands.replay",
    "trailguard.commands.hunt",
    "trailguard.commands.retro",
    "trailguard.commands.rules",
    "trailguard.commands.demo",
    "trailguard.commands.cost",
    "trailguard.commands.redrive",
    "trailguard.commands.verify",
)

#: The module of each sub-command, so that running one imports only its module (issue 19: ``replay`` must not pay
#: for boto3 via the demo or duckdb via hunt). A name not listed here (help, completion, a typo) loads them all.
COMMAND_OF: dict[str, str] = {
    "version": "trailguard.commands.basics",
    "validate-config": "trailguard.commands.basics",
    "replay": "trailguard.commands.replay",
    "hunt": "trailguard.commands.hunt",
    "retro": "trailguard.commands.retro",
    "rules": "trailguard.commands.rules",
    "docs": "trailguard.commands.rules",
    "demo": "trailguard.commands.demo",
    "cost": "trailguard.commands.cost",
    "redrive": "trailguard.commands.redrive",
    "verify": "trailguard.commands.verify",
}


_typer_display_type_rich = typer.core.TyperOption.display_type_rich


def _flag_display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
    """No ``<bool>`` placeholder for flags in the rich help panel.

    typer 0.29's rich help renders every option's type, flags included, so ``--json <bool>`` reads as if it took a
    value (``--json=false`` is then rejected: flags take none). Its plain-text help already skips flags; this does
    the same for the rich panel.
    """
    if self.is_flag and not self.count:
        return None
    return _typer_display_type_rich(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_display_type_rich  # type: ignore[method-assign]


def package_version() -> str:
    """The installed distribution's version (the source tree's ``__version__`` when not installed)."""
    try:
        return _dist_version("trailguard")
    except PackageNotFoundError:
        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"trailguard {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the trailguard version and exit."
        ),
    ] = False,
) -> None:
    """CloudTrail foundation, detection catalog and safe remediation for AWS Organizations."""


def _load_commands(argv: list[str] | None = None) -> None:
    """Register the sub-commands: only the one ``argv`` names when it names one (``argv[0]`` is the program)."""
    names: tuple[str, ...] = COMMAND_MODULES
    if argv is not None and len(argv) > 1 and argv[1] in COMMAND_OF:
        names = (COMMAND_OF[argv[1]],)
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside an existing module
                raise


def _stdout_identity() -> tuple[int, int] | None:
    """(device, inode) behind file descriptor 1, to notice a library pointing it at devnull."""
    try:
        st = os.fstat(1)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _quiet_broken_pipe() -> None:
    """The reader went away (``trailguard rules --json | head -1``): stop without a traceback.

    Python's documented recipe: point stdout at devnull so the interpreter's final flush does not raise again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout already closed or not a real file
        pass


def main() -> None:
    """Console-script entry point.

    A closed stdout (``trailguard replay --json f | head -1``) ends the command quietly with status 0, as the
    pipeline expects: typer answers EPIPE by swapping ``sys.stdout`` for a flush-pacifying wrapper, rich by
    pointing descriptor 1 at devnull, and both then exit 1; anything left raises BrokenPipeError.
    """
    _load_commands(sys.argv)
    stdout, stdout_identity = sys.stdout, _stdout_identity()
    try:
        try:
            app()
        finally:
            if sys.stdout is stdout:  # buffered output would otherwise meet a closed pipe at interpreter exit
                sys.stdout.flush()
    except CatalogError as exc:  # a broken rule file: name it, no stack trace
        print(f"trailguard: catalog error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        _quiet_broken_pipe()
        sys.exit(0)
    except SystemExit:
        if sys.stdout is not stdout or _stdout_identity() != stdout_identity:
            _quiet_broken_pipe()
            sys.exit(0)
        raise
