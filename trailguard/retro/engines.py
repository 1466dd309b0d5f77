"""What the remote engines (Athena, CloudTrail Lake) share: results, backoff, throttling retries and SQL literals.

Both runners take SQL with ``?`` placeholders and a list of parameters, each a SQL literal (a quoted string such as
``'2024-05-01'`` or a number), as Athena's ExecutionParameters take them. Athena substitutes them itself; Lake has
no parameters for ad-hoc statements, so :func:`inline_parameters` puts the checked literals in the text (only at
real ``?`` tokens, never inside a string or a comment).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import ClientError
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import TokenType
from sqlglot.tokens import Tokenizer

from trailguard.exceptions import TrailguardError

T = TypeVar("T")

#: AWS error codes that mean "slow down": retried with backoff, never reported as a failed query.
THROTTLING_CODES: frozenset[str] = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded"}
)
#: One SQL literal: a single-quoted string (quotes doubled inside) or a plain number.
_LITERAL_RE = re.compile(r"^(?:'(?:[^']|'')*'|-?\d{1,30}(?:\.\d{1,30})?)$", re.DOTALL)

Row = dict[str, str | None]


class RemoteQueryError(TrailguardError):
    """A remote query failed, was cancelled, timed out, or the engine refused the request (message says why)."""


@dataclass(frozen=True)
class Backoff:
    """Exponential delays for polling and throttling retries: initial, initial*factor, ... capped at ``maximum``."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 10.0

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * self.factor, self.maximum)


@dataclass
class RemoteResult:
    """One finished query: its columns, rows (read page by page as they are iterated) and what it cost."""

    engine: str
    query_id: str
    columns: tuple[str, ...]
    rows: Iterator[Row]
    bytes_scanned: int
    engine_ms: int | None
    cost_usd: float
    #: Engine-specific facts worth showing (e.g. the workgroup's output location).
    info: dict[str, Any] = field(default_factory=dict)

    def materialize(self) -> RemoteResult:
        """Read every page now (so another thread can page while this one waits); returns self."""
        self.rows = iter(list(self.rows))
        return self


@dataclass(frozen=True)
class ManyResults:
    """Results of :meth:`run_many` in submission order, with totals."""

    results: tuple[RemoteResult, ...]
    bytes_scanned: int
    cost_usd: float


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def with_retries(call: Callable[[], T], *, backoff: Backoff, sleep: Callable[[float], None], attempts: int = 8) -> T:
    """``call()``, retried with backoff while AWS throttles it; other errors pass through."""
    delays = backoff.delays()
    for attempt in range(attempts):
        try:
            return call()
        except ClientError as exc:
            if error_code(exc) not in THROTTLING_CODES or attempt == attempts - 1:
                raise
            sleep(next(delays))
    raise AssertionError("unreachable")  # pragma: no cover


def check_literal(value: str) -> str:
    """``value`` if it is one SQL literal (quoted string or number), else :class:`RemoteQueryError`."""
    if "\x00" in value or not _LITERAL_RE.match(value):
        raise RemoteQueryError(f"query parameter {value[:40]!r} is not one SQL literal (quote strings: 'text')")
    return value


def sql_literal(value: str) -> str:
    """A Trino string literal for ``value`` (single quotes doubled; no backslash escapes exist in Trino)."""
    if "\x00" in value:
        raise RemoteQueryError("a query value contains NUL")
    return "'" + value.replace("'", "''") + "'"


def inline_parameters(sql: str, parameters: Sequence[str]) -> str:
    """Replace each ``?`` placeholder token of ``sql`` by the next (checked) literal of ``parameters``."""
    try:
        tokens = Tokenizer(dialect="trino").tokenize(sql)
    except SqlglotError as exc:
        raise RemoteQueryError(f"cannot read the SQL: {str(exc).splitlines()[0]}") from exc
    marks = [t for t in tokens if t.token_type is TokenType.PLACEHOLDER and t.text == "?"]
    if len(marks) != len(parameters):
        raise RemoteQueryError(f"the SQL has {len(marks)} '?' placeholders but {len(parameters)} parameters were given")
    out: list[str] = []
    pos = 0
    for token, value in zip(marks, parameters, strict=True):
        out.append(sql[pos : token.start])
        out.append(check_literal(value))
        pos = token.end + 1
    out.append(sql[pos:])
    return "".join(out)


#: A delivered log file can hold events of the day before its folder's date: partition bounds are widened by this.
_DATE_SLACK_DAYS = 1
_WITH_RE = re.compile(r"^\s*WITH\s+(?!RECURSIVE\b)", re.IGNORECASE)
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


def glob_regex(pattern: str) -> str:
    """A Trino (Java) regex for an ARN glob (``*`` any text, ``?`` one character, ``[...]`` a class), anchored."""
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            neg = body.startswith("!")
            body = body[1:] if neg else body
            out.append("[" + ("^" if neg else "") + re.sub(r"([\\\[\]^])", r"\\\1", body) + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out) + "$"


def filter_condition(
    *,
    since: str | None = None,
    until: str | None = None,
    accounts: Sequence[str] = (),
    regions: Sequence[str] = (),
    principals: Sequence[str] = (),
) -> tuple[str, list[str]]:
    """hunt's event filters as a Trino WHERE on the Glue columns, with ``?`` and their literals in order.

    Times are CloudTrail's ``2024-05-01T12:00:00Z`` form (as :func:`trailguard.filters.event_filter` gives them);
    ``"date"`` bounds (one day wider on each side) are added so Athena prunes partitions, ``eventtime`` cuts exactly.
    """
    from datetime import datetime, timedelta  # noqa: PLC0415 - only here

    parts: list[str] = []
    params: list[str] = []

    def day(text: str, shift: int) -> str:
        moment = datetime.strptime(text[:10], "%Y-%m-%d") + timedelta(days=shift)
        return moment.strftime("%Y/%m/%d")

    if since:
        parts += ['"date" >= ?', "eventtime >= ?"]
        params += [sql_literal(day(since, -_DATE_SLACK_DAYS)), sql_literal(since)]
    if until:
        parts += ['"date" <= ?', "eventtime < ?"]
        params += [sql_literal(day(until, _DATE_SLACK_DAYS)), sql_literal(until)]
    for column, items in (("account", accounts), ("region", regions)):
        if items:
            parts.append(f"{column} IN ({', '.join('?' for _ in items)})")
            params += [sql_literal(v) for v in items]
    if principals:
        alts = []
        for p in principals:
            if set("*?[").intersection(p):
                alts.append("regexp_like(useridentity.arn, ?)")
                params.append(sql_literal(glob_regex(p)))
            else:
                alts.append("strpos(useridentity.arn, ?) > 0")
                params.append(sql_literal(p))
        parts.append("(" + " OR ".join(alts) + ")")
    return " AND ".join(parts), params


def with_cloudtrail(cte: str, query: str) -> str:
    """``cte`` (``WITH cloudtrail AS (...)``) in front of ``query``, merged into the query's own WITH if it has one."""
    m = _WITH_RE.match(query)
    if m:
        return f"{cte}, {query[m.end() :]}"
    return f"{cte} {query}"


def qualified_table(database: str, table: str) -> str:
    """``"database"."table"``, both names checked (Glue names: letters, digits, underscores)."""
    for kind, name in (("database", database), ("table", table)):
        if not _NAME_RE.match(name):
            raise RemoteQueryError(f"--{kind} {name[:60]!r}: expected letters, digits and underscores")
    return f'"{database}"."{table}"'
