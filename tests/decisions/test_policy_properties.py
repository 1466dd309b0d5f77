"""Property tests for trailguard_engine.policy: equivalent writings of a policy get the same verdict.

Hypothesis generates statements from pools of principals and condition entries (restricting and
look-restrictive ones), then rewrites them in ways IAM treats as the same policy: another encoding, another
spelling of the principal or of an account, operator and key case, a scalar for a one-element list, the
statements reordered, an aws:SourceIp range split into the subnets that cover it. The verdicts (public,
external grants, admin-like) must not move. Derandomized under CI by the conftest profile.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import quote, quote_plus

from hypothesis import given
from hypothesis import strategies as st
from trailguard_engine.policy import admin_like, external_grants, parse_policy, public_statements, statement_public

OWN = "111122223333"
ACCOUNTS = ["444455556666", "777788889999", OWN]
ORG = "o-a1b2c3d4e5"

PRINCIPALS = st.sampled_from(
    [
        "*",
        {"AWS": "*"},
        {"AWS": "arn:aws:iam::444455556666:root"},
        {"AWS": ["444455556666", f"arn:aws:iam::{OWN}:role/x"]},
        {"AWS": f"arn:aws:iam::{OWN}:root"},
        {"Service": "s3.amazonaws.com"},
        {"AWS": "arn:aws:iam::777788889999:role/reader"},
    ]
)
CONDITION_ENTRIES = st.sampled_from(
    [
        ("StringEquals", "aws:PrincipalOrgID", ORG),
        ("StringLike", "aws:PrincipalOrgID", "o-*"),
        ("StringEqualsIfExists", "aws:PrincipalOrgID", ORG),
        ("StringEquals", "aws:PrincipalAccount", "444455556666"),
        ("StringNotEquals", "aws:PrincipalAccount", OWN),
        ("StringEquals", "aws:SourceVpce", "vpce-1a2b3c"),
        ("ForAllValues:StringEquals", "aws:SourceVpce", "vpce-1a2b3c"),
        ("IpAddress", "aws:SourceIp", "203.0.113.0/24"),
        ("IpAddress", "aws:SourceIp", "0.0.0.0/1"),
        ("Bool", "aws:SecureTransport", "true"),
        ("StringEquals", "sts:ExternalId", "partner"),
        ("ArnLike", "aws:PrincipalArn", f"arn:aws:iam::{OWN}:role/*"),
    ]
)


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    s: dict[str, Any] = {
        "Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"])),
        "Principal": draw(PRINCIPALS),
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::b1/*",
    }
    entries = draw(st.lists(CONDITION_ENTRIES, max_size=3, unique_by=lambda e: (e[0], e[1])))
    if entries:
        cond: dict[str, dict[str, Any]] = {}
        for op, key, value in entries:
            cond.setdefault(op, {})[key] = value
        s["Condition"] = cond
    return s


def verdict(document: dict[str, Any]) -> tuple[int, list[str]]:
    return len(public_statements(document, OWN)), external_grants(document, OWN, frozenset(), org_id=ORG)


def doc(*stmts: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(stmts)}


ENCODINGS = [
    lambda d: d,
    json.dumps,
    lambda d: quote(json.dumps(d), safe=""),
    lambda d: quote_plus(json.dumps(d)),
    lambda d: quote(quote(json.dumps(d), safe=""), safe=""),
    lambda d: json.dumps(json.dumps(d)),
]


@given(st.lists(statements(), min_size=1, max_size=4), st.sampled_from(range(len(ENCODINGS))))
def test_every_encoding_gives_the_same_verdict(stmts: list[dict[str, Any]], enc: int) -> None:
    original = doc(*stmts)
    parsed = parse_policy(ENCODINGS[enc](original))
    assert parsed.document == original
    assert verdict(parsed.document) == verdict(original)


@given(st.lists(statements(), min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_statement_order_does_not_matter(stmts: list[dict[str, Any]], rnd: Any) -> None:
    shuffled = list(stmts)
    rnd.shuffle(shuffled)
    assert verdict(doc(*stmts)) == verdict(doc(*shuffled))


def _respell_case(s: dict[str, Any]) -> dict[str, Any]:
    """Operators and condition keys in other case (keys are case-insensitive in IAM; we read operators so too)."""
    out = dict(s)
    if "Condition" in s:
        out["Condition"] = {
            op.upper(): {k.upper(): v for k, v in block.items()} for op, block in s["Condition"].items()
        }
    return out


def _listify(s: dict[str, Any]) -> dict[str, Any]:
    """Every scalar written as a one-element list (IAM reads both the same)."""
    out = dict(s)
    p = s["Principal"]
    if isinstance(p, dict):
        out["Principal"] = {k: v if isinstance(v, list) else [v] for k, v in p.items()}
    if "Condition" in s:
        out["Condition"] = {
            op: {k: v if isinstance(v, list) else [v] for k, v in block.items()} for op, block in s["Condition"].items()
        }
    out["Action"] = [s["Action"]]
    return out


@given(statements(), st.sampled_from([_respell_case, _listify]))
def test_equivalent_spellings_give_the_same_verdict(s: dict[str, Any], respell: Any) -> None:
    assert verdict(doc(s)) == verdict(doc(respell(s)))


ANYONE = ["*", {"AWS": "*"}, {"AWS": ["*"]}, {"AWS": "arn:aws:iam::*:root"}, {"AWS": "arn:aws:iam::????????????:root"}]


@given(st.sampled_from(ANYONE), st.sampled_from(ANYONE), st.lists(CONDITION_ENTRIES, max_size=2))
def test_every_spelling_of_anyone_is_anyone(a: Any, b: Any, entries: list[tuple[str, str, str]]) -> None:
    cond: dict[str, dict[str, str]] = {}
    for op, key, value in entries:
        cond.setdefault(op, {})[key] = value
    base = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": cond}
    assert (statement_public({**base, "Principal": a}) is None) == (statement_public({**base, "Principal": b}) is None)


@given(st.sampled_from(ACCOUNTS[:2]), st.sampled_from(["{a}", "arn:aws:iam::{a}:root", "arn:aws:iam::{a}:role/r"]))
def test_every_spelling_of_an_account_is_that_account(account: str, spelling: str) -> None:
    s = {"Effect": "Allow", "Principal": {"AWS": spelling.format(a=account)}, "Action": "sts:AssumeRole"}
    assert external_grants(doc(s), OWN, frozenset()) == [account]
    assert external_grants(doc(s), OWN, frozenset({account})) == []


@given(
    st.sampled_from(["198.51.100.0/24", "10.0.0.0/8", "0.0.0.0/1", "0.0.0.0/0", "2001:db8::/32", "2000::/3"]),
    st.sampled_from([0, 1, 4, 9, 12]),
)
def test_a_range_and_the_subnets_covering_it_get_the_same_verdict(cidr: str, extra_bits: int) -> None:
    """0.0.0.0/1 as 4,096 /13s: each is narrow, together they are half the internet (judged as a union)."""
    net = ipaddress.ip_network(cidr)
    bits = min(extra_bits, net.max_prefixlen - net.prefixlen)
    subnets = [str(n) for n in net.subnets(prefixlen_diff=bits)]
    whole = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
    one = {**whole, "Condition": {"IpAddress": {"aws:SourceIp": cidr}}}
    split = {**whole, "Condition": {"IpAddress": {"aws:SourceIp": subnets}}}
    assert (statement_public(one) is None) == (statement_public(split) is None)


@given(statements(), CONDITION_ENTRIES)
def test_adding_a_condition_never_makes_a_private_statement_public(s: dict[str, Any], extra: Any) -> None:
    """Conditions are AND-ed: another entry can only narrow who the statement admits."""
    op, key, value = extra
    cond = {o: dict(b) for o, b in s.get("Condition", {}).items()}
    if key in cond.get(op, {}):
        return  # same operator and key: that would replace a value, not add a condition
    cond.setdefault(op, {})[key] = value
    if statement_public(s) is None:
        assert statement_public({**s, "Condition": cond}) is None


ADMIN_ACTIONS = st.sampled_from(["*", "*:*", "?*", ["*"], ["s3:GetObject", "*"]])
ADMIN_RESOURCES = st.sampled_from(["*", "arn:*", "arn:aws:*:*:*:*", ["*"], "?*"])


@given(ADMIN_ACTIONS, ADMIN_RESOURCES, st.sampled_from(range(len(ENCODINGS))))
def test_every_spelling_of_admin_is_admin(action: Any, resource: Any, enc: int) -> None:
    policy = doc({"Effect": "Allow", "Action": action, "Resource": resource})
    parsed = parse_policy(ENCODINGS[enc](policy))
    assert parsed.document is not None
    assert admin_like(parsed.document)
