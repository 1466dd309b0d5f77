"""Publishing accounts and trusted accounts cannot be claimed by an attacker (issue 15).

Attacker: an admin of the public-AMI publishing account, or of any member account. They control user
agents, role names and paths outside IAM's reserved ones, their own CloudFormation stacks, and the
content of the request (including the accounts they share with). They do not control trailguard's
config (``intended_exposure.public_ami_accounts``, ``trusted_accounts``, ``callers.iac_principals``).
"""

from __future__ import annotations

from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.intended import IntendedExposure
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
TRUSTED = "444455556666"
ATTACKER = "999988887777"
PIPELINE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/public-ami-pipeline"
TERRAFORM_UA = "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 terraform-provider-aws/5.45.0 aws-sdk-go-v2/1.26.1"
CFG = RuntimeConfig(
    intended=IntendedExposure(public_ami_accounts=frozenset({ACCOUNT}), trusted_accounts=frozenset({TRUSTED})),
    iac_principal_patterns=(PIPELINE_ROLE,),
)


def role_session(issuer: str, **extra: Any) -> dict[str, Any]:
    name = issuer.rsplit("/", 1)[1]
    return {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{issuer.split(':')[4]}:assumed-role/{name}/s",
        "accountId": issuer.split(":")[4],
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": issuer, "userName": name}},
        **extra,
    }


def judge(rule_id: str, ident: dict[str, Any], request: dict[str, Any], account: str = ACCOUNT, ua: str = "aws-cli/2"):
    rule = rules_by_id()[rule_id]
    name = {"ami-public": "ModifyImageAttribute", "ebs-snapshot-public": "ModifySnapshotAttribute"}[rule_id]
    record = {
        "eventName": name,
        "eventSource": "ec2.amazonaws.com",
        "awsRegion": "us-east-1",
        "recipientAccountId": account,
        "userAgent": ua,
        "userIdentity": ident,
        "requestParameters": request,
    }
    event = CloudTrailEvent({"detail-type": "AWS API Call via CloudTrail", "account": account, "detail": record})
    return registry()[rule.decision](event, rule, CFG)


def public_ami() -> dict[str, Any]:
    return {"imageId": "ami-0123456789abcdef0", "launchPermission": {"add": {"items": [{"group": "all"}]}}}


@pytest.mark.parametrize(
    ("ident", "ua"),
    [
        (role_session(f"arn:aws:iam::{ACCOUNT}:role/Admin"), TERRAFORM_UA),  # forged IaC user agent
        (role_session(f"arn:aws:iam::{ACCOUNT}:role/Admin", invokedBy="cloudformation.amazonaws.com"), "x"),
        (role_session(f"arn:aws:iam::{ACCOUNT}:role/path/public-ami-pipeline"), "aws-cli/2"),  # same name, other path
        (role_session(f"arn:aws:iam::{ATTACKER}:role/public-ami-pipeline"), "aws-cli/2"),  # same name, other account
        (role_session(f"arn:aws:iam::{ACCOUNT}:role/AWSServiceRoleForImageBuilder"), "aws-cli/2"),  # look-alike SLR
    ],
    ids=["terraform-ua", "own-cfn-stack", "pipeline-name-other-path", "pipeline-name-other-account", "lookalike-slr"],
)
def test_only_a_proven_pipeline_publishes_without_an_alert(ident: dict[str, Any], ua: str) -> None:
    a = judge("ami-public", ident, public_ami(), ua=ua)
    assert a.risky, a.reason  # still alerted (publishing account: not remediated)


def test_the_real_pipeline_publishes_only_in_a_publishing_account() -> None:
    ident = role_session(PIPELINE_ROLE)
    assert not judge("ami-public", ident, public_ami()).risky
    # the same pipeline role pattern does not make another account a publishing account
    other = role_session(PIPELINE_ROLE.replace(ACCOUNT, TRUSTED))
    assert judge("ami-public", other, public_ami(), account=TRUSTED).risky


@pytest.mark.parametrize(
    "items",
    [
        [{"userId": TRUSTED}, {"userId": ATTACKER}],  # hide the attacker's account behind a trusted one
        [{"userId": ATTACKER}, {"userId": TRUSTED}],
        [{"userId": f" {ATTACKER} "}],
        [{"userId": TRUSTED}, {"group": "all"}],
        [{"userId": TRUSTED}, {"group": "ALL"}],
    ],
)
def test_a_trusted_target_never_hides_an_untrusted_or_public_one(items: list[dict[str, Any]]) -> None:
    request = {"snapshotId": "snap-0123456789abcdef0", "createVolumePermission": {"add": {"items": items}}}
    a = judge("ebs-snapshot-public", role_session(f"arn:aws:iam::{ACCOUNT}:role/Admin"), request)
    assert a.risky, a.reason


def test_a_lookalike_of_a_trusted_account_is_not_trusted() -> None:
    for lookalike in (TRUSTED + "0", TRUSTED[:-1], "０" * 12, f"arn:aws:iam::{TRUSTED}:root"):
        request = {
            "snapshotId": "snap-0123456789abcdef0",
            "createVolumePermission": {"add": {"items": [{"userId": lookalike}]}},
        }
        a = judge("ebs-snapshot-public", role_session(f"arn:aws:iam::{ACCOUNT}:role/Admin"), request)
        assert a.risky, lookalike
