"""Issue 13: the log-file path acts only on files a signed, chained CloudTrail digest vouched for.

Played end to end in the reliability world: a log file lands in the archive, reconcile hands its
findings to the engine (alert-only: no digest yet), the digest lands, reconcile forwards it to the
digest verifier, which verifies it with the library (a test RSA key stands in for CloudTrail's, served
as ``ListPublicKeys`` would), records the files it vouches for and asks reconcile to rescan the file;
the engine then looks the file up itself. The attacker plants files, forges hand-off payloads, or
alters a file after delivery.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from reliability_world import (
    ARCHIVE,
    LOG_FILE_ONLY,
    MEMBER,
    REGION,
    TABLE,
    FakeContext,
    World,
    alerted_from_log_file,
    emf_metrics,
    envelope,
    is_logging,
    log_file,
    make_trail,
    stop_logging_record,
)
from trailguard_engine import handler, verify_digests
from trailguard_engine.integrity import load_public_keys, static_keys

_HELPERS = Path(__file__).resolve().parents[1] / "integrity" / "integrity_helpers.py"
if "integrity_helpers" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("integrity_helpers", _HELPERS)
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["integrity_helpers"] = _module
    _spec.loader.exec_module(_module)

from integrity_helpers import Chain, Signer  # noqa: E402

RULE = "cloudtrail-stop-logging"
#: The example events happen at 12:00Z and their files are stamped 12:05Z; the frozen clock reads 12:30Z.
FILE_AT = datetime(2026, 10, 1, 12, 5, tzinfo=UTC)
#: The digest that lists them (11:10-12:10), and the next one (12:10-13:10).
FIRST_END = datetime(2026, 10, 1, 12, 10, tzinfo=UTC)
NEXT_END = datetime(2026, 10, 1, 13, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


@pytest.fixture
def chain(world: World, signer: Signer) -> Chain:
    world.public_keys = static_keys(load_public_keys(signer.keys_doc()))
    return Chain(boto3.client("s3", region_name=REGION), signer, account=MEMBER, region=REGION, bucket=ARCHIVE)


def deliver(world: World, chain: Chain, records: list[dict[str, Any]], n: int = 0) -> tuple[str, bytes]:
    """A log file as CloudTrail names it, read by reconcile; returns (key, uncompressed bytes)."""
    key = chain.log_key(FILE_AT, n)
    world.put_log_file(records, key=key)
    assert world.run_reconcile(world.drain()) == {"batchItemFailures": []}
    return key, _raw(records)


def _raw(records: list[dict[str, Any]]) -> bytes:
    """The uncompressed content (what a digest's ``hashValue`` covers)."""
    return gzip.decompress(log_file(records))


def digest_arrives(world: World, chain: Chain, end: datetime, logs: list[tuple[str, bytes]]) -> str:
    """The digest lands: reconcile forwards it, the verifier verifies it, reconcile serves any rescan."""
    key = chain.put_digest(end, logs)
    assert world.run_reconcile(world.drain()) == {"batchItemFailures": []}
    assert world.run_verifier() == {"batchItemFailures": []}
    rescans = world.drain()
    if rescans["Records"]:
        assert world.run_reconcile(rescans) == {"batchItemFailures": []}
    return key


def ledger_item(item_id: str) -> dict[str, Any] | None:
    return (
        boto3.client("dynamodb", region_name=REGION).get_item(TableName=TABLE, Key={"id": {"S": item_id}}).get("Item")
    )


def remediated(world: World) -> bool:
    return any(
        f["rule"] == RULE and f["status"] == "remediated" for r in world.engine_fn.results for f in r["findings"]
    )


# --------------------------------------------------------------------------- #
def test_a_verified_files_finding_is_remediated_once_its_digest_arrives(
    world: World, chain: Chain, capsys: pytest.CaptureFixture[str]
) -> None:
    make_trail(world, logging=False)  # EventBridge missed the StopLogging: only the log file shows it
    world.discard()
    key, raw = deliver(world, chain, [stop_logging_record()])
    assert alerted_from_log_file(world) and not is_logging(world)  # no digest yet: alert only
    assert ledger_item(f"pending#{ARCHIVE}/{key}") is not None
    capsys.readouterr()

    digest_arrives(world, chain, FIRST_END, [(key, raw)])

    out = capsys.readouterr().out
    assert is_logging(world), "the verified file's StopLogging was not remediated"
    assert world.ops("cloudtrail", "StartLogging") == 1
    assert remediated(world)
    item = ledger_item(f"verified#{ARCHIVE}/{key}")
    assert item is not None and item["sha256"]["S"] == hashlib.sha256(raw).hexdigest()
    assert ledger_item(f"pending#{ARCHIVE}/{key}") is None
    metrics = emf_metrics(out)
    assert metrics[("DigestsVerified", "")] == 1
    assert metrics[("LogFilesVerified", "")] == 1
    assert metrics[("RescansRequested", "")] == 1
    assert metrics[("IntegrityFailures", "")] == 0
    assert metrics[("RehandedAfterVerification", "")] == 1


def test_a_planted_file_no_digest_lists_stays_alert_only_and_is_reported_unlisted(
    world: World, chain: Chain, capsys: pytest.CaptureFixture[str]
) -> None:
    make_trail(world, logging=False)
    world.discard()
    planted, _ = deliver(world, chain, [stop_logging_record()], n=7)
    genuine, raw = deliver(world, chain, [stop_logging_record(read_only=True)], n=1)
    digest_arrives(world, chain, FIRST_END, [(genuine, raw)])
    digest_arrives(world, chain, NEXT_END, [])
    assert not is_logging(world) and world.ops("cloudtrail", "StartLogging") == 0
    assert ledger_item(f"verified#{ARCHIVE}/{planted}") is None
    assert not remediated(world)
    capsys.readouterr()

    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    verify_digests.clock.advance(1800)  # type: ignore[attr-defined]  # 13:00: too early to judge them
    assert verify_digests.handler(scheduled, FakeContext())["unlisted"] == []
    verify_digests.clock.advance(3600)  # type: ignore[attr-defined]  # 14:00: every digest of 12:xx is in
    result = verify_digests.handler(scheduled, FakeContext())

    assert result["unlisted"] == [f"{ARCHIVE}/{planted}"]
    [alert] = [b for _, b in world.alerts() if b.get("alert") == "unlisted_log_files"]
    assert alert["files"] == [f"s3://{ARCHIVE}/{planted}"]
    assert emf_metrics(capsys.readouterr().out)[("IntegrityFailures", "")] == 1


@pytest.mark.parametrize(
    "forgery",
    ["verified-flag", "hash-of-other-bytes", "record-of-another-account"],
)
def test_a_forged_verified_claim_in_the_payload_is_ignored(world: World, chain: Chain, forgery: str) -> None:
    """The attacker invokes the engine with a log-file payload claiming the file is verified."""
    make_trail(world, logging=False)
    world.discard()
    record = stop_logging_record()
    key, raw = chain.log_key(FILE_AT, 3), b""
    sha = hashlib.sha256(b"what the attacker says").hexdigest()
    if forgery != "verified-flag":
        # a genuine file, genuinely verified: the forged part is what the payload says about it
        genuine = [stop_logging_record(read_only=True)]
        world.put_log_file(genuine, key=key)
        raw = _raw(genuine)
        world.discard()
        chain.put_digest(FIRST_END, [(key, raw)])
        assert world.run_reconcile(world.drain()) == {"batchItemFailures": []}
        assert world.run_verifier() == {"batchItemFailures": []}
        assert ledger_item(f"verified#{ARCHIVE}/{key}") is not None
        if forgery == "record-of-another-account":
            sha = hashlib.sha256(raw).hexdigest()
            record = stop_logging_record(account="999988887777")
    payload = {
        "trailguard_rule": RULE,
        "event": envelope(record),
        "origin": "log-file",
        "verified": True,
        "integrity": "valid",
        "log_file": {"bucket": ARCHIVE, "key": key, "sha256": sha, "verified": True},
    }
    out = handler.handler(payload, FakeContext())
    [finding] = out["findings"]
    assert finding["status"] == "alerted"
    assert LOG_FILE_ONLY in finding["reason"]
    assert world.ops("cloudtrail", "StartLogging") == 0 and not is_logging(world)


def test_a_file_altered_after_delivery_is_a_critical_failure_and_never_acted_on(
    world: World, chain: Chain, capsys: pytest.CaptureFixture[str]
) -> None:
    make_trail(world, logging=False)
    world.discard()
    original = [stop_logging_record(read_only=True)]
    key = chain.log_key(FILE_AT, 0)
    world.put_log_file(original, key=key)
    world.discard()  # CloudTrail's delivery: nothing risky in it
    world.put_log_file([stop_logging_record()], key=key)  # the tamperer swaps in a risky record
    assert world.run_reconcile(world.drain()) == {"batchItemFailures": []}
    assert alerted_from_log_file(world)
    capsys.readouterr()

    digest_arrives(world, chain, FIRST_END, [(key, _raw(original))])

    assert not is_logging(world) and not remediated(world)
    assert ledger_item(f"verified#{ARCHIVE}/{key}") is None
    assert ledger_item(f"pending#{ARCHIVE}/{key}") is not None  # no rescan: the digest did not vouch for it
    [(subject, alert)] = [(s, b) for s, b in world.alerts() if b.get("alert") == "integrity_failure"]
    assert subject.startswith("trailguard CRITICAL")
    assert any(key in p and "modified" in p for p in alert["problems"])
    assert emf_metrics(capsys.readouterr().out)[("IntegrityFailures", "")] == 1


def test_verified_too_late_is_alerted_with_the_age_not_acted_on(world: World, chain: Chain) -> None:
    """The honest interplay with the event-age gate: a digest that lands after the event is an hour
    old verifies the file, but the finding is then too old to act on."""
    make_trail(world, logging=False)
    world.discard()
    key, raw = deliver(world, chain, [stop_logging_record()])
    handler.clock.advance(3600)  # type: ignore[attr-defined]  # the event is now 90 min old
    digest_arrives(world, chain, FIRST_END, [(key, raw)])
    assert not is_logging(world) and not remediated(world)
    late = [f for r in world.engine_fn.results for f in r["findings"] if "min old" in f["reason"]]
    assert late and late[-1]["status"] == "alerted"


def test_a_missing_hourly_digest_is_alerted_once_per_gap(
    world: World, chain: Chain, capsys: pytest.CaptureFixture[str]
) -> None:
    digest_arrives(world, chain, FIRST_END, [])
    world.alerts()
    check = verify_digests.schedule_handler
    assert check({}, FakeContext())["missing"] == []  # 12:30: the 12:10 digest is recent
    verify_digests.clock.advance(3 * 3600)  # type: ignore[attr-defined]  # 15:30: nothing since 12:10
    capsys.readouterr()
    first = check({}, FakeContext())
    second = check({}, FakeContext())
    assert (
        first["missing"]
        == second["missing"]
        == [{"account": MEMBER, "region": REGION, "last_digest_end": "2026-10-01T12:10:00Z"}]
    )
    alerts = [b for _, b in world.alerts() if b.get("alert") == "digest_missing"]
    assert len(alerts) == 1 and alerts[0]["account"] == MEMBER
    assert emf_metrics(capsys.readouterr().out)[("DigestsMissing", "")] == 2  # counted every hour, alerted once
