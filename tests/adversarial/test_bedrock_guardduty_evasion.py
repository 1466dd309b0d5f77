"""Wave-2 evasion rules (Bedrock, Macie, GuardDuty lists): a member-account admin cannot make them act or hide.

All these rules are alert-only, so the worst a crafted record can do is stay silent. The tries below: forge an IaC
user agent, spell enums and keys in other casings, hide a weakened filter among many strong ones or behind the
PROMPT_ATTACK exemption, send shapes the API would refuse (lists for objects, numbers for strings), and write a
policy in another encoding. Known, documented limits (asserted so a change is noticed): CloudTrail's usual
UpdateGuardrail record carries no policy block, and such a record is skipped, not guessed at.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions.evasion_gaps import guardrail_weakenings, logging_weakenings
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.runtime_config import RuntimeConfig

RULES = rules_by_id()
W4_RULES = (
    "bedrock-guardrail-weakened",
    "bedrock-resource-policy-public",
    "bedrock-invocation-logging-deleted",
    "macie-findings-suppressed",
)
TERRAFORM = "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.68.0"


def _finding(envelope: dict[str, Any], rule_id: str, cfg: RuntimeConfig | None = None) -> Any:
    result = Evaluator(RULES.values(), cfg or RuntimeConfig()).evaluate(envelope, only_rule=rule_id)
    (finding,) = result.findings
    return finding


def _positives(rule_id: str) -> list[dict[str, Any]]:
    return [copy.deepcopy(e) for e in RULES[rule_id].examples_positive]


@pytest.mark.parametrize("rule_id", W4_RULES)
def test_alert_only_even_when_remediate_is_asked(rule_id):
    rule = RULES[rule_id]
    assert rule.remediation is None and rule.default_mode == "alert"
    for env in _positives(rule_id):
        finding = _finding(env, rule_id, RuntimeConfig(rule_modes={rule_id: "remediate"}))
        assert finding.decision == "alert" and finding.action is None


@pytest.mark.parametrize("rule_id", W4_RULES)
def test_forged_iac_user_agent_still_alerts(rule_id):
    for env in _positives(rule_id):
        env["detail"]["userAgent"] = TERRAFORM
        assert _finding(env, rule_id).decision == "alert"


def _guardrail_update() -> dict[str, Any]:
    (env,) = [e for e in _positives("bedrock-guardrail-weakened") if e["detail"]["eventName"] == "UpdateGuardrail"][:1]
    return env


def test_one_weak_filter_hidden_among_strong_ones_is_found():
    env = _guardrail_update()
    filters = [{"type": "HATE", "inputStrength": "HIGH", "outputStrength": "HIGH"}] * 500
    filters = [*filters, {"type": "VIOLENCE", "inputStrength": "HIGH", "outputStrength": "nOnE"}]
    env["detail"]["requestParameters"]["contentPolicyConfig"] = {"filtersConfig": filters}
    finding = _finding(env, "bedrock-guardrail-weakened")
    assert finding.decision == "alert" and "VIOLENCE outputStrength NONE" in finding.reason


@pytest.mark.parametrize("label", ["PROMPT_ATTACK", "prompt_attack"])
def test_prompt_attack_exemption_covers_its_output_only(label):
    # The exemption cannot carry a weakened input, nor another filter's NONE.
    req = {
        "contentPolicyConfig": {
            "filtersConfig": [
                {"type": label, "inputStrength": "NONE", "outputStrength": "NONE"},
                {"type": "HATE", "inputStrength": "HIGH", "outputStrength": "NONE"},
            ]
        }
    }
    found = guardrail_weakenings(req)
    assert any("inputStrength NONE" in f and label in f for f in found)
    assert any("HATE outputStrength NONE" in f for f in found)
    assert not any("outputStrength NONE" in f and label in f for f in found)


@pytest.mark.parametrize(
    "block",
    [
        ["not", "an", "object"],
        {"filtersConfig": "HIDDEN_DUE_TO_SECURITY_REASONS"},
        {"filtersConfig": [1, None, "x", ["nested"], {"type": None, "inputStrength": 7}]},
        {"filtersConfig": {"type": "HATE", "inputStrength": "NONE"}},
    ],
)
def test_odd_shapes_never_crash_and_a_single_object_is_still_read(block):
    found = guardrail_weakenings({"contentPolicyConfig": block})
    if isinstance(block, dict) and isinstance(block.get("filtersConfig"), dict):
        assert found == ["contentPolicyConfig.filtersConfig HATE inputStrength NONE"]
    else:
        assert found == []


def test_known_limit_record_without_policies_is_skipped():
    env = _guardrail_update()
    env["detail"]["requestParameters"] = {
        "guardrailIdentifier": "abc123example",
        "name": "HIDDEN_DUE_TO_SECURITY_REASONS",
    }
    assert _finding(env, "bedrock-guardrail-weakened").decision == "skip"


def test_failed_update_never_fires():
    env = _guardrail_update()
    env["detail"]["errorCode"] = "AccessDeniedException"
    assert (
        Evaluator(RULES.values(), RuntimeConfig()).evaluate(env, only_rule="bedrock-guardrail-weakened").findings == ()
    )


def test_logging_destination_spelled_blank_or_wrong_type_is_no_destination():
    for dest in ({"logGroupName": ""}, {"logGroupName": 5}, {"logGroupName": ["/aws/x"]}, "HIDDEN"):
        assert logging_weakenings({"cloudWatchConfig": dest, "textDataDeliveryEnabled": True}) == [
            "no destination (neither CloudWatch Logs nor S3)"
        ]


def _policy_put() -> dict[str, Any]:
    return _positives("bedrock-resource-policy-public")[0]


@pytest.mark.parametrize("encode", [json.dumps, lambda d: quote(json.dumps(d), safe=""), lambda d: d])
def test_outside_grant_in_any_encoding_alerts(encode):
    env = _policy_put()
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "555566667777"}, "Action": "bedrock:*", "Resource": "*"}
        ],
    }
    env["detail"]["requestParameters"]["resourcePolicy"] = encode(doc)
    finding = _finding(env, "bedrock-resource-policy-public")
    assert finding.decision == "alert" and "555566667777" in finding.reason


def test_recipient_account_cannot_be_borrowed_to_hide_an_outside_grant():
    # The grant names the account a forged recipientAccountId claims as the record's own: the account judged as
    # "ours" is the envelope's (set by EventBridge, not by the caller), so the grant stays outside.
    env = _policy_put()
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "999988887777"}, "Action": "bedrock:*", "Resource": "*"}
        ],
    }
    env["detail"]["requestParameters"]["resourcePolicy"] = json.dumps(doc)
    env["detail"]["recipientAccountId"] = "999988887777"
    result = Evaluator(RULES.values(), RuntimeConfig()).evaluate(env, only_rule="bedrock-resource-policy-public")
    (finding,) = result.findings
    assert finding.decision == "alert" and finding.params["external_accounts"] == ["999988887777"]


# --------------------------------------------------------------------------- #
# GuardDuty trusted lists: the "inactive list" skip cannot be used to slip a trusted list in
# --------------------------------------------------------------------------- #

_GD_TEMPLATE = next(
    e for e in RULES["guardduty-findings-suppressed"].examples_positive if e["detail"]["eventName"] == "CreateIPSet"
)


def _gd(name: str, request: dict[str, Any]) -> dict[str, Any]:
    env = copy.deepcopy(_GD_TEMPLATE)
    env["detail"]["eventName"] = name
    env["detail"]["requestParameters"] = request
    return env


def test_created_inactive_then_activated_fires_on_the_activation():
    req = {"detectorId": "d1", "ipSetId": "s1", "name": "ok", "format": "TXT", "location": "https://x/ips.txt"}
    assert _finding(_gd("CreateIPSet", {**req, "activate": False}), "guardduty-findings-suppressed").decision == "skip"
    assert (
        _finding(
            _gd("UpdateIPSet", {"detectorId": "d1", "ipSetId": "s1", "activate": True}), "guardduty-findings-suppressed"
        ).decision
        == "alert"
    )


@pytest.mark.parametrize("activate", ["0", "no", 0, "", ["false"], {"false": 1}])
def test_only_a_real_false_counts_as_inactive(activate):
    """AWS takes a boolean; any other spelling is not read as 'inactive' (the list may well be active)."""
    req = {"detectorId": "d1", "ipSetId": "s1", "location": "https://x/ips.txt", "activate": activate}
    assert _finding(_gd("UpdateIPSet", req), "guardduty-findings-suppressed").decision == "alert"


def test_threat_list_deleted_alerts_without_remediation():
    env = _gd("DeleteThreatIntelSet", {"detectorId": "d1", "threatIntelSetId": "t1"})
    finding = _finding(
        env, "guardduty-findings-suppressed", RuntimeConfig(rule_modes={"guardduty-findings-suppressed": "remediate"})
    )
    assert finding.decision == "alert" and finding.action is None
