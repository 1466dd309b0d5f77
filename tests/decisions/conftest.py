"""Helpers for unit tests of decision functions: build CloudTrail events and run one rule's decision."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
OTHER = "444455556666"

ROLE = {
    "type": "AssumedRole",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/mallory",
    "accountId": ACCOUNT,
    "sessionContext": {
        "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/Admin", "userName": "Admin"}
    },
}
USER = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT, "userName": "alice"}
ROOT = {"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}


def event(
    name: str,
    request: Any = None,
    response: Any = None,
    *,
    identity: Mapping[str, Any] | None = None,
    source: str = "ec2.amazonaws.com",
    **detail: Any,
) -> CloudTrailEvent:
    record = {
        "eventName": name,
        "eventSource": source,
        "eventType": "AwsApiCall",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "sourceIPAddress": "203.0.113.10",
        "userIdentity": dict(identity if identity is not None else ROLE),
        "requestParameters": request,
        "responseElements": response,
        "eventID": "e0000000-0000-4000-8000-00000000beef",
        **detail,
    }
    return CloudTrailEvent(
        {"detail-type": "AWS API Call via CloudTrail", "account": ACCOUNT, "region": "us-east-1", "detail": record}
    )


Run = Callable[..., Assessment]


@pytest.fixture
def ev() -> Callable[..., CloudTrailEvent]:
    """The :func:`event` builder, as a fixture (test modules do not import conftest)."""
    return event


@pytest.fixture
def run() -> Run:
    """``run(rule_id, event, cfg=None)``: the rule's decision function applied to ``event``."""
    rules = rules_by_id()

    def _run(rule_id: str, ev: CloudTrailEvent, cfg: RuntimeConfig | None = None) -> Assessment:
        rule = rules[rule_id]
        return registry()[rule.decision](ev, rule, cfg or RuntimeConfig())

    return _run
