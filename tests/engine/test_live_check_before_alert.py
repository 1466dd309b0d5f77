"""Issue 15: a finding lowered to an alert by its caller class reads the live state before alerting.

An IaC change that is benign by live state (a bucket that is not public now, a port the group's allow
tag covers) is ``skipped`` with the reason, sends only the low-severity notice every skipped risky
event gets (never an alert) and does not use up the pipeline's hourly alert; a risk that is there alerts as before; a check that fails alerts with the error. The check is
read-only: every member call it makes is recorded by a botocore ``before-call`` hook and must be a read.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from engine_world import ATTACKER, MEMBER, World, ct_event, force_remediate, metric_total, rule_for
from test_engine_remediations import _sg_rules
from test_intended_exposure_engine import _bucket, _delete_bpa, _group, _open, _policy
from trailguard_engine.remediations import s3 as s3_remediations

TERRAFORM_UA = "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.40.0"
PIPELINE = "Terraform via " + ATTACKER.replace(":sts:", ":iam:").replace("assumed-role/", "role/").rsplit("/", 1)[0]
_READS = ("Get", "Describe", "List", "Head")


def _iac(event: dict[str, Any]) -> dict[str, Any]:
    """The same call as made by a Terraform pipeline (a user agent: caller class iac, alert only)."""
    e = copy.deepcopy(event)
    e["detail"]["userAgent"] = TERRAFORM_UA
    e["detail"]["eventID"] = str(uuid.uuid4())
    return e


def _writes(world: World) -> list[tuple[str, str]]:
    """Every member-account call that is not a read (AssumeRole is how the engine gets in)."""
    return [(s, o) for s, o in world.member_calls() if not o.startswith(_READS) and (s, o) != ("sts", "AssumeRole")]


def _notice_only(world: World) -> dict[str, Any]:
    """The one message sent: a low-severity notice saying the live state is benign, not an alert."""
    [(subject, body)] = world.messages()
    assert body["severity"] == "LOW", (subject, body)
    assert "live state benign" in str(body)
    assert [f["Severity"]["Label"] for f in world.findings()] in ([], ["LOW"])
    return body


def _run(world: World, action: str, event: dict[str, Any]) -> dict[str, Any]:
    rule = rule_for(action, event)
    force_remediate(world, rule)  # the rule remediates: only the caller class lowers it to an alert
    world.messages()  # drain the set-up
    world.calls.clear()
    [finding] = world.invoke(event, rule.id)["findings"]
    return finding


def test_iac_delete_bpa_on_a_private_bucket_is_skipped_with_a_notice_and_writes_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = _bucket(world, "stack-assets")
    event = _iac(_delete_bpa(s3, "stack-assets"))
    finding = _run(world, "restore_bucket_public_access_block", event)
    assert finding["decision"] == "alert" and finding["caller"] == "iac", finding
    assert finding["status"] == "skipped", finding
    assert "not public now" in finding["detail"]
    assert _notice_only(world)["caller"]["kind"] == "iac"
    assert world.member_calls(), "the live check read nothing"
    assert _writes(world) == []
    assert metric_total(capsys.readouterr().out, "LiveStateBenign", rule=finding["rule"]) == 1


def test_the_check_runs_in_dry_run_too(world: World) -> None:
    s3 = _bucket(world, "dry-assets")
    event = _iac(_delete_bpa(s3, "dry-assets"))
    world.set_runtime(dry_run=True)
    rule = rule_for("restore_bucket_public_access_block", event)
    world.set_runtime(rule_modes={rule.id: "remediate"})
    [finding] = world.invoke(event, rule.id)["findings"]
    assert finding["status"] == "skipped", finding
    assert _writes(world) == []


def test_iac_delete_bpa_on_a_bucket_public_by_policy_alerts(world: World) -> None:
    s3 = _bucket(world, "stack-public")
    event = _iac(_delete_bpa(s3, "stack-public"))
    _policy(s3, "stack-public", "s3:GetObject")
    finding = _run(world, "restore_bucket_public_access_block", event)
    assert finding["status"] == "alerted", finding
    [(_, body)] = world.messages()
    assert body["caller"]["kind"] == "iac"
    assert _writes(world) == []


def test_a_benign_event_does_not_use_up_the_pipelines_hourly_alert(world: World) -> None:
    """Old order (de-dup first) would have spent the pipeline's one alert on the private bucket."""
    s3 = _bucket(world, "quiet")
    benign = _iac(_delete_bpa(s3, "quiet"))
    assert _run(world, "restore_bucket_public_access_block", benign)["status"] == "skipped"
    _notice_only(world)
    s3p = _bucket(world, "loud")
    risky = _iac(_delete_bpa(s3p, "loud"))
    _policy(s3p, "loud", "s3:GetObject")
    finding = _run(world, "restore_bucket_public_access_block", risky)
    assert finding["status"] == "alerted", finding
    assert PIPELINE in finding["detail"]
    [(_, body)] = world.messages()
    assert body["severity"] == "HIGH"


def test_iac_sg_rule_on_a_port_the_tag_allows_is_skipped(world: World) -> None:
    ec2, gid, _ = _group(world, {"trailguard:allow-public-ports": "51820/udp"})
    before, event = _open(ec2, gid, [("udp", 51820)])
    finding = _run(world, "revoke_public_sg_ingress", _iac(event))
    assert finding["status"] == "skipped", finding
    assert "intended exposure" in finding["detail"]
    _notice_only(world)
    assert _writes(world) == []
    assert (False, "udp", 51820, 51820, "0.0.0.0/0") in _sg_rules(ec2, gid)
    assert before <= _sg_rules(ec2, gid)


def test_iac_sg_rule_on_port_22_alerts_and_revokes_nothing(world: World) -> None:
    ec2, gid, _ = _group(world, {"trailguard:allow-public-ports": "51820/udp"})
    _, event = _open(ec2, gid, [("tcp", 22)])
    finding = _run(world, "revoke_public_sg_ingress", _iac(event))
    assert finding["status"] == "alerted", finding
    assert len(world.messages()) == 1
    assert _writes(world) == []
    assert (False, "tcp", 22, 22, "0.0.0.0/0") in _sg_rules(ec2, gid)


def test_a_check_that_fails_alerts_with_the_error(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*_: Any, **__: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetBucketPolicyStatus")

    monkeypatch.setattr(s3_remediations, "bucket_exposure", denied)
    s3 = _bucket(world, "denied")
    event = _iac(_delete_bpa(s3, "denied"))
    finding = _run(world, "restore_bucket_public_access_block", event)
    assert finding["status"] == "alerted", finding
    assert "live check failed" in finding["detail"] and "AccessDenied" in finding["detail"]
    [(_, body)] = world.messages()
    assert "AccessDenied" in str(body)


def test_findings_that_alert_for_another_reason_are_not_checked(world: World) -> None:
    """Rule mode alert: the operator wants every such event alerted, benign live state or not."""
    s3 = _bucket(world, "alert-mode")
    event = _iac(_delete_bpa(s3, "alert-mode"))
    rule = rule_for("restore_bucket_public_access_block", event)
    world.set_runtime(rule_modes={rule.id: "alert"})
    world.messages()
    world.calls.clear()
    [finding] = world.invoke(event, rule.id)["findings"]
    assert finding["status"] == "alerted", finding
    assert world.member_calls() == []  # no live read at all
    assert len(world.messages()) == 1


def test_human_callers_still_go_through_the_remediation(world: World) -> None:
    s3 = _bucket(world, "human")
    event = ct_event("s3", "DeleteBucketPublicAccessBlock", {"bucketName": "human"}, account=MEMBER)
    s3.delete_public_access_block(Bucket="human")
    finding = _run(world, "restore_bucket_public_access_block", event)
    assert finding["decision"] == "remediate", finding
    assert finding["status"] == "already_safe", finding
