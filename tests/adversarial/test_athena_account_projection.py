"""Issue 20: the Athena account projection cannot be steered by an attacker.

An admin in one member account can put events on buses, including events shaped like the
Organizations ``CreateAccountResult`` / ``AcceptHandshake`` records, with any account ID in them.
``trailguard-athena-accounts`` takes its account list from ``organizations:ListAccounts`` only, so
such an event adds nothing; and a value that is not exactly twelve ASCII digits never reaches the
``projection.account.values`` table parameter (where a comma or a ``${...}`` would add partitions
or rewrite the location template), whether it came from the API or was planted in the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from trailguard_engine import athena_accounts

from stacks.constructs.query_layer import projection_parameters

REGION = "us-east-1"
DATABASE = "trailguard"
TABLE = "cloudtrail"
ATTACKER_CHOSEN = "999999999999"
SEED = "111111111111"


def _create_table(glue: Any, accounts: str = SEED) -> None:
    glue.create_database(DatabaseInput={"Name": DATABASE})
    glue.create_table(
        DatabaseName=DATABASE,
        TableInput={
            "Name": TABLE,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": projection_parameters(
                bucket_name="trailguard-archive-222222222222-us-east-1",
                prefix="AWSLogs/o-exampleorg/",
                account_ids=accounts,
                regions=["us-east-1", "eu-west-1"],
            ),
            "PartitionKeys": [{"Name": n, "Type": "string"} for n in ("account", "region", "date")],
            "StorageDescriptor": {"Location": "s3://trailguard-archive-222222222222-us-east-1/AWSLogs/o-exampleorg/"},
        },
    )


def _values(glue: Any) -> list[str]:
    return glue.get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]["Parameters"]["projection.account.values"].split(
        ","
    )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        athena_accounts.DATABASE_ENV: DATABASE,
        athena_accounts.TABLES_ENV: TABLE,
    }.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        glue = boto3.client("glue", region_name=REGION)
        org = boto3.client("organizations", region_name=REGION)
        org.create_organization(FeatureSet="ALL")
        _create_table(glue)
        yield glue, org


def _forged_events(account: str) -> list[dict[str, Any]]:
    """Organizations-shaped events as a member-account admin can put them on a bus (PutEvents)."""
    create_result = {
        "source": "aws.organizations",
        "detail-type": "AWS Service Event via CloudTrail",
        "account": "444444444444",
        "region": REGION,
        "resources": [f"arn:aws:organizations::444444444444:account/o-exampleorg/{account}"],
        "detail": {
            "eventSource": "organizations.amazonaws.com",
            "eventName": "CreateAccountResult",
            "eventType": "AwsServiceEvent",
            "recipientAccountId": account,
            "serviceEventDetails": {
                "createAccountStatus": {"accountId": account, "state": "SUCCEEDED", "accountName": "x"}
            },
        },
    }
    handshake = {
        "source": "aws.organizations",
        "detail-type": "AWS API Call via CloudTrail",
        "account": account,
        "region": REGION,
        "detail": {
            "eventSource": "organizations.amazonaws.com",
            "eventName": "AcceptHandshake",
            "userIdentity": {"accountId": account},
            "responseElements": {"handshake": {"parties": [{"id": account, "type": "ACCOUNT"}], "state": "ACCEPTED"}},
        },
    }
    return [create_result, handshake, {"accounts": [account], "projection.account.values": account}]


@pytest.mark.parametrize("value", [ATTACKER_CHOSEN, "123456789012,999999999999", "${account}"])
def test_forged_organizations_events_add_nothing(world: tuple[Any, Any], value: str) -> None:
    glue, org = world
    org_accounts = {a["Id"] for a in org.list_accounts()["Accounts"]}
    for event in _forged_events(value):
        athena_accounts.handler(event, None)
    values = _values(glue)
    assert set(values) == org_accounts | {SEED}
    assert ATTACKER_CHOSEN not in values and "${account}" not in values


class _Paginator:
    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def paginate(self) -> Iterator[dict[str, Any]]:
        yield {"Accounts": [{"Id": i, "Status": "ACTIVE"} for i in self.ids]}


class _OrgReturning:
    """An Organizations client whose ListAccounts answer the test chooses."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def get_paginator(self, name: str) -> _Paginator:
        assert name == "list_accounts"
        return _Paginator(self.ids)


NOT_ACCOUNT_IDS = [
    "12345678901",  # 11 digits
    "1234567890123",  # 13 digits
    "123456789012\n",  # a trailing newline passes ^\d{12}$
    "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff10\uff11\uff12",  # fullwidth digits pass \d
    "12345678901\u0663",  # an Arabic-Indic digit
    "123456789012,999999999999",  # a second enum value smuggled in
    "${region}",  # a location-template variable
    "../../other-bucket",
    "' OR '1'='1",
    "",
]


@pytest.mark.parametrize("bad", NOT_ACCOUNT_IDS)
def test_a_value_that_is_not_an_account_id_never_reaches_the_table(world: tuple[Any, Any], bad: str) -> None:
    glue, _org = world
    before = glue.get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]
    with pytest.raises(athena_accounts.AccountSyncError):
        athena_accounts.sync(glue=glue, org=_OrgReturning(["123456789012", bad]), database=DATABASE, tables=[TABLE])
    after = glue.get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]
    assert after["Parameters"] == before["Parameters"]
    with pytest.raises(athena_accounts.AccountSyncError):
        athena_accounts.merged_values(SEED, [bad])


@pytest.mark.parametrize("planted", [v for v in NOT_ACCOUNT_IDS if v.strip() and "," not in v])
def test_planted_values_in_the_table_are_dropped_not_kept(world: tuple[Any, Any], planted: str) -> None:
    """Someone with Glue rights wrote junk into the parameter: the next run keeps only account IDs."""
    glue, org = world
    table = glue.get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]
    params = dict(table["Parameters"], **{"projection.account.values": f"{SEED},{planted}"})
    glue.update_table(
        DatabaseName=DATABASE,
        TableInput={k: table[k] for k in ("Name", "TableType", "PartitionKeys", "StorageDescriptor")}
        | {"Parameters": params},
    )
    athena_accounts.handler({}, None)
    values = _values(glue)
    assert all(athena_accounts.is_account_id(v) for v in values)
    assert SEED in values and set(values) >= {a["Id"] for a in org.list_accounts()["Accounts"]}


def test_only_the_account_parameter_changes(world: tuple[Any, Any]) -> None:
    """The function never widens access: location, SerDe and the location template stay as deployed."""
    glue, _org = world
    before = glue.get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]
    athena_accounts.handler({}, None)
    after = glue.get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]
    assert after["StorageDescriptor"] == before["StorageDescriptor"]
    assert after["PartitionKeys"] == before["PartitionKeys"]
    changed = {k for k in before["Parameters"] if before["Parameters"][k] != after["Parameters"].get(k)}
    assert changed == {"projection.account.values"}
    assert set(after["Parameters"]) == set(before["Parameters"])
