"""What every command shares (issue 17): -o json on the commands that print a report, help with examples,
and "did you mean" for rule and query names."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from trailguard.cli import _load_commands, app

_load_commands()
runner = CliRunner()


@pytest.mark.parametrize(
    "args",
    [
        ["rules"],
        ["rules", "cloudtrail-stop-logging"],
        ["cost", "--accounts", "2", "--regions", "1", "--events-per-day", "100"],
    ],
)
def test_o_json_is_the_same_as_json(args: list[str]) -> None:
    by_flag = runner.invoke(app, [*args, "--json"])
    by_option = runner.invoke(app, [*args, "-o", "json"])
    assert by_flag.exit_code == by_option.exit_code == 0, by_option.output
    assert json.loads(by_option.stdout) == json.loads(by_flag.stdout)
    assert runner.invoke(app, [*args, "--output", "table"]).stdout != by_option.stdout


def test_json_with_o_table_is_a_usage_error() -> None:
    res = runner.invoke(app, ["rules", "--json", "-o", "table"])
    assert res.exit_code == 2


@pytest.mark.parametrize(
    "command", ["replay", "hunt", "rules", "docs", "cost", "verify", "redrive", "demo", "validate-config"]
)
def test_every_command_help_has_examples(command: str) -> None:
    res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "120"})
    assert res.exit_code == 0
    assert "Examples:" in res.stdout, command
    assert f"trailguard {command}" in res.stdout


def test_an_unknown_query_name_suggests_the_closest() -> None:
    res = runner.invoke(app, ["hunt", "root-activty", "--logs", "."])
    assert res.exit_code == 2
    assert "did you mean: root-activity" in res.stderr
