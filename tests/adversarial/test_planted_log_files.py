"""Finding 2: a log file planted in the archive must not make trailguard act, least of all in another account.

Attacker: whoever can write to the archive bucket (a log-archive admin, or a member if the bucket
policy let it). The bucket policy now denies PutObject under AWSLogs/ to everyone but CloudTrail
(tests/adversarial/test_infra_archive_writes.py); these tests assume that wall is breached anyway.
"""

from __future__ import annotations

import pytest
from reliability_world import (
    LOG_FILE_ONLY,
    MEMBER,
    World,
    alerted_from_log_file,
    ct_record,
    emf_metrics,
    is_logging,
    log_key,
    make_trail,
    stop_logging_record,
)
from trailguard_engine import reconcile

VICTIM = "999988887777"
RULE = "cloudtrail-stop-logging"


def test_a_record_for_another_account_is_not_handed_to_the_engine(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reproduces the review: a file under AWSLogs/<member>/ holding a record for <victim>."""
    victim_trail = make_trail(world, account=VICTIM, logging=False)  # the victim's trail is stopped on purpose
    world.discard()
    record = ct_record("cloudtrail", "StopLogging", {"name": victim_trail}, account=VICTIM)
    key = world.put_log_file([record], key=log_key(MEMBER))
    capsys.readouterr()
    assert world.run_reconcile(world.drain()) == {"batchItemFailures": []}
    metrics = emf_metrics(capsys.readouterr().out)
    assert world.engine_fn.invocations == [], "a member's folder made the engine act in another account"
    assert not world.client("cloudtrail", VICTIM).get_trail_status(Name=victim_trail)["IsLogging"]
    assert [c for c in world.calls if c[0] == "member" and c[1] == VICTIM] == []
    assert metrics[("RejectedRecords", "")] == 1
    [alert] = [b for _, b in world.alerts() if b.get("alert") == "log_file_account_mismatch"]
    assert alert["key"] == key and alert["key_account"] == MEMBER and alert["foreign_records"] == 1


def test_records_of_the_keys_own_account_in_the_same_file_are_still_judged(world: World) -> None:
    make_trail(world, logging=False)
    world.discard()
    foreign = ct_record("cloudtrail", "StopLogging", {"name": "t"}, account=VICTIM)
    world.put_log_file([foreign, stop_logging_record()], key=log_key(MEMBER))
    assert world.run_reconcile(world.drain()) == {"batchItemFailures": []}
    assert [p["event"]["account"] for p in world.engine_fn.invocations] == [MEMBER]


def test_a_planted_file_for_the_right_account_is_alert_only(world: World) -> None:
    """Even in the right folder, a finding only a log file showed is never acted on until integrity is verified."""
    make_trail(world, logging=False)  # stopped on purpose; the planted StopLogging would restart it
    world.discard()
    world.put_log_file([stop_logging_record()])
    assert world.run_reconcile(world.drain()) == {"batchItemFailures": []}
    assert not is_logging(world)
    assert world.ops("cloudtrail", "StartLogging") == 0
    assert alerted_from_log_file(world)
    [alert] = [b for _, b in world.alerts() if b.get("rule") == RULE]
    assert LOG_FILE_ONLY in alert["reason"]


def test_an_origin_claim_only_ever_weakens_the_verdict(world: World) -> None:
    """``origin`` is attacker-controllable on a direct invoke; it can only turn an action into an alert."""
    from reliability_world import FakeContext, envelope
    from trailguard_engine import handler

    make_trail(world, logging=False)
    out = handler.handler(
        {"trailguard_rule": RULE, "event": envelope(stop_logging_record()), "origin": "verified-by-me"},
        FakeContext(),
    )
    assert out["findings"][0]["status"] == "remediated"  # unknown origins are ignored, not trusted more


@pytest.mark.parametrize(
    ("key", "account"),
    [
        ("AWSLogs/111122223333/CloudTrail/us-east-1/2026/10/01/x.json.gz", "111122223333"),
        ("AWSLogs/o-a1b2c3d4e5/999988887777/CloudTrail/eu-west-1/2026/10/01/x.json.gz", "999988887777"),
        ("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/10/01/x.json.gz", None),
        ("AWSLogs/11112222333/CloudTrail/us-east-1/2026/10/01/x.json.gz", None),
        ("evil/AWSLogs/111122223333/CloudTrail/us-east-1/2026/10/01/x.json.gz", None),
    ],
    ids=["account", "org-trail", "digest", "short-account", "prefixed"],
)
def test_key_account_reads_the_cloudtrail_layout(key: str, account: str | None) -> None:
    assert reconcile.key_account(key) == account
