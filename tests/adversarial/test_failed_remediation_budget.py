"""Finding 7: failed attempts must neither burn the rate limit nor flood the humans.

Attacker: a member admin who makes one remediation fail (a deny, a throttle storm) so that Lambda's
retries use up the per-resource budget, and the next real change on that resource goes unremediated.
"""

from __future__ import annotations

import pytest
from reliability_world import (
    FakeContext,
    World,
    envelope,
    is_logging,
    make_trail,
    stop_logging_record,
)
from trailguard_engine import handler
from trailguard_engine.clients import MAX_ATTEMPTS
from trailguard_engine.exceptions import RemediationError

RULE = "cloudtrail-stop-logging"
LAMBDA_ATTEMPTS = 3  # an asynchronous invocation: the first try and Lambda's 2 retries


def test_a_failing_event_retried_by_lambda_leaves_the_budget_and_alerts_once(world: World) -> None:
    """Reproduces the review: with 2 retries one failing event used the whole default budget (3)."""
    make_trail(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")
    failing = {"trailguard_rule": RULE, "event": envelope(stop_logging_record())}
    world.fault("cloudtrail", "StartLogging", *["denied-json"] * LAMBDA_ATTEMPTS)
    for _ in range(LAMBDA_ATTEMPTS):
        with pytest.raises(RemediationError):
            handler.handler(failing, FakeContext())
    alerts = world.alerts()
    assert [b["action"]["status"] for _, b in alerts] == ["failed"], "each retry alerted again"

    # The next real StopLogging on the same trail is remediated: the failures used none of the budget.
    world.faults.clear()
    out = handler.handler({"trailguard_rule": RULE, "event": envelope(stop_logging_record())}, FakeContext())
    assert out["findings"][0]["status"] == "remediated"
    assert is_logging(world)


def test_only_changes_count_against_the_budget(world: World) -> None:
    """'Already safe' outcomes change nothing: any number of them leaves the budget whole."""
    world.set_runtime(max_actions_per_resource_per_hour=1)
    make_trail(world)  # logging: every StopLogging event below finds it already safe
    for _ in range(3):
        out = handler.handler({"trailguard_rule": RULE, "event": envelope(stop_logging_record())}, FakeContext())
        assert out["findings"][0]["status"] == "already_safe"
    world.client("cloudtrail").stop_logging(Name="org-trail")
    out = handler.handler({"trailguard_rule": RULE, "event": envelope(stop_logging_record())}, FakeContext())
    assert out["findings"][0]["status"] == "remediated"
    # ...and a change does count: the next one is over the limit of 1.
    world.client("cloudtrail").stop_logging(Name="org-trail")
    out = handler.handler({"trailguard_rule": RULE, "event": envelope(stop_logging_record())}, FakeContext())
    assert out["findings"][0]["status"] == "skipped" and "rate limit" in out["findings"][0]["detail"]


def test_transient_faults_within_one_attempt_still_count_once(world: World) -> None:
    make_trail(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")
    world.fault("cloudtrail", "StartLogging", *["throttle"] * (MAX_ATTEMPTS - 1))
    out = handler.handler({"trailguard_rule": RULE, "event": envelope(stop_logging_record())}, FakeContext())
    assert out["findings"][0]["status"] == "remediated"
    assert [b["action"]["status"] for _, b in world.alerts()] == ["remediated"]
