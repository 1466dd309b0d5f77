"""trailguard_engine.policy: parsing, public statements, external grants, admin-like, escalation, our accounts.

Each case that policyuniverse's own ``is_internet_accessible`` gets wrong is pinned here (see the module
docstring of trailguard_engine.policy for why those are bypasses or wrong remediations).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from policyuniverse.statement import Statement as PuStatement
from trailguard_engine.intended import IntendedExposure
from trailguard_engine.policy import (
    admin_like,
    expand_actions,
    external_grants,
    judge_condition,
    known_accounts,
    organization_known,
    parse_policy,
    principal_account,
    privilege_escalation,
    public_statements,
    request_too_large,
    statement_public,
)
from trailguard_engine.runtime_config import RuntimeConfig

OWN = "111122223333"
EXT = "444455556666"
ORG = "o-a1b2c3d4e5"


def stmt(**kw: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b1/*", **kw}


def doc(*stmts: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(stmts)}


# --------------------------------------------------------------------------- parsing
POLICY = doc(stmt())


@pytest.mark.parametrize(
    ("value", "encoding"),
    [
        (POLICY, "object"),
        (json.dumps(POLICY), "json"),
        (quote(json.dumps(POLICY), safe=""), "url-encoded+json"),
        (quote_plus(json.dumps(POLICY)), "url-encoded+json"),
        (quote(quote(json.dumps(POLICY), safe=""), safe=""), "url-encoded+url-encoded+json"),
        (json.dumps(json.dumps(POLICY)), "json-string+json"),
        ([json.dumps(POLICY)], "json"),
        ("  " + json.dumps(POLICY) + "\n", "json"),
    ],
)
def test_parse_every_encoding_gives_the_same_document(value: Any, encoding: str) -> None:
    parsed = parse_policy(value)
    assert parsed.ok and parsed.error is None
    assert parsed.document == POLICY
    assert parsed.encoding == encoding


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (None, "NoneType"),
        (12, "int"),
        ("", "empty"),
        ("{not json", "not JSON"),
        ("[1, 2]", "list"),
        ('{"Statement": [], "Statement": [1]}', "duplicate key 'Statement'"),
        ('{"Statement": [{"Effect": "Deny", "Effect": "Allow"}]}', "duplicate key 'Effect'"),
        ("x" * 1_000_001, "longer than"),
    ],
)
def test_parse_refuses_with_a_reason(value: Any, error: str) -> None:
    parsed = parse_policy(value)
    assert parsed.document is None and not parsed.ok
    assert error in (parsed.error or "")


def test_parse_stops_after_bounded_rounds() -> None:
    text = json.dumps(POLICY)
    for _ in range(8):
        text = quote(text, safe="")
    assert parse_policy(text).error is not None


def test_plus_is_a_space_only_when_percent_decoding_alone_is_not_json() -> None:
    """A '+' inside a value (IAM names allow it) survives; a '+' standing for a space is decoded."""
    with_plus = doc(stmt(Principal={"AWS": f"arn:aws:iam::{OWN}:role/a+b"}))
    assert parse_policy(quote(json.dumps(with_plus), safe="")).document == with_plus
    assert parse_policy(quote_plus(json.dumps(with_plus))).document == with_plus


@pytest.mark.parametrize(
    ("request_parameters", "too_large"),
    [
        ({"reason": "requestParameters too large", "omitted": True, "originalSize": 131072}, True),
        ({"reason": "requestParameters too large", "omitted": "true", "originalSize": "149893"}, True),
        ({"omitted": "TRUE"}, True),
        ({"reason": "requestParameters too large"}, True),
        ({"policyName": "p", "policyDocument": "{}"}, False),
        ({"omitted": False}, False),
        (None, False),
        ("omitted", False),
    ],
)
def test_request_too_large(request_parameters: Any, too_large: bool) -> None:
    assert request_too_large(request_parameters) is too_large


# --------------------------------------------------------------------------- principals
@pytest.mark.parametrize(
    ("value", "account"),
    [
        ("*", "*"),
        (OWN, OWN),
        (f"arn:aws:iam::{OWN}:root", OWN),
        (f"arn:aws:iam::{OWN}:role/path/x", OWN),
        (f"arn:aws:sts::{OWN}:assumed-role/x/y", OWN),
        (f"arn:aws-us-gov:iam::{OWN}:root", OWN),
        ("arn:aws:iam::*:root", "*"),
        ("arn:aws:iam::????????????:root", "*"),
        (f"arn:aws:iam::{OWN[:-1]}?:root", "*"),
        ("arn:*", "*"),
        ("arn:aws:*:*:*:*", "*"),
        ("?*", "*"),
        ("s3.amazonaws.com", ""),
        ("AIDAEXAMPLEUNIQUEID", ""),
        (f"arn:aws:iam::{OWN[:-1]}:root", ""),  # 11 digits: no account
        ("１１１１２２２２３３３３", ""),  # full-width digits are not an account ID
    ],
)
def test_principal_account(value: str, account: str) -> None:
    assert principal_account(value) == account


# --------------------------------------------------------------------------- public statements
PU_MISSES = [
    # policyuniverse says not public for each of these; every one admits anyone
    stmt(Principal={"AWS": "arn:aws:iam::????????????:root"}),
    stmt(Condition={"StringEqualsIfExists": {"aws:PrincipalOrgID": ORG}}),
    stmt(Condition={"ForAllValues:StringEquals": {"aws:SourceVpce": ["vpce-1a2b"]}}),
    stmt(Condition={"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}}),
    stmt(Condition={"IpAddress": {"aws:SourceIp": [f"{i}.0.0.0/8" for i in range(256)]}}),
    stmt(Condition={"IpAddress": {"aws:SourceIp": "2000::/16"}}),
    stmt(Condition={"StringLike": {"aws:PrincipalOrgID": "o-a1*"}}),
    stmt(Condition={"StringEquals": {"aws:PrincipalAccount": "${aws:PrincipalAccount}"}}),
]


@pytest.mark.parametrize("statement", PU_MISSES)
def test_public_where_policyuniverse_says_private(statement: dict[str, Any]) -> None:
    assert statement_public(statement) is not None
    assert not PuStatement(statement).is_internet_accessible()  # the reason this module exists


def test_not_public_where_policyuniverse_says_public() -> None:
    """One fixed restricting key restricts the statement (AND across keys); removing it would be wrong."""
    s = stmt(Condition={"StringEquals": {"aws:SourceVpce": "vpce-1a2b"}, "IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})
    assert statement_public(s) is None
    assert PuStatement(s).is_internet_accessible()


@pytest.mark.parametrize(
    "statement",
    [
        stmt(),
        stmt(Principal={"AWS": "*"}),
        stmt(Principal={"AWS": ["*"]}),
        stmt(Principal={"AWS": ["arn:aws:iam::*:root"]}),
        stmt(Principal={"CanonicalUser": "*"}),
        stmt(Effect="allow"),
        stmt(Principal=None, NotPrincipal={"AWS": f"arn:aws:iam::{OWN}:root"}),
        stmt(Condition={"StringLike": {"aws:PrincipalOrgID": "*"}}),
        stmt(Condition={"StringLike": {"aws:PrincipalOrgID": "o-*"}}),
        stmt(Condition={"StringLike": {"aws:PrincipalOrgID": "?*"}}),
        stmt(Condition={"StringNotEquals": {"aws:PrincipalAccount": OWN}}),
        stmt(Condition={"StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG}}),
        stmt(Condition={"ForAllValues:StringLike": {"aws:PrincipalOrgPaths": [f"{ORG}/*"]}}),
        stmt(Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        stmt(Condition={"Null": {"aws:PrincipalOrgID": "false"}}),
        stmt(Condition={"Bool": {"aws:SecureTransport": "true"}}),
        stmt(Condition={"StringEquals": {"sts:ExternalId": "partner-1234"}}),
        stmt(Condition={"StringLike": {"aws:SourceAccount": "*"}}),
        stmt(Condition={"StringLike": {"aws:userid": "*:alice"}}),
        stmt(Condition={"Bool": {"aws:PrincipalIsAWSService": "false"}}),
        stmt(Condition={"IpAddress": {"aws:SourceIp": "not-an-ip"}}),
        stmt(Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/x"}}),
    ],
)
def test_public(statement: dict[str, Any]) -> None:
    if statement.get("Principal") is None:
        statement.pop("Principal")
    assert statement_public(statement) is not None
    assert public_statements(doc(statement))


@pytest.mark.parametrize(
    "statement",
    [
        stmt(Effect="Deny"),
        stmt(Principal={"AWS": f"arn:aws:iam::{OWN}:root"}),
        stmt(Principal={"AWS": EXT}),  # a specific account: external, not public
        stmt(Principal={"Service": "cloudtrail.amazonaws.com"}),
        stmt(Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}}),
        stmt(Condition={"ForAnyValue:StringEquals": {"aws:PrincipalOrgID": ORG}}),
        stmt(Condition={"StringEquals": {"aws:PrincipalAccount": OWN}}),
        stmt(Condition={"StringEquals": {"aws:SourceAccount": [OWN, EXT]}}),
        stmt(Condition={"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{OWN}:role/*"}}),
        stmt(Condition={"ArnEquals": {"aws:SourceArn": f"arn:aws:cloudfront::{OWN}:distribution/E1"}}),
        stmt(Condition={"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::source-bucket"}}),
        stmt(Condition={"StringEquals": {"aws:SourceVpce": "vpce-1a2b"}}),
        stmt(Condition={"StringEquals": {"aws:SourceVpc": "vpc-1a2b"}}),
        stmt(Condition={"StringLike": {"aws:userid": "AROAEXAMPLEROLEID:*"}}),
        stmt(Condition={"IpAddress": {"aws:SourceIp": ["198.51.100.0/24", "203.0.113.7"]}}),
        stmt(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        stmt(Condition={"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": [f"{ORG}/r-ab12/ou-*"]}}),
        stmt(Condition={"Bool": {"aws:PrincipalIsAWSService": "true"}}),
        stmt(Condition={"StringEquals": {"s3:DataAccessPointAccount": OWN}}),
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},  # identity policy: no principal
    ],
)
def test_not_public(statement: dict[str, Any]) -> None:
    assert statement_public(statement) is None
    assert public_statements(doc(statement)) == []


def test_public_reason_names_what_looked_restrictive() -> None:
    (why,) = public_statements(doc(stmt(Sid="Org", Condition={"StringLike": {"aws:PrincipalOrgID": "o-*"}})))
    assert why.startswith("Org: ") and "aws:PrincipalOrgID" in why and "wildcard" in why
    neg = statement_public(stmt(Condition={"StringNotEquals": {"aws:PrincipalAccount": OWN}}), OWN)
    assert neg is not None and f"every account but {OWN}" in neg


def test_condition_verdict_lists_restrictions() -> None:
    v = judge_condition({"StringEquals": {"aws:PrincipalOrgID": ORG}, "StringEqualsIfExists": {"aws:SourceVpce": "x"}})
    assert v.restricted and [r.kind for r in v.restrictions] == ["org"]
    assert v.weak and "IfExists" in v.weak[0]
    assert not judge_condition("not a block").restricted


# --------------------------------------------------------------------------- external grants
@pytest.mark.parametrize(
    ("statement", "known", "org_id", "grants"),
    [
        (stmt(Principal={"AWS": f"arn:aws:iam::{EXT}:root"}), set(), None, [EXT]),
        (stmt(Principal={"AWS": EXT}), set(), None, [EXT]),
        (stmt(Principal={"AWS": f"arn:aws:iam::{EXT}:role/deployer"}), set(), None, [EXT]),
        (stmt(Principal={"AWS": f"arn:aws:sts::{EXT}:assumed-role/r/s"}), set(), None, [EXT]),
        (stmt(Principal={"AWS": [f"arn:aws:iam::{OWN}:root", EXT]}), set(), None, [EXT]),
        (stmt(Principal={"AWS": f"arn:aws:iam::{EXT}:root"}), {EXT}, None, []),  # an account of ours
        (stmt(Principal={"AWS": f"arn:aws:iam::{OWN}:root"}), set(), None, []),
        # pinned to our own organization: whatever the principal, only our accounts
        (stmt(Principal={"AWS": EXT}, Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}}), set(), ORG, []),
        # pinned to another organization, or to one when none is configured
        (stmt(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-zz9y8x7w6v"}}), set(), ORG, ["o-zz9y8x7w6v"]),
        (stmt(Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}}), set(), None, [ORG]),
        # lookalike organization ID (ours is a prefix): not ours
        (stmt(Condition={"StringEquals": {"aws:PrincipalOrgID": ORG + "zz"}}), set(), ORG, [ORG + "zz"]),
        # '*' narrowed to accounts by a condition: the accounts are the grantees
        (stmt(Condition={"StringEquals": {"aws:PrincipalAccount": EXT}}), set(), None, [EXT]),
        (stmt(Condition={"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{EXT}:role/*"}}), set(), None, [EXT]),
        (stmt(Condition={"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:us-east-1:{EXT}:t"}}), set(), None, [EXT]),
        # a named principal narrowed by an account condition
        (
            stmt(Principal={"AWS": [EXT, OWN]}, Condition={"StringEquals": {"aws:PrincipalAccount": OWN}}),
            set(),
            None,
            [],
        ),
        # network-only pins name nobody specific; public statements are reported elsewhere
        (stmt(Condition={"StringEquals": {"aws:SourceVpce": "vpce-1"}}), set(), None, []),
        (stmt(), set(), None, []),
        (stmt(Effect="Deny", Principal={"AWS": EXT}), set(), None, []),
        # a principal with no readable account is reported as it is written
        (stmt(Principal={"AWS": "AIDAEXAMPLEUNIQUEID"}), set(), None, ["AIDAEXAMPLEUNIQUEID"]),
        (stmt(Principal={"Service": "sns.amazonaws.com"}), set(), None, []),
        (stmt(Principal={"AWS": 5}), set(), None, []),
    ],
)
def test_external_grants(statement: dict[str, Any], known: set[str], org_id: str | None, grants: list[str]) -> None:
    assert external_grants(doc(statement), OWN, frozenset(known), org_id=org_id) == grants


# --------------------------------------------------------------------------- actions
def test_expand_actions_handles_both_wildcards_and_case() -> None:
    put = expand_actions(["iam:Put*"])
    assert "iam:putrolepolicy" in put and "iam:putuserpolicy" in put
    assert expand_actions(["IAM:PutRolePolic?"]) == {"iam:putrolepolicy"}
    assert "iam:putrolepolicy" in expand_actions(["i?m:*"])
    assert expand_actions(["newservice:DoThing"]) == {"newservice:dothing"}  # not in the catalogue yet: kept
    assert expand_actions(["iam:[P]utRolePolicy"]) == {"iam:[p]utrolepolicy"}  # brackets are literal in IAM


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        ({"Effect": "Allow", "Action": "*", "Resource": "*"}, "Allow * on *"),
        ({"Effect": "Allow", "Action": "*:*", "Resource": "*"}, "Allow * on *"),
        ({"Effect": "Allow", "Action": "?*", "Resource": "arn:*"}, "Allow * on *"),
        ({"Effect": "Allow", "Action": ["*"], "Resource": "arn:aws:*:*:*:*"}, "Allow * on *"),
        ({"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::secret/*"}, "Allow * on *"),
        ({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"}, "NotAction"),
        ({"Effect": "Allow", "Action": "iam:*", "Resource": "*"}, "iam:*"),
        ({"Effect": "Allow", "Action": "i?m:*", "Resource": f"arn:aws:iam::{OWN}:*"}, "iam:*"),
    ],
)
def test_admin_like(statement: dict[str, Any], why: str) -> None:
    (found,) = admin_like(doc(statement))
    assert why in found


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Deny", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b1/*"},
        {"Effect": "Allow", "Action": "iam:*", "Resource": f"arn:aws:iam::{OWN}:role/app-*"},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b1/*"},
        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},  # a resource policy
    ],
)
def test_not_admin_like(statement: dict[str, Any]) -> None:
    assert admin_like(doc(statement)) == []


def test_privilege_escalation_sets_across_statements() -> None:
    policy = doc(
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:Run*", "Resource": "*"},
    )
    assert any("ec2:runinstances + iam:passrole" in r for r in privilege_escalation(policy))
    assert privilege_escalation(policy, iam_only=True) == []
    put_attach = doc({"Effect": "Allow", "Action": ["iam:Put*", "iam:Attach*"], "Resource": "*"})
    found = privilege_escalation(put_attach, every_resource=True, iam_only=True)
    assert any("iam:putrolepolicy" in r for r in found) and any("iam:attachuserpolicy" in r for r in found)


def test_privilege_escalation_respects_unconditional_denies_and_resource_scope() -> None:
    denied = doc(
        {"Effect": "Allow", "Action": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:*", "Resource": "*"},
    )
    assert privilege_escalation(denied) == []
    scoped = doc({"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": f"arn:aws:iam::{OWN}:role/app"})
    assert privilege_escalation(scoped)  # any resource counts by default
    assert privilege_escalation(scoped, every_resource=True) == []


# --------------------------------------------------------------------------- our accounts
def test_known_accounts_is_organization_plus_trusted_plus_named() -> None:
    cfg = RuntimeConfig(
        organization_accounts=frozenset({"222233334444"}),
        intended=IntendedExposure(trusted_accounts=frozenset({"555566667777"})),
        management_account="999900001111",
        engine_account="888800001111",
    )
    assert known_accounts(cfg) == {"222233334444", "555566667777", "999900001111", "888800001111"}
    assert organization_known(cfg)
    unknown = RuntimeConfig(intended=IntendedExposure(trusted_accounts=frozenset({"555566667777"})))
    assert known_accounts(unknown) == {"555566667777"}
    assert not organization_known(unknown)


def test_runtime_document_carries_the_organization_accounts() -> None:
    cfg = RuntimeConfig.from_document({"organization_accounts": ["222233334444"]})
    assert cfg.organization_accounts == {"222233334444"}
    assert RuntimeConfig.from_document({}).organization_accounts is None
    for bad in (["2222"], "222233334444", [222233334444], ["２２２２３３３３４４４４"]):
        with pytest.raises(Exception, match="organization_accounts"):
            RuntimeConfig.from_document({"organization_accounts": bad})
