"""Fixtures for the detection/remediation deployment tests (stacks.detection, stacks.member)."""

from __future__ import annotations

import pytest
from trailguard_engine.catalog import load_catalog
from trailguard_engine.model import Rule


@pytest.fixture(scope="session")
def catalog() -> tuple[Rule, ...]:
    rules = load_catalog()
    assert rules, "the catalog is empty"
    return rules
