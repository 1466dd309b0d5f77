"""Uninstall in the emulator: ``cdk destroy`` removes what trailguard runs and keeps what docs/deploy.md says it keeps.

The retained trail must keep delivering into the retained archive after the stacks are gone: the archive,
its bucket policy (CloudTrail's write grant), the keys, the log group and the trail's CloudWatch Logs role.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from trailguard.emulator import deploy
from trailguard.emulator.server import moto_server


def _c(service: str, region: str = "us-east-1") -> Any:
    return boto3.client(service, region_name=region)


@pytest.mark.slow
def test_cdk_destroy_keeps_the_trail_delivering_and_removes_the_rest(standalone: Any) -> None:
    assembly = standalone.outdir
    with moto_server() as endpoint:
        account = _c("sts").get_caller_identity()["Account"]
        deploy.bootstrap(assembly, account, endpoint.env)
        deploy.deploy(assembly, endpoint.env)
        archive = _c("cloudtrail").describe_trails(trailNameList=["trailguard"])["trailList"][0]["S3BucketName"]
        functions_before = [f for f in _c("lambda").list_functions()["Functions"] if "Trailguard" in f["FunctionName"]]
        assert functions_before

        deploy.destroy(assembly, endpoint.env)

        stacks = [s["StackName"] for s in _c("cloudformation").describe_stacks()["Stacks"]]
        assert not [s for s in stacks if s.startswith("Trailguard")]
        # Kept: the trail, still logging, into the archive that still grants CloudTrail its writes.
        assert _c("cloudtrail").get_trail_status(Name="trailguard")["IsLogging"] is True
        policy = json.loads(_c("s3").get_bucket_policy(Bucket=archive)["Policy"])
        assert any("cloudtrail.amazonaws.com" in json.dumps(s.get("Principal")) for s in policy["Statement"])
        assert _c("s3").get_bucket_versioning(Bucket=archive)["Status"] == "Enabled"
        roles = [r["RoleName"] for r in _c("iam").list_roles()["Roles"]]
        assert any("CloudWatchLogsRole" in r or "CloudTrailCloudWatchLogs" in r for r in roles), roles
        groups = [g["logGroupName"] for g in _c("logs").describe_log_groups()["logGroups"]]
        assert "/trailguard/cloudtrail/trailguard" in groups
        assert _c("kms").list_keys()["Keys"]  # the trail and archive keys are retained
        # Removed: what runs (functions, central rules, queues).
        assert not [f for f in _c("lambda").list_functions()["Functions"] if "Trailguard" in f["FunctionName"]]
        buses = [b["Name"] for b in _c("events").list_event_buses()["EventBuses"]]
        assert "trailguard-central" not in buses
