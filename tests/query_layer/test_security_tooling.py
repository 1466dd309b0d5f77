"""Security-tooling stack: Glue table with partition projection, Athena workgroup, results bucket, named queries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from tooling_synth import Tooling

from trailguard.config import KNOWN_REGIONS, load_config
from trailguard.sqlcatalog import CLOUDTRAIL_COLUMNS, load_queries

QUERIES = load_queries()


def _resolve(value: Any) -> str:
    """Flatten Fn::Join / Ref so template strings can be compared."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(_resolve(p) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        return "<" + value["Ref"] + ">"
    return json.dumps(value)


def _tables(tooling: Tooling, stack: str) -> dict[str, dict[str, Any]]:
    return {
        t["Properties"]["TableInput"]["Name"]: t["Properties"] for t in tooling.resources(stack, "AWS::Glue::Table")
    }


def test_standalone_table_projection(tooling: Tooling) -> None:
    tables = _tables(tooling, "Standalone")
    assert set(tables) == {"cloudtrail"}
    ti = tables["cloudtrail"]["TableInput"]
    params = {k: _resolve(v) for k, v in ti["Parameters"].items()}
    assert params["projection.enabled"] == "true"
    assert params["projection.account.type"] == "enum"
    assert params["projection.account.values"] == "<AWS::AccountId>"
    assert params["projection.region.type"] == "enum"
    assert params["projection.region.values"].split(",") == list(KNOWN_REGIONS)
    assert (params["projection.date.type"], params["projection.date.format"]) == ("date", "yyyy/MM/dd")
    assert params["projection.date.range"].endswith(",NOW")
    assert (params["projection.date.interval"], params["projection.date.interval.unit"]) == ("1", "DAYS")
    assert params["storage.location.template"] == (
        "s3://trailguard-archive-<AWS::AccountId>-us-east-1/AWSLogs/${account}/CloudTrail/${region}/${date}"
    )
    assert [p["Name"] for p in ti["PartitionKeys"]] == ["account", "region", "date"]


def test_organization_tables_cover_org_and_account_paths(tooling: Tooling) -> None:
    cfg = load_config(Path(__file__).resolve().parents[2] / "config" / "example-organization.yaml")
    tables = _tables(tooling, "Organization")
    assert set(tables) == {"cloudtrail", "cloudtrail_account_trails"}
    org_tpl = _resolve(tables["cloudtrail"]["TableInput"]["Parameters"]["storage.location.template"])
    acct_tpl = _resolve(tables["cloudtrail_account_trails"]["TableInput"]["Parameters"]["storage.location.template"])
    bucket = f"trailguard-archive-{cfg.org.log_archive_account_id}-us-east-1"
    assert org_tpl == f"s3://{bucket}/AWSLogs/{cfg.org.org_id}/${{account}}/CloudTrail/${{region}}/${{date}}"
    assert acct_tpl == f"s3://{bucket}/AWSLogs/${{account}}/CloudTrail/${{region}}/${{date}}"
    # account enum comes from a parameter whose default lists the known accounts
    params = tooling.templates["Organization"]["Parameters"]
    (pname,) = [k for k, v in params.items() if v.get("Type") == "CommaDelimitedList"]
    assert params[pname]["Default"] == "111111111111,222222222222,333333333333"
    values = tables["cloudtrail"]["TableInput"]["Parameters"]["projection.account.values"]
    assert values == {"Fn::Join": [",", {"Ref": pname}]}


@pytest.mark.parametrize("stack", ["Standalone", "Organization"])
def test_table_uses_cloudtrail_serde_and_documented_columns(tooling: Tooling, stack: str) -> None:
    for props in _tables(tooling, stack).values():
        sd = props["TableInput"]["StorageDescriptor"]
        assert sd["SerdeInfo"]["SerializationLibrary"] == "com.amazon.emr.hive.serde.CloudTrailSerde"
        assert sd["InputFormat"] == "com.amazon.emr.cloudtrail.CloudTrailInputFormat"
        assert sd["OutputFormat"] == "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
        assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == [(n, t) for n, t, _ in CLOUDTRAIL_COLUMNS]
        assert props["TableInput"]["TableType"] == "EXTERNAL_TABLE"
        assert props["DatabaseName"] == "trailguard"


@pytest.mark.parametrize("stack", ["Standalone", "Organization"])
def test_workgroup_enforced_and_kms_encrypted(tooling: Tooling, stack: str) -> None:
    (wg,) = tooling.resources(stack, "AWS::Athena::WorkGroup")
    conf = wg["Properties"]["WorkGroupConfiguration"]
    assert conf["EnforceWorkGroupConfiguration"] is True
    assert conf["EngineVersion"]["SelectedEngineVersion"] == "Athena engine version 3"
    rc = conf["ResultConfiguration"]
    assert rc["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    key_id = rc["EncryptionConfiguration"]["KmsKey"]["Fn::GetAtt"][0]
    key = tooling.templates[stack]["Resources"][key_id]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert _resolve(rc["OutputLocation"]).startswith("s3://<")
    assert conf["BytesScannedCutoffPerQuery"] > 0


@pytest.mark.parametrize("stack", ["Standalone", "Organization"])
def test_results_bucket_hardened_with_expiry(tooling: Tooling, stack: str) -> None:
    resources = tooling.templates[stack]["Resources"]
    buckets = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::S3::Bucket"}

    def algorithm(bucket: dict[str, Any]) -> str:
        return str(
            bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
                "SSEAlgorithm"
            ]
        )

    (results_id,) = [k for k, b in buckets.items() if algorithm(b) == "aws:kms"]
    results = buckets[results_id]
    assert results["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }  # fmt: skip
    assert results["VersioningConfiguration"] == {"Status": "Enabled"}
    assert results["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["BucketKeyEnabled"] is True
    assert "DestinationBucketName" in results["LoggingConfiguration"]
    days = load_config(None).retention.athena_results_days
    (rule,) = results["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == days
    assert rule["Status"] == "Enabled"
    policies = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::S3::BucketPolicy"]
    tls = [
        s for p in policies if p["Bucket"] == {"Ref": results_id} for s in p["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]  # fmt: skip
    assert tls, "results bucket must deny non-TLS requests"


@pytest.mark.parametrize("stack", ["Standalone", "Organization"])
def test_named_queries_come_from_the_sql_files(tooling: Tooling, stack: str) -> None:
    named = [r["Properties"] for r in tooling.resources(stack, "AWS::Athena::NamedQuery")]
    assert len(named) == len(QUERIES) >= 12
    by_sql = {n["QueryString"]: n for n in named}
    for q in QUERIES.values():
        expected = q.athena_sql('"trailguard"."cloudtrail"')
        assert expected in by_sql, q.name
        n = by_sql[expected]
        assert n["Database"] == "trailguard"
        assert n["WorkGroup"] == {"Ref": n["WorkGroup"]["Ref"]}
        assert q.title in n["Name"]
        assert n["Description"].startswith(q.description[:50])
        sqlglot.parse_one(n["QueryString"], read="trino")


def test_nag_passes_and_acknowledgments_are_counted_and_used(tooling: Tooling) -> None:
    # The synth itself fails on any unacknowledged AwsSolutions / NIST 800-53 R5 finding.
    report = json.loads((tooling.outdir / "validation-report.json").read_text())
    plugins = {p["pluginName"]: p for p in report["pluginReports"]}
    assert "NIST.800.53.R5" in plugins  # a pack with nothing to report (AwsSolutions here) writes no entry
    assert all(p["violations"] == [] and p["conclusion"] == "success" for p in plugins.values())
    used = {
        (s["acknowledgedAt"], s["acknowledgedId"]) for p in plugins.values() for s in p.get("suppressedViolations", [])
    }
    counts = {}
    for stack in ("Standalone", "Organization"):
        meta = json.loads((tooling.outdir / f"{stack}.metadata.json").read_text())
        acks = [
            (path, rule, reason)
            for path, entries in meta.items()
            for entry in entries
            if entry.get("type") == "aws:cdk:acknowledged-rules"
            for rule, reason in entry["data"].items()
        ]
        for path, rule, reason in acks:
            assert (path.lstrip("/"), rule) in used, f"stale acknowledgment {rule} at {path}"
            assert len(reason) >= 40
        counts[stack] = len(acks)
    # New acknowledgments must be deliberate: this count changes with them.
    # Issue 20: organization +5 for trailguard-athena-accounts (L1, LambdaInsideVPC, its log-stream wildcard,
    # organizations:ListAccounts on *, IAMNoInlinePolicy).
    assert counts == {"Standalone": 3, "Organization": 8}
