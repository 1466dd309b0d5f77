"""Run-time configuration of the engine, read from an SSM parameter.

The document is written at deploy time by ``TrailguardConfig.runtime_document``
(``trailguard/config.py``) and can be edited in SSM to flip ``dry_run`` or a
rule's mode without redeploying. Parsing is plain Python (no pydantic) to keep
the cold start low; a bad document raises :class:`RuntimeConfigError`.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from trailguard_engine.caller import CALLER_KINDS, CALLER_MODES, DEFAULT_CALLER_MODES, iac_principal_error
from trailguard_engine.exceptions import RuntimeConfigError
from trailguard_engine.intended import IntendedExposure
from trailguard_engine.model import MODES, Mode, Rule

#: The roles of trailguard's functions, in the engine (security tooling) account. Their sessions,
#: and only theirs, are trailguard itself: the loop guard.
ENGINE_ROLE_NAMES: tuple[str, ...] = (
    "trailguard-engine",
    "trailguard-drift",
    "trailguard-reconcile",
)
#: The member role the engine assumes, and the session name it always uses (``clients.SESSION_NAME``).
MEMBER_ROLE_NAME = "trailguard-remediation"
MEMBER_SESSION_NAME = "trailguard-remediation"
#: ``arn:<partition>:sts::<account>:assumed-role/<role name>/<session name>``
_ASSUMED_ROLE_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:sts::(\d{12}):assumed-role/([\w+=,.@-]{1,64})/([\w+=,.@-]{2,64})$"
)
#: An event older than this (by ``eventTime``) is alert-only: acting on it could undo a later, deliberate change.
DEFAULT_MAX_EVENT_AGE_SECONDS = 3600
#: An eventTime further in the future than this is not trusted either (clock skew allowance).
MAX_FUTURE_SKEW_SECONDS = 300


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    dry_run: bool = False
    rule_modes: Mapping[str, Mode] = field(default_factory=dict)
    allowed_public_ports: frozenset[int] = frozenset({80, 443})
    exempt_accounts: frozenset[str] = frozenset()
    exempt_regions: frozenset[str] = frozenset()
    exempt_principal_patterns: tuple[str, ...] = ()
    exempt_resource_tags: Mapping[str, str] = field(default_factory=lambda: {"trailguard:exempt": "true"})
    exempt_source_cidrs: tuple[str, ...] = ()
    org_id: str | None = None
    max_actions_per_resource_per_hour: int = 2
    protected_key_tag: Mapping[str, str] = field(default_factory=lambda: {"trailguard:protected": "true"})
    protected_key_arns: frozenset[str] = frozenset()
    security_hub_findings: bool = True
    engine_role_names: tuple[str, ...] = ENGINE_ROLE_NAMES
    engine_account: str | None = None
    deployment_role_arns: frozenset[str] = frozenset()
    #: True when the guardrail SCP keeps member admins from creating ``stacksets-exec-*`` roles.
    stacksets_exec_protected: bool = False
    management_account: str | None = None
    max_event_age_seconds: int = DEFAULT_MAX_EVENT_AGE_SECONDS
    alerts_per_account_per_hour: int = 200
    mode_override: Mode | None = None
    #: Config ``intended_exposure``: public ports per account/VPC/tag, website buckets, public-AMI accounts.
    intended: IntendedExposure = field(default_factory=IntendedExposure)
    #: trailguard's own trail as deployed (``arn``, ``bucket``, ``kms_key``, ``log_group``): UpdateTrail on it
    #: is compared with this; empty when unknown (then only explicit removals count).
    deployed_trail: Mapping[str, str] = field(default_factory=dict)
    #: Config ``callers.iac_principals``: exact ARNs or fnmatch patterns pinned to a 12-digit account ID.
    iac_principal_patterns: tuple[str, ...] = ()
    #: Config ``callers.modes``: rule id or ``*`` -> caller kind -> remediate|alert|notice.
    caller_modes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: The organization's accounts (``trailguard_engine.policy.known_accounts``): the engine adds the cached
    #: ``organizations:ListAccounts`` answer (``trailguard_engine.org_accounts``) to the configured list
    #: (``organization.accounts``, what replay uses); None: unknown, so every other account is external.
    organization_accounts: frozenset[str] | None = None

    # ------------------------------------------------------------------ #
    def mode_for(self, rule: Rule) -> Mode:
        """Effective mode: the override (replay's --mode-override) > config > rule default.

        An override never switches on a rule that config turned off.
        """
        configured = self.rule_modes.get(rule.id, rule.default_mode)
        if self.mode_override is not None and configured != "off":
            return self.mode_override
        return configured

    def is_engine_principal(self, arn: str, event_account: str) -> bool:
        """True only for a session of trailguard's own roles, judged by exact account, role and session.

        * the engine, drift and reconcile roles, in the engine account (``engine_account``; when it is
          unknown, as in a standalone replay, the event's own account, where a standalone deployment
          runs them);
        * the member role ``trailguard-remediation`` in the event's account, with the session name the
          engine always uses.

        A role of the same name created in another account, or another session of the member role,
        is not trailguard: its risky events are judged like anyone's.
        """
        m = _ASSUMED_ROLE_ARN.match(arn or "")
        if m is None:
            return False
        account, role, session = m.groups()
        if role in self.engine_role_names:
            return account == (self.engine_account or event_account)
        return role == MEMBER_ROLE_NAME and session == MEMBER_SESSION_NAME and account == event_account

    def caller_mode_for(self, rule: Rule, kind: str) -> tuple[str, str]:
        """``(mode, where it comes from)`` for a caller kind on a rule: config ``callers.modes[rule id]``, then
        ``callers.modes["*"]``, then the rule's ``caller_modes``, then the defaults. trailguard is always notice.
        """
        if kind == "trailguard":
            return "notice", "loop guard"
        for key in (rule.id, "*"):
            mode = self.caller_modes.get(key, {}).get(kind)
            if mode is not None:
                return mode, f"config callers.modes[{key!r}]"
        if kind in rule.caller_modes:
            return rule.caller_modes[kind], "rule caller_modes"
        return DEFAULT_CALLER_MODES.get(kind, "alert"), "default caller_modes"

    def iac_principal(self, *arns: str) -> str | None:
        """The first ``iac_principals`` entry matching any of ``arns`` (session ARN, issuer role ARN), or None."""
        for pat in self.iac_principal_patterns:
            for arn in arns:
                if arn and fnmatch.fnmatchcase(arn, pat):
                    return pat
        return None

    def exempt_principal(self, arn: str) -> str | None:
        for pat in self.exempt_principal_patterns:
            if arn and fnmatch.fnmatchcase(arn, pat):
                return pat
        return None

    def exempt_source(self, ip: str) -> str | None:
        if not self.exempt_source_cidrs or not ip:
            return None
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for cidr in self.exempt_source_cidrs:
            if addr in ipaddress.ip_network(cidr, strict=False):
                return cidr
        return None

    def tags_exempt(self, tags: Mapping[str, str]) -> str | None:
        """The first exemption tag ``key=value`` found in ``tags``, or None."""
        for k, v in self.exempt_resource_tags.items():
            if tags.get(k) == v:
                return f"{k}={v}"
        return None

    def with_override(self, mode: Mode | None) -> RuntimeConfig:
        return replace(self, mode_override=mode)

    # ------------------------------------------------------------------ #
    @classmethod
    def from_document(cls, doc: Any) -> RuntimeConfig:
        """Parse the SSM document; raise :class:`RuntimeConfigError` naming the bad field."""
        if not isinstance(doc, Mapping):
            raise RuntimeConfigError("runtime config: expected a JSON object")
        ex = doc.get("exemptions", {})
        if not isinstance(ex, Mapping):
            raise RuntimeConfigError("runtime config: exemptions: expected an object")
        modes = doc.get("rule_modes", {})
        if not isinstance(modes, Mapping) or any(m not in MODES for m in modes.values()):
            raise RuntimeConfigError(f"runtime config: rule_modes: each value must be one of {MODES}")
        cidrs = _str_list(ex, "source_cidrs")
        for c in cidrs:
            try:
                ipaddress.ip_network(c, strict=False)
            except ValueError as exc:
                raise RuntimeConfigError(f"runtime config: exemptions.source_cidrs: bad CIDR {c!r}") from exc
        ports = doc.get("allowed_public_ports", [80, 443])
        if not isinstance(ports, list) or not all(isinstance(p, int) and 0 <= p <= 65535 for p in ports):
            raise RuntimeConfigError("runtime config: allowed_public_ports: expected a list of ports")
        limit = doc.get("max_actions_per_resource_per_hour", 2)
        if not isinstance(limit, int) or limit < 1:
            raise RuntimeConfigError("runtime config: max_actions_per_resource_per_hour: expected a positive integer")
        org_id = doc.get("org_id")
        engine_account = _account_or_none(doc, "engine_account_id")
        try:
            intended = IntendedExposure.from_document(doc.get("intended_exposure"))
        except ValueError as exc:
            raise RuntimeConfigError(f"runtime config: {exc}") from exc
        return cls(
            dry_run=_bool(doc, "dry_run", True),  # a document without the key acts like the safe first deploy
            rule_modes=dict(modes),
            allowed_public_ports=frozenset(ports),
            exempt_accounts=frozenset(_str_list(ex, "accounts")),
            exempt_regions=frozenset(_str_list(ex, "regions")),
            exempt_principal_patterns=tuple(_str_list(ex, "principal_arn_patterns")),
            exempt_resource_tags=_str_map(ex, "resource_tags", {"trailguard:exempt": "true"}),
            exempt_source_cidrs=tuple(cidrs),
            org_id=org_id if isinstance(org_id, str) and org_id else None,
            max_actions_per_resource_per_hour=limit,
            protected_key_tag=_str_map(doc, "protected_key_tag", {"trailguard:protected": "true"}),
            protected_key_arns=frozenset(_str_list(doc, "protected_key_arns")),
            security_hub_findings=_bool(doc, "security_hub_findings", True),
            engine_account=engine_account,
            deployment_role_arns=frozenset(_str_list(doc, "deployment_role_arns")),
            stacksets_exec_protected=_bool(doc, "stacksets_exec_protected", False),
            management_account=_account_or_none(doc, "management_account_id"),
            max_event_age_seconds=60 * _positive_int(doc, "max_event_age_minutes", DEFAULT_MAX_EVENT_AGE_SECONDS // 60),
            alerts_per_account_per_hour=_positive_int(doc, "alerts_per_account_per_hour", 200),
            intended=intended,
            deployed_trail=_str_map(doc, "trailguard_trail", {}),
            organization_accounts=_accounts_or_none(doc, "organization_accounts"),
            **_callers(doc),
        )


def _callers(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The ``callers`` section: ``iac_principals`` (account-pinned ARNs or patterns) and ``modes``."""
    sec = doc.get("callers", {})
    if sec is None:
        sec = {}
    if not isinstance(sec, Mapping):
        raise RuntimeConfigError("runtime config: callers: expected an object")
    unknown = sorted(str(k) for k in set(sec) - {"iac_principals", "modes"})
    if unknown:
        raise RuntimeConfigError(f"runtime config: callers: unknown keys {unknown}")
    patterns = sec.get("iac_principals", []) or []
    if not isinstance(patterns, list):
        raise RuntimeConfigError("runtime config: callers.iac_principals: expected a list of strings")
    for pat in patterns:
        err = iac_principal_error(pat)
        if err:
            raise RuntimeConfigError(f"runtime config: callers.iac_principals: {err}")
    modes = sec.get("modes", {})
    if modes is None:
        modes = {}
    if not isinstance(modes, Mapping):
        raise RuntimeConfigError("runtime config: callers.modes: expected an object of rule id or '*' -> kinds")
    parsed: dict[str, dict[str, str]] = {}
    for key, per_kind in modes.items():
        where = f"runtime config: callers.modes[{key!r}]"
        if not isinstance(key, str) or not (key == "*" or re.fullmatch(r"[a-z0-9][a-z0-9-]{2,80}", key)):
            raise RuntimeConfigError(f"{where}: expected a rule id or '*'")
        if not isinstance(per_kind, Mapping):
            raise RuntimeConfigError(f"{where}: expected an object of caller kind -> mode")
        for kind, mode in per_kind.items():
            if kind not in CALLER_KINDS:
                raise RuntimeConfigError(f"{where}: unknown caller kind {kind!r} (one of {CALLER_KINDS})")
            if mode not in CALLER_MODES:
                raise RuntimeConfigError(f"{where}.{kind}: expected one of {CALLER_MODES}, got {mode!r}")
            if kind == "trailguard" and mode != "notice":
                raise RuntimeConfigError(f"{where}.trailguard: trailguard's own calls are always 'notice' (loop guard)")
        parsed[key] = dict(per_kind)
    return {"iac_principal_patterns": tuple(patterns), "caller_modes": parsed}


def _account_or_none(doc: Mapping[str, Any], key: str) -> str | None:
    v = doc.get(key)
    if v is not None and not (isinstance(v, str) and re.fullmatch(r"\d{12}", v)):
        raise RuntimeConfigError(f"runtime config: {key}: expected a 12-digit account ID or null")
    return v


def _accounts_or_none(doc: Mapping[str, Any], key: str) -> frozenset[str] | None:
    v = doc.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(a, str) and re.fullmatch(r"[0-9]{12}", a) for a in v):
        raise RuntimeConfigError(f"runtime config: {key}: expected a list of 12-digit account IDs or null")
    return frozenset(v)


def _positive_int(doc: Mapping[str, Any], key: str, default: int) -> int:
    v = doc.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise RuntimeConfigError(f"runtime config: {key}: expected a positive integer")
    return v


def _bool(doc: Mapping[str, Any], key: str, default: bool) -> bool:
    v = doc.get(key, default)
    if not isinstance(v, bool):
        raise RuntimeConfigError(f"runtime config: {key}: expected true or false")
    return v


def _str_list(doc: Mapping[str, Any], key: str) -> list[str]:
    v = doc.get(key, [])
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise RuntimeConfigError(f"runtime config: {key}: expected a list of strings")
    return list(v)


def _str_map(doc: Mapping[str, Any], key: str, default: dict[str, str]) -> dict[str, str]:
    v = doc.get(key, default)
    if not isinstance(v, Mapping) or not all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        raise RuntimeConfigError(f"runtime config: {key}: expected a map of strings")
    return dict(v)
