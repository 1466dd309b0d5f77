"""cloudtrail-update-trail-weakened judged against the trail's real configuration, not names (issue 15)."""

from __future__ import annotations

import pytest
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
RULE = "cloudtrail-update-trail-weakened"
OWN_ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/trailguard"
DEPLOYED = {
    "arn": OWN_ARN,
    "bucket": f"trailguard-archive-{ACCOUNT}-us-east-1",
    "kms_key": f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/trailguard-trail",
    "log_group": "/trailguard/cloudtrail/trailguard",
}
CFG = RuntimeConfig(deployed_trail=DEPLOYED, org_id="o-abc123def4")
GROUP_ARN = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/trailguard/cloudtrail/trailguard:*"


def resend(name: str = "trailguard", **changes):
    """Every setting, as CloudFormation or Terraform send them on each apply, with ``changes``."""
    req = {
        "name": name,
        "s3BucketName": DEPLOYED["bucket"],
        "includeGlobalServiceEvents": True,
        "isMultiRegionTrail": True,
        "enableLogFileValidation": True,
        "isOrganizationTrail": True,
        "kmsKeyId": DEPLOYED["kms_key"],
        "cloudWatchLogsLogGroupArn": GROUP_ARN,
        "cloudWatchLogsRoleArn": f"arn:aws:iam::{ACCOUNT}:role/trailguard-trail-logs",
    }
    req.update(changes)
    return req


def update(ev, req):
    return ev("UpdateTrail", req, source="cloudtrail.amazonaws.com")


def test_terraform_resends_of_another_trail_are_not_alerted_by_name(run, ev):
    """Old code: any bucket outside trailguard-archive-* was "bucket changed", any log group "log group changed"."""
    req = resend(
        "acme-trail", s3BucketName="acme-cloudtrail-logs", cloudWatchLogsLogGroupArn="arn:aws:logs:x:1:log-group:g:*"
    )
    a = run(RULE, update(ev, req))
    assert not a.risky, a.reason
    assert "re-sends" in a.reason
    # the Terraform pair: the log group re-sent with a changed role is not a weakening
    pair = {
        "name": "acme-trail",
        "cloudWatchLogsLogGroupArn": "arn:aws:logs:x:1:log-group:g:*",
        "cloudWatchLogsRoleArn": "r",
    }
    assert not run(RULE, update(ev, pair)).risky


def test_an_unchanged_resend_of_trailguards_own_trail_is_not_risky(run, ev):
    a = run(RULE, update(ev, resend()), CFG)
    assert not a.risky, a.reason
    assert "deployed" in a.reason
    assert not run(RULE, update(ev, resend(name=OWN_ARN, kmsKeyId="alias/trailguard-trail")), CFG).risky


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"s3BucketName": "attacker-logs"}, "bucket changed to attacker-logs"),
        ({"kmsKeyId": ""}, "KMS encryption removed"),
        ({"kmsKeyId": "arn:aws:kms:us-east-1:444455556666:key/1234"}, "KMS key changed"),
        ({"cloudWatchLogsLogGroupArn": ""}, "log group removed"),
        ({"cloudWatchLogsLogGroupArn": "arn:aws:logs:us-east-1:1:log-group:/dev/null:*"}, "log group changed"),
        ({"isMultiRegionTrail": False}, "single-region"),
        ({"isOrganizationTrail": False}, "no longer an organization trail"),
        ({"includeGlobalServiceEvents": False}, "global service events"),
        ({"enableLogFileValidation": False}, "log file validation off"),
    ],
)
def test_a_real_weakening_of_trailguards_own_trail_is_risky_even_in_a_full_resend(run, ev, change, words):
    """The full-resend shape buys nothing on trailguard's own trail: it is compared with the deployed config."""
    a = run(RULE, update(ev, resend(**change)), CFG)
    assert a.risky
    assert words in a.reason
    assert not a.remediable
    targeted = run(RULE, update(ev, {"name": "trailguard", **change}), CFG)
    assert targeted.risky and words in targeted.reason


@pytest.mark.parametrize(
    ("req", "words"),
    [
        ({"name": "acme-trail", "s3BucketName": "elsewhere"}, "bucket changed to elsewhere"),
        ({"name": "acme-trail", "kmsKeyId": ""}, "KMS encryption removed"),
        ({"name": "acme-trail", "isMultiRegionTrail": False}, "single-region"),
        ({"name": "acme-trail", "cloudWatchLogsLogGroupArn": ""}, "log group removed"),
    ],
)
def test_targeted_weakenings_of_other_trails_stay_risky(run, ev, req, words):
    a = run(RULE, update(ev, req), CFG)
    assert a.risky and words in a.reason


def test_replay_knows_trailguards_own_trail_from_the_organization_config(run, ev):
    from pathlib import Path

    from trailguard.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "config" / "example-organization.yaml")
    rc = RuntimeConfig.from_document(cfg.runtime_document())
    trail = rc.deployed_trail
    assert trail["arn"].endswith(f":{cfg.org.management_account_id}:trail/{cfg.trail_name}")
    group = f"arn:aws:logs:{cfg.home_region}:1:log-group:{trail['log_group']}:*"
    same = resend(
        trail["arn"], s3BucketName=trail["bucket"], kmsKeyId=trail["kms_key"], cloudWatchLogsLogGroupArn=group
    )
    assert not run(RULE, update(ev, same), rc).risky
    assert run(RULE, update(ev, {**same, "s3BucketName": "elsewhere"}), rc).risky
