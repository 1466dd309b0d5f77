"""Issue 20: the drift sweep rolls the member accounts' forwarding DLQs up to the security account.

Moto world: the sweep runs in ENGINE; MEMBER is named by the deployment, JOINED is known only from the
verifier's digest heads (it joined after the deploy). Every queue is read through the member role."""

from __future__ import annotations

from typing import Any

import pytest
from frozen_clock import FROZEN_AT
from member_queue_helpers import JOINED, dlq_url, healthy_estate, iso, ledger_for, run_sweep
from reliability_world import MEMBER, REGION, World
from trailguard_engine.member_queues import FORWARD_DLQ_NAME, ROSTER_MAX_AGE_S, ForwardQueueReader, roster


def test_empty_queues_everywhere_raise_nothing_and_report_zeros(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy_estate(world, monkeypatch)
    result, alerts, metrics, _ = run_sweep(world, capsys)
    assert isinstance(result, dict), result
    assert alerts == []
    assert result["errors"] == []
    # Both queues were read, through the member role (never with the engine's own credentials).
    assert world.ops("sqs", "GetQueueAttributes") == 2
    assert world.ops("sqs", "GetQueueAttributes", kind="engine") == 0
    # The central alarm's metrics exist even when all is well (zeros), so the alarm is never starved.
    assert (("MemberDlqMessages", ""), 0) in metrics.items()
    assert (("MemberDlqUnreadable", ""), 0) in metrics.items()


@pytest.mark.parametrize("account", [MEMBER, JOINED])
def test_a_message_in_a_member_dlq_is_alerted_centrally_with_its_account(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], account: str
) -> None:
    healthy_estate(world, monkeypatch)
    sqs = world.client("sqs", account)
    for i in range(3):
        sqs.send_message(QueueUrl=dlq_url(world, account), MessageBody=f'{{"failed": {i}}}')
    result, alerts, metrics, by_account = run_sweep(world, capsys)
    assert isinstance(result, dict), result  # a full queue is a finding, not a failure of the sweep
    drifts = [b for _, b in alerts if b.get("alert") == "drift"]
    assert [(b["invariant"], b["where"]["account"], b["where"]["region"]) for b in drifts] == [
        ("forward-dlq-empty", account, REGION)
    ]
    assert drifts[0]["where"]["resource"]["id"] == f"arn:aws:sqs:{REGION}:{account}:{FORWARD_DLQ_NAME}"
    assert drifts[0]["observed"].startswith("3 message(s)")
    assert metrics[("MemberDlqMessages", "")] == 3
    assert by_account[("MemberDlqMessages", account)] == 3
    assert metrics[("DriftDetected", "forward-dlq-empty")] == 1


def test_roster_follows_the_digests_without_a_redeploy_and_drops_stale_and_ungoverned_ones() -> None:
    heads = {
        ("111111111111", "us-east-1"): iso(FROZEN_AT - 3600),
        ("222222222222", "us-east-1"): iso(FROZEN_AT - ROSTER_MAX_AGE_S - 1),  # left the organization long ago
        ("333333333333", "ap-east-1"): iso(FROZEN_AT - 60),  # a region trailguard does not govern
        ("444444444444", "eu-west-1"): "not a date",  # unparsable: still read (never silently dropped)
    }
    got = roster(heads, fixed_accounts=["999999999999"], regions=["us-east-1", "eu-west-1"], now=FROZEN_AT)
    assert got == [
        ("111111111111", "us-east-1"),
        ("444444444444", "eu-west-1"),
        ("999999999999", "eu-west-1"),
        ("999999999999", "us-east-1"),
    ]


def test_a_new_governed_region_of_a_joined_account_is_read(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = healthy_estate(world, monkeypatch)
    ledger_for(clock).record_digest_head(JOINED, "eu-west-1", iso(FROZEN_AT - 60))  # not governed: ignored
    result, alerts, _, _ = run_sweep(world, capsys)
    assert isinstance(result, dict) and alerts == [], (result, alerts)
    assert world.ops("sqs", "GetQueueAttributes") == 2


def test_reader_reads_in_parallel_but_reports_in_roster_order() -> None:
    class Factory:
        def role_arn(self, account: str) -> str:
            return f"arn:aws:iam::{account}:role/trailguard-remediation"

    reader = ForwardQueueReader(factory=Factory(), workers=4)  # type: ignore[arg-type]
    where = [(f"{i:012d}", "us-east-1") for i in range(20)]

    def fake(account: str, region: str) -> Any:
        from trailguard_engine.member_queues import QueueDepth

        return QueueDepth(account, region, reader.queue_arn(account, region), int(account) % 3)

    got = reader.read_all(where, read=fake)
    assert [(q.account, q.depth) for q in got] == [(a, int(a) % 3) for a, _ in where]
    assert got[0].queue_arn == f"arn:aws:sqs:us-east-1:000000000000:{FORWARD_DLQ_NAME}"
