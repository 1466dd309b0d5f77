"""Intended exposure as data: public ports, public-website buckets, public-AMI publishing accounts.

Config section ``intended_exposure`` (``trailguard/config.py``) is copied into the runtime
document; :class:`IntendedExposure` is its parsed form. Decisions use what the event can tell
(the account); remediations add what only live state tells (the security group's VPC and tags,
the bucket's tags).

Port allowances are protocol-aware ``PORT[-PORT]/PROTO`` specs (``51820/udp``, ``500/udp``,
``60000-60010/udp``, ``25/tcp``). The global ``allowed_public_ports`` (default 80 and 443) stay
protocol-agnostic integers, as they always were.

Tag allowances are bounded on purpose: a tag is controlled by whoever administers the account,
the very attacker trailguard defends against. A tag value may open at most ``tag_max_ports``
ports in total, never a port in ``tag_forbidden_ports`` (default 22 and 3389), and a value that
does not parse strictly, entry by entry, is ignored as a whole with the reason: a bad tag never
widens anything. Config allowances (per account, per VPC) are the operator's and are not bounded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PROTOCOLS = ("tcp", "udp")
#: ``PORT/PROTO`` or ``LO-HI/PROTO`` (tcp or udp only; no spaces inside an entry).
#: ASCII digits only: ``\d`` would accept other scripts' digits, which ``int`` happily converts.
_SPEC = re.compile(r"^([0-9]{1,5})(?:-([0-9]{1,5}))?/(tcp|udp)$")
DEFAULT_PORT_TAG = "trailguard:allow-public-ports"
DEFAULT_TAG_MAX_PORTS = 16
DEFAULT_TAG_FORBIDDEN_PORTS = frozenset({22, 3389})
DEFAULT_WEBSITE_TAG: Mapping[str, str] = {"trailguard:public-website": "true"}
#: At most this many entries in one tag value (a tag value is at most 256 characters anyway).
MAX_TAG_ENTRIES = 16


@dataclass(frozen=True, slots=True, order=True)
class PortRange:
    """``lo``..``hi`` (inclusive) on ``proto`` (tcp or udp)."""

    proto: str
    lo: int
    hi: int

    @property
    def size(self) -> int:
        return self.hi - self.lo + 1

    def __str__(self) -> str:
        return f"{self.lo}/{self.proto}" if self.lo == self.hi else f"{self.lo}-{self.hi}/{self.proto}"


def parse_port_spec(text: str) -> PortRange:
    """One ``PORT[-PORT]/PROTO`` entry; raise ValueError saying what is wrong."""
    m = _SPEC.fullmatch(text.strip().lower()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{text!r} is not PORT/PROTO or LO-HI/PROTO with PROTO tcp or udp")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) is not None else lo
    if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or lo > hi:
        raise ValueError(f"{text!r}: ports must be 0-65535 with LO <= HI")
    return PortRange(m.group(3), lo, hi)


def parse_port_specs(values: Iterable[str]) -> tuple[PortRange, ...]:
    """Every entry of ``values``; raise ValueError on the first bad one."""
    return tuple(sorted({parse_port_spec(v) for v in values}))


def covers(proto: str, lo: int, hi: int, global_ports: Iterable[int], ranges: Iterable[PortRange]) -> bool:
    """True when every port ``lo..hi`` of ``proto`` is allowed by ``global_ports`` (any protocol) or ``ranges``.

    Only tcp and udp can be covered: all traffic (``-1``) and port-less protocols never are.
    """
    if proto not in PROTOCOLS or lo > hi:
        return False
    spans = sorted([(p, p) for p in set(global_ports)] + [(r.lo, r.hi) for r in ranges if r.proto == proto])
    need = lo
    for a, b in spans:
        if a > need:
            break
        need = max(need, b + 1)
        if need > hi:
            return True
    return need > hi


@dataclass(frozen=True, slots=True)
class TagAllowance:
    """What a ``trailguard:allow-public-ports`` tag allows, or why it allows nothing."""

    ranges: tuple[PortRange, ...] = ()
    ignored: str = ""

    def describe(self, key: str) -> str:
        if self.ignored:
            return f"tag {key} ignored: {self.ignored}"
        if self.ranges:
            return f"tag {key}={','.join(map(str, self.ranges))}"
        return ""


@dataclass(frozen=True, slots=True)
class IntendedExposure:
    """The parsed ``intended_exposure`` section of the runtime document."""

    ports_by_account: Mapping[str, tuple[PortRange, ...]] = field(default_factory=dict)
    ports_by_vpc: Mapping[str, tuple[PortRange, ...]] = field(default_factory=dict)
    port_tag: str = DEFAULT_PORT_TAG
    tag_max_ports: int = DEFAULT_TAG_MAX_PORTS
    tag_forbidden_ports: frozenset[int] = DEFAULT_TAG_FORBIDDEN_PORTS
    website_tag: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_WEBSITE_TAG))
    public_ami_accounts: frozenset[str] = frozenset()
    #: Accounts a snapshot or AMI may be shared with (organization members, DR and partner accounts).
    trusted_accounts: frozenset[str] = frozenset()

    def account_ports(self, account: str) -> tuple[PortRange, ...]:
        return self.ports_by_account.get(account, ())

    def vpc_ports(self, vpc_id: str) -> tuple[PortRange, ...]:
        return self.ports_by_vpc.get(vpc_id, ()) if vpc_id else ()

    def tag_ports(self, tags: Mapping[str, str]) -> TagAllowance:
        """The ports a resource's allow tag opens, within the bounds (see the module docstring)."""
        raw = tags.get(self.port_tag)
        if raw is None:
            return TagAllowance()
        entries = [e.strip() for e in str(raw).split(",")]
        if not raw.strip() or any(not e for e in entries):
            return TagAllowance(ignored=f"empty entry in {raw!r}")
        if len(entries) > MAX_TAG_ENTRIES:
            return TagAllowance(ignored=f"more than {MAX_TAG_ENTRIES} entries")
        try:
            ranges = parse_port_specs(entries)
        except ValueError as exc:
            return TagAllowance(ignored=str(exc))
        total = sum(r.size for r in ranges)
        if total > self.tag_max_ports:
            return TagAllowance(
                ignored=f"{total} ports in {raw!r}, more than the {self.tag_max_ports} a tag may allow "
                "(allow wider ranges in config intended_exposure)"
            )
        forbidden = sorted(p for p in self.tag_forbidden_ports for r in ranges if r.lo <= p <= r.hi)
        if forbidden:
            return TagAllowance(
                ignored=f"port(s) {', '.join(map(str, sorted(set(forbidden))))} may not be allowed by tag "
                "(config intended_exposure.tag_forbidden_ports)"
            )
        return TagAllowance(ranges=ranges)

    def is_website(self, tags: Mapping[str, str]) -> str | None:
        """The website tag ``key=value`` the bucket carries, or None."""
        for k, v in self.website_tag.items():
            if tags.get(k) == v:
                return f"{k}={v}"
        return None

    # ------------------------------------------------------------------ #
    @classmethod
    def from_document(cls, doc: object) -> IntendedExposure:
        """Parse ``intended_exposure``; raise ValueError naming the bad field."""
        if doc is None:
            return cls()
        if not isinstance(doc, Mapping):
            raise ValueError("intended_exposure: expected an object")

        def port_map(key: str, id_pattern: str) -> dict[str, tuple[PortRange, ...]]:
            v = doc.get(key) or {}
            if not isinstance(v, Mapping):
                raise ValueError(f"intended_exposure.{key}: expected an object")
            out: dict[str, tuple[PortRange, ...]] = {}
            for ident, specs in v.items():
                if not (isinstance(ident, str) and re.fullmatch(id_pattern, ident)):
                    raise ValueError(f"intended_exposure.{key}: bad key {ident!r}")
                if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
                    raise ValueError(f"intended_exposure.{key}.{ident}: expected a list of PORT/PROTO strings")
                try:
                    out[ident] = parse_port_specs(specs)
                except ValueError as exc:
                    raise ValueError(f"intended_exposure.{key}.{ident}: {exc}") from exc
            return out

        tag = doc.get("allow_public_ports_tag", DEFAULT_PORT_TAG)
        if not isinstance(tag, str) or not tag:
            raise ValueError("intended_exposure.allow_public_ports_tag: expected a tag key")
        limit = doc.get("tag_max_ports", DEFAULT_TAG_MAX_PORTS)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1024:
            raise ValueError("intended_exposure.tag_max_ports: expected an integer 1-1024")
        forbidden = doc.get("tag_forbidden_ports", sorted(DEFAULT_TAG_FORBIDDEN_PORTS))
        if not isinstance(forbidden, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 65535 for p in forbidden
        ):
            raise ValueError("intended_exposure.tag_forbidden_ports: expected a list of ports")
        website = doc.get("public_website_tag", dict(DEFAULT_WEBSITE_TAG))
        if not isinstance(website, Mapping) or not all(
            isinstance(k, str) and k and isinstance(x, str) for k, x in website.items()
        ):
            raise ValueError("intended_exposure.public_website_tag: expected a map of strings")
        amis = doc.get("public_ami_accounts") or []
        if not isinstance(amis, list) or not all(isinstance(a, str) and re.fullmatch(r"[0-9]{12}", a) for a in amis):
            raise ValueError("intended_exposure.public_ami_accounts: expected a list of 12-digit account IDs")
        trusted = doc.get("trusted_accounts") or []
        if not isinstance(trusted, list) or not all(
            isinstance(a, str) and re.fullmatch(r"[0-9]{12}", a) for a in trusted
        ):
            raise ValueError("intended_exposure.trusted_accounts: expected a list of 12-digit account IDs")
        return cls(
            ports_by_account=port_map("public_ports_by_account", r"[0-9]{12}"),
            ports_by_vpc=port_map("public_ports_by_vpc", r"vpc-[0-9a-f]{8,17}"),
            port_tag=tag,
            tag_max_ports=limit,
            tag_forbidden_ports=frozenset(forbidden),
            website_tag=dict(website),
            public_ami_accounts=frozenset(amis),
            trusted_accounts=frozenset(trusted),
        )
