"""Decisions for resource policies beyond S3 buckets: who outside the account can use a key, topic, queue ...

Covered calls (issue 14 §2, "Public resource policies beyond S3"): KMS key policies, SNS topic and SQS
queue policies (and their ``AddPermission`` shortcuts), ECR repository and registry policies, Secrets
Manager resource policies, Lambda layer permissions, S3 access point policies (plain, Object Lambda and
Multi-Region), EFS file system policies, OpenSearch / Elasticsearch domain access policies and Glacier
vault access policies.

Every policy-writing call goes through one judgement, :func:`judge_policy`:

* a request CloudTrail omitted as too large to log is an alert by itself (the content cannot be read);
* a policy the call must carry but the record does not, or that does not parse, is an alert (read it live);
* otherwise the policy is parsed in whatever encoding CloudTrail logged (object, JSON string, URL-encoded)
  and judged statement by statement with :mod:`trailguard_engine.policy` (the catalog's one reading of IAM
  semantics): statements anyone can use (wildcards, ``NotPrincipal``, conditions that look restrictive but
  are not), and grants to accounts or organizations that are not ours (:func:`known_accounts`: organization
  accounts and ``intended_exposure.trusted_accounts``).

Service principals restricted by ``aws:SourceArn`` / ``aws:SourceAccount`` of this account (an S3 bucket
publishing to its own account's topic, EventBridge delivering to a queue) are not findings; restricted to
another account's resource they are a cross-account grant. An unrestricted service principal is not judged
here (a confused-deputy risk, not an exposure to an identity).

All rules fed from here alert only: rewriting someone's resource policy is rarely unambiguous.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, as_list
from trailguard_engine.events import get_ci as _get_ci
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import (
    ParsedPolicy,
    external_grants,
    is_allow,
    judge_condition,
    known_accounts,
    parse_policy,
    principal_account,
    public_statements,
    request_too_large,
    statement_principals,
    statements,
)
from trailguard_engine.runtime_config import RuntimeConfig


def service_grants(document: Mapping[str, Any] | None, own_account: str, known: frozenset[str]) -> list[str]:
    """Accounts outside ours that a service principal acts for, by the account conditions that pin it.

    ``{"Service": "sns.amazonaws.com"}`` with ``aws:SourceArn`` of another account's topic lets that account
    deliver to the queue: a cross-account grant :func:`trailguard_engine.policy.external_grants` does not
    list (it reads accounts from AWS principals). Pinned to this account, or not pinned at all, it is not
    reported here.
    """
    found: set[str] = set()
    for stmt in statements(document):
        if not is_allow(stmt):
            continue
        who = statement_principals(stmt)
        if not who.services or who.anyone or who.accounts:
            continue
        verdict = judge_condition(stmt.get("Condition"))
        for restriction in verdict.of("account"):
            found |= {a for a in restriction.values if a != own_account and a not in known}
    return sorted(found)


def wildcard_statements(document: Mapping[str, Any] | None) -> list[str]:
    """Allow statements with a wildcard principal, restricted by conditions or not (Block Public Policy's test)."""
    out = []
    for i, stmt in enumerate(statements(document)):
        who = statement_principals(stmt)
        if is_allow(stmt) and (who.anyone or who.not_principal):
            sid = stmt.get("Sid")
            out.append(sid if isinstance(sid, str) and sid else f"#{i}")
    return out


# --------------------------------------------------------------------------- #
# One judgement for every policy-writing call
# --------------------------------------------------------------------------- #


def _who(event: CloudTrailEvent) -> str:
    return event.principal_arn or event.identity_type or "unknown principal"


def _str(value: Any) -> str:
    for v in as_list(value):
        if isinstance(v, str) and v.strip():
            return v.strip()
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
    return ""


def _flag(value: Any) -> bool | None:
    """A boolean request flag: True, False, or None when absent or unreadable."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def judge_policy(
    event: CloudTrailEvent,
    cfg: RuntimeConfig,
    *,
    kind: str,
    resource_type: str,
    resource_id: str,
    policy: Any,
    required: bool,
    signals: list[str] | None = None,
) -> Assessment:
    """Whether the policy an event writes exposes ``kind`` ``resource_id`` outside the account.

    ``policy`` is the raw request value (``None`` when the request has none); ``required`` says whether the
    call always carries one (its absence then means the record cannot be judged, an alert). ``signals`` are
    call-specific findings (a lockout check bypassed, Block Public Policy off with a wildcard principal) that
    fire even when the statements are private.
    """
    name = resource_id or "<unknown>"
    res = {"type": resource_type, "id": resource_id} if resource_id else {}
    who = _who(event)
    if request_too_large(event.detail.get("requestParameters")):
        return Assessment(
            True,
            f"{event.event_name} on {kind} {name} by {who}: CloudTrail omitted the request as too large to log, "
            "so the policy cannot be inspected; read it live",
            res,
            {"request_too_large": True},
            remediable=False,
        )
    found: list[str] = list(signals or [])
    params: dict[str, Any] = {}
    if policy is None or (isinstance(policy, str) and not policy.strip()):
        if required:
            found.append("the policy is not in the record (read it live)")
        elif not found:
            return Assessment(False, f"{event.event_name} on {kind} {name}: no policy in the request")
    else:
        parsed = parse_policy(policy)
        if parsed.document is None:
            found.append(f"the policy cannot be read ({parsed.error}); read it live")
        else:
            public = public_statements(parsed.document, event.account)
            known = known_accounts(cfg)
            external = sorted(
                set(external_grants(parsed.document, event.account, known, org_id=cfg.org_id))
                | set(service_grants(parsed.document, event.account, known))
            )
            if public:
                found.append(f"internet-accessible statement(s) {', '.join(public)}")
                params["public_statements"] = public
            if external:
                found.append(f"grants principal(s) outside the organization {', '.join(external)}")
                params["external_accounts"] = external
    if not found:
        return Assessment(
            False, f"{event.event_name} on {kind} {name}: no public statement and no grant outside the organization"
        )
    return Assessment(True, f"{event.event_name} on {kind} {name} by {who}: {'; '.join(found)}", res, params, False)


def _bypass_lockout(event: CloudTrailEvent) -> list[str]:
    if _flag(event.req("bypassPolicyLockoutSafetyCheck")):
        return ["bypassPolicyLockoutSafetyCheck is true (the policy may lock this account's admins out)"]
    return []


# --------------------------------------------------------------------------- #
# KMS
# --------------------------------------------------------------------------- #


def _key_arn(event: CloudTrailEvent) -> str:
    key = _str(event.resp("keyMetadata", "arn")) or _str(event.req("keyId")) or _str(event.resp("keyMetadata", "keyId"))
    if key and not key.startswith(("arn:", "alias/")) and event.region and event.account:
        key = f"arn:aws:kms:{event.region}:{event.account}:key/{key}"
    return key


@decision("kms_key_policy_exposed")
def kms_key_policy_exposed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutKeyPolicy / CreateKey whose key policy is public or grants an account outside the organization.

    Every key is judged the same; a key in ``protected_key_arns`` (a trail key) is named in the reason. A
    CreateKey without a policy gets the default key policy (this account only): not a finding.
    """
    key = _key_arn(event)
    assessment = judge_policy(
        event,
        cfg,
        kind="KMS key",
        resource_type="AWS::KMS::Key",
        resource_id=key,
        policy=event.req("policy"),
        required=event.event_name == "PutKeyPolicy",
        signals=_bypass_lockout(event),
    )
    if assessment.risky and key in cfg.protected_key_arns:
        return Assessment(
            True,
            assessment.reason + " (a protected trail key)",
            assessment.resource,
            assessment.params,
            False,
        )
    return assessment


# --------------------------------------------------------------------------- #
# SNS and SQS
# --------------------------------------------------------------------------- #


def _permission_accounts(event: CloudTrailEvent) -> list[str]:
    """Accounts an SNS/SQS ``AddPermission`` names (``aWSAccountId`` / ``aWSAccountIds``, any case)."""
    out: list[str] = []
    for key, value in event.request.items():
        if isinstance(key, str) and key.lower().startswith("awsaccountid"):
            out += [_str(v) for v in as_list(value) if _str(v)]
    return out


def _add_permission(event: CloudTrailEvent, cfg: RuntimeConfig, kind: str, rtype: str, rid: str) -> Assessment:
    """SNS/SQS AddPermission: a policy statement written from a list of accounts."""
    name = rid or "<unknown>"
    if request_too_large(event.detail.get("requestParameters")):
        return judge_policy(event, cfg, kind=kind, resource_type=rtype, resource_id=rid, policy=None, required=True)
    accounts = _permission_accounts(event)
    if not accounts:
        return Assessment(
            True, f"AddPermission on {kind} {name} by {_who(event)}: no account in the record", {}, {}, False
        )
    public = [a for a in accounts if "*" in a]
    external = sorted({a for a in accounts if "*" not in a} - {event.account} - known_accounts(cfg))
    if not public and not external:
        return Assessment(False, f"AddPermission on {kind} {name}: only this account or known accounts")
    what = []
    if public:
        what.append("grants every AWS account ('*')")
    if external:
        what.append(f"grants account(s) outside the organization {', '.join(external)}")
    return Assessment(
        True,
        f"AddPermission on {kind} {name} by {_who(event)}: {'; '.join(what)}",
        {"type": rtype, "id": rid} if rid else {},
        {"external_accounts": external, "public": bool(public)},
        False,
    )


@decision("sns_topic_policy_exposed")
def sns_topic_policy_exposed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """SetTopicAttributes(Policy) / CreateTopic(attributes.Policy) / AddPermission exposing a topic."""
    topic = _str(event.req("topicArn")) or _str(event.resp("topicArn")) or _str(event.req("name"))
    rtype = "AWS::SNS::Topic"
    if event.event_name == "AddPermission":
        return _add_permission(event, cfg, "SNS topic", rtype, topic)
    if event.event_name == "SetTopicAttributes" and not request_too_large(event.detail.get("requestParameters")):
        attr = _str(event.req("attributeName"))
        if attr.lower() != "policy":
            return Assessment(False, f"SetTopicAttributes on {topic or 'a topic'}: attribute {attr!r}, not Policy")
        policy: Any = event.req("attributeValue")
        required = True
    else:
        policy = _get_ci(event.req("attributes"), "Policy")
        required = False
    return judge_policy(
        event, cfg, kind="SNS topic", resource_type=rtype, resource_id=topic, policy=policy, required=required
    )


@decision("sqs_queue_policy_exposed")
def sqs_queue_policy_exposed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """SetQueueAttributes / CreateQueue with attributes.Policy, or AddPermission, exposing a queue."""
    queue = _str(event.req("queueUrl")) or _str(event.resp("queueUrl")) or _str(event.req("queueName"))
    rtype = "AWS::SQS::Queue"
    if event.event_name == "AddPermission":
        return _add_permission(event, cfg, "SQS queue", rtype, queue)
    return judge_policy(
        event,
        cfg,
        kind="SQS queue",
        resource_type=rtype,
        resource_id=queue,
        policy=_get_ci(event.req("attributes"), "Policy"),
        required=False,
    )


# --------------------------------------------------------------------------- #
# ECR, Secrets Manager, EFS, Glacier, S3 access points, OpenSearch
# --------------------------------------------------------------------------- #


@decision("ecr_policy_exposed")
def ecr_policy_exposed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """SetRepositoryPolicy / PutRegistryPolicy whose policy is public or grants an outside account."""
    if event.event_name == "PutRegistryPolicy":
        registry = _str(event.resp("registryId")) or event.account
        kind, rtype, rid = "ECR registry", "AWS::ECR::RegistryPolicy", registry
    else:
        kind, rtype, rid = "ECR repository", "AWS::ECR::Repository", _str(event.req("repositoryName"))
    return judge_policy(
        event, cfg, kind=kind, resource_type=rtype, resource_id=rid, policy=event.req("policyText"), required=True
    )


@decision("secretsmanager_policy_exposed")
def secretsmanager_policy_exposed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutResourcePolicy on a secret: public, an outside account, or Block Public Policy off with a wildcard."""
    secret = _str(event.req("secretId"))
    raw = event.req("resourcePolicy")
    signals = []
    if _flag(event.req("blockPublicPolicy")) is False:
        parsed = parse_policy(raw) if raw is not None else ParsedPolicy(None)
        wild = wildcard_statements(parsed.document) if parsed.document is not None else []
        if wild:
            signals.append(
                f"blockPublicPolicy false with wildcard principal statement(s) {', '.join(wild)} (the check that "
                "would refuse a public policy was turned off for this call)"
            )
    return judge_policy(
        event,
        cfg,
        kind="secret",
        resource_type="AWS::SecretsManager::Secret",
        resource_id=secret,
        policy=raw,
        required=True,
        signals=signals,
    )


@decision("efs_policy_exposed")
def efs_policy_exposed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutFileSystemPolicy whose policy is public or grants an outside account, or that bypasses the lockout check."""
    return judge_policy(
        event,
        cfg,
        kind="EFS file system",
        resource_type="AWS::EFS::FileSystem",
        resource_id=_str(event.req("fileSystemId")),
        policy=event.req("policy"),
        required=True,
        signals=_bypass_lockout(event),
    )


@decision("glacier_vault_policy_exposed")
def glacier_vault_policy_exposed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """SetVaultAccessPolicy whose policy is public or grants an outside account.

    The API nests the document (``policy: {Policy: "<json>"}``); a bare document or string is read too.
    """
    raw = event.req("policy")
    if isinstance(raw, Mapping) and any(isinstance(k, str) and k.lower() == "policy" for k in raw):
        raw = _get_ci(raw, "Policy")
    return judge_policy(
        event,
        cfg,
        kind="Glacier vault",
        resource_type="AWS::Glacier::Vault",
        resource_id=_str(event.req("vaultName")),
        policy=raw,
        required=True,
    )


def _find_policies(obj: Any, depth: int = 3) -> list[Any]:
    """Every non-empty ``Policy`` value (any case) in a request, nested request bodies included.

    All of them, not the first: S3 logs query-string parameters beside the body, so a caller can add a
    decoy ``?Policy=`` that is private while the body's policy is public.
    """
    if not isinstance(obj, Mapping) or depth < 0:
        return []
    found: list[Any] = []
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == "policy" and value not in (None, "", [], [""]):
            found.append(value)
        else:
            found += _find_policies(value, depth - 1)
    return found


@decision("s3_access_point_policy_exposed")
def s3_access_point_policy_exposed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutAccessPointPolicy (plain, Object Lambda, Multi-Region) whose policy is public or grants an outside account.

    S3 Control logs the XML body under its root element (``PutAccessPointPolicyRequest: {Policy: ...}``, the
    Multi-Region form under ``Details``), so policies are searched for by name in the request; each one found
    is judged and the first finding wins.
    """
    req = event.request
    name = _str(_get_ci(req, "name", "accessPointName")) or _str(_get_ci(_find_details(req), "Name"))
    common: dict[str, Any] = {
        "kind": "S3 access point",
        "resource_type": "AWS::S3::AccessPoint",
        "resource_id": name,
        "required": True,
    }
    candidates = _find_policies(req)
    if not candidates:
        return judge_policy(event, cfg, policy=None, **common)
    verdicts = [judge_policy(event, cfg, policy=candidate, **common) for candidate in candidates]
    return next((v for v in verdicts if v.risky), verdicts[0])


def _find_details(obj: Any, depth: int = 3) -> Any:
    if not isinstance(obj, Mapping) or depth < 0:
        return None
    direct = _get_ci(obj, "Details")
    if direct is not None:
        return direct
    for value in obj.values():
        found = _find_details(value, depth - 1)
        if found is not None:
            return found
    return None


@decision("opensearch_domain_policy_exposed")
def opensearch_domain_policy_exposed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Create/Update(Elasticsearch)Domain(Config) whose access policy is public or grants an outside account.

    A domain created inside a VPC (``vPCOptions`` with subnets) is reachable only from that VPC: a public
    access policy there is not an internet exposure. An update does not say where the domain lives, so it is
    judged as if public (the triage reads it live). A request that sets no access policy is not a finding.
    """
    domain = _str(event.req("domainName"))
    vpc = _get_ci(event.request, "vPCOptions", "vpcOptions")
    subnets = [s for s in as_list(_get_ci(vpc, "subnetIds")) if isinstance(s, str) and s]
    assessment = judge_policy(
        event,
        cfg,
        kind="OpenSearch domain",
        resource_type="AWS::OpenSearchService::Domain",
        resource_id=domain,
        policy=_get_ci(event.request, "accessPolicies"),
        required=False,
    )
    if assessment.risky and subnets and event.event_name.startswith("Create"):
        external = assessment.params.get("external_accounts")
        if not external and not assessment.params.get("request_too_large"):
            return Assessment(
                False,
                f"{event.event_name} on OpenSearch domain {domain or '<unknown>'}: the access policy is open but the "
                f"domain is created in a VPC ({', '.join(subnets)}): not reachable from the internet",
            )
    return assessment


# --------------------------------------------------------------------------- #
# Lambda layers
# --------------------------------------------------------------------------- #


@decision("lambda_layer_permission_exposed")
def lambda_layer_permission_exposed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """AddLayerVersionPermission (any API version) for ``*`` or an account outside the organization.

    ``*`` limited by ``organizationId`` to this organization (config ``org_id``) is not a finding; another
    organization, or one that cannot be checked because ``org_id`` is not configured, is.
    """
    layer = _str(event.req("layerName"))
    version = _str(event.req("versionNumber"))
    rid = f"{layer}:{version}" if layer and version else layer
    res = {"type": "AWS::Lambda::LayerVersion", "id": rid} if rid else {}
    who = _who(event)
    if request_too_large(event.detail.get("requestParameters")):
        return judge_policy(
            event,
            cfg,
            kind="Lambda layer",
            resource_type=res.get("type", ""),
            resource_id=rid,
            policy=None,
            required=True,
        )
    principal = _str(event.req("principal"))
    org = _str(event.req("organizationId"))
    base = f"{event.event_name} on Lambda layer {rid or '<unknown>'} by {who}"
    if not principal:
        return Assessment(True, f"{base}: no principal in the record; read the layer policy live", res, {}, False)
    account = principal_account(principal)
    if account == "*":
        if not org:
            return Assessment(True, f"{base}: every AWS account may use the layer ('*')", res, {"public": True}, False)
        if cfg.org_id and org == cfg.org_id:
            return Assessment(False, f"{base}: '*' limited to this organization {org}")
        why = "not this organization" if cfg.org_id else "config org_id is not set, so it cannot be checked"
        return Assessment(
            True,
            f"{base}: every account of organization {org} may use the layer ({why})",
            res,
            {"organization": org},
            False,
        )
    account = account or principal
    if account == event.account or account in known_accounts(cfg):
        return Assessment(False, f"{base}: granted to {account}, this account or a known one")
    return Assessment(
        True,
        f"{base}: granted to account {account}, outside the organization",
        res,
        {"external_accounts": [account]},
        False,
    )
