"""Deployed event patterns, read back from the synthesized templates, against the catalog examples."""

from __future__ import annotations

import json
from typing import Any

import pytest
from detection_helpers import central_rule_parts, central_rules, forwarding_rules, moto_matches
from trailguard_engine.matcher import matches
from trailguard_engine.model import Rule
from trailguard_engine.pattern_split import pattern_size, split_pattern

from stacks.detection import RULE_NAME_PREFIX, central_rule_name
from stacks.forwarding import MAX_PATTERN_CHARS, PATTERN_SPLIT_CHARS

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
    deployed = central_rule_parts(synth.templates["TrailguardDetection"])
    problems = []
    for rule in catalog:
        patterns = [part["EventPattern"] for part in deployed[rule.id]]
        for i, ev in enumerate(rule.examples_positive):
            if not any(moto_matches(pattern, ev) for pattern in patterns):
                problems.append(f"{rule.id}: positive example {i} does not match the deployed pattern")
        for i, variant in enumerate(rule.examples_variants):
            if not any(moto_matches(pattern, variant["event"]) for pattern in patterns):
                problems.append(f"{rule.id}: variant {i} ({variant['bypass']}) does not match the deployed pattern")
        for i, ev in enumerate(rule.examples_negative):
            # A negative may reach the engine (broad pattern, the decision skips it); what is deployed must
            # then match it exactly as the catalog pattern does, never more and never less.
            if any(moto_matches(pattern, ev) for pattern in patterns) != matches(rule.event_pattern, ev):
                problems.append(f"{rule.id}: negative example {i}: the deployed parts and the catalog pattern disagree")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("mode", MODES)
def test_rule_state_follows_read_only_flag(
    mode: str, request: pytest.FixtureRequest, catalog: tuple[Rule, ...]
) -> None:
    deployed = central_rule_parts(request.getfixturevalue(mode).templates["TrailguardDetection"])
    for rule in catalog:
        want = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" if rule.read_only_events else "ENABLED"
        assert [part["State"] for part in deployed[rule.id]] == [want] * len(deployed[rule.id]), rule.id


def _render_input(template: str, event: dict[str, Any]) -> Any:
    """What EventBridge sends the target: the reserved variable replaced by the whole event."""
    return json.loads(template.replace("<aws.events.event.json>", json.dumps(event)))


def test_input_transformer_sends_rule_id_and_whole_event(organization: Any, catalog: tuple[Rule, ...]) -> None:
    deployed = central_rule_parts(organization.templates["TrailguardDetection"])
    for rule in catalog:
        for part in deployed[rule.id]:  # every part of a split rule sends the same rule id
            (target,) = part["Targets"]
            transformer = target["InputTransformer"]
            assert "InputPathsMap" not in transformer
            event = rule.examples_positive[0]
            assert _render_input(transformer["InputTemplate"], event) == {"trailguard_rule": rule.id, "event": event}


def test_targets_have_retry_policy_and_kms_dlq(standalone: Any, catalog: tuple[Rule, ...]) -> None:
    tpl = standalone.templates["TrailguardDetection"]
    deployed = central_rule_parts(tpl)
    queues = tpl["Resources"]
    dlq_ids = set()
    for rule in catalog:
        (target,) = deployed[rule.id][-1]["Targets"]  # the last part: the first is checked by name elsewhere
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
            assert pattern_size(f["EventPattern"]) <= PATTERN_SPLIT_CHARS


def _templates_with_rules(synth: Any) -> dict[str, dict[str, Any]]:
    """Every template that deploys EventBridge rules, the member StackSet's body included."""
    out = dict(synth.templates)
    for stack, lid, res in synth.all_resources("AWS::CloudFormation::StackSet"):
        out[f"{stack}/{lid}"] = json.loads(res["Properties"]["TemplateBody"])
    return out


@pytest.mark.parametrize("mode", MODES)
def test_every_deployed_pattern_fits_with_headroom(mode: str, request: pytest.FixtureRequest) -> None:
    """Central rules, forwarding rules, member stacks and StackSet: within the split threshold, so within the quota.

    The threshold (``PATTERN_SPLIT_CHARS``) leaves 448 characters under EventBridge's 2,048 for what
    synth does not control (see its comment in stacks/forwarding.py).
    """
    assert PATTERN_SPLIT_CHARS <= MAX_PATTERN_CHARS - 400
    seen = 0
    too_big = []
    for name, tpl in _templates_with_rules(request.getfixturevalue(mode)).items():
        for lid, res in tpl.get("Resources", {}).items():
            pattern = res.get("Properties", {}).get("EventPattern") if res.get("Type") == "AWS::Events::Rule" else None
            if pattern is None:
                continue
            seen += 1
            compact = len(json.dumps(pattern, separators=(",", ":")))
            if pattern_size(pattern) > PATTERN_SPLIT_CHARS or compact > MAX_PATTERN_CHARS:
                too_big.append(f"{name}/{lid}: {pattern_size(pattern)} characters")
    assert seen > 70
    assert not too_big, "\n".join(too_big)


@pytest.mark.parametrize("mode", MODES)
def test_split_rules_are_deployed_part_by_part(
    mode: str, request: pytest.FixtureRequest, catalog: tuple[Rule, ...]
) -> None:
    """Each part: a deterministic ``tg-<id>[-p<n>]`` name, the same target and state, its exact share of the pattern."""
    tpl = request.getfixturevalue(mode).templates["TrailguardDetection"]
    deployed = central_rule_parts(tpl)
    (permission,) = [
        r["Properties"]
        for r in tpl["Resources"].values()
        if r["Type"] == "AWS::Lambda::Permission"
        and "trailguard-central" in json.dumps(r["Properties"].get("SourceArn"))
    ]
    source_arn = json.dumps(permission["SourceArn"])
    assert f"/{RULE_NAME_PREFIX}*" in source_arn  # one permission for every rule and every part
    split = 0
    for rule in catalog:
        parts = deployed[rule.id]
        want = split_pattern(rule.event_pattern, PATTERN_SPLIT_CHARS)
        assert [p["EventPattern"] for p in parts] == want, rule.id
        names = [p["Name"] for p in parts]
        assert names == [central_rule_name(rule.id, n) for n in range(1, len(want) + 1)]
        assert all(n.startswith(RULE_NAME_PREFIX) and len(n) <= 64 for n in names)
        assert len({json.dumps(p["Targets"], sort_keys=True) for p in parts}) == 1
        assert len({p["State"] for p in parts}) == 1
        if len(parts) > 1:
            split += 1
            assert names[1] == f"{RULE_NAME_PREFIX}{rule.id}-p2"
            assert all(f"(part {n} of {len(parts)})" in p["Description"] for n, p in enumerate(parts, start=1))
            for ev in rule.examples_positive:  # every positive example reaches the engine through some part
                assert any(matches(p["EventPattern"], ev) for p in parts), rule.id
    assert split >= 1, "no catalog rule is split today: failed-critical-action is (1,900+ characters)"


@pytest.mark.parametrize("mode", MODES)
def test_central_bus_stays_within_the_rule_quotas(mode: str, request: pytest.FixtureRequest) -> None:
    """EventBridge quotas per bus: 300 rules (adjustable), 30 rules with wildcard filters (not adjustable).

    Splitting multiplies rules, so a split pattern with a wildcard counts once per part.
    """
    parts = [
        p
        for ps in central_rule_parts(request.getfixturevalue(mode).templates["TrailguardDetection"]).values()
        for p in ps
    ]
    assert len(parts) <= 300
    assert sum('"wildcard"' in json.dumps(p["EventPattern"]) for p in parts) <= 30
