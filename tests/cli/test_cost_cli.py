"""``trailguard cost`` (issue 17): implausible inputs refused, every lifecycle value settable, JSON rounded,
and a deployment config priced as written."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.core
from cli_helpers import ROOT
from typer.testing import CliRunner

from trailguard.cli import _load_commands, app
from trailguard.cost import CostInputs, estimate

_load_commands()
runner = CliRunner()
BASE = ["cost", "--accounts", "10", "--regions", "2", "--events-per-day", "10000"]


def cost(*args: str) -> Any:
    return runner.invoke(app, ["cost", *args])


def cost_json(*args: str) -> dict[str, Any]:
    res = cost(*args, "--json")
    assert res.exit_code == 0, res.output
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_non_finite_event_rates_are_refused(value: str) -> None:
    """Bug: ``--events-per-day nan|inf`` printed a nan or inf total and exited 0."""
    res = cost("--accounts", "1", "--regions", "1", "--events-per-day", value)
    assert res.exit_code == 2
    assert "error: --events-per-day must be a finite number" in res.stderr
    assert res.stdout == ""


def test_non_finite_data_event_rate_and_peak_factor_are_refused() -> None:
    res = cost("--accounts", "1", "--regions", "1", "--events-per-day", "1", "--data-events-per-day", "inf")
    assert res.exit_code == 2
    assert "--data-events-per-day must be a finite number" in res.stderr
    res = cost("--accounts", "1", "--regions", "1", "--events-per-day", "1", "--peak-factor", "inf")
    assert res.exit_code == 2
    assert "--peak-factor must be a finite number" in res.stderr
    res = cost("--accounts", "1", "--regions", "1", "--events-per-day", "1", "--forward-ratio", "nan")
    assert res.exit_code == 2
    assert "--forward-ratio must be between 0 and 1" in res.stderr


def test_an_implausible_event_rate_is_refused_with_the_reason() -> None:
    """Bug: ``--events-per-day 1e12`` was accepted without a sanity bound."""
    res = cost("--accounts", "1", "--regions", "1", "--events-per-day", "1e12")
    assert res.exit_code == 2
    assert "--events-per-day 1e+12 is above 1e+10 per account per day" in res.stderr
    assert "check the unit" in res.stderr
    assert cost("--accounts", "1", "--regions", "1", "--events-per-day", "1e10").exit_code == 0


def test_short_archive_names_only_real_options_and_can_be_priced() -> None:
    """Bug: ``--archive-days 200`` failed on lifecycle values the CLI could not set, naming a missing option."""
    res = cost("--accounts", "1", "--regions", "1", "--events-per-day", "10000", "--archive-days", "200")
    assert res.exit_code == 2
    assert "--ia-days (90) < --glacier-days (365) < --archive-days (200)" in res.stderr
    assert set(re.findall(r"--[a-z-]+", res.stderr)) <= cost_options()
    doc = cost_json(
        "--accounts", "1", "--regions", "1", "--events-per-day", "10000",
        "--archive-days", "200", "--ia-days", "30", "--glacier-days", "90",
    )  # fmt: skip
    assert doc["inputs"]["archive_days"] == 200
    assert (doc["inputs"]["ia_days"], doc["inputs"]["glacier_days"]) == (30, 90)
    assert any("below the 365 days a deployment config accepts" in n for n in doc["notes"])


def cost_options() -> set[str]:
    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup)
    return {opt for param in command.commands["cost"].params for opt in (*param.opts, *param.secondary_opts)}


def test_every_validation_message_names_real_options() -> None:
    nan = float("nan")
    bad = CostInputs(
        accounts=0, regions=99, events_per_day=nan, data_events_per_day=-1.0, forward_ratio=2.0,
        ia_days=0, glacier_days=0, archive_days=0, athena_queries=-1, athena_days_per_query=nan,
    )  # fmt: skip
    errors = bad.validate()
    assert len(errors) == 9
    named = {opt for e in errors for opt in re.findall(r"--[a-z-]+", e)}
    assert named
    assert named <= cost_options(), named - cost_options()


def test_athena_days_per_query_is_settable() -> None:
    one = cost_json(*BASE[1:], "--athena-queries", "1000")
    many = cost_json(*BASE[1:], "--athena-queries", "1000", "--athena-days-per-query", "30")
    athena = {d["driver"]: d["usd"] for d in many["lines"]}["Athena"]
    assert athena > {d["driver"]: d["usd"] for d in one["lines"]}["Athena"]
    assert many["inputs"]["athena_days_per_query"] == 30


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


def test_json_money_is_in_cents_and_other_figures_are_short() -> None:
    """Bug: ``cost --json`` printed unrounded floats (0.6458993...)."""
    doc = cost_json(*BASE[1:])
    for line in doc["lines"]:
        assert _decimals(line["usd"]) <= 2, line
    assert _decimals(doc["total_usd"]) <= 2
    exact = estimate(CostInputs(accounts=10, regions=2, events_per_day=10_000))
    assert doc["total_usd"] == round(exact.total, 2)
    advice = doc["engine_reserved_concurrency"]
    for key in ("events_per_second", "peak_events_per_second", "in_flight_at_peak"):
        digits = repr(advice[key]).replace(".", "").lstrip("0")
        assert len(digits) <= 4, (key, advice[key])
    assert advice["events_per_second"] == pytest.approx(10 * 10_000 * 0.02 / 86_400, rel=1e-3)


def test_accounts_and_regions_are_required_without_a_config() -> None:
    res = cost("--events-per-day", "1000")
    assert res.exit_code == 2
    assert "error: missing --accounts and --regions (or price a deployment config with --config FILE)" in res.stderr


def test_config_standalone_prices_its_regions_and_features() -> None:
    path = ROOT / "config" / "example-standalone.yaml"
    doc = cost_json("--config", str(path), "--events-per-day", "20000")
    inputs = doc["inputs"]
    assert (inputs["accounts"], inputs["regions"]) == (1, 3)  # eu-west-1, eu-central-1, us-east-1
    assert inputs["insights"] is True and inputs["data_events"] is False
    assert inputs["cloudwatch_logs"] is True and inputs["cloudwatch_retention_days"] == 400
    assert "CloudTrail Insights" in {d["driver"] for d in doc["lines"]}


def test_config_organization_uses_its_accounts_or_asks(tmp_path: Path) -> None:
    text = (ROOT / "config" / "example-organization.yaml").read_text(encoding="utf-8")
    res = cost("--config", str(ROOT / "config" / "example-organization.yaml"), "--events-per-day", "1000")
    if "\n  accounts:" not in text:
        assert res.exit_code == 2
        assert "give the number of accounts with --accounts" in res.stderr
    doc = cost_json(
        "--config", str(ROOT / "config" / "example-organization.yaml"), "--events-per-day", "1000", "--accounts", "120"
    )
    assert doc["inputs"]["accounts"] == 120
    listed = tmp_path / "org.yaml"
    listed.write_text(
        "mode: organization\n"
        "organization:\n"
        "  org_id: o-a1b2c3d4e5\n"
        '  management_account_id: "111111111111"\n'
        '  log_archive_account_id: "222222222222"\n'
        '  security_tooling_account_id: "333333333333"\n'
        "  target_ous: [r-a1b2]\n"
        '  accounts: ["111111111111", "222222222222", "333333333333", "444444444444"]\n'
        "governed_regions: [us-east-1, eu-west-1]\n"
        "retention:\n  archive_days: 400\n  transition_to_infrequent_access_days: 30\n"
        "  transition_to_glacier_days: 120\n"
        "features:\n  data_events: {s3: true}\n",
        encoding="utf-8",
    )
    doc = cost_json("--config", str(listed), "--events-per-day", "1000")
    inputs = doc["inputs"]
    assert (inputs["accounts"], inputs["regions"]) == (4, 2)
    assert (inputs["archive_days"], inputs["ia_days"], inputs["glacier_days"]) == (400, 30, 120)
    assert inputs["data_events"] is True
    # the command line overrides the config
    doc = cost_json("--config", str(listed), "--events-per-day", "1000", "--regions", "5", "--no-data-events")
    assert (doc["inputs"]["regions"], doc["inputs"]["data_events"]) == (5, False)


def test_an_invalid_config_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("governed_regions: [us-gov-west-1]\n", encoding="utf-8")
    res = cost("--config", str(bad), "--events-per-day", "1000")
    assert res.exit_code == 2
    assert "partition not supported yet" in res.stderr
    assert f"trailguard validate-config {bad}" in res.stderr
    assert "Traceback" not in res.output
