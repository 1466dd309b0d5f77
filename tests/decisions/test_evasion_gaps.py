"""Unit tests of the wave-2 defense-evasion decisions (decisions/evasion_gaps.py) and the rules extended here."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from trailguard_engine.decisions.evasion_gaps import (
    GUARDRAIL_POLICIES,
    MAX_ENTRIES,
    guardrail_weakenings,
    logging_weakenings,
    policies_logged,
)
from trailguard_engine.intended import IntendedExposure
from trailguard_engine.runtime_config import RuntimeConfig

BEDROCK = "bedrock.amazonaws.com"
ACCOUNT = "111122223333"
EXT = "999988887777"
GARN = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:guardrail/abc123example"
TOO_LARGE = {"reason": "requestParameters too large", "omitted": True}
TYPES = ("HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT")


def strong_filters() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"type": t, "inputStrength": "HIGH", "outputStrength": "MEDIUM"} for t in TYPES]
    out.append({"type": "PROMPT_ATTACK", "inputStrength": "HIGH", "outputStrength": "NONE"})
    return out


def update(**policies: Any) -> dict[str, Any]:
    return {"guardrailIdentifier": GARN, "name": "support-bot", **policies}


# --------------------------------------------------------------------------- #
# Guardrails
# --------------------------------------------------------------------------- #


def test_strong_guardrail_update_is_quiet(run, ev):
    req = update(contentPolicyConfig={"filtersConfig": strong_filters()})
    a = run("bedrock-guardrail-weakened", ev("UpdateGuardrail", req, source=BEDROCK))
    assert not a.risky


def test_prompt_attack_output_none_is_required_by_aws_not_a_weakening():
    filters = [{"type": "prompt_attack", "inputStrength": "HIGH", "outputStrength": "none"}]
    assert guardrail_weakenings(update(contentPolicyConfig={"filtersConfig": filters})) == []


def test_prompt_attack_input_none_is_a_weakening():
    filters = [{"type": "PROMPT_ATTACK", "inputStrength": "NONE", "outputStrength": "NONE"}]
    (why,) = guardrail_weakenings(update(contentPolicyConfig={"filtersConfig": filters}))
    assert "PROMPT_ATTACK inputStrength NONE" in why


@pytest.mark.parametrize("key", ["inputStrength", "outputStrength"])
@pytest.mark.parametrize("spelling", ["NONE", "none", " None "])
def test_filter_strength_none_fires_in_any_casing(run, ev, key, spelling):
    filters = strong_filters()
    filters[2][key] = spelling
    a = run(
        "bedrock-guardrail-weakened",
        ev("UpdateGuardrail", update(contentPolicyConfig={"filtersConfig": filters}), source=BEDROCK),
    )
    assert a.risky and f"SEXUAL {key} NONE" in a.reason
    assert a.resource == {"type": "AWS::Bedrock::Guardrail", "id": GARN}
    assert not a.remediable


@pytest.mark.parametrize(
    ("block", "entry", "expected"),
    [
        (
            "topicPolicyConfig",
            {"topicsConfig": [{"name": "advice", "type": "DENY", "inputEnabled": False}]},
            "inputEnabled false",
        ),
        (
            "topicPolicyConfig",
            {"topicsConfig": [{"name": "advice", "type": "DENY", "outputEnabled": "false"}]},
            "outputEnabled false",
        ),
        ("wordPolicyConfig", {"wordsConfig": [{"text": "secret", "inputAction": "NONE"}]}, "inputAction NONE"),
        (
            "sensitiveInformationPolicyConfig",
            {"piiEntitiesConfig": [{"type": "AWS_SECRET_KEY", "action": "NONE"}]},
            "action NONE",
        ),
        (
            "contextualGroundingPolicyConfig",
            {"filtersConfig": [{"type": "GROUNDING", "threshold": 0.8, "enabled": False}]},
            "enabled false",
        ),
        (
            "contentPolicyConfig",
            {
                "filtersConfig": [
                    {"type": "HATE", "inputStrength": "HIGH", "outputStrength": "HIGH", "outputAction": "none"}
                ]
            },
            "outputAction NONE",
        ),
    ],
)
def test_each_policy_block_is_judged(block, entry, expected):
    found = guardrail_weakenings(update(**{block: entry}))
    assert any(expected in f and block in f for f in found), found


def test_record_without_any_policy_block_is_not_judged(run, ev):
    """CloudTrail's usual UpdateGuardrail record (id and a hidden name only) is not 'every filter removed'."""
    req = {"guardrailIdentifier": "abc123example", "name": "HIDDEN_DUE_TO_SECURITY_REASONS"}
    a = run("bedrock-guardrail-weakened", ev("UpdateGuardrail", req, {"guardrailArn": GARN}, source=BEDROCK))
    assert not a.risky and "nothing to judge" in a.reason
    assert not policies_logged(req) and guardrail_weakenings(req) == []


def test_policy_keys_are_read_case_insensitively():
    req = {
        "GuardrailIdentifier": GARN,
        "ContentPolicyConfig": {"FiltersConfig": [{"Type": "HATE", "InputStrength": "NONE"}]},
    }
    assert guardrail_weakenings(req) == ["contentPolicyConfig.FiltersConfig HATE inputStrength NONE"]


@pytest.mark.parametrize("hidden", ["HIDDEN_DUE_TO_SECURITY_REASONS", None])
def test_hidden_values_are_never_read_as_none(hidden):
    req = update(contentPolicyConfig="HIDDEN_DUE_TO_SECURITY_REASONS")
    assert guardrail_weakenings(req) == []
    filters = [{"type": "HATE", "inputStrength": hidden, "outputStrength": "HIGH"}]
    assert guardrail_weakenings(update(contentPolicyConfig={"filtersConfig": filters})) == []


def test_every_policy_block_counts_as_present():
    for block in GUARDRAIL_POLICIES:
        assert guardrail_weakenings(update(**{block: {}})) == [], block


def test_guardrail_request_too_large_alerts(run, ev):
    a = run("bedrock-guardrail-weakened", ev("UpdateGuardrail", TOO_LARGE, {"guardrailArn": GARN}, source=BEDROCK))
    assert a.risky and "too large" in a.reason and a.resource["id"] == GARN


def test_reasoning_policy_deleted_alerts(run, ev):
    arn = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:automated-reasoning-policy/hr"
    a = run("bedrock-guardrail-weakened", ev("DeleteAutomatedReasoningPolicy", {"policyArn": arn}, source=BEDROCK))
    assert a.risky and a.resource == {"type": "AWS::Bedrock::AutomatedReasoningPolicy", "id": arn}


def test_unselected_call_is_not_judged(run, ev):
    assert not run("bedrock-guardrail-weakened", ev("PutEnforcedGuardrailConfiguration", {}, source=BEDROCK)).risky


def test_a_weakening_after_many_strong_entries_is_found():
    words = [{"text": f"w{i}", "inputAction": "BLOCK"} for i in range(10000)] + [{"text": "x", "inputAction": "NONE"}]
    (why,) = guardrail_weakenings(update(wordPolicyConfig={"wordsConfig": words}))
    assert "x inputAction NONE" in why


def test_walk_is_bounded_and_past_the_bound_is_a_finding():
    filters = [{"type": "HATE", "inputStrength": "HIGH"}] * (MAX_ENTRIES + 1)
    (why,) = guardrail_weakenings(update(contentPolicyConfig={"filtersConfig": filters}))
    assert "not all judged" in why


# --------------------------------------------------------------------------- #
# Invocation logging
# --------------------------------------------------------------------------- #

FULL = {
    "cloudWatchConfig": {"logGroupName": "/aws/bedrock/invocations", "roleArn": "arn:aws:iam::111122223333:role/L"},
    "s3Config": {"bucketName": "bedrock-logs", "keyPrefix": "x"},
    "textDataDeliveryEnabled": True,
    "imageDataDeliveryEnabled": True,
}


def test_full_logging_is_quiet(run, ev):
    a = run(
        "bedrock-invocation-logging-deleted",
        ev("PutModelInvocationLoggingConfiguration", {"loggingConfig": FULL}, source=BEDROCK),
    )
    assert not a.risky


@pytest.mark.parametrize("keep", ["cloudWatchConfig", "s3Config"])
def test_one_destination_is_enough(keep):
    cfg = {k: v for k, v in FULL.items() if k in (keep, "textDataDeliveryEnabled")}
    assert logging_weakenings(cfg) == []


def test_image_delivery_off_alone_is_quiet():
    assert logging_weakenings({**FULL, "imageDataDeliveryEnabled": False, "embeddingDataDeliveryEnabled": False}) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({**FULL, "textDataDeliveryEnabled": False}, "text data delivery off"),
        ({**FULL, "textDataDeliveryEnabled": "FALSE"}, "text data delivery off"),
        ({"textDataDeliveryEnabled": True}, "no destination"),
        (
            {"cloudWatchConfig": {"logGroupName": " "}, "s3Config": {}, "textDataDeliveryEnabled": True},
            "no destination",
        ),
        ({"CloudWatchConfig": {"LogGroupName": ""}, "TextDataDeliveryEnabled": True}, "no destination"),
    ],
)
def test_weakened_logging_fires(run, ev, config, expected):
    a = run(
        "bedrock-invocation-logging-deleted",
        ev("PutModelInvocationLoggingConfiguration", {"loggingConfig": config}, source=BEDROCK),
    )
    assert a.risky and expected in a.reason and not a.remediable


def test_logging_request_too_large_alerts(run, ev):
    a = run(
        "bedrock-invocation-logging-deleted", ev("PutModelInvocationLoggingConfiguration", TOO_LARGE, source=BEDROCK)
    )
    assert a.risky and "too large" in a.reason


def test_unreadable_logging_config_is_quiet(run, ev):
    a = run(
        "bedrock-invocation-logging-deleted",
        ev("PutModelInvocationLoggingConfiguration", {"loggingConfig": "x"}, source=BEDROCK),
    )
    assert not a.risky


def test_delete_still_fires_as_before(run, ev):
    a = run("bedrock-invocation-logging-deleted", ev("DeleteModelInvocationLoggingConfiguration", None, source=BEDROCK))
    assert a.risky and a.resource["type"] == "AWS::Bedrock::ModelInvocationLogging"


# --------------------------------------------------------------------------- #
# Resource policies
# --------------------------------------------------------------------------- #


def policy(principal: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    st: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "bedrock:ApplyGuardrail",
        "Resource": GARN,
    }
    if condition:
        st["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [st]}


def put(run, ev, doc: Any, cfg: RuntimeConfig | None = None):
    req = {"resourceArn": GARN, "resourcePolicy": doc}
    return run("bedrock-resource-policy-public", ev("PutResourcePolicy", req, source=BEDROCK), cfg)


@pytest.mark.parametrize("encode", [lambda d: d, json.dumps, lambda d: quote(json.dumps(d), safe="")])
def test_external_grant_fires_in_every_encoding(run, ev, encode):
    a = put(run, ev, encode(policy({"AWS": f"arn:aws:iam::{EXT}:root"})))
    assert a.risky and EXT in a.reason and a.params["external_accounts"]
    assert a.resource == {"type": "AWS::Bedrock::Guardrail", "id": GARN}


def test_public_fires(run, ev):
    assert put(run, ev, json.dumps(policy("*"))).risky


def test_own_account_is_quiet(run, ev):
    assert not put(run, ev, json.dumps(policy({"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"}))).risky


def test_org_condition_is_quiet(run, ev):
    cfg = RuntimeConfig(org_id="o-a1b2c3d4e5")
    doc = policy("*", {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}})
    assert not put(run, ev, json.dumps(doc), cfg).risky


def test_trusted_or_organization_account_is_quiet(run, ev):
    doc = json.dumps(policy({"AWS": EXT}))
    assert not put(run, ev, doc, RuntimeConfig(organization_accounts=frozenset({ACCOUNT, EXT}))).risky
    assert not put(run, ev, doc, RuntimeConfig(intended=IntendedExposure(trusted_accounts=frozenset({EXT})))).risky


def test_unreadable_or_missing_policy_alerts(run, ev):
    assert put(run, ev, "{not json").risky
    assert put(run, ev, None).risky


def test_policy_request_too_large_alerts(run, ev):
    a = run("bedrock-resource-policy-public", ev("PutResourcePolicy", TOO_LARGE, source=BEDROCK))
    assert a.risky and a.params.get("request_too_large")


# --------------------------------------------------------------------------- #
# Macie ArchiveFindings (macie-findings-suppressed)
# --------------------------------------------------------------------------- #


def test_macie_archive_findings_alerts(run, ev):
    a = run(
        "macie-findings-suppressed", ev("ArchiveFindings", {"findingIds": ["f1", "f2"]}, source="macie2.amazonaws.com")
    )
    assert a.risky and a.resource["id"] == "f1,f2"


def test_macie_noop_filter_still_quiet(run, ev):
    req = {"name": "triage-view", "action": "NOOP", "findingCriteria": {}}
    assert not run("macie-findings-suppressed", ev("CreateFindingsFilter", req, source="macie2.amazonaws.com")).risky


def test_macie_archive_filter_still_fires(run, ev):
    req = {"name": "hide", "action": "archive", "findingCriteria": {}}
    assert run("macie-findings-suppressed", ev("UpdateFindingsFilter", req, source="macie2.amazonaws.com")).risky


def test_macie_archive_findings_condition_does_not_leak_to_filters(run, ev):
    """The ArchiveFindings 'always' condition is scoped to that call: a NOOP filter update stays quiet."""
    req = {"id": "abc", "action": "NOOP"}
    assert not run("macie-findings-suppressed", ev("UpdateFindingsFilter", req, source="macie2.amazonaws.com")).risky


# --------------------------------------------------------------------------- #
# GuardDuty trusted IP lists and threat lists (guardduty-findings-suppressed)
# --------------------------------------------------------------------------- #

GD = "guardduty.amazonaws.com"
DET = "12abc34d567e8fa901bc2d34eexample"


@pytest.mark.parametrize("name", ["CreateIPSet", "UpdateIPSet"])
@pytest.mark.parametrize("activate", [True, "true", None])
def test_active_trusted_list_fires(run, ev, name, activate):
    req = {"detectorId": DET, "ipSetId": "s1", "location": "https://s3.amazonaws.com/b/ips.txt"}
    if activate is not None:
        req["activate"] = activate
    a = run("guardduty-findings-suppressed", ev(name, req, source=GD))
    assert a.risky and a.resource["type"] == "AWS::GuardDuty::IPSet"


@pytest.mark.parametrize("name", ["CreateIPSet", "UpdateIPSet"])
@pytest.mark.parametrize("activate", [False, "false", " FALSE "])
def test_inactive_trusted_list_suppresses_nothing(run, ev, name, activate):
    req = {"detectorId": DET, "ipSetId": "s1", "activate": activate}
    assert not run("guardduty-findings-suppressed", ev(name, req, source=GD)).risky


@pytest.mark.parametrize(
    ("name", "activate", "risky"),
    [
        ("UpdateThreatIntelSet", False, True),
        ("UpdateThreatIntelSet", "False", True),
        ("UpdateThreatIntelSet", True, False),
        ("UpdateThreatIntelSet", None, False),
        ("DeleteThreatIntelSet", None, True),
    ],
)
def test_threat_list_turned_off_fires(run, ev, name, activate, risky):
    req: dict[str, Any] = {"detectorId": DET, "threatIntelSetId": "t1"}
    if activate is not None:
        req["activate"] = activate
    a = run("guardduty-findings-suppressed", ev(name, req, source=GD))
    assert a.risky is risky
    if risky:
        assert a.resource == {"type": "AWS::GuardDuty::ThreatIntelSet", "id": "t1"}
