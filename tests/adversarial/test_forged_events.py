"""Finding 1: forged events must neither pre-claim a real event nor pass as CloudTrail.

Attacker: an admin of one member account (or any principal that can put events on the central bus,
invoke the engine or write to the archive). Each test plays the attack against the moto world.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from reliability_world import (
    ATTACKER,
    MEMBER,
    FakeContext,
    World,
    ct_record,
    emf_metrics,
    envelope,
    is_logging,
    make_trail,
    stop_logging_record,
)
from trailguard_engine import handler
from trailguard_engine.catalog import load_catalog
from trailguard_engine.matcher import PatternIndex

RULE = "cloudtrail-stop-logging"
OTHER_MEMBER = "999988887777"


def _engine(payload: Any) -> dict[str, Any]:
    return handler.handler(payload, FakeContext())


def _decoy(w: World) -> str:
    """A second trail in the member account, logging: the forged copy names it, so it is 'already safe'."""
    w.client("s3").create_bucket(Bucket="decoy-logs")
    ct = w.client("cloudtrail")
    arn = str(ct.create_trail(Name="decoy", S3BucketName="decoy-logs")["TrailARN"])
    ct.start_logging(Name=arn)
    return arn


def _forged_copy(real: dict[str, Any], trail: str) -> dict[str, Any]:
    """Same eventID (and everything else) as ``real``, but it names another trail."""
    forged = copy.deepcopy(real)
    forged["requestParameters"] = {"name": trail}
    return forged


def test_a_forged_copy_handled_first_does_not_pre_claim_the_real_event(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reproduces the review: the decoy copy first, then the real StopLogging of org-trail."""
    make_trail(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")
    real = stop_logging_record()
    forged = _forged_copy(real, _decoy(world))
    capsys.readouterr()

    decoy = _engine({"trailguard_rule": RULE, "event": envelope(forged)})
    assert decoy["findings"][0]["status"] == "already_safe"
    out = _engine({"trailguard_rule": RULE, "event": envelope(real)})

    assert out["findings"][0]["duplicate"] is False, "the forged copy pre-claimed the real event"
    assert out["findings"][0]["status"] == "remediated"
    assert is_logging(world)
    assert emf_metrics(capsys.readouterr().out)[("EventIdMismatches", RULE)] == 1
    mismatch = [b for _, b in world.alerts() if b.get("alert") == "event_id_mismatch"]
    assert len(mismatch) == 1
    assert mismatch[0]["event_id"] == real["eventID"] and mismatch[0]["account"] == MEMBER
    assert mismatch[0]["digests"]["first"] != mismatch[0]["digests"]["this"]


def test_a_forged_copy_does_not_hide_the_real_event_from_the_log_file_path(world: World) -> None:
    """The forged copy came first; the real event is only in the log file: it is alerted, not 'AlreadyHandled'."""
    make_trail(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")
    real = stop_logging_record()
    _engine({"trailguard_rule": RULE, "event": envelope(_forged_copy(real, _decoy(world)))})
    world.alerts()
    world.discard()
    world.put_log_file([real])
    assert world.run_reconcile(world.drain()) == {"batchItemFailures": []}
    assert [p["trailguard_rule"] for p in world.engine_fn.invocations] == [RULE]
    alerts = world.alerts()
    kinds = sorted(b.get("alert") or b["action"]["status"] for _, b in alerts)
    assert kinds == ["alerted", "event_id_mismatch"]


def test_the_same_copy_twice_is_a_duplicate_not_a_mismatch(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    make_trail(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")
    real = stop_logging_record()
    first = envelope(real)
    again = {**envelope(real), "id": "another-envelope-id"}  # EventBridge retry: new envelope, same record
    capsys.readouterr()
    assert _engine({"trailguard_rule": RULE, "event": first})["findings"][0]["status"] == "remediated"
    assert _engine({"trailguard_rule": RULE, "event": again})["findings"][0]["duplicate"] is True
    assert emf_metrics(capsys.readouterr().out)[("EventIdMismatches", RULE)] == 0


@pytest.mark.parametrize(
    ("source", "detail_type"),
    [
        ("custom.attacker", "AWS API Call via CloudTrail"),
        ("aws", "AWS API Call via CloudTrail"),
        (None, "AWS API Call via CloudTrail"),
        ("aws.cloudtrail", "Attacker Event"),
        ("aws.cloudtrail", None),
        (["aws.cloudtrail"], "AWS API Call via CloudTrail"),
    ],
    ids=["custom-source", "bare-aws", "no-source", "custom-detail-type", "no-detail-type", "source-list"],
)
def test_envelopes_that_are_not_cloudtrail_are_rejected(
    world: World, capsys: pytest.CaptureFixture[str], source: Any, detail_type: Any
) -> None:
    """A custom event dressed as CloudTrail (PutEvents on the bus, a direct invoke) never acts."""
    make_trail(world)
    world.client("cloudtrail").stop_logging(Name="org-trail")
    env = envelope(stop_logging_record())
    env["source"], env["detail-type"] = source, detail_type
    capsys.readouterr()
    out = _engine({"trailguard_rule": RULE, "event": env})
    assert out["rejected"] is True
    assert not is_logging(world)
    assert world.ops("cloudtrail", "StartLogging") == 0
    assert emf_metrics(capsys.readouterr().out)[("RejectedEvents", "")] == 1


def test_every_rule_admits_only_aws_sources() -> None:
    """No catalog pattern matches a custom event (PutEvents cannot use an ``aws.`` source)."""
    rules = load_catalog()
    index = PatternIndex((r.event_pattern, r) for r in rules)
    for rule in rules:
        for example in rule.examples_positive:
            forged = {**example, "source": "custom.attacker"}
            matched = {r.id for r in index.match(forged)}
            assert rule.id not in matched, f"{rule.id} matches an event whose source is not aws.*"
            assert json.dumps(rule.event_pattern).find('"source"') != -1


def test_a_root_lookalike_custom_event_matches_nothing() -> None:
    """``root-activity`` had no source condition: a custom event with a Root identity raised a CRITICAL alert."""
    rules = load_catalog()
    index = PatternIndex((r.event_pattern, r) for r in rules)
    rec = ct_record("iam", "CreateUser", {"userName": "x"})
    rec["userIdentity"] = {"type": "Root", "arn": f"arn:aws:iam::{MEMBER}:root", "accountId": MEMBER}
    forged = {**envelope(rec), "source": "custom.attacker"}
    assert [r.id for r in index.match(forged)] == []
    assert "root-activity" in {r.id for r in index.match(envelope(rec))}


def test_a_flood_of_unique_events_is_capped_per_source_account(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Many unique risky events from one account: alerts stop at the budget; another account is still heard."""
    world.set_runtime(alerts_per_account_per_hour=5)
    world.set_mode(RULE, "alert")
    capsys.readouterr()
    for i in range(12):
        rec = ct_record("cloudtrail", "StopLogging", {"name": f"trail-{i}"}, principal=ATTACKER)
        _engine({"trailguard_rule": RULE, "event": envelope(rec)})
    other = ct_record("cloudtrail", "StopLogging", {"name": "t"}, account=OTHER_MEMBER)
    _engine({"trailguard_rule": RULE, "event": envelope(other)})
    metrics = emf_metrics(capsys.readouterr().out, dimension="account")
    alerts = world.alerts()
    from_member = [b for _, b in alerts if b.get("where", {}).get("account") == MEMBER or b.get("account") == MEMBER]
    budget = [b for _, b in alerts if b.get("alert") == "alert_budget_exhausted"]
    assert len([b for b in from_member if b.get("alert") is None]) == 5
    assert len(budget) == 1 and budget[0]["account"] == MEMBER
    assert metrics[("AlertsSuppressed", MEMBER)] == 7
    assert any(b.get("where", {}).get("account") == OTHER_MEMBER for _, b in alerts), "the other account was muted"
