"""Guardrail SCPs: what they deny, to whom, where they attach, and that they fit the SCP size limit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import GUARDRAILS, flat, only, statements

from stacks import names
from stacks.guardrails import SCP_MAX_CHARS, guardrail_policy
from trailguard.config import load_config

EXAMPLE_ORG = Path(__file__).resolve().parents[2] / "config" / "example-organization.yaml"

BREAK_GLASS = {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/security-break-glass"}}


def _scp(organization: Any) -> dict[str, Any]:
    return dict(only(organization.resources(GUARDRAILS, "AWS::Organizations::Policy"))["Properties"])


def test_scp_is_attached_to_the_target_ous(organization: Any) -> None:
    props = _scp(organization)
    assert props["Type"] == "SERVICE_CONTROL_POLICY"
    assert props["TargetIds"] == ["r-a1b2"]


def test_scp_protects_the_org_trail(organization: Any) -> None:
    st = statements(_scp(organization)["Content"])["ProtectOrganizationTrail"]
    assert st["Effect"] == "Deny"
    assert sorted(st["Action"]) == sorted(
        [
            "cloudtrail:StopLogging",
            "cloudtrail:DeleteTrail",
            "cloudtrail:UpdateTrail",
            "cloudtrail:PutEventSelectors",
            "cloudtrail:PutInsightSelectors",
        ]
    )
    assert [flat(r) for r in st["Resource"]] == [
        "arn:${AWS::Partition}:cloudtrail:us-east-1:111111111111:trail/org-trail"
    ]
    assert st["Condition"] == BREAK_GLASS


def test_scp_protects_the_archive_bucket(organization: Any) -> None:
    st = statements(_scp(organization)["Content"])["ProtectArchiveBucket"]
    for action in ("s3:DeleteBucket", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutLifecycleConfiguration"):
        assert action in st["Action"]
    assert "arn:${AWS::Partition}:s3:::trailguard-archive-222222222222-us-east-1" in [flat(r) for r in st["Resource"]]
    assert st["Condition"] == BREAK_GLASS


def test_scp_protects_the_trail_keys(organization: Any) -> None:
    st = statements(_scp(organization)["Content"])
    keys = st["ProtectTrailKeys"]
    assert sorted(keys["Action"]) == ["kms:DisableKey", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"]
    assert keys["Condition"]["ArnNotLike"] == BREAK_GLASS["ArnNotLike"]
    assert keys["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"] == [
        names.TRAIL_KEY_ALIAS,
        names.LOGS_KEY_ALIAS,
        names.LAKE_KEY_ALIAS,
    ]
    # Deleting or repointing the alias first must not open a way around the key statement.
    assert sorted(st["ProtectTrailKeyAliases"]["Action"]) == ["kms:DeleteAlias", "kms:UpdateAlias"]


def test_scp_denies_leaving_the_organization(organization: Any) -> None:
    st = statements(_scp(organization)["Content"])["DenyLeaveOrganization"]
    assert st["Action"] == ["organizations:LeaveOrganization"]
    assert st["Condition"] == BREAK_GLASS


def test_every_scp_statement_is_a_deny_with_the_break_glass_exception(organization: Any) -> None:
    for st in _scp(organization)["Content"]["Statement"]:
        assert st["Effect"] == "Deny"
        assert st["Condition"]["ArnNotLike"] == BREAK_GLASS["ArnNotLike"]


def test_scp_fits_the_size_limit(organization: Any) -> None:
    content = json.dumps(_scp(organization)["Content"], separators=(",", ":"))
    # Intrinsics render longer than the deployed text, so this bound is conservative.
    assert len(content) < SCP_MAX_CHARS


def test_no_guardrails_in_standalone(standalone: Any) -> None:
    assert GUARDRAILS not in standalone.templates


def test_guardrail_policy_follows_the_configured_break_glass_pattern(tmp_path: Path) -> None:
    cfg_file = tmp_path / "org.yaml"
    cfg_file.write_text(EXAMPLE_ORG.read_text().replace("security-break-glass", "incident-admin*"))
    cfg = load_config(cfg_file)
    doc = guardrail_policy(cfg, names.Accounts.for_config(cfg))
    for st in doc["Statement"]:
        assert st["Condition"]["ArnNotLike"] == {"aws:PrincipalArn": "arn:aws:iam::*:role/incident-admin*"}
