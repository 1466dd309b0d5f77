"""Gates on the synthesized templates: cdk-nag (both packs, whole app), cfn-lint and checkov (every template)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from foundation_helpers import GUARDRAILS, LOG_ARCHIVE, TRAIL, Case, acknowledgments

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv" / "tools-checkov" / "bin" / "checkov"

#: Exact cdk-nag acknowledgment count per foundation stack. Counted per stack so
#: other stacks' acknowledgments never change these numbers; a new one here is deliberate.
EXPECTED_ACKS = {
    "standalone": {LOG_ARCHIVE: 2, TRAIL: 1},
    # Organization trail: two log-stream patterns (<mgmt>_CloudTrail_*, <orgId>_*) -> two IAM5 acks.
    "organization": {LOG_ARCHIVE: 2, TRAIL: 2, GUARDRAILS: 0},
}


def _mode(case: Case) -> str:
    return "organization" if case.org else "standalone"


def _report(case: Case) -> dict[str, Any]:
    return dict(json.loads((case.s.outdir / "validation-report.json").read_text()))


def test_nag_both_packs_ran_and_found_nothing_unacknowledged(case: Case) -> None:
    report = _report(case)
    plugins = {p["pluginName"]: p for p in report["pluginReports"]}
    assert {"AwsSolutions", "NIST.800.53.R5"} <= set(plugins)
    for name, plugin in plugins.items():
        assert plugin["violations"] == [], f"{name}: {plugin['violations']}"
        assert plugin["conclusion"] == "success"


def test_nag_acknowledgment_count_per_stack(case: Case) -> None:
    counts = {stack: len(acknowledgments(case.s.outdir, stack)) for stack in EXPECTED_ACKS[_mode(case)]}
    assert counts == EXPECTED_ACKS[_mode(case)]


def test_every_foundation_acknowledgment_is_used_and_specific(case: Case) -> None:
    used = {
        (s["acknowledgedAt"], s["acknowledgedId"])
        for p in _report(case)["pluginReports"]
        for s in p.get("suppressedViolations", [])
    }
    reasons = []
    for stack in EXPECTED_ACKS[_mode(case)]:
        for path, rule, reason in acknowledgments(case.s.outdir, stack):
            assert (path.lstrip("/"), rule) in used, f"stale acknowledgment {rule} at {path}"
            assert len(reason) >= 40
            reasons.append(reason)
    assert len(set(reasons)) == len(reasons) or all("log stream" in r for r in reasons if reasons.count(r) > 1)


def _templates(case: Case) -> list[Path]:
    """Every template of the app in this mode (foundation, detection, members, StackSet body)."""
    found = sorted(case.s.outdir.glob("*.template.json"))
    assert {f"{s}.template.json" for s in (LOG_ARCHIVE, TRAIL) if s in case.s.templates} <= {p.name for p in found}
    return found


def test_cfn_lint_passes_on_every_template(case: Case) -> None:
    proc = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "cfn-lint"),
            "--config-file",
            str(ROOT / ".cfnlintrc.yaml"),
            "--",
            *map(str, _templates(case)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cfnlintrc_ignores_only_w3005() -> None:
    import yaml

    assert yaml.safe_load((ROOT / ".cfnlintrc.yaml").read_text()) == {"ignore_checks": ["W3005"]}


def test_checkov_passes_on_every_template(case: Case, tmp_path: Path) -> None:
    binary = CHECKOV if CHECKOV.exists() else (Path(p) if (p := shutil.which("checkov")) else None)
    if binary is None:
        pytest.skip(f"checkov not installed (expected at {CHECKOV}; `make setup` builds it)")
    for template in _templates(case):
        shutil.copy(template, tmp_path / template.name)
    proc = subprocess.run(
        [str(binary), "--config-file", str(ROOT / ".checkov.yaml"), "-d", str(tmp_path), "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    summary = result["summary"] if isinstance(result, dict) else result[0]["summary"]
    assert summary["failed"] == 0
    assert summary["passed"] > 20  # it really scanned the templates


def test_checkov_config_gives_a_reason_for_every_skip() -> None:
    import yaml

    text = (ROOT / ".checkov.yaml").read_text()
    skips = yaml.safe_load(text)["skip-check"]
    lines = text.splitlines()
    for check in skips:
        idx = next(i for i, line in enumerate(lines) if line.strip() == f"- {check}")
        assert lines[idx - 1].strip().startswith("#"), f"{check} has no reason comment"
        assert f"# {check}" in text
