"""The cost model: one worked example checked by hand, plus argument errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from trailguard.cost import CostInputs, estimate


@pytest.fixture(scope="module")
def cli():
    from trailguard.cli import _load_commands, app

    _load_commands()
    return app


def test_worked_example_matches_hand_arithmetic() -> None:
    # 10 accounts, 2 regions, 10,000 management events per account per day; month = 30.4375 days.
    # m = 10 * 10_000 * 30.4375 = 3,043,750 events; stored bytes = m * 1325 * 0.089 = 358,934,218.75 / month
    # files = 10 * 2 * 288 * 30.4375 = 175,320; digests = 10 * 2 * 24 * 30.4375 = 14,610
    # objects average 2,047 bytes < 128 KiB -> no lifecycle transition; kept 2557 days in Standard:
    #   358,934,218.75 / 2**30 GiB * (2557 / 30.4375) months * 0.023 = 0.645899
    # S3 PUTs: (175,320 + 14,610) * 0.005 / 1000 = 0.949650
    # KMS: 4 keys * 1.00 + 189,930 / 10,000 * 0.03 = 4.569790
    # EventBridge: 2% of m = 60,875 forwarded * 1.00 / 1e6 = 0.060875
    # Lambda: (60,875 + 175,320 + 730.5) * 0.2 / 1e6
    #         + (60,875*0.2*0.25 + 175,320*0.15 + 730.5*0.5) GB-s * 0.0000133334 = 0.443480
    # SQS: 175,320 * 3 * 0.40 / 1e6 = 0.210384
    # DynamoDB: 182,625 * 0.625 / 1e6 + 60,875 * 0.125 / 1e6 = 0.121750
    # Athena: 100 queries * max(100,000 events/day * 117.925 bytes, 10 MiB) / 2**40 * 5 = 0.005363
    expected = {
        "CloudTrail management events": 0.0,
        "S3 archive storage": 0.645899,
        "S3 requests": 0.949650,
        "KMS": 4.569790,
        "EventBridge cross-account/region events": 0.060875,
        "Lambda": 0.443480,
        "SQS": 0.210384,
        "DynamoDB": 0.121750,
        "Athena": 0.005363,
    }
    est = estimate(CostInputs(accounts=10, regions=2, events_per_day=10_000))
    got = {line.driver: line.usd for line in est.lines}
    assert got.keys() == expected.keys()
    for driver, usd in expected.items():
        assert got[driver] == pytest.approx(usd, abs=2e-6), driver
    assert est.total == pytest.approx(sum(expected.values()), abs=1e-5)
    assert any("128 KiB" in n for n in est.notes)


def test_optional_drivers_appear_only_when_asked() -> None:
    base = CostInputs(accounts=3, regions=2, events_per_day=50_000)
    drivers = {line.driver for line in estimate(base).lines}
    assert not drivers & {"CloudTrail data events", "CloudTrail Insights", "CloudWatch Logs"}
    full = CostInputs(
        accounts=3,
        regions=2,
        events_per_day=50_000,
        data_events=True,
        insights=True,
        cloudwatch_logs=True,
        existing_trail=True,
    )
    lines = {line.driver: line.usd for line in estimate(full).lines}
    # data events default to 4x management: 3 * 200,000 * 30.4375 / 100,000 * 0.10
    assert lines["CloudTrail data events"] == pytest.approx(3 * 200_000 * 30.4375 / 100_000 * 0.10)
    # a second management copy is paid: 3 * 50,000 * 30.4375 / 100,000 * 2.00
    assert lines["CloudTrail management events"] == pytest.approx(3 * 50_000 * 30.4375 / 100_000 * 2.0)
    assert lines["CloudWatch Logs"] > 0 and lines["CloudTrail Insights"] > 0


def test_large_log_files_use_the_lifecycle_tiers() -> None:
    busy = estimate(CostInputs(accounts=1, regions=1, events_per_day=20_000_000))
    storage = next(line for line in busy.lines if line.driver == "S3 archive storage")
    assert "Glacier" in storage.basis
    assert not any("128 KiB" in n for n in busy.notes)


def test_cli_json_and_table(cli) -> None:
    r = CliRunner().invoke(cli, ["cost", "--accounts", "10", "--regions", "2", "--events-per-day", "10000", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["total_usd"] == pytest.approx(7.01, abs=0.01)
    r = CliRunner().invoke(cli, ["cost", "--accounts", "10", "--regions", "2", "--events-per-day", "10000"])
    assert r.exit_code == 0 and "total" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--accounts", "0", "--regions", "1", "--events-per-day", "1"], "--accounts must be at least 1"),
        (["--accounts", "1", "--regions", "99", "--events-per-day", "1"], "--regions must be between 1 and 40"),
        (["--accounts", "1", "--regions", "1", "--events-per-day", "-5"], "--events-per-day must not be negative"),
        (["--accounts", "1", "--regions", "1", "--events-per-day", "1", "--forward-ratio", "2"], "--forward-ratio"),
    ],
)
def test_bad_arguments_get_clear_errors(cli, args: list[str], message: str) -> None:
    r = CliRunner().invoke(cli, ["cost", *args])
    assert r.exit_code == 2
    assert f"error: {message}" in r.output
    assert "Traceback" not in r.output


def test_non_numeric_argument_is_a_usage_error(cli) -> None:
    r = CliRunner().invoke(cli, ["cost", "--accounts", "many", "--regions", "1", "--events-per-day", "1"])
    assert r.exit_code == 2
    assert "Invalid value for '--accounts'" in r.output


# --------------------------------------------------------------------------- #
# Sizing the engine's reserved concurrency (issue 20)
# --------------------------------------------------------------------------- #
def test_reserved_concurrency_follows_littles_law_by_hand() -> None:
    from trailguard.cost import ENGINE_MS_PER_EVENT, HEADROOM, PEAK_TO_AVERAGE, recommend_reserved_concurrency

    # 1,000 accounts x 100,000 events/day x 2% forwarded = 2,000,000 engine events/day = 23.148/s;
    # x10 at peak = 231.48/s; x 0.2 s = 46.30 in flight; x2 headroom = 92.59 -> 93.
    advice = recommend_reserved_concurrency(CostInputs(accounts=1000, regions=17, events_per_day=100_000))
    assert (ENGINE_MS_PER_EVENT, PEAK_TO_AVERAGE, HEADROOM) == (200.0, 10.0, 2.0)
    assert advice.events_per_second == pytest.approx(2_000_000 / 86_400)
    assert advice.in_flight_at_peak == pytest.approx(46.296, abs=1e-3)
    assert advice.recommended == 93
    assert "Little's law" in advice.basis


@pytest.mark.parametrize(
    ("accounts", "events_per_day", "expected"),
    [(10, 10_000, 5), (1, 0, 5), (100_000, 1_000_000, 1000)],  # the floor, no events, the config's ceiling
)
def test_reserved_concurrency_is_clamped_to_the_config_range(accounts: int, events_per_day: int, expected: int) -> None:
    from trailguard.config import EngineSettings
    from trailguard.cost import recommend_reserved_concurrency

    advice = recommend_reserved_concurrency(CostInputs(accounts=accounts, regions=1, events_per_day=events_per_day))
    assert advice.recommended == expected
    EngineSettings(reserved_concurrency=advice.recommended)  # always a value the config accepts


def test_cli_prints_the_recommendation(cli) -> None:
    args = ["cost", "--accounts", "1000", "--regions", "17", "--events-per-day", "100000"]
    r = CliRunner().invoke(cli, [*args, "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)["engine_reserved_concurrency"]
    assert doc["recommended"] == 93 and "minus 100" in doc["note"]
    r = CliRunner().invoke(cli, [*args, "--peak-factor", "20"])
    assert r.exit_code == 0, r.output
    assert "recommended engine.reserved_concurrency: 186" in " ".join(r.output.split())
