"""StackSets deploying trailguard into member accounts run as ``stacksets-exec-*``: trusted only where a member
admin cannot create such a role (the guardrail SCP is on, and not in the management account).

Attacker: a member-account admin who creates a role named ``stacksets-exec-anything`` and uses it to disable a
forwarding rule, hoping to pass as trailguard's own StackSet deployment.
"""

from __future__ import annotations

from typing import Any

import pytest
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.runtime_config import RuntimeConfig

MEMBER = "111122223333"
OTHER = "444455556666"
MANAGEMENT = "999900001111"
RULE = "eventbridge-rule-tampered"
PROTECTED = RuntimeConfig(stacksets_exec_protected=True, management_account=MANAGEMENT)


def _disable_forwarder(*, account: str, issuer_account: str, role: str) -> dict[str, Any]:
    issuer = f"arn:aws:iam::{issuer_account}:role/{role}"
    return {
        "version": "0",
        "id": "7d3c1f52-5e0e-4a4a-9a55-0c6f3f0b1a11",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.events",
        "account": account,
        "time": "2026-10-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.10",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLE:session",
                "arn": f"arn:aws:sts::{issuer_account}:assumed-role/{role}/session",
                "accountId": issuer_account,
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "arn": issuer, "accountId": issuer_account, "userName": role}
                },
            },
            "eventTime": "2026-10-01T12:00:00Z",
            "eventSource": "events.amazonaws.com",
            "eventName": "DisableRule",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "cloudformation.amazonaws.com",
            "userAgent": "cloudformation.amazonaws.com",
            "requestParameters": {"name": "trailguard-forward-0"},
            "responseElements": None,
            "eventID": "0f8f5f3e-8d0e-4f7e-9d1b-6a3e5c2b1d00",
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
        },
    }


def _decision(cfg: RuntimeConfig, envelope: dict[str, Any]) -> str:
    [finding] = Evaluator(cfg=cfg).evaluate(envelope, only_rule=RULE).findings
    return finding.decision


def test_the_stackset_role_of_a_member_account_is_trailguards_deployment_when_the_scp_protects_it() -> None:
    env = _disable_forwarder(account=MEMBER, issuer_account=MEMBER, role="stacksets-exec-1f2e3d4c5b6a")
    assert _decision(PROTECTED, env) == "skip"


@pytest.mark.parametrize(
    ("cfg", "account", "issuer_account", "role"),
    [
        (RuntimeConfig(), MEMBER, MEMBER, "stacksets-exec-1f2e3d4c5b6a"),  # SCPs off: anyone may name a role so
        (PROTECTED, MANAGEMENT, MANAGEMENT, "stacksets-exec-1f2e3d4c5b6a"),  # SCPs never bind the management account
        (PROTECTED, MEMBER, OTHER, "stacksets-exec-1f2e3d4c5b6a"),  # another account's role
        (PROTECTED, MEMBER, MEMBER, "stacksets-exec-x/extra"),  # not the role-name form
        (PROTECTED, MEMBER, MEMBER, "my-stacksets-exec-1f2e"),
        (PROTECTED, MEMBER, MEMBER, "Admin"),
    ],
    ids=["scps-off", "management-account", "other-account", "path-form", "prefixed-name", "admin"],
)
def test_a_stackset_lookalike_is_still_caught(cfg: RuntimeConfig, account: str, issuer_account: str, role: str) -> None:
    env = _disable_forwarder(account=account, issuer_account=issuer_account, role=role)
    assert _decision(cfg, env) == "alert"


def test_the_runtime_document_turns_the_trust_on_only_with_scps_in_an_organization() -> None:
    from trailguard.config import parse_config

    org = {
        "mode": "organization",
        "organization": {
            "org_id": "o-a1b2c3d4e5",
            "management_account_id": MANAGEMENT,
            "log_archive_account_id": "222222222222",
            "security_tooling_account_id": "333333333333",
            "target_ous": ["r-a1b2"],
        },
    }
    on = RuntimeConfig.from_document(parse_config({**org, "features": {"scps": True}}).runtime_document())
    off = RuntimeConfig.from_document(parse_config(org).runtime_document())
    standalone = RuntimeConfig.from_document(parse_config({}).runtime_document())
    assert (on.stacksets_exec_protected, on.management_account) == (True, MANAGEMENT)
    assert off.stacksets_exec_protected is False
    assert standalone.stacksets_exec_protected is False
