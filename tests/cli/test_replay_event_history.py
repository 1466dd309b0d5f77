"""``replay --event-history``: the account's Event History judged like a log file, before anything is deployed.

The reader itself (paging, the 2-requests-per-second bucket, retries, regions) is tested with botocore's Stubber
in test_event_history.py; here the command's wiring: what it asks the reader for and what it does with the events.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cli_helpers import bare
from typer.testing import CliRunner

from trailguard.cli import _load_commands, app
from trailguard.commands import replay as replay_cmd
from trailguard.event_history import EventHistoryError, RegionProgress

_load_commands()
runner = CliRunner()
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_cmd, "_now", lambda: NOW)


def test_event_history_events_are_judged_and_gate_the_exit_code(
    monkeypatch: pytest.MonkeyPatch, stop_logging_example: dict[str, Any]
) -> None:
    asked: dict[str, Any] = {}

    def fake(session: Any, *, since: datetime, until: datetime | None, regions: Any, on_progress: Any) -> Any:
        asked.update(since=since, until=until, regions=regions)
        recent = (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        yield ("event-history:us-east-1", 1, {**bare(stop_logging_example), "eventTime": recent})
        on_progress(RegionProgress("us-east-1", windows_done=30, windows_total=30, events=1, done=True))

    monkeypatch.setattr(replay_cmd, "iter_event_history", fake)
    res = runner.invoke(app, ["replay", "--event-history", "--since", "30d", "--regions", "us-east-1, eu-west-1",
                              "--fail-on", "high"])  # fmt: skip
    assert res.exit_code == 3, res.output
    assert "cloudtrail-stop-logging" in res.stdout
    assert asked["regions"] == ["us-east-1", "eu-west-1"]
    assert "event history: us-east-1: 1 events" in res.stderr  # not a terminal: one line per finished region
    assert asked["until"] is None
    assert asked["since"] == NOW - timedelta(days=30)


def test_event_history_defaults_to_seven_days_of_every_enabled_region(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: dict[str, Any] = {}

    def fake(session: Any, *, since: datetime, until: datetime | None, regions: Any, on_progress: Any) -> Any:
        asked.update(since=since, regions=regions)
        return iter(())

    monkeypatch.setattr(replay_cmd, "iter_event_history", fake)
    res = runner.invoke(app, ["replay", "--event-history"])
    assert res.exit_code == 0, res.output
    assert asked["regions"] == "all"
    assert asked["since"] == NOW - timedelta(days=7)


def test_an_event_history_failure_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(session: Any, **_: Any) -> Any:
        raise EventHistoryError("--since: Event History keeps 90 days; use the archive (trailguard replay DIR)")
        yield  # pragma: no cover

    monkeypatch.setattr(replay_cmd, "iter_event_history", fake)
    res = runner.invoke(app, ["replay", "--event-history", "--since", "120d"])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        "error: --since: Event History keeps 90 days; use the archive (trailguard replay DIR)"
    ]


@pytest.mark.parametrize("args", [[], ["--event-history", "some.jsonl"]])
def test_paths_or_event_history_exactly_one(args: list[str]) -> None:
    res = runner.invoke(app, ["replay", *args])
    assert res.exit_code == 2
    assert "--event-history" in res.stderr
