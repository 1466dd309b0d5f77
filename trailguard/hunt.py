"""Run the named queries (or ad-hoc SQL) over local CloudTrail logs with DuckDB.

The view built here is the local twin of the Athena Glue table (see
:mod:`trailguard.sqlcatalog` for the dialect contract): a relation ``cloudtrail``
with the Glue table's lower-case columns and types, plus the partition columns
``account``, ``region`` and ``date`` taken from the ``AWSLogs/`` path (or, for
files outside that layout, from the record itself).

Inputs: CloudTrail log files (``{"Records": [...]}``, ``.json`` or ``.json.gz``)
and JSON Lines files of bare records (``.jsonl`` / ``.jsonl.gz``), given as files
or found recursively under directories. ``CloudTrail-Digest`` files are skipped.
Parameter values are always bound (``$name``), never pasted into SQL.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from trailguard.exceptions import TrailguardError
from trailguard.sqlcatalog import CLOUDTRAIL_COLUMNS, JSON_STRING_COLUMNS, RELATION, Query


class HuntError(TrailguardError):
    """Logs cannot be read, or DuckDB rejected the SQL or the data."""


#: Trino functions that DuckDB names differently (the whole substitution list).
COMPAT_MACROS: tuple[str, ...] = (
    "CREATE OR REPLACE TEMP MACRO json_extract_scalar(j, p) AS json_extract_string(j, p)",
    "CREATE OR REPLACE TEMP MACRO regexp_like(s, p) AS regexp_matches(s, p)",
)

LOG_SUFFIXES: tuple[str, ...] = (".json", ".json.gz")
JSONL_SUFFIXES: tuple[str, ...] = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")

#: CloudTrail JSON key for each lower-case struct field of the Glue schema.
_JSON_KEYS: dict[str, str] = {
    k.lower(): k
    for k in (
        "type", "principalId", "arn", "accountId", "invokedBy", "accessKeyId", "userName", "onBehalfOf",
        "userId", "identityStoreArn", "sessionContext", "attributes", "mfaAuthenticated", "creationDate",
        "sessionIssuer", "sourceIdentity", "ec2RoleDelivery", "tlsVersion", "cipherSuite", "clientProvidedHostHeader",
    )
}  # fmt: skip
#: ``resources[].ARN`` is upper-case in CloudTrail.
_RESOURCE_KEYS: dict[str, str] = {"arn": "ARN", "accountid": "accountId", "type": "type"}

_PATH_RE = r"/AWSLogs/(?:o-[a-z0-9]+/)?([0-9]{12})/CloudTrail/([a-z0-9-]+)/([0-9]{4}/[0-9]{2}/[0-9]{2})/"
_MAX_OBJECT_BYTES = 128 << 20  # one CloudTrail log file, uncompressed


@dataclass(frozen=True)
class LogSet:
    """The files a hunt reads."""

    log_files: tuple[Path, ...]
    jsonl_files: tuple[Path, ...]

    @property
    def count(self) -> int:
        return len(self.log_files) + len(self.jsonl_files)

    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in (*self.log_files, *self.jsonl_files))


@dataclass(frozen=True)
class HuntResult:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(LOG_SUFFIXES):
        return "log"
    return None


def discover(paths: Iterable[str | Path]) -> LogSet:
    """Find the log files under ``paths`` (files or directories, walked recursively)."""
    logs: list[Path] = []
    jsonl: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_file():
            if not os.access(p, os.R_OK):
                raise HuntError(f"{p}: not readable")
            candidates = [p]
        elif p.is_dir():
            if not os.access(p, os.R_OK | os.X_OK):
                raise HuntError(f"{p}: directory not readable")
            candidates = sorted(
                f for f in p.rglob("*") if f.is_file() and "CloudTrail-Digest" not in f.parts and _kind(f)
            )
        else:
            raise HuntError(f"{p}: no such file or directory")
        for f in candidates:
            kind = _kind(f)
            if kind == "log":
                logs.append(f.resolve())
            elif kind == "jsonl":
                jsonl.append(f.resolve())
            else:
                raise HuntError(f"{f}: not a CloudTrail log file (expected {', '.join(LOG_SUFFIXES + JSONL_SUFFIXES)})")
    if not logs and not jsonl:
        where = ", ".join(str(p) for p in paths)
        raise HuntError(f"{where}: no CloudTrail log files (*.json, *.json.gz, *.jsonl) found")
    return LogSet(tuple(dict.fromkeys(logs)), tuple(dict.fromkeys(jsonl)))


# --------------------------------------------------------------------------- #
# Schema: Glue (hive) types -> DuckDB read types with CloudTrail's JSON keys
# --------------------------------------------------------------------------- #


def _split_fields(body: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in body:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _duck_type(hive: str, keys: Mapping[str, str]) -> str:
    hive = hive.strip()
    if hive == "string":
        return "VARCHAR"
    if hive.startswith("array<") and hive.endswith(">"):
        inner = hive[len("array<") : -1]
        return _duck_type(inner, _RESOURCE_KEYS) + "[]"
    if hive.startswith("struct<") and hive.endswith(">"):
        fields = []
        for part in _split_fields(hive[len("struct<") : -1]):
            name, _, typ = part.partition(":")
            fields.append(f'"{keys.get(name, _JSON_KEYS.get(name, name))}" {_duck_type(typ, _JSON_KEYS)}')
        return "STRUCT(" + ", ".join(fields) + ")"
    raise HuntError(f"unsupported column type {hive!r}")  # pragma: no cover - schema is static


def record_type() -> str:
    """DuckDB type of one CloudTrail record, keyed by CloudTrail's own (camelCase) JSON names."""
    fields = []
    for col, hive, key in CLOUDTRAIL_COLUMNS:
        typ = "JSON" if col in JSON_STRING_COLUMNS else _duck_type(hive, _JSON_KEYS)
        fields.append(f'"{key}" {typ}')
    return "STRUCT(" + ", ".join(fields) + ")"


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _file_list(files: Sequence[Path]) -> str:
    return "[" + ", ".join(_sql_str(f.as_posix()) for f in files) + "]"


def _record_columns() -> str:
    items = []
    for col, hive, key in CLOUDTRAIL_COLUMNS:
        typ = "JSON" if col in JSON_STRING_COLUMNS else _duck_type(hive, _JSON_KEYS)
        items.append(f"{_sql_str(key)}: {_sql_str(typ)}")
    return "{" + ", ".join(items) + "}"


def view_sql(logset: LogSet) -> str:
    """``CREATE VIEW cloudtrail`` over ``logset`` exposing the Glue table's columns."""
    sources = []
    common = f"filename=true, maximum_object_size={_MAX_OBJECT_BYTES}"
    if logset.log_files:
        sources.append(
            f"SELECT unnest(r), filename FROM (SELECT unnest(Records) AS r, filename FROM read_json("  # noqa: S608 (paths escaped by _sql_str)
            f"{_file_list(logset.log_files)}, columns={{'Records': {_sql_str(record_type() + '[]')}}}, "
            f"format='auto', {common}))"
        )
    if logset.jsonl_files:
        sources.append(
            f"SELECT * FROM read_json({_file_list(logset.jsonl_files)}, columns={_record_columns()}, "  # noqa: S608
            f"format='newline_delimited', {common})"
        )
    cols = []
    for col, _hive, key in CLOUDTRAIL_COLUMNS:
        expr = f'"{key}"'
        if col in JSON_STRING_COLUMNS:
            expr = f"CAST({expr} AS VARCHAR)"
        cols.append(f"{expr} AS {col}")
    path_re = _sql_str(_PATH_RE)
    cols += [
        f"coalesce(nullif(regexp_extract(filename, {path_re}, 1), ''), \"recipientAccountId\") AS account",
        f"coalesce(nullif(regexp_extract(filename, {path_re}, 2), ''), \"awsRegion\") AS region",
        f"coalesce(nullif(regexp_extract(filename, {path_re}, 3), ''), "
        f"replace(substr(\"eventTime\", 1, 10), '-', '/')) AS \"date\"",
    ]
    union = " UNION ALL BY NAME ".join(sources)
    return (
        f"CREATE OR REPLACE TEMP VIEW {RELATION} AS SELECT {', '.join(cols)} FROM ({union}) "  # noqa: S608
        f'WHERE "eventTime" IS NOT NULL'
    )


def connect(logset: LogSet) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the ``cloudtrail`` view and the Trino compatibility macros."""
    con = duckdb.connect(":memory:")
    try:
        for macro in COMPAT_MACROS:
            con.execute(macro)
        con.execute(view_sql(logset))
    except duckdb.Error as exc:
        con.close()
        raise HuntError(f"cannot build the cloudtrail view: {_one_line(exc)}") from exc
    return con


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


ProgressCallback = Callable[[float], None]


def execute(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: Mapping[str, str] | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    poll_seconds: float = 0.1,
) -> HuntResult:
    """Run ``sql`` with bound ``params``; report DuckDB's progress (0-100) to ``on_progress`` while it runs."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            cur = con.execute(sql, dict(params) if params else None)
            box["columns"] = tuple(d[0] for d in (cur.description or ()))
            box["rows"] = tuple(tuple(r) for r in cur.fetchall())
        except BaseException as exc:  # re-raised in the calling thread
            box["error"] = exc

    if on_progress is None:
        work()
    else:
        worker = threading.Thread(target=work, name="trailguard-hunt", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(poll_seconds)
                progress = con.query_progress()
                if progress >= 0:
                    on_progress(float(progress))
        except KeyboardInterrupt:
            con.interrupt()
            worker.join()
            raise
        on_progress(100.0)
    err = box.get("error")
    if err is not None:
        if isinstance(err, duckdb.Error):
            raise HuntError(_one_line(err)) from err
        raise err
    return HuntResult(box["columns"], box["rows"])


def run_query(
    query: Query,
    params: Mapping[str, str],
    logset: LogSet,
    *,
    on_progress: ProgressCallback | None = None,
) -> HuntResult:
    """Run a named query over ``logset``; ``params`` are validated, defaulted and bound."""
    values = query.bind(params)
    con = connect(logset)
    try:
        return execute(con, query.duckdb_sql(), values, on_progress=on_progress)
    finally:
        con.close()


def run_sql(sql: str, logset: LogSet, *, on_progress: ProgressCallback | None = None) -> HuntResult:
    """Run ad-hoc SQL (read ``cloudtrail``) over ``logset``."""
    if not sql.strip():
        raise HuntError("empty SQL")
    con = connect(logset)
    try:
        return execute(con, sql, None, on_progress=on_progress)
    finally:
        con.close()


def jsonable(value: Any) -> Any:
    """Convert a DuckDB value (lists, structs, dates) to something ``json.dumps`` accepts."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    iso = getattr(value, "isoformat", None)
    if callable(iso):
        return iso()
    return str(value)
