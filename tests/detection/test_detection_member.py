"""Member stack, StackSet and remediation role, asserted on the synthesized templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from detection_helpers import forwarding_rules, resources_of
from trailguard_engine.model import Rule

from stacks.forwarding import remediation_actions
from stacks.member import DRIFT_READ_ACTIONS
from trailguard.config import load_config

EXAMPLE_ORG = Path(__file__).resolve().parents[2] / "config" / "example-organization.yaml"


def _stackset(org: Any) -> dict[str, Any]:
    (res,) = org.resources("TrailguardMemberStackSet", "AWS::CloudFormation::StackSet").values()
    props: dict[str, Any] = res["Properties"]
    return props


def test_stackset_is_service_managed_auto_deployed(organization: Any) -> None:
    cfg = load_config(EXAMPLE_ORG)
    props = _stackset(organization)
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["AutoDeployment"]["Enabled"] is True
    assert props["CallAs"] == "SELF"
    assert "CAPABILITY_NAMED_IAM" in props["Capabilities"]
    (group,) = props["StackInstancesGroup"]
    assert group["DeploymentTargets"]["OrganizationalUnitIds"] == cfg.org.target_ous
    assert group["Regions"] == cfg.governed_regions
    prefs = props["OperationPreferences"]
    assert prefs["FailureTolerancePercentage"] >= 0
    assert prefs["MaxConcurrentPercentage"] > 0


def test_stackset_template_is_asset_free_and_bootstrap_free(organization: Any) -> None:
    body = _stackset(organization)["TemplateBody"]
    assert len(body) <= 51_200
    tpl = json.loads(body)
    assert "BootstrapVersion" not in tpl.get("Parameters", {})
    assert "CheckBootstrapVersion" not in tpl.get("Rules", {})
    text = json.dumps(tpl)
    assert "cdk-hnb659fds-assets" not in text
    assert "AssetParameters" not in text
    assert resources_of(tpl, "AWS::IAM::Role")


def test_management_account_gets_member_stack_in_every_region(organization: Any) -> None:
    cfg = load_config(EXAMPLE_ORG)
    for region in cfg.governed_regions:
        art = organization.manifest["artifacts"][f"TrailguardMember-{region}"]
        assert art["environment"] == f"aws://{cfg.org.management_account_id}/{region}"


def test_standalone_member_stack_per_region(standalone: Any) -> None:
    cfg = load_config(None)
    names = {n for n in standalone.templates if n.startswith("TrailguardMember-")}
    assert names == {f"TrailguardMember-{r}" for r in cfg.governed_regions}
    assert "TrailguardMemberStackSet" not in standalone.templates


def _member_templates(synth: Any) -> list[dict[str, Any]]:
    tpls = [t for n, t in synth.templates.items() if n.startswith("TrailguardMember-")]
    if "TrailguardMemberStackSet" in synth.templates:
        tpls.append(json.loads(_stackset(synth)["TemplateBody"]))
    return tpls


@pytest.mark.parametrize("mode", ["standalone", "organization"])
def test_remediation_role_only_in_home_region(mode: str, request: pytest.FixtureRequest) -> None:
    synth = request.getfixturevalue(mode)
    home = "us-east-1"  # both fixtures' home region
    for tpl in _member_templates(synth):
        role, policy = _remediation(tpl)
        cond = role["Condition"]
        assert tpl["Conditions"][cond] == {"Fn::Equals": [{"Ref": "AWS::Region"}, home]}
        assert policy["Condition"] == cond
        # Nothing else in the member stack is region-conditional: forwarding runs everywhere.
        others = [r for r in tpl["Resources"].values() if r is not role and r is not policy]
        assert all("Condition" not in r for r in others)


def _logical_id(tpl: dict[str, Any], res: dict[str, Any]) -> str:
    return next(k for k, v in tpl["Resources"].items() if v is res)


def _remediation(tpl: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    (role,) = [
        r
        for r in resources_of(tpl, "AWS::IAM::Role").values()
        if r["Properties"].get("RoleName") == "trailguard-remediation"
    ]
    rid = _logical_id(tpl, role)
    policy = next(
        p for p in resources_of(tpl, "AWS::IAM::ManagedPolicy").values() if p["Properties"]["Roles"] == [{"Ref": rid}]
    )
    return role, policy


def test_member_role_trusts_only_engine_and_drift_in_org(organization: Any) -> None:
    cfg = load_config(EXAMPLE_ORG)
    sec = cfg.org.security_tooling_account_id
    for tpl in _member_templates(organization):
        role, _ = _remediation(tpl)
        assert role["Properties"]["RoleName"] == "trailguard-remediation"
        (st,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert st["Action"] == "sts:AssumeRole"
        principal = json.dumps(st["Principal"]["AWS"])
        assert f":iam::{sec}:root" in principal
        assert st["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": cfg.org.org_id}
        pinned = json.dumps(st["Condition"]["ArnEquals"]["aws:PrincipalArn"])
        assert f":iam::{sec}:role/trailguard-engine" in pinned
        assert f":iam::{sec}:role/trailguard-drift" in pinned
        assert len(st["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == 2


def test_standalone_member_role_has_no_org_condition(standalone: Any) -> None:
    role, _ = _remediation(standalone.templates["TrailguardMember-us-east-1"])
    (st,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert "StringEquals" not in st["Condition"]
    assert "ArnEquals" in st["Condition"]


@pytest.mark.parametrize("mode", ["standalone", "organization"])
def test_member_policy_is_exactly_catalog_union(
    mode: str, request: pytest.FixtureRequest, catalog: tuple[Rule, ...]
) -> None:
    want = set(remediation_actions(catalog))
    assert want, "no rule declares a remediation"
    for tpl in _member_templates(request.getfixturevalue(mode)):
        _, policy = _remediation(tpl)
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        catalog_actions: list[str] = []
        drift_actions: list[str] = []
        for st in statements:
            assert st["Effect"] == "Allow"
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            assert all("*" not in a for a in actions), actions
            (drift_actions if st["Sid"].startswith("DriftSweep") else catalog_actions).extend(actions)
        assert len(catalog_actions) == len(set(catalog_actions))
        assert set(catalog_actions) == want
        assert sorted(drift_actions) == sorted(DRIFT_READ_ACTIONS)


def test_drift_reads_name_the_trail_the_archive_and_this_accounts_keys(organization: Any) -> None:
    cfg = load_config(EXAMPLE_ORG)
    _, policy = _remediation(organization.templates["TrailguardMember-us-east-1"])
    sts = {st["Sid"]: st for st in policy["Properties"]["PolicyDocument"]["Statement"]}
    trail = f':cloudtrail:us-east-1:{cfg.org.management_account_id}:trail/org-trail"'
    assert trail in json.dumps(sts["DriftSweepTrailReads"]["Resource"])
    bucket = f':s3:::trailguard-archive-{cfg.org.log_archive_account_id}-us-east-1"'
    assert bucket in json.dumps(sts["DriftSweepArchiveReads"]["Resource"])
    keys = f':kms:us-east-1:{cfg.org.management_account_id}:key/*"'  # this (management) account's keys
    assert keys in json.dumps(sts["DriftSweepKeyReads"]["Resource"])
    everything = [st for st in sts.values() if st["Resource"] == "*"]
    assert all(st["Sid"].startswith("CatalogRemediation") for st in everything)


@pytest.mark.parametrize("mode", ["standalone", "organization"])
def test_forwarding_role_policy_and_rules_have_deterministic_names(mode: str, request: pytest.FixtureRequest) -> None:
    """The SCP and the self-protection detections name them: trailguard-forward-<region> and -<i>."""
    synth = request.getfixturevalue(mode)
    for name, tpl in synth.templates.items():
        if not name.startswith("TrailguardMember-"):
            continue
        region = name.removeprefix("TrailguardMember-")
        forward_roles = [
            r["Properties"]["RoleName"]
            for r in resources_of(tpl, "AWS::IAM::Role").values()
            if r["Properties"].get("RoleName") != "trailguard-remediation"
        ]
        assert forward_roles == [f"trailguard-forward-{region}"]
        policies = sorted(
            p["Properties"]["ManagedPolicyName"] for p in resources_of(tpl, "AWS::IAM::ManagedPolicy").values()
        )
        assert policies == sorted([f"trailguard-forward-{region}", "trailguard-remediation"])
        rules = [r["Properties"]["Name"] for r in resources_of(tpl, "AWS::Events::Rule").values()]
        assert rules == [f"trailguard-forward-{i}" for i in range(len(rules))]
    if mode == "organization":  # the StackSet template: the region is the deploying region
        tpl = json.loads(_stackset(synth)["TemplateBody"])
        (role,) = [
            r
            for r in resources_of(tpl, "AWS::IAM::Role").values()
            if r["Properties"]["RoleName"] != "trailguard-remediation"
        ]
        assert role["Properties"]["RoleName"] == {"Fn::Join": ["", ["trailguard-forward-", {"Ref": "AWS::Region"}]]}


def test_forward_role_names_fit_iam_for_every_region() -> None:
    from stacks.names import MAX_ROLE_NAME, forward_role_name
    from trailguard.config import KNOWN_REGIONS

    assert max(len(forward_role_name(r)) for r in KNOWN_REGIONS) <= MAX_ROLE_NAME
    with pytest.raises(ValueError, match="64"):
        forward_role_name("x" * 50)


def test_write_actions_are_resource_scoped(organization: Any) -> None:
    tpl = organization.templates["TrailguardMember-us-east-1"]
    _, policy = _remediation(tpl)
    for st in policy["Properties"]["PolicyDocument"]["Statement"]:
        for action in st["Action"]:
            if action in {"s3:PutBucketPublicAccessBlock", "ec2:RevokeSecurityGroupIngress", "kms:CancelKeyDeletion"}:
                assert st["Resource"] != "*", action


def test_forwarders_target_central_bus_with_role_dlq_retry(organization: Any) -> None:
    cfg = load_config(EXAMPLE_ORG)
    for tpl in _member_templates(organization):
        for rule in forwarding_rules(tpl):
            (target,) = rule["Targets"]
            arn = json.dumps(target["Arn"])
            assert f"events:{cfg.home_region}:{cfg.org.security_tooling_account_id}:event-bus/trailguard-central" in arn
            assert "RoleArn" in target
            assert "DeadLetterConfig" in target
            assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
