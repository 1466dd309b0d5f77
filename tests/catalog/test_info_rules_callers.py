"""Every change-record rule (severity INFO) leaves out what AWS does on its own and records everyone else.

A service's own identity (``AWSService``) and a session of a service-linked role (IAM reserves the path
``/aws-service-role/``, exactly, for roles only AWS creates) are the service's work, not a change anyone
decided. A role merely named like one, or at a look-alike path, is an ordinary role and is recorded.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from trailguard_engine.catalog import load_catalog
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.runtime_config import RuntimeConfig

#: GPU capacity is recorded whoever launches it: an Auto Scaling group or fleet someone set up launches through
#: the service's role, and what the capacity costs (or mines) does not depend on who pressed the button.
RECORDED_FROM_SERVICE_ROLES = frozenset({"ec2-accelerated-instance-launched"})
RULES = [r for r in load_catalog() if r.severity == "INFO"]
EVALUATOR = Evaluator(tuple(load_catalog()), RuntimeConfig())


def _as(example: dict[str, Any], issuer: str, role: str) -> dict[str, Any]:
    env = copy.deepcopy(example)
    account = env["account"]
    env["detail"]["userIdentity"] = {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLESLR000001:session",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/session",
        "accountId": account,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": issuer, "accountId": account, "userName": role}},
    }
    return env


def _fires(env: dict[str, Any], rule_id: str) -> bool:
    return any(f.rule == rule_id and f.decision != "skip" for f in EVALUATOR.evaluate(env).findings)


def test_there_are_change_record_rules() -> None:
    assert len(RULES) >= 10


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_service_linked_roles_are_not_recorded_and_look_alikes_are(rule: Any) -> None:
    example = rule.examples_positive[0]
    account = example["account"]
    role = "AWSServiceRoleForElasticLoadBalancing"
    real = f"arn:aws:iam::{account}:role/aws-service-role/elasticloadbalancing.amazonaws.com/{role}"
    assert _fires(example, rule.id)
    assert _fires(_as(example, real, role), rule.id) is (rule.id in RECORDED_FROM_SERVICE_ROLES)
    for lookalike in (f"arn:aws:iam::{account}:role/{role}", f"arn:aws:iam::{account}:role/AWS-Service-Role/x/{role}"):
        assert _fires(_as(example, lookalike, role), rule.id), lookalike
