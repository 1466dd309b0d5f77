"""A deployment is judged by what exists, never by the CLI's ✅ or CREATE_COMPLETE.

moto (like a partial deploy) can report a stack complete while resources of a type it does not model
were never created. The inspection must name each of them; and rules planted on the central bus that
cannot be attributed to a catalog rule must stop the demo rather than be routed through.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from trailguard.emulator.inspect import expected_resources, inventory
from trailguard.emulator.rules import DeployedRulesError, deployed_rules
from trailguard.emulator.server import Endpoint, moto_server

TEMPLATE = {
    "Conditions": {"IsHome": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}},
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "kept"}},
        # A type moto does not model, even with trailguard's fixes: the stack still reads CREATE_COMPLETE.
        "Crawler": {
            "Type": "AWS::Glue::Crawler",
            "Properties": {"Role": "r", "DatabaseName": "d", "Targets": {"S3Targets": [{"Path": "s3://b"}]}},
        },
        "OnlyElsewhere": {
            "Type": "AWS::SQS::Queue",
            "Condition": "IsHome",
            "Properties": {"QueueName": "home-only"},
        },
    },
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Endpoint]:
    with moto_server() as endpoint:
        yield endpoint


def _assembly(tmp_path: Path, region: str) -> Path:
    (tmp_path / "Probe.template.json").write_text(json.dumps(TEMPLATE), encoding="utf-8")
    manifest = {
        "artifacts": {
            "Probe": {
                "type": "aws:cloudformation:stack",
                "environment": f"aws://unknown-account/{region}",
                "properties": {"templateFile": "Probe.template.json"},
            }
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return tmp_path


def _client(service: str, region: str = "us-east-1") -> Any:
    return boto3.client(service, region_name=region)


def test_a_resource_the_emulator_skipped_is_reported_missing_although_the_stack_is_complete(
    emulator: Endpoint, tmp_path: Path
) -> None:
    assembly = _assembly(tmp_path, "eu-west-1")
    cfn = _client("cloudformation", "eu-west-1")
    cfn.create_stack(StackName="Probe", TemplateBody=json.dumps(TEMPLATE))
    assert cfn.describe_stacks(StackName="Probe")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    account = _client("sts").get_caller_identity()["Account"]
    inv = inventory(assembly, account, _client)
    assert inv.missing == ["Probe/Crawler (AWS::Glue::Crawler)"]
    # The conditional resource is not expected outside its home region, so it is neither counted nor missing.
    assert inv.resources == 2
    assert inv.line() == "deployed: 1 stacks, 2 resources, 1 missing"


def test_a_stack_that_was_never_created_has_every_resource_missing(emulator: Endpoint, tmp_path: Path) -> None:
    assembly = _assembly(tmp_path, "ap-south-1")
    account = _client("sts").get_caller_identity()["Account"]
    inv = inventory(assembly, account, _client)
    assert len(inv.missing) == 2


def test_conditions_are_evaluated_per_region() -> None:
    assert set(expected_resources(TEMPLATE, "us-east-1", "1")) == {"Queue", "Crawler", "OnlyElsewhere"}
    assert set(expected_resources(TEMPLATE, "eu-west-1", "1")) == {"Queue", "Crawler"}


def test_a_rule_planted_on_the_central_bus_that_names_no_catalog_rule_stops_the_demo(emulator: Endpoint) -> None:
    events = _client("events")
    events.create_event_bus(Name="trailguard-central")
    events.put_rule(
        Name="planted", EventBusName="trailguard-central", EventPattern=json.dumps({"source": [{"prefix": ""}]})
    )
    events.put_targets(
        Rule="planted",
        EventBusName="trailguard-central",
        Targets=[{"Id": "1", "Arn": "arn:aws:sqs:us-east-1:123456789012:elsewhere"}],
    )
    with pytest.raises(DeployedRulesError, match="planted"):
        deployed_rules(events)
