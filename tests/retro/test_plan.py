"""Retro scan planning: partition pruning with a delivery-day margin, exact time bounds, bound values, splitting."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import duckdb
import pytest

from trailguard.retro.plan import PlanError, ScanPlan, parse_list, scan_sql

T0 = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)
T1 = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


def test_pruning_widens_the_date_range_by_a_day_and_keeps_exact_time_bounds() -> None:
    where, values = ScanPlan(T0, T1).where()
    assert values == {
        "tg_date_lo": "2026/02/28",
        "tg_date_hi": "2026/03/04",
        "tg_since": "2026-03-01T00:30:00Z",
        "tg_until": "2026-03-03T12:00:00Z",
    }
    assert (
        where == '"date" >= $tg_date_lo AND "date" <= $tg_date_hi AND eventtime >= $tg_since AND eventtime < $tg_until'
    )


def test_positional_binding_quotes_each_value_in_order() -> None:
    where, values = ScanPlan(T0, T1, accounts=("111111111111",), regions=("eu-west-1",)).where(positional=True)
    assert "$" not in where and where.count("?") == len(values) == 6
    assert values == [
        "'2026/02/28'",
        "'2026/03/04'",
        "'111111111111'",
        "'eu-west-1'",
        "'2026-03-01T00:30:00Z'",
        "'2026-03-03T12:00:00Z'",
    ]


def test_the_where_clause_selects_by_partition_and_time_on_duckdb() -> None:
    con = duckdb.connect()
    con.execute(
        """CREATE TABLE cloudtrail AS SELECT * FROM (VALUES
        ('111111111111', 'eu-west-1', '2026/03/02', '2026-03-01T23:59:59Z', 'late-file'),
        ('111111111111', 'eu-west-1', '2026/03/01', '2026-03-01T00:29:59Z', 'too-early'),
        ('111111111111', 'eu-west-1', '2026/03/03', '2026-03-03T11:59:59Z', 'last'),
        ('111111111111', 'eu-west-1', '2026/03/03', '2026-03-03T12:00:00Z', 'until-is-exclusive'),
        ('222222222222', 'eu-west-1', '2026/03/02', '2026-03-02T00:00:00Z', 'other-account'),
        ('111111111111', 'us-east-1', '2026/03/02', '2026-03-02T00:00:00Z', 'other-region'),
        ('111111111111', 'eu-west-1', '2026/03/02', '2026-03-01T00:30:00Z', 'first')
        ) t(account, region, "date", eventtime, eventname)"""
    )
    sql, values = scan_sql(
        ScanPlan(T0, T1, accounts=("111111111111",), regions=("eu-west-1",)), "eventname", "cloudtrail", "TRUE"
    )
    got = sorted(r[0] for r in con.execute(sql, values).fetchall())
    assert got == ["first", "last", "late-file"]


def test_split_by_account_groups_and_month_windows() -> None:
    plan = ScanPlan(
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 3, 15, tzinfo=UTC),
        accounts=tuple(f"{i:012d}" for i in range(1, 11)),
    )
    parts = plan.split(accounts_per_query=4, days=31)
    assert len(parts) == 3 * 3
    assert {p.accounts for p in parts} == {
        ("000000000001", "000000000002", "000000000003", "000000000004"),
        ("000000000005", "000000000006", "000000000007", "000000000008"),
        ("000000000009", "000000000010"),
    }
    windows = sorted({(p.since, p.until) for p in parts})
    assert windows[0][0] == plan.since and windows[-1][1] == plan.until
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"accounts": ("1234",)}, "12-digit"),
        ({"accounts": ("111111111111') OR (1=1",)}, "12-digit"),
        ({"regions": ("us-east-1' --",)}, "region name"),
        ({"regions": ("US-EAST-1",)}, "region name"),
    ],
)
def test_bad_accounts_and_regions_are_refused_before_any_sql(kwargs: dict[str, tuple[str, ...]], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        ScanPlan(T0, T1, **kwargs)


def test_an_empty_or_naive_window_is_refused() -> None:
    with pytest.raises(PlanError, match="not before"):
        ScanPlan(T1, T0)
    with pytest.raises(PlanError, match="time zone"):
        ScanPlan(T0.replace(tzinfo=None), T1)


def test_parse_list_accepts_repeats_and_commas() -> None:
    assert parse_list(["1,2", " 3 ", ""]) == ("1", "2", "3")
    assert parse_list(None) == ()
