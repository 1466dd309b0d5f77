"""Helpers for the foundation stack tests. Synths come from the session fixtures in tests/conftest.py.

Test modules import these from here, never ``from conftest import``: several test folders have a
conftest.py, and that import resolves to whichever one pytest imported last."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_ARCHIVE = "TrailguardLogArchive"
TRAIL = "TrailguardTrail"
GUARDRAILS = "TrailguardGuardrails"


def only(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The single resource of a type (fails loudly if there are none or several)."""
    assert len(resources) == 1, f"expected exactly one resource, got {sorted(resources)}"
    return next(iter(resources.values()))


def flat(node: Any) -> str:
    """Render CloudFormation intrinsics as text (``${Ref}``) so ARNs can be compared as strings."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        if "Ref" in node:
            return "${" + node["Ref"] + "}"
        if "Fn::GetAtt" in node:
            return "${" + ".".join(node["Fn::GetAtt"]) + "}"
        if "Fn::Join" in node:
            sep, parts = node["Fn::Join"]
            return sep.join(flat(p) for p in parts)
        return json.dumps({k: flat(v) for k, v in node.items()}, sort_keys=True)
    if isinstance(node, list):
        return json.dumps([flat(v) for v in node])
    return json.dumps(node)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Policy statements by Sid (statements without a Sid keyed by their position)."""
    return {s.get("Sid", f"#{i}"): s for i, s in enumerate(doc["Statement"])}


def the_trail(synth: Any) -> dict[str, Any]:
    return only(synth.resources(TRAIL, "AWS::CloudTrail::Trail"))["Properties"]


def archive_bucket(synth: Any) -> tuple[str, dict[str, Any]]:
    """(logical id, properties) of the archive bucket: the KMS-encrypted one."""
    for lid, res in synth.resources(LOG_ARCHIVE, "AWS::S3::Bucket").items():
        enc = res["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        if enc["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms":
            return lid, res["Properties"]
    raise AssertionError("no KMS-encrypted archive bucket")


def bucket_policy(synth: Any, bucket_lid: str) -> dict[str, Any]:
    for res in synth.resources(LOG_ARCHIVE, "AWS::S3::BucketPolicy").values():
        if res["Properties"]["Bucket"] == {"Ref": bucket_lid}:
            return dict(res["Properties"]["PolicyDocument"])
    raise AssertionError(f"no bucket policy for {bucket_lid}")


def key_by_alias(synth: Any, stack: str, alias: str) -> dict[str, Any]:
    aliases = synth.resources(stack, "AWS::KMS::Alias")
    for res in aliases.values():
        if res["Properties"]["AliasName"] == alias:
            lid = res["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
            return dict(synth.templates[stack]["Resources"][lid]["Properties"])
    raise AssertionError(f"no key with alias {alias} in {stack}")


def acknowledgments(outdir: Path, stack: str) -> list[tuple[str, str, str]]:
    """Every cdk-nag acknowledgment recorded in a stack's metadata: (construct path, rule id, reason)."""
    meta = json.loads((outdir / f"{stack}.metadata.json").read_text())
    return [
        (path, rule, reason)
        for path, entries in meta.items()
        for entry in entries
        if entry.get("type") == "aws:cdk:acknowledged-rules"
        for rule, reason in entry["data"].items()
    ]


@dataclass
class Case:
    """One synthesized mode plus the values its templates must carry."""

    s: Any  # tests/conftest.Synth
    org: bool
    archive_account: str  # literal account or "${AWS::AccountId}" (standalone is env-agnostic)
    trail_owner: str
    org_id: str | None
    break_glass: list[str]  # exact, account-pinned role ARNs; empty: no exception at all


#: config/example-organization.yaml's break_glass_role_arns.
EXAMPLE_BREAK_GLASS = [
    "arn:aws:iam::111111111111:role/security-break-glass",
    "arn:aws:iam::222222222222:role/security-break-glass",
]
