"""Compile the catalog's EventBridge patterns to SQL predicates over the Glue-shaped ``cloudtrail`` relation.

Retro-detection asks the engine (DuckDB, Athena, CloudTrail Lake) for *candidate* events only; the matcher and the
decision functions then run locally on the rows that come back (rebuilt by :mod:`trailguard.retro.rows`). So the
one rule here is: **the SQL never selects fewer events than the matcher matches** on the rebuilt record. Where a
construct cannot be compiled exactly, the leaf becomes a superset (as selective as can be proved) and the reason is
recorded in :attr:`CompiledPredicate.why_inexact`; the matcher removes the extra rows.

Reference semantics: ``lambdas/trailguard_engine/matcher.py`` (arrays crushed, ``null`` is a value, types stay
apart, ``exists``) and the envelope of ``trailguard_engine.events.wrap_record``. "Exact" means: on the relation,
the compiled SQL selects exactly the rows whose rebuilt record (``rows.record_from_row``) the matcher matches.

* Top-level string columns, ``userIdentity``/``tlsDetails`` struct fields and the envelope's ``source``,
  ``detail-type``, ``account``, ``region`` and ``time`` are single strings: compiled exactly (literal sets as
  ``IN``, prefix/suffix/wildcard as ``LIKE ... ESCAPE '!'``, ``equals-ignore-case`` through Python's case
  folding of the 19 non-ASCII characters whose fold contains ASCII, then ``lower``). Explicit ``null`` is
  inexact: the table stores null and absent alike as SQL NULL.
* ``resources[]`` (array of struct) uses ``any_match`` (Trino) or ``list_filter`` (DuckDB).
* The JSON-string columns (``requestParameters`` ...) are always inexact: array crushing and JSON types (numbers,
  booleans, null) are not expressible the same way in both dialects, so a leaf lets through every row whose path
  crosses an array and compares scalars as text (a superset of the string comparison).
* Literal values are always SQL string literals with quotes doubled; JSON path keys outside a safe alphabet are not
  pasted into a path at all (the leaf becomes ``column IS NOT NULL``).

The Trino form is checked with sqlglot (``read="trino"``) in the tests: sqlglot is already a dependency (hunt's
read-only check), maintained, and has a Trino dialect. It is a parser, not Trino: it proves syntax, not semantics.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from trailguard_engine.events import detail_type_for, source_for
from trailguard_engine.matcher import matches, validate_pattern

from trailguard.sqlcatalog import CLOUDTRAIL_COLUMNS, JSON_STRING_COLUMNS, RESOURCE_KEYS, STRUCT_KEYS

Dialect = Literal["trino", "duckdb"]
TRUE = "TRUE"
FALSE = "FALSE"
#: The escape character of every LIKE pattern this module writes.
LIKE_ESCAPE = "!"

#: Non-ASCII characters whose Python ``casefold`` contains ASCII characters; replaced by their fold before
#: ``lower`` so that equals-ignore-case with an ASCII pattern is exact in both engines.
_FOLD_TO_ASCII: tuple[tuple[str, str], ...] = tuple(
    (c, c.casefold())
    for c in (
        "\u00df", "\u0130", "\u0149", "\u017f", "\u01f0", "\u1e96", "\u1e97", "\u1e98", "\u1e99", "\u1e9a",
        "\u1e9e", "\u212a", "\ufb00", "\ufb01", "\ufb02", "\ufb03", "\ufb04", "\ufb05", "\ufb06",
    )
)  # fmt: skip
#: Python's ``str.isspace`` characters (``source_for`` strips them), as a regex class both RE2 and Joni read.
_SPACE_CLASS = (
    r"[\x{9}-\x{d}\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
)
#: JSON keys pasted into a JSON path; anything else makes the leaf a plain ``column IS NOT NULL``.
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_LEADING_SPACE = r"\A" + _SPACE_CLASS + "+"
_TRAILING_SPACE = _SPACE_CLASS + r"+\z"
#: ``events._SUFFIX`` with ``\z`` (Joni, Trino's regex engine, reads ``$`` as end of line) and ``(\.cn|)`` for
#: ``(\.cn)?``: the compiler writes no ``?`` of its own (on Athena a ``?`` marks an execution parameter; a ``?``
#: inside a pattern literal is still there, quoted, so a placeholder rewriter must skip string literals).
_AWS_SUFFIX = r"\.amazonaws\.com(\.cn|)\z"
_IPV4_TEXT = r"\A[0-9]{1,3}(\.[0-9]{1,3}){3}\z"

#: ``eventType`` values with a detail-type of their own (``events.detail_type_for``).
_EVENT_TYPES = (
    "AwsApiCall", "AwsConsoleSignIn", "AwsConsoleAction", "AwsServiceEvent", "AwsCloudTrailInsight", "AwsVpceEvent",
)  # fmt: skip
_COLUMN_OF_KEY: dict[str, tuple[str, str]] = {key: (col, hive) for col, hive, key in CLOUDTRAIL_COLUMNS}


@dataclass(frozen=True)
class CompiledPredicate:
    """A SQL boolean expression over ``cloudtrail``; ``exact`` False means a superset (``why_inexact`` says why)."""

    sql: str
    exact: bool
    why_inexact: tuple[str, ...] = ()


class _Rule(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def event_pattern(self) -> Mapping[str, Any]: ...


# --------------------------------------------------------------------------- #
# SQL text helpers
# --------------------------------------------------------------------------- #
def sql_string(value: str) -> str:
    """A SQL string literal (quotes doubled; both dialects read backslashes literally)."""
    return "'" + value.replace("'", "''") + "'"


def _like_escape(text: str) -> str:
    return "".join(LIKE_ESCAPE + ch if ch in ("%", "_", LIKE_ESCAPE) else ch for ch in text)


def _like(expr: str, pattern: str) -> str:
    if pattern == "%":
        return f"{expr} IS NOT NULL"
    return f"{expr} LIKE {sql_string(pattern)} ESCAPE {sql_string(LIKE_ESCAPE)}"


def _wildcard_like(pattern: str) -> str:
    """An EventBridge wildcard (``*`` any run, ``\\*`` and ``\\\\`` literal) as a LIKE pattern."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(_like_escape(pattern[i + 1]))
            i += 2
            continue
        out.append("%" if ch == "*" else _like_escape(ch))
        i += 1
    return "".join(out)


def _or(parts: Iterable[str]) -> str:
    items: list[str] = []
    for p in parts:
        if p == TRUE:
            return TRUE
        if p != FALSE and p not in items:
            items.append(p)
    if not items:
        return FALSE
    return items[0] if len(items) == 1 else "(" + " OR ".join(items) + ")"


def _and(parts: Iterable[str]) -> str:
    items: list[str] = []
    for p in parts:
        if p == FALSE:
            return FALSE
        if p != TRUE and p not in items:
            items.append(p)
    if not items:
        return TRUE
    return items[0] if len(items) == 1 else "(" + " AND ".join(items) + ")"


def _fold(expr: str) -> str:
    for ch, folded in _FOLD_TO_ASCII:
        expr = f"replace({expr}, {sql_string(ch)}, {sql_string(folded)})"
    return f"lower({expr})"


def _is_ascii(text: str) -> bool:
    return all(ord(c) < 128 for c in text)


# --------------------------------------------------------------------------- #
# Compiler
# --------------------------------------------------------------------------- #
@dataclass
class _Ctx:
    dialect: Dialect
    resource_paths: int
    reasons: list[str] = field(default_factory=list)

    def inexact(self, why: str) -> None:
        if why not in self.reasons:
            self.reasons.append(why)


def compile_pattern(pattern: Mapping[str, Any], *, dialect: Dialect) -> CompiledPredicate:
    """The SQL predicate of one EventBridge pattern (raises ``PatternError`` if the pattern is invalid)."""
    if dialect not in ("trino", "duckdb"):
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    validate_pattern(pattern)
    ctx = _Ctx(dialect, len(_resource_paths(pattern, ())))
    if _source_is_implied(pattern):
        # source_for(eventSource) is in the source list for every listed eventSource: the eventSource IN (...)
        # conjunct implies the source conjunct, which is dropped (shorter SQL: Athena caps a query at 256 KB).
        pattern = {k: v for k, v in pattern.items() if k != "source"}
    sql = _object(pattern, (), ctx)
    return CompiledPredicate(sql, not ctx.reasons, tuple(ctx.reasons))


def _source_is_implied(pattern: Mapping[str, Any]) -> bool:
    sources = pattern.get("source")
    detail = pattern.get("detail")
    event_sources = detail.get("eventSource") if isinstance(detail, Mapping) else None
    if not (isinstance(sources, list) and all(isinstance(x, str) for x in sources)):
        return False
    if not (isinstance(event_sources, list) and all(isinstance(x, str) for x in event_sources)):
        return False
    return all(source_for(x) in sources for x in event_sources)


def compile_rules(rules: Iterable[_Rule], *, dialect: Dialect) -> dict[str, CompiledPredicate]:
    """Every rule's predicate, by rule id."""
    return {rule.id: compile_pattern(rule.event_pattern, dialect=dialect) for rule in rules}


def combined(preds: Iterable[CompiledPredicate]) -> str:
    """One WHERE condition selecting the candidates of all ``preds`` (their OR)."""
    return _or(p.sql for p in preds)


def _resource_paths(node: Mapping[str, Any], prefix: tuple[str, ...]) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for key, sub in node.items():
        if key == "$or":
            for alt in sub:
                out |= _resource_paths(alt, prefix)
        elif isinstance(sub, Mapping):
            out |= _resource_paths(sub, (*prefix, key))
        elif prefix[:2] == ("detail", "resources"):
            out.add((*prefix, key))
    return out


def _object(node: Mapping[str, Any], prefix: tuple[str, ...], ctx: _Ctx) -> str:
    parts: list[str] = []
    for key, sub in node.items():
        if key == "$or":
            parts.append(_or(_object(alt, prefix, ctx) for alt in sub))
        elif isinstance(sub, Mapping):
            parts.append(_object(sub, (*prefix, key), ctx))
        else:
            parts.append(_field((*prefix, key), sub, ctx))
    return _and(parts)


def _field(path: tuple[str, ...], filters: Sequence[Any], ctx: _Ctx) -> str:
    head = path[0]
    if head in ("source", "detail-type", "account", "region", "time"):
        if len(path) > 1:
            return _static(filters, present=False)
        if head in ("source", "detail-type") and all(isinstance(f, str) for f in filters):
            return _source_in(filters) if head == "source" else _detail_type_in(filters)
        return _string_field(_envelope_expr(head), filters, ctx, nullable=False)
    if head == "version":
        return _static(filters, present=len(path) == 1, value="0")
    if head == "id":
        if len(path) > 1:
            return _static(filters, present=False)
        if all(isinstance(f, Mapping) and "exists" in f for f in filters):
            return TRUE if any(f["exists"] for f in filters) else FALSE
        ctx.inexact("the envelope id (a UUID of the eventID) is not computed in SQL")
        return TRUE
    if head == "detail" and len(path) > 1:
        return _detail_field(path[1:], filters, ctx)
    # resources is [] and detail is an object: neither has a leaf; any other envelope key is absent
    return _static(filters, present=False)


def _static(filters: Sequence[Any], *, present: bool, value: Any = None) -> str:
    """A field whose value is known at compile time: let the matcher itself decide."""
    event = {"f": value} if present else {}
    return TRUE if matches({"f": list(filters)}, event) else FALSE


def _source_in(sources: Sequence[str]) -> str:
    """``source_for(eventSource) IN sources``, as the eventSource values (stripped) that give each source."""
    candidates: list[str] = []
    for source in dict.fromkeys(sources):
        if not source.startswith("aws."):
            continue
        bare = source[len("aws.") :]
        if bare == "unknown":
            candidates += ["", ".amazonaws.com", ".amazonaws.com.cn"]
        if bare:
            candidates += [bare + ".amazonaws.com", bare + ".amazonaws.com.cn"]
            if source_for(bare) == source:
                candidates.append(bare)
    candidates = [c for c in dict.fromkeys(candidates) if source_for(c) in sources]
    if not candidates:
        return FALSE
    listed = ", ".join(sql_string(c) for c in candidates)
    stripped = (
        f"regexp_replace(regexp_replace(coalesce(eventsource, ''), {sql_string(_LEADING_SPACE)}, ''), "
        f"{sql_string(_TRAILING_SPACE)}, '')"
    )
    return f"{stripped} IN ({listed})"


def _detail_type_in(types: Sequence[str]) -> str:
    """``detail_type_for(record) IN types``, one branch of ``detail_type_for`` per listed type."""
    keys = ", ".join(sql_string(k) for k in _EVENT_TYPES)
    other = f"coalesce(eventtype, '') NOT IN ({keys})"
    console = "coalesce(eventname, '') = 'ConsoleLogin'"
    fallbacks = {
        detail_type_for({"eventName": "ConsoleLogin"}): f"({other} AND {console})",
        detail_type_for(
            {"serviceEventDetails": {}}
        ): f"({other} AND NOT {console} AND serviceeventdetails IS NOT NULL)",
        detail_type_for({}): f"({other} AND NOT {console} AND serviceeventdetails IS NULL)",
    }
    parts: list[str] = []
    for wanted in dict.fromkeys(types):
        by_type = [k for k in _EVENT_TYPES if detail_type_for({"eventType": k}) == wanted]
        if by_type:
            parts.append(f"eventtype IN ({', '.join(sql_string(k) for k in by_type)})")
        if wanted in fallbacks:
            parts.append(fallbacks[wanted])
    return _or(parts)


def _envelope_expr(head: str) -> str:
    if head == "source":
        stripped = (
            f"regexp_replace(regexp_replace(coalesce(eventsource, ''), {sql_string(_LEADING_SPACE)}, ''), "
            f"{sql_string(_TRAILING_SPACE)}, '')"
        )
        bare = f"regexp_replace({stripped}, {sql_string(_AWS_SUFFIX)}, '')"
        return f"CASE WHEN {bare} = '' THEN 'aws.unknown' ELSE 'aws.' || {bare} END"
    if head == "detail-type":
        whens = " ".join(
            f"WHEN {sql_string(k)} THEN {sql_string(detail_type_for({'eventType': k}))}" for k in _EVENT_TYPES
        )
        signin = detail_type_for({"eventName": "ConsoleLogin"})
        service = detail_type_for({"serviceEventDetails": {}})
        api = detail_type_for({})
        return (
            f"CASE coalesce(eventtype, '') {whens} ELSE CASE WHEN eventname = 'ConsoleLogin' THEN "
            f"{sql_string(signin)} WHEN serviceeventdetails IS NOT NULL THEN {sql_string(service)} "
            f"ELSE {sql_string(api)} END END"
        )
    column = {"account": "recipientaccountid", "region": "awsregion", "time": "eventtime"}[head]
    return f"coalesce({column}, '')"


def _detail_field(path: tuple[str, ...], filters: Sequence[Any], ctx: _Ctx) -> str:
    found = _COLUMN_OF_KEY.get(path[0])
    if found is None:
        ctx.inexact(f"detail.{path[0]} is not a column of the Glue table (the table drops it)")
        return _static(filters, present=False)
    column, hive = found
    rest = path[1:]
    if column in JSON_STRING_COLUMNS:
        return _json_field(column, rest, filters, ctx)
    if column == "readonly":
        return _readonly_field(filters, ctx) if not rest else _static(filters, present=False)
    if column == "resources":
        if len(rest) == 1 and rest[0] in RESOURCE_KEYS.values():
            return _resource_field(rest[0].lower(), filters, ctx)
        return _static(filters, present=False)
    expr = column
    typ = hive
    for key in rest:
        if not typ.startswith("struct<"):
            return _static(filters, present=False)
        sub = _struct_member(typ, key)
        if sub is None:
            return _static(filters, present=False)
        expr, typ = f"{expr}.{sub[0]}", sub[1]
    if typ != "string":  # a struct: an object, never a leaf
        return _static(filters, present=False)
    return _string_field(expr, filters, ctx, nullable=True)


def _struct_member(hive: str, key: str) -> tuple[str, str] | None:
    body = hive[len("struct<") : -1]
    depth = 0
    start = 0
    members: list[str] = []
    for i, ch in enumerate(body):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            members.append(body[start:i])
            start = i + 1
    members.append(body[start:])
    for member in members:
        name, _, typ = member.partition(":")
        if STRUCT_KEYS.get(name, name) == key:
            return name, typ
    return None


# --------------------------------------------------------------------------- #
# Leaves
# --------------------------------------------------------------------------- #
def _string_field(expr: str, filters: Sequence[Any], ctx: _Ctx, *, nullable: bool) -> str:
    """A field whose value, when not SQL NULL, is one string (NULL: no leaf)."""
    literals: list[str] = []
    parts: list[str] = []
    absent_ok = False
    for f in filters:
        if isinstance(f, str):
            literals.append(f)
        elif f is None:
            if nullable:
                ctx.inexact("an explicit null and an absent field are both SQL NULL")
                parts.append(f"{expr} IS NULL")
        elif isinstance(f, Mapping):
            ((op, arg),) = f.items()
            if op == "exists":
                if arg:
                    parts.append(f"{expr} IS NOT NULL" if nullable else TRUE)
                else:
                    absent_ok = True
                continue
            sql = _string_op(op, arg, expr, ctx)
            parts.append(f"{expr} IS NOT NULL" if sql is None else sql)
        # booleans and numbers never equal a string: no part
    if literals:
        unique = list(dict.fromkeys(literals))
        lit = (
            f"{expr} = {sql_string(unique[0])}"
            if len(unique) == 1
            else f"{expr} IN ({', '.join(sql_string(s) for s in unique)})"
        )
        parts.insert(0, lit)
    if absent_ok and nullable:
        parts.append(f"{expr} IS NULL")
    return _or(parts)


def _string_op(op: str, arg: Any, expr: str, ctx: _Ctx) -> str | None:
    """One operator on a string value: its exact SQL, or None when only ``IS NOT NULL`` is a safe superset."""
    if op in ("prefix", "suffix"):
        fold = isinstance(arg, Mapping)
        text: str = arg["equals-ignore-case"] if fold else arg
        if fold:
            text = text.casefold()
            if not _is_ascii(text):
                ctx.inexact("case folding beyond ASCII")
                return None
        pattern = _like_escape(text) + "%" if op == "prefix" else "%" + _like_escape(text)
        return _like(_fold(expr) if fold else expr, pattern)
    if op == "equals-ignore-case":
        text = str(arg).casefold()
        if not _is_ascii(text):
            ctx.inexact("case folding beyond ASCII")
            return None
        return f"{_fold(expr)} = {sql_string(text)}"
    if op == "wildcard":
        return _like(expr, _wildcard_like(str(arg)))
    if op == "cidr":
        ctx.inexact("cidr: address parsing and network membership are left to the matcher")
        if ":" in str(arg):
            return f"strpos({expr}, ':') > 0"
        regexp = "regexp_like" if ctx.dialect == "trino" else "regexp_matches"
        return f"{regexp}({expr}, {sql_string(_IPV4_TEXT)})"
    if op == "numeric":
        return FALSE  # a string is never a number
    if op == "anything-but":
        return _anything_but(arg, expr, ctx)
    raise AssertionError(f"unvalidated operator {op!r}")  # pragma: no cover - validate_pattern ran first


def _anything_but(arg: Any, expr: str, ctx: _Ctx) -> str | None:
    if isinstance(arg, Mapping):
        ((op, inner),) = arg.items()
        inners = inner if isinstance(inner, list) else [inner]
        probe = _Ctx(ctx.dialect, ctx.resource_paths)
        excluded = [_string_op(op, i, expr, probe) for i in inners]
        if probe.reasons or any(e is None for e in excluded):
            for why in probe.reasons:
                ctx.inexact(why)
            return None  # the negation of a superset would be a subset
        # Only a present value can be "anything but": an excluded test that is two-valued on NULL (a '*'
        # wildcard compiles to IS NOT NULL) must not turn an absent field into a match.
        return f"({expr} IS NOT NULL AND NOT {_or(e for e in excluded if e is not None)})"
    values = arg if isinstance(arg, list) else [arg]
    if all(isinstance(v, str) for v in values):
        return f"{expr} NOT IN ({', '.join(sql_string(v) for v in dict.fromkeys(values))})"
    return f"{expr} IS NOT NULL"  # a string is anything but a number


def _readonly_field(filters: Sequence[Any], ctx: _Ctx) -> str:
    """``readOnly``: the table's 'true'/'false' are the record's booleans; any other text stays a string."""
    as_bool = "readonly IN ('true', 'false')"
    as_text = "CASE WHEN readonly IN ('true', 'false') THEN NULL ELSE readonly END"
    parts: list[str] = []
    rest: list[Any] = []
    for f in filters:
        if isinstance(f, bool):
            parts.append(f"readonly = {sql_string(str(f).lower())}")
        elif isinstance(f, Mapping) and "anything-but" in f:
            sql = _anything_but(f["anything-but"], as_text, ctx)
            parts.append("readonly IS NOT NULL" if sql is None else _or([as_bool, sql]))
        elif isinstance(f, Mapping) and "exists" in f:
            parts.append("readonly IS NOT NULL" if f["exists"] else "readonly IS NULL")
        elif f is None:
            ctx.inexact("an explicit null and an absent field are both SQL NULL")
            parts.append("readonly IS NULL")
        else:
            rest.append(f)
    if rest:
        parts.append(_string_field(as_text, rest, ctx, nullable=True))
    return _or(parts)


def _resource_field(member: str, filters: Sequence[Any], ctx: _Ctx) -> str:
    var = "tg_res"
    elem = f"{var}.{member}"
    positive = [f for f in filters if not (isinstance(f, Mapping) and f.get("exists") is False)]
    absent_ok = len(positive) != len(filters)
    parts: list[str] = []
    if ctx.resource_paths > 1:
        ctx.inexact("array consistency: fields of one resources[] element are matched independently")
    if positive:
        inner = _string_field(elem, positive, ctx, nullable=True)
        parts.append(_any_element(inner, var, ctx.dialect))
    if absent_ok:
        if ctx.resource_paths > 1:
            return TRUE
        parts.append(f"NOT coalesce({_any_element(f'{elem} IS NOT NULL', var, ctx.dialect)}, FALSE)")
    return _or(parts)


def _any_element(inner: str, var: str, dialect: Dialect) -> str:
    if inner == FALSE:
        return FALSE
    if dialect == "trino":
        return f"any_match(resources, {var} -> {inner})"
    return f"len(list_filter(resources, lambda {var}: {inner})) > 0"


def _json_field(column: str, path: tuple[str, ...], filters: Sequence[Any], ctx: _Ctx) -> str:
    """A path inside a JSON-string column: always a superset (arrays crushed, JSON types, explicit null)."""
    ctx.inexact("JSON-string columns: array crushing and JSON types are left to the matcher")
    absent_ok = any(isinstance(f, Mapping) and f.get("exists") is False for f in filters)
    if not all(_SAFE_KEY.match(k) for k in path):
        return TRUE if absent_ok else f"{column} IS NOT NULL"
    trino = ctx.dialect == "trino"

    def json_path(keys: Sequence[str]) -> str:
        if trino:
            return "$" + "".join(f'["{k}"]' for k in keys)
        return "$" + "".join(f'."{k}"' for k in keys)

    full = sql_string(json_path(path))
    arrays: list[str] = []
    for n in range(len(path) + 1):
        p = sql_string(json_path(path[:n]))
        if trino:
            arrays.append(f"json_array_length(json_extract({column}, {p})) IS NOT NULL")
        else:
            arrays.append(f"json_type({column}, {p}) = 'ARRAY'")
    crossing = _or(arrays)
    text = f"json_extract_scalar({column}, {full})" if trino else f"json_extract_string({column}, {full})"
    parts: list[str] = []
    strings: list[Any] = []
    for f in filters:
        if isinstance(f, Mapping) and "exists" in f:
            if f["exists"]:
                parts.append(f"{column} IS NOT NULL" if trino else f"json_extract({column}, {full}) IS NOT NULL")
            elif trino:  # NULL for an absent path, an object or an array (none is a leaf), and for JSON null
                parts.append(f"json_extract_scalar({column}, {full}) IS NULL")
            else:  # an object is no leaf either: exists false holds
                parts.append(f"coalesce(json_type({column}, {full}) IN ('OBJECT', 'ARRAY'), TRUE)")
        elif isinstance(f, bool):
            parts.append(f"{text} = {sql_string(str(f).lower())}")
        elif isinstance(f, str) or (
            isinstance(f, Mapping) and next(iter(f)) in ("prefix", "suffix", "equals-ignore-case", "wildcard", "cidr")
        ):
            strings.append(f)
        else:  # numbers, null, numeric, anything-but: text comparisons cannot bound them
            parts.append(f"{column} IS NOT NULL")
    if strings:
        parts.append(_string_field(text, strings, ctx, nullable=True))
    if f"{column} IS NOT NULL" in parts:
        crossing = FALSE  # crossing an array implies a non-NULL column
    return _or([crossing, *parts])
