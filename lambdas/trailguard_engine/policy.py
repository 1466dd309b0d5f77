"""Policy judgement: who a policy document lets in, and what it lets them do (pure, no AWS calls).

Every rule that reads a policy from a CloudTrail record (bucket, key, queue, topic, repository, secret
policies, role trust policies, identity policies) goes through this module, so one reading of IAM's
semantics decides them all:

* :func:`parse_policy` reads the document however CloudTrail logged it: an object, a JSON string, a
  URL-encoded JSON string (IAM logs policies that way), URL-encoded twice, or JSON inside a JSON string.
  A document with a duplicate key is refused (``error``): which copy AWS honours is not ours to guess,
  so the caller alerts instead of judging half a document.
* :func:`request_too_large`: CloudTrail replaces ``requestParameters`` of a request bigger than its
  field limit by ``{"reason": "requestParameters too large", "omitted": true, "originalSize": N}``
  (``omitted`` is seen both as a boolean and as the string ``"true"``). The policy cannot be read: an
  alert, never a remediation (padding a policy past about 100 KB hides it from the log).
* :func:`public_statements`: Allow statements anyone can use (anonymous or any AWS account).
* :func:`external_grants`: accounts and organizations outside ours that a statement names.
* :func:`admin_like` and :func:`privilege_escalation`: identity policies that grant everything, or a
  set of actions known to lead to everything.
* :func:`known_accounts`: the accounts that are ours (organization accounts, trusted accounts).

Library choice: policyuniverse vs parliament
--------------------------------------------
Both are maintained, pure Python and on PyPI; they answer different questions. Measured on this
project's build machine (parliament 1.6.4 in a scratch virtualenv, policyuniverse 1.5.1.20231109):

* **policyuniverse** (Netflix; already a runtime dependency) ships the IAM action catalogue
  (``data.json``, 8 MB, about 15,300 actions, refreshed with each release) and a resource-policy verdict,
  ``Statement.is_internet_accessible()``. No dependencies; import about 0.17 s.
* **parliament** (Duo Labs) lints *identity* policies: malformed documents, unknown actions,
  resource/action mismatches, and (with its community auditors) ``PRIVILEGE_ESCALATION``, which it does
  report for ``iam:Put*`` + ``iam:Attach*``. It needs boto3, jmespath, json-cfg and PyYAML, ships a 10 MB
  ``iam_definition.json`` and imported in about 2.7 s. It reported nothing for a bucket policy open to
  ``*`` behind ``aws:PrincipalOrgID StringLike o-*`` (it does not judge who a resource policy admits),
  and ``i?m:*`` was an ``UNKNOWN_PREFIX`` to it, not IAM.

So trailguard keeps policyuniverse for what it is good at (the action catalogue, to expand ``iam:Put*``,
``i?m:*``, ``*:*`` and ``NotAction`` into concrete actions) and does not adopt parliament: most of what
trailguard judges is resource policies, its escalation sets are a short public list kept here
(:data:`ESCALATION_SETS`), and a 2.7 s import plus 10 MB would land on the engine's cold start. The principal
and condition judgement is written here, because policyuniverse's ``is_internet_accessible`` gets these
wrong, each one a bypass or a false remediation (tests/decisions/test_policy.py pins every case):

* ``?`` wildcards in a principal account (``arn:aws:iam::????????????:root``): not public for it.
* ``...IfExists`` operators and ``ForAllValues:`` qualifiers: treated as restricting, but both are true
  when the key is absent, and an anonymous request carries no ``aws:PrincipalOrgID`` or ``aws:SourceVpce``.
* ``aws:SourceIp``: only ``/0`` is public for it; ``0.0.0.0/1`` + ``128.0.0.0/1`` (or 256 /8s) is not.
  Here the union of the ranges is measured with :mod:`ipaddress`.
* ``aws:PrincipalOrgID`` ``StringLike`` ``o-a*``: a prefix of an organization ID matches other
  organizations; it only flags ``o-*``.
* policy variables (``${aws:PrincipalAccount}``) in a condition value: they match every caller.
* conditions are AND-ed across keys, but it calls a statement public when *any* entry is wide: a
  statement pinned to one VPC endpoint and also carrying ``aws:SourceIp 0.0.0.0/0`` is not public, and
  removing it would be a wrong remediation.
* its action expansion ignores ``?`` wildcards.

Semantics (IAM policy evaluation, as documented in the IAM User Guide):

* a statement applies only when every condition operator block is true (AND across operators and keys)
  and, inside one key, any value matches (OR); so one restricting entry restricts the statement;
* a restricting entry: a positive operator (``StringEquals``, ``StringLike``, ``ArnEquals``, ``ArnLike``,
  ``IpAddress``, their ``IgnoreCase`` and ``ForAnyValue:`` forms, ``Bool`` for
  ``aws:PrincipalIsAWSService``) on an identity or network key, with values that are fixed: no policy
  variable, and wildcards only where they cannot leave the account or organization (after a fixed
  12-digit account in an ARN, after the organization in ``aws:PrincipalOrgPaths``). ``...IfExists``,
  ``ForAllValues:``, every negated operator (``StringNotEquals aws:PrincipalAccount <own account>`` lets
  every *other* account in) and ``Null`` never restrict.
* ``NotPrincipal`` with Allow admits everyone but the listed principals.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, unquote_plus

from trailguard_engine.events import as_list

if TYPE_CHECKING:
    from trailguard_engine.runtime_config import RuntimeConfig

#: Exactly twelve ASCII digits (``\\d`` would accept other scripts' digits, ``$`` a trailing newline).
ACCOUNT_ID = re.compile(r"\A[0-9]{12}\Z")
ORG_ID = re.compile(r"\Ao-[a-z0-9]{10,32}\Z")
#: Decoding rounds: JSON in JSON, URL-encoded once or twice, and one more for good measure.
MAX_DECODE_ROUNDS = 5
#: A policy bigger than this is not parsed (the largest AWS policy, an SCP or a bucket policy, is 20 KB;
#: CloudTrail drops request parameters past about 100 KB).
MAX_POLICY_CHARS = 1_000_000
#: aws:SourceIp ranges covering more than this many addresses are "a large part of the internet"
#: (S3's own "public" test draws the line at /8 for IPv4 and /32 for IPv6).
MAX_FIXED_ADDRESSES = {4: 2**24, 6: 2**96}
WILDCARD = "*"


# --------------------------------------------------------------------------- #
# Parsing
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class ParsedPolicy:
    """A policy document read from a CloudTrail field; ``document`` None means ``error`` says why."""

    document: dict[str, Any] | None
    error: str | None = None
    #: How it was written: ``object``, ``json``, ``url-encoded``, ... joined by ``+`` when nested.
    encoding: str = ""

    @property
    def ok(self) -> bool:
        return self.document is not None


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKeyError(k)
        out[k] = v
    return out


def parse_policy(value: Any) -> ParsedPolicy:
    """Read a policy document from an object, a JSON string, or a URL-encoded (even twice) JSON string.

    A one-element list (S3 renders some request fields that way) is read as its element. ``encoding``
    records the layers peeled (``url-encoded+url-encoded+json``), for reasons and tests.
    """
    steps: list[str] = []
    current = value
    for _ in range(MAX_DECODE_ROUNDS + 1):
        if isinstance(current, list) and len(current) == 1:
            current = current[0]
        if isinstance(current, Mapping):
            return ParsedPolicy(dict(current), None, "+".join(steps) or "object")
        if not isinstance(current, str):
            return ParsedPolicy(None, f"expected a policy document, got {type(current).__name__}")
        text = current.strip()
        if not text:
            return ParsedPolicy(None, "empty policy")
        if len(text) > MAX_POLICY_CHARS:
            return ParsedPolicy(None, f"policy longer than {MAX_POLICY_CHARS} characters")
        try:
            decoded = json.loads(text, object_pairs_hook=_no_duplicates)
        except _DuplicateKeyError as exc:
            return ParsedPolicy(None, f"duplicate key {exc.args[0]!r}: which copy AWS uses is ambiguous")
        except ValueError:
            nxt = _url_decoded(text)
            if nxt is None:
                return ParsedPolicy(None, "not JSON and not URL-encoded JSON")
            steps.append("url-encoded")
            current = nxt
            continue
        if isinstance(decoded, Mapping):
            steps.append("json")
            return ParsedPolicy(dict(decoded), None, "+".join(steps))
        if isinstance(decoded, str):
            steps.append("json-string")
            current = decoded
            continue
        return ParsedPolicy(None, f"JSON {type(decoded).__name__}, not an object")
    return ParsedPolicy(None, f"still encoded after {MAX_DECODE_ROUNDS} rounds of decoding")


def _url_decoded(text: str) -> str | None:
    """One round of URL decoding (``%XX``; ``+`` as a space only when ``%XX`` alone does not give JSON)."""
    once = unquote(text)
    if "+" in once:
        plus = unquote_plus(text)
        try:
            json.loads(plus)
        except ValueError:
            pass
        else:
            try:
                json.loads(once)
            except ValueError:
                return plus
    return once if once != text else None


def request_too_large(request_parameters: Any) -> bool:
    """True when CloudTrail omitted ``requestParameters`` because the request was too large to log."""
    if not isinstance(request_parameters, Mapping):
        return False
    omitted = request_parameters.get("omitted")
    if omitted is True or (isinstance(omitted, str) and omitted.strip().lower() == "true"):
        return True
    reason = request_parameters.get("reason")
    return isinstance(reason, str) and "too large" in reason.lower()


def statements(document: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The document's statements as a list (a single statement object is a list of one)."""
    if not isinstance(document, Mapping):
        return []
    return [s for s in as_list(_get(document, "Statement")) if isinstance(s, Mapping)]


def _get(obj: Mapping[str, Any], key: str) -> Any:
    """``obj[key]``, falling back to a case-insensitive match (IAM rejects those; we judge them anyway)."""
    if key in obj:
        return obj[key]
    low = key.lower()
    for k, v in obj.items():
        if isinstance(k, str) and k.lower() == low:
            return v
    return None


def _has(obj: Mapping[str, Any], key: str) -> bool:
    low = key.lower()
    return any(isinstance(k, str) and k.lower() == low for k in obj)


def _label(stmt: Mapping[str, Any], index: int) -> str:
    sid = _get(stmt, "Sid")
    return sid if isinstance(sid, str) and sid else f"#{index}"


def is_allow(stmt: Mapping[str, Any]) -> bool:
    effect = _get(stmt, "Effect")
    return isinstance(effect, str) and effect.strip().lower() == "allow"


def _strs(value: Any) -> list[str]:
    """Strings of a value or list; JSON numbers (an account written without quotes) become strings."""
    out = []
    for v in as_list(value):
        if isinstance(v, bool):
            continue
        if isinstance(v, (str, int)):
            out.append(str(v).strip())
    return out


# --------------------------------------------------------------------------- #
# Principals
# --------------------------------------------------------------------------- #


def _principal_values(value: Any) -> list[str]:
    """Strings of a principal value or list; a JSON number only when it is a 12-digit account ID."""
    out = []
    for v in as_list(value):
        if isinstance(v, str):
            out.append(v.strip())
        elif isinstance(v, int) and not isinstance(v, bool) and ACCOUNT_ID.match(str(v)):
            out.append(str(v))
    return out


def principal_account(value: str) -> str:
    """The account a principal value belongs to: 12 digits, ``*`` for anyone, or '' when it has none.

    ``*``, an ARN with a wildcard (``*`` or ``?``) in or before its account field (``arn:*``,
    ``arn:aws:iam::*:root``, ``arn:aws:iam::????????????:root``), or any other wildcard spelling
    is anyone. Service principals and unreadable values have no account ('').
    """
    p = value.strip()
    if not p:
        return ""
    if ACCOUNT_ID.match(p):
        return p
    if p.lower().startswith("arn:"):
        parts = p.split(":", 5)
        head = parts[:5]
        if any("*" in x or "?" in x for x in head) or len(parts) < 6:
            return WILDCARD if ("*" in p or "?" in p) else ""
        return parts[4] if ACCOUNT_ID.match(parts[4]) else ""
    if "*" in p or "?" in p:
        return WILDCARD
    return ""


@dataclass(frozen=True, slots=True)
class Principals:
    """Who a statement names: anyone, accounts (from account IDs and ARNs), services, the rest."""

    anyone: bool = False
    not_principal: bool = False
    accounts: frozenset[str] = frozenset()
    services: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    #: AWS principals with no readable account (unique IDs, malformed ARNs): reported, never trusted.
    unreadable: tuple[str, ...] = ()
    present: bool = False


def statement_principals(stmt: Mapping[str, Any]) -> Principals:
    """The principals of a statement (``Principal`` or ``NotPrincipal``); ``present`` False for identity policies."""
    not_principal = _has(stmt, "NotPrincipal")
    raw = _get(stmt, "NotPrincipal") if not_principal else _get(stmt, "Principal")
    if raw is None:
        return Principals(not_principal=not_principal, present=not_principal)
    entries: list[tuple[str, str]] = []
    if isinstance(raw, Mapping):
        for kind, values in raw.items():
            entries += [(str(kind).lower(), v) for v in _principal_values(values)]
    else:
        entries += [("aws", v) for v in _principal_values(raw)]
    anyone = False
    accounts: set[str] = set()
    services: list[str] = []
    federated: list[str] = []
    unreadable: list[str] = []
    for kind, v in entries:
        if kind == "service":
            if v.strip() == "*":
                anyone = True
            else:
                services.append(v)
            continue
        if kind == "federated":
            if v.strip() == "*":
                anyone = True
            else:
                federated.append(v)
            continue
        if kind == "canonicaluser":
            if v.strip() == "*":
                anyone = True
            continue
        acct = principal_account(v)
        if acct == WILDCARD:
            anyone = True
        elif acct:
            accounts.add(acct)
        else:
            unreadable.append(v)
    return Principals(
        anyone=anyone,
        not_principal=not_principal,
        accounts=frozenset(accounts),
        services=tuple(services),
        federated=tuple(federated),
        unreadable=tuple(unreadable),
        present=True,
    )


# --------------------------------------------------------------------------- #
# Conditions
# --------------------------------------------------------------------------- #

_ACCOUNT_KEYS = frozenset(
    {
        "aws:principalaccount",
        "aws:sourceaccount",
        "aws:sourceowner",
        "kms:calleraccount",
        "s3:dataaccesspointaccount",
    }
)
_ORG_KEYS = frozenset({"aws:principalorgid", "aws:sourceorgid"})
_ORG_PATH_KEYS = frozenset({"aws:principalorgpaths", "aws:sourceorgpaths"})
_ARN_KEYS = frozenset({"aws:principalarn", "aws:sourcearn", "s3:dataaccesspointarn"})
_NETWORK_KEYS = frozenset({"aws:sourcevpc", "aws:sourcevpce", "aws:vpceaccount", "aws:vpceorgid", "aws:userid"})
_SERVICE_KEYS = frozenset({"aws:principalservicename"})
_POSITIVE_OPS = frozenset(
    {
        "stringequals",
        "stringequalsignorecase",
        "stringlike",
        "arnequals",
        "arnlike",
        "ipaddress",
        "bool",
    }
)


@dataclass(frozen=True, slots=True)
class Restriction:
    """What one condition entry restricts the caller to (``kind``: account, org, network, service)."""

    kind: str
    values: frozenset[str]
    text: str


@dataclass(frozen=True, slots=True)
class ConditionVerdict:
    """The restricting entries of a condition block, and the entries that look restrictive but are not."""

    restrictions: tuple[Restriction, ...] = ()
    weak: tuple[str, ...] = field(default_factory=tuple)

    @property
    def restricted(self) -> bool:
        return bool(self.restrictions)

    def of(self, kind: str) -> list[Restriction]:
        return [r for r in self.restrictions if r.kind == kind]


def _wild(v: str) -> bool:
    return "*" in v or "?" in v


def _fixed(values: list[str], like: bool) -> bool:
    """No policy variable anywhere; with a ``Like`` operator, no wildcard either."""
    if not values:
        return False
    return not any("${" in v or (like and _wild(v)) for v in values)


def _arn_accounts(values: list[str]) -> tuple[set[str], bool, bool]:
    """``(accounts, pinned, all_have_accounts)`` for ARN condition values.

    ``ArnEquals`` and ``ArnLike`` both take ``*`` and ``?`` in every field. A value is pinned when its
    account field is 12 fixed digits, or when it names one literal resource with no account field (an S3
    bucket). A wildcard in the account field, or a policy variable anywhere, pins nothing.
    """
    accounts: set[str] = set()
    every = True
    for v in values:
        if "${" in v:
            return set(), False, False
        parts = v.split(":", 5)
        acct = parts[4] if len(parts) == 6 else None
        if acct is not None and ACCOUNT_ID.match(acct):
            accounts.add(acct)
        elif (acct == "" or acct is None) and not _wild(v):
            every = False
        else:
            return set(), False, False
    return accounts, bool(values), every


def _ip_narrow(values: list[str]) -> bool:
    """Every value is an address or CIDR and together they cover at most a /8 (IPv4) or /32 (IPv6)."""
    nets: dict[int, list[Any]] = {4: [], 6: []}
    for v in values:
        try:
            net = ipaddress.ip_network(v, strict=False)
        except ValueError:
            return False
        nets[net.version].append(net)
    for version, group in nets.items():
        total = sum(n.num_addresses for n in ipaddress.collapse_addresses(group)) if group else 0
        if total > MAX_FIXED_ADDRESSES[version]:
            return False
    return True


def _entry(op: str, key: str, values: list[str]) -> Restriction | str | None:
    """One condition entry: a Restriction, a string saying why it looks restrictive but is not, or None."""
    op_l = op.strip().lower()
    key_l = key.strip().lower()
    identity_key = key_l in _ACCOUNT_KEYS | _ORG_KEYS | _ORG_PATH_KEYS | _ARN_KEYS | _NETWORK_KEYS | _SERVICE_KEYS
    identity_key = identity_key or key_l in ("aws:sourceip", "aws:principalisawsservice")
    if not identity_key:
        return None
    shown = f"{op} {key} {values if len(values) != 1 else values[0]!r}"
    if op_l.startswith("forallvalues:"):
        return f"{shown}: ForAllValues is true when the key is absent"
    base = op_l.removeprefix("foranyvalue:")
    if base.endswith("ifexists"):
        return f"{shown}: IfExists is true when the key is absent"
    if base not in _POSITIVE_OPS:
        return f"{shown}: a negated or non-matching operator admits everyone else"
    like = base.endswith("like") or base.startswith("arn")
    if key_l == "aws:sourceip":
        if base != "ipaddress":
            return f"{shown}: not an IpAddress test"
        if _ip_narrow(values):
            return Restriction("network", frozenset(values), shown)
        return f"{shown}: the ranges cover more than a /8 (IPv4) or /32 (IPv6) of the internet"
    if key_l == "aws:principalisawsservice":
        if base == "bool" and [v.lower() for v in values] == ["true"]:
            return Restriction("service", frozenset(values), shown)
        return f"{shown}: does not require an AWS service"
    if base in ("ipaddress", "bool"):
        return f"{shown}: operator does not apply to this key"
    if key_l in _ACCOUNT_KEYS:
        if _fixed(values, like):
            return Restriction("account", frozenset(values), shown)
        return f"{shown}: not fixed account IDs"
    if key_l in _ORG_KEYS:
        if _fixed(values, like):
            return Restriction("org", frozenset(values), shown)
        return f"{shown}: not a fixed organization ID (a wildcard matches other organizations)"
    if key_l in _ORG_PATH_KEYS:
        orgs = [v.split("/", 1)[0] for v in values]
        if values and not any("${" in v for v in values) and _fixed(orgs, True):
            return Restriction("org", frozenset(orgs), shown)
        return f"{shown}: the organization part is not fixed"
    if key_l in _ARN_KEYS:
        accounts, pinned, every = _arn_accounts(values)
        if not pinned:
            return f"{shown}: the ARN's account is not fixed"
        if every:
            return Restriction("account", frozenset(accounts), shown)
        return Restriction("network", frozenset(values), shown)
    if key_l in _NETWORK_KEYS | _SERVICE_KEYS:
        if key_l == "aws:userid":
            # AROAEXAMPLE:* is pinned to one role; a leading or lone wildcard is not.
            ok = values and all("${" not in v and (not _wild(v) or re.fullmatch(r"[A-Z0-9]+:\*", v)) for v in values)
            if ok:
                return Restriction("network", frozenset(values), shown)
            return f"{shown}: not a fixed user ID"
        if _fixed(values, like):
            kind = "service" if key_l in _SERVICE_KEYS else "network"
            return Restriction(kind, frozenset(values), shown)
        return f"{shown}: not a fixed value"
    return None


def judge_condition(condition: Any) -> ConditionVerdict:
    """The restricting entries of a ``Condition`` block (see the module docstring for the semantics)."""
    if not isinstance(condition, Mapping):
        return ConditionVerdict()
    restrictions: list[Restriction] = []
    weak: list[str] = []
    for op, block in condition.items():
        if not isinstance(op, str) or not isinstance(block, Mapping):
            continue
        for key, value in block.items():
            if not isinstance(key, str):
                continue
            got = _entry(op, key, _strs(value))
            if isinstance(got, Restriction):
                restrictions.append(got)
            elif isinstance(got, str):
                weak.append(got)
    return ConditionVerdict(tuple(restrictions), tuple(weak))


# --------------------------------------------------------------------------- #
# Public statements
# --------------------------------------------------------------------------- #


def statement_public(stmt: Mapping[str, Any], own_account: str = "") -> str | None:
    """Why an Allow statement admits anyone (anonymous or any AWS account), or None.

    ``own_account`` only sharpens the reason (a negated test on it admits every other account).
    """
    if not is_allow(stmt):
        return None
    who = statement_principals(stmt)
    if not who.present:
        return None
    if not (who.anyone or who.not_principal):
        return None
    verdict = judge_condition(_get(stmt, "Condition"))
    if verdict.restricted:
        return None
    what = "NotPrincipal (everyone but the listed principals)" if who.not_principal else "Principal '*'"
    if verdict.weak:
        notes = "; ".join(verdict.weak)
        if own_account and own_account in notes and "not" in notes.lower():
            notes += f" (every account but {own_account})"
        return f"{what} with conditions that do not restrict the caller: {notes}"
    return f"{what} with no condition restricting the caller"


def public_statement_refs(document: Mapping[str, Any] | None, own_account: str = "") -> list[dict[str, Any]]:
    """Index, Sid and reason of each public statement (the shape remediation params carry)."""
    out: list[dict[str, Any]] = []
    for i, stmt in enumerate(statements(document)):
        why = statement_public(stmt, own_account)
        if why:
            sid = _get(stmt, "Sid")
            out.append({"index": i, "sid": sid if isinstance(sid, str) else "", "why": why})
    return out


def public_statements(document: Mapping[str, Any] | None, own_account: str = "") -> list[str]:
    """One reason per statement that admits anyone (``"<Sid or #index>: why"``)."""
    return [f"{r['sid'] or '#' + str(r['index'])}: {r['why']}" for r in public_statement_refs(document, own_account)]


# --------------------------------------------------------------------------- #
# External grants
# --------------------------------------------------------------------------- #


def statement_grantees(stmt: Mapping[str, Any]) -> tuple[set[str], set[str], list[str]]:
    """``(accounts, organizations, unreadable principals)`` an Allow statement that is not public admits.

    With ``Principal: "*"`` restricted by conditions, the grantees are the accounts (``aws:PrincipalAccount``,
    ``aws:SourceAccount``, ``aws:PrincipalArn`` ...) or organizations the conditions pin; a statement pinned
    only by network or service keys names nobody specific. Named principals are narrowed by account
    conditions when those are present.
    """
    if not is_allow(stmt):
        return set(), set(), []
    who = statement_principals(stmt)
    if not who.present:
        return set(), set(), []
    verdict = judge_condition(_get(stmt, "Condition"))
    if (who.anyone or who.not_principal) and not verdict.restricted:
        return set(), set(), []  # public: reported by public_statements
    account_sets = [set(r.values) for r in verdict.of("account")]
    org_sets = [set(r.values) for r in verdict.of("org")]
    pinned_accounts: set[str] | None = set.intersection(*account_sets) if account_sets else None
    pinned_orgs: set[str] | None = set.intersection(*org_sets) if org_sets else None
    if who.anyone or who.not_principal:
        if pinned_accounts is not None:
            return pinned_accounts, set(), []
        if pinned_orgs is not None:
            return set(), pinned_orgs, []
        return set(), set(), []
    accounts = set(who.accounts)
    if pinned_accounts is not None:
        accounts &= pinned_accounts
    return accounts, set(), list(who.unreadable)


def external_grants(
    document: Mapping[str, Any] | None,
    own_account: str,
    known_accounts: frozenset[str] = frozenset(),
    *,
    org_id: str | None = None,
) -> list[str]:
    """Account IDs, organization IDs or unreadable principals granted that are not ours.

    Ours: ``own_account``, ``known_accounts`` (see :func:`known_accounts`) and, for organization pins,
    ``org_id``. A statement pinned with ``aws:PrincipalOrgID`` to our own organization admits only our
    accounts whatever principals it names. Public statements are not repeated here.
    """
    found: set[str] = set()
    for stmt in statements(document):
        accounts, orgs, unreadable = statement_grantees(stmt)
        verdict = judge_condition(_get(stmt, "Condition"))
        own_org_pin = bool(org_id) and any(r.values == frozenset({org_id}) for r in verdict.of("org"))
        if own_org_pin:
            continue
        found |= {a for a in accounts if a != own_account and a not in known_accounts}
        found |= {o for o in orgs if o != org_id}
        found |= set(unreadable)
    return sorted(found)


# --------------------------------------------------------------------------- #
# Actions
# --------------------------------------------------------------------------- #


@lru_cache(maxsize=1)
def _catalogue() -> frozenset[str]:
    from policyuniverse import all_permissions  # noqa: PLC0415 - 0.17 s and 8 MB: only when a policy is judged

    return frozenset(all_permissions)


@lru_cache(maxsize=1)
def _iam_catalogue() -> frozenset[str]:
    """The catalogue's IAM actions (built once: admin_like asks for them on every policy it judges)."""
    return frozenset(a for a in _catalogue() if a.startswith("iam:"))


def _pattern(action: str) -> str:
    # IAM wildcards are * and ?; brackets are literal in IAM, character classes in fnmatch.
    return action.strip().lower().replace("[", "[[]")


def expand_actions(patterns: Iterable[str]) -> frozenset[str]:
    """The catalogue actions matching any pattern (``*`` and ``?`` wildcards, case-insensitive).

    A literal action the catalogue does not know yet is kept as written (lower case).
    """
    out: set[str] = set()
    for raw in patterns:
        out |= _expand_one(raw.strip().lower())
    return frozenset(out)


@lru_cache(maxsize=512)
def _expand_one(action: str) -> frozenset[str]:
    if not action:
        return frozenset()
    if not _wild(action):
        return frozenset({action})
    pat = _pattern(action)
    return frozenset(a for a in _catalogue() if fnmatch.fnmatchcase(a, pat))


def statement_actions(stmt: Mapping[str, Any]) -> frozenset[str]:
    """Concrete actions a statement covers: ``Action`` expanded, or the catalogue minus ``NotAction``."""
    if _has(stmt, "NotAction"):
        return _catalogue() - expand_actions(_strs(_get(stmt, "NotAction")))
    return expand_actions(_strs(_get(stmt, "Action")))


#: Resources of different services and accounts: a Resource pattern matching them all is "every resource".
_PROBES = (
    "arn:aws:iam::{a}:role/probe",
    "arn:aws:iam::{a}:user/probe",
    "arn:aws:s3:::probe-bucket/key",
    "arn:aws:ec2:us-east-1:{a}:instance/i-0123456789abcdef0",
    "arn:aws:kms:eu-west-1:{a}:key/probe",
)
_IAM_PROBES = (*_PROBES[:2], "arn:aws:iam::{a}:policy/probe")


def _covers(patterns: list[str], probes: tuple[str, ...]) -> bool:
    for raw in patterns:
        pat = _pattern(raw)
        parts = pat.split(":", 5)
        acct = parts[4] if len(parts) >= 6 and ACCOUNT_ID.match(parts[4]) else "123456789012"
        if all(fnmatch.fnmatchcase(p.format(a=acct), pat) for p in probes):
            return True
    return False


def _all_resources(stmt: Mapping[str, Any], probes: tuple[str, ...] = _PROBES) -> bool:
    if _has(stmt, "NotResource"):
        return True
    return _covers(_strs(_get(stmt, "Resource")), probes)


def admin_like(document: Mapping[str, Any] | None) -> list[str]:
    """Why each Allow statement is admin-like.

    * every action (``*``, ``*:*``, ``?*`` ...) on every resource;
    * ``NotAction`` on every resource (everything but a short list);
    * every IAM action (``iam:*``, ``iam:*`` spelled ``i?m:*``, ``iam:*`` + ...) on every IAM resource:
      it can grant itself anything.
    """
    found: list[str] = []
    for i, stmt in enumerate(statements(document)):
        if not is_allow(stmt) or _has(stmt, "Principal") or _has(stmt, "NotPrincipal"):
            continue
        label = _label(stmt, i)
        if _has(stmt, "NotAction"):
            if _all_resources(stmt):
                excluded = ", ".join(_strs(_get(stmt, "NotAction"))[:5]) or "nothing"
                found.append(f"{label}: Allow NotAction on every resource (everything except {excluded})")
            continue
        actions = statement_actions(stmt)
        if actions >= _catalogue() and _all_resources(stmt):
            found.append(f"{label}: Allow * on * (every action on every resource)")
        elif actions >= _iam_catalogue() and _all_resources(stmt, _IAM_PROBES):
            found.append(
                f"{label}: Allow iam:* on * (every IAM action on every IAM resource: can grant itself anything)"
            )
    return found


#: Sets of actions that, together, let a principal grant itself more (public privilege-escalation research:
#: Rhino Security Labs' list and later additions). Every action of a set must be allowed.
ESCALATION_SETS: tuple[tuple[str, frozenset[str]], ...] = (
    ("create a new default version of a managed policy", frozenset({"iam:createpolicyversion"})),
    ("switch a managed policy to an older version", frozenset({"iam:setdefaultpolicyversion"})),
    ("attach any managed policy to a user", frozenset({"iam:attachuserpolicy"})),
    ("attach any managed policy to a group", frozenset({"iam:attachgrouppolicy"})),
    ("attach any managed policy to a role", frozenset({"iam:attachrolepolicy"})),
    ("write an inline policy on a user", frozenset({"iam:putuserpolicy"})),
    ("write an inline policy on a group", frozenset({"iam:putgrouppolicy"})),
    ("write an inline policy on a role", frozenset({"iam:putrolepolicy"})),
    ("add a user to any group", frozenset({"iam:addusertogroup"})),
    ("create access keys for other users", frozenset({"iam:createaccesskey"})),
    ("set another user's console password", frozenset({"iam:createloginprofile"})),
    ("change another user's console password", frozenset({"iam:updateloginprofile"})),
    ("rewrite a role's trust and assume it", frozenset({"iam:updateassumerolepolicy", "sts:assumerole"})),
    ("remove a permissions boundary", frozenset({"iam:deleteuserpermissionsboundary"})),
    ("remove a role's permissions boundary", frozenset({"iam:deleterolepermissionsboundary"})),
    ("pass a role to a new EC2 instance", frozenset({"iam:passrole", "ec2:runinstances"})),
    (
        "pass a role to a new Lambda function and invoke it",
        frozenset({"iam:passrole", "lambda:createfunction", "lambda:invokefunction"}),
    ),
    (
        "pass a role to a new Lambda function behind an event source",
        frozenset({"iam:passrole", "lambda:createfunction", "lambda:createeventsourcemapping"}),
    ),
    ("replace a Lambda function's code", frozenset({"lambda:updatefunctioncode"})),
    ("pass a role to a CloudFormation stack", frozenset({"iam:passrole", "cloudformation:createstack"})),
    ("pass a role to a Glue development endpoint", frozenset({"iam:passrole", "glue:createdevendpoint"})),
    ("take over a Glue development endpoint", frozenset({"glue:updatedevendpoint"})),
    ("pass a role to a Data Pipeline", frozenset({"iam:passrole", "datapipeline:createpipeline"})),
    ("pass a role to a SageMaker notebook", frozenset({"iam:passrole", "sagemaker:createnotebookinstance"})),
    ("pass a role to a CodeBuild project", frozenset({"iam:passrole", "codebuild:createproject"})),
    ("attach a role to a running EC2 instance", frozenset({"iam:passrole", "ec2:associateiaminstanceprofile"})),
)


def allowed_actions(document: Mapping[str, Any] | None, *, every_resource: bool = False) -> frozenset[str]:
    """Concrete actions the identity policy allows, minus those denied on every resource without condition.

    ``every_resource``: count only Allow statements on every resource (``*``, ``arn:*``, ``NotResource`` ...).
    """
    allowed: set[str] = set()
    denied: set[str] = set()
    for stmt in statements(document):
        if _has(stmt, "Principal") or _has(stmt, "NotPrincipal"):
            continue
        if is_allow(stmt):
            if not every_resource or _all_resources(stmt, _IAM_PROBES):
                allowed |= statement_actions(stmt)
        elif _get(stmt, "Condition") in (None, {}) and _all_resources(stmt):
            effect = _get(stmt, "Effect")
            if isinstance(effect, str) and effect.strip().lower() == "deny":
                denied |= statement_actions(stmt)
    return frozenset(allowed - denied)


def privilege_escalation(
    document: Mapping[str, Any] | None, *, every_resource: bool = False, iam_only: bool = False
) -> list[str]:
    """The privilege-escalation sets the identity policy allows, across its statements (one reason each).

    ``every_resource``: only grants on every (IAM) resource count. ``iam_only``: only the sets made of IAM
    and STS actions (a principal editing IAM itself), not the PassRole-to-a-service ones.
    """
    actions = allowed_actions(document, every_resource=every_resource)
    if not actions:
        return []
    out = []
    for why, need in ESCALATION_SETS:
        if iam_only and not all(a.startswith(("iam:", "sts:")) for a in need):
            continue
        if need <= actions:
            out.append(f"{why} ({' + '.join(sorted(need))})")
    return out


# --------------------------------------------------------------------------- #
# Our accounts
# --------------------------------------------------------------------------- #


def known_accounts(cfg: RuntimeConfig) -> frozenset[str]:
    """The accounts that are ours: the organization's (when known), trusted ones, management and engine.

    The organization list comes from ``cfg.organization_accounts``: the engine loads it from a cached
    ``organizations:ListAccounts`` (:mod:`trailguard_engine.org_accounts`), replay from the config file.
    When it is unknown (None: not configured, or the call failed) only the configured accounts count,
    so an account of the organization looks external: an alert, never a silence.
    """
    ours: set[str] = set(getattr(cfg, "organization_accounts", None) or ())
    ours |= set(cfg.intended.trusted_accounts)
    for extra in (cfg.management_account, cfg.engine_account):
        if extra:
            ours.add(extra)
    return frozenset(a for a in ours if ACCOUNT_ID.match(a))


def organization_known(cfg: RuntimeConfig) -> bool:
    """Whether the organization's account list is known (else membership of other accounts is unverified)."""
    return getattr(cfg, "organization_accounts", None) is not None


def is_account_id(value: Any) -> bool:
    return isinstance(value, str) and ACCOUNT_ID.match(value) is not None
