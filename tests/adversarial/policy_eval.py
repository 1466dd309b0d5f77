"""A small, explicit IAM policy evaluator for the adversarial infrastructure tests.

moto does not enforce bucket policies, event-bus policies or SCPs, so the adversarial tests judge
the attacker's request against the *synthesized* statements with this evaluator instead.

Why not a library: no maintained Python package evaluates a request (principal, action, resource,
context keys) against resource policies, identity policies and SCPs with conditions.
``policyuniverse`` only decides whether a policy is internet-accessible; ``parliament``,
``cloudsplaining`` and ``iam-policy-validator`` lint policies; ``iam-ape`` computes effective
permissions from account authorization details, without a request context; ``principalmapper``'s
local simulator is unmaintained since January 2022 and ``iamspy`` never left 0.0.1. So this module
implements only what the templates use, and refuses the rest loudly (:class:`Unsupported`), so a
test can never pass because an operator or element was silently ignored.

Semantics (IAM User Guide, "Policy evaluation logic" and "IAM JSON policy elements: Condition
operators"):

* an explicit ``Deny`` in any policy wins;
* SCPs are a filter: the request must be allowed by them (pass ``FULL_AWS_ACCESS`` as AWS
  attaches it) and not denied; they never apply to service principals;
* an AWS service principal has no identity policy: only a resource-policy ``Allow`` lets it in;
* same account: an ``Allow`` in the identity policy *or* in the resource policy is enough, except
  that a resource policy naming the *account* (``arn:...:root``) delegates to the account's
  identity policies; cross-account: both are needed;
* condition blocks: every operator and every key must match (AND); values of one key are ORed;
* a missing key: positive operators do not match, negated ones (``...Not...``) do, ``...IfExists``
  matches, ``ForAnyValue:`` does not, ``ForAllValues:`` does (an empty set);
* ``ArnEquals`` and ``ArnLike`` are the same operator: each of the six ``:``-separated ARN parts is
  compared with ``*`` and ``?`` wildcards; ``StringLike`` applies them to the whole string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

ADMINISTRATOR_ACCESS: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
#: The AWS-managed SCP every organization entity carries unless replaced.
FULL_AWS_ACCESS = ADMINISTRATOR_ACCESS


class Unsupported(ValueError):
    """The policy uses an element or operator this evaluator does not model."""


class Decision(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Caller:
    """Who makes the request: an IAM principal (role session, user, root) or an AWS service principal."""

    arn: str | None = None  # aws:PrincipalArn (for a role session: the role ARN)
    account: str | None = None
    org_id: str | None = None
    service: str | None = None  # the service principal name, e.g. cloudtrail.amazonaws.com

    @staticmethod
    def role(account: str, name: str, org_id: str | None = None, partition: str = "aws") -> Caller:
        return Caller(arn=f"arn:{partition}:iam::{account}:role/{name}", account=account, org_id=org_id)

    @staticmethod
    def aws_service(name: str) -> Caller:
        return Caller(service=name)

    def context(self) -> dict[str, Any]:
        if self.service:
            return {
                "aws:PrincipalIsAWSService": "true",
                "aws:PrincipalServiceName": self.service,
                "aws:PrincipalServiceNamesList": [self.service],
            }
        ctx: dict[str, Any] = {"aws:PrincipalIsAWSService": "false"}
        for key, value in (
            ("aws:PrincipalArn", self.arn),
            ("aws:PrincipalAccount", self.account),
            ("aws:PrincipalOrgID", self.org_id),
        ):
            if value is not None:
                ctx[key] = value
        return ctx


@dataclass(frozen=True)
class Request:
    caller: Caller
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)

    def keys(self) -> dict[str, Any]:
        """Every condition key of the request, lower-cased (key names are case-insensitive)."""
        merged = {**self.caller.context(), **self.context}
        return {k.lower(): v for k, v in merged.items()}


# --------------------------------------------------------------------------- #
# matching
# --------------------------------------------------------------------------- #
def _glob(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM wildcards: ``*`` any run of characters (``/`` and ``:`` included), ``?`` one character."""
    if "${" in pattern:
        raise Unsupported(f"policy variables are not modelled: {pattern!r}")
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE | re.DOTALL) is not None


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike/ArnEquals: the six colon-separated parts compared one by one, with wildcards."""
    p_parts, a_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(p_parts) != 6 or len(a_parts) != 6:
        return False
    return all(_glob(p, a) for p, a in zip(p_parts, a_parts, strict=True))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str | int | float):
        raise Unsupported(f"condition value is not a scalar (unresolved intrinsic?): {value!r}")
    return str(value)


_BASE: dict[str, tuple[str, bool]] = {
    # operator: (comparison, negated)
    "StringEquals": ("string", False),
    "StringNotEquals": ("string", True),
    "StringLike": ("like", False),
    "StringNotLike": ("like", True),
    "ArnEquals": ("arn", False),
    "ArnLike": ("arn", False),
    "ArnNotEquals": ("arn", True),
    "ArnNotLike": ("arn", True),
    "Bool": ("bool", False),
    "NumericLessThan": ("lt", False),
}


def _one(kind: str, policy_value: Any, request_value: Any) -> bool:
    pv, rv = _str(policy_value), _str(request_value)
    if kind == "string":
        if "${" in pv:
            raise Unsupported(f"policy variables are not modelled: {pv!r}")
        return pv == rv
    if kind == "like":
        return _glob(pv, rv)
    if kind == "arn":
        return arn_like(pv, rv)
    if kind == "bool":
        return pv.lower() == rv.lower()
    if kind == "lt":
        return float(rv) < float(pv)
    raise Unsupported(kind)


def condition_matches(operator: str, key: str, policy_values: Any, keys: Mapping[str, Any]) -> bool:
    """One ``operator: {key: values}`` entry against the request's (lower-cased) keys."""
    qualifier = ""
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
        if qualifier not in ("ForAnyValue", "ForAllValues"):
            raise Unsupported(f"set operator {qualifier!r}")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base not in _BASE:
        raise Unsupported(f"condition operator {operator!r}")
    kind, negated = _BASE[base]
    wanted = _as_list(policy_values)
    present = key.lower() in keys
    if not present:
        if qualifier == "ForAnyValue":
            return False
        return qualifier == "ForAllValues" or if_exists or negated
    got = _as_list(keys[key.lower()])

    def matches(value: Any) -> bool:
        hit = any(_one(kind, p, value) for p in wanted)
        return not hit if negated else hit

    if qualifier == "ForAnyValue":
        return any(matches(v) for v in got)
    if qualifier == "ForAllValues":
        return all(matches(v) for v in got)
    if len(got) != 1:
        raise Unsupported(f"single-valued operator {operator!r} on multi-valued key {key!r}")
    return matches(got[0])


def conditions_match(condition: Mapping[str, Mapping[str, Any]] | None, keys: Mapping[str, Any]) -> bool:
    for operator, block in (condition or {}).items():
        for key, values in block.items():
            if not condition_matches(operator, key, values, keys):
                return False
    return True


def _principal_matches(principal: Any, caller: Caller) -> tuple[bool, bool]:
    """(matches, by_account): whether the statement's Principal covers the caller, and whether only as an account."""
    if principal == "*":
        return True, False
    if not isinstance(principal, Mapping):
        raise Unsupported(f"Principal {principal!r}")
    for kind, values in principal.items():
        if kind not in ("AWS", "Service"):
            raise Unsupported(f"Principal type {kind!r}")
        for value in map(_str, _as_list(values)):
            if kind == "Service":
                if value == caller.service:
                    return True, False
            elif value == "*":  # {"AWS": "*"} is everyone, AWS service principals included
                return True, False
            elif caller.service:
                continue
            elif re.fullmatch(r"\d{12}", value) or value.endswith(":root"):
                account = value if value.isdigit() else value.split(":")[4]
                if account == caller.account:
                    return True, True
            elif value == caller.arn:
                return True, False
    return False, False


def _statement_applies(st: Mapping[str, Any], req: Request, keys: Mapping[str, Any]) -> bool:
    if "NotPrincipal" in st:
        raise Unsupported("NotPrincipal")
    if "Action" in st:
        action_ok = any(_glob(_str(a), req.action, case_sensitive=False) for a in _as_list(st["Action"]))
    elif "NotAction" in st:
        action_ok = not any(_glob(_str(a), req.action, case_sensitive=False) for a in _as_list(st["NotAction"]))
    else:
        raise Unsupported("statement without Action or NotAction")
    if not action_ok:
        return False
    if "Resource" in st:
        resource_ok = any(_glob(_str(r), req.resource) for r in _as_list(st["Resource"]))
    elif "NotResource" in st:
        resource_ok = not any(_glob(_str(r), req.resource) for r in _as_list(st["NotResource"]))
    else:
        resource_ok = True  # role trust policies have no Resource
    return resource_ok and conditions_match(st.get("Condition"), keys)


def _statements(policy: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(policy, Mapping):
        if "Statement" in policy:
            return [dict(s) for s in _as_list(policy["Statement"])]
        return [policy]  # a single statement (for example an AWS::Events::EventBusPolicy Statement)
    return [s for p in policy for s in _statements(p)]


@dataclass(frozen=True)
class _Verdict:
    allow: bool
    deny: bool
    allow_by_account_only: bool = False


def _judge(statements: Iterable[Mapping[str, Any]], req: Request, *, resource_policy: bool) -> _Verdict:
    keys = req.keys()
    allow = deny = False
    by_account_only = True
    for st in statements:
        effect = st.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise Unsupported(f"Effect {effect!r}")
        by_account = False
        if resource_policy:
            if "Principal" not in st:
                raise Unsupported("resource-policy statement without Principal")
            ok, by_account = _principal_matches(st["Principal"], req.caller)
            if not ok:
                continue
        elif "Principal" in st:
            raise Unsupported("Principal in an identity policy or SCP")
        if not _statement_applies(st, req, keys):
            continue
        if effect == "Deny":
            deny = True
        else:
            allow = True
            by_account_only = by_account_only and by_account
    return _Verdict(allow, deny, allow and by_account_only)


def evaluate(
    req: Request,
    *,
    resource_account: str | None,
    resource_policy: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    identity_policies: Sequence[Mapping[str, Any]] = (),
    scps: Sequence[Mapping[str, Any]] | None = None,
) -> Decision:
    """The decision AWS would reach for ``req``, from the given policies only.

    ``scps`` is None when no SCP applies (standalone, the management account, a service
    principal); otherwise the list of SCP documents on the caller's account path.
    """
    res = _judge(_statements(resource_policy or []), req, resource_policy=True)
    ident = _judge(_statements(list(identity_policies)), req, resource_policy=False)
    scp = None
    if scps is not None and not req.caller.service:
        scp = _judge(_statements(list(scps)), req, resource_policy=False)
    if res.deny or ident.deny or (scp is not None and scp.deny):
        return Decision.EXPLICIT_DENY
    if scp is not None and not scp.allow:
        return Decision.IMPLICIT_DENY
    if req.caller.service:
        return Decision.ALLOW if res.allow else Decision.IMPLICIT_DENY
    same_account = req.caller.account is not None and req.caller.account == resource_account
    if same_account:
        granted_by_resource = res.allow and not res.allow_by_account_only
        return Decision.ALLOW if (ident.allow or granted_by_resource) else Decision.IMPLICIT_DENY
    return Decision.ALLOW if (ident.allow and res.allow) else Decision.IMPLICIT_DENY
