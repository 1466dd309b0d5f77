"""docs/scale.md quotes prices, limits and counts: they must stay the ones the code uses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from trailguard_engine.catalog import load_catalog

from trailguard import pricing
from trailguard.retro import run as retro_lib
from trailguard.retro.plan import ACCOUNTS_PER_QUERY, DAYS_PER_QUERY, ScanPlan
from trailguard.retro.sqlcompile import compile_rules

DOC = (Path(__file__).resolve().parents[2] / "docs" / "scale.md").read_text(encoding="utf-8")


def test_prices_per_tib_are_the_pricing_modules() -> None:
    athena = pricing.ATHENA_PER_TB_SCANNED
    lake = pricing.LAKE_QUERY_PER_GB_SCANNED * 1024
    assert f"| Athena | ${athena:.2f} per TB scanned | ${athena:.2f} |" in DOC
    assert f"| CloudTrail Lake | ${pricing.LAKE_QUERY_PER_GB_SCANNED:.3f} per GB scanned | ${lake:.2f} |" in DOC
    assert f"{pricing.ATHENA_MIN_BYTES_PER_QUERY // (1024 * 1024)} MB per query" in DOC


def test_limits_and_counts_are_the_codes() -> None:
    rules = load_catalog()
    compiled = compile_rules(rules, dialect="trino")
    exact = sum(p.exact for p in compiled.values())
    assert f"{exact} of the {len(rules)} catalog rules compile exactly" in DOC
    assert f"{retro_lib.ATHENA_MAX_SQL:,} bytes" in DOC and f"{retro_lib.LAKE_MAX_SQL:,} characters" in DOC
    assert f"{DAYS_PER_QUERY}-day statements" in DOC and f"groups of {ACCOUNTS_PER_QUERY}" in DOC
    assert f"batches of {retro_lib.DUCKDB_BATCH}" in DOC
    plan = ScanPlan(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 20, tzinfo=UTC))
    stats = retro_lib.RetroStats("lake")
    lake = retro_lib.remote_statements(
        plan, rules, relation=retro_lib.lake_relation("EXAMPLE-f852-4e8f"), max_sql=retro_lib.LAKE_MAX_SQL,
        engine="lake", stats=stats,
    )  # fmt: skip
    assert f"packed into {len(lake)} statements" in DOC
    assert f"narrows): {len(stats.coarse_rules)} rules" in DOC
    too_long = [r for r in stats.coarse_rules if compiled[r].exact]
    assert too_long and all(f"`{rule}`" in DOC for rule in too_long)
    athena = retro_lib.remote_statements(
        plan, rules, relation='"trailguard"."cloudtrail"', max_sql=retro_lib.ATHENA_MAX_SQL, engine="athena"
    )
    assert len(athena) == 1  # "the whole catalog fits one statement"
