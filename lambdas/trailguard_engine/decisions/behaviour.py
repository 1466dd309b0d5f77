"""Decisions for suspicious-behaviour rules: tooling user agents, human Lambda changes, user data, EKS
cluster-admin access and control-plane logging, domain transfers, opt-in Regions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from trailguard_engine.decisions import decision
from trailguard_engine.decisions.execution import person
from trailguard_engine.events import CloudTrailEvent, as_list, dig
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig

DEFAULT_MARKERS = ("kali", "parrot", "pentoo", "pacu", "trufflehog")
CONSOLE_AGENTS = ("console.amazonaws.com", "signin.amazonaws.com")


@lru_cache(maxsize=16)
def _marker_re(markers: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(m) for m in markers)
    # A marker must be a word of its own: "x86_64.kali.2024", "6.5.0-13parrot1", "Pacu/1.5", "TruffleHog" match;
    # "alkaline" does not.
    return re.compile(rf"(?<![a-z])({alternatives})(?![a-z])", re.IGNORECASE)


@decision("offensive_user_agent")
def offensive_user_agent(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Risky when the user agent names an offensive distribution or tool as a word of its own."""
    markers = tuple(m for m in as_list(rule.params.get("markers")) if isinstance(m, str) and m) or DEFAULT_MARKERS
    m = _marker_re(markers).search(event.user_agent)
    if m is None:
        return Assessment(False, "user agent has no offensive-tool marker as a word")
    who = event.principal_arn or event.access_key_id or "unknown principal"
    return Assessment(
        True,
        f"{event.event_name} from a {m.group(1).lower()} user agent by {who} (key {event.access_key_id or '-'})",
        {"type": "AWS::IAM::Principal", "id": who},
        remediable=False,
    )


def human_actor(event: CloudTrailEvent) -> str | None:
    """Why the caller counts as a person, or None for pipelines and services.

    A person is an IAM user or the root user; an IAM Identity Center session
    (role ``AWSReservedSSO_*``); or another assumed-role session that no AWS
    service invoked and that used the console or a browser.
    """
    kind = event.identity_type
    if kind in ("IAMUser", "Root"):
        return kind
    if kind != "AssumedRole":
        return None
    issuer = dig(event.identity, "sessionContext", "sessionIssuer", "userName")
    if isinstance(issuer, str) and issuer.startswith("AWSReservedSSO_"):
        return "IAM Identity Center session"
    ua = event.user_agent
    if not event.invoked_by and (ua.startswith("Mozilla/") or ua in CONSOLE_AGENTS):
        return "console session"
    return None


@decision("lambda_human_change")
def lambda_human_change(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Lambda code (or layers) changed by a person rather than a pipeline, under any API version suffix."""
    name = event.event_name
    if name.startswith("UpdateFunctionConfiguration") and not as_list(event.req("layers")):
        return Assessment(False, "configuration change without layers")
    if not name.startswith(("UpdateFunctionCode", "UpdateFunctionConfiguration")):
        return Assessment(False, f"{name} is not a code or layer change")
    caller = person(event, cfg)
    # The caller classifier decides (IAM users, root, Identity Center, console and MFA sessions); a role session
    # it cannot place (unknown) still counts when it used a browser and no service invoked it.
    actor = caller.why if caller.kind == "human" else human_actor(event) if caller.kind == "unknown" else None
    if actor is None:
        return Assessment(False, f"made by a pipeline or service, not a person ({caller.describe()})")
    fn = event.req("functionName")
    fn_id = fn if isinstance(fn, str) else ""
    what = "layers" if name.startswith("UpdateFunctionConfiguration") else "code"
    return Assessment(
        True,
        f"Lambda {what} of {fn_id or '?'} changed by {event.principal_arn or 'unknown'} ({actor})",
        {"type": "AWS::Lambda::Function", "id": fn_id},
        remediable=False,
    )


def _sets_userdata(request: Mapping[str, Any]) -> bool:
    """The request sets user data: the ``userData`` object form, or the flat ``attribute``/``value`` form
    (``aws ec2 modify-instance-attribute --attribute userData --value ...``); attribute names compare
    case-insensitively.
    """
    if any(isinstance(k, str) and k.lower() == "userdata" for k in request):
        return True
    attr = request.get("attribute")
    return isinstance(attr, str) and attr.strip().lower() == "userdata"


@decision("ec2_userdata")
def ec2_userdata(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """ModifyInstanceAttribute: risky only when the user data attribute was set (object or flat form)."""
    if not _sets_userdata(event.request):
        return Assessment(False, "another instance attribute changed")
    instance = event.req("instanceId")
    iid = instance if isinstance(instance, str) else ""
    return Assessment(
        True,
        f"user data of {iid or '?'} modified by {event.principal_arn or 'unknown principal'}",
        {"type": "AWS::EC2::Instance", "id": iid},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# Other high-value changes: EKS access and audit logs, domain transfers, opt-in Regions
# --------------------------------------------------------------------------- #
#: EKS access policies that make a principal cluster-wide admin.
CLUSTER_ADMIN_POLICIES = ("AmazonEKSClusterAdminPolicy",)
#: Access policies that are admin too when scoped to the whole cluster.
CLUSTER_SCOPED_ADMIN_POLICIES = ("AmazonEKSAdminPolicy",)
ADMIN_GROUPS = ("system:masters",)


def _account_of(arn: str) -> str:
    m = re.match(r"^arn:[^:]*:[^:]*:[^:]*:(\d{12}):", arn or "")
    return m.group(1) if m else ""


@decision("eks_cluster_admin_access")
def eks_cluster_admin_access(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """An EKS access entry that makes a principal cluster admin: AssociateAccessPolicy with the cluster-admin
    policy (or the admin policy at cluster scope), or CreateAccessEntry/UpdateAccessEntry putting the principal in
    the ``system:masters`` Kubernetes group.
    """
    cluster = event.req("clusterName")
    cid = cluster if isinstance(cluster, str) else ""
    principal = event.req("principalArn")
    who = principal if isinstance(principal, str) else "?"
    resource = {"type": "AWS::EKS::Cluster", "id": cid}
    how = ""
    if event.event_name == "AssociateAccessPolicy":
        policy = event.req("policyArn")
        name = policy.rsplit("/", 1)[-1].lower() if isinstance(policy, str) else ""
        scope = event.req("accessScope", "type")
        cluster_scope = not (isinstance(scope, str) and scope.lower() == "namespace")
        if name in {p.lower() for p in CLUSTER_ADMIN_POLICIES}:
            how = f"access policy {policy}"
        elif cluster_scope and name in {p.lower() for p in CLUSTER_SCOPED_ADMIN_POLICIES}:
            how = f"access policy {policy} at cluster scope"
    elif event.event_name in ("CreateAccessEntry", "UpdateAccessEntry"):
        groups = [g for g in as_list(event.req("kubernetesGroups")) if isinstance(g, str)]
        admin = [g for g in groups if g in ADMIN_GROUPS]  # Kubernetes group names are case-sensitive
        if admin:
            how = f"Kubernetes group {admin[0]}"
    if not how:
        return Assessment(False, "no cluster-admin access granted", resource)
    account = _account_of(who)
    foreign = f" (principal in another account, {account})" if account and account != event.account else ""
    return Assessment(
        True,
        f"EKS cluster {cid or '?'}: {who} made cluster admin through {how}{foreign} by "
        f"{event.principal_arn or 'unknown'}",
        resource,
        remediable=False,
    )


def _falsy(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


@decision("eks_logging_disabled")
def eks_logging_disabled(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """UpdateClusterConfig turning control-plane log types (api, audit, authenticator ...) off."""
    name = event.req("name")
    cid = name if isinstance(name, str) else ""
    off: list[str] = []
    for entry in as_list(dig(event.request, "logging", "clusterLogging")):
        if isinstance(entry, Mapping) and _falsy(entry.get("enabled")):
            off += [t for t in as_list(entry.get("types")) if isinstance(t, str)]
    resource = {"type": "AWS::EKS::Cluster", "id": cid}
    if not off:
        return Assessment(False, "no control-plane log type turned off", resource)
    return Assessment(
        True,
        f"EKS cluster {cid or '?'}: control-plane logging off for {', '.join(off)} by {event.principal_arn or 'unknown'}",
        resource,
        remediable=False,
    )


DOMAIN_CALLS = ("TransferDomain", "TransferDomainToAnotherAwsAccount", "DisableDomainTransferLock")


@decision("route53_domain_transfer")
def route53_domain_transfer(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A registered domain moved to another account or registrar, or its transfer lock removed."""
    name = event.event_name
    if name not in DOMAIN_CALLS:
        return Assessment(False, f"{name} does not move a domain")
    domain = event.req("domainName")
    did = domain if isinstance(domain, str) else ""
    what = {
        "TransferDomain": "transfer into Route 53 requested",
        "DisableDomainTransferLock": "transfer lock removed",
    }.get(name, "")
    if name == "TransferDomainToAnotherAwsAccount":
        target = event.req("accountId")
        what = f"transfer to account {target if isinstance(target, (str, int)) else '?'} started"
    return Assessment(
        True,
        f"domain {did or '?'}: {what} by {event.principal_arn or 'unknown'}",
        {"type": "AWS::Route53Domains::Domain", "id": did},
        remediable=False,
    )


@decision("account_region_enabled")
def account_region_enabled(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """account:EnableRegion for a Region not in ``params.allowed_regions``: an opt-in Region nobody watches."""
    region = event.req("regionName") or event.req("RegionName")
    rid = region if isinstance(region, str) else ""
    allowed = {r.lower() for r in as_list(rule.params.get("allowed_regions")) if isinstance(r, str)}
    account = event.req("accountId") or event.req("AccountId")
    target = account if isinstance(account, str) and account else event.account
    resource = {"type": "AWS::Account::Region", "id": f"{target}:{rid}"}
    if rid and rid.lower() in allowed:
        return Assessment(False, f"{rid} is an allowed Region", resource)
    return Assessment(
        True,
        f"opt-in Region {rid or '?'} enabled for account {target or '?'} by {event.principal_arn or 'unknown'}",
        resource,
        remediable=False,
    )
