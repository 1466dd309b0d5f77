"""The verification library against digest chains built in the documented format and served by moto S3."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from typing import Any

import pytest
from integrity_helpers import ACCOUNT, ACCOUNT_B, BUCKET, ORG, T0, Chain, Signer, log_body, record, rewrite
from trailguard_engine import integrity as ig


def keys_of(*signers: Signer, **kw: Any) -> ig.KeySource:
    keys: dict[str, ig.PublicKey] = {}
    for s in signers:
        keys.update(ig.load_public_keys(s.keys_doc(**kw)))
    return ig.static_keys(keys)


def verify(s3: Any, keys: ig.KeySource, **kw: Any) -> ig.Report:
    kw.setdefault("workers", 1)
    return ig.verify_archive(ig.S3Reader(s3), BUCKET, kw.pop("prefix", ""), keys, **kw)


def statuses(report: ig.Report) -> dict[str, str]:
    return {r.key: r.status for r in [*report.digests, *report.logs]}


def only_problems(report: ig.Report) -> list[tuple[str, str, str]]:
    return [(p.kind, p.key, p.status) for p in report.problems()]


def test_a_valid_chain_is_valid_everywhere(s3: Any, signer: Signer) -> None:
    chain = Chain(s3, signer).hours(4)
    report = verify(s3, keys_of(signer))
    assert report.ok
    assert report.counts()["digests"] == {"valid": 4, "invalid": 0, "missing": 0, "not-checked": 0}
    assert report.counts()["log_files"]["valid"] == 8 == len(chain.logs)
    assert report.problems() == []


def test_parallel_reads_give_the_same_report(s3: Any, signer: Signer) -> None:
    Chain(s3, signer).hours(3, logs_per_hour=4)
    one = verify(s3, keys_of(signer), workers=1).to_json()
    many = verify(s3, keys_of(signer), workers=8).to_json()
    assert one == many and one["ok"] is True


def test_a_modified_log_file_is_reported_with_its_key(s3: Any, signer: Signer) -> None:
    chain = Chain(s3, signer).hours(3)
    victim = chain.logs[2]
    _, body = log_body([record(T0, name="Innocuous")])
    rewrite(s3, BUCKET, victim, body)
    report = verify(s3, keys_of(signer))
    assert not report.ok
    assert only_problems(report) == [("log file", victim, "modified")]
    assert "SHA-256 of the uncompressed content" in report.problems()[0].line()


def test_the_hash_is_over_the_uncompressed_content(s3: Any, signer: Signer) -> None:
    """Recompressing a log file (other level, other gzip header) changes no uncompressed byte: still valid."""
    chain = Chain(s3, signer).hours(2)
    key = chain.logs[0]
    raw = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    rewrite(s3, BUCKET, key, gzip.compress(raw, compresslevel=1, mtime=1_000_000))
    assert verify(s3, keys_of(signer)).ok


def test_a_deleted_log_file_is_reported(s3: Any, signer: Signer) -> None:
    chain = Chain(s3, signer).hours(3)
    s3.delete_object(Bucket=BUCKET, Key=chain.logs[0])
    report = verify(s3, keys_of(signer))
    assert only_problems(report) == [("log file", chain.logs[0], "deleted")]
    assert chain.digests[0] in report.problems()[0].reason


def test_an_unlisted_log_file_is_reported(s3: Any, signer: Signer) -> None:
    chain = Chain(s3, signer).hours(4)
    planted, _ = chain.put_log(T0 + timedelta(minutes=30), n=9)  # inside the hours the digests cover
    report = verify(s3, keys_of(signer))
    assert only_problems(report) == [("log file", planted, "unlisted")]


def test_a_planted_object_with_a_foreign_name_is_unlisted(s3: Any, signer: Signer) -> None:
    chain = Chain(s3, signer).hours(3)
    odd = f"{chain.root()}CloudTrail/us-east-1/{T0:%Y/%m/%d}/evil.json.gz"
    s3.put_object(Bucket=BUCKET, Key=odd, Body=b"{}")
    assert ("log file", odd, "unlisted") in only_problems(verify(s3, keys_of(signer)))


def test_a_log_file_newer_than_the_last_digest_is_not_yet_unlisted(s3: Any, signer: Signer) -> None:
    """Its digest has not been delivered yet: no false alarm."""
    chain = Chain(s3, signer).hours(2)
    chain.put_log(T0 + timedelta(hours=1, minutes=10), n=5)
    assert verify(s3, keys_of(signer)).ok


def test_a_modified_digest_fails_its_signature_and_breaks_the_chain(s3: Any, signer: Signer) -> None:
    chain = Chain(s3, signer).hours(3)
    victim = chain.digests[1]
    doc = json.loads(gzip.decompress(s3.get_object(Bucket=BUCKET, Key=victim)["Body"].read()))
    doc["logFiles"] = doc["logFiles"][:1]  # hide a log file
    rewrite(s3, BUCKET, victim, gzip.compress(json.dumps(doc).encode()))
    report = verify(s3, keys_of(signer))
    by_key = {r.key: r for r in report.digests}
    assert by_key[victim].status == "invalid"
    assert "signature does not verify" in by_key[victim].reason
    assert by_key[chain.digests[2]].status == "invalid"
    assert by_key[chain.digests[2]].reason.startswith("chain broken: previousDigestHashValue")
    assert by_key[chain.digests[0]].status == "valid"


def test_a_digest_deleted_in_the_middle_of_the_chain_is_missing(s3: Any, signer: Signer) -> None:
    chain = Chain(s3, signer).hours(4)
    s3.delete_object(Bucket=BUCKET, Key=chain.digests[2])
    report = verify(s3, keys_of(signer))
    missing = [r for r in report.digests if r.status == "missing"]
    assert [r.key for r in missing] == [chain.digests[2]]
    assert chain.digests[3] in missing[0].reason
    # The hour's log files are then listed by nothing: unlisted, as a planted file would be.
    assert {p.status for p in report.problems() if p.kind == "log file"} == {"unlisted"}
    assert not report.ok


def test_a_wrong_key_fingerprint_is_invalid(s3: Any, signer: Signer, other_signer: Signer) -> None:
    Chain(s3, signer).hours(2)
    report = verify(s3, keys_of(other_signer))
    assert {r.status for r in report.digests} == {"invalid"}
    assert all(f"unknown key fingerprint {signer.fingerprint}" in r.reason for r in report.digests)
    # Log files listed only by invalid digests are not checked, and not reported as unlisted.
    assert {r.status for r in report.logs} == {"not-checked"}


def test_a_digest_signed_by_another_key_under_a_known_fingerprint_is_invalid(
    s3: Any, signer: Signer, other_signer: Signer
) -> None:
    chain = Chain(s3, signer)
    chain.hours(1)
    forged = Signer(other_signer.private, signer.fingerprint)  # the attacker claims the real fingerprint
    chain.put_digest(T0 + timedelta(hours=1), [], signer=forged)
    report = verify(s3, keys_of(signer))
    assert only_problems(report) == [("digest", chain.digests[1], "invalid")]
    assert "signature does not verify" in report.problems()[0].reason


def test_a_key_outside_its_validity_window_is_invalid(s3: Any, signer: Signer) -> None:
    Chain(s3, signer).hours(2)
    expired = keys_of(signer, start=T0 - timedelta(days=60), end=T0 - timedelta(days=1))
    report = verify(s3, expired)
    assert {r.status for r in report.digests} == {"invalid"}
    assert all("was not valid at" in r.reason for r in report.digests)


def test_an_empty_hour_digest_is_valid(s3: Any, signer: Signer) -> None:
    chain = Chain(s3, signer).hours(3, empty=(1,))
    report = verify(s3, keys_of(signer))
    assert report.ok
    empty = next(r for r in report.digests if r.key == chain.digests[1])
    assert (empty.status, empty.log_files) == ("valid", 0)
    raw = json.loads(gzip.decompress(s3.get_object(Bucket=BUCKET, Key=chain.digests[1])["Body"].read()))
    assert raw["logFiles"] == [] and raw["newestEventTime"] is None


def test_organization_paths_and_an_account_filter(s3: Any, signer: Signer) -> None:
    a = Chain(s3, signer, org=ORG, prefix="trails/").hours(2)
    b = Chain(s3, signer, org=ORG, prefix="trails/", account=ACCOUNT_B).hours(2)
    assert a.digests[0].startswith(f"trails/AWSLogs/{ORG}/{ACCOUNT}/CloudTrail-Digest/")
    report = verify(s3, keys_of(signer), prefix="trails")
    assert report.ok and report.counts()["digests"]["valid"] == 4
    only_b = verify(s3, keys_of(signer), prefix="trails", accounts=[ACCOUNT_B])
    assert {r.key for r in only_b.digests} == set(b.digests)
    s3.delete_object(Bucket=BUCKET, Key=b.logs[1])
    assert only_problems(verify(s3, keys_of(signer), prefix="trails")) == [("log file", b.logs[1], "deleted")]


def test_a_second_region_has_its_own_chain(s3: Any, signer: Signer) -> None:
    east = Chain(s3, signer).hours(2)
    west = Chain(s3, signer, region="eu-west-1").hours(2)
    report = verify(s3, keys_of(signer))
    assert report.ok and report.counts()["digests"]["valid"] == 4
    s3.delete_object(Bucket=BUCKET, Key=west.digests[0])  # the chain's first digest, named by the second
    report = verify(s3, keys_of(signer))
    assert [(r.key, r.region) for r in report.digests if r.status == "missing"] == [(west.digests[0], "eu-west-1")]
    only_east = verify(s3, keys_of(signer), regions=["us-east-1"])
    assert only_east.ok and {r.key for r in only_east.digests} == set(east.digests)


def test_a_digest_in_another_regions_folder_lists_log_files_of_their_own_region(s3: Any, signer: Signer) -> None:
    """E.g. global-service events: the us-east-1 digest lists a log file kept under eu-west-1."""
    chain = Chain(s3, signer)
    end = T0
    west_log = chain.put_log(end - timedelta(minutes=30), n=1, region="eu-west-1")
    east_log = chain.put_log(end - timedelta(minutes=20), n=2)
    chain.put_digest(end, [west_log, east_log])
    chain.put_digest(end + timedelta(hours=1), [])
    report = verify(s3, keys_of(signer))
    assert report.ok, [p.line() for p in report.problems()]
    assert statuses(report)[west_log[0]] == "valid"
    # Filtering on eu-west-1 keeps the us-east-1 digest that lists its file: nothing looks unlisted.
    west_only = verify(s3, keys_of(signer), regions=["eu-west-1"])
    assert west_only.ok and statuses(west_only)[west_log[0]] == "valid"


def test_a_moved_digest_is_invalid(s3: Any, signer: Signer) -> None:
    chain = Chain(s3, signer).hours(2)
    src = chain.digests[1]
    moved = src.replace(f"{T0:%Y/%m/%d}", f"{T0 + timedelta(days=1):%Y/%m/%d}")
    s3.copy_object(Bucket=BUCKET, Key=moved, CopySource={"Bucket": BUCKET, "Key": src})
    report = verify(s3, keys_of(signer))
    assert ("digest", moved, "invalid") in only_problems(report)
    assert "moved: the digest says it was delivered to" in next(r.reason for r in report.digests if r.key == moved)


def test_since_and_until_select_digests_by_their_end_time(s3: Any, signer: Signer) -> None:
    chain = Chain(s3, signer).hours(6)
    report = verify(s3, keys_of(signer), since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=3, minutes=30))
    assert {r.key for r in report.digests} == set(chain.digests[2:5])  # until + 1 h for late deliveries
    assert report.ok


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x1f\x8b\x08\x00\x00\x00", "not a complete gzip file"),
        (gzip.compress(b"this is not json"), "not JSON"),
        (gzip.compress(b"[]"), "not a JSON object"),
        (gzip.compress(json.dumps({"awsAccountId": ACCOUNT}).encode()), 'field "digestStartTime" is missing'),
    ],
    ids=["truncated-gzip", "not-json", "json-array", "field-missing"],
)
def test_a_malformed_digest_gives_one_clear_line(s3: Any, signer: Signer, body: bytes, reason: str) -> None:
    chain = Chain(s3, signer).hours(2)
    rewrite(s3, BUCKET, chain.digests[1], body)
    report = verify(s3, keys_of(signer))
    [problem] = [p for p in report.problems() if p.kind == "digest"]
    assert problem.key == chain.digests[1] and problem.status == "invalid"
    assert problem.reason.startswith("malformed digest: ") and reason in problem.reason
    assert "\n" not in problem.line()


def test_missing_signature_metadata_gives_one_clear_line(s3: Any, signer: Signer) -> None:
    chain = Chain(s3, signer).hours(2)
    body = s3.get_object(Bucket=BUCKET, Key=chain.digests[1])["Body"].read()
    rewrite(s3, BUCKET, chain.digests[1], body, keep_metadata=False)
    report = verify(s3, keys_of(signer))
    assert [p for p in only_problems(report) if p[0] == "digest"] == [("digest", chain.digests[1], "invalid")]
    assert "x-amz-meta-signature" in report.problems()[0].reason
    # What an unauthenticated digest lists proves nothing: its log files are "not-checked", not valid.
    assert {r.status for r in report.logs if r.digest_key == chain.digests[1]} == {"not-checked"}


def test_a_truncated_log_file_is_modified_not_a_crash(s3: Any, signer: Signer) -> None:
    chain = Chain(s3, signer).hours(2)
    body = s3.get_object(Bucket=BUCKET, Key=chain.logs[0])["Body"].read()
    rewrite(s3, BUCKET, chain.logs[0], body[: len(body) // 2])
    report = verify(s3, keys_of(signer))
    assert only_problems(report) == [("log file", chain.logs[0], "modified")]
    assert "truncated gzip" in report.problems()[0].reason


def test_verify_digest_object_checks_one_digest_its_link_and_its_logs(s3: Any, signer: Signer) -> None:
    chain = Chain(s3, signer).hours(3)
    reader = ig.S3Reader(s3)
    report = ig.verify_digest_object(reader, BUCKET, chain.digests[2], keys_of(signer), workers=1)
    assert report.ok and [r.key for r in report.digests] == [chain.digests[2]]
    assert {r.key for r in report.logs} == set(chain.logs[4:6])
    s3.delete_object(Bucket=BUCKET, Key=chain.digests[1])
    report = ig.verify_digest_object(reader, BUCKET, chain.digests[2], keys_of(signer), workers=1)
    assert only_problems(report) == [("digest", chain.digests[1], "missing")]


def test_verify_digest_object_sees_a_predecessor_swapped_for_another_signed_digest(s3: Any, signer: Signer) -> None:
    """Each digest is authentic, but the newer one names different content as its predecessor."""
    chain = Chain(s3, signer).hours(3)
    older = s3.get_object(Bucket=BUCKET, Key=chain.digests[0])
    rewrite(s3, BUCKET, chain.digests[1], older["Body"].read())  # keeps digest 1's metadata
    report = ig.verify_digest_object(ig.S3Reader(s3), BUCKET, chain.digests[2], keys_of(signer), workers=1)
    [digest] = report.digests
    assert digest.status == "invalid" and digest.reason.startswith("chain broken")


def test_a_starting_digest_signs_the_literal_null(signer: Signer) -> None:
    raw = json.dumps(
        {
            "awsAccountId": ACCOUNT,
            "digestStartTime": "2026-10-01T00:01:31Z",
            "digestEndTime": "2026-10-01T01:01:31Z",
            "digestS3Bucket": BUCKET,
            "digestS3Object": "AWSLogs/x.json.gz",
            "digestPublicKeyFingerprint": signer.fingerprint,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "previousDigestS3Bucket": None,
            "previousDigestS3Object": None,
            "previousDigestHashValue": None,
            "previousDigestHashAlgorithm": None,
            "previousDigestSignature": None,
            "logFiles": [],
        }
    ).encode()
    digest = ig.parse_digest(BUCKET, "AWSLogs/x.json.gz", gzip.compress(raw))
    assert ig.string_to_sign(digest).decode().split("\n")[-1] == "null"
    good = signer.sign(ig.string_to_sign(digest))
    keys = ig.load_public_keys(signer.keys_doc())
    assert ig.check_signature(digest, good, keys) is None
    assert ig.check_signature(digest, "00" * 256, keys) is not None
    assert "not hexadecimal" in str(ig.check_signature(digest, "zz", keys))
