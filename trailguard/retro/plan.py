"""What a retro scan reads: the time window, accounts and regions, split into queries that prune partitions.

The Glue table is partition-projected on ``account``, ``region`` and ``"date"`` (``yyyy/MM/dd`` from the S3 key), and
the local DuckDB view derives the same columns from the ``AWSLogs/`` path. A WHERE on those columns is what lets
Athena skip whole S3 prefixes (and is what Athena bills for), so every retro query carries one.

Two facts keep the pruning a superset of the events asked for:

* CloudTrail names a log file's ``yyyy/MM/dd`` folder after the file's delivery, not after each event: a file
  delivered just after midnight UTC holds events of the previous day. The date range is therefore widened by one
  day on each side; the exact ``eventtime`` bounds then cut the window precisely.
* ``"date"`` strings compare in calendar order (zero-padded, most significant first), and so does CloudTrail's
  ``eventtime`` form (``2024-05-01T12:00:00Z``).

Values (account IDs, regions, dates) are validated and always bound as query parameters, never pasted into SQL:
``$name`` for DuckDB, ``?`` in order of appearance for Athena and Lake (:meth:`ScanPlan.where`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from trailguard.exceptions import TrailguardError

#: A delivered log file can hold events of the day before its folder's date (and, with clock skew, after).
DATE_SLACK = timedelta(days=1)
#: Accounts per query when an account list is given: each query stays small and they run in parallel.
ACCOUNTS_PER_QUERY = 8
#: Days per query: a long window becomes several queries over consecutive date ranges.
DAYS_PER_QUERY = 31

_ACCOUNT_RE = re.compile(r"^\d{12}$")
#: Commercial-partition region names (the only partition trailguard deploys to): us-east-1, ap-southeast-4, ...
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


#: Bound values: a dict for ``$name`` placeholders, a list of quoted literals for ``?``.
Params = dict[str, str] | list[str]


class PlanError(TrailguardError):
    """The scan cannot be planned: a bad account, region or window (the message says which and how to fix it)."""


@dataclass(frozen=True)
class ScanPlan:
    """One query's share of the scan: [since, until) and optional account and region lists (empty = all)."""

    since: datetime
    until: datetime
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise PlanError("retro window times must carry a time zone (UTC)")
        if self.since >= self.until:
            raise PlanError(f"--since {_ct(self.since)} is not before --until {_ct(self.until)}: nothing to scan")
        for a in self.accounts:
            if not _ACCOUNT_RE.match(a):
                raise PlanError(f"--accounts {a!r}: expected a 12-digit AWS account ID")
        for r in self.regions:
            if not _REGION_RE.match(r):
                raise PlanError(f"--regions {r!r}: expected a region name such as us-east-1")

    @property
    def date_lo(self) -> str:
        """The first ``"date"`` partition to read (a day of margin for clock skew)."""
        return (self.since - DATE_SLACK).astimezone(UTC).strftime("%Y/%m/%d")

    @property
    def date_hi(self) -> str:
        """The last ``"date"`` partition to read (a day of margin for late delivery)."""
        return (self.until + DATE_SLACK).astimezone(UTC).strftime("%Y/%m/%d")

    def split(self, *, accounts_per_query: int = ACCOUNTS_PER_QUERY, days: int = DAYS_PER_QUERY) -> list[ScanPlan]:
        """Queries to run in parallel: account groups times consecutive date ranges (at least one)."""
        groups: list[tuple[str, ...]] = [()]
        if self.accounts:
            acc = sorted(set(self.accounts))
            groups = [tuple(acc[i : i + accounts_per_query]) for i in range(0, len(acc), accounts_per_query)]
        windows: list[tuple[datetime, datetime]] = []
        start = self.since
        while start < self.until:
            end = min(start + timedelta(days=days), self.until)
            windows.append((start, end))
            start = end
        return [
            replace(self, since=lo, until=hi, accounts=group, regions=tuple(sorted(set(self.regions))))
            for group in groups
            for lo, hi in windows
        ]

    def where(self, *, positional: bool = False) -> tuple[str, Params]:
        """The pruning condition (partition columns, then exact eventtime bounds) and its bound values.

        ``positional=False``: ``$name`` placeholders and a dict (DuckDB). ``positional=True``: ``?`` placeholders
        and a list in order of appearance, each a quoted SQL literal, as Athena's and Lake's execution
        parameters take them (the engine substitutes the text of each parameter).
        """
        named: dict[str, str] = {}
        ordered: list[str] = []

        def bind(name: str, value: str) -> str:
            if positional:
                ordered.append("'" + value.replace("'", "''") + "'")
                return "?"
            named[name] = value
            return "$" + name

        lo, hi = self.date_lo, self.date_hi
        parts = [f'"date" >= {bind("tg_date_lo", lo)}', f'"date" <= {bind("tg_date_hi", hi)}']
        for column, items in (("account", self.accounts), ("region", self.regions)):
            if items:
                marks = [bind(f"tg_{column}_{i}", v) for i, v in enumerate(items)]
                parts.append(f"{column} IN ({', '.join(marks)})")
        parts.append(f"eventtime >= {bind('tg_since', _ct(self.since))}")
        parts.append(f"eventtime < {bind('tg_until', _ct(self.until))}")
        return " AND ".join(parts), (ordered if positional else named)


def scan_sql(
    plan: ScanPlan, columns: str, relation: str, predicate: str, *, positional: bool = False
) -> tuple[str, Params]:
    """``SELECT columns FROM relation WHERE <pruning> AND (<predicate>)``; the predicate has no placeholders."""
    where, values = plan.where(positional=positional)
    sql = f"SELECT {columns} FROM {relation} WHERE {where} AND ({predicate})"  # noqa: S608 - values are bound
    return sql, values


def _ct(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_list(values: Sequence[str] | None) -> tuple[str, ...]:
    """Repeatable and comma-separated CLI values (``--accounts 1,2 --accounts 3``), blanks dropped."""
    out: list[str] = []
    for v in values or ():
        out += [x.strip() for x in v.split(",") if x.strip()]
    return tuple(out)
