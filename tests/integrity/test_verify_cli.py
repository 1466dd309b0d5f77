"""``trailguard verify`` end to end: moto S3 or a synced local tree, exit codes 0/1/2, --json, side files."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from integrity_helpers import BUCKET, ORG, T0, Chain, Signer, download_tree, log_body, record, rewrite
from typer.testing import CliRunner

from trailguard import verify as vf
from trailguard.cli import _load_commands, app

_load_commands()
runner = CliRunner()


@pytest.fixture
def keys_file(tmp_path: Path, signer: Signer) -> Path:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(signer.keys_doc()))
    return path


def run(*args: str) -> Any:
    return runner.invoke(app, ["verify", *args])


def test_a_valid_archive_exits_0_with_a_summary(s3: Any, signer: Signer, keys_file: Path) -> None:
    Chain(s3, signer).hours(3)
    result = run(f"s3://{BUCKET}", "--public-keys", str(keys_file))
    assert result.exit_code == 0, result.output
    rows = {
        cells[0]: cells[1:]
        for line in result.output.splitlines()
        if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 3
    }
    assert rows["valid"] == ["3", "6"] and rows["invalid"] == ["0", "-"] and rows["unlisted"] == ["-", "0"]
    assert "s3://" not in result.output  # no problem lines


def test_tampering_exits_1_with_one_line_per_problem(s3: Any, signer: Signer, keys_file: Path) -> None:
    chain = Chain(s3, signer).hours(3)
    rewrite(s3, BUCKET, chain.logs[1], log_body([record(T0, name="Other")])[1])
    s3.delete_object(Bucket=BUCKET, Key=chain.logs[3])
    result = run(f"s3://{BUCKET}", "--public-keys", str(keys_file), "--workers", "4")
    assert result.exit_code == 1, result.output
    assert f"s3://{BUCKET}/{chain.logs[1]}: log file modified: " in result.output
    assert f"s3://{BUCKET}/{chain.logs[3]}: log file deleted: " in result.output


def test_json_output(s3: Any, signer: Signer, keys_file: Path) -> None:
    chain = Chain(s3, signer, org=ORG, prefix="p/").hours(2)
    s3.delete_object(Bucket=BUCKET, Key=chain.digests[0])
    result = run(f"s3://{BUCKET}/p", "--public-keys", str(keys_file), "--json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["source"] == f"s3://{BUCKET}/p/" and doc["ok"] is False
    assert doc["counts"]["digests"] == {"valid": 1, "invalid": 0, "missing": 1, "not-checked": 0}
    assert doc["problems"][0].startswith(f"s3://{BUCKET}/{chain.digests[0]}: digest missing: named as the previous")
    assert {d["key"] for d in doc["digests"]} == set(chain.digests)


def test_since_until_account_region_options(s3: Any, signer: Signer, keys_file: Path) -> None:
    Chain(s3, signer).hours(5)
    Chain(s3, signer, region="eu-west-1").hours(5)
    since, until = (T0 + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), (T0 + timedelta(hours=2)).isoformat()
    args = ["--since", since, "--until", until, "--account", "111122223333", "--region", "eu-west-1", "--json"]
    result = run(f"s3://{BUCKET}", "--public-keys", str(keys_file), *args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert {d["region"] for d in doc["digests"]} == {"eu-west-1"}
    assert doc["counts"]["digests"]["valid"] == 3


@pytest.mark.parametrize(
    "args",
    [
        ["s3://"],
        ["/no/such/directory"],
        [f"s3://{BUCKET}", "--since", "yesterday"],
        [f"s3://{BUCKET}", "--since", "2026-10-02", "--until", "2026-10-01"],
        [f"s3://{BUCKET}", "--public-keys", "/no/such/keys.json"],
        [f"s3://{BUCKET}", "--signatures", "x.json"],
        ["s3://no-such-bucket"],
    ],
    ids=[
        "no-bucket",
        "no-directory",
        "bad-time",
        "reversed-range",
        "no-key-file",
        "signatures-for-s3",
        "bucket-absent",
    ],
)
def test_usage_and_access_errors_exit_2_with_one_line(
    s3: Any, signer: Signer, keys_file: Path, args: list[str]
) -> None:
    Chain(s3, signer).hours(1)
    if "--public-keys" not in args:
        args = [*args, "--public-keys", str(keys_file)]
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: ")


def test_a_key_file_that_is_not_a_key_list_exits_2(s3: Any, signer: Signer, tmp_path: Path) -> None:
    Chain(s3, signer).hours(1)
    bad = tmp_path / "bad.json"
    bad.write_text('{"PublicKeyList": [{"Fingerprint": "ab"}]}')
    result = run(f"s3://{BUCKET}", "--public-keys", str(bad))
    assert result.exit_code == 2 and "needs Fingerprint and Value" in result.output


def test_local_tree_with_fetched_signatures(s3: Any, signer: Signer, keys_file: Path, tmp_path: Path) -> None:
    chain = Chain(s3, signer, prefix="trail/").hours(3)
    sigs = tmp_path / "sigs.json"
    fetched = run(f"s3://{BUCKET}/trail", "--fetch-signatures", str(sigs))
    assert fetched.exit_code == 0, fetched.output
    assert "3 digest signature(s)" in fetched.output
    side = json.loads(sigs.read_text())
    assert side["signatures"] == {
        k: {"signature": chain.signatures[k], "signature-algorithm": "SHA256withRSA"} for k in chain.digests
    }
    tree = tmp_path / "tree"
    download_tree(s3, BUCKET, tree, prefix="trail/")  # synced from the prefix: keys lose "trail/"
    result = run(str(tree), "--signatures", str(sigs), "--public-keys", str(keys_file), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["counts"]["digests"]["valid"] == 3 and doc["counts"]["log_files"]["valid"] == 6
    # Tampering with the local copy is caught the same way.
    victim = tree / chain.logs[0].removeprefix("trail/")
    victim.write_bytes(log_body([record(T0, name="Changed")])[1])
    result = run(str(tree), "--signatures", str(sigs), "--public-keys", str(keys_file))
    assert result.exit_code == 1 and "log file modified" in result.output


def test_local_tree_without_signatures_uses_successors_and_reports_the_newest_not_checked(
    s3: Any, signer: Signer, keys_file: Path, tmp_path: Path
) -> None:
    chain = Chain(s3, signer).hours(3)
    tree = tmp_path / "bucket-root"
    download_tree(s3, BUCKET, tree / "synced")  # synced from the bucket root, one level down
    result = run(str(tree), "--public-keys", str(keys_file), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    by_key = {d["key"].removeprefix("synced/"): d for d in doc["digests"]}
    assert [by_key[k]["status"] for k in chain.digests] == ["valid", "valid", "not-checked"]
    assert "not in the side file" in by_key[chain.digests[2]]["reason"]
    assert doc["counts"]["log_files"] == {"valid": 4, "modified": 0, "deleted": 0, "unlisted": 0, "not-checked": 2}


def test_fetch_signatures_needs_an_s3_source(tmp_path: Path) -> None:
    (tmp_path / "AWSLogs").mkdir()
    result = run(str(tmp_path), "--fetch-signatures", str(tmp_path / "s.json"))
    assert result.exit_code == 2 and "give an s3:// source" in result.output


def test_a_bad_side_file_exits_2(tmp_path: Path, keys_file: Path) -> None:
    (tmp_path / "AWSLogs").mkdir()
    side = tmp_path / "sigs.json"
    side.write_text('{"signatures": {}}')
    result = run(str(tmp_path), "--signatures", str(side), "--public-keys", str(keys_file))
    assert result.exit_code == 2 and "not a signatures file" in result.output


def test_without_a_key_file_the_keys_come_from_list_public_keys(
    s3: Any, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ListPublicKeys client per digest region (moto does not model the API: a stand-in answers)."""
    Chain(s3, signer).hours(2)
    Chain(s3, signer, region="eu-west-1").hours(1)
    asked: list[str | None] = []
    real = vf.make_client

    class CloudTrail:
        def __init__(self, region: str | None) -> None:
            asked.append(region)

        def get_paginator(self, name: str) -> CloudTrail:
            return self

        def paginate(self, **kw: Any) -> list[dict[str, Any]]:
            return [signer.keys_doc()]

    def make(service: str, region: str | None, endpoint_url: str | None = None) -> Any:
        return CloudTrail(region) if service == "cloudtrail" else real(service, region, endpoint_url)

    monkeypatch.setattr(vf, "make_client", make)
    result = run(f"s3://{BUCKET}", "--until", "2026-10-02T00:00:00Z", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(a or "" for a in asked) == ["eu-west-1", "us-east-1"]


def test_help_renders() -> None:
    result = run("--help")
    assert result.exit_code == 0 and "--fetch-signatures" in result.output
