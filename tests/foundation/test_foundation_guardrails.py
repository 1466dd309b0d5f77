"""Guardrail SCP: what it denies, to whom (exact break-glass and deployer ARNs, StackSets), where it attaches, its size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from foundation_helpers import GUARDRAILS, flat, only, statements

from stacks import names
from stacks.guardrails import SCP_MAX_CHARS, GuardrailsStack, guardrail_policy, scp_size
from trailguard.config import load_config, parse_config

EXAMPLE_ORG = Path(__file__).resolve().parents[2] / "config" / "example-organization.yaml"

BREAK_GLASS_ARNS = [
    "arn:aws:iam::111111111111:role/security-break-glass",
    "arn:aws:iam::222222222222:role/security-break-glass",
]
DEPLOYER_ARNS = ["arn:aws:iam::333333333333:role/cdk-hnb659fds-cfn-exec-role-333333333333-us-east-1"]
BREAK_GLASS = {"ArnNotEquals": {"aws:PrincipalArn": BREAK_GLASS_ARNS}}
STACKSETS_EXEC = "arn:${AWS::Partition}:iam::*:role/stacksets-exec-*"


def _scp(organization: Any) -> dict[str, Any]:
    return dict(only(organization.resources(GUARDRAILS, "AWS::Organizations::Policy"))["Properties"])


def _flat_condition(cond: dict[str, Any]) -> dict[str, Any]:
    return {op: {k: [flat(v) for v in as_list(vals)] for k, vals in block.items()} for op, block in cond.items()}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_scp_is_attached_to_the_target_ous(organization: Any) -> None:
    props = _scp(organization)
    assert props["Type"] == "SERVICE_CONTROL_POLICY"
    assert props["TargetIds"] == ["r-a1b2"]


def test_scp_protects_the_org_trail_archive_and_key_aliases(organization: Any) -> None:
    st = statements(_scp(organization)["Content"])["ProtectAuditTrail"]
    assert st["Effect"] == "Deny"
    for action in (
        "cloudtrail:StopLogging",
        "cloudtrail:DeleteTrail",
        "cloudtrail:UpdateTrail",
        "cloudtrail:PutEventSelectors",
        "cloudtrail:PutInsightSelectors",
        "s3:DeleteBucket",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:PutLifecycleConfiguration",
        # Deleting or repointing the alias first must not open a way around the key statement.
        "kms:DeleteAlias",
        "kms:UpdateAlias",
    ):
        assert action in st["Action"], action
    resources = [flat(r) for r in st["Resource"]]
    assert "arn:${AWS::Partition}:cloudtrail:us-east-1:111111111111:trail/org-trail" in resources
    assert "arn:${AWS::Partition}:s3:::trailguard-archive-222222222222-us-east-1" in resources
    assert "arn:${AWS::Partition}:s3:::trailguard-access-logs-222222222222-us-east-1" in resources
    for alias in (names.TRAIL_KEY_ALIAS, names.LOGS_KEY_ALIAS, names.LAKE_KEY_ALIAS):
        assert f"arn:${{AWS::Partition}}:kms:*:*:{alias}" in resources
    assert st["Condition"] == BREAK_GLASS


def test_scp_protects_the_trail_keys(organization: Any) -> None:
    keys = statements(_scp(organization)["Content"])["ProtectTrailKeys"]
    assert sorted(keys["Action"]) == ["kms:DisableKey", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"]
    assert keys["Condition"]["ArnNotEquals"] == BREAK_GLASS["ArnNotEquals"]
    assert keys["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"] == [
        names.TRAIL_KEY_ALIAS,
        names.LOGS_KEY_ALIAS,
        names.LAKE_KEY_ALIAS,
    ]


def test_scp_denies_leaving_the_organization(organization: Any) -> None:
    st = statements(_scp(organization)["Content"])["DenyLeaveOrganization"]
    assert st["Action"] == ["organizations:LeaveOrganization"]
    assert st["Condition"] == BREAK_GLASS


def test_scp_protects_trailguards_roles_policies_and_forwarding_rules(organization: Any) -> None:
    st = statements(_scp(organization)["Content"])["ProtectTrailguard"]
    assert st["Effect"] == "Deny"
    for action in (
        "iam:CreateRole",
        "iam:DeleteRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
        "iam:PutRolePermissionsBoundary",
        "iam:PassRole",
        "iam:CreatePolicyVersion",
        "events:DeleteRule",
        "events:DisableRule",
        "events:PutRule",
        "events:PutTargets",
        "events:RemoveTargets",
    ):
        assert action in st["Action"], action
    assert [flat(r) for r in st["Resource"]] == [
        "arn:${AWS::Partition}:iam::*:role/trailguard-*",
        "arn:${AWS::Partition}:iam::*:policy/trailguard-*",
        "arn:${AWS::Partition}:events:*:*:rule/trailguard-forward-*",
    ]
    # trailguard's deployers: break-glass, the configured pipeline roles, CloudFormation StackSets.
    assert _flat_condition(st["Condition"]) == {
        "ArnNotEquals": {"aws:PrincipalArn": BREAK_GLASS_ARNS + DEPLOYER_ARNS},
        "ArnNotLike": {"aws:PrincipalArn": [STACKSETS_EXEC]},
    }


def test_scp_protects_the_roles_that_carry_an_exception(organization: Any) -> None:
    st = statements(_scp(organization)["Content"])["ProtectPrivilegedRoles"]
    assert {"iam:CreateRole", "iam:UpdateAssumeRolePolicy", "iam:PassRole", "iam:DeleteRole"} <= set(st["Action"])
    assert [flat(r) for r in st["Resource"]] == [*BREAK_GLASS_ARNS, STACKSETS_EXEC]
    assert st["Condition"] == BREAK_GLASS  # StackSets' own execution role is created by a service-linked role


def test_every_scp_statement_is_a_deny_with_the_break_glass_exception(organization: Any) -> None:
    for st in _scp(organization)["Content"]["Statement"]:
        assert st["Effect"] == "Deny"
        assert st["Condition"]["ArnNotEquals"]["aws:PrincipalArn"][: len(BREAK_GLASS_ARNS)] == BREAK_GLASS_ARNS


def test_no_statement_trusts_a_principal_name_pattern_but_stacksets(organization: Any) -> None:
    for st in _scp(organization)["Content"]["Statement"]:
        for op, block in st["Condition"].items():
            for value in as_list(block.get("aws:PrincipalArn", [])):
                if op == "ArnNotLike":
                    assert flat(value) == STACKSETS_EXEC, st["Sid"]
                else:
                    assert "*" not in flat(value), st["Sid"]


def test_scp_fits_the_size_limit(organization: Any) -> None:
    content = json.dumps(_scp(organization)["Content"], separators=(",", ":"))
    # Intrinsics render longer than the deployed text, so this bound is conservative.
    assert len(content) < SCP_MAX_CHARS
    cfg = load_config(EXAMPLE_ORG)
    assert scp_size(cfg, names.Accounts.for_config(cfg)) <= SCP_MAX_CHARS


def test_an_scp_over_the_quota_stops_the_synth(tmp_path: Path) -> None:
    import aws_cdk as cdk

    data = yaml.safe_load(EXAMPLE_ORG.read_text())
    data["break_glass_role_arns"] = [f"arn:aws:iam::{i:012d}:role/security-break-glass-{i}" for i in range(8)]
    cfg = parse_config(data)
    assert scp_size(cfg, names.Accounts.for_config(cfg)) > SCP_MAX_CHARS
    with pytest.raises(ValueError, match="5120-character quota"):
        GuardrailsStack(cdk.App(), "G", cfg=cfg, accounts=names.Accounts.for_config(cfg))


def test_no_guardrails_in_standalone(standalone: Any) -> None:
    assert GUARDRAILS not in standalone.templates


def test_guardrail_policy_follows_the_configured_roles(tmp_path: Path) -> None:
    cfg_file = tmp_path / "org.yaml"
    cfg_file.write_text(EXAMPLE_ORG.read_text().replace("security-break-glass", "incident-admin"))
    cfg = load_config(cfg_file)
    doc = guardrail_policy(cfg, names.Accounts.for_config(cfg))
    want = [a.replace("security-break-glass", "incident-admin") for a in BREAK_GLASS_ARNS]
    for st in doc["Statement"]:
        assert st["Condition"]["ArnNotEquals"]["aws:PrincipalArn"][:2] == want


def test_without_break_glass_or_deployers_only_stacksets_passes_trailguard_statements(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE_ORG.read_text())
    data["break_glass_role_arns"] = []
    data["deployment_role_arns"] = []
    cfg = parse_config(data)
    sts = statements(guardrail_policy(cfg, names.Accounts.for_config(cfg)))
    for sid in ("ProtectAuditTrail", "DenyLeaveOrganization", "ProtectPrivilegedRoles"):
        assert "Condition" not in sts[sid], sid  # IAM rejects an empty condition block: no exception at all
    assert list(sts["ProtectTrailguard"]["Condition"]) == ["ArnNotLike"]
    assert sts["ProtectPrivilegedRoles"]["Resource"][-1].endswith(":role/stacksets-exec-*")
