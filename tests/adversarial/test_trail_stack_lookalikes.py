"""Only CloudFormation's own tag (``aws:cloudformation:stack-name``, which users cannot set) and a busy
stack hold start_logging back; look-alike tags, a stack name that does not exist and trailguard's
own trail never do."""

from __future__ import annotations

import boto3
import pytest
from intended_helpers import ACCOUNT, run
from moto import mock_aws
from trailguard_engine.runtime_config import RuntimeConfig


def _stopped_trail(tags: dict[str, str]) -> tuple[object, str]:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="x-logs")
    ct = boto3.client("cloudtrail", region_name="us-east-1")
    arn = ct.create_trail(Name="app-trail", S3BucketName="x-logs")["TrailARN"]
    if tags:
        ct.add_tags(ResourceId=arn, TagsList=[{"Key": k, "Value": v} for k, v in tags.items()])
    ct.start_logging(Name=arn)
    ct.stop_logging(Name=arn)
    return ct, arn


@pytest.mark.parametrize(
    "tags",
    [
        {"cloudformation:stack-name": "busy"},
        {"aws-cloudformation-stack-name": "busy"},
        {"aws:cloudformation:stack-name": "no-such-stack"},
    ],
)
@mock_aws
def test_lookalike_stack_tags_do_not_stop_the_restart(tags: dict[str, str]) -> None:
    ct, arn = _stopped_trail(tags)
    result, writes = run("start_logging", {"trail": arn})
    assert result.status == "remediated", result
    assert writes == ["StartLogging"]
    assert ct.get_trail_status(Name=arn)["IsLogging"] is True  # type: ignore[attr-defined]


@mock_aws
def test_own_trail_is_started_even_with_a_busy_stack_tag() -> None:
    from moto.cloudformation.models import cloudformation_backends

    cfn = boto3.client("cloudformation", region_name="us-east-1")
    cfn.create_stack(StackName="busy", TemplateBody='{"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}')
    for s in cloudformation_backends[ACCOUNT]["us-east-1"].stacks.values():
        s.status = "DELETE_IN_PROGRESS"
    _ct, arn = _stopped_trail({"aws:cloudformation:stack-name": "busy"})
    held, writes = run("start_logging", {"trail": arn})
    assert held.status == "skipped" and writes == []
    result, writes = run("start_logging", {"trail": arn}, RuntimeConfig(deployed_trail={"arn": arn}))
    assert result.status == "remediated", result
    assert writes == ["StartLogging"]
