"""A finding its caller class lowered reads live state only where the envelope is well-formed and consistent.

The live check before an IaC alert reads the resource in the event's account and region through the member
role. An envelope whose account or region contradicts the record (``recipientAccountId``, ``awsRegion``), or
that lacks a usable eventID, must not drive that read: the finding stays a plain alert, never a quiet notice.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from trailguard_engine.catalog import RULES_DIR
from trailguard_engine.evaluate import Evaluator

RULE = "ec2-security-group-ingress-public"
TERRAFORM_UA = "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 terraform-provider-aws/5.45.0 aws-sdk-go-v2/1.26.1"


def _iac_event() -> dict[str, Any]:
    doc = json.loads((RULES_DIR / f"{RULE}.json").read_text(encoding="utf-8"))
    event = copy.deepcopy(doc["examples"]["positive"][0])
    event["detail"]["userAgent"] = TERRAFORM_UA
    return event


def _finding(event: dict[str, Any]) -> Any:
    (finding,) = [f for f in Evaluator().evaluate(event).findings if f.rule == RULE]
    return finding


def test_a_consistent_iac_event_gets_the_live_check() -> None:
    finding = _finding(_iac_event())
    assert finding.decision == "alert" and finding.lowered_by_caller


def _victim_account(e: dict[str, Any]) -> None:
    e["account"] = "999988887777"


def _other_region(e: dict[str, Any]) -> None:
    e["region"] = "eu-west-1"


def _bad_event_id(e: dict[str, Any]) -> None:
    e["detail"]["eventID"] = "x"


@pytest.mark.parametrize(
    "tamper", [_victim_account, _other_region, _bad_event_id], ids=["account", "region", "event-id"]
)
def test_a_contradicting_envelope_is_alerted_without_a_live_read(tamper: Any) -> None:
    event = _iac_event()
    tamper(event)
    finding = _finding(event)
    assert finding.decision == "alert"
    assert not finding.lowered_by_caller, "the live check would read in an account or region the record denies"
