"""Config validation: examples are valid, every bad input gets its specific one-line message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trailguard.config import TrailguardConfig, json_schema, load_config, parse_config
from trailguard.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "config").glob("example-*.yaml"))
ORG = {
    "org_id": "o-a1b2c3d4e5",
    "management_account_id": "111111111111",
    "log_archive_account_id": "222222222222",
    "security_tooling_account_id": "333333333333",
    "target_ous": ["r-a1b2"],
}


def problems(doc: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(doc, "cfg.yaml")
    return info.value.problems


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_config_is_valid(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.mode in path.name


def test_no_config_file_means_standalone_defaults() -> None:
    cfg = load_config(None)
    assert cfg.mode == "standalone"
    assert cfg.allowed_public_ports == [80, 443]
    assert cfg.retention.cloudwatch_logs_days == 400
    assert cfg.dry_run is True
    assert "us-east-1" in cfg.governed_regions


@pytest.mark.parametrize(
    ("text", "dry_run"),
    [
        (None, True),  # no config file: the standalone defaults
        ("notifications:\n  emails: [soc@example.com]\n", True),  # a config that does not mention dry_run
        ("dry_run: true\n", True),
        ("dry_run: false\n", False),  # only an explicit false goes live
    ],
    ids=["no-file", "file-without-dry-run", "explicit-true", "explicit-false"],
)
def test_dry_run_until_the_config_says_false(tmp_path: Path, text: str | None, dry_run: bool) -> None:
    """Issue 16: a first deploy must not start remediating; the engine reads dry_run from the runtime document."""
    from trailguard_engine.runtime_config import RuntimeConfig

    path = None
    if text is not None:
        path = tmp_path / "trailguard.yaml"
        path.write_text(text)
    doc = json.loads(json.dumps(load_config(path).runtime_document()))
    assert doc["dry_run"] is dry_run
    assert RuntimeConfig.from_document(doc).dry_run is dry_run


def test_a_runtime_document_without_dry_run_is_read_as_dry_run() -> None:
    """A hand-edited SSM document that lost the key must not start remediating: the engine reads it as dry-run."""
    from trailguard_engine.runtime_config import RuntimeConfig

    doc = load_config(None).runtime_document()
    del doc["dry_run"]
    assert RuntimeConfig.from_document(doc).dry_run is True
    assert RuntimeConfig.from_document({**doc, "dry_run": False}).dry_run is False


def test_example_organization_turns_on_every_feature() -> None:
    cfg = load_config(ROOT / "config" / "example-organization.yaml")
    f = cfg.features
    assert f.scps and f.insights and f.cloudtrail_lake.enabled and f.object_lock.enabled
    assert f.data_events.s3 and f.data_events.lambda_
    assert cfg.organization is not None and cfg.organization.delegated_admin_account_id


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"colour": "blue"}, "cfg.yaml: colour: unknown key"),
        ({"exemptions": {"acounts": []}}, "cfg.yaml: exemptions.acounts: unknown key"),
        (
            {"exemptions": {"accounts": ["12345678901"]}},
            "cfg.yaml: exemptions.accounts.0: expected a 12-digit AWS account ID, got '12345678901'",
        ),
        (
            {"home_region": "us-moon-1"},
            "cfg.yaml: home_region: expected an AWS region such as 'us-east-1', got 'us-moon-1'",
        ),
        ({"governed_regions": ["us-east-1", "eu-nowhere-9"]}, "cfg.yaml: governed_regions.1: expected an AWS region"),
        (
            {"exemptions": {"source_cidrs": ["10.0.0.300/8"]}},
            "cfg.yaml: exemptions.source_cidrs.0: expected a CIDR block",
        ),
        (
            {"exemptions": {"source_cidrs": ["10.0.0.1/8"]}},
            "cfg.yaml: exemptions.source_cidrs.0: expected a CIDR block",
        ),
        ({"mode": "organization"}, "cfg.yaml: <root>: mode 'organization' needs an 'organization' section with org_id"),
        (
            {"mode": "organization", "organization": {**ORG, "org_id": "a1b2"}},
            "cfg.yaml: organization.org_id: expected an organization ID",
        ),
        (
            {"mode": "organization", "organization": {k: v for k, v in ORG.items() if k != "org_id"}},
            "cfg.yaml: organization.org_id: Field required",
        ),
        ({"mode": "galaxy"}, "cfg.yaml: mode: Input should be 'standalone' or 'organization'"),
        ({"allowed_public_ports": [443, 70000]}, "cfg.yaml: allowed_public_ports.1: expected a TCP/UDP port"),
        (
            {"rule_modes": {"cloudtrail-stop-logging": "nuke"}},
            "cfg.yaml: rule_modes.cloudtrail-stop-logging: Input should be 'remediate', 'alert' or 'off'",
        ),
        (
            {"retention": {"cloudwatch_logs_days": 42}},
            "cfg.yaml: retention.cloudwatch_logs_days: expected a CloudWatch Logs retention",
        ),
        (
            {"notifications": {"emails": ["not-an-email"]}},
            "cfg.yaml: notifications.emails.0: expected an email address",
        ),
        ({"home_region": "eu-west-1", "governed_regions": ["us-east-1"]}, "must be one of governed_regions"),
        ({"organization": ORG}, "only valid with mode 'organization'"),
        ({"dry_run": "maybe"}, "cfg.yaml: dry_run: Input should be a valid boolean"),
        (["a", "list"], "cfg.yaml: <root>: expected a mapping of settings, got list"),
    ],
)
def test_bad_config_gives_specific_message(doc: object, expected: str) -> None:
    lines = problems(doc)
    assert any(line.startswith(expected) or expected in line for line in lines), lines
    assert all(line.startswith("cfg.yaml: ") for line in lines)


def test_every_problem_is_reported_not_just_the_first() -> None:
    lines = problems({"colour": "x", "home_region": "mars-1", "exemptions": {"accounts": ["1"]}})
    assert len(lines) == 3


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+: not valid YAML"):
        load_config(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(empty) == TrailguardConfig()


def test_runtime_document_round_trips_into_the_engine_parser() -> None:
    from trailguard_engine.runtime_config import RuntimeConfig

    cfg = load_config(ROOT / "config" / "example-organization.yaml")
    rc = RuntimeConfig.from_document(json.loads(json.dumps(cfg.runtime_document())))
    assert rc.dry_run is True
    assert rc.allowed_public_ports == frozenset({80, 443})
    assert rc.org_id == "o-a1b2c3d4e5"
    assert rc.rule_modes["kms-key-scheduled-for-deletion"] == "remediate"
    assert rc.exempt_principal("arn:aws:sts::1:assumed-role/stacksets-exec-abc/x")


def test_committed_json_schema_is_fresh() -> None:
    committed = json.loads((ROOT / "config" / "trailguard.schema.json").read_text())
    assert committed == json_schema(), "run: make docs (regenerates config/trailguard.schema.json)"


def test_validate_config_cli_reports_each_problem_and_exits_nonzero(tmp_path: Path) -> None:
    from trailguard.cli import _load_commands, app

    _load_commands()
    bad = tmp_path / "t.yaml"
    bad.write_text("mode: organization\nhome_region: us-moon-1\n")
    result = CliRunner().invoke(app, ["validate-config", str(bad)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"error: {bad}: home_region: expected an AWS region" in result.output
    ok = CliRunner().invoke(app, ["validate-config", *map(str, EXAMPLES)])
    assert ok.exit_code == 0, ok.output


def test_cdk_app_rejects_bad_config_without_a_stack_trace(tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("exemptions:\n  accounts: ['12345678901']\n")
    proc = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={"CDK_CONTEXT_JSON": json.dumps({"config": str(bad)}), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"trailguard: config error: {bad}: exemptions.accounts.0: expected a 12-digit AWS account ID" in proc.stderr


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::*:role/security-break-glass",
        "arn:aws:iam::111122223333:role/security-*",
        "arn:aws:sts::111122223333:assumed-role/security-break-glass/x",
        "arn:aws:iam::11112222333:role/security-break-glass",
        "security-break-glass",
    ],
    ids=["any-account", "name-wildcard", "session-arn", "short-account", "bare-name"],
)
@pytest.mark.parametrize("key", ["break_glass_role_arns", "deployment_role_arns"])
def test_trusted_roles_must_be_exact_account_pinned_arns(key: str, arn: str) -> None:
    """A pattern would let any account admin create a matching role and pass the guardrails."""
    [message] = problems({key: [arn]})
    assert key in message and "exact IAM role ARN" in message


def test_exact_role_arns_with_a_path_are_accepted() -> None:
    cfg = parse_config({"break_glass_role_arns": ["arn:aws:iam::111122223333:role/ops/security-break-glass"]})
    assert cfg.except_break_glass() == {
        "ArnNotEquals": {"aws:PrincipalArn": ["arn:aws:iam::111122223333:role/ops/security-break-glass"]}
    }
    assert parse_config({}).except_break_glass() == {}


def test_the_old_break_glass_pattern_key_is_refused_with_a_pointer() -> None:
    [message] = problems({"break_glass_role_pattern": "arn:aws:iam::*:role/security-break-glass"})
    assert "break_glass_role_arns" in message
