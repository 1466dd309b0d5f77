"""Engine test fixtures (the moto world lives in engine_world.py so tests can import its helpers)."""

from __future__ import annotations

from engine_world import capture_logs, world

__all__ = ["capture_logs", "world"]
