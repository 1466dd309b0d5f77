"""A catalog rule with a 5,000-character pattern deploys as several central rules, exactly.

The detection stack is synthesized alone with the real catalog plus one synthetic rule (the kind of broad
API selection the catalog is heading for), so the naming of parts 2..n, their targets and the permission
that covers them are checked beyond the one rule the real catalog splits today.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from detection_helpers import central_rule_parts
from trailguard_engine.catalog import load_catalog
from trailguard_engine.matcher import matches
from trailguard_engine.model import Rule
from trailguard_engine.pattern_split import pattern_size

from stacks import detection
from trailguard.config import load_config

ROOT = Path(__file__).resolve().parents[2]

API = "AWS API Call via CloudTrail"
NAMES = [f"Put{w}Configuration{i:03d}" for i, w in enumerate(["Bucket", "Trail", "Key", "Role", "Policy"] * 40)]
WIDE_ID = "synthetic-wide-api-selection"


def _wide_rule(base: Rule) -> Rule:
    pattern = {
        "source": ["aws.s3", "aws.cloudtrail", "aws.kms", "aws.iam"],
        "detail-type": [API],
        "detail": {"eventName": NAMES[:180], "errorCode": [{"exists": False}]},
    }
    assert pattern_size(pattern) > 5000
    example = {"source": "aws.kms", "detail-type": API, "detail": {"eventName": NAMES[0]}}
    return dataclasses.replace(base, id=WIDE_ID, event_pattern=pattern, examples_positive=(example,))


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    catalog = (*load_catalog(), _wide_rule(load_catalog()[0]))
    context = json.loads((ROOT / "cdk.json").read_text())["context"]  # tests do not read cdk.json by themselves
    original = detection.load_catalog
    detection.load_catalog = lambda: catalog  # type: ignore[assignment]
    try:
        app = cdk.App(context=context)
        stack = detection.DetectionStack(
            app, "TrailguardDetection", cfg=load_config(None), env=cdk.Environment(region="us-east-1")
        )
        return dict(app.synth().get_stack_by_name(stack.stack_name).template)
    finally:
        detection.load_catalog = original


def test_a_5000_character_rule_deploys_as_named_parts_with_the_same_target(template: dict[str, Any]) -> None:
    parts = central_rule_parts(template)[WIDE_ID]
    assert len(parts) >= 4
    names = [p["Name"] for p in parts]
    assert names == [f"tg-{WIDE_ID}"] + [f"tg-{WIDE_ID}-p{n}" for n in range(2, len(parts) + 1)]
    assert all(len(n) <= 64 for n in names)
    for p in parts:
        assert pattern_size(p["EventPattern"]) <= detection.PATTERN_SPLIT_CHARS
        (target,) = p["Targets"]
        rendered = json.loads(target["InputTransformer"]["InputTemplate"].replace("<aws.events.event.json>", "{}"))
        assert rendered == {"trailguard_rule": WIDE_ID, "event": {}}
        assert p["State"] == "ENABLED"
    assert len({json.dumps(p["Targets"], sort_keys=True) for p in parts}) == 1
    # exact: every name in exactly one part, every other constraint in every part
    assert [n for p in parts for n in p["EventPattern"]["detail"]["eventName"]] == NAMES[:180]
    assert all(p["EventPattern"]["detail"]["errorCode"] == [{"exists": False}] for p in parts)
    for name in (NAMES[0], NAMES[179], NAMES[180]):
        ev = {"source": "aws.iam", "detail-type": API, "detail": {"eventName": name}}
        assert sum(matches(p["EventPattern"], ev) for p in parts) == (name in NAMES[:180])
    # the engine's one permission covers every part's ARN
    (permission,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Permission" and "trailguard-central" in json.dumps(r["Properties"]["SourceArn"])
    ]
    source = json.dumps(permission["SourceArn"])
    assert "/tg-*" in source
    assert all(fnmatch.fnmatchcase(n, "tg-*") for n in names)


def test_long_rule_ids_keep_their_part_suffix_within_64_characters() -> None:
    rid = "x" * 70
    names = [detection.central_rule_name(rid, n) for n in (1, 2, 12)]
    assert all(len(n) <= 64 and n.startswith(detection.RULE_NAME_PREFIX) for n in names)
    assert names[1].endswith("-p2") and names[2].endswith("-p12")
    assert len(set(names)) == 3
    assert detection.central_rule_name("short") == "tg-short"
    assert detection.central_rule_name("short", 2) == "tg-short-p2"
