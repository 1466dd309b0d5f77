"""A small evaluator for the CloudWatch Logs JSON filter-pattern syntax the CIS filters use.

No library on PyPI implements it (moto's logs backend only handles plain terms), so
this covers exactly the subset in use, and rejects everything else loudly:

    pattern    := "{" expr "}"
    expr       := term (("&&" | "||") term)*     -- mixing && and || needs parentheses
    term       := "(" expr ")" | comparison
    comparison := selector ("=" | "!=") value | selector "NOT EXISTS" | selector "EXISTS" | selector "IS NULL"
    selector   := "$" ("." name)+
    value      := "quoted string" | bare-token           -- "*" is a wildcard for any characters

Semantics: string comparison, case-sensitive; a comparison on a property that is absent
is false for both "=" and "!=" (the conservative reading); "NOT EXISTS" is true only
when the property is absent.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lbrace>\{) | (?P<rbrace>\}) | (?P<lpar>\() | (?P<rpar>\)) |
        (?P<and>&&) | (?P<or>\|\|) | (?P<ne>!=) | (?P<eq>=) |
        (?P<notexists>NOT\s+EXISTS\b) | (?P<exists>EXISTS\b) | (?P<isnull>IS\s+NULL\b) |
        (?P<selector>\$(?:\.[A-Za-z0-9_]+)+) |
        (?P<quoted>"(?:[^"\\]|\\.)*") |
        (?P<bare>[^\s(){}&|=!"]+)
    )""",
    re.VERBOSE,
)


class FilterSyntaxError(ValueError):
    pass


@dataclass
class _Tok:
    kind: str
    text: str


def _tokenize(pattern: str) -> list[_Tok]:
    toks, pos = [], 0
    while pos < len(pattern):
        if pattern[pos:].strip() == "":
            break
        m = _TOKEN.match(pattern, pos)
        if not m or m.end() == pos:
            raise FilterSyntaxError(f"cannot tokenize at {pattern[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        toks.append(_Tok(kind, m.group(kind)))
        pos = m.end()
    return toks


_MISSING = object()


def _lookup(record: Any, selector: str) -> Any:
    cur = record
    for part in selector[2:].split("."):
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Parser:
    def __init__(self, toks: list[_Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i].kind if self.i < len(self.toks) else None

    def take(self, kind: str) -> _Tok:
        if self.peek() != kind:
            got = self.toks[self.i].text if self.i < len(self.toks) else "end"
            raise FilterSyntaxError(f"expected {kind}, got {got!r}")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def pattern(self) -> Any:
        self.take("lbrace")
        node = self.expr()
        self.take("rbrace")
        if self.i != len(self.toks):
            raise FilterSyntaxError("trailing tokens after '}'")
        return node

    def expr(self) -> Any:
        terms = [self.term()]
        op: str | None = None
        while self.peek() in ("and", "or"):
            kind = self.take(self.peek() or "").kind
            if op is not None and kind != op:
                raise FilterSyntaxError("mixing && and || without parentheses is ambiguous")
            op = kind
            terms.append(self.term())
        return terms[0] if op is None else (op, terms)

    def term(self) -> Any:
        if self.peek() == "lpar":
            self.take("lpar")
            node = self.expr()
            self.take("rpar")
            return node
        selector = self.take("selector").text
        kind = self.peek()
        if kind in ("notexists", "exists", "isnull"):
            self.take(kind)
            return (kind, selector)
        op = self.take("eq" if kind == "eq" else "ne").kind
        raw = self.take("quoted").text[1:-1] if self.peek() == "quoted" else self.take("bare").text
        return (op, selector, raw)


def _eval(node: Any, record: Any) -> bool:
    kind = node[0]
    if kind == "and":
        return all(_eval(n, record) for n in node[1])
    if kind == "or":
        return any(_eval(n, record) for n in node[1])
    value = _lookup(record, node[1])
    if kind == "notexists":
        return value is _MISSING
    if kind == "exists":
        return value is not _MISSING
    if kind == "isnull":
        return value is None
    if value is _MISSING or value is None or isinstance(value, dict | list):
        return False
    equal = fnmatch.fnmatchcase(_as_text(value), node[2]) if "*" in node[2] else _as_text(value) == node[2]
    return equal if kind == "eq" else not equal


def compile_pattern(pattern: str) -> Any:
    """Parse a JSON filter pattern; raise FilterSyntaxError outside the supported subset."""
    return _Parser(_tokenize(pattern)).pattern()


def matches(pattern: str, record: dict[str, Any]) -> bool:
    """Does the CloudWatch Logs JSON filter ``pattern`` match the CloudTrail ``record``?"""
    return _eval(compile_pattern(pattern), record)
