"""``trailguard rules`` and ``trailguard docs``: catalog listing and runbook freshness."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_helpers import ROOT
from trailguard_engine.catalog import load_catalog
from typer.testing import CliRunner

from trailguard import runbooks
from trailguard.cli import _load_commands, app
from trailguard.sqlcatalog import load_queries

_load_commands()
runner = CliRunner()
RUNBOOK_DIR = ROOT / "docs" / "runbooks"


def test_rules_json_lists_every_rule() -> None:
    res = runner.invoke(app, ["rules", "--json"])
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    catalog = load_catalog()
    assert [d["id"] for d in data] == [r.id for r in catalog]
    for d, r in zip(data, catalog, strict=True):
        assert d == {"id": r.id, "severity": r.severity, "default_mode": r.default_mode, "mitre": list(r.mitre)}


def test_rules_table_and_single_rule() -> None:
    res = runner.invoke(app, ["rules"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert f"{len(load_catalog())} rules" in res.stdout
    assert "cloudtrail-stop-logging" in res.stdout
    one = runner.invoke(app, ["rules", "cloudtrail-stop-logging", "--json"])
    assert one.exit_code == 0
    detail: dict[str, Any] = json.loads(one.stdout)
    assert detail["remediation"]["action"] == "start_logging"
    assert detail["event_pattern"]["detail"]["eventName"] == ["StopLogging"]
    text = runner.invoke(app, ["rules", "cloudtrail-stop-logging"], env={"COLUMNS": "200"})
    assert "start_logging" in text.stdout


def test_unknown_rule_exits_2_with_a_hint() -> None:
    res = runner.invoke(app, ["rules", "stop-logging"])
    assert res.exit_code == 2
    assert "cloudtrail-stop-logging" in res.stderr


def test_committed_runbooks_are_fresh() -> None:
    stale = runbooks.stale_files(runbooks.generate(), RUNBOOK_DIR)
    assert stale == [], "runbooks are stale: run `.venv/bin/trailguard docs`:\n" + "\n".join(stale)


def test_runbooks_name_only_existing_queries() -> None:
    assert runbooks.generate().problems == ()


def test_generation_is_deterministic_and_complete() -> None:
    a, b = runbooks.generate(), runbooks.generate()
    assert a == b
    catalog = load_catalog()
    assert set(a.files) == {f"{r.id}.md" for r in catalog} | {"README.md"}
    queries = load_queries()
    for r in catalog:
        page = a.files[f"{r.id}.md"]
        for heading in ("## What happened", "## Why it matters", "## Triage", "## Remediation", "## Undo"):
            assert heading in page, (r.id, heading)
        assert runbooks.user_text(r.runbook.undo, r, queries)[0] in page
        if r.remediation:
            for perm in r.remediation.permissions:
                assert f"`{perm}`" in page
        for ref in r.runbook.queries:
            q = queries.get(runbooks.query_name(ref))
            if q is not None:
                assert f"trailguard hunt {q.name} --logs" in page
                assert f"Athena named query: `trailguard: {q.title}" in page
        assert f"({r.id}.md)" in a.files["README.md"]


def test_docs_check_and_write(tmp_path: Path) -> None:
    out = tmp_path / "runbooks"
    res = runner.invoke(app, ["docs", "--out", str(out), "--check"])
    assert res.exit_code == 1
    assert "stale:" in res.stdout
    assert runner.invoke(app, ["docs", "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, ["docs", "--out", str(out), "--check"]).exit_code == 0
    page = out / "cloudtrail-stop-logging.md"
    page.write_text(page.read_text() + "edited\n")
    (out / "old-rule.md").write_text("# gone")
    res = runner.invoke(app, ["docs", "--out", str(out), "--check"])
    assert res.exit_code == 1
    assert str(page) in res.stdout
    assert "old-rule.md (no such rule)" in res.stdout
    runner.invoke(app, ["docs", "--out", str(out)])
    assert not (out / "old-rule.md").exists()
    assert runner.invoke(app, ["docs", "--out", str(out), "--check"]).exit_code == 0


def test_hand_written_runbooks_coexist_with_the_generated_ones(tmp_path: Path) -> None:
    """``docs/runbooks/integrity-failure.md`` is written by hand: linked from the index, never stale, never deleted."""
    generated = runbooks.generate()
    for name in runbooks.HAND_WRITTEN:
        assert (RUNBOOK_DIR / name).is_file(), name
        assert f"]({name})" in generated.files["README.md"]
        assert name not in generated.files
    out = tmp_path / "runbooks"
    runbooks.write(generated, out)
    (out / "integrity-failure.md").write_text("# by hand\n")
    (out / "old-rule.md").write_text("# gone\n")
    assert runbooks.stale_files(generated, out) == [f"{out / 'old-rule.md'} (no such rule)"]
    runbooks.write(generated, out)
    assert (out / "integrity-failure.md").read_text() == "# by hand\n"
    assert not (out / "old-rule.md").exists()
