"""Windowed thresholds (trailguard_engine.window): parameter checks, principal keys, event-time bounds, counting.

Every test injects its clock (or trusts event times, as replay does); none reads the wall clock.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from trailguard_engine.catalog import parse_rule
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.exceptions import CatalogError
from trailguard_engine.runtime_config import MAX_FUTURE_SKEW_SECONDS
from trailguard_engine.window import (
    LATE_SECONDS,
    MemoryWindowStore,
    Threshold,
    ThresholdGate,
    counted_time,
    principal_key,
    validate_threshold,
)
from window_helpers import SECRETS, T0, Judge, iso, secret_read

N = 10  # the secrets rule's default count
S = 600  # and window


def test_the_secrets_rule_defaults_are_what_these_tests_assume() -> None:
    assert validate_threshold(SECRETS.params["threshold"]) == Threshold(N, S, "principal", "resource")


# --------------------------------------------------------------------------- #
# The parameter
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "expected an object"),
        ({"count": 5, "window_seconds": 600}, "by: expected 'principal'"),
        ({"count": 5, "window_seconds": 600, "by": "session"}, "by: expected 'principal'"),
        ({"count": 1, "window_seconds": 600, "by": "principal"}, "count: expected an integer from 2 to 100"),
        ({"count": 101, "window_seconds": 600, "by": "principal"}, "count"),
        ({"count": True, "window_seconds": 600, "by": "principal"}, "count"),
        ({"count": "5", "window_seconds": 600, "by": "principal"}, "count"),
        ({"count": 5, "window_seconds": 30, "by": "principal"}, "window_seconds: expected a multiple of 60"),
        ({"count": 5, "window_seconds": 90, "by": "principal"}, "window_seconds"),
        ({"count": 5, "window_seconds": 86460, "by": "principal"}, "window_seconds"),
        ({"count": 5, "window_seconds": 600, "by": "principal", "distinct": "secret"}, "distinct"),
        ({"count": 5, "window_seconds": 600, "by": "principal", "per": "x"}, "unknown keys ['per']"),
    ],
)
def test_bad_threshold_is_refused_with_a_clear_message(value: Any, message: str) -> None:
    with pytest.raises(CatalogError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate_threshold(value)


def _doc(**changes: Any) -> dict[str, Any]:
    doc = {
        "id": "t",
        "title": "t",
        "description": "t",
        "severity": "HIGH",
        "category": "credential-access",
        "mitre": ["T1552"],
        "event_pattern": {"source": ["aws.ssm"]},
        "decision": "ssm_decrypted_read",
        "params": {"threshold": {"count": 5, "window_seconds": 600, "by": "principal"}},
        "remediation": None,
        "default_mode": "alert",
        "caller_modes": dict.fromkeys(
            ("human", "iac", "service", "identity-center", "trailguard", "unknown"), "notice"
        ),
        "runbook": {"triage": ["x"], "queries": ["principal-activity"], "undo": "x"},
        "examples": {"positive": [], "negative": []},
    }
    doc.update(changes)
    return doc


def test_catalog_load_checks_the_threshold_and_keeps_threshold_rules_alert_only() -> None:
    assert parse_rule(_doc()).params["threshold"]["count"] == 5
    with pytest.raises(CatalogError, match=r"t: params.threshold.count"):
        parse_rule(_doc(params={"threshold": {"count": 0, "window_seconds": 600, "by": "principal"}}), "t")
    remediating = {"action": "x", "permissions": ["ssm:DeleteParameter"], "description": "x"}
    with pytest.raises(CatalogError, match="alerts only"):
        parse_rule(_doc(remediation=remediating), "t")
    with pytest.raises(CatalogError, match="alerts only"):
        parse_rule(_doc(default_mode="remediate"), "t")


# --------------------------------------------------------------------------- #
# Who
# --------------------------------------------------------------------------- #
def _event(identity: dict[str, Any]) -> CloudTrailEvent:
    env = copy.deepcopy(secret_read(1, T0))
    env["detail"]["userIdentity"] = identity
    return CloudTrailEvent(to_envelope(env))


def test_every_session_of_a_role_is_one_principal_whatever_its_name_or_case() -> None:
    keys = {principal_key(CloudTrailEvent(to_envelope(secret_read(1, T0, session=s)))) for s in ("a", "b", "i-0abc")}
    assert keys == {"role/111122223333/devops"}
    upper = principal_key(CloudTrailEvent(to_envelope(secret_read(1, T0, role="DEVOPS"))))
    assert upper == "role/111122223333/devops"  # IAM role names are case-insensitive
    # a record without sessionContext still keys by the role, not the session
    bare = _event({"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/DevOps/x-1"})
    assert principal_key(bare) == "role/111122223333/devops"
    # the role's path does not split it
    pathed = _event(
        {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::111122223333:assumed-role/DevOps/s",
            "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/team/a/DevOps"}},
        }
    )
    assert principal_key(pathed) == "role/111122223333/devops"


def test_other_principal_kinds() -> None:
    user = _event({"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ops/Bob"})
    assert principal_key(user) == "user/111122223333/bob"
    fed = _event(
        {
            "type": "FederatedUser",
            "arn": "arn:aws:sts::111122223333:federated-user/anything-i-like",
            "sessionContext": {"sessionIssuer": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/bob"}},
        }
    )
    assert principal_key(fed) == "user/111122223333/bob"  # a federation token counts with the user who made it
    assert principal_key(_event({"type": "Root", "arn": "arn:aws:iam::111122223333:root"})) == "root/111122223333"
    assert principal_key(_event({"type": "AWSService", "invokedBy": "ecs-tasks.amazonaws.com"})) == (
        "service/ecs-tasks.amazonaws.com"
    )
    assert principal_key(_event({})) == "unknown"
    other_account = _event({"type": "AssumedRole", "arn": "arn:aws:sts::444455556666:assumed-role/DevOps/s"})
    assert principal_key(other_account) == "role/444455556666/devops"


# --------------------------------------------------------------------------- #
# When
# --------------------------------------------------------------------------- #
def test_event_time_is_the_clock_within_bounds() -> None:
    now = T0 + 3600
    assert counted_time(iso(now - 60), now) == (now - 60, "")
    assert counted_time(iso(now + MAX_FUTURE_SKEW_SECONDS), now) == (now + MAX_FUTURE_SKEW_SECONDS, "")
    at, why = counted_time(iso(now + MAX_FUTURE_SKEW_SECONDS + 1), now)
    assert (at, "future" in why) == (now, True)
    at, why = counted_time(iso(now - LATE_SECONDS - 1), now)
    assert (at, "late" in why) == (now - LATE_SECONDS, True)
    assert counted_time("yesterday", now)[0] == now
    assert counted_time("2026-10-01T12:00:00", now)[0] == now  # no time zone: unreadable
    assert counted_time(iso(T0), None) == (T0, "")  # replay: the record's own time


# --------------------------------------------------------------------------- #
# Counting
# --------------------------------------------------------------------------- #
def test_nth_distinct_secret_fires_once_then_the_window_is_quiet() -> None:
    judge = Judge(clock=lambda: T0 + 200)  # the engine sees them within minutes
    got = judge.decisions([secret_read(i, T0 + 10 * i) for i in range(N + 5)], SECRETS)
    assert got == ["skip"] * (N - 1) + ["alert"] + ["skip"] * 5
    fired = judge.finding(secret_read(N - 1, T0 + 10 * (N - 1)), SECRETS)  # the firing event, redelivered
    assert fired.decision == "alert"
    assert "reached by role/111122223333/devops" in fired.reason
    # the counted span starts four quarter-window buckets before the firing read's own (T0 + 90 s is in T0's)
    assert fired.params["threshold"] == {"count": N, "limit": N, "window_seconds": S, "since": iso(T0 - S)}
    assert fired.reason.startswith(f"{N} since {iso(T0 - S)}: threshold")
    names = [m[0] for m in judge.metrics]
    assert names.count("ThresholdFired") == 2 and names.count("ThresholdSuppressed") == 5
    assert names.count("ThresholdCounted") == N - 1


def test_fires_again_in_the_next_window_not_before() -> None:
    judge = Judge(clock=None)  # replay: trust event times
    burst = [secret_read(i, T0 + i) for i in range(N)]
    assert judge.decisions(burst, SECRETS)[-1] == "alert"
    again = [secret_read(100 + i, T0 + N + i) for i in range(N)]
    assert "alert" not in judge.decisions(again, SECRETS)  # same window: counted, suppressed
    later = [secret_read(200 + i, T0 + S + 60 + i) for i in range(N)]
    assert judge.decisions(later, SECRETS).count("alert") == 1  # a window after the first alert: one more


def test_same_secret_many_times_is_one_item_and_never_fires() -> None:
    judge = Judge(clock=None)
    reads = [secret_read(i, T0 + i, secret="prod/app/db") for i in range(50)]
    assert set(judge.decisions(reads, SECRETS)) == {"skip"}
    assert "counted 1 of 10" in judge.finding(secret_read(99, T0 + 60, secret="prod/app/db"), SECRETS).reason


def test_a_redelivered_event_does_not_count_twice() -> None:
    judge = Judge(clock=None)
    first = [secret_read(i, T0 + i) for i in range(N - 1)]
    assert set(judge.decisions(first * 3, SECRETS)) == {"skip"}  # every one delivered three times
    assert judge.finding(secret_read(N - 1, T0 + N), SECRETS).decision == "alert"


def test_distinct_event_mode_counts_event_ids() -> None:
    rule = dataclasses.replace(
        SECRETS, params={"threshold": {"count": 3, "window_seconds": 600, "by": "principal", "distinct": "event"}}
    )
    judge = Judge(clock=None)
    judge.ev.by_id[rule.id] = rule
    same_secret = [secret_read(i, T0 + i, secret="one") for i in range(3)]
    assert judge.decisions(same_secret[:2] * 2, rule) == ["skip"] * 4  # two events, each twice
    assert judge.finding(same_secret[2], rule).decision == "alert"


def test_a_batch_counts_each_secret_id() -> None:
    judge = Judge(clock=None)
    batch = copy.deepcopy(
        next(e for e in SECRETS.examples_positive if e["detail"]["eventName"] == "BatchGetSecretValue")
    )
    assert len(batch["detail"]["requestParameters"]["secretIdList"]) >= N
    assert judge.finding(batch, SECRETS).decision == "alert"  # one call, twelve secrets
    small = copy.deepcopy(batch)
    small["detail"]["eventID"] = "0f0e0d0c-0000-4000-8000-000000000001"
    small["detail"]["requestParameters"] = {"secretIdList": ["a", "b", "c"]}
    other = Judge(clock=None)
    assert "counted 3 of 10" in other.finding(small, SECRETS).reason


def test_n_reads_within_the_window_always_fire_and_spread_reads_never_do() -> None:
    # Guarantee: N distinct items within S seconds fire, wherever the window starts relative to the buckets.
    for offset in range(0, S, 37):
        judge = Judge(clock=None)
        start = T0 + offset
        reads = [secret_read(i, start + i * (S - 1) / (N - 1)) for i in range(N)]
        assert judge.decisions(reads, SECRETS)[-1] == "alert", offset
    # A steady rate of fewer than N per 1.25 windows never adds up (85 s apart: at most 9 in any 750 s).
    judge = Judge(clock=None)
    slow = [secret_read(i, T0 + 85 * i) for i in range(5 * N)]
    assert set(judge.decisions(slow, SECRETS)) == {"skip"}
    # and the same reads at 60 s apart (10 in 600 s) fire
    judge = Judge(clock=None)
    assert "alert" in judge.decisions([secret_read(i, T0 + 60 * i) for i in range(5 * N)], SECRETS)


def test_principals_and_accounts_count_apart() -> None:
    judge = Judge(clock=None)
    mixed = [secret_read(i, T0 + i, role=f"Role{i % 2}") for i in range(2 * (N - 1))]
    assert set(judge.decisions(mixed, SECRETS)) == {"skip"}
    judge = Judge(clock=None)
    accounts = [secret_read(i, T0 + i, account=f"11112222{3333 + i % 2}") for i in range(2 * (N - 1))]
    assert set(judge.decisions(accounts, SECRETS)) == {"skip"}


def test_negatives_and_non_threshold_rules_pass_through_untouched() -> None:
    judge = Judge(clock=None)
    for neg in SECRETS.examples_negative:
        for f in judge.ev.evaluate(neg).findings:
            g = judge.gate.apply(CloudTrailEvent(to_envelope(neg)), [f], judge.ev.by_id)
            assert g == [f]
    assert judge.store.calls == 0  # skipped events are not counted: no state touched


def test_a_failing_store_alerts_on_the_event_alone_with_a_metric() -> None:
    class Broken(MemoryWindowStore):
        def add(self, *a: Any, **k: Any) -> Any:
            raise RuntimeError("ProvisionedThroughputExceededException: slow down")

    judge = Judge(store=Broken(), clock=lambda: T0)
    f = judge.finding(secret_read(1, T0), SECRETS)
    assert f.decision == "alert"
    assert "threshold state unavailable: RuntimeError: ProvisionedThroughputExceededException" in f.reason
    assert ("ThresholdStateErrors", SECRETS.id, "111122223333") in judge.metrics


def test_memory_store_items_stay_bounded_under_a_flood() -> None:
    now = [T0]
    judge = Judge(clock=lambda: now[0])
    for i in range(3000):
        now[0] = T0 + i * 2
        judge.finding(secret_read(i, now[0]), SECRETS)
    (item,) = judge.store.items.values()
    buckets = {k: v for k, v in item.items() if k.startswith("b")}
    assert all(len(v) <= N for v in buckets.values())
    # kept: the late allowance plus a window and a quarter, in quarter-window buckets (plus the prune band)
    assert len(buckets) <= (900 + S) // (S // 4) + 2


def test_gate_is_used_only_for_rules_with_a_threshold() -> None:
    judge = Judge(clock=None)
    gate = ThresholdGate(judge.store, clock=None)
    env = secret_read(1, T0)
    result = judge.ev.evaluate(env)
    plain = dataclasses.replace(result, findings=tuple(dataclasses.replace(f, rule="other") for f in result.findings))
    assert gate.apply_result(CloudTrailEvent(to_envelope(env)), plain, judge.ev.by_id) is plain
