"""Engine behaviour end to end through the handler: outputs, safety, idempotency, faults, cross-account."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from engine_world import (
    ENGINE,
    MEMBER,
    REGION,
    TABLE,
    World,
    ct_event,
    force_remediate,
    log_lines,
    metric_total,
    rule_for,
)
from test_engine_remediations import _sg_rules, open_sg
from trailguard_engine import clients, handler
from trailguard_engine.exceptions import AssumeRoleError, RemediationError

PUBLIC_22 = (False, "tcp", 22, 22, "0.0.0.0/0")


def _sg_setup(world: World, **runtime: Any) -> tuple[Any, str, dict[str, Any], str]:
    ec2, gid, event, _ = open_sg(world)
    rule = rule_for("revoke_public_sg_ingress", event)
    force_remediate(world, rule, **runtime)
    return ec2, gid, event, rule.id


def _reopen(ec2: Any, gid: str) -> None:
    ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )


# --------------------------------------------------------------------------- #
# Outputs
# --------------------------------------------------------------------------- #


@pytest.mark.usefixtures("capture_logs")
def test_remediation_sends_sns_and_a_resolved_security_hub_finding(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    _ec2, gid, event, rid = _sg_setup(world, runbook_base_url="https://runbooks.example.com/tg/")
    world.invoke(event, rid)
    [(subject, body)] = world.messages()
    assert len(subject) <= 100
    assert subject.isascii()
    assert "REMEDIATED" in subject
    assert body["who"] == {
        "principal": event["detail"]["userIdentity"]["arn"],
        "principal_type": "AssumedRole",
        "session_issuer": f"arn:aws:iam::{MEMBER}:role/Developer",
        "access_key_id": "ASIAEXAMPLE0000001",
        "source_ip": "203.0.113.10",
        "user_agent": "aws-cli/2.15.0",
    }
    assert body["what"]["event_name"] == "AuthorizeSecurityGroupIngress"
    assert body["where"] == {
        "account": MEMBER,
        "region": REGION,
        "resource": {"type": "AWS::EC2::SecurityGroup", "id": gid},
    }
    assert body["rule"] == rid
    assert body["verdict"] == "remediate"
    assert body["action"]["name"] == "revoke_public_sg_ingress"
    assert body["action"]["status"] == "remediated"
    assert len(body["action"]["changes"]) == 2
    assert body["runbook"] == f"https://runbooks.example.com/tg/{rid}.md"
    assert event["detail"]["eventID"] in body["console"]
    [f] = world.findings()
    assert f["Workflow"]["Status"] == "RESOLVED"
    assert f["AwsAccountId"] == ENGINE
    assert f["ProductFields"]["trailguard/account"] == MEMBER
    assert f["Resources"][0]["Type"] == "AwsEc2SecurityGroup"
    assert f["Resources"][0]["Id"] == gid
    out = capsys.readouterr().out
    assert metric_total(out, "Detections", rule=rid) == 1
    assert metric_total(out, "RemediationsSucceeded", account=MEMBER) == 1
    # every log line carries the EventBridge id as correlation id and the CloudTrail eventID
    lines = [line for line in log_lines(out) if "level" in line]
    assert lines
    assert all(line["correlation_id"] == event["id"] for line in lines)
    assert all(line["cloudtrail_event_id"] == event["detail"]["eventID"] for line in lines)


def test_alert_only_rule_sends_new_finding_and_changes_nothing(world: World) -> None:
    ec2, gid, event, rid = _sg_setup(world)
    world.set_runtime(rule_modes={rid: "alert"}, security_hub_findings=True)
    out = world.invoke(event, rid)
    assert out["findings"][0]["status"] == "alerted"
    assert PUBLIC_22 in _sg_rules(ec2, gid)
    [(subject, body)] = world.messages()
    assert body["verdict"] == "alert"
    assert body["action"]["status"] == "alerted"
    assert "ALERT" in subject
    [f] = world.findings()
    assert f["Workflow"]["Status"] == "NEW"
    assert world.member_calls() == []  # alert mode never assumes the member role


def test_security_hub_output_can_be_switched_off(world: World) -> None:
    _ec2, _gid, event, rid = _sg_setup(world, security_hub_findings=False)
    world.invoke(event, rid)
    assert len(world.messages()) == 1
    assert world.findings() == []


# --------------------------------------------------------------------------- #
# Safety
# --------------------------------------------------------------------------- #


def test_failed_call_is_not_acted_on_and_sends_nothing(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    ec2, gid, event, rid = _sg_setup(world)
    event["detail"]["errorCode"] = "Client.UnauthorizedOperation"
    out = world.invoke(event, rid)
    assert out["findings"][0]["decision"] == "skip"
    assert PUBLIC_22 in _sg_rules(ec2, gid)
    assert world.messages() == []
    assert world.member_calls() == []
    assert metric_total(capsys.readouterr().out, "FindingsSkipped", rule=rid) == 1


def test_loop_guard_ignores_the_engines_own_role(world: World) -> None:
    ec2, gid, event, rid = _sg_setup(world)
    own = ct_event(
        "ec2",
        "AuthorizeSecurityGroupIngress",
        event["detail"]["requestParameters"],
        event["detail"]["responseElements"],
        principal=f"arn:aws:sts::{MEMBER}:assumed-role/trailguard-remediation/trailguard-remediation",
    )
    out = world.invoke(own, rid)
    assert out["findings"][0]["decision"] == "skip"
    assert "loop guard" in out["findings"][0]["reason"]
    assert PUBLIC_22 in _sg_rules(ec2, gid)
    # never acted on, never silent either: one low-severity notice (a look-alike role must not hide)
    [(subject, body)] = world.messages()
    assert "LOW" in subject and body["severity"] == "LOW"
    assert "loop guard" in body["reason"]
    assert world.member_calls() == []


def test_exempt_tag_is_read_live_and_prevents_action(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    ec2, gid, event, rid = _sg_setup(world)
    ec2.create_tags(Resources=[gid], Tags=[{"Key": "trailguard:exempt", "Value": "true"}])
    out = world.invoke(event, rid)
    assert out["findings"][0]["status"] == "skipped"
    assert "trailguard:exempt=true" in out["findings"][0]["detail"]
    assert PUBLIC_22 in _sg_rules(ec2, gid)
    assert ("ec2", "RevokeSecurityGroupIngress") not in world.member_calls()
    assert metric_total(capsys.readouterr().out, "RemediationsSkipped", rule=rid) == 1


@pytest.mark.usefixtures("capture_logs")
def test_dry_run_changes_nothing_and_logs_the_would_do(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    ec2, gid, event, rid = _sg_setup(world, dry_run=True)
    out = world.invoke(event, rid)
    assert out["findings"][0]["status"] == "dry_run"
    assert PUBLIC_22 in _sg_rules(ec2, gid)
    assert world.member_calls() == []
    captured = capsys.readouterr().out
    would = [line for line in log_lines(captured) if "would_do" in line]
    assert would
    assert would[0]["would_do"]["action"] == "revoke_public_sg_ingress"
    assert would[0]["would_do"]["params"]["group_id"] == gid
    assert metric_total(captured, "DryRuns", rule=rid) == 1
    [(subject, body)] = world.messages()
    assert "DRY RUN" in subject
    assert body["action"]["status"] == "dry_run"


def test_duplicate_event_id_acts_exactly_once(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    ec2, gid, event, rid = _sg_setup(world)
    first = world.invoke(event, rid)
    assert first["findings"][0]["status"] == "remediated"
    assert first["findings"][0]["duplicate"] is False
    _reopen(ec2, gid)  # if the duplicate acted, this rule would disappear again
    again = dict(event, id="another-delivery-of-the-same-call")
    second = world.invoke(again, rid)
    assert second["findings"][0]["duplicate"] is True
    assert second["findings"][0]["status"] == "remediated"  # the stored result of the first run
    assert PUBLIC_22 in _sg_rules(ec2, gid)
    assert [c for c in world.member_calls() if c[1] == "RevokeSecurityGroupIngress"] == [
        ("ec2", "RevokeSecurityGroupIngress")
    ]
    assert len(world.messages()) == 1
    assert metric_total(capsys.readouterr().out, "Duplicates", rule=rid) == 1


def test_rate_limit_stops_acting_and_sends_one_flapping_alert(world: World) -> None:
    ec2, gid, event, rid = _sg_setup(world, max_actions_per_resource_per_hour=2)
    statuses = []
    for i in range(4):
        e = json.loads(json.dumps(event))
        e["detail"]["eventID"] = f"00000000-0000-4000-8000-00000000000{i}"
        e["detail"]["responseElements"] = {"_return": True}  # the rule id changes on each reopen: match live
        statuses.append(world.invoke(e, rid)["findings"][0]["status"])
        if PUBLIC_22 not in _sg_rules(ec2, gid):
            _reopen(ec2, gid)
    assert statuses == ["remediated", "remediated", "skipped", "skipped"]
    assert PUBLIC_22 in _sg_rules(ec2, gid)  # the third reopen stays: remediation is paused for this resource
    msgs = world.messages()
    flapping = [b for s, b in msgs if b.get("alert") == "flapping"]
    assert len(flapping) == 1
    assert flapping[0]["limit"] == 2
    assert gid in flapping[0]["resource"]
    assert len(msgs) == 3  # two remediations + one flapping alert; rate-limited events send nothing of their own


# --------------------------------------------------------------------------- #
# Faults
# --------------------------------------------------------------------------- #


def _throttle_revokes(monkeypatch: pytest.MonkeyPatch, times: int) -> dict[str, int]:
    """A failing moto endpoint: the first ``state["times"]`` RevokeSecurityGroupIngress calls are throttled.

    The error is raised inside moto's EC2 backend, so botocore sees a real
    ``RequestLimitExceeded`` response and applies its own retry policy.
    """
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.security_groups import SecurityGroupBackend

    state = {"seen": 0, "times": times}
    real = SecurityGroupBackend.revoke_security_group_ingress

    def revoke(self: Any, *args: Any, **kwargs: Any) -> Any:
        state["seen"] += 1
        if state["seen"] <= state["times"]:
            raise EC2ClientError("RequestLimitExceeded", "Request limit exceeded.")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SecurityGroupBackend, "revoke_security_group_ingress", revoke)
    # keep the test fast: botocore still decides to back off and retry, only the sleep is shortened
    import botocore.retries.standard as std

    monkeypatch.setattr(std.ExponentialBackoff, "delay_amount", lambda self, context: 0.01)
    return state


def test_throttling_on_first_attempts_succeeds_after_retries(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _throttle_revokes(monkeypatch, times=2)
    ec2, gid, event, rid = _sg_setup(world)
    out = world.invoke(event, rid)
    assert out["findings"][0]["status"] == "remediated"
    assert state["seen"] == 3  # two throttled attempts, then success
    assert PUBLIC_22 not in _sg_rules(ec2, gid)


def test_persistent_throttling_alerts_raises_for_the_dlq_and_a_retry_can_act(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _throttle_revokes(monkeypatch, times=1000)
    ec2, gid, event, rid = _sg_setup(world)
    with pytest.raises(RemediationError, match="RequestLimitExceeded"):
        world.invoke(event, rid)
    assert state["seen"] == clients.MAX_ATTEMPTS
    [(subject, body)] = world.messages()
    assert "ACTION FAILED" in subject
    assert body["action"]["status"] == "failed"
    assert metric_total(capsys.readouterr().out, "RemediationsFailed", rule=rid) == 1
    assert PUBLIC_22 in _sg_rules(ec2, gid)
    # the failure released the idempotency record: Lambda's retry of the same event acts
    state["times"] = 0  # the throttling stops
    out = world.invoke(event, rid)
    assert out["findings"][0]["status"] == "remediated"
    assert out["findings"][0]["duplicate"] is False
    assert PUBLIC_22 not in _sg_rules(ec2, gid)


def test_access_denied_on_assume_role_alerts_and_counts(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    inner = clients.new_client

    def new_client(service: str, *, region: str, credentials: dict[str, str] | None = None) -> Any:
        c = inner(service, region=region, credentials=credentials)
        if service == "sts" and credentials is None:
            stub = Stubber(c)
            stub.add_client_error("assume_role", "AccessDenied", "not authorized to perform sts:AssumeRole", 403)
            stub.activate()
        return c

    monkeypatch.setattr(clients, "new_client", new_client)
    ec2, gid, event, rid = _sg_setup(world)
    with pytest.raises(AssumeRoleError, match="AccessDenied"):
        world.invoke(event, rid)
    out = capsys.readouterr().out
    assert metric_total(out, "AssumeRoleFailures", rule=rid) == 1
    assert metric_total(out, "AssumeRoleFailures", account=MEMBER) == 1
    [(_subject, body)] = world.messages()
    assert body["action"]["status"] == "failed"
    assert "AccessDenied" in body["action"]["detail"]
    assert PUBLIC_22 in _sg_rules(ec2, gid)


# --------------------------------------------------------------------------- #
# Cross-account
# --------------------------------------------------------------------------- #


def test_cross_account_acts_in_the_event_account_only(world: World) -> None:
    ec2, gid, event, rid = _sg_setup(world)
    own = boto3.client("ec2", region_name=REGION)  # the engine's account
    vpc = own.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    own_gid = own.create_security_group(GroupName="web", Description="d", VpcId=vpc)["GroupId"]
    _reopen(own, own_gid)
    assert boto3.client("sts", region_name=REGION).get_caller_identity()["Account"] == ENGINE
    world.invoke(event, rid)
    assert PUBLIC_22 not in _sg_rules(ec2, gid)
    assert PUBLIC_22 in _sg_rules(own, own_gid)
    engine = handler.get_engine()
    assert engine.factory.member(MEMBER, REGION).role_arn == f"arn:aws:iam::{MEMBER}:role/trailguard-remediation"
    assert ("sts", "AssumeRole") in [(s, o) for k, s, o in world.calls if k == "engine"]


# --------------------------------------------------------------------------- #
# Input handling
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "StopLogging",
        [1, 2],
        {},
        {"trailguard_rule": "cloudtrail-stop-logging", "event": None},
        {"trailguard_rule": "cloudtrail-stop-logging", "event": {"detail-type": "x", "detail": "nope"}},
        {"trailguard_rule": 7, "event": {}},
        {"trailguard_rule": "no-such-rule", "event": {}},
        {
            "detail-type": "AWS API Call via CloudTrail",
            "detail": {"eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com", "userIdentity": "root"},
        },
    ],
)
def test_bad_input_is_reported_and_counted_never_raised(
    world: World, capsys: pytest.CaptureFixture[str], payload: Any
) -> None:
    out = handler.handler(payload, __import__("engine_world").FakeContext())
    assert out["rejected"] is True
    assert out["reason"]
    assert metric_total(capsys.readouterr().out, "RejectedEvents") == 1
    assert world.messages() == []


def test_bare_envelope_evaluates_every_matching_rule(world: World) -> None:
    ec2, gid, event, rid = _sg_setup(world)
    out = world.invoke(event)  # no trailguard_rule: the engine finds the rules itself
    rules = {f["rule"] for f in out["findings"]}
    assert rid in rules
    assert PUBLIC_22 not in _sg_rules(ec2, gid)


def test_state_table_holds_idempotency_and_rate_items_with_ttl(world: World) -> None:
    _ec2, gid, event, rid = _sg_setup(world)
    world.invoke(event, rid)
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLE)["Items"]
    ids = [i["id"]["S"] for i in items]
    assert any(i.startswith("trailguard#") for i in ids)
    assert any(i.startswith("rate#") and gid in i for i in ids)
    assert all("expiration" in i for i in items)
