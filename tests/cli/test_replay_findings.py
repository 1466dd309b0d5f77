"""``replay`` shows each finding, gates with --fail-on, and exits quietly when its reader goes away."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cli_helpers import bare, write_jsonl
from typer.testing import CliRunner

from trailguard.cli import _load_commands, app

_load_commands()
runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(app, ["replay", *args])


def test_table_lists_each_finding_with_who_where_and_runbook(
    tmp_path: Path, stop_logging_example: dict[str, Any]
) -> None:
    p = write_jsonl(tmp_path / "e.jsonl", [stop_logging_example])
    res = run(str(p))
    assert res.exit_code == 0, res.output
    out = res.stdout
    rec = bare(stop_logging_example)
    for text in (rec["eventTime"], rec["recipientAccountId"], rec["awsRegion"], rec["userIdentity"]["arn"],
                 "cloudtrail-stop-logging", "CRITICAL", "remediate", "docs/runbooks/cloudtrail-stop-logging.md"):  # fmt: skip
        assert text in out, text
    assert "replay summary" in out


def test_only_findings_and_no_findings_sentence(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    quiet = {**bare(stop_logging_example), "eventName": "DescribeTrails", "eventID": "q1"}
    p = write_jsonl(tmp_path / "e.jsonl", [quiet])
    res = run(str(p), "--only-findings")
    assert res.exit_code == 0
    assert res.stdout.strip() == "No findings in 1 events."


def test_json_lines_gain_where_who_severity_runbook(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    p = write_jsonl(tmp_path / "e.jsonl", [stop_logging_example])
    (line,) = [json.loads(x) for x in run(str(p), "--json").stdout.splitlines()]
    assert {"eventID", "eventName", "verdict", "findings"} <= set(line)
    rec = bare(stop_logging_example)
    assert line["eventTime"] == rec["eventTime"]
    assert line["account"] == rec["recipientAccountId"]
    assert line["principal"] == rec["userIdentity"]["arn"]
    assert line["severity"] == "CRITICAL"
    assert line["runbook"] == "docs/runbooks/cloudtrail-stop-logging.md"


def test_fail_on_exit_codes(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    p = write_jsonl(tmp_path / "e.jsonl", [stop_logging_example])
    assert run(str(p), "--fail-on", "high").exit_code == 3
    assert run(str(p), "--fail-on", "critical", "-o", "csv").exit_code == 3
    assert run(str(p), "--fail-on", "high", "--rule", "root-activity").exit_code == 0
    bad = run(str(p), "--fail-on", "hgh")
    assert bad.exit_code == 2
    assert "did you mean: high" in bad.stderr


def test_help_documents_exit_codes_and_examples() -> None:
    res = runner.invoke(app, ["replay", "--help"], terminal_width=200)
    assert "Exit codes: 0 clean" in res.stdout
    assert "trailguard replay AWSLogs/ --since 7d --severity high" in res.stdout


def test_out_to_missing_directory_is_a_usage_error(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    p = write_jsonl(tmp_path / "e.jsonl", [stop_logging_example])
    res = run(str(p), "--out", str(tmp_path / "nope" / "x.json"))
    assert res.exit_code == 2
    assert res.stderr.startswith("error: --out") and "does not exist" in res.stderr


def test_json_piped_to_head_exits_quietly(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    rec = bare(stop_logging_example)
    p = write_jsonl(tmp_path / "many.jsonl", [{**rec, "eventID": f"e{i}"} for i in range(4000)])  # > a pipe buffer
    code = "from trailguard.cli import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "replay", "--json", str(p)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read().decode()
    rc = proc.wait()
    assert json.loads(first)["eventID"] == "e0"
    assert "BrokenPipeError" not in err and "Traceback" not in err, err
    assert rc == 0
