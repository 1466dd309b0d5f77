"""Run one remediation directly against moto, as the member role would: no engine, no handler.

The adversarial tests of intended exposure need only a remediation, its finding params and a
runtime config; this keeps them independent of the engine and reliability worlds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Finding
from trailguard_engine.remediations import ActionResult, RemediationContext, registry
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "123456789012"  # moto's default account: the resources live here
REGION = "us-east-1"


class _Session:
    """What the remediation sees of the member session: clients in the account and region."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def client(self, service: str, region: str) -> Any:
        c = boto3.client(service, region_name=region)

        def record(model: Any, **_: Any) -> None:
            self.calls.append((service, model.name))

        c.meta.events.register("before-call", record)
        return c


def run(action: str, params: Mapping[str, Any], cfg: RuntimeConfig | None = None) -> tuple[ActionResult, list[str]]:
    """``(result, the write operations made)`` of remediation ``action`` with ``params``."""
    finding = Finding("adversarial", "HIGH", "remediate", action, "test", params=dict(params))
    event = CloudTrailEvent({"account": ACCOUNT, "region": REGION, "detail": {"eventName": "Test"}})
    session = _Session()
    ctx = RemediationContext(finding, event, cfg or RuntimeConfig(), ACCOUNT, REGION, session, None)  # type: ignore[arg-type]
    result = registry()[action].fn(ctx)
    writes = [op for _, op in session.calls if not op.startswith(("Describe", "Get", "List"))]
    return result, writes
