"""start_logging and CloudFormation's trail lifecycle (issue 15).

CloudFormation stops a trail it replaces or deletes. The remediation must not start such a trail
(it would fight the stack) but alert; a trail that no longer exists needs nothing; and trailguard's
own trail is started whatever its stack is doing. A person's stop is never the stack's: their trail is
started without asking CloudFormation.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from engine_world import MEMBER, REGION, World, ct_event
from moto.cloudformation.models import cloudformation_backends
from test_engine_remediations import remediate

TEMPLATE = json.dumps({"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}})


def _trail(world: World, name: str, stack: str | None = None, status: str | None = None) -> tuple[Any, str]:
    s3 = world.member("s3")
    s3.create_bucket(Bucket=f"{name}-logs")
    ct = world.member("cloudtrail")
    arn = ct.create_trail(Name=name, S3BucketName=f"{name}-logs", IsMultiRegionTrail=True)["TrailARN"]
    if stack:
        world.member("cloudformation").create_stack(StackName=stack, TemplateBody=TEMPLATE)
        if status:
            backend = cloudformation_backends[MEMBER][REGION]
            for s in backend.stacks.values():
                if s.name == stack:
                    s.status = status
        ct.add_tags(ResourceId=arn, TagsList=[{"Key": "aws:cloudformation:stack-name", "Value": stack}])
    ct.start_logging(Name=arn)
    ct.stop_logging(Name=arn)
    return ct, arn


@pytest.mark.parametrize("status", ["DELETE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"])
def test_a_trail_its_stack_is_replacing_or_deleting_is_alerted_not_started(world: World, status: str) -> None:
    """Old code started the trail CloudFormation had just stopped to replace or delete it."""
    ct, arn = _trail(world, "app-trail", stack="app-audit", status=status)
    finding = remediate(world, "start_logging", ct_event("cloudtrail", "StopLogging", {"name": arn}))
    assert finding["status"] == "skipped", finding
    assert f"app-audit, which is {status}" in finding["detail"]
    assert ("cloudtrail", "StartLogging") not in world.member_calls()
    assert ct.get_trail_status(Name=arn)["IsLogging"] is False
    subjects = [s for s, _ in world.messages()]
    assert subjects, "the skip is reported, never silent"


PERSON = {
    "type": "IAMUser",
    "arn": f"arn:aws:iam::{MEMBER}:user/mallory",
    "accountId": MEMBER,
    "principalId": "AIDAEXAMPLE0000000001",
    "userName": "mallory",
}


def test_a_persons_stop_is_undone_whatever_the_stack_does(world: World) -> None:
    """CloudFormation stops a trail by its own calls or a custom resource's role, never as an IAM user: the stack
    is not asked about, and its being busy cannot keep a person's stop in place."""
    ct, arn = _trail(world, "app-trail", stack="app-audit", status="UPDATE_IN_PROGRESS")
    event = ct_event("cloudtrail", "StopLogging", {"name": arn}, identity=PERSON)
    finding = remediate(world, "start_logging", event)
    assert finding["status"] == "remediated", finding
    assert finding["caller"] == "human"
    assert ct.get_trail_status(Name=arn)["IsLogging"] is True
    assert not any(service == "cloudformation" for service, _ in world.member_calls())


def test_a_settled_stack_does_not_stop_the_remediation(world: World) -> None:
    ct, arn = _trail(world, "app-trail", stack="app-audit")  # CREATE_COMPLETE
    finding = remediate(world, "start_logging", ct_event("cloudtrail", "StopLogging", {"name": arn}))
    assert finding["status"] == "remediated", finding
    assert ct.get_trail_status(Name=arn)["IsLogging"] is True


def test_a_trail_deleted_after_it_was_stopped_needs_nothing(world: World) -> None:
    ct, arn = _trail(world, "gone-trail")
    ct.delete_trail(Name="gone-trail")  # moto deletes by name only
    finding = remediate(world, "start_logging", ct_event("cloudtrail", "StopLogging", {"name": arn}))
    assert finding["status"] == "already_safe", finding
    assert "no longer exists" in finding["detail"]
    assert ("cloudtrail", "StartLogging") not in world.member_calls()


def test_trailguards_own_trail_is_started_whatever_its_stack_does(world: World) -> None:
    """Self-protection: a busy stack is no reason to leave trailguard's own trail stopped."""
    ct, arn = _trail(world, "trailguard", stack="trailguard-trail", status="UPDATE_IN_PROGRESS")
    world.set_runtime(trailguard_trail={"arn": arn})
    finding = remediate(world, "start_logging", ct_event("cloudtrail", "StopLogging", {"name": arn}))
    assert finding["status"] == "remediated", finding
    assert ct.get_trail_status(Name=arn)["IsLogging"] is True
