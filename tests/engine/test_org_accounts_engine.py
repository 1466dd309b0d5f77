"""The organization's accounts in the engine: cached organizations:ListAccounts against moto's Organizations.

A share with an account of the organization is not external; with any other account it is alerted. When
ListAccounts fails (denied, throttled, no organization), the list is unknown and every share with another
account is alerted (never silenced, never remediated); the cache keeps one call per TTL, and a failure is
retried at most once a minute.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from engine_world import ENGINE, MEMBER, REGION, World, ct_event, metric_total
from trailguard_engine import handler
from trailguard_engine.athena_accounts import AccountSyncError, organization_accounts
from trailguard_engine.org_accounts import MAX_STALE_SECONDS, RETRY_SECONDS, TTL_SECONDS, OrgAccounts

ORG_RUNTIME = {"org_id": "o-a1b2c3d4e5"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- the cache
def test_cache_serves_one_call_per_ttl() -> None:
    clock, calls = Clock(), []

    def fetch() -> frozenset[str]:
        calls.append(clock.now)
        return frozenset({"222233334444"})

    cache = OrgAccounts(fetch, clock=clock)
    assert cache.get().accounts == {"222233334444"}
    clock.now += TTL_SECONDS - 1
    assert cache.get().accounts == {"222233334444"}
    assert len(calls) == 1
    clock.now += 2
    cache.get()
    assert len(calls) == 2


def test_failure_keeps_the_last_good_list_for_a_while_then_unknown() -> None:
    clock, fail = Clock(), [False]

    def fetch() -> frozenset[str]:
        if fail[0]:
            raise RuntimeError("AccessDeniedException")
        return frozenset({"222233334444"})

    cache = OrgAccounts(fetch, clock=clock)
    cache.get()
    fail[0] = True
    clock.now += TTL_SECONDS
    stale = cache.get()
    assert stale.accounts == {"222233334444"} and "AccessDenied" in (stale.error or "")
    clock.now += MAX_STALE_SECONDS
    gone = cache.get()
    assert gone.accounts is None and gone.error


def test_a_failure_is_retried_no_sooner_than_a_minute() -> None:
    clock, calls = Clock(), []

    def fetch() -> frozenset[str]:
        calls.append(clock.now)
        raise RuntimeError("ThrottlingException")

    cache = OrgAccounts(fetch, clock=clock)
    assert cache.get().accounts is None
    clock.now += RETRY_SECONDS - 1
    assert cache.get().accounts is None
    assert len(calls) == 1
    clock.now += 1
    cache.get()
    assert len(calls) == 2


# --------------------------------------------------------------------------- moto Organizations
def _organization(extra: int = 2) -> list[str]:
    org = boto3.client("organizations", region_name=REGION)
    org.create_organization(FeatureSet="ALL")
    for i in range(extra):
        org.create_account(Email=f"acct{i}@example.com", AccountName=f"acct{i}")
    return sorted(a["Id"] for a in org.list_accounts()["Accounts"])


def test_organization_accounts_reads_every_page(world: World) -> None:
    ids = _organization(extra=25)  # more than one ListAccounts page
    assert organization_accounts(boto3.client("organizations", region_name=REGION)) == set(ids)
    assert ENGINE in ids


def test_no_organization_is_an_error_not_an_empty_list(world: World) -> None:
    """moto answers an empty list without an organization: an empty organization is an error, not "no one"."""
    with pytest.raises(AccountSyncError, match="no account"):
        organization_accounts(boto3.client("organizations", region_name=REGION))


def _snapshot_share(target: str) -> dict[str, Any]:
    return ct_event(
        "ec2",
        "ModifySnapshotAttribute",
        {
            "snapshotId": "snap-0a1b2c3d4e5f60718",
            "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [{"userId": target}]}},
        },
    )


def _alerts(world: World) -> list[dict[str, Any]]:
    return [m for _, m in world.messages()]


def test_share_with_an_organization_account_is_not_alerted_and_outside_is(world: World) -> None:
    ids = _organization()
    inside = next(a for a in ids if a not in (ENGINE, MEMBER))
    world.set_runtime(**ORG_RUNTIME)
    out = world.invoke(_snapshot_share(inside), "ebs-snapshot-public")
    assert [f["decision"] for f in out["findings"]] == ["skip"]
    assert _alerts(world) == []
    out = world.invoke(_snapshot_share("999988887777"), "ebs-snapshot-public")
    [f] = out["findings"]
    assert f["decision"] == "alert"
    [alert] = _alerts(world)
    assert "999988887777" in str(alert) and "not an account of the organization" in str(alert)
    calls = [c for c in world.calls if c[1:] == ("organizations", "ListAccounts")]
    assert len(calls) == 1, "the list is cached across invocations"


@pytest.mark.usefixtures("capture_logs")
def test_list_accounts_failure_never_makes_an_outside_share_look_internal(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """No organization in moto: ListAccounts fails. An account that *would* be ours is still alerted."""
    world.set_runtime(**ORG_RUNTIME)
    out = world.invoke(_snapshot_share("222233334444"), "ebs-snapshot-public")
    [f] = out["findings"]
    assert f["decision"] == "alert"
    [alert] = _alerts(world)
    assert "unverified" in str(alert)
    assert metric_total(capsys.readouterr().out, "OrgAccountsUnavailable") >= 1


def test_standalone_never_calls_list_accounts(world: World) -> None:
    _organization()
    world.set_runtime(org_id=None)
    world.invoke(_snapshot_share("999988887777"), "ebs-snapshot-public")
    assert not [c for c in world.calls if c[1] == "organizations"]


def test_configured_organization_accounts_count_without_the_api(world: World) -> None:
    """Replay's source, also read by the engine: organization.accounts in the config file."""
    world.set_runtime(**ORG_RUNTIME, organization_accounts=["222233334444"])
    out = world.invoke(_snapshot_share("222233334444"), "ebs-snapshot-public")
    assert [f["decision"] for f in out["findings"]] == ["skip"]
    assert handler._ENGINE[0].org_accounts is not None
