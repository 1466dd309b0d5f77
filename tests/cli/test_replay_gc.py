"""replay keeps the cyclic garbage collector off its hot loop, and gives it back as it was (issue 19)."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.runtime_config import RuntimeConfig

from trailguard.replay import replay


def test_the_collector_is_paused_during_replay_and_restored_after(stop_logging_example: dict[str, Any]) -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    seen: list[tuple[tuple[int, int, int], int]] = []
    items = [("t", 1, dict(stop_logging_example["detail"]))]
    summary = replay(
        items,
        Evaluator(None, RuntimeConfig()),
        on_result=lambda r: seen.append((gc.get_threshold(), gc.get_freeze_count())),
    )
    assert summary.events == 1
    (during_threshold, during_frozen) = seen[0]
    assert during_threshold[0] > before[0]  # generation-0 collections are rarer in the loop
    assert during_frozen > frozen_before  # the long-lived objects are out of the collector's view
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before


def test_the_collector_is_restored_when_replay_fails(stop_logging_example: dict[str, Any]) -> None:
    before = gc.get_threshold()

    def boom(_: Any) -> None:
        raise RuntimeError("reader went away")

    items = [("t", 1, dict(stop_logging_example["detail"]))]
    with pytest.raises(RuntimeError, match="reader went away"):
        replay(items, Evaluator(None, RuntimeConfig()), on_result=boom)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
