"""Remediations: one function per catalog ``remediation.action``, grouped by topic.

A remediation receives a :class:`RemediationContext` (the finding's params and
clients in the event's account and region), re-reads live state, changes the
smallest thing that removes the risk and returns an :class:`ActionResult`.
AWS errors propagate: the engine alerts and re-raises them for the DLQ.

Each registration also names how to read the resource's tags (for the live
exemption check) and which param identifies the resource (for the
per-resource rate limit).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from trailguard_engine.clients import ClientFactory, MemberSession, partition_for
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.exceptions import RemediationError
from trailguard_engine.model import Finding
from trailguard_engine.runtime_config import RuntimeConfig

Status = Literal["remediated", "already_safe", "skipped", "failed", "dry_run"]
#: A tag reader, as the key of a context's tag cache.
TagReaderKey = Callable[..., Mapping[str, str]]


class ParamError(RemediationError):
    """The finding lacks a param the remediation needs (a decision/catalog bug, not an AWS error)."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What a remediation did. ``changes`` lists every write, one line each."""

    status: Status
    detail: str
    changes: tuple[str, ...] = ()
    alert: bool = False  # the result needs a human even though nothing raised (e.g. unsupported here)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail, "changes": list(self.changes)}


@dataclass(slots=True)
class RemediationContext:
    """Everything a remediation may use. ``session`` acts in the event's account and region."""

    finding: Finding
    event: CloudTrailEvent
    cfg: RuntimeConfig
    account: str
    region: str
    session: MemberSession | None
    factory: ClientFactory
    notes: list[str] = field(default_factory=list)
    #: Tags already read by each reader (:meth:`tags`): one ListTags serves the exemption check and the remediation.
    _tags: dict[TagReaderKey, Mapping[str, str]] = field(default_factory=dict)

    def tags(self, reader: TagReader) -> Mapping[str, str]:
        """The resource's live tags as ``reader`` reads them, read at most once per context (one event)."""
        hit = self._tags.get(reader)
        if hit is None:
            hit = self._tags[reader] = reader(self)
        return hit

    def client(self, service: str) -> Any:
        """A client in the event's account and region, through the member role."""
        return self.session_client(service, self.region)

    def session_client(self, service: str, region: str) -> Any:
        if self.session is None:
            raise RemediationError(f"{self.finding.action}: no member session (remediation declared none)")
        return self.session.client(service, region)

    def param(self, name: str) -> str:
        v = self.finding.params.get(name)
        if not isinstance(v, str) or not v:
            raise ParamError(f"{self.finding.action}: missing or empty param {name!r}")
        return v

    def partition(self) -> str:
        return partition_for(self.region)


TagReader = Callable[[RemediationContext], Mapping[str, str]]
RemediationFn = Callable[[RemediationContext], ActionResult]
#: A read-only live check: a reason when the live state is already safe or intended (nothing to alert
#: about), None when the risk is still there. It must make no write call; AWS errors propagate.
CheckFn = Callable[[RemediationContext], str | None]


@dataclass(frozen=True, slots=True)
class Remediation:
    name: str
    fn: RemediationFn
    resource_param: str
    tags: TagReader | None = None
    needs_member_role: bool = True
    #: Read-only live check run before alerting a finding its caller class lowered to alert (see engine).
    check: CheckFn | None = None

    def resource_key(self, params: Mapping[str, Any]) -> str:
        v = params.get(self.resource_param)
        return f"{self.resource_param}:{v}" if isinstance(v, str) and v else ""


_REGISTRY: dict[str, Remediation] = {}
_LOADED: list[bool] = []


def remediation(
    name: str,
    *,
    resource: str,
    tags: TagReader | None = None,
    needs_member_role: bool = True,
    check: CheckFn | None = None,
) -> Callable[[RemediationFn], RemediationFn]:
    """Register ``fn`` as the remediation for catalog action ``name``.

    ``resource`` is the param naming the resource (rate-limit key); ``tags``
    reads the resource's live tags for the exemption check. ``check`` (optional)
    is the read-only half of ``fn``: it shares ``fn``'s "what would I change"
    helper and returns why nothing needs changing (or None when something does).
    """

    def register(fn: RemediationFn) -> RemediationFn:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"remediation {name!r} registered twice")
        _REGISTRY[name] = Remediation(name, fn, resource, tags, needs_member_role, check)
        return fn

    return register


def registry() -> dict[str, Remediation]:
    """Every registered remediation, importing the topic modules on first use."""
    if not _LOADED:
        for mod in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{mod.name}")
        _LOADED.append(True)
    return _REGISTRY


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, else ''."""
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):
        code = resp.get("Error", {}).get("Code")
        return code if isinstance(code, str) else ""
    return ""


def tag_list_to_map(tags: Any, key: str = "Key", value: str = "Value") -> dict[str, str]:
    """Convert AWS ``[{"Key": k, "Value": v}]`` lists to a dict (tolerates None)."""
    out: dict[str, str] = {}
    for t in tags or []:
        if isinstance(t, Mapping) and isinstance(t.get(key), str):
            out[t[key]] = str(t.get(value, ""))
    return out
