"""Fixtures for the CLI tests: catalog examples and small log trees written on the fly."""

from __future__ import annotations

from typing import Any

import pytest
from cli_helpers import catalog_examples
from trailguard_engine.catalog import load_catalog


@pytest.fixture(scope="session")
def examples() -> list[tuple[str, str, dict[str, Any]]]:
    return catalog_examples()


@pytest.fixture(scope="session")
def stop_logging_example() -> dict[str, Any]:
    rule = next(r for r in load_catalog() if r.id == "cloudtrail-stop-logging")
    return dict(rule.examples_positive[0])
