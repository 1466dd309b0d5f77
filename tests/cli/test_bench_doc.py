"""The rows ``make bench`` writes to docs/benchmarks.md say what was measured (issue 19: honest benchmarks)."""

from __future__ import annotations

from typing import Any

from cli_helpers import load_bench


def _cold_start(handlers: dict[str, float]) -> dict[str, Any]:
    return {
        "samples": 15,
        "boto3_import_s": 0.150,
        "budget": 1.2,
        "handlers": {m: {"import_s": s, "ratio": s / 0.150} for m, s in handlers.items()},
    }


def test_every_lambda_entry_point_gets_its_own_cold_start_row() -> None:
    main = load_bench("__main__")
    cold_start = load_bench("cold_start")
    figures = _cold_start({m: 0.150 + 0.01 * i for i, m in enumerate(cold_start.HANDLERS)})
    rows = main.cold_start_lines(figures)
    assert len(rows) == len(cold_start.HANDLERS) >= 5
    for row, mod in zip(rows, cold_start.HANDLERS, strict=True):
        assert f"`import {mod}`" in row
        assert "<= 1.2x" in row
    assert "| 1.27x |" in rows[-1]  # 0.19 s against 0.15 s: each row carries its own ratio


def test_hunt_and_retro_name_the_jobs_their_replay_baseline_ran_with() -> None:
    main = load_bench("__main__")
    run = {"seconds": 1.0, "cpu_seconds": 1.0, "max_rss_mb": 90.0}
    hunt = {
        "query": "principal-summary",
        "repeat": 3,
        "target": 1.5,
        "replay_jobs": 2,
        "rows": [{"records": 20_000, "results": {"hunt": run, "replay": run}, "ratio": 1.0}],
        "pruning": {"files": 100, "gzip_bytes": 1e6, "filter": "--since X"},
    }
    assert "`replay --json DIR --jobs 2` on the same files" in main.hunt_lines(hunt)[0]
    hunt["replay_jobs"] = None  # a checkout whose replay has no --jobs
    assert "`replay --json DIR` on the same files" in main.hunt_lines(hunt)[0]


def test_the_baseline_jobs_are_every_core_when_replay_has_the_option(monkeypatch: Any) -> None:
    replay = load_bench("replay")
    monkeypatch.setattr(replay, "supports_jobs", lambda: True)
    monkeypatch.setattr(replay.os, "cpu_count", lambda: 6)
    assert replay.baseline_jobs() == 6
    assert replay.replay_cmd(replay.Path("d"), replay.baseline_jobs())[-2:] == ["--jobs", "6"]
    monkeypatch.setattr(replay, "supports_jobs", lambda: False)
    assert replay.baseline_jobs() is None
