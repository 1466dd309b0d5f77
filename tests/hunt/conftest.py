"""Fixtures for the hunt and query tests: a generated CloudTrail log tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudtrail_tree import write_tree


@pytest.fixture(scope="session")
def log_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("hunt-logs"))
