"""Rows of the Glue-shaped ``cloudtrail`` relation back to CloudTrail records, for the local matcher.

Retro selects :func:`select_list` (structs and arrays serialised to JSON text, so DuckDB tuples and Athena/Lake
strings arrive in one shape) and rebuilds each row with :func:`record_from_row`: camelCase keys, JSON-string
columns parsed, ``readOnly`` a boolean again, SQL NULL an absent key.

What the Glue table does not keep, and so a rebuilt record lacks (the compiled SQL is exact against the rebuilt
record, see :mod:`trailguard.retro.sqlcompile`):

* record fields that are not columns (``managementEvent``, ``insightDetails``, ``addendum``, ``edgeDeviceDetails``
  ...), and struct members outside the schema (``userIdentity.sessionContext.webIdFederationData`` ...);
* explicit ``null`` values of top-level fields and struct members (stored as SQL NULL, rebuilt as absent);
* the JSON type of top-level scalars: a number or boolean where CloudTrail writes a string comes back as text
  (``readOnly`` excepted: 'true'/'false' become booleans).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import orjson

from trailguard.sqlcatalog import CLOUDTRAIL_COLUMNS, JSON_STRING_COLUMNS, PARTITION_COLUMNS, RESOURCE_KEYS, STRUCT_KEYS

Dialect = Literal["trino", "duckdb"]


_COMPLEX = {col: hive for col, hive, _ in CLOUDTRAIL_COLUMNS if hive != "string"}
_KEY = {col: key for col, _, key in CLOUDTRAIL_COLUMNS}


def select_list(dialect: Dialect) -> str:
    """The SELECT list that lets :func:`record_from_row` rebuild a record (plus the partition columns)."""
    items: list[str] = []
    for col, _hive, _key in CLOUDTRAIL_COLUMNS:
        if col in _COMPLEX:
            expr = f"json_format(CAST({col} AS JSON))" if dialect == "trino" else f"CAST(to_json({col}) AS VARCHAR)"
            items.append(f"{expr} AS {col}")
        else:
            items.append(col)
    items += ["account", "region", '"date"']
    return ", ".join(items)


def columns() -> tuple[str, ...]:
    """Names of the columns :func:`select_list` returns, in order."""
    return (*(col for col, _, _ in CLOUDTRAIL_COLUMNS), *PARTITION_COLUMNS)


def record_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The CloudTrail record of one row (keys absent where the row has SQL NULL)."""
    record: dict[str, Any] = {}
    for col, hive, key in CLOUDTRAIL_COLUMNS:
        value = row.get(col)
        if value is None:
            continue
        if col in JSON_STRING_COLUMNS:
            record[key] = _parse(value)
        elif col == "readonly":
            record[key] = {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value
        elif col in _COMPLEX:
            rebuilt = _complex(_parse(value), hive)
            if rebuilt is not None:
                record[key] = rebuilt
        else:
            record[key] = value
    return record


def _parse(value: Any) -> Any:
    if not isinstance(value, (str, bytes)):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


def _members(hive: str) -> list[tuple[str, str]]:
    body = hive[len("struct<") : -1]
    depth = 0
    start = 0
    out: list[tuple[str, str]] = []
    for i, ch in enumerate(body + ","):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            name, _, typ = body[start:i].partition(":")
            out.append((name, typ))
            start = i + 1
    return out


def _complex(value: Any, hive: str) -> Any:
    """A struct or array value (a JSON object, or a Trino row rendered as a JSON array) with CloudTrail's keys."""
    if value is None:
        return None
    if hive.startswith("array<"):
        if not isinstance(value, list):
            return value
        inner = hive[len("array<") : -1]
        return [_complex(v, inner) for v in value]
    if hive.startswith("struct<"):
        members = _members(hive)
        keys = RESOURCE_KEYS if {n for n, _ in members} == set(RESOURCE_KEYS) else STRUCT_KEYS
        if isinstance(value, list):  # CAST(ROW AS JSON) without field names: members in schema order
            value = {name: v for (name, _), v in zip(members, value, strict=False)}
        if not isinstance(value, Mapping):
            return value
        lowered = {str(k).lower(): v for k, v in value.items()}
        out: dict[str, Any] = {}
        for name, typ in members:
            sub = _complex(lowered.get(name), typ) if typ != "string" else lowered.get(name)
            if sub is not None:
                out[keys.get(name, STRUCT_KEYS.get(name, name))] = sub
        return out
    return value
