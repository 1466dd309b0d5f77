"""CIDR semantics for network exposure (issue 14): what a set of source ranges lets in, judged by meaning.

A string test (``cidr == "0.0.0.0/0"``) is dodged by any legal spelling of the same range: a ``/0`` with host
bits (``10.1.2.3/0``), ``0::/0`` or ``0:0:0:0:0:0:0:0/0``, the IPv4-mapped block ``::ffff:0:0/96``, or a set of
ranges that together cover the internet (``0.0.0.0/1`` + ``128.0.0.0/1``). Here every range is parsed with
:mod:`ipaddress` and judged on the addresses it admits:

* **the whole internet**: the range (IPv4-mapped IPv6 folded into IPv4) admits every public address of its
  family;
* **a very wide public range**: an IPv4 range of prefix ``/8`` or shorter (:data:`WIDE_V4_PREFIX`, 16.7 million
  addresses or more), or an IPv6 range of prefix ``/16`` or shorter (:data:`WIDE_V6_PREFIX`; regional registries
  hold /12s, providers /19 to /32, so nobody's own network is that wide), that contains public addresses.
  ``10.0.0.0/8`` is private and never wide; ``52.0.0.0/8`` is a public /8 and is;
* **part of a covering set**: ranges of one request that open the same port to the same protocol and together
  admit every public address of a family (eight public /8s do not: they are eight wide ranges, each flagged
  on its own, not the internet).

"Public" means outside the special-purpose blocks that are never routed on the internet (RFC 6890: private,
shared, loopback, link-local, documentation, benchmarking, multicast, reserved); for IPv6, inside global
unicast ``2000::/3`` (documentation ``2001:db8::/32`` excluded). A private range never fires, however wide.

Pure functions, no AWS calls: the decision (offline) and the remediation (on live rules) share them, so what is
"offending" is the same on both sides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

Net = ipaddress.IPv4Network | ipaddress.IPv6Network

#: IPv4 ranges of this prefix length or shorter that contain public addresses are "very wide public".
WIDE_V4_PREFIX = 8
#: IPv6 ranges of this prefix length or shorter that overlap global unicast are "very wide public".
WIDE_V6_PREFIX = 16

_NON_PUBLIC_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_NON_PUBLIC_V6 = (ipaddress.IPv6Network("2001:db8::/32"),)
#: IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``): a rule on them speaks about IPv4 sources.
MAPPED_V4 = ipaddress.IPv6Network("::ffff:0:0/96")
_TCP_UDP = frozenset({"tcp", "udp"})


def _span(net: Net) -> tuple[int, int]:
    return int(net.network_address), int(net.broadcast_address)


def _exclude(whole: Net, holes: Iterable[Net]) -> tuple[tuple[int, int], ...]:
    """``whole`` minus ``holes``, as sorted disjoint (first, last) address intervals."""
    blocks = [_span(whole)]
    for hole in holes:
        h0, h1 = _span(hole)
        nxt: list[tuple[int, int]] = []
        for b0, b1 in blocks:
            if h1 < b0 or h0 > b1:
                nxt.append((b0, b1))
                continue
            if b0 < h0:
                nxt.append((b0, h0 - 1))
            if h1 < b1:
                nxt.append((h1 + 1, b1))
        blocks = nxt
    return tuple(sorted(blocks))


#: The public address space of each family, as sorted disjoint (first, last) intervals.
PUBLIC: dict[int, tuple[tuple[int, int], ...]] = {
    4: _exclude(ipaddress.IPv4Network("0.0.0.0/0"), _NON_PUBLIC_V4),
    6: _exclude(_GLOBAL_UNICAST_V6, _NON_PUBLIC_V6),
}


def parse(cidr: object) -> Net | None:
    """The range ``cidr`` admits (host bits dropped, as AWS does), or None when it is not a CIDR."""
    return _parse(cidr.strip()) if isinstance(cidr, str) and "/" in cidr else None


@lru_cache(maxsize=4096)
def _parse(cidr: str) -> Net | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def normalise(cidr: object) -> str:
    """The canonical spelling (``10.1.2.3/0`` -> ``0.0.0.0/0``, ``0::/0`` -> ``::/0``), or the value as given."""
    net = parse(cidr)
    return str(net) if net is not None else (cidr.strip() if isinstance(cidr, str) else "")


def same_range(a: object, b: object) -> bool:
    """Two spellings of the same range (a rule written ``10.1.2.3/0`` is the one AWS stores as ``0.0.0.0/0``)."""
    na, nb = parse(a), parse(b)
    if na is None or nb is None:
        return isinstance(a, str) and isinstance(b, str) and a.strip() == b.strip()
    return na == nb


def _as_v4(net: Net) -> list[Net]:
    """The IPv4 view of a range: IPv4 itself, the IPv4 block an IPv4-mapped IPv6 range speaks about, or none."""
    if net.version == 4:
        return [net]
    m0, m1 = _span(MAPPED_V4)
    n0, n1 = _span(net)
    if m0 <= n0 and n1 <= m1:
        return [ipaddress.IPv4Network((n0 - m0, net.prefixlen - MAPPED_V4.prefixlen))]
    if n0 <= m0 and m1 <= n1:
        return [ipaddress.IPv4Network("0.0.0.0/0")]
    return []


def views(net: Net) -> list[tuple[int, Net]]:
    """``(family, range)`` pairs a rule on ``net`` admits: IPv6 itself, plus IPv4 through the mapped block."""
    out: list[tuple[int, Net]] = [(4, v) for v in _as_v4(net)]
    if net.version == 6:
        out.append((6, net))
    return out


@lru_cache(maxsize=8192)
def _public_in(family: int, net: Net) -> int:
    """How many public addresses of ``family`` the range admits (0: private, reserved or documentation only)."""
    n0, n1 = _span(net)
    return sum(max(0, min(n1, b1) - max(n0, b0) + 1) for b0, b1 in PUBLIC[family])


def is_public(net: Net) -> bool:
    """True when the range admits at least one public address (either family)."""
    return any(_public_in(fam, v) for fam, v in views(net))


def covers_internet(family: int, nets: Iterable[Net]) -> bool:
    """True when the ranges of ``family`` (already in that family's view) together admit every public address."""
    spans = sorted(_span(n) for n in nets if n.version == family)
    if not spans:
        return False
    merged: list[tuple[int, int]] = []
    for a0, a1 in spans:
        if merged and a0 <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], a1))
        else:
            merged.append((a0, a1))
    return all(any(m0 <= b0 and b1 <= m1 for m0, m1 in merged) for b0, b1 in PUBLIC[family])


@lru_cache(maxsize=8192)
def reach(net: Net) -> str | None:
    """Why one range alone is an internet exposure, or None (a narrow or private range)."""
    found: list[str] = []
    for fam, v in sorted(views(net), key=lambda fv: -fv[0]):
        label = "IPv4" if fam == 4 else "IPv6"
        mapped = " (IPv4-mapped)" if fam == 4 and net.version == 6 else ""
        if found:
            break  # ::/0 is the IPv6 internet; its IPv4-mapped part adds nothing to say
        if covers_internet(fam, [v]):
            found.append(f"the whole {label} internet{mapped}")
        elif v.prefixlen <= (WIDE_V4_PREFIX if fam == 4 else WIDE_V6_PREFIX) and _public_in(fam, v):
            found.append(f"a very wide public {label} range (/{v.prefixlen}){mapped}")
    return "; ".join(found) or None


@dataclass(frozen=True, slots=True)
class Source:
    """One (protocol, port span, source range) a rule admits. ``protocol`` is normalised (tcp, udp, icmp, -1)."""

    protocol: str
    from_port: int
    to_port: int
    cidr: str


#: At most this many distinct port segments per protocol are judged exactly for covering sets. A request with
#: more (each range on its own port span) is judged coarsely, ports ignored: a cover found that way is
#: reported with :data:`UNSURE` (an alert, never a revoke). This bounds the work a crafted request can cause:
#: the exact judgement is O(segments x ranges), the coarse one O(ranges log ranges).
MAX_SEGMENTS = 32
#: Prefix of the reason of a source that covers the internet only when ports are ignored.
UNSURE = "possibly: "
_PUBLIC_TOTAL = {fam: sum(b1 - b0 + 1 for b0, b1 in blocks) for fam, blocks in PUBLIC.items()}


def _segments(members: Sequence[tuple[int, Source]], proto: str) -> list[list[int]] | None:
    """Index groups of sources that admit one same port (or the whole protocol) for ``proto``; None when the
    request has more than :data:`MAX_SEGMENTS` distinct port segments."""
    if proto not in _TCP_UDP:
        return [[i for i, _ in members]]
    spans = {i: ((0, 65535) if s.protocol == "-1" else (s.from_port, s.to_port)) for i, s in members}
    cuts = sorted({lo for lo, _ in spans.values()} | {hi + 1 for _, hi in spans.values()})
    if len(cuts) > MAX_SEGMENTS:
        return None
    groups: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    for a in cuts:
        group = [i for i, (lo, hi) in spans.items() if lo <= a <= hi]
        key = tuple(group)
        if group and key not in seen:
            seen.add(key)
            groups.append(group)
    return groups


def _covering(nets: dict[int, Net | None], group: Sequence[int], fam: int) -> list[int]:
    """The sources of ``group`` with public addresses of ``fam``, when together they cover that internet."""
    family_nets: list[Net] = []
    used: list[int] = []
    for i in group:
        net = nets[i]
        if net is None:
            continue
        for vf, v in views(net):
            if vf == fam and _public_in(fam, v):
                family_nets.append(v)
                used.append(i)
    if len(set(used)) < 2 or sum(_public_in(fam, v) for v in family_nets) < _PUBLIC_TOTAL[fam]:
        return []  # cheap necessary condition first: not enough public addresses to cover
    return sorted(set(used)) if covers_internet(fam, family_nets) else []


def judge(sources: Sequence[Source]) -> dict[int, str]:
    """Index -> why, for each source that opens its ports to the internet: alone (the whole internet or a
    very wide public range) or as part of a set of ranges that admit the same port and together cover the
    internet of one family. Sources that admit no public address are never named (they cover nothing public).
    A cover found only with ports ignored (more than :data:`MAX_SEGMENTS` port segments) starts with
    :data:`UNSURE`.
    """
    nets = {i: parse(s.cidr) for i, s in enumerate(sources)}
    out: dict[int, str] = {}
    for i, net in nets.items():
        if net is not None:
            why = reach(net)
            if why:
                out[i] = why
    public = [(i, s) for i, s in enumerate(sources) if (n := nets[i]) is not None and is_public(n)]
    for proto in sorted({s.protocol for _, s in public}):
        members = [(i, s) for i, s in public if s.protocol in (proto, "-1")]
        groups = _segments(members, proto)
        prefix = ""
        if groups is None:
            groups, prefix = [[i for i, _ in members]], UNSURE
        for group in groups:
            for fam in (4, 6):
                used = _covering(nets, group, fam)
                label = "IPv4" if fam == 4 else "IPv6"
                for i in used:
                    out.setdefault(
                        i, f"{prefix}with {len(used) - 1} other range(s) of the request, the whole {label} internet"
                    )
    return out


def sure(verdict: dict[int, str]) -> dict[int, str]:
    """The part of a :func:`judge` verdict that may be revoked (covers judged port by port)."""
    return {i: why for i, why in verdict.items() if not why.startswith(UNSURE)}
