"""Fixtures of the foundation stack tests (helpers live in foundation_helpers.py)."""

from __future__ import annotations

import pytest
from foundation_helpers import EXAMPLE_BREAK_GLASS, Case


@pytest.fixture(params=["standalone", "organization"])
def case(request: pytest.FixtureRequest) -> Case:
    """Both modes: the bare standalone default and the every-feature-on organization example."""
    synth = request.getfixturevalue(request.param)
    if request.param == "organization":
        return Case(synth, True, "222222222222", "111111111111", "o-a1b2c3d4e5", EXAMPLE_BREAK_GLASS)
    acct = "${AWS::AccountId}"
    return Case(synth, False, acct, acct, None, [])
