"""EventBridge event-pattern matching and validation, and an index of rules by source and event name.

Hand-written because the Lambda runtime needs a small, dependency-free
matcher (the reconciliation path matches inside Lambda, where moto cannot be
shipped, and no maintained Python port of aws/event-ruler exists). The
reference is EventBridge: the content-filtering documentation and the
documented behaviour of aws/event-ruler, its matching engine.

* **Leaves.** An event is matched leaf by leaf. Arrays are "crushed out"
  (each element, at any nesting depth, is a value at the same path), an empty
  array contributes nothing, and objects are never leaves. ``null`` is a value.
* **Array consistency.** All the fields one match uses must come from the same
  element of any array they share.
* **exists.** ``true`` needs a leaf at the path; ``false`` needs none that is
  consistent with the elements already matched. event-ruler visits fields in
  sorted path order, so ``exists: false`` is judged against the fields that
  sort before it; the same order is used here.
* **Types stay apart.** Booleans are not numbers; ``prefix``, ``suffix``,
  ``wildcard``, ``equals-ignore-case`` and ``cidr`` apply to strings only.
* **Numbers** compare at EventBridge's documented precision: values between
  -5.0e9 and +5.0e9 inclusive, six digits to the right of the decimal point.
  An event number outside that range matches no ``numeric`` filter.
* **Validation.** :func:`validate_pattern` rejects what EventBridge rejects
  (one-element ``$or``, ``**`` in a wildcard, numbers out of range, mixed-type
  ``anything-but`` lists, empty arrays and objects, unknown operators, ...), so a
  catalog that loads can be deployed.

The differential tests (tests/catalog/test_matcher_differential.py) compare
this module with moto's ``EventPattern`` wherever moto follows EventBridge, and
pin every known difference with a test of its own.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: Operators a leaf filter object may use.
OPERATORS = frozenset(
    {"prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists", "cidr", "wildcard"}
)
#: EventBridge's documented numeric range ("between -5.0e9 and +5.0e9 inclusive") and precision
#: ("six digits to the right of the decimal point").
NUMERIC_LIMIT = 5.0e9
NUMERIC_DECIMALS = 6
#: EventBridge rejects a pattern whose ``$or`` expands into more than 1000 combinations.
MAX_COMBINATIONS = 1000
_LOWER = (">", ">=")
_UPPER = ("<", "<=")


class PatternError(ValueError):
    """The event pattern is not valid EventBridge syntax (the message names where)."""


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #
def matches(pattern: Mapping[str, Any], event: Any) -> bool:
    """True if ``event`` matches the EventBridge ``pattern``; raises :class:`PatternError` if it is invalid."""
    if not isinstance(event, Mapping):
        return False
    return compile_pattern(pattern).matches(event)


def validate_pattern(pattern: Any) -> None:
    """Raise :class:`PatternError` (naming the offending path) if EventBridge would reject ``pattern``."""
    _compile(pattern)


def compile_pattern(pattern: Mapping[str, Any]) -> CompiledPattern:
    """The validated, compiled form of ``pattern`` (cached by identity: catalog patterns live for the process)."""
    hit = _CACHE.get(id(pattern))
    if hit is not None and hit[0] is pattern:
        return hit[1]
    compiled = _compile(pattern)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[id(pattern)] = (pattern, compiled)  # holding the pattern keeps its id from being reused
    return compiled


_CACHE: dict[int, tuple[Mapping[str, Any], CompiledPattern]] = {}
_CACHE_MAX = 2048


# --------------------------------------------------------------------------- #
# Compiled form
# --------------------------------------------------------------------------- #
Predicate = Callable[[Any], bool]
#: (array identity, element index) for every array a leaf was reached through.
Trail = tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Field:
    """One leaf path of a pattern and its filters (a value matches if any predicate does)."""

    path: tuple[str, ...]
    predicates: tuple[Predicate, ...]
    absent_ok: bool  # the filters include ``exists: false``
    #: Any of ``predicates`` holds: literal strings looked up in a set, string results of the other filters
    #: memoized (user agents and ARNs repeat; issue 19). Built by :func:`_field`; defaults to the plain scan.
    test: Predicate = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.test is None:
            object.__setattr__(self, "test", _any_of(self.predicates))


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    """A pattern as alternatives (``$or`` expanded), each a conjunction of fields in sorted path order."""

    alternatives: tuple[tuple[Field, ...], ...]

    def matches(self, event: Mapping[str, Any]) -> bool:
        # Fast path: while no path crosses an array, every field has at most one leaf and no trail, so a
        # field holds when its leaf passes the test (or, without a leaf, when ``exists: false`` allows it).
        leaves: dict[tuple[str, ...], Any] = {}
        for fields in self.alternatives:
            simple = True
            for f in fields:
                found = leaves.get(f.path, _UNSEEN)
                if found is _UNSEEN:
                    found = leaves[f.path] = _leaf_of(event, f.path)
                if found is _ARRAY:
                    simple = False
                    break
                if found is _ABSENT:
                    if not f.absent_ok:
                        break
                elif not f.test(found):
                    break
            else:
                return True
            if simple:
                continue
            full = {path: list(_leaves(event, path)) for path in {f.path for f in fields}}
            if _search(fields, 0, {}, full):
                return True
        return False


def _any_of(predicates: Sequence[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda v: any(p(v) for p in predicates)


def _leaf_of(node: Any, path: tuple[str, ...]) -> Any:
    """The one leaf at ``path`` when no array lies on the way: the value, ``_ABSENT``, or ``_ARRAY`` (walk fully)."""
    for step in path:
        if type(node) is dict or isinstance(node, Mapping):
            node = node.get(step, _ABSENT)
            if node is _ABSENT:
                return _ABSENT
        elif isinstance(node, list):
            return _ARRAY
        else:
            return _ABSENT
    if isinstance(node, list):
        return _ARRAY
    if isinstance(node, Mapping):
        return _ABSENT
    return node


def _search(
    fields: Sequence[Field], i: int, chosen: dict[int, int], leaves: Mapping[tuple[str, ...], list[tuple[Any, Trail]]]
) -> bool:
    """Depth-first: pick a leaf for each field (array-consistent with those picked before), in order."""
    if i == len(fields):
        return True
    f = fields[i]
    found = leaves[f.path]
    consistent = [(v, t) for v, t in found if _consistent(t, chosen)]
    for value, trail in consistent:
        if f.test(value):
            merged = chosen
            if trail:
                merged = {**chosen, **dict(trail)}
            if _search(fields, i + 1, merged, leaves):
                return True
    return f.absent_ok and not consistent and _search(fields, i + 1, chosen, leaves)


def _consistent(trail: Trail, chosen: Mapping[int, int]) -> bool:
    return all(chosen.get(array, index) == index for array, index in trail)


def _leaves(node: Any, path: tuple[str, ...], trail: Trail = ()) -> Iterator[tuple[Any, Trail]]:
    """Every leaf value at ``path`` with the array elements it was reached through."""
    if isinstance(node, list):
        for index, element in enumerate(node):
            yield from _leaves(element, path, (*trail, (id(node), index)))
        return
    if not path:
        if not isinstance(node, Mapping):
            yield node, trail
        return
    if isinstance(node, Mapping):
        child = node.get(path[0], _ABSENT)
        if child is not _ABSENT:
            yield from _leaves(child, path[1:], trail)


_ABSENT = object()
_ARRAY = object()
_UNSEEN = object()


# --------------------------------------------------------------------------- #
# Compilation and validation
# --------------------------------------------------------------------------- #
def _compile(pattern: Any) -> CompiledPattern:
    if not isinstance(pattern, Mapping):
        raise PatternError("an event pattern must be a JSON object")
    alternatives = _object(pattern, ())
    out = []
    for alt in alternatives:
        merged: dict[tuple[str, ...], Field] = {}
        for f in alt:
            if f.path in merged:  # the same path in two $or branches' siblings: both must hold
                raise PatternError(f"{'.'.join(f.path)}: the same field appears twice in one combination")
            merged[f.path] = f
        # event-ruler walks an event's fields in the order of their flattened names ("a.b" < "a.c" < "ab")
        out.append(tuple(merged[p] for p in sorted(merged, key=".".join)))
    return CompiledPattern(tuple(out))


def _object(node: Mapping[str, Any], prefix: tuple[str, ...]) -> list[tuple[Field, ...]]:
    """The alternatives of one pattern object: a list of field conjunctions."""
    where = ".".join(prefix) or "pattern"
    if not node:
        raise PatternError(f"{where}: empty objects are not allowed")
    parts: list[list[tuple[Field, ...]]] = []
    for key, sub in node.items():
        if not isinstance(key, str):
            raise PatternError(f"{where}: field names must be strings")
        if key == "$or":
            parts.append(_or(sub, prefix, where))
        elif isinstance(sub, Mapping):
            parts.append(_object(sub, (*prefix, key)))
        elif isinstance(sub, list):
            parts.append([(_field((*prefix, key), sub),)])
        else:
            raise PatternError(f"{'.'.join((*prefix, key))}: must be an object or an array, got {sub!r}")
    total = math.prod(len(p) for p in parts)
    if total > MAX_COMBINATIONS:
        raise PatternError(f"{where}: $or expands into {total} combinations (EventBridge allows {MAX_COMBINATIONS})")
    return [tuple(itertools.chain.from_iterable(combo)) for combo in itertools.product(*parts)]


def _or(sub: Any, prefix: tuple[str, ...], where: str) -> list[tuple[Field, ...]]:
    if not isinstance(sub, list) or len(sub) < 2:
        raise PatternError(f"{where}: $or needs an array of at least 2 objects, got {sub!r}")
    out: list[tuple[Field, ...]] = []
    for alt in sub:
        if not isinstance(alt, Mapping):
            raise PatternError(f"{where}: every $or alternative must be an object, got {alt!r}")
        reserved = OPERATORS.intersection(alt)
        if reserved:
            raise PatternError(f"{where}: {sorted(reserved)[0]} is an operator, not a field name, inside $or")
        out.extend(_object(alt, prefix))
    return out


def _field(path: tuple[str, ...], filters: list[Any]) -> Field:
    where = ".".join(path)
    if not filters:
        raise PatternError(f"{where}: empty arrays are not allowed")
    predicates: list[Predicate] = []
    strings: list[str] = []  # literal strings, also in predicates: the fast test looks them up in a set
    others: list[Predicate] = []
    absent_ok = False
    for f in filters:
        if isinstance(f, Mapping):
            if len(f) != 1:
                raise PatternError(f"{where}: a filter object takes exactly one operator, got {dict(f)!r}")
            ((op, arg),) = f.items()
            if op == "exists":
                if not isinstance(arg, bool):
                    raise PatternError(f"{where}: exists takes true or false, got {arg!r}")
                if arg:
                    predicates.append(_any_value)
                else:
                    absent_ok = True
                continue
            predicates.append(_operator(where, op, arg))
            others.append(predicates[-1])
        elif isinstance(f, list):
            raise PatternError(f"{where}: a match value must be a string, number, true, false or null, not an array")
        else:
            predicates.append(_literal(where, f))
            if isinstance(f, str):
                strings.append(f)
            else:
                others.append(predicates[-1])
    test = _any_value if _any_value in predicates else _combined(frozenset(strings), others)
    return Field(path, tuple(predicates), absent_ok, test)


def _any_value(_: Any) -> bool:
    return True


#: Distinct strings a field's memo keeps before it starts over (bounded memory on a long replay).
MEMO_MAX = 4096


def _combined(strings: frozenset[str], others: list[Predicate]) -> Predicate:
    """``any(p(v) for p in predicates)`` of a field without ``exists: true``, faster (issue 19).

    Literal strings (``failed-critical-action`` lists about 60 event names) are one set lookup; the other
    predicates' answers for string values are memoized (ten user-agent wildcards run once per user agent).
    Only strings are memo keys: ``1``, ``1.0`` and ``True`` are equal as dict keys but not as EventBridge values.
    """
    if not others:
        return lambda v: isinstance(v, str) and v in strings
    rest = _any_of(others)
    memo: dict[str, bool] = {}

    def test(v: Any) -> bool:
        if type(v) is not str:
            return (isinstance(v, str) and v in strings) or rest(v)
        hit = memo.get(v)
        if hit is None:
            if len(memo) >= MEMO_MAX:
                memo.clear()
            hit = memo[v] = v in strings or rest(v)
        return hit

    return test


def _literal(where: str, pat: Any) -> Predicate:
    if pat is None or isinstance(pat, bool):
        return lambda v: v is pat
    if isinstance(pat, str):
        return lambda v: isinstance(v, str) and v == pat
    if isinstance(pat, (int, float)):
        key = _number_key(pat)
        if key is None:  # EventBridge matches such a number by its text only
            return lambda v: _is_number(v) and type(v) is type(pat) and v == pat
        return lambda v: _number_key(v) == key
    raise PatternError(f"{where}: unsupported match value {pat!r}")


def _operator(where: str, op: str, arg: Any) -> Predicate:
    if op in ("prefix", "suffix"):
        return _affix(where, op, arg)
    if op == "equals-ignore-case":
        text = _string(where, op, arg).casefold()
        return lambda v: isinstance(v, str) and v.casefold() == text
    if op == "wildcard":
        rx = _wildcard(where, _string(where, op, arg))
        return lambda v: isinstance(v, str) and rx.fullmatch(v) is not None
    if op == "cidr":
        net = _cidr(where, arg)
        return lambda v: _in_network(v, net)
    if op == "numeric":
        return _numeric(where, arg)
    if op == "anything-but":
        return _anything_but(where, arg)
    raise PatternError(f"{where}: unknown operator {op!r}")


def _string(where: str, op: str, arg: Any) -> str:
    if not isinstance(arg, str):
        raise PatternError(f"{where}: {op} takes a string, got {arg!r}")
    return arg


def _affix(where: str, op: str, arg: Any) -> Predicate:
    fold = False
    if isinstance(arg, Mapping):
        if set(arg) != {"equals-ignore-case"}:
            raise PatternError(f"{where}: {op} takes a string or {{'equals-ignore-case': string}}, got {arg!r}")
        arg, fold = arg["equals-ignore-case"], True
    text = _string(where, op, arg)
    if fold:
        text = text.casefold()
    starts = op == "prefix"

    def test(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        s = v.casefold() if fold else v
        return s.startswith(text) if starts else s.endswith(text)

    return test


def _wildcard(where: str, pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    previous_star = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1] if i + 1 < len(pattern) else ""
            if nxt not in ("*", "\\"):
                raise PatternError(f"{where}: wildcard {pattern!r}: invalid escape at position {i}")
            out.append(re.escape(nxt))
            i += 2
            previous_star = False
            continue
        if ch == "*":
            if previous_star:
                raise PatternError(f"{where}: wildcard {pattern!r}: consecutive '*' at position {i}")
            out.append(".*")
            previous_star = True
        else:
            out.append(re.escape(ch))
            previous_star = False
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _cidr(where: str, arg: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(arg, str) or arg.count("/") != 1:
        raise PatternError(f"{where}: cidr takes an 'address/prefix-length' string, got {arg!r}")
    try:
        net = ipaddress.ip_network(arg, strict=False)
    except ValueError as exc:
        raise PatternError(f"{where}: cidr {arg!r}: {exc}") from exc
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None:
        raise PatternError(f"{where}: cidr {arg!r}: IPv4-mapped IPv6 ranges are not supported")
    return net


def _in_network(v: Any, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    if not isinstance(v, str):
        return False
    try:
        return _address(v) in net
    except ValueError:
        return False


@lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number_key(v: Any) -> int | None:
    """``v`` at EventBridge's precision (millionths, rounded down), or None when out of range or not a number."""
    if not _is_number(v) or not -NUMERIC_LIMIT <= v <= NUMERIC_LIMIT or (isinstance(v, float) and math.isnan(v)):
        return None
    # round first: 0.3 * 1e6 is 299999.99999999994 in binary floating point, and must count as 300000
    scaled: float = round(float(v) * 10**NUMERIC_DECIMALS, 3)
    return math.floor(scaled)


def _bound(where: str, x: Any) -> int:
    if not _is_number(x):
        raise PatternError(f"{where}: numeric bounds must be numbers, got {x!r}")
    key = _number_key(x)
    if key is None:
        raise PatternError(f"{where}: numeric bound {x!r} is outside -5.0e9..5.0e9 (EventBridge's range)")
    if isinstance(x, float) and round(x, NUMERIC_DECIMALS) != x:
        raise PatternError(f"{where}: numeric bound {x!r} has more than {NUMERIC_DECIMALS} digits after the point")
    return key


_CMP: dict[str, Callable[[int, int], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _numeric(where: str, arg: Any) -> Predicate:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise PatternError(f"{where}: numeric takes [op, number] or [lower-op, number, upper-op, number], got {arg!r}")
    ops = arg[0::2]
    for op in ops:
        if op not in _CMP:
            raise PatternError(f"{where}: unknown numeric operator {op!r}")
    bounds = [_bound(where, x) for x in arg[1::2]]
    if len(ops) == 2:
        if ops[0] not in _LOWER or ops[1] not in _UPPER:
            raise PatternError(f"{where}: a numeric range is a lower bound (> or >=) then an upper bound (< or <=)")
        if bounds[0] >= bounds[1]:
            raise PatternError(f"{where}: numeric range bottom must be less than top, got {arg!r}")
    tests = [(_CMP[op], b) for op, b in zip(ops, bounds, strict=True)]

    def test(v: Any) -> bool:
        key = _number_key(v)
        return key is not None and all(fn(key, b) for fn, b in tests)

    return test


def _anything_but(where: str, arg: Any) -> Predicate:
    if isinstance(arg, Mapping):
        if len(arg) != 1:
            raise PatternError(f"{where}: anything-but takes one operator, got {dict(arg)!r}")
        ((op, inner),) = arg.items()
        if op not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            raise PatternError(f"{where}: unsupported operator inside anything-but: {op!r}")
        inners = inner if isinstance(inner, list) else [inner]
        if not inners or not all(isinstance(i, str) for i in inners):
            raise PatternError(f"{where}: anything-but {op} takes a string or a list of strings, got {inner!r}")
        if op in ("prefix", "suffix") and "" in inners:
            raise PatternError(f"{where}: anything-but {op} must not be empty")
        excluded = [_operator(where, op, i) for i in inners]
        # A value of another type is "anything but" a string pattern.
        return lambda v: not isinstance(v, str) or not any(p(v) for p in excluded)
    values = arg if isinstance(arg, list) else [arg]
    if not values:
        raise PatternError(f"{where}: anything-but needs at least one value")
    if all(isinstance(x, str) for x in values):
        strings = frozenset(values)
        return lambda v: not (isinstance(v, str) and v in strings)
    if all(_is_number(x) for x in values):
        keys = frozenset(_literal_number_key(where, x) for x in values)
        return lambda v: _number_key(v) not in keys
    raise PatternError(
        f"{where}: anything-but takes a string, a number, or a list of all strings or all numbers, got {arg!r}"
    )


def _literal_number_key(where: str, x: Any) -> int:
    key = _number_key(x)
    if key is None:
        raise PatternError(f"{where}: number {x!r} is outside -5.0e9..5.0e9 (EventBridge's range)")
    return key


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


_Entry = tuple[Mapping[str, Any], CompiledPattern, T]


class PatternIndex(Generic[T]):
    """Candidates for an event, looked up by ``source`` and ``detail.eventName``.

    Each item is filed under every (source, eventName) literal pair of its
    pattern. Patterns that use ``$or`` at the top level or non-literal filters
    on those fields are filed under broader keys, so a lookup never misses a
    pattern that could match: the index narrows, ``matches`` decides.
    """

    def __init__(self, items: Iterable[tuple[Mapping[str, Any], T]]) -> None:
        self._by_pair: dict[tuple[str, str], list[_Entry[T]]] = {}
        self._by_source: dict[str, list[_Entry[T]]] = {}
        self._anywhere: list[_Entry[T]] = []
        for pattern, item in items:
            self._add(pattern, item)

    def _add(self, pattern: Mapping[str, Any], item: T) -> None:
        entry = (pattern, compile_pattern(pattern), item)
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

    def _entries(self, envelope: Mapping[str, Any]) -> list[_Entry[T]]:
        source = envelope.get("source")
        detail = envelope.get("detail")
        name = detail.get("eventName") if isinstance(detail, Mapping) else None
        out: list[_Entry[T]] = []
        if isinstance(source, str):
            if isinstance(name, str):
                out.extend(self._by_pair.get((source, name), ()))
            out.extend(self._by_source.get(source, ()))
        out.extend(self._anywhere)
        return out

    def candidates(self, envelope: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], T]]:
        """(pattern, item) for every pattern that could match ``envelope`` (a superset of the matches)."""
        return [(pattern, item) for pattern, _, item in self._entries(envelope)]

    def match(self, envelope: Mapping[str, Any]) -> list[T]:
        """Items whose pattern matches ``envelope``, in insertion order of lookup buckets."""
        return [item for _, compiled, item in self._entries(envelope) if compiled.matches(envelope)]
