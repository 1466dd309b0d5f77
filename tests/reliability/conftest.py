"""Fixtures of the reliability tests (the world lives in reliability_world.py so tests can import its helpers)."""

from __future__ import annotations

from reliability_world import world

__all__ = ["world"]
