"""Lambda entry point of the remediation engine (``trailguard_engine.handler.handler``).

Thin on purpose: Powertools objects at module level, the work in
:mod:`trailguard_engine.engine`. The engine (clients, idempotency store, rate
limiter, notifier) is built on the first invocation and reused while the
container lives. Tracing is imported only when ``TRAILGUARD_TRACING=true``
(aws-xray-sdk costs about half a second of cold start).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from trailguard_engine.athena_accounts import organization_accounts
from trailguard_engine.clients import ClientFactory, invoked_account
from trailguard_engine.engine import Engine
from trailguard_engine.events import dig
from trailguard_engine.notify import Notifier
from trailguard_engine.org_accounts import OrgAccounts
from trailguard_engine.settings import Runtime, RuntimeLoader, Settings
from trailguard_engine.state import Idempotency, LogFileLedger, RateLimiter

#: The EventBridge envelope id, whichever input shape arrived.
CORRELATION_ID_PATH = "event.id || id"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "trailguard"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Trailguard"))

#: The engine's wall clock (seconds since the epoch). State that depends on the time of day (the rate
#: limiter's hourly windows) reads it through this one seam, so tests pin it instead of racing HH:00.
clock: Callable[[], float] = time.time

_ENGINE: list[Engine] = []
_COUNTS: Counter[tuple[str, str, str]] = Counter()
_LOADER: list[RuntimeLoader] = []


def _count(name: str, rule: str, account: str) -> None:
    _COUNTS[(name, rule, account)] += 1


def _ssm_fetch(parameter: str) -> str:
    return build_factory().read_parameter(parameter)


_FACTORY: list[ClientFactory] = []


def now() -> float:
    """The current time from :data:`clock` (looked up on every call, so a replaced clock takes effect)."""
    return clock()


def build_factory() -> ClientFactory:
    if not _FACTORY:
        s = Settings.from_env()
        _FACTORY.append(ClientFactory(engine_region=s.region, role_name=s.remediation_role_name))
    return _FACTORY[0]


def get_engine(context: Any = None) -> Engine:
    """The container's engine, built on first use from the environment."""
    if not _ENGINE:
        s = Settings.from_env()
        factory = build_factory()
        ddb = factory.engine("dynamodb") if s.state_table else None
        _ENGINE.append(
            Engine(
                factory=factory,
                notifier=Notifier(
                    factory=factory, topic_arn=s.alert_topic_arn, engine_account=invoked_account(context)
                ),
                idempotency=Idempotency(table=s.state_table, client=ddb, clock=now) if s.state_table else None,
                limiter=RateLimiter(table=s.state_table, client=ddb, clock=now) if s.state_table else None,
                clock=now,
                log=logger,
                metric=_count,
                ledger=LogFileLedger(table=s.state_table, client=ddb, clock=now) if s.state_table else None,
                org_accounts=OrgAccounts(lambda: organization_accounts(factory.engine("organizations")), clock=now),
            )
        )
    return _ENGINE[0]


def get_runtime() -> Runtime:
    if not _LOADER:
        _LOADER.append(RuntimeLoader(_ssm_fetch))
    loader = _LOADER[0]
    runtime = loader.load(Settings.from_env().config_parameter)
    if loader.last_error:
        logger.error("using the last good runtime config: %s", loader.last_error)
        _count("RuntimeConfigErrors", "", "")
    return runtime


def reset() -> None:
    """Forget the container state (tests; never needed in Lambda)."""
    _ENGINE.clear()
    _FACTORY.clear()
    _LOADER.clear()
    _COUNTS.clear()


def _flush_counts() -> None:
    """Emit counted metrics: one EMF document per (rule, account) with three dimension sets.

    Each value is published under [service], [service, rule] and
    [service, account]: cardinality grows with rules + accounts, not their product.
    """
    s = Settings.from_env()
    groups: dict[tuple[str, str], Counter[str]] = {}
    for (name, rule, account), n in _COUNTS.items():
        groups.setdefault((rule, account), Counter())[name] += n
    _COUNTS.clear()
    for (rule, account), counts in sorted(groups.items()):
        emf = AmazonCloudWatchEMFProvider(namespace=s.namespace, service=s.service)
        for name, n in sorted(counts.items()):
            emf.add_metric(name=name, unit=MetricUnit.Count, value=n)
        if rule:
            emf.add_dimensions(service=s.service, rule=rule)
        if account:
            emf.add_dimensions(service=s.service, account=account)
        emf.flush_metrics()


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH, clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Decide and act on one EventBridge event; see :mod:`trailguard_engine.engine`."""
    metrics.add_metric(name="Invocations", unit=MetricUnit.Count, value=1)
    detail = dig(event, "event", "detail") if isinstance(dig(event, "event"), dict) else dig(event, "detail")
    event_id = dig(detail, "eventID")
    if isinstance(event_id, str):
        logger.append_keys(cloudtrail_event_id=event_id[:256])
    try:
        engine = get_engine(context)
        if engine.idempotency is not None:
            engine.idempotency.register_context(context)
        return engine.handle(event, get_runtime())
    finally:
        _flush_counts()


if Settings.from_env().tracing:  # pragma: no cover - exercised by deployment config, not unit tests
    from aws_lambda_powertools import Tracer

    tracer = Tracer()
    handler = tracer.capture_lambda_handler(handler)
