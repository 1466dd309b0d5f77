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
