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


def _busy_stack_trail() -> tuple[object, str]:
    from moto.cloudformation.models import cloudformation_backends

    cfn = boto3.client("cloudformation", region_name="us-east-1")
    cfn.create_stack(StackName="busy", TemplateBody='{"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}')
    for s in cloudformation_backends[ACCOUNT]["us-east-1"].stacks.values():
        s.status = "UPDATE_IN_PROGRESS"
    return _stopped_trail({"aws:cloudformation:stack-name": "busy"})


def _run_as(identity: dict[str, object], trail: str, user_agent: str = "aws-cli/2.15.0") -> tuple[object, list[str]]:
    """start_logging for a StopLogging whose caller is classified from ``identity``, as the evaluator does."""
    from trailguard_engine.caller import classify
    from trailguard_engine.events import CloudTrailEvent
    from trailguard_engine.model import Finding
    from trailguard_engine.remediations import RemediationContext, registry

    detail = {"eventName": "StopLogging", "userIdentity": identity, "userAgent": user_agent}
    event = CloudTrailEvent({"account": ACCOUNT, "region": "us-east-1", "detail": detail})
    cfg = RuntimeConfig()
    caller = classify(event, cfg)
    finding = Finding("x", "CRITICAL", "remediate", "start_logging", "t", params={"trail": trail}, caller=caller)
    calls: list[tuple[str, str]] = []

    class Session:
        def client(self, service: str, region: str) -> object:
            c = boto3.client(service, region_name=region)
            c.meta.events.register("before-call", lambda model, **_: calls.append((service, model.name)))
            return c

    ctx = RemediationContext(finding, event, cfg, ACCOUNT, "us-east-1", Session(), None)  # type: ignore[arg-type]
    result = registry()["start_logging"].fn(ctx)
    return (caller.kind, result.status), [op for _, op in calls if op in {"StartLogging", "DescribeStacks"}]


ROLE = f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice@example.com"


@mock_aws
def test_a_role_session_that_only_looks_like_a_person_is_still_held_for_a_busy_stack() -> None:
    """A custom resource's function (or an attacker's role) naming its session like a person, with a console
    user agent, is not a person: without MFA it is ``unknown``, and the busy stack still holds the restart."""
    _ct, arn = _busy_stack_trail()
    identity = {
        "type": "AssumedRole",
        "arn": ROLE,
        "accountId": ACCOUNT,
        "principalId": "AROAEXAMPLE:alice@example.com",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/Admin", "accountId": ACCOUNT},
            "attributes": {"mfaAuthenticated": "false"},
        },
    }
    held, ops = _run_as(identity, arn, user_agent="console.amazonaws.com")
    assert held == ("unknown", "skipped")
    assert ops == ["DescribeStacks"]


@mock_aws
def test_a_person_is_restarted_whatever_the_stack_does_and_cloudformation_is_not_asked() -> None:
    ct, arn = _busy_stack_trail()
    user = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/bob", "accountId": ACCOUNT, "userName": "bob"}
    started, ops = _run_as(user, arn)
    assert started == ("human", "remediated")
    assert ops == ["StartLogging"]
    assert ct.get_trail_status(Name=arn)["IsLogging"] is True  # type: ignore[attr-defined]
