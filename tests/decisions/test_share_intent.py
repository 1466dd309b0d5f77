"""ami-public / ebs-snapshot-public: organization and service distribution are not public; public-AMI
publishing accounts are alert-only (issue 15)."""

from __future__ import annotations

import pytest
from trailguard_engine.intended import IntendedExposure
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
ORG = "o-a1b2c3d4e5"
IMAGE = "ami-0123456789abcdef0"
SNAP = "snap-0123456789abcdef0"


def slr(service: str, name: str, path: str | None = None) -> dict:
    issuer = f"arn:aws:iam::{ACCOUNT}:role/{path if path is not None else f'aws-service-role/{service}/'}{name}"
    return {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/Distribution",
        "accountId": ACCOUNT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": issuer, "userName": name}},
        "invokedBy": service,
    }


IMAGEBUILDER = slr("imagebuilder.amazonaws.com", "AWSServiceRoleForImageBuilder")
#: DLM's default role is customer-managed, at /service-role/: anyone with IAM can create one like it.
DLM_DEFAULT_ROLE = slr("dlm.amazonaws.com", "AWSDataLifecycleManagerDefaultRole", path="service-role/")


def ami(ev, items, identity=None):
    return ev(
        "ModifyImageAttribute",
        {"imageId": IMAGE, "launchPermission": {"add": {"items": items}}, "attributeType": "launchPermission"},
        identity=identity,
    )


def snap(ev, items, identity=None):
    return ev(
        "ModifySnapshotAttribute",
        {
            "snapshotId": SNAP,
            "createVolumePermission": {"add": {"items": items}},
            "attributeType": "CREATE_VOLUME_PERMISSION",
        },
        identity=identity,
    )


@pytest.mark.parametrize(
    "item",
    [
        {"organizationArn": f"arn:aws:organizations::111111111111:organization/{ORG}"},
        {"organizationalUnitArn": f"arn:aws:organizations::111111111111:ou/{ORG}/ou-ab12-34cd56ef"},
    ],
)
def test_shares_with_the_organization_are_not_risky(run, ev, item):
    assert not run("ami-public", ami(ev, [item]), RuntimeConfig(org_id=ORG)).risky


def test_image_builder_distribution_to_accounts_is_not_public(run, ev):
    """Old code alerted on every Image Builder distribution to member accounts."""
    a = run("ami-public", ami(ev, [{"userId": "444455556666"}, {"userId": "777788889999"}], IMAGEBUILDER))
    assert not a.risky
    assert "imagebuilder.amazonaws.com" in a.reason


def test_a_customer_managed_service_role_is_no_proof(run, ev):
    a = run("ebs-snapshot-public", snap(ev, [{"userId": "444455556666"}], DLM_DEFAULT_ROLE))
    assert a.risky and not a.remediable  # an account share: alert, membership unknown offline


def test_public_share_by_a_service_is_still_public(run, ev):
    """An admin can configure Image Builder to publish: the service making it public is not intent."""
    a = run("ami-public", ami(ev, [{"group": "all"}], IMAGEBUILDER))
    assert a.risky and a.remediable


def test_publishing_account_makes_public_amis_alert_only(run, ev):
    """Old code un-published the AMIs of intentional public-AMI pipelines."""
    cfg = RuntimeConfig(intended=IntendedExposure(public_ami_accounts=frozenset({ACCOUNT})))
    a = run("ami-public", ami(ev, [{"group": "all"}]), cfg)
    assert a.risky and not a.remediable
    assert "public-AMI publishing account" in a.reason
    other = RuntimeConfig(intended=IntendedExposure(public_ami_accounts=frozenset({"444455556666"})))
    assert run("ami-public", ami(ev, [{"group": "all"}]), other).remediable
    # snapshots are never "published": the AMI allowance does not cover them
    assert run("ebs-snapshot-public", snap(ev, [{"group": "all"}]), cfg).remediable


TRUSTED = "444455556666"
PIPELINE = f"arn:aws:iam::{ACCOUNT}:role/public-ami-pipeline"
PIPELINE_SESSION = {
    "type": "AssumedRole",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/public-ami-pipeline/codebuild-packer",
    "accountId": ACCOUNT,
    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": PIPELINE, "userName": "public-ami-pipeline"}},
}


def _trusting(*accounts: str, **more) -> RuntimeConfig:
    return RuntimeConfig(intended=IntendedExposure(trusted_accounts=frozenset(accounts), **more))


@pytest.mark.parametrize(("rule", "build"), [("ebs-snapshot-public", snap), ("ami-public", ami)])
def test_shares_with_trusted_accounts_are_not_risky(run, ev, rule, build):
    """Old code alerted on every backup or DR copy to another of the organization's accounts."""
    identity = DLM_DEFAULT_ROLE  # a customer-managed role: trust is about the target, not the caller
    a = run(rule, build(ev, [{"userId": TRUSTED}], identity), _trusting(TRUSTED))
    assert not a.risky and "trusted_accounts" in a.reason


@pytest.mark.parametrize(
    ("targets", "risky"),
    [
        ([TRUSTED], False),
        ([TRUSTED, "999988887777"], True),  # one untrusted target is enough
        (["999988887777"], True),
    ],
)
def test_rds_shares_are_judged_target_by_target(run, ev, targets, risky):
    event = ev(
        "ModifyDBSnapshotAttribute",
        {"dBSnapshotIdentifier": "orders-db-copy", "attributeName": "restore", "valuesToAdd": targets},
    )
    a = run("rds-snapshot-public", event, _trusting(TRUSTED))
    assert a.risky is risky
    if risky:
        assert TRUSTED not in a.reason.split("shared with ", 1)[1].split(" by ")[0]


def test_trusted_accounts_never_make_a_public_share_acceptable(run, ev):
    a = run("ebs-snapshot-public", snap(ev, [{"userId": TRUSTED}, {"group": "all"}]), _trusting(TRUSTED))
    assert a.risky and a.remediable


def test_a_release_by_the_operators_pipeline_in_a_publishing_account_is_not_risky(run, ev):
    """Old code alerted on every release of an intentional public-AMI pipeline."""
    cfg = RuntimeConfig(
        intended=IntendedExposure(public_ami_accounts=frozenset({ACCOUNT})), iac_principal_patterns=(PIPELINE,)
    )
    a = run("ami-public", ami(ev, [{"group": "all"}], PIPELINE_SESSION), cfg)
    assert not a.risky and "a release" in a.reason


def test_a_release_by_image_builder_in_a_publishing_account_is_not_risky(run, ev):
    cfg = RuntimeConfig(intended=IntendedExposure(public_ami_accounts=frozenset({ACCOUNT})))
    assert not run("ami-public", ami(ev, [{"group": "all"}], IMAGEBUILDER), cfg).risky
