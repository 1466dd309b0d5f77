"""``-o`` formats of replay and hunt: SARIF validates against the vendored OASIS schema, OCSF and ASFF shapes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cli_helpers import write_jsonl
from typer.testing import CliRunner

from trailguard.cli import _load_commands, app

_load_commands()
runner = CliRunner()
SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"


def replay(*args: str) -> Any:
    return runner.invoke(app, ["replay", *args])


def test_sarif_validates_and_names_rules(tmp_path: Path, examples: list[tuple[str, str, dict[str, Any]]]) -> None:
    pos = [e for _rid, kind, e in examples if kind == "positive"][:40]
    p = write_jsonl(tmp_path / "e.jsonl", pos)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("mode: standalone\nrunbook_base_url: https://example.com/runbooks\n")
    res = replay(str(p), "-o", "sarif", "--config", str(cfg))
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    jsonschema.Draft4Validator(json.loads(SCHEMA.read_text()), format_checker=jsonschema.FormatChecker()).validate(doc)
    run = doc["runs"][0]
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert ids and sorted(set(ids)) == ids
    assert all(r["helpUri"] == f"https://example.com/runbooks/{r['id']}.md" for r in run["tool"]["driver"]["rules"])
    assert {r["ruleId"] for r in run["results"]} == set(ids)
    first = run["results"][0]
    assert first["level"] in ("error", "warning", "note")
    assert first["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].count("/") >= 2


def test_ocsf_detection_finding_embeds_api_activity(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    p = write_jsonl(tmp_path / "e.jsonl", [stop_logging_example])
    res = replay(str(p), "-o", "ocsf")
    (doc,) = [json.loads(x) for x in res.stdout.splitlines()]
    assert (doc["class_uid"], doc["type_uid"], doc["severity_id"]) == (2004, 200401, 5)
    assert doc["metadata"]["product"]["name"] == "trailguard"
    assert doc["finding_info"]["uid"].startswith("trailguard/cloudtrail-stop-logging/")
    assert doc["cloud"]["account"]["uid"] == "111122223333"
    assert doc["api"]["operation"] == "StopLogging"
    assert doc["api"]["service"]["name"] == "cloudtrail.amazonaws.com"
    activity = doc["evidences"][0]["data"]
    assert activity["class_uid"] == 6003
    assert activity["type_uid"] == 6003 * 100 + activity["activity_id"]
    assert isinstance(doc["time"], int) and doc["time"] > 0


def test_asff_uses_the_engine_builder(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    p = write_jsonl(tmp_path / "e.jsonl", [stop_logging_example])
    (doc,) = json.loads(replay(str(p), "-o", "asff").stdout)
    assert doc["SchemaVersion"] == "2018-10-08"
    assert doc["Severity"]["Label"] == "CRITICAL"
    assert doc["Types"] and doc["Resources"]
    assert doc["AwsAccountId"] == "111122223333"
    assert doc["ProductFields"]["trailguard/status"] == "dry_run"


def test_csv_and_json_and_out_file(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    p = write_jsonl(tmp_path / "e.jsonl", [stop_logging_example])
    rows = list(csv.DictReader(io.StringIO(replay(str(p), "-o", "csv").stdout)))
    assert [r["rule"] for r in rows] == ["cloudtrail-stop-logging"]
    target = tmp_path / "f.json"
    res = replay(str(p), "-o", "json", "--out", str(target))
    assert res.exit_code == 0 and res.stdout == ""
    doc = json.loads(target.read_text())
    assert doc["findings"][0]["severity"] == "CRITICAL" and doc["summary"]["events"] == 1


def test_json_flag_conflicts_with_other_output(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    p = write_jsonl(tmp_path / "e.jsonl", [stop_logging_example])
    res = replay(str(p), "--json", "-o", "csv")
    assert res.exit_code == 2 and "--json is -o jsonl" in res.stderr


@pytest.mark.parametrize("fmt", ["sarif", "ocsf", "asff"])
def test_hunt_refuses_finding_formats(fmt: str) -> None:
    res = runner.invoke(app, ["hunt", "root-activity", "--logs", ".", "-o", fmt])
    assert res.exit_code == 2
    assert "hunt prints log rows" in res.stderr


def test_hunt_without_arguments_says_what_is_missing() -> None:
    res = runner.invoke(app, ["hunt"])
    assert res.exit_code == 2
    assert "not both" not in res.stderr
    assert "nothing to run" in res.stderr
