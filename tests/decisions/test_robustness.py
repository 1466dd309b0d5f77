"""Decision functions of the exposure and identity rules never raise on odd input, and their examples behave."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.matcher import matches
from trailguard_engine.model import Assessment
from trailguard_engine.runtime_config import RuntimeConfig

RULE_IDS = (
    "s3-block-public-access-removed",
    "s3-account-block-public-access-removed",
    "s3-bucket-acl-public",
    "s3-bucket-policy-public",
    "ec2-security-group-ingress-public",
    "nacl-admin-ports-open",
    "ebs-snapshot-public",
    "ami-public",
    "rds-snapshot-public",
    "rds-cluster-snapshot-public",
    "ec2-block-public-access-disabled",
    "lambda-permission-public",
    "lambda-function-url-auth-none",
    "root-activity",
    "root-access-key-created",
    "root-console-login",
    "iam-user-console-login-without-mfa",
    "mfa-device-deactivated",
    "iam-admin-policy-attached",
    "iam-inline-policy-admin",
    "iam-role-trust-opened",
    "iam-login-profile-for-other-user",
    "iam-access-key-for-other-user",
    "sts-federation-token-by-iam-user",
    "rolesanywhere-trust-anchor-created",
    "iam-identity-provider-created",
    "iam-user-created",
)
ODD: tuple[Any, ...] = (None, 7, "x", "", [], {}, [None, 1, "a"], True, {"items": "x"})
FIELDS = ("requestParameters", "responseElements", "userIdentity", "additionalEventData")


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from paths(v, (*prefix, i))


def replaced(detail: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(detail)
    if not path:
        return out
    cur: Any = out
    for step in path[:-1]:
        cur = cur[step]
    cur[path[-1]] = value
    return out


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_decision_never_raises_on_mutated_examples(rule_id):
    rule = rules_by_id()[rule_id]
    fn = registry()[rule.decision]
    cfg = RuntimeConfig(org_id="o-abc123")
    calls = 0
    for example in rule.examples_positive:
        detail = example["detail"]
        for field in FIELDS:
            for path in paths(detail.get(field), (field,)):
                for value in ODD:
                    env = {**example, "detail": replaced(detail, path, value)}
                    a = fn(CloudTrailEvent(env), rule, cfg)
                    assert isinstance(a, Assessment), (path, value)
                    assert a.reason, (path, value)
                    if a.remediable and a.risky and rule.remediation is not None:
                        # whatever the event looked like, a remediable verdict must aim the remediation
                        assert a.params, (path, value, a)
                    calls += 1
    assert calls > 50


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_examples_match_pattern_and_decide(rule_id):
    rule = rules_by_id()[rule_id]
    evaluator = Evaluator()
    assert rule.examples_positive
    assert rule.examples_negative
    for example in rule.examples_positive:
        assert matches(rule.event_pattern, example)
        finding = next(f for f in evaluator.evaluate(example).findings if f.rule == rule_id)
        assert finding.decision != "skip", finding.reason
        if finding.decision == "remediate":
            assert rule.remediation is not None
            assert finding.action == rule.remediation.action
            assert finding.params
    for example in rule.examples_negative:
        # issue 14: a broad pattern may select a negative; its decision must then skip it
        assert all(f.decision == "skip" for f in evaluator.evaluate(example).findings if f.rule == rule_id)


@pytest.mark.parametrize("rule_id", [r for r in RULE_IDS if "console-login" in r])
def test_signin_rules_accept_both_detail_type_spellings(rule_id):
    spellings = set(rules_by_id()[rule_id].event_pattern["detail-type"])
    assert spellings == {"AWS Console Sign In via CloudTrail", "AWS Console Signin via CloudTrail"}


def test_remediation_params_follow_the_contract():
    rules = rules_by_id()
    expected = {
        "restore_bucket_public_access_block": {"bucket"},
        "make_bucket_acl_private": {"bucket"},
        "remove_public_bucket_policy_statements": {"bucket", "public_statements"},
        "revoke_public_sg_ingress": {"group_id", "rule_ids", "offending"},
        "make_snapshot_private": {"snapshot_id"},
        "make_ami_private": {"image_id"},
        "make_db_snapshot_private": {"snapshot_id"},
        "make_db_cluster_snapshot_private": {"snapshot_id"},
        "deactivate_root_access_key": {"access_key_id"},
        "detach_admin_policy": {"principal_type", "principal_name", "policy_arn"},
    }
    cfg = RuntimeConfig()
    seen = set()
    for rule_id in RULE_IDS:
        rule = rules[rule_id]
        if rule.remediation is None:
            continue
        seen.add(rule.remediation.action)
        for example in rule.examples_positive:
            a = registry()[rule.decision](CloudTrailEvent(example), rule, cfg)
            if a.remediable:
                assert set(a.params) == expected[rule.remediation.action], rule_id
    assert seen == set(expected)
