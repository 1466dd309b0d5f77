"""Issue 20 (6) and 15: the rate limit cannot be doubled at an hour boundary, and IaC de-duplication hides no one.

Attacker: an admin of one member account. (1) They stop the trail at 12:59:59 and again at 13:00:01, over
and over: with fixed hourly windows trailguard acted ``2 * limit`` times within two seconds. It must never
exceed its budget in any 3600 seconds. (2) They set a Terraform user agent to make their changes look like
IaC drift, which is alerted once per pipeline and hour: the first such alert must still go out, a human's
alert on the same account must never be held back by it, and another principal is another pipeline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from frozen_clock import FROZEN_AT, FrozenClock
from reliability_world import MEMBER, FakeContext, World, envelope, is_logging, make_trail, stop_logging_record
from trailguard_engine import handler
from trailguard_engine.engine import REVERTS_BEFORE_STOP

RULE = "cloudtrail-stop-logging"
TERRAFORM_UA = "Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.40.0"
BOUNDARY = FROZEN_AT + 30 * 60  # 13:00:00


def _clock() -> FrozenClock:
    clock = handler.clock
    assert isinstance(clock, FrozenClock)
    return clock


def _stop_and_send(world: World, n: int, **identity: Any) -> str:
    """The attacker stops the trail; the engine gets the event at the engine's current time."""
    world.client("cloudtrail").stop_logging(Name="org-trail")
    rec = stop_logging_record(event_id=f"00000000-0000-4000-8000-{n:012d}")
    rec["eventTime"] = datetime.fromtimestamp(_clock()(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if "agent" in identity:
        rec["userAgent"] = identity["agent"]
    if "user" in identity:
        rec["userIdentity"] = {
            "type": "IAMUser",
            "arn": identity["user"],
            "accountId": MEMBER,
            "principalId": "AIDAEXAMPLE",
            "userName": identity["user"].rsplit("/", 1)[-1],
        }
    if "role" in identity:
        rec["userIdentity"]["arn"] = f"arn:aws:sts::{MEMBER}:assumed-role/{identity['role']}/s"
        rec["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = f"arn:aws:iam::{MEMBER}:role/{identity['role']}"
    out = handler.handler({"trailguard_rule": RULE, "event": envelope(rec)}, FakeContext())
    return str(out["findings"][0]["status"])


@pytest.mark.parametrize("limit", [1, 3])
def test_bursts_on_both_sides_of_every_hour_boundary_never_exceed_the_budget(world: World, limit: int) -> None:
    make_trail(world)
    world.set_runtime(max_actions_per_resource_per_hour=limit, rule_modes={RULE: "remediate"})
    budget = min(limit, REVERTS_BEFORE_STOP)
    clock = _clock()
    acted: list[float] = []
    n = 0
    for hour in range(3):
        for at in (BOUNDARY + hour * 3600 - 1, BOUNDARY + hour * 3600 + 1):  # HH:59:59 and HH+1:00:01
            clock.now = at
            for _ in range(3):
                n += 1
                if _stop_and_send(world, n) == "remediated":
                    acted.append(at)
    assert acted, "trailguard never acted"
    for start in acted:
        assert sum(1 for t in acted if start <= t <= start + 3600) <= budget, acted
    assert not is_logging(world)  # the last stop stays: remediation of the trail is paused, alerted


def test_a_terraform_user_agent_still_gets_its_first_alert_and_hides_no_human(world: World) -> None:
    make_trail(world)
    world.set_runtime(rule_modes={RULE: "alert"})
    assert _stop_and_send(world, 1, agent=TERRAFORM_UA) == "alerted"  # the first one always goes out
    assert _stop_and_send(world, 2, agent=TERRAFORM_UA) == "suppressed"  # the same pipeline, counted
    bodies = [b for _, b in world.alerts()]
    assert len(bodies) == 1 and bodies[0]["caller"]["kind"] == "iac"
    # A human changing the same thing on the same account, right after: never held back.
    assert _stop_and_send(world, 3, user=f"arn:aws:iam::{MEMBER}:user/alice") == "alerted"
    # The same human with a Terraform user agent is another pipeline key: its own first alert.
    assert _stop_and_send(world, 4, agent=TERRAFORM_UA, user=f"arn:aws:iam::{MEMBER}:user/alice") == "alerted"
    # Another role with the same agent: its own alert too.
    assert _stop_and_send(world, 5, agent=TERRAFORM_UA, role="Other") == "alerted"
    assert len(world.alerts()) == 3  # the human, the human with the agent, the other role


def test_a_terraform_user_agent_cannot_buy_silence_for_a_remediable_change(world: World) -> None:
    """At most alert-level: the change is remediated or alerted, never dropped as IaC noise."""
    make_trail(world)
    world.set_runtime(rule_modes={RULE: "remediate"})
    status = _stop_and_send(world, 1, agent=TERRAFORM_UA)
    assert status in ("remediated", "alerted")
    assert len(world.alerts()) == 1
