"""docs/cli.md is generated from the commands' real output; it must match what they print today."""

from __future__ import annotations

from trailguard import cli_docs


def test_docs_cli_md_is_fresh() -> None:
    assert cli_docs.main(["--check"]) == 0, "docs/cli.md is stale: run .venv/bin/python -m trailguard.cli_docs"


def test_every_command_appears_in_docs_cli_md() -> None:
    from trailguard.cli import _load_commands, app

    _load_commands()
    text = cli_docs.OUT.read_text(encoding="utf-8")
    names = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    shown = {n for n in names if f"$ trailguard {n}" in text}
    assert set(names) == shown, sorted(set(names) - shown)
