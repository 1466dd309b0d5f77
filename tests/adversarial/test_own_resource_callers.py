"""No caller class lowers the action on trailguard's own resources.

Attacker: an admin of one member account (or of the trail account) who stops trailguard's own trail, or
tampers with its rules, with a Terraform user agent, through their own CloudFormation stack, or with
``invokedBy`` set. Caller classes exist so that trailguard does not fight the organization's pipelines on
*their* resources; on trailguard's own trail and tooling the deployment pipeline is recognised by exact ARN
(``deployment_role_arns``), so a forgeable caller class must not turn a restart into an alert.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from trailguard_engine.catalog import RULES_DIR
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
OWN_TRAIL = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/trailguard-org-trail"
OTHER_TRAIL = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/team-trail"
TERRAFORM_UA = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.45.0 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1"
)
CFG = RuntimeConfig(deployed_trail={"arn": OWN_TRAIL})


def _example(rule_id: str, index: int = 0) -> dict[str, Any]:
    doc = json.loads((RULES_DIR / f"{rule_id}.json").read_text(encoding="utf-8"))
    return copy.deepcopy(doc["examples"]["positive"][index])


def _as_terraform(event: dict[str, Any]) -> dict[str, Any]:
    event["detail"]["userAgent"] = TERRAFORM_UA
    return event


def _via_cloudformation(event: dict[str, Any]) -> dict[str, Any]:
    event["detail"]["userIdentity"]["invokedBy"] = "cloudformation.amazonaws.com"
    event["detail"]["userAgent"] = "cloudformation.amazonaws.com"
    return event


def _stop_logging(trail: str, disguise: Any) -> dict[str, Any]:
    event = disguise(_example("cloudtrail-stop-logging"))
    event["detail"]["requestParameters"] = {"name": trail}
    return event


def _finding(evaluator: Evaluator, event: dict[str, Any], rule_id: str) -> Any:
    (finding,) = [f for f in evaluator.evaluate(event).findings if f.rule == rule_id]
    return finding


@pytest.mark.parametrize("disguise", [_as_terraform, _via_cloudformation], ids=["terraform-ua", "own-cfn-stack"])
def test_stopping_trailguards_own_trail_is_remediated_whatever_the_caller_class(disguise: Any) -> None:
    evaluator = Evaluator(cfg=CFG)
    finding = _finding(evaluator, _stop_logging(OWN_TRAIL, disguise), "cloudtrail-stop-logging")
    assert finding.caller is not None and finding.caller.kind == "iac"
    assert finding.decision == "remediate", finding.reason
    assert finding.action == "start_logging"
    assert "trailguard's own trail" in finding.reason


@pytest.mark.parametrize("disguise", [_as_terraform, _via_cloudformation], ids=["terraform-ua", "own-cfn-stack"])
def test_the_same_caller_on_another_trail_is_alerted_not_fought(disguise: Any) -> None:
    # Control: the own-resource rule is what makes the difference, not a broken classifier.
    finding = _finding(Evaluator(cfg=CFG), _stop_logging(OTHER_TRAIL, disguise), "cloudtrail-stop-logging")
    assert finding.decision == "alert", finding.reason
    assert "alert only" in finding.reason


def test_a_trail_named_like_trailguards_in_another_account_gets_no_special_treatment() -> None:
    # A member admin cannot make their own trail "trailguard's" by its name: the deployed ARN is exact.
    lookalike = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/trailguard-org-trail-copy"
    finding = _finding(Evaluator(cfg=CFG), _stop_logging(lookalike, _as_terraform), "cloudtrail-stop-logging")
    assert finding.decision == "alert"


def test_self_protection_rules_are_not_lowered_by_a_terraform_user_agent() -> None:
    # eventbridge-rule-tampered: with the rule switched to remediate, disabling a central rule from a
    # Terraform user agent is still re-enabled (its caller_modes say alert for IaC; self-protection wins).
    cfg = RuntimeConfig(deployed_trail={"arn": OWN_TRAIL}, rule_modes={"eventbridge-rule-tampered": "remediate"})
    evaluator = Evaluator(cfg=cfg)
    plain = _finding(evaluator, _example("eventbridge-rule-tampered"), "eventbridge-rule-tampered")
    disguised = _finding(evaluator, _as_terraform(_example("eventbridge-rule-tampered")), "eventbridge-rule-tampered")
    assert plain.decision == "remediate", plain.reason
    assert disguised.caller is not None and disguised.caller.kind == "iac"
    assert disguised.decision == plain.decision and disguised.action == plain.action
