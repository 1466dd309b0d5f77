"""The AWS documentation's own examples (fixtures/, copied from the CloudTrail User Guide), not our generator."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from trailguard_engine import integrity as ig

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def doc_digest(name: str = "aws-doc-digest.json") -> ig.Digest:
    data: dict[str, Any] = json.loads(fixture(name))
    return ig.parse_digest(data["digestS3Bucket"], data["digestS3Object"], gzip.compress(fixture(name)))


def test_the_documented_sample_digest_parses() -> None:
    d = doc_digest()
    assert d.data["digestSignatureAlgorithm"] == ig.SIGNATURE_ALGORITHM
    assert d.previous == (
        "S3-bucket-name",
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/"
        "111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T140131Z.json.gz",
    )
    [log] = d.log_files
    assert (log.bucket, log.hash_algorithm) == ("S3-bucket-name", ig.HASH_ALGORITHM)
    assert log.hash_value == "9bb6196fc6b84d6f075a56548feca262bd99ba3c2de41b618e5b6e22c1fc71f6"
    assert d.end_time == datetime(2015, 8, 17, 15, 1, 31, tzinfo=UTC)


def test_the_data_signing_string_has_the_documented_layout() -> None:
    """end time, bucket/key, hex SHA-256 of the uncompressed digest, previous signature: four lines."""
    d = doc_digest()
    lines = ig.string_to_sign(d).decode().split("\n")
    assert lines == [
        "2015-08-17T15:01:31Z",
        "S3-bucket-name/" + d.data["digestS3Object"],
        hashlib.sha256(fixture("aws-doc-digest.json")).hexdigest(),
        d.data["previousDigestSignature"],
    ]


def test_the_documented_paths_parse() -> None:
    d = doc_digest()
    p = ig.parse_digest_key(d.data["digestS3Object"])
    assert p is not None
    assert (p.account, p.region, p.trail, p.home_region, p.org, p.backfill) == (
        "111122223333",
        "us-east-2",
        "your-trail-name",
        "us-east-2",
        None,
        False,
    )
    assert p.end == d.end_time
    lp = ig.parse_log_key(d.log_files[0].key)
    assert lp is not None and (lp.account, lp.region) == ("111122223333", "us-east-2")
    assert lp.at == datetime(2015, 8, 17, 14, 45, tzinfo=UTC)
    org = ig.parse_digest_key("trails/AWSLogs/o-exampleorgid/" + d.data["digestS3Object"].removeprefix("AWSLogs/"))
    assert org is not None and (org.prefix, org.org, org.account) == ("trails/", "o-exampleorgid", "111122223333")
    backfill = ig.parse_digest_key(d.data["digestS3Object"].replace(".json.gz", "_backfill.json.gz"))
    assert backfill is not None and backfill.backfill


def test_the_documented_empty_hour_digest_parses() -> None:
    d = doc_digest("aws-doc-empty-digest.json")
    assert d.log_files == ()
    assert d.data["newestEventTime"] is None and d.data["oldestEventTime"] is None


def test_the_documented_public_key_list_loads() -> None:
    keys = ig.load_public_keys(json.loads(fixture("aws-doc-list-public-keys.json")))
    assert sorted(keys) == [
        "31e8b5433410dfb61a9dc45cc65b22ff",
        "8933b39ddc64d26d8e14ffbf6566fee4",
        "8eba5db5bea9b640d1c96a77256fe7f2",
    ]
    k = keys["31e8b5433410dfb61a9dc45cc65b22ff"]
    assert k.valid_from == datetime.fromtimestamp(1434589370, tz=UTC)
    assert k.valid_until == datetime.fromtimestamp(1437181370, tz=UTC)
    for key in keys.values():  # PKCS#1 ("MIIBCgKC...") and SubjectPublicKeyInfo ("MIIBIjAN...") both load
        assert isinstance(serialization.load_der_public_key(key.der), rsa.RSAPublicKey)


def test_the_documented_digest_against_the_documented_keys_is_judged_not_crashed() -> None:
    """The guide's examples come from different weeks: its key 31e8... expired before its digest was made."""
    keys = ig.load_public_keys(json.loads(fixture("aws-doc-list-public-keys.json")))
    reason = ig.check_signature(doc_digest(), "3be472336fa2989e", keys)
    assert reason is not None and reason.startswith("key 31e8b5433410dfb61a9dc45cc65b22ff was not valid at 2015-08-17")


@pytest.mark.parametrize(
    "doc",
    [
        {"PublicKeyList": "x"},
        {"PublicKeyList": [{"Fingerprint": "ab"}]},
        {"PublicKeyList": [{"Fingerprint": "ab", "Value": "%%"}]},
    ],
    ids=["not-a-list", "no-value", "not-base64"],
)
def test_a_malformed_key_list_is_a_value_error(doc: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="PublicKeyList"):
        ig.load_public_keys(doc)


def test_boto3_shaped_keys_with_bytes_and_datetimes_load() -> None:
    entry = json.loads(fixture("aws-doc-list-public-keys.json"))["publicKeyList"][0]
    import base64

    boto = {
        "PublicKeyList": [
            {
                "Value": base64.b64decode(entry["Value"]),
                "Fingerprint": entry["Fingerprint"],
                "ValidityStartTime": datetime(2015, 7, 8, tzinfo=UTC),
                "ValidityEndTime": datetime(2015, 8, 7, tzinfo=UTC),
            }
        ]
    }
    [key] = ig.load_public_keys(boto).values()
    assert key.der == base64.b64decode(entry["Value"]) and key.covers(datetime(2015, 7, 20, tzinfo=UTC))


def test_hash_log_stream_hashes_uncompressed_content_across_gzip_members() -> None:
    raw = b'{"Records": []}'
    assert ig.hash_log_stream(io.BytesIO(gzip.compress(raw))) == hashlib.sha256(raw).hexdigest()
    two = gzip.compress(raw[:5]) + gzip.compress(raw[5:])
    assert ig.hash_log_stream(io.BytesIO(two)) == hashlib.sha256(raw).hexdigest()
    with pytest.raises(ig.DigestFormatError, match="not a gzip file"):
        ig.hash_log_stream(io.BytesIO(raw))


class _Pages:
    def __init__(self, pages: list[dict[str, Any]], calls: list[str], region: str) -> None:
        self.pages, self.calls, self.region = pages, calls, region

    def get_paginator(self, name: str) -> _Pages:
        assert name == "list_public_keys"
        return self

    def paginate(self, **kw: Any) -> list[dict[str, Any]]:
        self.calls.append(self.region)
        assert kw["StartTime"] <= kw["EndTime"]
        return self.pages


def test_cloudtrail_keys_asks_each_region_once_and_merges_pages() -> None:
    doc = json.loads(fixture("aws-doc-list-public-keys.json"))["publicKeyList"]
    calls: list[str] = []
    pages = [{"PublicKeyList": doc[:2]}, {"PublicKeyList": doc[2:]}]
    source = ig.cloudtrail_keys(
        lambda region: _Pages(pages, calls, region),
        datetime(2015, 1, 1, tzinfo=UTC),
        datetime(2015, 9, 1, tzinfo=UTC),
    )
    assert len(source("us-east-2")) == 3
    assert len(source("us-east-2")) == 3 and len(source("eu-west-1")) == 3
    assert calls == ["us-east-2", "eu-west-1"]
