"""End to end in moto: the bucket-policy remediation removes exactly the statements the decision judged public.

Before issue 14 the decision and the remediation judged statements differently (the remediation asked
policyuniverse directly): a statement behind ``aws:PrincipalOrgID StringLike o-*`` was alerted but left in
place, and a statement pinned to a VPC endpoint next to ``aws:SourceIp 0.0.0.0/0`` was removed although it
admits nobody outside the endpoint. Both now follow trailguard_engine.policy; a request CloudTrail omitted as
too large never reaches the remediation.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from engine_world import World, ct_event, force_remediate, real_rules

BUCKET = "loot-bucket"
ORG_STAR = {
    "Sid": "LooksOrgOnly",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/*",
    "Condition": {"StringLike": {"aws:PrincipalOrgID": "o-*"}},
}
VPCE_ONLY = {
    "Sid": "EndpointOnly",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/*",
    "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-0a1b2c3d"}, "IpAddress": {"aws:SourceIp": "0.0.0.0/0"}},
}


def _rule() -> Any:
    return next(r for r in real_rules() if r.id == "s3-bucket-policy-public")


def _setup(world: World, policy: dict[str, Any]) -> Any:
    s3 = world.member("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    force_remediate(world, _rule())
    return s3


def test_removes_the_condition_bypass_and_keeps_the_endpoint_statement(world: World) -> None:
    policy = {"Version": "2012-10-17", "Statement": [VPCE_ONLY, ORG_STAR]}
    s3 = _setup(world, policy)
    # the record carries the policy URL-encoded: the decision reads it all the same
    event = ct_event(
        "s3", "PutBucketPolicy", {"bucketName": BUCKET, "bucketPolicy": quote(json.dumps(policy), safe="")}
    )
    out = world.invoke(event, _rule().id)
    [finding] = out["findings"]
    assert finding["status"] == "remediated", finding
    after = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    assert after["Statement"] == [VPCE_ONLY]


def test_too_large_request_is_alerted_and_changes_nothing(world: World) -> None:
    policy = {"Version": "2012-10-17", "Statement": [ORG_STAR]}
    s3 = _setup(world, policy)
    omitted = {"reason": "requestParameters too large", "omitted": True, "originalSize": 131072}
    out = world.invoke(ct_event("s3", "PutBucketPolicy", omitted), _rule().id)
    [finding] = out["findings"]
    assert finding["decision"] == "alert"
    assert not [c for c in world.member_calls() if c[0] == "s3" and c[1].startswith(("Put", "Delete"))]
    assert json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"]) == policy
