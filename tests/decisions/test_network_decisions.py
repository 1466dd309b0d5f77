"""Network decisions beyond CIDRs: block public access states, attached groups, prefix-list request shapes."""

from __future__ import annotations

from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"


def judge(rule_id: str, name: str, request: Any, response: Any = None) -> Assessment:
    rule = rules_by_id()[rule_id]
    detail = {
        "eventName": name,
        "eventSource": "ec2.amazonaws.com",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/mallory"},
        "requestParameters": request,
        "responseElements": response,
    }
    event = CloudTrailEvent({"detail-type": "AWS API Call via CloudTrail", "account": ACCOUNT, "detail": detail})
    return registry()[rule.decision](event, rule, RuntimeConfig())


@pytest.mark.parametrize(
    ("name", "request_", "risky"),
    [
        ("DisableSnapshotBlockPublicAccess", {}, True),
        ("DisableImageBlockPublicAccess", {}, True),
        (
            "EnableSnapshotBlockPublicAccess",
            {"EnableSnapshotBlockPublicAccessRequest": {"State": "block-new-sharing"}},
            True,
        ),
        ("EnableSnapshotBlockPublicAccess", {"State": "unblocked"}, True),
        ("EnableSnapshotBlockPublicAccess", {"state": "Block-All-Sharing"}, False),
        (
            "EnableSnapshotBlockPublicAccess",
            {"EnableSnapshotBlockPublicAccessRequest": {"State": "block-all-sharing"}},
            False,
        ),
        ("EnableImageBlockPublicAccess", {"ImageBlockPublicAccessState": "block-new-sharing"}, False),
    ],
)
def test_block_public_access_states(name: str, request_: dict[str, Any], risky: bool) -> None:
    assert judge("ec2-block-public-access-disabled", name, request_).risky is risky


@pytest.mark.parametrize(
    ("name", "request_", "groups"),
    [
        (
            "ModifyInstanceAttribute",
            {"instanceId": "i-1", "groupSet": {"items": [{"groupId": "sg-b"}, {"groupId": "sg-a"}]}},
            ["sg-a", "sg-b"],
        ),
        ("ModifyInstanceAttribute", {"instanceId": "i-1", "groupSet": {"items": {"groupId": "sg-a"}}}, ["sg-a"]),
        (
            "ModifyNetworkInterfaceAttribute",
            {"networkInterfaceId": "eni-1", "groupSet": {"items": [{"groupId": "sg-a"}]}},
            ["sg-a"],
        ),
        ("ModifyInstanceAttribute", {"instanceId": "i-1", "groupSet": {}}, []),
        ("ModifyInstanceAttribute", {"instanceId": "i-1", "userData": "<sensitiveDataRemoved>"}, []),
    ],
)
def test_attached_groups_are_named(name: str, request_: dict[str, Any], groups: list[str]) -> None:
    a = judge("ec2-security-groups-attached", name, request_)
    assert a.risky is bool(groups)
    if groups:
        assert a.params["groups"] == groups and not a.remediable


@pytest.mark.parametrize(
    "request_",
    [
        {"CreateManagedPrefixListRequest": {"PrefixListName": "x", "Entry": [{"Cidr": "0.0.0.0/0"}]}},
        {"CreateManagedPrefixListRequest": {"PrefixListName": "x", "Entry": {"Cidr": "::/0", "tag": 1}}},
        {"PrefixListName": "x", "Entries": [{"cidr": "0.0.0.0/0"}]},  # an unwrapped, camel-cased shape
    ],
)
def test_prefix_list_creation_shapes(request_: dict[str, Any]) -> None:
    a = judge(
        "ec2-prefix-list-world-entry", "CreateManagedPrefixList", request_, {"prefixList": {"prefixListId": "pl-new"}}
    )
    assert a.risky and "pl-new" in a.reason


def test_prefix_list_removals_are_not_additions() -> None:
    req = {"ModifyManagedPrefixListRequest": {"PrefixListId": "pl-1", "RemoveEntry": [{"Cidr": "0.0.0.0/0"}]}}
    assert not judge("ec2-prefix-list-world-entry", "ModifyManagedPrefixList", req).risky
