"""Keep the Athena tables' ``account`` projection in step with the organization, without a deploy.

The Glue tables of the query layer (``stacks/constructs/query_layer.py``) project the
``account`` partition as an ``enum``. This function rewrites that one table parameter,
``projection.account.values``, to the union of

* the values already there (never removed: a closed, suspended or departed account's logs stay
  in the archive and must stay queryable; the list only grows), and
* every account ``organizations:ListAccounts`` returns, whatever its state.

Why this design and not an ``injected`` projection: an injected ``account`` column makes Athena
reject every query that does not name its accounts with static equality conditions
(``CONSTRAINT_VIOLATION ... at least one such condition must be present``). The commonest hunt,
"who in the whole organization did X", would then need the full account list typed into every
query, which is the same enumeration problem moved into every analyst's hands.

Where the account list comes from, and what it never comes from: only ``ListAccounts``, called
with this function's own credentials. The triggering event (an hourly schedule, this stack's own
CloudFormation status changes) is never read, so an event someone forged with an account ID in it
cannot add that ID; a value that is not exactly twelve ASCII digits never reaches the table, whether
it came from the API or was already in the parameter. Nothing else in the table changes: the
function writes back the ``TableInput`` it read (same columns, location, SerDe, other parameters),
with the table's ``VersionId`` so a concurrent change makes the update fail instead of being lost.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trailguard_engine.clients import new_client
from trailguard_engine.exceptions import EngineError

logger = logging.getLogger("trailguard-athena-accounts")
logger.setLevel(logging.INFO)

#: The table parameter this function owns; every other parameter is copied unchanged.
VALUES_KEY = "projection.account.values"
TYPE_KEY = "projection.account.type"
#: Exactly twelve ASCII digits (``\\d`` would accept other scripts' digits, ``$`` a trailing newline).
ACCOUNT_ID = re.compile(r"\A[0-9]{12}\Z")
#: Glue: a table parameter value is at most 512,000 bytes (TableInput.Parameters).
MAX_PARAMETER_BYTES = 512_000
#: Environment: the Glue database and the comma-separated tables whose projection follows the organization.
DATABASE_ENV = "TRAILGUARD_GLUE_DATABASE"
TABLES_ENV = "TRAILGUARD_GLUE_TABLES"


class AccountSyncError(EngineError):
    """The account list or the table is not what this function may safely write."""


@dataclass(frozen=True, slots=True)
class TableSync:
    """What one run did to one table."""

    table: str
    added: tuple[str, ...]
    dropped_invalid: tuple[str, ...]
    updated: bool


def is_account_id(value: object) -> bool:
    return isinstance(value, str) and ACCOUNT_ID.match(value) is not None


def organization_accounts(org: Any) -> frozenset[str]:
    """Every account of the organization (any state), from ``organizations:ListAccounts`` only."""
    ids: set[str] = set()
    for page in org.get_paginator("list_accounts").paginate():
        for account in page.get("Accounts", []):
            value = account.get("Id")
            if not is_account_id(value):
                raise AccountSyncError(f"ListAccounts returned an account id that is not 12 digits: {value!r}")
            ids.add(value)
    if not ids:
        raise AccountSyncError("ListAccounts returned no account")
    return frozenset(ids)


def merged_values(current: str, accounts: Iterable[str]) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """``(new value, added, dropped)``: the sorted union of the valid current values and ``accounts``.

    Only values that are not account IDs are dropped (they can match no ``AWSLogs/<account>/`` key).
    """
    parts = [p.strip() for p in current.split(",") if p.strip()]
    kept = {p for p in parts if is_account_id(p)}
    dropped = tuple(sorted({p for p in parts if not is_account_id(p)}))
    wanted = set(accounts)
    bad = sorted(a for a in wanted if not is_account_id(a))
    if bad:
        raise AccountSyncError(f"refusing account ids that are not 12 digits: {bad!r}")
    union = kept | wanted
    value = ",".join(sorted(union))
    if len(value.encode()) > MAX_PARAMETER_BYTES:
        raise AccountSyncError(f"{len(union)} accounts exceed Glue's {MAX_PARAMETER_BYTES}-byte parameter value")
    return value, tuple(sorted(wanted - kept)), dropped


def _table_input(glue: Any, table: Mapping[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The ``TableInput`` that recreates ``table`` (GetTable's answer) with ``parameters``.

    The members are taken from the Glue API model itself, so a field GetTable returns but
    UpdateTable does not accept (``CreateTime``, ``VersionId``, ...) is never sent.
    """
    members = glue.meta.service_model.shape_for("TableInput").members
    table_input = {k: v for k, v in table.items() if k in members}
    table_input["Parameters"] = parameters
    return table_input


def sync_table(glue: Any, *, database: str, name: str, accounts: frozenset[str]) -> TableSync:
    """Add ``accounts`` to one table's account projection; a no-op when nothing is missing."""
    table = glue.get_table(DatabaseName=database, Name=name)["Table"]
    parameters: dict[str, str] = dict(table.get("Parameters") or {})
    if parameters.get(TYPE_KEY) != "enum":
        raise AccountSyncError(
            f"{database}.{name}: {TYPE_KEY} is {parameters.get(TYPE_KEY)!r}, not 'enum'; not touching it"
        )
    current = parameters.get(VALUES_KEY, "")
    value, added, dropped = merged_values(current, accounts)
    if value == current:
        return TableSync(name, (), (), updated=False)
    parameters[VALUES_KEY] = value
    request: dict[str, Any] = {"DatabaseName": database, "TableInput": _table_input(glue, table, parameters)}
    if table.get("VersionId"):
        request["VersionId"] = table["VersionId"]
    glue.update_table(**request)
    return TableSync(name, added, dropped, updated=True)


def sync(*, glue: Any, org: Any, database: str, tables: Iterable[str]) -> list[TableSync]:
    """One run: read the organization once, then bring every table up to date.

    A table that cannot be updated does not stop the others; the run still fails at the end (so the
    error alarm fires and the asynchronous retries and DLQ apply).
    """
    accounts = organization_accounts(org)
    results: list[TableSync] = []
    errors: list[str] = []
    for name in tables:
        try:
            results.append(sync_table(glue, database=database, name=name, accounts=accounts))
        except AccountSyncError as exc:
            errors.append(str(exc))
    if errors:
        raise AccountSyncError("; ".join(errors))
    return results


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Schedule / stack-status entry point. ``event`` is deliberately ignored (see the module docstring)."""
    del event, context
    region = os.environ["AWS_REGION"]
    database = os.environ[DATABASE_ENV]
    tables = [t for t in os.environ[TABLES_ENV].split(",") if t]
    results = sync(
        glue=new_client("glue", region=region),
        org=new_client("organizations", region=region),
        database=database,
        tables=tables,
    )
    for r in results:
        if r.dropped_invalid:
            logger.warning("%s: dropped values that are not account ids: %s", r.table, ",".join(r.dropped_invalid))
        logger.info("%s: %s", r.table, f"added {','.join(r.added)}" if r.added else "up to date")
    return {"tables": {r.table: {"added": list(r.added), "updated": r.updated} for r in results}}
