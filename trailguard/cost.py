"""Monthly cost model of a trailguard deployment, broken down by driver.

Prices come from :mod:`trailguard.pricing` (one file, dated). The workload
model is deliberately simple and every assumption is printed next to the
figure it drives, so a reader can check the arithmetic by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trailguard import pricing as p

DAYS_PER_MONTH = 365.25 / 12
GIB = 1024**3
FILES_PER_REGION_DAY = 288  # CloudTrail delivers a log file about every 5 minutes per account and region
DIGESTS_PER_REGION_DAY = 24  # log-file-validation digest files, hourly
CMK_COUNT = 4  # trail key, CloudWatch Logs key, engine/queues key, Athena results key

# --- Sizing the engine's reserved concurrency (issue 20) ---------------------------------------------
#: Average engine duration per event, in ms (``CostInputs.engine_ms``, the figure the Lambda cost uses too).
#: docs/benchmarks.md measures 75.6 ms (median) for one remediation through the handler against moto
#: server on localhost, with 10 AWS API calls (re-read, tags, idempotency and rate-limit state, SNS,
#: Security Hub, the fix); in AWS each call is a network round trip of tens of ms and the member role is
#: assumed once per account and hour, so 200 ms is the planning figure. Alert-only events make fewer calls.
ENGINE_MS_PER_EVENT = 200.0
#: Peak minute over average: CloudTrail traffic is bursty (deployments, scripts, an incident). An assumption;
#: ``--peak-factor`` overrides it.
PEAK_TO_AVERAGE = 10.0
#: Concurrency kept above the peak estimate (retries of failed invocations, slower API calls).
HEADROOM = 2.0
#: Never recommend fewer: one slow remediation (the engine's 60 s timeout) must not hold up the rest.
MIN_RESERVED_CONCURRENCY = 5
#: ``engine.reserved_concurrency``'s upper bound in the config.
MAX_RESERVED_CONCURRENCY = 1000

# --- Sanity bounds of the inputs (issue 17) ---------------------------------------------------------
#: Management events per account per day: 1e10 is about 116,000 API calls per second, all day, in one account,
#: far above what AWS's API rate limits let one account sustain; a larger figure is almost always a unit
#: mistake (per month, or for the whole organization instead of per account).
MAX_EVENTS_PER_ACCOUNT_DAY = 1e10
#: Data events per account per day: S3 object-level traffic can exceed the management-event rate by orders
#: of magnitude, so the bound is 100 times higher (about 11.6 million requests per second).
MAX_DATA_EVENTS_PER_ACCOUNT_DAY = 1e12


@dataclass(frozen=True)
class ConcurrencyAdvice:
    """A recommended ``engine.reserved_concurrency``, by Little's law: in flight = arrival rate x duration."""

    events_per_second: float
    peak_events_per_second: float
    duration_ms: float
    in_flight_at_peak: float
    recommended: int
    basis: str


@dataclass(frozen=True)
class CostInputs:
    """What the estimate depends on. ``events_per_day`` is management events per account per day, all regions."""

    accounts: int
    regions: int
    events_per_day: float
    data_events: bool = False
    data_events_per_day: float | None = None
    cloudwatch_logs: bool = False
    cloudwatch_retention_days: int = 400
    insights: bool = False
    existing_trail: bool = False
    archive_days: int = 2557
    ia_days: int = 90
    glacier_days: int = 365
    forward_ratio: float = p.FORWARD_RATIO
    engine_ms: float = ENGINE_MS_PER_EVENT
    engine_memory_mb: int = 256
    athena_queries: int = 100
    athena_days_per_query: float = 1.0

    def validate(self) -> list[str]:
        """One message per bad argument (empty when all are valid), naming the ``trailguard cost`` option."""
        errs = []
        if self.accounts < 1:
            errs.append("--accounts must be at least 1")
        if not 1 <= self.regions <= 40:
            errs.append("--regions must be between 1 and 40")
        errs += _rate_errors("--events-per-day", self.events_per_day, MAX_EVENTS_PER_ACCOUNT_DAY)
        if self.data_events_per_day is not None:
            errs += _rate_errors("--data-events-per-day", self.data_events_per_day, MAX_DATA_EVENTS_PER_ACCOUNT_DAY)
        if not 0 <= self.forward_ratio <= 1:  # also false for nan
            errs.append("--forward-ratio must be between 0 and 1")
        if self.ia_days < 1:
            errs.append("--ia-days must be at least 1")
        if not self.ia_days < self.glacier_days < self.archive_days:
            errs.append(
                f"the lifecycle must satisfy --ia-days ({self.ia_days}) < --glacier-days ({self.glacier_days}) "
                f"< --archive-days ({self.archive_days}): set --ia-days and --glacier-days below --archive-days "
                "(for example --archive-days 200 --ia-days 30 --glacier-days 90)"
            )
        if self.athena_queries < 0:
            errs.append("--athena-queries must not be negative")
        if not (math.isfinite(self.athena_days_per_query) and 0 <= self.athena_days_per_query <= self.archive_days):
            errs.append("--athena-days-per-query must be between 0 and --archive-days")
        return errs


def _rate_errors(option: str, value: float, limit: float) -> list[str]:
    if not math.isfinite(value):
        return [f"{option} must be a finite number, got {value}"]
    if value < 0:
        return [f"{option} must not be negative"]
    if value > limit:
        return [
            f"{option} {value:g} is above {limit:g} per account per day ({limit / 86_400:,.0f} calls per second, "
            "sustained): check the unit (it is per account and per day, not per month or for the organization)"
        ]
    return []


@dataclass(frozen=True)
class CostLine:
    driver: str
    usd: float
    basis: str


@dataclass
class CostEstimate:
    lines: list[CostLine] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines)

    def add(self, driver: str, usd: float, basis: str) -> None:
        self.lines.append(CostLine(driver, usd, basis))


def estimate(i: CostInputs) -> CostEstimate:
    """The monthly estimate for ``i`` (call :meth:`CostInputs.validate` first)."""
    est = CostEstimate()
    m = i.accounts * i.events_per_day * DAYS_PER_MONTH  # management events / month, whole org
    d_per_day = (
        (i.data_events_per_day if i.data_events_per_day is not None else 4 * i.events_per_day) if i.data_events else 0.0
    )
    d = i.accounts * d_per_day * DAYS_PER_MONTH

    # --- CloudTrail ---------------------------------------------------------
    mgmt = m / 100_000 * p.CLOUDTRAIL_MGMT_COPY_PER_100K if i.existing_trail else 0.0
    est.add(
        "CloudTrail management events",
        mgmt,
        f"{m:,.0f} events; "
        + ("a second copy (another trail already logs them)" if i.existing_trail else "first copy is free"),
    )
    if i.data_events:
        est.add(
            "CloudTrail data events", d / 100_000 * p.CLOUDTRAIL_DATA_EVENTS_PER_100K, f"{d:,.0f} S3/Lambda data events"
        )
    if i.insights:
        analyzed = m * (1 + (1 - p.READ_ONLY_SHARE))  # write events are analyzed twice (call rate + error rate)
        est.add(
            "CloudTrail Insights",
            analyzed / 100_000 * p.CLOUDTRAIL_INSIGHTS_PER_100K_ANALYZED,
            f"{analyzed:,.0f} events analyzed",
        )

    # --- S3 archive -----------------------------------------------------------
    events = m + d
    files = i.accounts * i.regions * FILES_PER_REGION_DAY * DAYS_PER_MONTH
    files = min(files, max(events, 1.0))
    digests = i.accounts * i.regions * DIGESTS_PER_REGION_DAY * DAYS_PER_MONTH
    gb_month = events * p.BYTES_PER_EVENT * p.GZIP_RATIO / GIB
    avg_object = events * p.BYTES_PER_EVENT * p.GZIP_RATIO / files if files else 0.0
    months = i.archive_days / DAYS_PER_MONTH
    if avg_object >= p.S3_MIN_TRANSITION_OBJECT_BYTES:
        std_m = i.ia_days / DAYS_PER_MONTH
        ia_m = (i.glacier_days - i.ia_days) / DAYS_PER_MONTH
        gl_m = (i.archive_days - i.glacier_days) / DAYS_PER_MONTH
        overhead_gl = files * p.S3_GLACIER_OVERHEAD_GLACIER_BYTES / GIB
        overhead_std = files * p.S3_GLACIER_OVERHEAD_STANDARD_BYTES / GIB
        storage = (
            gb_month * std_m * p.S3_STANDARD_GB_MONTH
            + gb_month * ia_m * p.S3_STANDARD_IA_GB_MONTH
            + (gb_month + overhead_gl) * gl_m * p.S3_GLACIER_FLEXIBLE_GB_MONTH
            + overhead_std * gl_m * p.S3_STANDARD_GB_MONTH
        )
        transitions = files * (p.S3_TRANSITION_IA_PER_1K + p.S3_TRANSITION_GLACIER_PER_1K) / 1000
        basis = (
            f"steady state: {gb_month:,.2f} GiB/month kept {i.archive_days} d "
            f"(Standard {i.ia_days} d, Standard-IA to {i.glacier_days} d, then Glacier Flexible Retrieval)"
        )
    else:
        storage = gb_month * months * p.S3_STANDARD_GB_MONTH
        transitions = 0.0
        basis = f"steady state: {gb_month:,.2f} GiB/month kept {i.archive_days} d, all in S3 Standard"
        est.notes.append(
            f"Log files average {avg_object / 1024:,.1f} KiB, under the 128 KiB below which S3 lifecycle does not "
            "transition objects by default: at this volume the archive stays in S3 Standard until it expires."
        )
    est.add("S3 archive storage", storage, basis)
    est.add(
        "S3 requests",
        (files + digests) * p.S3_PUT_PER_1K / 1000 + transitions,
        f"{files:,.0f} log files + {digests:,.0f} digests PUT; lifecycle transitions {transitions:,.2f} USD",
    )

    # --- KMS --------------------------------------------------------------------
    kms_requests = files + digests
    est.add(
        "KMS",
        CMK_COUNT * p.KMS_KEY_MONTH + kms_requests / 10_000 * p.KMS_REQUESTS_PER_10K,
        f"{CMK_COUNT} customer-managed keys; {kms_requests:,.0f} requests (one data key per log file; "
        "S3 bucket keys remove per-object calls on read)",
    )

    # --- CloudWatch Logs ----------------------------------------------------------
    if i.cloudwatch_logs:
        ingest_gb = m * (p.BYTES_PER_EVENT + 26) / GIB
        stored_gb = ingest_gb * p.GZIP_RATIO * i.cloudwatch_retention_days / DAYS_PER_MONTH
        est.add(
            "CloudWatch Logs",
            ingest_gb * p.CWL_INGEST_PER_GB + stored_gb * p.CWL_STORAGE_GB_MONTH,
            f"{ingest_gb:,.2f} GiB ingested/month; {stored_gb:,.2f} GiB stored at {i.cloudwatch_retention_days} d retention",
        )

    # --- Detection and remediation --------------------------------------------------
    forwarded = m * i.forward_ratio
    est.add(
        "EventBridge cross-account/region events",
        forwarded / 1_000_000 * p.EVENTBRIDGE_CROSS_ACCOUNT_PER_1M,
        f"{forwarded:,.0f} events forwarded to the central bus ({i.forward_ratio:.1%} of management events match a rule)",
    )
    engine_gbs = forwarded * i.engine_ms / 1000 * i.engine_memory_mb / 1024
    reconcile_inv = files  # one SQS message per log file; batching lowers invocations further
    reconcile_gbs = files * 0.3 * 0.5  # 300 ms at 512 MB per log file
    drift_inv = 24 * DAYS_PER_MONTH
    drift_gbs = drift_inv * 2.0 * 0.25
    invocations = forwarded + reconcile_inv + drift_inv
    est.add(
        "Lambda",
        invocations / 1_000_000 * p.LAMBDA_PER_1M_REQUESTS
        + (engine_gbs + reconcile_gbs + drift_gbs) * p.LAMBDA_ARM_GB_SECOND,
        f"{invocations:,.0f} invocations (engine {forwarded:,.0f}, reconciliation {reconcile_inv:,.0f}, drift {drift_inv:,.0f}); "
        f"{engine_gbs + reconcile_gbs + drift_gbs:,.0f} GB-s arm64",
    )
    sqs_requests = files * 3  # S3 notification send + receive + delete
    est.add(
        "SQS",
        sqs_requests / 1_000_000 * p.SQS_PER_1M_REQUESTS,
        f"{sqs_requests:,.0f} requests (log-file notifications)",
    )
    writes = (
        forwarded * 2 + forwarded
    )  # idempotency in-progress + completed (EventBridge path), one conditional put (log path)
    reads = forwarded
    est.add(
        "DynamoDB",
        writes / 1_000_000 * p.DDB_PER_1M_WRITE_UNITS + reads / 1_000_000 * p.DDB_PER_1M_READ_UNITS,
        f"{writes:,.0f} write units, {reads:,.0f} read units (idempotency and rate limits, on-demand)",
    )
    per_query = max(
        i.athena_days_per_query * events / DAYS_PER_MONTH * p.BYTES_PER_EVENT * p.GZIP_RATIO,
        p.ATHENA_MIN_BYTES_PER_QUERY,
    )
    scanned_tb = i.athena_queries * per_query / 1024**4
    est.add(
        "Athena",
        scanned_tb * p.ATHENA_PER_TB_SCANNED if i.athena_queries else 0.0,
        f"{i.athena_queries} queries x {per_query / 1024**2:,.1f} MiB scanned (partition projection limits each to "
        f"{i.athena_days_per_query:g} day(s))",
    )
    est.notes.append(
        f"Prices: {p.REGION}, taken {p.PRICES_TAKEN} (trailguard/pricing.py). Taxes, support and free tiers not included."
    )
    return est


def recommend_reserved_concurrency(i: CostInputs, *, peak_factor: float = PEAK_TO_AVERAGE) -> ConcurrencyAdvice:
    """The engine's reserved concurrency for ``i``'s forwarded event volume.

    ``ceil(events/s at peak x duration x headroom)``, between :data:`MIN_RESERVED_CONCURRENCY` and
    :data:`MAX_RESERVED_CONCURRENCY`. The events are the forwarded ones (``forward_ratio`` of the
    management events): only those invoke the engine (the reconciliation path hands over only what
    EventBridge missed).
    """
    rate = i.accounts * i.events_per_day * i.forward_ratio / 86_400
    peak = rate * peak_factor
    in_flight = peak * i.engine_ms / 1000
    wanted = math.ceil(in_flight * HEADROOM - 1e-9)
    recommended = min(max(wanted, MIN_RESERVED_CONCURRENCY), MAX_RESERVED_CONCURRENCY)
    basis = (
        f"{rate:,.3f} forwarded events/s on average, x{peak_factor:g} at peak = {peak:,.2f}/s; "
        f"x {i.engine_ms:g} ms per event = {in_flight:,.2f} engines in flight (Little's law); "
        f"x{HEADROOM:g} headroom, at least {MIN_RESERVED_CONCURRENCY}"
    )
    return ConcurrencyAdvice(rate, peak, i.engine_ms, in_flight, recommended, basis)
