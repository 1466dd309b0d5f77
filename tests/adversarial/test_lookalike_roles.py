"""Finding 3: the loop guard and the exemptions must not be a way to go unseen.

Attacker: an admin of one member account who names a role like trailguard's (``trailguard-reconcile``,
``trailguard-remediation`` with their own session) or like an exempt pipeline (``stacksets-exec-*``).
"""

from __future__ import annotations

import pytest
from reliability_world import ENGINE, MEMBER, FakeContext, World, envelope, is_logging, make_trail, stop_logging_record
from trailguard_engine import handler
from trailguard_engine.runtime_config import RuntimeConfig

RULE = "cloudtrail-stop-logging"


def _stop_as(principal: str) -> dict:
    return handler.handler(
        {"trailguard_rule": RULE, "event": envelope(stop_logging_record(principal=principal))}, FakeContext()
    )


@pytest.mark.parametrize(
    "principal",
    [
        f"arn:aws:sts::{MEMBER}:assumed-role/trailguard-reconcile/mallory",
        f"arn:aws:sts::{MEMBER}:assumed-role/trailguard-engine/trailguard-engine",
        f"arn:aws:sts::{MEMBER}:assumed-role/trailguard-remediation/mallory",
        f"arn:aws:sts::{MEMBER}:assumed-role/TRAILGUARD-REMEDIATION/trailguard-remediation",
        f"arn:aws:iam::{MEMBER}:role/trailguard-reconcile",
    ],
    ids=["member-made-reconcile-role", "member-made-engine-role", "member-role-other-session", "case", "role-arn"],
)
def test_a_lookalike_of_trailguards_roles_is_judged_like_anyone(world: World, principal: str) -> None:
    """Reproduces the review: a member-created ``trailguard-reconcile`` role stopped the trail -> 'loop guard'."""
    make_trail(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")
    out = _stop_as(principal)
    assert "loop guard" not in out["findings"][0]["reason"]
    assert out["findings"][0]["status"] == "remediated"
    assert is_logging(world)


def test_trailguards_own_sessions_are_skipped_with_a_low_severity_notice(world: World) -> None:
    make_trail(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")
    own = f"arn:aws:sts::{MEMBER}:assumed-role/trailguard-remediation/trailguard-remediation"
    out = _stop_as(own)
    assert out["findings"][0]["silenced_by"] == "loop guard"
    assert not is_logging(world)
    [(subject, body)] = world.alerts()
    assert body["severity"] == "LOW" and "loop guard" in body["reason"] and "LOW" in subject


def test_the_engine_roles_count_only_in_the_engine_account() -> None:
    cfg = RuntimeConfig(engine_account=ENGINE)
    assert cfg.is_engine_principal(f"arn:aws:sts::{ENGINE}:assumed-role/trailguard-drift/trailguard-drift", MEMBER)
    assert not cfg.is_engine_principal(f"arn:aws:sts::{MEMBER}:assumed-role/trailguard-drift/x", MEMBER)
    assert not cfg.is_engine_principal(f"arn:aws:sts::{ENGINE}:assumed-role/trailguard-drift-copy/x", ENGINE)
    assert not cfg.is_engine_principal("", MEMBER)
    assert not cfg.is_engine_principal(f"arn:aws:sts::{ENGINE}:assumed-role/trailguard-drift", ENGINE)


def test_an_exempt_pipeline_lookalike_is_not_silent(world: World) -> None:
    """``stacksets-exec-*`` exemption: a member can create such a role. Not acted on, but never silent."""
    world.set_runtime(exemptions={"principal_arn_patterns": ["arn:aws:sts::*:assumed-role/stacksets-exec-*/*"]})
    make_trail(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")
    out = _stop_as(f"arn:aws:sts::{MEMBER}:assumed-role/stacksets-exec-evil/mallory")
    assert out["findings"][0]["silenced_by"] == "exempt principal"
    [(_subject, body)] = world.alerts()
    assert body["severity"] == "LOW" and "exempt principal" in body["reason"]
    assert body["who"]["principal"].endswith("stacksets-exec-evil/mallory")


def test_a_notice_is_sent_once_per_event(world: World) -> None:
    own = f"arn:aws:sts::{MEMBER}:assumed-role/trailguard-remediation/trailguard-remediation"
    env = envelope(stop_logging_record(principal=own))
    handler.handler({"trailguard_rule": RULE, "event": env}, FakeContext())
    handler.handler({"trailguard_rule": RULE, "event": env}, FakeContext())
    assert len(world.alerts()) == 1
