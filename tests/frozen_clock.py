"""A clock for tests: the engine's time only moves when a test moves it.

The engine reads the time of day through one seam (``trailguard_engine.handler.clock``); the
rate limiter's hourly windows depend on it. With the wall clock, a long test that crosses HH:00
starts a new window half-way and sees twice the allowed actions. Every moto world pins it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

#: 2026-10-01T12:30:00Z: half an hour from either window boundary, and half an hour after the
#: example events (catalog examples and test records happen at 2026-10-01T12:00Z), so they are
#: recent enough to act on (the engine's event-age limit is one hour by default).
FROZEN_AT = datetime(2026, 10, 1, 12, 30, tzinfo=UTC).timestamp()


@dataclass
class FrozenClock:
    now: float = FROZEN_AT

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
