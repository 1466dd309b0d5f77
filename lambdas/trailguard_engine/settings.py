"""Engine settings: environment variables and the runtime document from SSM.

Environment variables are fixed per deployment; they are read on each call of
:func:`from_env` (cheap) so tests can change them. The runtime document (global
``dry_run``, per-rule modes, exemptions...) lives in an SSM parameter and can
be edited without redeploying: it is cached for :data:`CACHE_SECONDS` so an
edit takes effect within a minute while a busy function makes about one SSM
call per minute.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trailguard_engine.exceptions import RuntimeConfigError
from trailguard_engine.runtime_config import RuntimeConfig

CACHE_SECONDS = 60.0
DEFAULT_ROLE_NAME = "trailguard-remediation"


@dataclass(frozen=True, slots=True)
class Settings:
    """Deployment settings from the engine's environment (names fixed by the CDK stacks)."""

    config_parameter: str = ""
    state_table: str = ""
    alert_topic_arn: str = ""
    remediation_role_name: str = DEFAULT_ROLE_NAME
    service: str = "trailguard"
    namespace: str = "Trailguard"
    tracing: bool = False
    region: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return cls(
            config_parameter=e.get("TRAILGUARD_CONFIG_PARAMETER", ""),
            state_table=e.get("TRAILGUARD_STATE_TABLE", ""),
            alert_topic_arn=e.get("TRAILGUARD_ALERT_TOPIC_ARN", ""),
            remediation_role_name=e.get("TRAILGUARD_REMEDIATION_ROLE_NAME", "") or DEFAULT_ROLE_NAME,
            service=e.get("POWERTOOLS_SERVICE_NAME", "") or "trailguard",
            namespace=e.get("POWERTOOLS_METRICS_NAMESPACE", "") or "Trailguard",
            tracing=e.get("TRAILGUARD_TRACING", "false").strip().lower() == "true",
            region=e.get("AWS_REGION", "") or e.get("AWS_DEFAULT_REGION", ""),
        )


@dataclass(frozen=True, slots=True)
class Runtime:
    """The parsed runtime document plus the engine-only keys RuntimeConfig does not carry."""

    cfg: RuntimeConfig = field(default_factory=RuntimeConfig)
    runbook_base_url: str | None = None

    def runbook_url(self, rule_id: str) -> str:
        if self.runbook_base_url:
            return f"{self.runbook_base_url.rstrip('/')}/{rule_id}.md"
        return f"docs/runbooks/{rule_id}.md"

    @classmethod
    def from_document(cls, doc: Any) -> Runtime:
        """Parse the SSM document; raise :class:`RuntimeConfigError` naming the bad field."""
        cfg = RuntimeConfig.from_document(doc)
        base = doc.get("runbook_base_url")
        if base is not None and not isinstance(base, str):
            raise RuntimeConfigError("runtime config: runbook_base_url: expected a string or null")
        return cls(cfg=cfg, runbook_base_url=base or None)


class RuntimeLoader:
    """Reads the runtime document through ``fetch`` and caches it for ``ttl`` seconds.

    When a refresh fails after a good document was loaded, the last good one is
    kept (and the error is reported by the caller's log): a transient SSM error
    must not flip the engine's behaviour. With nothing loaded yet it raises.
    """

    def __init__(self, fetch: Callable[[str], str], ttl: float = CACHE_SECONDS) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Runtime]] = {}
        self.last_error: str | None = None

    def load(self, parameter: str) -> Runtime:
        if not parameter:
            return Runtime()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(parameter)
            if hit and now - hit[0] < self._ttl:
                return hit[1]
        try:
            raw = self._fetch(parameter)
            runtime = Runtime.from_document(json.loads(raw))
        except (RuntimeConfigError, ValueError) as exc:
            return self._stale_or_raise(parameter, hit, f"runtime config {parameter}: {exc}")
        except Exception as exc:
            return self._stale_or_raise(parameter, hit, f"runtime config {parameter}: cannot read ({exc})")
        with self._lock:
            self._cache[parameter] = (now, runtime)
        self.last_error = None
        return runtime

    def _stale_or_raise(self, parameter: str, hit: tuple[float, Runtime] | None, message: str) -> Runtime:
        self.last_error = message
        if hit is None:
            raise RuntimeConfigError(message)
        return hit[1]

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
        self.last_error = None
