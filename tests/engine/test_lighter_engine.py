"""Issue 19 (engine): fewer AWS calls per remediation, with the same safety.

* exemption tags are read only when an exemption by tag is configured, and one read serves the remediation too;
* the forged-copy claim and the idempotency record are one ``TransactWriteItems``; a duplicate still acts once,
  a forged copy is still alarmed and judged, a delivery while another is acting is retried, not run.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3
import pytest
from engine_world import REGION, TABLE, World, ct_event, rule_for
from test_engine_remediations import remediate
from test_trail_lifecycle import _trail
from trailguard_engine import handler
from trailguard_engine.state import STATUS_IN_PROGRESS, Idempotency, IdempotencyInProgress, record_id

RULE_ACTION = "start_logging"


def _calls(world: World) -> Counter[str]:
    return Counter(f"{service}:{op}" for _kind, service, op in world.calls)


def test_a_remediation_without_tag_exemption_reads_no_tags_for_it(world: World) -> None:
    _ct, arn = _trail(world, "app-trail")
    world.set_runtime(trailguard_trail={"arn": arn}, exemptions={"resource_tags": {}})  # own trail: no stack check
    world.calls.clear()
    finding = remediate(world, RULE_ACTION, ct_event("cloudtrail", "StopLogging", {"name": arn}))
    assert finding["status"] == "remediated", finding
    calls = _calls(world)
    assert calls["cloudtrail:ListTags"] == 0
    # one transaction (claim + idempotency), the rate-limit claim, the completion, the alert budget
    assert calls["dynamodb:TransactWriteItems"] == 1
    assert calls["dynamodb:PutItem"] == 0


def test_a_configured_tag_exemption_is_still_honoured(world: World) -> None:
    ct, arn = _trail(world, "app-trail")
    ct.add_tags(ResourceId=arn, TagsList=[{"Key": "team:keep-stopped", "Value": "yes"}])
    ct.stop_logging(Name=arn)
    world.set_runtime(exemptions={"resource_tags": {"team:keep-stopped": "yes"}})
    finding = remediate(world, RULE_ACTION, ct_event("cloudtrail", "StopLogging", {"name": arn}))
    assert finding["status"] == "skipped" and "exempt" in finding["detail"], finding
    assert ct.get_trail_status(Name=arn)["IsLogging"] is False


def test_the_default_tag_exemption_is_read_once_for_exemption_and_stack_check(world: World) -> None:
    ct, arn = _trail(world, "app-trail")  # not trailguard's own trail: start_logging checks its stack tag
    world.calls.clear()
    finding = remediate(world, RULE_ACTION, ct_event("cloudtrail", "StopLogging", {"name": arn}))
    assert finding["status"] == "remediated", finding
    assert _calls(world)["cloudtrail:ListTags"] == 1
    ct.add_tags(ResourceId=arn, TagsList=[{"Key": "trailguard:exempt", "Value": "true"}])
    ct.stop_logging(Name=arn)
    other = ct_event("cloudtrail", "StopLogging", {"name": arn}, event_id="6f1c2c1e-0000-4000-8000-000000000002")
    finding = remediate(world, RULE_ACTION, other)
    assert finding["status"] == "skipped" and "trailguard:exempt=true" in finding["detail"], finding


def test_a_duplicate_delivery_acts_once_and_returns_the_stored_result(world: World) -> None:
    ct, arn = _trail(world, "app-trail")
    env = ct_event("cloudtrail", "StopLogging", {"name": arn})
    first = remediate(world, RULE_ACTION, env)
    ct.stop_logging(Name=arn)  # the second delivery must not act again, whatever the live state
    second = remediate(world, RULE_ACTION, env)
    assert first["duplicate"] is False and second["duplicate"] is True
    assert second["status"] == first["status"] == "remediated"
    assert second["detail"] == first["detail"]
    assert ct.get_trail_status(Name=arn)["IsLogging"] is False
    assert [op for _k, s, op in world.calls if op == "StartLogging"] == ["StartLogging"]


def test_a_forged_copy_is_alarmed_and_judged_on_its_own(world: World) -> None:
    ct, arn = _trail(world, "app-trail")
    env = ct_event("cloudtrail", "StopLogging", {"name": arn}, event_id="6f1c2c1e-0000-4000-8000-000000000001")
    remediate(world, RULE_ACTION, env)
    world.messages()
    ct.stop_logging(Name=arn)
    forged = json.loads(json.dumps(env))
    forged["detail"]["eventTime"] = "2026-10-01T12:00:01Z"
    finding = remediate(world, RULE_ACTION, forged)
    assert finding["duplicate"] is False and finding["status"] == "remediated"
    subjects = [s for s, _m in world.messages()]
    assert any("forged or altered copy of event 6f1c2c1e-0000-4000-8000-000000000001" in s for s in subjects), subjects


def test_a_delivery_while_another_acts_is_retried_not_run(world: World) -> None:
    ct, arn = _trail(world, "app-trail")
    env = ct_event("cloudtrail", "StopLogging", {"name": arn})
    engine = handler.get_engine()
    assert engine.idempotency is not None
    from trailguard_engine.engine import idempotency_key
    from trailguard_engine.events import CloudTrailEvent, to_envelope

    rule = rule_for(RULE_ACTION, env)
    key = idempotency_key(CloudTrailEvent(to_envelope(env)), rule.id)
    engine.idempotency.begin(key)  # another container holds the event (no in-progress deadline passed)
    world.set_runtime(rule_modes={rule.id: "remediate"})
    with pytest.raises(IdempotencyInProgress):
        world.invoke(env, rule.id)
    assert ct.get_trail_status(Name=arn)["IsLogging"] is False


def test_a_failed_run_gives_the_event_back_and_a_dead_run_is_taken_over(world: World) -> None:
    clock = [1_000_000.0]
    idem = Idempotency(table=TABLE, client=boto3.client("dynamodb", region_name=REGION), clock=lambda: clock[0])
    key = {"account": "1", "eventID": "e", "rule": "r", "digest": "d"}

    def boom() -> dict[str, Any]:
        raise RuntimeError("AWS said no")

    with pytest.raises(RuntimeError):
        idem.once(key, boom)
    assert idem.seen(key) is False  # deleted: Lambda's retry can act
    assert idem.once(key, lambda: {"status": "remediated"}) == ({"status": "remediated"}, True)
    assert idem.once(key, lambda: {"status": "again"}) == ({"status": "remediated"}, False)

    class Ctx:
        def get_remaining_time_in_millis(self) -> int:
            return 1000

    other = {**key, "eventID": "dies"}
    idem.register_context(Ctx())
    idem.begin(other)  # this run dies (timeout): its record stays INPROGRESS with a deadline
    item = boto3.client("dynamodb", region_name=REGION).get_item(TableName=TABLE, Key={"id": {"S": record_id(other)}})
    assert item["Item"]["status"]["S"] == STATUS_IN_PROGRESS
    with pytest.raises(IdempotencyInProgress):
        idem.once(other, lambda: {"status": "x"})
    clock[0] += 2  # past the dead run's deadline
    assert idem.once(other, lambda: {"status": "taken over"}) == ({"status": "taken over"}, True)
