"""Retro-detection: scan with compiled predicates, bring back only candidates, judge them locally like ``replay``.

The flow, the same for every engine:

1. :mod:`trailguard.retro.sqlcompile` turns each selected rule's pattern into a SQL predicate over the Glue-shaped
   ``cloudtrail`` relation (never selecting fewer events than the matcher matches).
2. :class:`~trailguard.retro.plan.ScanPlan` adds partition pruning (``account``, ``region``, ``"date"``) and the
   exact ``eventtime`` window, split into queries per account group and date range.
3. The engine runs the queries: DuckDB over local files (pruned by their ``AWSLogs/`` path first), Athena on the
   deployed workgroup, or CloudTrail Lake through the CTE that presents a store under the Glue column names.
4. Rows come back as records (:func:`trailguard.retro.rows.record_from_row`), oldest first, and ``replay``'s
   evaluator (the matcher, the decision functions, the threshold windows) judges them: whatever the superset let
   through is dropped there.

Statement size: Athena takes at most 262,144 bytes of SQL and CloudTrail Lake 10,000 characters. The exact
predicates are packed into as few statements as fit; when one rule's predicate alone does not fit (Lake), its
*coarse* form is used instead: the pattern reduced to its ``eventSource``, ``eventName`` and ``errorCode`` leaves,
a superset (an AND with fewer terms) that the matcher then narrows. Each statement is a separate scan, so the
number of statements is reported with the bytes scanned and the cost.

Several statements can return the same event (it matches rules in two batches): rows are merged by their full
content, keeping each row as many times as the one statement that returned it most often, so an event that
CloudTrail delivered twice is still judged twice, as ``replay`` judges it.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import orjson
from trailguard_engine.model import Rule

from trailguard import hunt
from trailguard.exceptions import TrailguardError
from trailguard.replay import Item, maybe_json
from trailguard.retro.plan import ScanPlan, scan_sql
from trailguard.retro.rows import columns as row_columns
from trailguard.retro.rows import record_from_row, select_list
from trailguard.retro.sqlcompile import CompiledPredicate, Dialect, compile_pattern, compile_rules
from trailguard.sqlcatalog import CLOUDTRAIL_COLUMNS, JSON_STRING_COLUMNS, RELATION

Engine = Literal["duckdb", "athena", "lake"]
ENGINES: tuple[str, ...] = ("duckdb", "athena", "lake")

#: Athena's documented maximum query string length (bytes), less room for the pruning clause.
ATHENA_MAX_SQL = 262_144
#: CloudTrail Lake's documented maximum query statement length (characters).
LAKE_MAX_SQL = 10_000
#: The leaves a coarse predicate keeps: cheap, selective columns every engine has.
_COARSE_KEEP: frozenset[tuple[str, ...]] = frozenset(
    {("detail", "eventSource"), ("detail", "eventName"), ("detail", "errorCode")}
)


#: The record keys of the Glue table's JSON-string columns (Lake keeps them as maps of strings).
_JSON_KEYS: tuple[str, ...] = tuple(key for col, _hive, key in CLOUDTRAIL_COLUMNS if col in JSON_STRING_COLUMNS)


class RetroError(TrailguardError):
    """A retro scan cannot run (bad input, a statement that cannot fit, an engine error): the message says why."""


@dataclass
class RetroStats:
    """What the scan did: shown on stderr after the findings, and in ``-o json``."""

    engine: str
    rules: int = 0
    exact_rules: int = 0
    statements: int = 0
    queries: int = 0
    candidates: int = 0
    files: int = 0
    bytes_scanned: int = 0
    cost_usd: float | None = None
    coarse_rules: list[str] = field(default_factory=list)
    #: Candidates whose recipientAccountId is not the account of the AWSLogs/ folder they were read from.
    misfiled: int = 0
    query_ids: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "rules": self.rules,
            "exact_rules": self.exact_rules,
            "statements": self.statements,
            "queries": self.queries,
            "candidates": self.candidates,
            "files": self.files,
            "bytes_scanned": self.bytes_scanned,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "coarse_rules": self.coarse_rules,
            "misfiled": self.misfiled,
            "query_ids": self.query_ids,
            **({"info": self.info} if self.info else {}),
        }

    def warnings(self) -> list[str]:
        """What the analyst must know about the candidates themselves (shown on stderr after the findings)."""
        if not self.misfiled:
            return []
        return [
            f"warning: {self.misfiled} candidate record(s) claim an account other than the AWSLogs/ folder they "
            f"were read from (first: {self.info.get('first_misfiled')}); their findings show the claimed account: "
            "check who can write to that folder"
        ]

    def line(self) -> str:
        """One human line: ``retro (athena): 3 queries, 12 candidates, 1.2 GB scanned, ~$0.0060``."""
        parts = [f"{self.queries} queries", f"{self.candidates} candidates"]
        if self.files:
            parts.append(f"{self.files} files")
        parts.append(f"{_size(self.bytes_scanned)} scanned")
        if self.cost_usd is not None and self.engine != "duckdb":  # local: nothing is billed
            parts.append(f"~${self.cost_usd:.4f}")
        parts.append(f"{self.exact_rules}/{self.rules} rules compiled exactly")
        if self.coarse_rules:
            parts.append(f"{len(self.coarse_rules)} coarse (statement size)")
        return f"retro ({self.engine}): " + ", ".join(parts)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


# --------------------------------------------------------------------------- #
# Predicates and statements
# --------------------------------------------------------------------------- #
def coarse_pattern(pattern: Mapping[str, Any]) -> dict[str, Any]:
    """``pattern`` without the leaves outside :data:`_COARSE_KEEP`: the same or more events match (fewer ANDs).

    ``$or`` branches are reduced the same way; a branch left empty matches everything, so the ``$or`` is dropped.
    """

    def reduce(node: Mapping[str, Any], prefix: tuple[str, ...]) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$or":
                branches = [reduce(b, prefix) for b in value]
                if all(branches):
                    kept = [b for b in branches if b]
                    if len(kept) >= 2:
                        out["$or"] = kept
                continue
            path = (*prefix, key)
            if isinstance(value, Mapping):
                sub = reduce(value, path)
                if sub:
                    out[key] = sub
            elif path in _COARSE_KEEP:
                out[key] = value
        return out

    return reduce(pattern, ()) or {}


def statements(
    rules: Sequence[Rule], *, dialect: Dialect, budget: int, coarse_inexact: bool = False
) -> tuple[list[list[str]], dict[str, CompiledPredicate], list[str]]:
    """Predicates packed into statements of at most ``budget`` characters each.

    Returns the statements (each a list of predicates to OR), the exact compilations by rule, and the rules whose
    predicate was too long (or, with ``coarse_inexact``, not exact) and was replaced by its coarse form.
    """
    compiled = compile_rules(rules, dialect=dialect)
    terms: list[str] = []
    coarse: list[str] = []
    for rule in rules:
        sql = compiled[rule.id].sql
        if len(sql) > budget or (coarse_inexact and not compiled[rule.id].exact):
            reduced = coarse_pattern(rule.event_pattern)
            sql = compile_pattern(reduced, dialect=dialect).sql if reduced else "TRUE"
            coarse.append(rule.id)
            if len(sql) > budget:
                raise RetroError(
                    f"rule {rule.id}: even its coarse predicate ({len(sql)} characters) exceeds the engine's "
                    f"statement limit; run it with --engine duckdb or athena"
                )
        terms.append(sql)
    packed: list[list[str]] = []
    size = 0
    for term in dict.fromkeys(terms):  # identical predicates once
        cost = len(term) + 4  # " OR "
        if not packed or size + cost > budget:
            packed.append([])
            size = 0
        packed[-1].append(term)
        size += cost
    return packed, compiled, coarse


def _predicate(terms: Sequence[str]) -> str:
    return " OR ".join(f"({t})" for t in terms) if terms else "FALSE"


# --------------------------------------------------------------------------- #
# Engines
# --------------------------------------------------------------------------- #
Rows = Iterable[Mapping[str, Any]]


def _merge(results: Iterable[Rows]) -> list[dict[str, Any]]:
    """Rows of several statements, each distinct row kept as often as the statement that returned it most often."""
    best: Counter[bytes] = Counter()
    keep: dict[bytes, dict[str, Any]] = {}
    for rows in results:
        seen: Counter[bytes] = Counter()
        for row in rows:
            key = orjson.dumps(row, option=orjson.OPT_SORT_KEYS, default=str)
            seen[key] += 1
            keep.setdefault(key, dict(row))
        for key, n in seen.items():
            best[key] = max(best[key], n)
    out = [keep[k] for k, n in best.items() for _ in range(n)]
    out.sort(key=lambda r: (str(r.get("eventtime") or ""), str(r.get("eventid") or "")))
    return out


def _items(
    rows: Iterable[Mapping[str, Any]], label: str, stats: RetroStats, *, nested_json: bool = False
) -> Iterator[Item]:
    """Records rebuilt from rows; ``nested_json`` (Lake): map values that hold JSON text are parsed, as replay does."""
    for i, row in enumerate(rows, 1):
        stats.candidates += 1
        record = record_from_row(row)
        if nested_json:
            for key in _JSON_KEYS:
                value = record.get(key)
                if isinstance(value, dict):
                    record[key] = {k: maybe_json(v) for k, v in value.items()}
        folder, claim = row.get("account"), record.get("recipientAccountId")
        if isinstance(folder, str) and isinstance(claim, str) and folder != claim:
            # The archive's folder is where CloudTrail (or whoever could write there) put the file; the record's
            # claim is the record's own text. The finding keeps the claim, as replay shows it; the analyst is told.
            stats.misfiled += 1
            if stats.misfiled == 1:
                stats.info["first_misfiled"] = f"{record.get('eventID')} in AWSLogs/{folder}/ claims account {claim}"
        yield label, i, record


#: Rules per exact-predicate statement on DuckDB: its optimizer plans one huge OR superlinearly (the whole
#: catalog in one WHERE: ~9 s to plan, ~30 s to run on 900 rows; in batches of 40: ~2 s; measured, DuckDB 2.0).
DUCKDB_BATCH = 30
_CANDIDATES = "tg_candidates"


@dataclass(frozen=True)
class DuckPlan:
    """The DuckDB statements: one scan into a temporary table through a cheap prefilter, exact batches on it."""

    prefilter: str
    values: dict[str, str]
    batches: tuple[str, ...]
    final: str


def prefilter_term(rule: Rule, exact: CompiledPredicate, *, dialect: Dialect) -> str:
    """A cheap superset of ``rule``: its coarse form when that still names event names, else its exact form."""
    reduced = coarse_pattern(rule.event_pattern)
    coarse = compile_pattern(reduced, dialect=dialect).sql if reduced else "TRUE"
    return coarse if ("eventname IN (" in coarse or "eventname = " in coarse) else exact.sql


def duckdb_plan(plan: ScanPlan, rules: Sequence[Rule], stats: RetroStats | None = None) -> DuckPlan:
    """Scan once (pruned, prefiltered) into a temporary table; then the exact predicates in batches mark the hits."""
    compiled = compile_rules(rules, dialect="duckdb")
    terms = list(dict.fromkeys(prefilter_term(r, compiled[r.id], dialect="duckdb") for r in rules))
    exact = list(dict.fromkeys(compiled[r.id].sql for r in rules))
    batches = [exact[i : i + DUCKDB_BATCH] for i in range(0, len(exact), DUCKDB_BATCH)]
    if stats is not None:
        _count(stats, rules, compiled, (), batches)
    scan, values = scan_sql(plan, "*", RELATION, _predicate(terms))
    return DuckPlan(
        prefilter=f"CREATE TEMP TABLE {_CANDIDATES} AS {scan}",
        values=cast(dict[str, str], values),
        batches=tuple(
            f"INSERT INTO tg_hits SELECT rowid FROM {_CANDIDATES} WHERE {_predicate(b)}"  # noqa: S608 - compiled
            for b in batches
        ),
        final=(
            f"SELECT {select_list('duckdb')} FROM {_CANDIDATES} "  # noqa: S608 - compiled
            "WHERE rowid IN (SELECT r FROM tg_hits) ORDER BY eventtime, eventid"
        ),
    )


def duckdb_items(
    paths: Sequence[str | Path], plan: ScanPlan, rules: Sequence[Rule], stats: RetroStats
) -> Iterator[Item]:
    """Candidates from local logs: files pruned by their ``AWSLogs/`` partitions, one scan, exact batches."""
    logset = hunt.discover(paths)
    logset = hunt.prune(logset, since=_ct(plan), accounts=plan.accounts, regions=plan.regions)
    logset = _before(logset, plan.date_hi)
    files = (*logset.log_files, *logset.jsonl_files)
    stats.files = len(files)
    stats.bytes_scanned = sum(_file_size(f) for f in files)
    stats.cost_usd = 0.0
    steps = duckdb_plan(plan, rules, stats)
    if not files:
        return iter(())
    with tempfile.TemporaryDirectory(prefix="trailguard-retro-") as tmp:
        readable, problems = hunt.salvage(logset, Path(tmp))
        con = hunt.connect(readable)
        try:
            hunt.execute(con, steps.prefilter, steps.values)
            con.execute("CREATE TEMP TABLE tg_hits (r BIGINT)")
            for batch in steps.batches:
                hunt.execute(con, batch)
            result = hunt.execute(con, steps.final)
        finally:
            con.close()
    stats.queries = 1
    stats.info["problems"] = [str(p) for p in problems]
    names = result.columns
    return _items((dict(zip(names, row, strict=True)) for row in result.rows), "duckdb", stats)


def lake_relation(store_id: str) -> Callable[[ScanPlan], str]:
    """The ``WITH cloudtrail AS (...)`` prefix for one plan part: Lake's own eventTime bounds the scan."""
    from trailguard.retro.lake import lake_cte  # noqa: PLC0415 - botocore only for the remote engines

    return lambda part: lake_cte(store_id, since=part.since, until=part.until)


def remote_statements(
    plan: ScanPlan,
    rules: Sequence[Rule],
    *,
    relation: str | Callable[[ScanPlan], str],
    max_sql: int,
    engine: str,
    stats: RetroStats | None = None,
) -> list[tuple[str, list[str]]]:
    """Every (plan part x predicate batch) statement, with ``?`` and its quoted literal values, each within size.

    ``relation``: the FROM target (Athena's qualified table), or a function giving the ``WITH cloudtrail AS (...)``
    prefix for a plan part (Lake).
    """
    parts = plan.split()
    # Sized as the engine sees it: Lake gets each ``?`` replaced by its quoted literal.
    overhead = max(
        len(sql) + sum(len(v) - 1 for v in values) for sql, values in (_statement(p, relation, "") for p in parts)
    )
    budget = max_sql - overhead - 16
    if budget <= 0:
        raise RetroError(f"{engine}: the scan clause alone exceeds the {max_sql}-character statement limit")
    # Lake stores a nested object inside requestParameters (a map of strings) as JSON text, so a path into it finds
    # nothing there: the predicates that read inside JSON columns (the inexact ones) would be a subset on Lake.
    # Their coarse forms read only top-level columns.
    packed, compiled, coarse = statements(rules, dialect="trino", budget=budget, coarse_inexact=engine == "lake")
    if stats is not None:
        _count(stats, rules, compiled, coarse, packed)
    return [_statement(p, relation, _predicate(batch)) for p in parts for batch in packed]


def remote_items(
    run_many: Callable[[Sequence[tuple[str, Sequence[str]]]], Any],
    queries: Sequence[tuple[str, Sequence[str]]],
    *,
    engine: str,
    stats: RetroStats,
) -> Iterator[Item]:
    """Candidates from Athena or Lake: the statements run in parallel, rows merged, oldest first."""
    stats.queries = len(queries)
    many = run_many(queries)
    stats.bytes_scanned = int(many.bytes_scanned)
    stats.cost_usd = float(many.cost_usd)
    stats.query_ids = [r.query_id for r in many.results]
    if many.results:
        stats.info.update({k: v for k, v in many.results[0].info.items() if v is not None})
    merged = _merge([r.rows for r in many.results])
    return _items(merged, engine, stats, nested_json=engine == "lake")


def _statement(plan: ScanPlan, relation: str | Callable[[ScanPlan], str], predicate: str) -> tuple[str, list[str]]:
    if callable(relation):
        sql, values = scan_sql(plan, select_list("trino"), "cloudtrail", predicate or "TRUE", positional=True)
        sql = f"{relation(plan)} {sql}"
    else:
        sql, values = scan_sql(plan, select_list("trino"), relation, predicate or "TRUE", positional=True)
    return sql, cast(list[str], values)  # positional binding: a list


def _count(
    stats: RetroStats,
    rules: Sequence[Rule],
    compiled: Mapping[str, CompiledPredicate],
    coarse: Sequence[str],
    packed: Sequence[Sequence[str]],
) -> None:
    stats.rules = len(rules)
    stats.exact_rules = sum(1 for r in rules if compiled[r.id].exact and r.id not in coarse)
    stats.coarse_rules = list(coarse)
    stats.statements = len(packed)


def _before(logset: hunt.LogSet, last_day: str) -> hunt.LogSet:
    """Files whose ``AWSLogs/`` date folder is at most ``last_day`` (the scan's WHERE drops the rest anyway)."""

    def keep(path: Path) -> bool:
        parts = hunt.partition_of(path)
        return parts is None or parts[2] <= last_day

    return replace(
        logset,
        log_files=tuple(f for f in logset.log_files if keep(f)),
        jsonl_files=tuple(f for f in logset.jsonl_files if keep(f)),
    )


def _ct(plan: ScanPlan) -> str:
    return plan.since.strftime("%Y-%m-%dT%H:%M:%SZ")


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


__all__ = [
    "ATHENA_MAX_SQL",
    "ENGINES",
    "LAKE_MAX_SQL",
    "Engine",
    "RetroError",
    "RetroStats",
    "coarse_pattern",
    "duckdb_items",
    "duckdb_plan",
    "lake_relation",
    "remote_items",
    "remote_statements",
    "row_columns",
    "statements",
]
