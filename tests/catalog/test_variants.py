"""Bypass classes (issue 14): every rule ships one variant example per bypass class that applies to it.

A variant is a legal spelling of a risky request that a string-matching rule would miss (a CIDR written
another way, a policy URL-encoded, a versioned Lambda API name ...). Each must reach the rule's decision
through both matchers and be judged risky. Which classes *must* apply is derived here from what the rule
selects, so a new rule cannot silently skip a class: a rule that writes a policy must show the policy
encodings and the "request too large" form, a Lambda rule the versioned API names, a WAFv2 rule WAF Classic,
and a rule that judges CIDRs the CIDR spellings.
"""

from __future__ import annotations

from typing import Any

import pytest
from catalog_helpers import RULES, moto_matches
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.matcher import matches
from trailguard_engine.model import Rule
from trailguard_engine.runtime_config import RuntimeConfig

from trailguard.catalog_schema import VariantModel

EVALUATOR = Evaluator(RULES, RuntimeConfig())

#: API calls whose request carries a resource or identity policy document (a JSON string that CloudTrail may
#: log as an object, a string or URL-encoded, or omit as too large).
POLICY_WRITING_CALLS = frozenset(
    {
        "PutBucketPolicy",
        "PutUserPolicy",
        "PutGroupPolicy",
        "PutRolePolicy",
        "CreatePolicy",
        "CreatePolicyVersion",
        "UpdateAssumeRolePolicy",
        "CreateRole",
        "PutKeyPolicy",
        "CreateKey",
        "SetQueueAttributes",
        "SetTopicAttributes",
        "SetRepositoryPolicy",
        "PutRegistryPolicy",
        "PutResourcePolicy",
        "PutFileSystemPolicy",
        "SetVaultAccessPolicy",
        "PutAccessPointPolicy",
        "UpdateElasticsearchDomainConfig",
        "UpdateDomainConfig",
        "CreateTopic",
        "CreateQueue",
        "CreateDomain",
        "CreateElasticsearchDomain",
        "PutAccessPointPolicyForObjectLambda",
        "PutMultiRegionAccessPointPolicy",
        "InitiateVaultLock",
        "PutBackupVaultAccessPolicy",
    }
)
#: Decisions that judge CIDR ranges.
CIDR_DECISIONS = frozenset({"sg_ingress_public", "nacl_admin_ports_open"})


def _collect(pattern: Any, key: str) -> set[str]:
    """Every literal (or prefix) value under ``key`` anywhere in a pattern, ``$or`` branches included."""
    out: set[str] = set()
    if isinstance(pattern, dict):
        for k, v in pattern.items():
            if k == key and isinstance(v, list):
                for item in v:
                    if isinstance(item, str):
                        out.add(item)
                    elif isinstance(item, dict):
                        for op in ("prefix", "equals-ignore-case", "wildcard"):
                            if isinstance(item.get(op), str):
                                out.add(item[op])
            else:
                out |= _collect(v, key)
    elif isinstance(pattern, list):
        for item in pattern:
            out |= _collect(item, key)
    return out


def required_classes(rule: Rule) -> set[str]:
    """The bypass classes that apply to ``rule`` by what it selects (a floor: rules may declare more)."""
    names = _collect(rule.event_pattern, "eventName")
    sources = _collect(rule.event_pattern, "eventSource")
    need: set[str] = set()
    writes_policy = any(n in POLICY_WRITING_CALLS or n.rstrip("0123456789v") in POLICY_WRITING_CALLS for n in names)
    if writes_policy and not rule.matches_failed_calls:  # a failed call changed nothing: its content is moot
        need |= {"policy-encoding", "request-too-large"}
    if "lambda.amazonaws.com" in sources:
        need.add("api-version-suffix")
    if "wafv2.amazonaws.com" in sources:
        need.add("waf-classic")
    if rule.decision in CIDR_DECISIONS:
        need.add("cidr-semantics")
    return need


VARIANTS = [(r, i, v) for r in RULES for i, v in enumerate(r.examples_variants)]
by_rule = pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)


@by_rule
def test_applicable_bypass_classes_are_declared(rule: Rule) -> None:
    missing = required_classes(rule) - set(rule.bypass_classes)
    assert not missing, f"bypass classes that apply to this rule but have no variant: {sorted(missing)}"


@by_rule
def test_declared_classes_have_variants(rule: Rule) -> None:
    shown = {v["bypass"] for v in rule.examples_variants}
    assert shown == set(rule.bypass_classes), "each declared class needs a variant, and only declared classes"


@pytest.mark.parametrize("rule", [r for r in RULES if r.remediation], ids=lambda r: r.id)
def test_remediating_rules_have_variants(rule: Rule) -> None:
    """A rule that changes live state must prove it cannot be dodged by a legal variant of its request."""
    assert rule.examples_variants, "a rule with a remediation ships variant examples (issue 14)"


@pytest.mark.parametrize(("rule", "i", "variant"), VARIANTS, ids=lambda v: v.id if isinstance(v, Rule) else None)
def test_variant_is_detected(rule: Rule, i: int, variant: dict[str, Any]) -> None:
    VariantModel.model_validate(variant)
    event = variant["event"]
    assert matches(rule.event_pattern, event), f"our matcher misses the {variant['bypass']} variant"
    assert moto_matches(rule.event_pattern, event), f"moto's matcher misses the {variant['bypass']} variant"
    mine = [f for f in EVALUATOR.evaluate(event).findings if f.rule == rule.id]
    assert len(mine) == 1
    assert mine[0].decision in ("alert", "remediate"), mine[0].reason
    if variant.get("expect"):
        assert mine[0].decision == variant["expect"], mine[0].reason


def test_the_meta_test_derives_classes() -> None:
    """The floor is not empty: rules that write policies, Lambda rules and CIDR rules exist and are caught."""
    by_id = {r.id: r for r in RULES}
    assert "policy-encoding" in required_classes(by_id["s3-bucket-policy-public"])
    assert "api-version-suffix" in required_classes(by_id["lambda-permission-public"])
    assert "cidr-semantics" in required_classes(by_id["ec2-security-group-ingress-public"])
