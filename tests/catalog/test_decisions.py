"""Decision functions of the tampering/detective/organizations/behaviour rules, on near-misses.

The patterns already reject most safe calls; these cases get past a pattern (or
replay without one) and must still be judged correctly by the decision.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from catalog_helpers import RULES
from trailguard_engine.decisions import registry
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.model import Rule
from trailguard_engine.runtime_config import RuntimeConfig

BY_ID = {r.id: r for r in RULES}
CFG = RuntimeConfig()


def judge(rule_id: str, *, example: int = 0, request: Any = "keep", **detail: Any):
    rule: Rule = BY_ID[rule_id]
    event = copy.deepcopy(rule.examples_positive[example])
    if request != "keep":
        event["detail"]["requestParameters"] = request
    event["detail"].update(detail)
    return registry()[rule.decision](CloudTrailEvent(to_envelope(event)), rule, CFG)


@pytest.mark.parametrize(
    ("request_parameters", "risky", "words"),
    [
        ({"name": "t", "snsTopicName": "x"}, False, ""),
        # no name convention: a targeted bucket change is a change, whatever the bucket is called (#15)
        ({"name": "t", "s3BucketName": "trailguard-archive-111122223333-us-east-1"}, True, "bucket changed"),
        ({"name": "t", "s3BucketName": "other"}, True, "bucket changed to other"),
        ({"name": "t", "cloudWatchLogsLogGroupArn": "arn:aws:logs:us-east-1:1:log-group:g:*"}, False, ""),
        ({"name": "t", "kmsKeyId": ""}, True, "KMS encryption removed"),
        ({"name": "t", "isMultiRegionTrail": False, "enableLogFileValidation": False}, True, "single-region, log file"),
        ({"name": "t", "cloudWatchLogsLogGroupArn": ""}, True, "log group removed"),
        ({"name": "t", "includeGlobalServiceEvents": False}, True, "global service events"),
    ],
)
def test_trail_weakened(request_parameters: dict, risky: bool, words: str) -> None:
    a = judge("cloudtrail-update-trail-weakened", request=request_parameters)
    assert a.risky is risky
    assert words in a.reason


MGMT = {
    "readWriteType": "All",
    "includeManagementEvents": True,
    "dataResources": [],
    "excludeManagementEventSources": [],
}
DATA = {
    "readWriteType": "All",
    "includeManagementEvents": False,
    "dataResources": [{"type": "AWS::S3::Object", "values": []}],
}


@pytest.mark.parametrize(
    ("request_parameters", "risky"),
    [
        ({"trailName": "t", "eventSelectors": [MGMT, DATA]}, False),  # data selector beside a full management one
        ({"trailName": "t", "eventSelectors": [DATA]}, True),
        ({"trailName": "t", "eventSelectors": [MGMT | {"readWriteType": "WriteOnly"}]}, True),
        ({"trailName": "t", "eventSelectors": [MGMT | {"excludeManagementEventSources": ["kms.amazonaws.com"]}]}, True),
        (
            {
                "trailName": "t",
                "advancedEventSelectors": [{"fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]}],
            },
            False,
        ),
        (
            {
                "trailName": "t",
                "advancedEventSelectors": [
                    {"fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]},
                    {
                        "fieldSelectors": [
                            {"field": "eventCategory", "equals": ["Data"]},
                            {"field": "resources.type", "equals": ["AWS::S3::Object"]},
                        ]
                    },
                ],
            },
            False,
        ),
        (
            {
                "trailName": "t",
                "advancedEventSelectors": [
                    {
                        "fieldSelectors": [
                            {"field": "eventCategory", "equals": ["Data"]},
                            {"field": "resources.type", "equals": ["AWS::S3::Object"]},
                        ]
                    }
                ],
            },
            True,
        ),
        (
            {
                "trailName": "t",
                "advancedEventSelectors": [
                    {
                        "fieldSelectors": [
                            {"field": "eventCategory", "equals": ["Management"]},
                            {"field": "eventSource", "notEquals": ["kms.amazonaws.com"]},
                        ]
                    }
                ],
            },
            True,
        ),
    ],
)
def test_event_selectors(request_parameters: dict, risky: bool) -> None:
    assert judge("cloudtrail-event-selectors-weakened", request=request_parameters).risky is risky


def test_insight_selectors() -> None:
    rid = "cloudtrail-event-selectors-weakened"
    assert judge(rid, example=3).risky
    kept = {
        "trailName": "t",
        "insightSelectors": [{"insightType": "ApiCallRateInsight"}, {"insightType": "ApiErrorRateInsight"}],
    }
    assert not judge(rid, example=3, request=kept).risky


def test_trail_bucket() -> None:
    rid = "cloudtrail-bucket-tampered"
    assert judge(rid).risky
    assert not judge(rid, request={"bucketName": "app-logs"}).risky
    enabled = {"bucketName": "trailguard-archive-1", "VersioningConfiguration": {"Status": "Enabled"}}
    assert not judge(rid, example=2, request=enabled).risky


@pytest.mark.parametrize(
    ("group", "risky"),
    [
        ("/aws/lambda/api", False),
        ("/AWS/CloudTrail/Org", True),
        ("VPC-Flow-Logs-prod", True),
        ("aws-waf-logs-api", True),
        ("/aws/route53resolver/queries", True),
        ("/ecs/app", False),
    ],
)
def test_security_log_group(group: str, risky: bool) -> None:
    assert judge("security-log-group-deleted", request={"logGroupName": group}).risky is risky


def test_request_resource_params_and_service_callers() -> None:
    a = judge("config-recorder-stopped")
    assert a.params == {"recorder": "default"}
    assert a.remediable
    missing = judge("config-recorder-stopped", request={})
    assert missing.risky
    assert not missing.remediable
    detector = judge("guardduty-detector-disabled")
    assert detector.params == {"detector_id": "2ac6d1e0c8f94e4f9a1c3b7d5e0f1a2b"}
    service = judge(
        "config-rule-deleted", userIdentity={"type": "AWSService", "invokedBy": "securityhub.amazonaws.com"}
    )
    assert not service.risky


def test_kms_key_builds_arn() -> None:
    a = judge("kms-key-disabled")
    assert a.params["key_id"] == "arn:aws:kms:us-east-1:111122223333:key/8a1f3c52-2b7e-4d0a-9c61-1f0e7d9b3a44"
    assert not judge("kms-key-disabled", request={}).remediable


def test_flow_log_ids() -> None:
    assert judge("vpc-flow-logs-deleted", example=1).resource["id"] == "fl-01234567890abcdef,fl-0fedcba9876543210"
    assert judge("vpc-flow-logs-deleted", request={"flowLogIds": ["fl-1"]}).resource["id"] == "fl-1"


def test_guardduty_noop_filter_not_risky() -> None:
    assert not judge("guardduty-findings-suppressed", request={"detectorId": "d", "name": "n", "action": "NOOP"}).risky


def test_eventbridge_self_protection() -> None:
    rid = "eventbridge-rule-tampered"
    assert judge(rid).risky
    cfn = judge(rid, userIdentity={"type": "AssumedRole", "invokedBy": "cloudformation.amazonaws.com"})
    assert cfn.risky  # invokedBy proves nothing: anyone can run a stack (only deployment_role_arns are trusted)
    assert not judge(rid, request={"name": "nightly"}).risky
    assert judge(
        rid, request={"name": "anything", "eventBusName": "arn:aws:events:us-east-1:1:event-bus/trailguard-central"}
    ).risky
    assert not judge(rid, example=2, request={"name": "other-bus"}).risky


def test_trailguard_parameter() -> None:
    assert judge("trailguard-config-tampered").risky
    assert not judge("trailguard-config-tampered", request={"name": "/app/x"}).risky


def test_org_policy_detached_from_an_account_is_risky_full_aws_access_is_not() -> None:
    """Issue 14: detaching an SCP from one account is the way out of a guardrail; p-FullAWSAccess only restricts."""
    assert judge("organizations-policy-detached", request={"policyId": "p-1", "targetId": "444455556666"}).risky
    assert not judge(
        "organizations-policy-detached", request={"policyId": "p-FullAWSAccess", "targetId": "r-ab12"}
    ).risky
    assert not judge("organizations-policy-detached", request={"policyId": "p-1", "targetId": "bogus"}).risky
    assert "root" in judge("organizations-policy-detached", example=1).reason


@pytest.mark.parametrize(
    ("agent", "risky"),
    [
        ("aws-cli/2.15 exe/x86_64.kali.2024", True),
        ("Boto3/1 os/linux#6.5.0-13parrot1-amd64", True),
        ("Pacu/1.5", True),
        ("aws-cli/2 Linux/6.6-pentoo", True),
        ("aws-cli/2 md/alkaline-water", False),
        ("Mozilla/5.0 (X11; Linux x86_64)", False),
        ("", False),
    ],
)
def test_offensive_user_agent(agent: str, risky: bool) -> None:
    assert judge("offensive-tooling-user-agent", userAgent=agent).risky is risky


USER = {"type": "IAMUser", "arn": "arn:aws:iam::1:user/bob", "userName": "bob"}
CI = {
    "type": "AssumedRole",
    "arn": "arn:aws:sts::1:assumed-role/ci/x",
    "sessionContext": {"sessionIssuer": {"userName": "ci"}},
}
SSO = {
    "type": "AssumedRole",
    "arn": "arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_1/a",
    "sessionContext": {"sessionIssuer": {"userName": "AWSReservedSSO_Admin_1"}},
}


@pytest.mark.parametrize(
    ("identity", "agent", "risky"),
    [
        (USER, "aws-cli/2", True),
        ({"type": "Root", "arn": "arn:aws:iam::1:root"}, "aws-cli/2", True),
        (SSO, "Boto3/1.35", True),
        (CI, "Boto3/1.35", False),
        (CI, "Mozilla/5.0 (Macintosh)", True),
        (CI | {"invokedBy": "codepipeline.amazonaws.com"}, "Mozilla/5.0", False),
        ({"type": "AWSService"}, "x", False),
    ],
)
def test_lambda_human(identity: dict, agent: str, risky: bool) -> None:
    assert judge("lambda-code-changed-by-human", userIdentity=identity, userAgent=agent).risky is risky


def test_lambda_configuration_without_layers_not_risky() -> None:
    a = judge("lambda-code-changed-by-human", example=2, request={"functionName": "f", "timeout": 3})
    assert not a.risky


def test_userdata_only() -> None:
    assert judge("ec2-userdata-modified").risky
    assert not judge(
        "ec2-userdata-modified", request={"instanceId": "i-1", "instanceType": {"value": "t3.micro"}}
    ).risky
