"""UpdateTrail crafted by a member admin: the IaC re-send shape and look-alike names buy nothing on
trailguard's own trail, which is compared with its deployed configuration (issue 15)."""

from __future__ import annotations

from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.runtime_config import RuntimeConfig

OWNER = "111122223333"
OWN = f"arn:aws:cloudtrail:us-east-1:{OWNER}:trail/trailguard"
CFG = RuntimeConfig(
    deployed_trail={
        "arn": OWN,
        "bucket": f"trailguard-archive-{OWNER}-us-east-1",
        "kms_key": f"arn:aws:kms:us-east-1:{OWNER}:alias/trailguard-trail",
        "log_group": "/trailguard/cloudtrail/trailguard",
    }
)
IAC_AGENT = "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 terraform-provider-aws/5.70.0 aws-sdk-go-v2/1.31.0"


def judge(request: dict, account: str = OWNER):
    rule = rules_by_id()["cloudtrail-update-trail-weakened"]
    record = {
        "eventName": "UpdateTrail",
        "eventSource": "cloudtrail.amazonaws.com",
        "awsRegion": "us-east-1",
        "recipientAccountId": account,
        "userAgent": IAC_AGENT,
        "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{account}:assumed-role/Admin/mallory"},
        "requestParameters": request,
        "responseElements": None,
    }
    event = CloudTrailEvent({"detail-type": "AWS API Call via CloudTrail", "account": account, "detail": record})
    return registry()[rule.decision](event, rule, CFG)


def full(**over):
    req = dict.fromkeys(("includeGlobalServiceEvents", "isMultiRegionTrail", "enableLogFileValidation"), True)
    req.update(name="trailguard", s3BucketName=f"trailguard-archive-{OWNER}-us-east-1", s3KeyPrefix="", snsTopicName="")
    req.update(over)
    return req


def test_an_iac_shaped_request_that_moves_trailguards_bucket_is_risky() -> None:
    a = judge(full(s3BucketName=f"trailguard-archive-{OWNER}-us-east-1-exfil"))
    assert a.risky and "bucket changed" in a.reason


def test_a_lookalike_bucket_name_is_not_trusted_any_more() -> None:
    """The old prefix rule trusted any trailguard-archive-* bucket, which anyone can create."""
    a = judge({"name": "trailguard", "s3BucketName": "trailguard-archive-999988887777-us-east-1"})
    assert a.risky and "bucket changed" in a.reason


def test_a_trail_named_trailguard_in_another_account_is_not_trailguards() -> None:
    a = judge(full(), account="444455556666")
    assert not a.risky
    assert "deployed" not in a.reason  # judged as an ordinary trail
