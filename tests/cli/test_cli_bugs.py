"""CLI-wide behaviour: flags in help, ``--version``, shell completion, and a reader that closes the pipe early."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trailguard.cli import _load_commands, app, package_version

_load_commands()
runner = CliRunner()
COMMANDS = ("replay", "hunt", "rules", "docs", "demo", "cost", "redrive", "verify", "validate-config")
#: The console script, run from a scratch directory (``-c`` puts the working directory first on sys.path).
TRAILGUARD = [sys.executable, "-c", "from trailguard.cli import main; main()"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_value_placeholder_for_flags(command: str) -> None:
    """Bug: every flag read ``--json <bool>`` in help, yet ``--json=false`` is rejected (flags take no value)."""
    res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "<bool>" not in res.stdout
    assert "--help" in res.stdout


def test_root_help_has_no_bool_placeholder_and_lists_version_and_completion() -> None:
    res = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "<bool>" not in res.stdout
    for opt in ("--version", "--install-completion", "--show-completion"):
        assert opt in res.stdout


def test_value_options_keep_their_type_in_help() -> None:
    res = runner.invoke(app, ["cost", "--help"], env={"COLUMNS": "200"})
    assert "<int>" in res.stdout
    assert "<float>" in res.stdout


def test_flags_still_reject_a_value() -> None:
    res = runner.invoke(app, ["rules", "--json=false"])
    assert res.exit_code == 2


def test_version_option_prints_the_package_version() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.stdout.strip() == f"trailguard {package_version()}"
    assert package_version()[0].isdigit()


def test_show_completion_prints_a_script() -> None:
    res = runner.invoke(app, ["--show-completion", "bash"], env={"SHELL": "/bin/bash"})
    assert res.exit_code == 0, res.output
    assert "complete" in res.stdout
    assert "_TRAILGUARD_COMPLETE" in res.stdout


def _run_into_closed_pipe(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with its stdout a pipe whose reader is already gone (``| head`` that has read enough)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [*TRAILGUARD, *args], stdout=write_end, stderr=subprocess.PIPE, cwd=cwd, timeout=120, check=False
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [
        ["rules", "--json"],  # large output written by typer.echo
        ["rules"],  # a rich table
        ["version"],  # small, buffered until exit
        ["cost", "--accounts", "3", "--regions", "2", "--events-per-day", "10000", "--json"],
    ],
)
def test_closed_stdout_exits_quietly_with_0(args: list[str], tmp_path: Path) -> None:
    """Bug: ``trailguard ... | head -1`` exited 1 (and flooded stderr); a reader that stops early is no failure."""
    res = _run_into_closed_pipe(args, tmp_path)
    assert res.stderr == b""
    assert res.returncode == 0


def test_real_pipeline_with_head(tmp_path: Path) -> None:
    cmd = " ".join([*(f"'{a}'" for a in TRAILGUARD), "rules", "--json"])
    res = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{cmd} | head -1"],
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert res.stdout == b"[\n"
    assert res.stderr == b""
    assert res.returncode == 0


def test_usage_errors_still_exit_2_through_main(tmp_path: Path) -> None:
    res = subprocess.run(
        [*TRAILGUARD, "rules", "no-such-rule"], capture_output=True, cwd=tmp_path, timeout=120, check=False
    )
    assert res.returncode == 2
    assert res.stderr.startswith(b"error: unknown rule")


def test_docs_out_an_existing_file_is_a_usage_error(tmp_path: Path) -> None:
    """Bug: ``docs --out README.md`` (an existing file) raised FileExistsError."""
    readme = tmp_path / "README.md"
    readme.write_text("# my project\n", encoding="utf-8")
    for args in (["docs", "--out", str(readme)], ["docs", "--out", str(readme), "--check"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, res.output
        assert res.stderr.startswith(f"error: --out {readme} is a file; --out takes a directory")
    assert readme.read_text(encoding="utf-8") == "# my project\n"


def test_docs_never_clobbers_files_it_did_not_write(tmp_path: Path) -> None:
    """``docs --out .`` would have replaced README.md with the runbook index and deleted every other .md."""
    (tmp_path / "README.md").write_text("# my project\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("mine\n", encoding="utf-8")
    res = runner.invoke(app, ["docs", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "would overwrite or delete" in res.stderr
    assert str(tmp_path / "README.md") in res.stderr
    assert str(tmp_path / "notes.md") in res.stderr
    assert "--force" in res.stderr
    assert (tmp_path / "notes.md").read_text(encoding="utf-8") == "mine\n"
    forced = runner.invoke(app, ["docs", "--out", str(tmp_path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert not (tmp_path / "notes.md").exists()


def test_docs_regenerates_its_own_directory(tmp_path: Path) -> None:
    out = tmp_path / "runbooks"
    first = runner.invoke(app, ["docs", "--out", str(out)])
    assert first.exit_code == 0, first.output
    (out / "retired-rule.md").write_text("<!-- Generated by `trailguard docs` from the rule catalog. -->\n")
    again = runner.invoke(app, ["docs", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "(1 changed)" in again.stdout
    assert not (out / "retired-rule.md").exists()  # a runbook of a removed rule is still cleaned up


def test_unknown_rule_uses_did_you_mean() -> None:
    res = runner.invoke(app, ["rules", "cloudtrail-stop-loging"])
    assert res.exit_code == 2
    assert res.stderr == "error: unknown rule 'cloudtrail-stop-loging' (did you mean: cloudtrail-stop-logging?)\n"


@pytest.mark.parametrize("command", ["cost", "rules", "docs", "validate-config", "version"])
def test_help_has_examples(command: str) -> None:
    res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Examples:")
    examples = [line.strip() for line in lines[start + 1 :] if line.strip().startswith("trailguard ")]
    assert examples, res.stdout
    assert all(e.split()[1] == command for e in examples)
