"""EventBridge event-pattern matching, and an index of rules by source and event name.

Hand-written because the Lambda runtime needs a small, dependency-free
matcher (the reconciliation path matches inside Lambda, where moto cannot be
shipped). Its faithfulness is checked by a differential test against moto's
``EventPattern`` (tests/engine/test_matcher.py), which follows the
EventBridge documentation for: literal values, arrays, nested objects,
``prefix``, ``suffix``, ``equals-ignore-case``, ``anything-but``, ``numeric``,
``exists``, ``cidr``, ``wildcard`` and ``$or``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Generic, TypeVar

_MISSING = object()
T = TypeVar("T")


class PatternError(ValueError):
    """The event pattern is not valid EventBridge syntax."""


def matches(pattern: Mapping[str, Any], event: Any) -> bool:
    """True if ``event`` matches the EventBridge ``pattern``."""
    if not isinstance(event, Mapping):
        return False
    return _match_object(pattern, event)


def _match_object(pattern: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    for key, sub in pattern.items():
        if key == "$or":
            if not isinstance(sub, list) or not any(_match_object(alt, obj) for alt in sub):
                return False
            continue
        value = obj.get(key, _MISSING)
        if isinstance(sub, Mapping):
            if not _match_nested(sub, value):
                return False
        elif isinstance(sub, list):
            if not _match_leaf(sub, value):
                return False
        else:
            raise PatternError(f"pattern value for {key!r} must be an array or object, got {sub!r}")
    return True


def _match_nested(sub: Mapping[str, Any], value: Any) -> bool:
    if isinstance(value, Mapping):
        return _match_object(sub, value)
    if isinstance(value, list):
        return any(isinstance(v, Mapping) and _match_object(sub, v) for v in value)
    # A missing or scalar field only satisfies a nested pattern whose leaves are all exists:false.
    return _only_absent(sub)


def _only_absent(sub: Mapping[str, Any]) -> bool:
    for key, v in sub.items():
        if key == "$or":
            if not isinstance(v, list) or not any(_only_absent(alt) for alt in v):
                return False
        elif isinstance(v, Mapping):
            if not _only_absent(v):
                return False
        elif not (isinstance(v, list) and any(isinstance(f, Mapping) and f.get("exists") is False for f in v)):
            return False
    return True


def _match_leaf(filters: Sequence[Any], value: Any) -> bool:
    values: list[Any]
    if isinstance(value, Mapping):
        value = _MISSING  # an object is not a leaf: EventBridge flattens it, the leaf path does not exist
    if value is _MISSING:
        return any(isinstance(f, Mapping) and f.get("exists") is False for f in filters)
    values = value if isinstance(value, list) else [value]
    for f in filters:
        if isinstance(f, Mapping):
            if _match_filter(f, value, values):
                return True
        else:
            for v in values:
                if _literal_eq(f, v):
                    return True
    return False


def _literal_eq(pat: Any, v: Any) -> bool:
    if pat is None or isinstance(pat, bool) or isinstance(v, bool) or v is None:
        return pat is v or (pat == v and type(pat) is type(v))
    if isinstance(pat, (int, float)) and isinstance(v, (int, float)):
        return float(pat) == float(v)
    return isinstance(pat, str) and isinstance(v, str) and pat == v


def _match_filter(f: Mapping[str, Any], raw: Any, values: list[Any]) -> bool:
    if len(f) != 1:
        # numeric is the only filter with one key but many operands; others are single-key objects.
        raise PatternError(f"content filter must have exactly one key: {dict(f)!r}")
    ((op, arg),) = f.items()
    if op == "exists":
        return bool(arg)  # the field is present here (missing handled by the caller)
    if op == "anything-but":
        return any(_anything_but(arg, v) for v in values)
    if op == "numeric":
        return any(_numeric(arg, v) for v in values)
    return any(_string_op(op, arg, v) for v in values)


def _string_op(op: str, arg: Any, v: Any) -> bool:
    if not isinstance(v, str):
        return False
    if op == "prefix":
        if isinstance(arg, Mapping):
            inner = arg.get("equals-ignore-case")
            return isinstance(inner, str) and v.lower().startswith(inner.lower())
        return isinstance(arg, str) and v.startswith(arg)
    if op == "suffix":
        if isinstance(arg, Mapping):
            inner = arg.get("equals-ignore-case")
            return isinstance(inner, str) and v.lower().endswith(inner.lower())
        return isinstance(arg, str) and v.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(arg, str) and v.lower() == arg.lower()
    if op == "wildcard":
        return isinstance(arg, str) and _wildcard_re(arg).fullmatch(v) is not None
    if op == "cidr":
        return _in_cidr(arg, v)
    raise PatternError(f"unknown content filter {op!r}")


def _anything_but(arg: Any, v: Any) -> bool:
    if isinstance(arg, Mapping):
        ((op, inner),) = arg.items()
        if op in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            if not isinstance(v, str):
                return True
            inners = inner if isinstance(inner, list) else [inner]
            return not any(_string_op(op, i, v) for i in inners)
        raise PatternError(f"unsupported anything-but operator {op!r}")
    excluded = arg if isinstance(arg, list) else [arg]
    return not any(_literal_eq(x, v) for x in excluded)


_NUM_OPS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _numeric(arg: Any, v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not isinstance(arg, list) or len(arg) % 2:
        return False
    for i in range(0, len(arg), 2):
        op, bound = arg[i], arg[i + 1]
        fn = _NUM_OPS.get(op)
        if fn is None or isinstance(bound, bool) or not isinstance(bound, (int, float)):
            raise PatternError(f"bad numeric filter {arg!r}")
        if not fn(float(v), float(bound)):
            return False
    return True


def _in_cidr(arg: Any, v: str) -> bool:
    try:
        net = _network(str(arg))
        return ipaddress.ip_address(v) in net
    except ValueError:
        return False


@lru_cache(maxsize=256)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


@lru_cache(maxsize=512)
def _wildcard_re(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


# --------------------------------------------------------------------------- #
# Index
# --------------------------------------------------------------------------- #


def _literal_strings(filters: Any) -> list[str] | None:
    """The literal strings of a leaf, or None if the leaf uses any content filter."""
    if not isinstance(filters, list) or not filters:
        return None
    if all(isinstance(f, str) for f in filters):
        return list(filters)
    return None


def _event_names(detail: Mapping[str, Any]) -> list[str] | None:
    """Literal eventNames every match must have, or None if the pattern does not pin them.

    ``eventName`` beside a ``$or`` is still a conjunct; inside ``$or`` the
    union over the alternatives applies only if every alternative pins it.
    """
    names = _literal_strings(detail.get("eventName"))
    if names is not None:
        return names
    alts = detail.get("$or")
    if isinstance(alts, list) and alts:
        union: list[str] = []
        for alt in alts:
            sub = _event_names(alt) if isinstance(alt, Mapping) else None
            if sub is None:
                return None
            union.extend(n for n in sub if n not in union)
        return union
    return None


class PatternIndex(Generic[T]):
    """Candidates for an event, looked up by ``source`` and ``detail.eventName``.

    Each item is filed under every (source, eventName) literal pair of its
    pattern. Patterns that use ``$or`` at the top level or non-literal filters
    on those fields are filed under broader keys, so a lookup never misses a
    pattern that could match: the index narrows, ``matches`` decides.
    """

    def __init__(self, items: Iterable[tuple[Mapping[str, Any], T]]) -> None:
        self._by_pair: dict[tuple[str, str], list[tuple[Mapping[str, Any], T]]] = {}
        self._by_source: dict[str, list[tuple[Mapping[str, Any], T]]] = {}
        self._anywhere: list[tuple[Mapping[str, Any], T]] = []
        for pattern, item in items:
            self._add(pattern, item)

    def _add(self, pattern: Mapping[str, Any], item: T) -> None:
        entry = (pattern, item)
        if "$or" in pattern:
            self._anywhere.append(entry)
            return
        sources = _literal_strings(pattern.get("source"))
        detail = pattern.get("detail")
        names = _event_names(detail) if isinstance(detail, Mapping) else None
        if sources is None:
            self._anywhere.append(entry)
        elif names is None:
            for s in sources:
                self._by_source.setdefault(s, []).append(entry)
        else:
            for s in sources:
                for n in names:
                    self._by_pair.setdefault((s, n), []).append(entry)

    def candidates(self, envelope: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], T]]:
        source = envelope.get("source")
        detail = envelope.get("detail")
        name = detail.get("eventName") if isinstance(detail, Mapping) else None
        out: list[tuple[Mapping[str, Any], T]] = []
        if isinstance(source, str):
            if isinstance(name, str):
                out.extend(self._by_pair.get((source, name), ()))
            out.extend(self._by_source.get(source, ()))
        out.extend(self._anywhere)
        return out

    def match(self, envelope: Mapping[str, Any]) -> list[T]:
        """Items whose pattern matches ``envelope``, in insertion order of lookup buckets."""
        return [item for pattern, item in self.candidates(envelope) if matches(pattern, envelope)]
