"""Issue 15 in the engine: a remediation reverted twice stops and names who reverts it; IaC drift alerts once.

Through the handler against moto: the third change of one resource within an hour is not remediated, the
flapping alert names the principals and their caller classes, someone it did not name still gets an alert,
and an IaC pipeline's drift sends one alert per (account, pipeline) and hour.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from engine_world import ATTACKER, MEMBER, REGION, TABLE, World, force_remediate, metric_total, rule_for
from frozen_clock import FROZEN_AT, FrozenClock
from moto import mock_aws
from test_engine_remediations import _sg_rules, open_sg
from trailguard_engine import handler
from trailguard_engine.engine import REVERTS_BEFORE_STOP
from trailguard_engine.state import RateLimiter

PUBLIC_22 = (False, "tcp", 22, 22, "0.0.0.0/0")
BOB = f"arn:aws:iam::{MEMBER}:user/bob"
CAROL = f"arn:aws:iam::{MEMBER}:user/carol"
TERRAFORM_UA = "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.40.0"
PIPELINE = f"Terraform via arn:aws:iam::{MEMBER}:role/Developer"


def _user(arn: str) -> dict[str, Any]:
    return {"type": "IAMUser", "arn": arn, "accountId": MEMBER, "principalId": "AIDAEXAMPLE", "userName": arn[-5:]}


def _change(event: dict[str, Any], n: int, *, identity: dict[str, Any] | None = None, agent: str = "") -> dict:
    """Another delivery of the risky call: a new eventID, made by ``identity``, at the engine's current time."""
    e = copy.deepcopy(event)
    e["detail"]["eventID"] = f"00000000-0000-4000-8000-{n:012d}"
    e["detail"]["responseElements"] = {"_return": True}  # the rule ids change on each reopen: match live
    e["detail"]["eventTime"] = datetime.fromtimestamp(handler.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if identity is not None:
        e["detail"]["userIdentity"] = identity
    if agent:
        e["detail"]["userAgent"] = agent
    return e


def _reopen(ec2: Any, gid: str) -> None:
    if PUBLIC_22 not in _sg_rules(ec2, gid):
        ec2.authorize_security_group_ingress(
            GroupId=gid,
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        )


def _status(out: dict[str, Any]) -> str:
    return str(out["findings"][0]["status"])


# --------------------------------------------------------------------------- #
# Reverted twice: stop, and say who
# --------------------------------------------------------------------------- #


def test_a_remediation_reverted_twice_stops_and_the_flapping_alert_names_who_reverts(world: World) -> None:
    ec2, gid, event, _ = open_sg(world)
    rid = rule_for("revoke_public_sg_ingress", event).id
    force_remediate(world, rule_for("revoke_public_sg_ingress", event))  # default limit: 3 per hour
    statuses = []
    for n, identity in enumerate([None, _user(BOB), _user(BOB)]):  # mallory opens it; bob reverts twice
        statuses.append(_status(world.invoke(_change(event, n, identity=identity), rid)))
        _reopen(ec2, gid)
    assert REVERTS_BEFORE_STOP == 2
    assert statuses == ["remediated", "remediated", "skipped"]
    assert PUBLIC_22 in _sg_rules(ec2, gid)  # the second revert stays: alert only until the hour has passed
    msgs = world.messages()
    [flap] = [b for _, b in msgs if b.get("alert") == "flapping"]
    assert flap["remediated_then_reverted"] == 2
    assert flap["limit"] == 2
    assert flap["reverted_by"] == [
        {"principal": BOB, "caller": "human", "changes": 2},  # bob's first revert was remediated; this is his second
        {"principal": ATTACKER, "caller": "unknown", "changes": 1},
    ]
    assert flap["principal"] == BOB and flap["caller"] == "human"
    assert BOB in flap["detail"] and "(human)" in flap["detail"]
    assert flap["paused_until"] == "2026-10-01T13:30:00Z"  # an hour after the first remediation
    assert len(msgs) == 3  # two remediations and the flapping alert


def test_while_paused_a_principal_the_alert_did_not_name_gets_an_alert_and_the_named_do_not(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    ec2, gid, event, _ = open_sg(world)
    rule = rule_for("revoke_public_sg_ingress", event)
    force_remediate(world, rule, max_actions_per_resource_per_hour=1)
    assert _status(world.invoke(_change(event, 0), rule.id)) == "remediated"
    _reopen(ec2, gid)
    assert _status(world.invoke(_change(event, 1), rule.id)) == "skipped"  # mallory again: flapping alert
    assert [b.get("alert") for _, b in world.messages()] == [None, "flapping"]
    assert _status(world.invoke(_change(event, 2, identity=_user(CAROL)), rule.id)) == "skipped"
    [(_, carol)] = world.messages()
    assert carol["who"]["principal"] == CAROL
    assert carol["verdict"] == "alert" and "paused (flapping)" in carol["reason"]
    assert _status(world.invoke(_change(event, 3, identity=_user(CAROL)), rule.id)) == "skipped"
    assert _status(world.invoke(_change(event, 4), rule.id)) == "skipped"
    assert world.messages() == []  # both already named this hour
    assert metric_total(capsys.readouterr().out, "RateLimited") == 4


def test_remediation_resumes_an_hour_after_the_actions_not_at_the_next_hour_of_the_day(world: World) -> None:
    ec2, gid, event, _ = open_sg(world)
    rule = rule_for("revoke_public_sg_ingress", event)
    force_remediate(world, rule, max_actions_per_resource_per_hour=1)
    clock = handler.clock
    assert isinstance(clock, FrozenClock)
    clock.now = FROZEN_AT + 29 * 60 + 59  # 12:59:59
    assert _status(world.invoke(_change(event, 0), rule.id)) == "remediated"
    _reopen(ec2, gid)
    clock.advance(2)  # 13:00:01: a fixed hourly window would have allowed another action here
    assert _status(world.invoke(_change(event, 1), rule.id)) == "skipped"
    clock.advance(3600 - 2)  # 13:59:59: exactly 3600 s after the action, still inside the window
    assert _status(world.invoke(_change(event, 2), rule.id)) == "skipped"
    clock.advance(1)
    assert _status(world.invoke(_change(event, 3), rule.id)) == "remediated"
    assert PUBLIC_22 not in _sg_rules(ec2, gid)


# --------------------------------------------------------------------------- #
# IaC drift: one alert per (account, pipeline) and hour
# --------------------------------------------------------------------------- #


def _iac_world(world: World) -> tuple[Any, str, dict[str, Any], str]:
    ec2, gid, event, _ = open_sg(world)
    rid = rule_for("revoke_public_sg_ingress", event).id
    world.set_runtime(rule_modes={rid: "alert"})
    return ec2, gid, event, rid


def test_iac_drift_sends_one_alert_per_pipeline_and_hour_naming_the_pipeline(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    _ec2, _gid, event, rid = _iac_world(world)
    outs = [world.invoke(_change(event, n, agent=TERRAFORM_UA), rid) for n in range(3)]
    assert [_status(o) for o in outs] == ["alerted", "suppressed", "suppressed"]
    assert all(PIPELINE in o["findings"][0]["detail"] for o in outs)
    [(_, body)] = world.messages()
    assert body["caller"] == {"kind": "iac", "why": "Terraform user agent", "pipeline": PIPELINE}
    assert PIPELINE in body["action"]["detail"]
    assert len(world.findings()) == 1  # Security Hub too
    assert metric_total(capsys.readouterr().out, "IacDriftSuppressed", rule=rid) == 2
    # The next hour of the day: one alert again.
    assert isinstance(handler.clock, FrozenClock)
    handler.clock.advance(3600)
    assert _status(world.invoke(_change(event, 3, agent=TERRAFORM_UA), rid)) == "alerted"


def test_iac_de_duplication_never_holds_back_another_callers_alert(world: World) -> None:
    _ec2, _gid, event, rid = _iac_world(world)
    assert _status(world.invoke(_change(event, 0, agent=TERRAFORM_UA), rid)) == "alerted"
    assert _status(world.invoke(_change(event, 1), rid)) == "alerted"  # mallory, no IaC agent
    assert _status(world.invoke(_change(event, 2, identity=_user(BOB)), rid)) == "alerted"  # a human
    other_role = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{MEMBER}:assumed-role/Other/x",
        "accountId": MEMBER,
        "principalId": "AROAOTHER:x",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{MEMBER}:role/Other"}},
    }
    out = world.invoke(_change(event, 3, identity=other_role, agent=TERRAFORM_UA), rid)
    assert _status(out) == "alerted"  # another principal is another pipeline key
    assert len(world.messages()) == 4


def test_the_iac_marker_lets_a_more_severe_alert_through() -> None:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        clock = FrozenClock()
        limiter = RateLimiter(table=TABLE, client=ddb, clock=clock)
        sent = [limiter.first_iac_alert(MEMBER, PIPELINE, rank) for rank in (3, 3, 2, 5, 5, 4)]
        assert sent == [True, False, False, True, False, False]
        assert limiter.first_iac_alert(MEMBER, "stack-b", 1)  # another pipeline
        assert limiter.first_iac_alert("999988887777", PIPELINE, 1)  # another account
        clock.advance(3600)
        assert limiter.first_iac_alert(MEMBER, PIPELINE, 1)  # the next hour
