"""Run the named queries (or ad-hoc SQL) over local CloudTrail logs with DuckDB.

The view built here is the local twin of the Athena Glue table (see
:mod:`trailguard.sqlcatalog` for the dialect contract): a relation ``cloudtrail``
with the Glue table's lower-case columns and types, plus the partition columns
``account``, ``region`` and ``date`` taken from the ``AWSLogs/`` path (or, for
files outside that layout, from the record itself).

Inputs: CloudTrail log files (``{"Records": [...]}``, ``.json`` or ``.json.gz``)
and JSON Lines files of bare records (``.jsonl`` / ``.jsonl.gz``), given as files
or found recursively under directories. ``CloudTrail-Digest`` and ``CloudTrail-Insight`` files are skipped by
name (:attr:`LogSet.skipped`). Parameter values are always bound (``$name``), never pasted into SQL.

Damaged input is handled as ``replay`` handles it: every file is read first with replay's readers; a file with
bad lines or a truncated gzip stream is replaced, for DuckDB, by a JSON Lines copy of its readable records (in
a temporary directory that mirrors its path, so the ``AWSLogs/`` partition columns still come from it), and
each skipped input is reported (:attr:`HuntResult.problems`).

Ad-hoc SQL is read-only: :func:`check_read_only` parses it with sqlglot (DuckDB dialect) and allows one
SELECT/WITH query over ``cloudtrail`` (and its own CTEs) with no file-reading or file-writing function; the
connection then turns DuckDB's external access off, allows only the log files, and locks the configuration.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import sqlglot
from sqlglot import exp

from trailguard.exceptions import TrailguardError
from trailguard.replay import Problem, ReplayInputError, SkippedFile, iter_file, skipped_kind
from trailguard.sqlcatalog import CLOUDTRAIL_COLUMNS, JSON_STRING_COLUMNS, RELATION, RESOURCE_KEYS, STRUCT_KEYS, Query


class HuntError(TrailguardError):
    """Logs cannot be read, or DuckDB rejected the SQL or the data."""


#: Trino functions that DuckDB names differently (the whole substitution list).
COMPAT_MACROS: tuple[str, ...] = (
    "CREATE OR REPLACE TEMP MACRO json_extract_scalar(j, p) AS json_extract_string(j, p)",
    "CREATE OR REPLACE TEMP MACRO regexp_like(s, p) AS regexp_matches(s, p)",
)

LOG_SUFFIXES: tuple[str, ...] = (".json", ".json.gz")
JSONL_SUFFIXES: tuple[str, ...] = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")


_PATH_RE = r"/AWSLogs/(?:o-[a-z0-9]+/)?([0-9]{12})/CloudTrail/([a-z0-9-]+)/([0-9]{4}/[0-9]{2}/[0-9]{2})/"
_MAX_OBJECT_BYTES = 128 << 20  # one CloudTrail log file, uncompressed


@dataclass(frozen=True)
class LogSet:
    """The files a hunt reads."""

    log_files: tuple[Path, ...]
    jsonl_files: tuple[Path, ...]
    #: Insights and digest files left out by name (not API activity).
    skipped: tuple[SkippedFile, ...] = ()

    @property
    def count(self) -> int:
        return len(self.log_files) + len(self.jsonl_files)

    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in (*self.log_files, *self.jsonl_files))


@dataclass(frozen=True)
class HuntResult:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    #: Inputs skipped because they could not be read (bad lines, truncated files), as replay reports them.
    problems: tuple[Problem, ...] = field(default=())

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
    paths = list(paths)
    logs: list[Path] = []
    jsonl: list[Path] = []
    skipped: list[SkippedFile] = []
    for raw in paths:
        p = Path(raw)
        if p.is_file():
            if not os.access(p, os.R_OK):
                raise HuntError(f"{p}: not readable")
            candidates = [p]
        elif p.is_dir():
            if not os.access(p, os.R_OK | os.X_OK):
                raise HuntError(f"{p}: directory not readable")
            candidates = sorted(f for f in p.rglob("*") if f.is_file() and _kind(f))
        else:
            raise HuntError(f"{p}: no such file or directory")
        for f in candidates:
            by_name = skipped_kind(str(f))
            if by_name is not None:
                skipped.append(SkippedFile(str(f), by_name))
                continue
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
    return LogSet(tuple(dict.fromkeys(logs)), tuple(dict.fromkeys(jsonl)), tuple(skipped))


#: A log file's date folder is its delivery date, at or after its events' dates; one day of margin for clock skew.
_DELIVERY_MARGIN = timedelta(days=1)
_PATH_PARTS = re.compile(_PATH_RE)


def partition_of(path: Path) -> tuple[str, str, str] | None:
    """(account, region, yyyy/MM/dd) from a file's ``AWSLogs/`` path, or None outside that layout."""
    m = _PATH_PARTS.search(path.as_posix())
    return (m.group(1), m.group(2), m.group(3)) if m else None


def prune(
    logset: LogSet, *, since: str | None = None, accounts: Iterable[str] = (), regions: Iterable[str] = ()
) -> LogSet:
    """Keep only the log files whose ``AWSLogs/`` path can hold events selected by the filters.

    Why: a synced organization tree holds years of files; a ``--since``/``--account``/``--region`` hunt should
    not decompress the rest. The view's ``account`` and ``region`` come from the same path, so those are exact;
    ``since`` (CloudTrail eventTime form) keeps files dated from one day before it (a file's date folder is its
    delivery date, never before its events). ``until`` prunes nothing: late deliveries land in later folders.
    Files outside the layout are always kept; the WHERE on the view still applies.
    """
    wanted_accounts = frozenset(accounts)
    wanted_regions = frozenset(regions)
    first_day = None
    if since:
        try:
            day = datetime.strptime(since[:10], "%Y-%m-%d") - _DELIVERY_MARGIN
            first_day = day.strftime("%Y/%m/%d")
        except ValueError:
            first_day = None  # not a date we can compare: keep everything
    if not (wanted_accounts or wanted_regions or first_day):
        return logset

    def keep(path: Path) -> bool:
        parts = partition_of(path)
        if parts is None:
            return True
        account, region, day = parts
        if wanted_accounts and account not in wanted_accounts:
            return False
        if wanted_regions and region not in wanted_regions:
            return False
        return not (first_day and day < first_day)

    return replace(
        logset,
        log_files=tuple(f for f in logset.log_files if keep(f)),
        jsonl_files=tuple(f for f in logset.jsonl_files if keep(f)),
    )


def salvage(logset: LogSet, workdir: Path) -> tuple[LogSet, list[Problem]]:
    """Read every file with replay's readers; replace each damaged one by a JSON Lines copy of its good records.

    Returns the set DuckDB should read and the skipped inputs (``file:line: reason``). Clean files are used as
    they are; a damaged file's copy sits under ``workdir`` at its own path (``<workdir>/<abs path>.jsonl``), so
    the account, region and date still come from the ``AWSLogs/`` layout.
    """
    problems: list[Problem] = []
    logs: list[Path] = []
    jsonl = list(logset.jsonl_files)
    for original, kind in [*((f, "log") for f in logset.log_files), *((f, "jsonl") for f in logset.jsonl_files)]:
        good: list[dict[str, Any]] = []
        bad: list[Problem] = []
        try:
            for label, line, obj in iter_file(str(original)):
                if type(obj) is dict:
                    good.append(obj)
                else:
                    reason = getattr(obj, "reason", None) or f"expected a JSON object, got {type(obj).__name__}"
                    bad.append(Problem(label, line, reason))
        except ReplayInputError as exc:
            raise HuntError(str(exc)) from exc
        if not bad:
            if kind == "log":
                logs.append(original)
            continue
        problems.extend(bad)
        copy = workdir / (original.as_posix().lstrip("/") + ".salvaged.jsonl")
        copy.parent.mkdir(parents=True, exist_ok=True)
        with copy.open("wb") as fh:
            for rec in good:
                fh.write(orjson.dumps(rec) + b"\n")
        if kind == "jsonl":
            jsonl[jsonl.index(original)] = copy
        else:
            jsonl.append(copy)
    return replace(logset, log_files=tuple(logs), jsonl_files=tuple(jsonl)), problems


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
        return _duck_type(inner, RESOURCE_KEYS) + "[]"
    if hive.startswith("struct<") and hive.endswith(">"):
        fields = []
        for part in _split_fields(hive[len("struct<") : -1]):
            name, _, typ = part.partition(":")
            fields.append(f'"{keys.get(name, STRUCT_KEYS.get(name, name))}" {_duck_type(typ, STRUCT_KEYS)}')
        return "STRUCT(" + ", ".join(fields) + ")"
    raise HuntError(f"unsupported column type {hive!r}")  # pragma: no cover - schema is static


def record_type() -> str:
    """DuckDB type of one CloudTrail record, keyed by CloudTrail's own (camelCase) JSON names."""
    fields = []
    for col, hive, key in CLOUDTRAIL_COLUMNS:
        typ = "JSON" if col in JSON_STRING_COLUMNS else _duck_type(hive, STRUCT_KEYS)
        fields.append(f'"{key}" {typ}')
    return "STRUCT(" + ", ".join(fields) + ")"


def _structure(hive: str, keys: Mapping[str, str]) -> Any:
    """``json_transform`` structure for a Glue type (same keys and leaf types as :func:`_duck_type`)."""
    hive = hive.strip()
    if hive == "string":
        return "VARCHAR"
    if hive.startswith("array<") and hive.endswith(">"):
        return [_structure(hive[len("array<") : -1], RESOURCE_KEYS)]
    if hive.startswith("struct<") and hive.endswith(">"):
        fields: dict[str, Any] = {}
        for part in _split_fields(hive[len("struct<") : -1]):
            name, _, typ = part.partition(":")
            fields[keys.get(name, STRUCT_KEYS.get(name, name))] = _structure(typ, STRUCT_KEYS)
        return fields
    raise HuntError(f"unsupported column type {hive!r}")  # pragma: no cover - schema is static


def record_structure() -> dict[str, Any]:
    """One CloudTrail record as a ``json_transform`` structure, keyed by CloudTrail's (camelCase) JSON names."""
    return {
        key: "JSON" if col in JSON_STRING_COLUMNS else _structure(hive, STRUCT_KEYS)
        for col, hive, key in CLOUDTRAIL_COLUMNS
    }


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _file_list(files: Sequence[Path]) -> str:
    return "[" + ", ".join(_sql_str(f.as_posix()) for f in files) + "]"


def _record_columns() -> str:
    items = []
    for col, hive, key in CLOUDTRAIL_COLUMNS:
        typ = "JSON" if col in JSON_STRING_COLUMNS else _duck_type(hive, STRUCT_KEYS)
        items.append(f"{_sql_str(key)}: {_sql_str(typ)}")
    return "{" + ", ".join(items) + "}"


def view_sql(logset: LogSet) -> str:
    """``CREATE VIEW cloudtrail`` over ``logset`` exposing the Glue table's columns."""
    sources = []
    common = f"filename=true, maximum_object_size={_MAX_OBJECT_BYTES}"
    if logset.log_files:
        sources.append(
            # read_json_objects + json_transform, not read_json(columns=...): read_json converts a log file's one
            # large object about ten times slower (DuckDB 2.0, 200k records: 8.5 s against 0.8 s).
            f"SELECT unnest(r), filename FROM (SELECT unnest(json_transform(json -> 'Records', "  # noqa: S608 (paths escaped by _sql_str)
            f"{_sql_str(orjson.dumps([record_structure()]).decode())})) AS r, filename FROM read_json_objects("
            f"{_file_list(logset.log_files)}, format='auto', {common}))"
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


def connect(logset: LogSet, *, lock: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the ``cloudtrail`` view and the Trino compatibility macros.

    With ``lock`` (the default) the connection can read the log files and nothing else: external access off
    (only ``logset``'s files allowed), no extension installing or autoloading, configuration locked.
    """
    con = duckdb.connect(":memory:")
    try:
        for macro in COMPAT_MACROS:
            con.execute(macro)
        con.execute(view_sql(logset))
        if lock:
            files = [f.as_posix() for f in (*logset.log_files, *logset.jsonl_files)]
            con.execute("SET allowed_paths = [" + ", ".join(_sql_str(f) for f in files) + "]")
            for setting in _LOCKDOWN:
                con.execute(setting)
    except duckdb.Error as exc:
        con.close()
        raise HuntError(f"cannot build the cloudtrail view: {_one_line(exc)}") from exc
    return con


#: Applied after the view exists: DuckDB's own guard against SQL that reaches outside the logs.
_LOCKDOWN: tuple[str, ...] = (
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET enable_external_access = false",
    "SET lock_configuration = true",
)


class UnsafeSQLError(HuntError):
    """Ad-hoc SQL that is not a single read-only query over ``cloudtrail``."""


#: Statement types refused anywhere in the tree (a CTE may not hide them either).
_REFUSED_NODES: tuple[type, ...] = (
    exp.DML, exp.DDL, exp.Command, exp.Copy, exp.Pragma, exp.Set, exp.Attach, exp.Detach, exp.Install,
    exp.Use, exp.Export, exp.LoadData, exp.Transaction, exp.Commit, exp.Rollback, exp.Grant, exp.Analyze,
    exp.Describe, exp.Summarize,
)  # fmt: skip
#: Functions that read or write files, the environment or other databases (DuckDB's external access is off
#: too; this names them before anything runs).
_FILE_FUNCTION = re.compile(
    r"^(read_\w+|write_\w+|\w+_scan|glob|getenv|sniff_csv|parquet_\w+|iceberg_\w+|delta_\w+|copy\w*|export\w*"
    r"|load\w*|install\w*|attach\w*|query_table|query)$",
    re.IGNORECASE,
)


def check_read_only(sql: str) -> None:
    """Refuse anything but one SELECT/WITH query over ``cloudtrail`` and its CTEs (raises UnsafeSQLError)."""
    try:
        statements = [s for s in sqlglot.parse(sql, dialect="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise UnsafeSQLError(
            f"cannot read the SQL as a query ({_one_line(exc)}); --sql takes one SELECT over cloudtrail"
        ) from exc
    if len(statements) != 1:
        raise UnsafeSQLError(f"--sql takes exactly one statement, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise UnsafeSQLError(
            f"--sql is read-only: {type(tree).__name__.upper()} is not allowed (use a SELECT or WITH ... SELECT)"
        )
    for node in tree.walk():
        if isinstance(node, _REFUSED_NODES):
            raise UnsafeSQLError(f"--sql is read-only: {type(node).__name__.upper()} is not allowed inside a query")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for fn in tree.find_all(exp.Func):
        name = fn.sql_name() if not isinstance(fn, exp.Anonymous) else str(fn.this)
        if _FILE_FUNCTION.match(name):
            raise UnsafeSQLError(f"--sql is read-only and reads only the logs: {name.lower()}() is not allowed")
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier) or table.args.get("db") or table.args.get("catalog"):
            raise UnsafeSQLError(f"--sql reads only the {RELATION} view: {table.sql(dialect='duckdb')} is not allowed")
        if table.name.lower() not in ctes | {RELATION}:
            raise UnsafeSQLError(
                f"--sql reads only the {RELATION} view (and its own WITH names): {table.name!r} is not a table here"
            )


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
    return _run(query.duckdb_sql(), values, logset, on_progress)


def run_sql(sql: str, logset: LogSet, *, on_progress: ProgressCallback | None = None) -> HuntResult:
    """Run ad-hoc, read-only SQL (reads ``cloudtrail``) over ``logset``; refuses anything else (UnsafeSQLError)."""
    if not sql.strip():
        raise HuntError("empty SQL")
    check_read_only(sql)
    return _run(sql, None, logset, on_progress)


def _run(
    sql: str, values: Mapping[str, str] | None, logset: LogSet, on_progress: ProgressCallback | None
) -> HuntResult:
    with tempfile.TemporaryDirectory(prefix="trailguard-hunt-") as tmp:
        readable, problems = salvage(logset, Path(tmp))
        con = connect(readable)
        try:
            result = execute(con, sql, values, on_progress=on_progress)
        finally:
            con.close()
    return replace(result, problems=tuple(problems))


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
