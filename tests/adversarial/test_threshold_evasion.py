"""Attacks on the windowed thresholds (trailguard_engine.window), in memory and on DynamoDB (moto).

An attacker with stolen credentials wants many secrets without the burst alert: spread the reads over session
names, replay or forge records to reset or pre-fill the window, blow up the state table, or break it.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from trailguard_engine.runtime_config import MAX_FUTURE_SKEW_SECONDS
from trailguard_engine.window import ITEM_PREFIX, LATE_SECONDS, PRINCIPAL_MAX, DynamoWindowStore, MemoryWindowStore

_HELPERS = Path(__file__).resolve().parents[1] / "engine_core" / "window_helpers.py"
if "window_helpers" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("window_helpers", _HELPERS)
    assert _spec is not None and _spec.loader is not None
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["window_helpers"] = _mod
    _spec.loader.exec_module(_mod)

from window_helpers import SECRETS, T0, Judge, iso, secret_read  # noqa: E402

N, S = 10, 600
TABLE = "trailguard-state"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryWindowStore()
        return
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield DynamoWindowStore(table=TABLE, client=client)


def test_spreading_reads_over_session_names_of_one_role_still_fires(store: Any) -> None:
    """Session names are the caller's choice: one per read must not give N principals of one read each."""
    judge = Judge(store=store, clock=Clock(T0 + 60))
    reads = [secret_read(i, T0 + i, session=f"i-{uuid.uuid5(uuid.NAMESPACE_URL, str(i)).hex[:17]}") for i in range(N)]
    reads[3] = secret_read(3, T0 + 3, role="DEVOPS", session="Looks-Like-Another-Role")  # IAM names ignore case
    assert [judge.finding(e, SECRETS).decision for e in reads][-1] == "alert"


def test_federation_tokens_with_chosen_names_count_with_their_user(store: Any) -> None:
    judge = Judge(store=store, clock=Clock(T0 + 60))
    got = []
    for i in range(N):
        env = secret_read(i, T0 + i)
        env["detail"]["userIdentity"] = {
            "type": "FederatedUser",
            "arn": f"arn:aws:sts::111122223333:federated-user/name-{i}",
            "accountId": "111122223333",
            "sessionContext": {"sessionIssuer": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/bob"}},
        }
        got.append(judge.finding(env, SECRETS).decision)
    assert got[-1] == "alert"


@pytest.mark.parametrize("forged_offset", [86400, -86400, 10 * 365 * 86400, -30 * 86400])
def test_a_forged_event_time_cannot_reset_the_window(store: Any, forged_offset: float) -> None:
    """N-1 real reads, then forged reads far in the future or past (which would move a window keyed on event
    time and prune the real counts), then the N-th real read: it still fires."""
    clock = Clock(T0 + 30)
    judge = Judge(store=store, clock=clock)
    assert {judge.finding(secret_read(i, T0 + i), SECRETS).decision for i in range(N - 1)} == {"skip"}
    for j in range(3):
        clock.now = T0 + 40 + j
        forged = secret_read(1000 + j, T0 + forged_offset, secret="prod/app-0000/db")  # an already-counted secret
        judge.finding(forged, SECRETS)
    clock.now = T0 + 60
    assert judge.finding(secret_read(N - 1, T0 + 50), SECRETS).decision == "alert"


def test_a_forged_future_burst_cannot_silence_the_real_one_for_long(store: Any) -> None:
    """Forged records dated a day ahead fire (counted now, an alert naming the principal), but the firing time
    is the engine clock, not the forged time: a real burst one window later fires again."""
    clock = Clock(T0)
    judge = Judge(store=store, clock=clock)
    forged = [judge.finding(secret_read(500 + i, T0 + 86400 + i), SECRETS).decision for i in range(N)]
    assert forged.count("alert") == 1
    clock.now = T0 + S + 2 * MAX_FUTURE_SKEW_SECONDS
    real = [judge.finding(secret_read(i, clock.now - 30 + i), SECRETS).decision for i in range(N)]
    assert real.count("alert") == 1


def test_a_late_backlog_is_counted_not_dropped(store: Any) -> None:
    """Records delivered hours late (the log-file path after an outage) count at the late bound: the burst in
    them still fires, however old their eventTime."""
    clock = Clock(T0 + 6 * 3600)
    judge = Judge(store=store, clock=clock)
    old = [judge.finding(secret_read(i, T0 + 20 * i), SECRETS).decision for i in range(N)]
    assert old[-1] == "alert"
    assert LATE_SECONDS < 6 * 3600


def test_duplicates_and_forged_copies_of_real_events_count_once(store: Any) -> None:
    judge = Judge(store=store, clock=Clock(T0 + 60))
    real = [secret_read(i, T0 + i) for i in range(N - 1)]
    for env in real:
        for _ in range(3):
            assert judge.finding(env, SECRETS).decision == "skip"
        moved = copy.deepcopy(env)  # the same eventID and secret at another time, in another bucket
        moved["detail"]["eventTime"] = iso(T0 - 200)
        assert judge.finding(moved, SECRETS).decision == "skip"
    same_secret_new_ids = [
        secret_read(i, T0 + 5, event_id=str(uuid.uuid4()), secret="prod/app-0001/db") for i in range(20)
    ]
    assert {judge.finding(e, SECRETS).decision for e in same_secret_new_ids} == {"skip"}
    assert "counted 9 of 10" in judge.finding(real[0], SECRETS).reason


def test_many_principals_and_huge_arns_stay_bounded(store: Any) -> None:
    judge = Judge(store=store, clock=Clock(T0 + 60))
    for p in range(120):
        for i in range(N - 1):
            judge.finding(secret_read(i, T0 + i, role=f"R{p}"), SECRETS)
    huge = secret_read(1, T0, role="X" * 5000)
    huge["detail"]["userIdentity"].pop("sessionContext")
    huge["detail"]["userIdentity"]["arn"] = "arn:aws:sts::111122223333:federated-user/" + "y" * 20000
    assert judge.finding(huge, SECRETS).decision == "skip"
    if isinstance(store, MemoryWindowStore):
        items = list(store.items.items())
    else:
        raw = store.client.scan(TableName=TABLE)["Items"]
        items = [(i["id"]["S"], i) for i in raw if i["id"]["S"].startswith(ITEM_PREFIX)]
    assert len(items) == 121  # one per principal, none fired
    for item_id, item in items:
        assert len(item_id) < 160
        assert len(json.dumps(item, default=list)) < 2 * PRINCIPAL_MAX + 2000


@pytest.mark.parametrize("broken", ["add", "fire", "remove"])
def test_any_state_failure_alerts_rather_than_drops(broken: str) -> None:
    class Failing(MemoryWindowStore):
        def __getattribute__(self, name: str) -> Any:
            if name == broken:

                def boom(*a: Any, **k: Any) -> Any:
                    raise RuntimeError(f"{name}: ThrottlingException")

                return boom
            return super().__getattribute__(name)

    clock = Clock(T0 + 60)
    judge = Judge(store=Failing(), clock=clock)
    got = []
    for i in range(N):
        clock.now = T0 + 60 + (i * 3 * 3600 if broken == "remove" else 0)  # long pauses leave buckets to remove
        got.append(judge.finding(secret_read(i, clock.now - 30), SECRETS))
    decisions = [f.decision for f in got]
    if broken == "add":
        assert decisions == ["alert"] * N  # nothing can be counted: every qualifying read alerts
    elif broken == "fire":
        assert decisions == ["skip"] * (N - 1) + ["alert"]  # the firing read cannot record itself: alerts anyway
    else:
        assert decisions == ["skip"] + ["alert"] * (N - 1)  # each cleanup after a long pause fails: alerts
    errored = [f for f in got if "threshold state unavailable" in f.reason]
    assert errored and all(f.decision == "alert" for f in errored)
    assert any(m[0] == "ThresholdStateErrors" for m in judge.metrics)
