"""Unit tests of the adversarial tests' IAM evaluator (tests/adversarial/policy_eval.py).

Each case pins one rule of IAM's documented evaluation logic; the infrastructure attack tests are
only as good as these.
"""

from __future__ import annotations

from typing import Any

import pytest
from policy_eval import (
    ADMINISTRATOR_ACCESS,
    FULL_AWS_ACCESS,
    Caller,
    Decision,
    Request,
    Unsupported,
    arn_like,
    condition_matches,
    evaluate,
)

ALICE = Caller.role("111122223333", "alice", org_id="o-abc")
CLOUDTRAIL = Caller.aws_service("cloudtrail.amazonaws.com")


def _keys(**kv: Any) -> dict[str, Any]:
    return {k.replace("__", ":").lower(): v for k, v in kv.items()}


# --------------------------------------------------------------------------- #
# operators
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("operator", "policy", "request_value", "expected"),
    [
        ("StringEquals", "a", "a", True),
        ("StringEquals", "a*", "ab", False),  # no wildcards in StringEquals
        ("StringEquals", ["x", "a"], "a", True),  # values of one key are ORed
        ("StringNotEquals", ["x", "a"], "a", False),
        ("StringNotEquals", ["x", "y"], "a", True),
        ("StringLike", "role/*", "role/a/b", True),
        ("StringLike", "a?c", "abc", True),
        ("StringLike", "a?c", "abbc", False),
        ("ArnLike", "arn:aws:iam::*:role/tg-*", "arn:aws:iam::111122223333:role/tg-x", True),
        ("ArnLike", "arn:aws:iam::*:role/tg-*", "arn:aws:iam::111122223333:role/tg-x/y", True),
        ("ArnLike", "arn:aws:iam::*:role/tg-*", "arn:aws:iam::111122223333:role/x/tg-y", False),
        ("ArnEquals", "arn:aws:iam::*:role/a", "arn:aws:iam::111122223333:role/a", True),  # same as ArnLike
        ("ArnNotEquals", "arn:aws:iam::1:role/a", "arn:aws:iam::2:role/a", True),
        ("ArnNotLike", "arn:aws:iam::*:role/a", "arn:aws:iam::2:role/a", False),
        ("Bool", "false", "false", True),
        ("Bool", "false", "true", False),
        ("NumericLessThan", 1.2, "1.0", True),
        ("NumericLessThan", 1.2, "1.2", False),
    ],
)
def test_single_valued_operators(operator: str, policy: Any, request_value: str, expected: bool) -> None:
    assert condition_matches(operator, "k", policy, {"k": request_value}) is expected


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("StringEquals", False),  # a positive operator needs the key
        ("ArnLike", False),
        ("StringNotEquals", True),  # a negated operator matches a missing key
        ("ArnNotEquals", True),
        ("StringEqualsIfExists", True),
        ("BoolIfExists", True),
        ("StringNotEqualsIfExists", True),
        ("ForAnyValue:StringEquals", False),
        ("ForAllValues:StringNotEquals", True),  # vacuously true on an empty set
    ],
)
def test_missing_keys(operator: str, expected: bool) -> None:
    assert condition_matches(operator, "aws:Missing", "v", {}) is expected


def test_set_operators() -> None:
    names = ["cloudtrail.amazonaws.com", "ct.alias.amazonaws.com"]
    keys = {"aws:principalservicenameslist": names}
    assert condition_matches(
        "ForAnyValue:StringEquals", "aws:PrincipalServiceNamesList", "ct.alias.amazonaws.com", keys
    )
    assert not condition_matches("ForAnyValue:StringEquals", "aws:PrincipalServiceNamesList", "s3.amazonaws.com", keys)
    assert condition_matches("ForAllValues:StringEquals", "aws:PrincipalServiceNamesList", names, keys)
    assert not condition_matches(
        "ForAllValues:StringNotEquals", "aws:PrincipalServiceNamesList", "cloudtrail.amazonaws.com", keys
    )


def test_condition_keys_are_case_insensitive_values_are_not() -> None:
    req = Request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k", {"AWS:SecureTransport": "true"})
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "*",
                "Condition": {"Bool": {"aws:securetransport": "true"}},
            }
        ]
    }
    assert evaluate(req, resource_account="111122223333", identity_policies=[policy]) is Decision.ALLOW
    assert not condition_matches("StringEquals", "k", "ABC", {"k": "abc"})


def test_arn_like_compares_the_six_parts() -> None:
    assert arn_like("arn:aws:s3:::b/*", "arn:aws:s3:::b/a/b:c")
    assert not arn_like("arn:aws:iam::*:role/a", "arn:aws:iam::1:role")
    assert not arn_like("not-an-arn", "arn:aws:iam::1:role/a")


def test_unmodelled_operators_and_elements_are_refused() -> None:
    with pytest.raises(Unsupported):
        condition_matches("IpAddress", "aws:SourceIp", "10.0.0.0/8", {"aws:sourceip": "10.1.1.1"})
    with pytest.raises(Unsupported):
        condition_matches("ForOneValue:StringEquals", "k", "v", {"k": "v"})
    with pytest.raises(Unsupported):
        condition_matches("StringEquals", "k", {"Fn::Join": ["", []]}, {"k": "v"})
    with pytest.raises(Unsupported):
        condition_matches("StringEquals", "k", "${aws:PrincipalAccount}", {"k": "v"})
    req = Request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k")
    with pytest.raises(Unsupported):
        evaluate(
            req,
            resource_account="1",
            resource_policy={
                "Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "Action": "*", "Resource": "*"}]
            },
        )


# --------------------------------------------------------------------------- #
# evaluation logic
# --------------------------------------------------------------------------- #
def test_explicit_deny_beats_every_allow() -> None:
    req = Request(ALICE, "s3:PutObject", "arn:aws:s3:::b/k")
    deny = {
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}]
    }
    assert evaluate(
        req, resource_account="111122223333", resource_policy=deny, identity_policies=[ADMINISTRATOR_ACCESS]
    ) is (Decision.EXPLICIT_DENY)


def test_same_account_needs_identity_or_resource_allow() -> None:
    req = Request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k")
    allow_alice = {
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ALICE.arn}, "Action": "s3:GetObject", "Resource": "*"}]
    }
    assert evaluate(req, resource_account="111122223333") is Decision.IMPLICIT_DENY
    assert evaluate(req, resource_account="111122223333", identity_policies=[ADMINISTRATOR_ACCESS]) is Decision.ALLOW
    assert evaluate(req, resource_account="111122223333", resource_policy=allow_alice) is Decision.ALLOW


def test_account_principal_delegates_to_identity_policies() -> None:
    req = Request(ALICE, "events:PutEvents", "arn:aws:events:us-east-1:111122223333:event-bus/b")
    allow_account = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "events:PutEvents",
        "Resource": "*",
    }
    assert evaluate(req, resource_account="111122223333", resource_policy=allow_account) is Decision.IMPLICIT_DENY
    other = Request(Caller.role("444455556666", "bob"), req.action, req.resource)
    assert evaluate(other, resource_account="111122223333", resource_policy=allow_account) is Decision.IMPLICIT_DENY


def test_cross_account_needs_both() -> None:
    bob = Caller.role("444455556666", "bob")
    req = Request(bob, "events:PutEvents", "arn:aws:events:us-east-1:111122223333:event-bus/b")
    allow_all = {"Effect": "Allow", "Principal": "*", "Action": "events:PutEvents", "Resource": "*"}
    assert evaluate(req, resource_account="111122223333", resource_policy=allow_all) is Decision.IMPLICIT_DENY
    assert evaluate(req, resource_account="111122223333", identity_policies=[ADMINISTRATOR_ACCESS]) is (
        Decision.IMPLICIT_DENY
    )
    assert (
        evaluate(
            req, resource_account="111122223333", resource_policy=allow_all, identity_policies=[ADMINISTRATOR_ACCESS]
        )
        is Decision.ALLOW
    )


def test_service_principals_need_a_resource_allow_and_ignore_scps() -> None:
    req = Request(CLOUDTRAIL, "s3:PutObject", "arn:aws:s3:::b/AWSLogs/1/x")
    allow = {
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": "*",
    }
    deny_all_scp = {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    assert evaluate(req, resource_account="1") is Decision.IMPLICIT_DENY
    assert evaluate(req, resource_account="1", resource_policy=allow, scps=[deny_all_scp]) is Decision.ALLOW
    # {"AWS": "*"} covers service principals too (why Deny statements guard with aws:PrincipalIsAWSService).
    deny_any = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": "*"}
    assert evaluate(req, resource_account="1", resource_policy=[allow, deny_any]) is Decision.EXPLICIT_DENY


def test_scps_filter_but_never_grant() -> None:
    req = Request(ALICE, "iam:CreateRole", "arn:aws:iam::111122223333:role/x")
    deny = {"Statement": [{"Effect": "Deny", "Action": "iam:CreateRole", "Resource": "arn:aws:iam::*:role/x"}]}
    assert evaluate(req, resource_account="111122223333", identity_policies=[ADMINISTRATOR_ACCESS], scps=[]) is (
        Decision.IMPLICIT_DENY  # no FullAWSAccess: nothing is allowed
    )
    assert (
        evaluate(req, resource_account="111122223333", identity_policies=[ADMINISTRATOR_ACCESS], scps=[FULL_AWS_ACCESS])
        is Decision.ALLOW
    )
    assert (
        evaluate(
            req, resource_account="111122223333", identity_policies=[ADMINISTRATOR_ACCESS], scps=[FULL_AWS_ACCESS, deny]
        )
        is Decision.EXPLICIT_DENY
    )
    assert evaluate(req, resource_account="111122223333", scps=[FULL_AWS_ACCESS]) is Decision.IMPLICIT_DENY


def test_action_and_resource_wildcards() -> None:
    req = Request(ALICE, "iam:PutRolePolicy", "arn:aws:iam::111122223333:role/tg-a")
    pol = {"Statement": [{"Effect": "Allow", "Action": "IAM:Put*", "Resource": "arn:aws:iam::*:role/tg-*"}]}
    assert evaluate(req, resource_account="111122223333", identity_policies=[pol]) is Decision.ALLOW
    pol_other = {"Statement": [{"Effect": "Allow", "Action": "iam:Put*", "Resource": "arn:aws:iam::*:role/x-*"}]}
    assert evaluate(req, resource_account="111122223333", identity_policies=[pol_other]) is Decision.IMPLICIT_DENY
    not_action = {"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}
    assert evaluate(req, resource_account="111122223333", identity_policies=[not_action]) is Decision.IMPLICIT_DENY
