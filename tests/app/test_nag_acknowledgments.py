"""Every cdk-nag acknowledgment in the whole app is counted, per stack, so a new one is a deliberate change.

The foundation stacks also have their own pinned counts (tests/foundation); this
test covers every stack, including detection, member and security-tooling.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

#: Acknowledgments per stack (member stacks are counted once per stack; they are identical per region).
#: Issue 12: member 15 -> 16 (the drift sweep's key reads are pinned to this account's keys in the home
#: region, ``key/*``: a wildcard of its own, where they used to share the catalog's ``*``); organization
#: detection 26 -> 27 (the engine's sts:AssumeRoot on ``arn:<partition>:iam::*:root``, pinned to one
#: task policy; standalone grants no AssumeRoot).
#: Issue 13: detection +9 in both modes (standalone 24 -> 33, organization 27 -> 36): the digest verifier
#: ``trailguard-verify`` gets what every function gets (L1 runtime, LambdaInsideVPC, LambdaDLQ for an SQS/schedule
#: function; its role's log-stream wildcard, the detection key's GenerateDataKey*, IAMNoInlinePolicy) plus what
#: reading the archive needs, like reconcile (``AWSLogs/*``, the log-archive account's ``key/*``), and
#: ``cloudtrail:ListPublicKeys`` on ``*`` (the action has no resource type).
#: Issue 20: organization security tooling 3 -> 8: ``trailguard-athena-accounts`` (the Athena account projection
#: follows the organization) gets L1, LambdaInsideVPC, its log-stream wildcard, ``organizations:ListAccounts`` on
#: ``*`` (no resource type) and IAMNoInlinePolicy; standalone has one account and no such function.
EXPECTED = {
    "standalone": {
        "TrailguardLogArchive": 2,
        "TrailguardTrail": 1,
        "TrailguardSecurityTooling": 3,
        "TrailguardDetection": 33,
        "TrailguardMember-*": 17,  # + the forwarding DLQ alarm without an action (issue 20)
    },
    "organization": {
        "TrailguardLogArchive": 2,
        "TrailguardTrail": 2,
        "TrailguardGuardrails": 0,
        "TrailguardSecurityTooling": 8,
        "TrailguardDetection": 37,  # + the engine's organizations:ListAccounts on * (issue 14)
        "TrailguardMemberStackSet": 0,
        "TrailguardMember-*": 17,  # + the forwarding DLQ alarm without an action (issue 20)
    },
}


def _acks(outdir: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for meta_path in outdir.glob("*.metadata.json"):
        stack = meta_path.name.removesuffix(".metadata.json")
        meta = json.loads(meta_path.read_text())
        out[stack] = [
            reason
            for entries in meta.values()
            for entry in entries
            if entry.get("type") == "aws:cdk:acknowledged-rules"
            for reason in entry["data"].values()
        ]
    return out


@pytest.mark.parametrize("mode", ["standalone", "organization"])
def test_acknowledgment_count_per_stack(mode: str, request: pytest.FixtureRequest) -> None:
    synth: Any = request.getfixturevalue(mode)
    acks = _acks(synth.outdir)
    counted: Counter[str] = Counter()
    for stack, reasons in acks.items():
        key = "TrailguardMember-*" if stack.startswith("TrailguardMember-") else stack
        if key == "TrailguardMember-*":
            assert len(reasons) == EXPECTED[mode][key], f"{stack}: {len(reasons)} acknowledgments"
            counted[key] = len(reasons)
        else:
            counted[key] += len(reasons)
        for reason in reasons:
            assert len(reason) >= 25, f"{stack}: acknowledgment reason too vague: {reason!r}"
    got = {k: v for k, v in counted.items() if k in EXPECTED[mode] or v}
    assert got == {k: v for k, v in EXPECTED[mode].items() if k in counted or v}, got
