"""Every rule file is valid against the strict schema; the exported JSON Schema is fresh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from catalog_helpers import RULE_FILES, RULES
from pydantic import ValidationError
from trailguard_engine.catalog import load_rule_file
from trailguard_engine.exceptions import CatalogError

from trailguard.catalog_schema import SCHEMA_PATH, RuleModel, render_schema, validate_rule_file


def test_catalog_size() -> None:
    assert len(RULES) >= 45, f"only {len(RULES)} rules"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.stem)
def test_rule_file_schema(path: Path) -> None:
    model = validate_rule_file(path)
    assert model.id == path.stem
    # the engine's own loader agrees with the schema
    assert load_rule_file(path).id == model.id


def test_ids_unique() -> None:
    ids = [json.loads(p.read_text())["id"] for p in RULE_FILES]
    assert len(ids) == len(set(ids))


def test_exported_schema_is_fresh() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), (
        "rule.schema.json is stale: run python -m trailguard.catalog_schema"
    )


def _doc() -> dict:
    return json.loads(RULE_FILES[0].read_text())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra_key=1), "Extra inputs are not permitted"),
        (lambda d: d.update(severity="SEVERE"), "severity"),
        (lambda d: d.update(default_mode="fix"), "default_mode"),
        (lambda d: d.update(mitre=["1562"]), "mitre"),
        (lambda d: d.update(read_only_events="true"), "read_only_events"),
        (lambda d: d["examples"].update(negative=[]), "negative"),
        (lambda d: d["runbook"].update(triage=[]), "triage"),
        (lambda d: d.update(remediation=None, default_mode="remediate"), "needs a remediation"),
        (
            lambda d: d.update(remediation={"action": "x", "permissions": ["StartLogging"], "description": "d"}),
            "permissions",
        ),
        (
            lambda d: d.update(
                matches_failed_calls=True, remediation={"action": "x", "permissions": ["a:B"], "description": "d"}
            ),
            "must not remediate",
        ),
    ],
)
def test_schema_rejects(mutate, message: str) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(ValidationError, match=message):
        RuleModel.model_validate(doc)


def test_loader_rejects_id_mismatch(tmp_path: Path) -> None:
    doc = _doc()
    doc["id"] = "something-else"
    path = tmp_path / "not-the-id.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CatalogError, match="must equal the file name"):
        load_rule_file(path)
