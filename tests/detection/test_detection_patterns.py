"""Deployed event patterns, read back from the synthesized templates, against the catalog examples."""

from __future__ import annotations

import json
from typing import Any

import pytest
from detection_helpers import central_rules, forwarding_rules, moto_matches
from trailguard_engine.model import Rule

MODES = ("standalone", "organization")


@pytest.mark.parametrize("mode", MODES)
def test_one_central_rule_per_catalog_rule(
    mode: str, request: pytest.FixtureRequest, catalog: tuple[Rule, ...]
) -> None:
    synth = request.getfixturevalue(mode)
    deployed = central_rules(synth.templates["TrailguardDetection"])
    assert sorted(deployed) == sorted(r.id for r in catalog)


@pytest.mark.parametrize("mode", MODES)
def test_deployed_patterns_match_examples(mode: str, request: pytest.FixtureRequest, catalog: tuple[Rule, ...]) -> None:
    synth = request.getfixturevalue(mode)
    deployed = central_rules(synth.templates["TrailguardDetection"])
    problems = []
    for rule in catalog:
        pattern = deployed[rule.id]["EventPattern"]
        for i, ev in enumerate(rule.examples_positive):
            if not moto_matches(pattern, ev):
                problems.append(f"{rule.id}: positive example {i} does not match the deployed pattern")
        for i, ev in enumerate(rule.examples_negative):
            if moto_matches(pattern, ev):
                problems.append(f"{rule.id}: negative example {i} matches the deployed pattern")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("mode", MODES)
def test_rule_state_follows_read_only_flag(
    mode: str, request: pytest.FixtureRequest, catalog: tuple[Rule, ...]
) -> None:
    deployed = central_rules(request.getfixturevalue(mode).templates["TrailguardDetection"])
    for rule in catalog:
        want = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" if rule.read_only_events else "ENABLED"
        assert deployed[rule.id]["State"] == want, rule.id


def _render_input(template: str, event: dict[str, Any]) -> Any:
    """What EventBridge sends the target: the reserved variable replaced by the whole event."""
    return json.loads(template.replace("<aws.events.event.json>", json.dumps(event)))


def test_input_transformer_sends_rule_id_and_whole_event(organization: Any, catalog: tuple[Rule, ...]) -> None:
    deployed = central_rules(organization.templates["TrailguardDetection"])
    for rule in catalog:
        (target,) = deployed[rule.id]["Targets"]
        transformer = target["InputTransformer"]
        assert "InputPathsMap" not in transformer
        event = rule.examples_positive[0]
        assert _render_input(transformer["InputTemplate"], event) == {"trailguard_rule": rule.id, "event": event}


def test_targets_have_retry_policy_and_kms_dlq(standalone: Any, catalog: tuple[Rule, ...]) -> None:
    tpl = standalone.templates["TrailguardDetection"]
    deployed = central_rules(tpl)
    queues = tpl["Resources"]
    dlq_ids = set()
    for rule in catalog:
        (target,) = deployed[rule.id]["Targets"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 3
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] >= 3600
        dlq_ids.add(target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])
        assert target["Arn"]["Fn::GetAtt"][1] == "Arn"
    (dlq,) = dlq_ids
    assert queues[dlq]["Type"] == "AWS::SQS::Queue"
    assert "KmsMasterKeyId" in queues[dlq]["Properties"]


@pytest.mark.parametrize("mode", MODES)
def test_forwarding_is_superset_of_every_catalog_pattern(
    mode: str, request: pytest.FixtureRequest, catalog: tuple[Rule, ...]
) -> None:
    """Every positive example of every rule is forwarded by a rule in the right state."""
    synth = request.getfixturevalue(mode)
    if mode == "organization":
        body = synth.resources("TrailguardMemberStackSet", "AWS::CloudFormation::StackSet")
        (stackset,) = body.values()
        templates = [json.loads(stackset["Properties"]["TemplateBody"])]
        templates += [t for name, t in synth.templates.items() if name.startswith("TrailguardMember-")]
    else:
        templates = [t for name, t in synth.templates.items() if name.startswith("TrailguardMember-")]
    assert templates
    for tpl in templates:
        fwd = forwarding_rules(tpl)
        assert fwd
        missing = []
        for rule in catalog:
            # An ENABLED rule does not see read-only events: a read-only rule needs a read-only forwarder.
            usable = [
                f
                for f in fwd
                if f["State"] == "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" or not rule.read_only_events
            ]
            for i, ev in enumerate(rule.examples_positive):
                if not any(moto_matches(f["EventPattern"], ev) for f in usable):
                    missing.append(f"{rule.id}: positive example {i} is not forwarded")
        assert not missing, "\n".join(missing)
        assert len(fwd) < len(catalog) or len(catalog) < 4, "the forwarding union is not compact"
        for f in fwd:
            assert len(json.dumps(f["EventPattern"])) <= 2048
