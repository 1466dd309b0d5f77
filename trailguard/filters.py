"""Selection shared by ``replay`` and ``hunt``: time window, rules, minimum severity, account, region, principal.

Event filters (time, account, region, principal) select input events: ``replay`` tests each record before it
is judged, ``hunt`` turns them into a WHERE clause on the ``cloudtrail`` view (values bound, never pasted).
Finding filters (rule, severity) select the catalog rules ``replay`` judges with.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from trailguard_engine.model import SEVERITIES, Rule

from trailguard.suggest import did_you_mean

#: Lowest first, as users type them.
SEVERITY_NAMES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
_RANK: dict[str, int] = {s: len(SEVERITIES) - i for i, s in enumerate(SEVERITIES)}  # CRITICAL 5 ... INFO 1
_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_GLOB_CHARS = frozenset("*?[")
#: How CloudTrail writes eventTime; strings in this form compare in time order.
_CT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class FilterError(ValueError):
    """A filter value that cannot be used; the message names the option and how to fix it."""


def severity_rank(severity: str) -> int:
    """CRITICAL 5, HIGH 4, MEDIUM 3, LOW 2, INFO 1; unknown 0 (never at or above anything)."""
    return _RANK.get(severity.upper(), 0)


def parse_severity(value: str, option: str = "--severity") -> str:
    """``high`` -> ``HIGH``; a usage error names the choices."""
    if value.lower() not in SEVERITY_NAMES:
        raise FilterError(
            f"{option} {value!r}: expected one of {', '.join(SEVERITY_NAMES)}{did_you_mean(value.lower(), SEVERITY_NAMES)}"
        )
    return value.upper()


def parse_time(value: str, option: str, now: datetime) -> datetime:
    """An ISO 8601 time (``2024-05-01``, ``2024-05-01T12:00:00Z``) or a time ago (``7d``, ``12h``, ``30m``).

    A time without a zone is UTC, as CloudTrail's eventTime is.
    """
    m = _RELATIVE.match(value)
    if m:
        return now - timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise FilterError(
            f"{option} {value!r}: expected an ISO 8601 time (2024-05-01 or 2024-05-01T12:00:00Z) "
            "or a time ago such as 7d, 12h, 30m"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def cloudtrail_time(moment: datetime) -> str:
    """``moment`` as CloudTrail writes eventTime (UTC, seconds)."""
    return moment.astimezone(UTC).strftime(_CT_FORMAT)


def principal_matches(arn: str, pattern: str) -> bool:
    """An ARN glob (``arn:aws:iam::*:role/ci-*``) when ``pattern`` has ``*?[``, else a substring."""
    if _GLOB_CHARS.intersection(pattern):
        return fnmatch.fnmatchcase(arn, pattern)
    return pattern in arn


@dataclass(frozen=True)
class EventFilter:
    """Which input events to keep. Empty tuples and None mean "any"."""

    since: str | None = None  # CloudTrail eventTime form, inclusive
    until: str | None = None  # exclusive
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    principals: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.since or self.until or self.accounts or self.regions or self.principals)

    def matches(self, obj: Any) -> bool:
        """True when a bare record or EventBridge envelope is selected (non-objects pass: replay rejects them)."""
        if type(obj) is not dict:
            return True
        rec = obj["detail"] if "detail" in obj and "detail-type" in obj and type(obj["detail"]) is dict else obj
        if self.since or self.until:
            t = _event_time(rec.get("eventTime"))
            if t is None or (self.since and t < self.since) or (self.until and t >= self.until):
                return False
        if self.accounts:
            account = rec.get("recipientAccountId") or obj.get("account")
            if account not in self.accounts:
                return False
        if self.regions and rec.get("awsRegion", obj.get("region")) not in self.regions:
            return False
        if self.principals:
            ident = rec.get("userIdentity")
            arn = ident.get("arn") if type(ident) is dict else None
            if not isinstance(arn, str) or not any(principal_matches(arn, p) for p in self.principals):
                return False
        return True

    def sql(self) -> tuple[str, dict[str, str]]:
        """A WHERE condition on the ``cloudtrail`` view and its bound values ("" when nothing is selected)."""
        parts: list[str] = []
        values: dict[str, str] = {}
        if self.since:
            parts.append("eventtime >= $tg_since")
            values["tg_since"] = self.since
        if self.until:
            parts.append("eventtime < $tg_until")
            values["tg_until"] = self.until
        for column, items in (("account", self.accounts), ("region", self.regions)):
            if items:
                names = [f"tg_{column}_{i}" for i in range(len(items))]
                parts.append(f"{column} IN ({', '.join('$' + n for n in names)})")
                values.update(zip(names, items, strict=True))
        if self.principals:
            alts = []
            for i, p in enumerate(self.principals):
                name = f"tg_principal_{i}"
                if _GLOB_CHARS.intersection(p):
                    alts.append(f"useridentity.arn GLOB ${name}")
                else:
                    alts.append(f"contains(useridentity.arn, ${name})")
                values[name] = p
            parts.append("(" + " OR ".join(alts) + ")")
        return " AND ".join(parts), values


def _event_time(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if len(value) == 20 and value[19] == "Z":
        return value  # CloudTrail's own form: compare as text
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return cloudtrail_time(parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed)


def event_filter(
    *,
    since: str | None,
    until: str | None,
    accounts: Sequence[str] = (),
    regions: Sequence[str] = (),
    principals: Sequence[str] = (),
    now: datetime | None = None,
) -> EventFilter:
    """Parse the CLI values; raise :class:`FilterError` with a fix hint."""
    moment = now or datetime.now(UTC)
    lo = parse_time(since, "--since", moment) if since else None
    hi = parse_time(until, "--until", moment) if until else None
    if lo is not None and hi is not None and lo >= hi:
        raise FilterError(f"--since {since!r} is not before --until {until!r}: nothing can match")
    for a in accounts:
        if not re.fullmatch(r"\d{12}", a):
            raise FilterError(f"--account {a!r}: expected a 12-digit AWS account ID (quote it in shells and YAML)")
    return EventFilter(
        since=cloudtrail_time(lo) if lo else None,
        until=cloudtrail_time(hi) if hi else None,
        accounts=tuple(accounts),
        regions=tuple(regions),
        principals=tuple(principals),
    )


def select_rules(rules: Iterable[Rule], rule_ids: Sequence[str] = (), min_severity: str | None = None) -> list[Rule]:
    """The rules named by ``--rule`` (all when none) at or above ``--severity``; unknown ids are a usage error."""
    rules = list(rules)
    known = {r.id for r in rules}
    for rid in rule_ids:
        if rid not in known:
            raise FilterError(f"--rule {rid!r}: no such rule{did_you_mean(rid, known)} (see `trailguard rules`)")
    wanted = set(rule_ids)
    floor = severity_rank(min_severity) if min_severity else 0
    return [r for r in rules if (not wanted or r.id in wanted) and severity_rank(r.severity) >= floor]


def at_or_above(severity: str, floor: str) -> bool:
    """``severity`` is at least ``floor`` (both catalog names, any case)."""
    return severity_rank(severity) >= severity_rank(floor)


def record_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The CloudTrail record of a bare record or an EventBridge envelope."""
    detail = obj.get("detail")
    return detail if "detail-type" in obj and isinstance(detail, Mapping) else obj


# --------------------------------------------------------------------------- #
# The CLI options of these filters, shared by replay and hunt (one wording, one parser).
# --------------------------------------------------------------------------- #
SinceOption = Annotated[str | None, typer.Option("--since", help="Events at or after: 2024-05-01T00:00:00Z, 7d, 12h.")]
UntilOption = Annotated[str | None, typer.Option("--until", help="Events before: ISO 8601 or a time ago (1d).")]
AccountOption = Annotated[list[str] | None, typer.Option("--account", help="Only this account ID; repeatable.")]
RegionOption = Annotated[list[str] | None, typer.Option("--region", help="Only this region; repeatable.")]
PrincipalOption = Annotated[
    list[str] | None,
    typer.Option("--principal", help="Only principals whose ARN contains this, or matches this glob; repeatable."),
]
