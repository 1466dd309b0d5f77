"""Decisions for public-exposure rules: S3, security groups, network ACLs, snapshots, AMIs and Lambda.

Each function reads the CloudTrail record defensively (records come in several
historical shapes; one-element lists are often rendered as bare objects) and
never raises: odd input gives an :class:`Assessment` whose reason says what was
missing, with ``remediable=False`` when the remediation could not be aimed.

Design choices worth knowing (also in the rules' runbooks):

* Security groups: ICMP/ICMPv6 from the internet is **not** flagged. It exposes
  no service port, and revoking it breaks path-MTU discovery: an automatic
  revoke there would be the kind of over-remediation we must avoid. Any other
  protocol number without ports (GRE, ESP, SCTP ...) is flagged: it opens the
  whole protocol.
* Shares with a specific account (snapshots, AMIs, RDS snapshots) alert but are
  not remediated: whether that account belongs to the organization cannot be
  known offline. A "share" with the event's own account is not a share.
* Policies are judged by :mod:`trailguard_engine.policy` (policyuniverse's action catalogue, with the
  principal and condition semantics written there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from trailguard_engine.caller import classify
from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, as_list, dig
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import (
    WILDCARD,
    external_grants,
    is_account_id,
    known_accounts,
    organization_known,
    parse_policy,
    principal_account,
    public_statement_refs,
    request_too_large,
    statement_public,
)
from trailguard_engine.policy import statements as policy_statements
from trailguard_engine.runtime_config import RuntimeConfig

WORLD_CIDRS = frozenset({"0.0.0.0/0", "::/0"})
ALL_USERS_URI = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS_URI = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
PUBLIC_CANNED_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
BPA_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
_GRANT_HEADERS = (
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
)
_PROTO_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": "-1"}
_ICMP = frozenset({"icmp", "icmpv6"})
ADMIN_PORTS = (22, 3389)


# --------------------------------------------------------------------------- #
# small readers
# --------------------------------------------------------------------------- #


def _first_str(value: Any) -> str:
    """A string, or the first string of a list (S3 renders headers as one-element lists)."""
    for v in as_list(value):
        if isinstance(v, str):
            return v
    return ""


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _is_false(value: Any) -> bool:
    """A Block Public Access flag that is off. Missing counts as off: the API default is false."""
    if value is None:
        return True
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value.strip().lower() != "true"
    return True


def _items(value: Any) -> list[Any]:
    """EC2 query-API lists render as ``{"items": [...]}``; accept a bare list or object too."""
    if isinstance(value, Mapping):
        if "items" in value:
            return as_list(value.get("items"))
        return [value] if value else []
    return as_list(value)


def _principal(event: CloudTrailEvent) -> str:
    return event.principal_arn or event.identity_type or "unknown principal"


# --------------------------------------------------------------------------- #
# S3 Block Public Access
# --------------------------------------------------------------------------- #


def _bpa_weakened(event: CloudTrailEvent) -> tuple[bool, str]:
    """Whether the request may have weakened Block Public Access, and how.

    A request without the configuration (a delete, an unreadable or partial configuration) is not
    "all off" by itself: it is flagged, and the bucket remediation decides from live state (is the
    bucket public now, with the account-level settings applied?) before changing anything.
    """
    if event.event_name.startswith("Delete"):
        return True, "deleted the configuration (whether anything is public now is read live)"
    cfg = event.req("PublicAccessBlockConfiguration")
    if not isinstance(cfg, Mapping):
        return True, "sent no readable PublicAccessBlockConfiguration (whether anything is public now is read live)"
    off = [name for name in BPA_SETTINGS if cfg.get(name) is not None and _is_false(cfg.get(name))]
    missing = [name for name in BPA_SETTINGS if cfg.get(name) is None]
    if not off and not missing:
        return False, "all four settings are on"
    what = []
    if off:
        what.append("turned off " + ", ".join(off))
    if missing:
        what.append("sent no value for " + ", ".join(missing) + " (off unless the account-level setting is on)")
    return True, "; ".join(what)


@decision("s3_bucket_public_access_block")
def s3_bucket_public_access_block(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Bucket-level Block Public Access deleted, or put with any of the four settings off."""
    weakened, what = _bpa_weakened(event)
    bucket = _first_str(event.req("bucketName"))
    if not weakened:
        return Assessment(False, f"{event.event_name} on {bucket or 'a bucket'}: {what}")
    reason = f"{event.event_name} on bucket {bucket or '<unknown>'} {what} by {_principal(event)}"
    if not bucket:
        return Assessment(True, reason + "; no bucketName in the request", remediable=False)
    return Assessment(True, reason, resource={"type": "AWS::S3::Bucket", "id": bucket}, params={"bucket": bucket})


@decision("s3_account_public_access_block")
def s3_account_public_access_block(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Account-level Block Public Access deleted or weakened (alert only)."""
    weakened, what = _bpa_weakened(event)
    account = _first_str(event.req("accountId")) or event.account
    if not weakened:
        return Assessment(False, f"{event.event_name} on account {account}: {what}")
    return Assessment(
        True,
        f"{event.event_name} on account {account} {what} by {_principal(event)}",
        resource={"type": "AWS::S3::AccountPublicAccessBlock", "id": account},
        params={"account": account},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# S3 ACLs
# --------------------------------------------------------------------------- #


def _public_acl_grants(request: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    canned = _first_str(request.get("x-amz-acl")).strip().lower()
    if canned in PUBLIC_CANNED_ACLS:
        found.append(f"canned ACL {canned}")
    for header in _GRANT_HEADERS:
        for value in as_list(request.get(header)):
            if isinstance(value, str) and ("/global/AllUsers" in value or "/global/AuthenticatedUsers" in value):
                group = "AllUsers" if "AllUsers" in value else "AuthenticatedUsers"
                found.append(f"{header} to {group}")
    grants = dig(request, "AccessControlPolicy", "AccessControlList", "Grant")
    for grant in as_list(grants):
        uri = dig(grant, "Grantee", "URI")
        if isinstance(uri, str) and uri.strip() in (ALL_USERS_URI, AUTH_USERS_URI):
            perm = dig(grant, "Permission")
            group = uri.rsplit("/", 1)[-1]
            found.append(f"grant {perm if isinstance(perm, str) else '?'} to {group}")
    return found


@decision("s3_bucket_acl_public")
def s3_bucket_acl_public(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutBucketAcl/CreateBucket with a public canned ACL or a grant to AllUsers/AuthenticatedUsers."""
    bucket = _first_str(event.req("bucketName"))
    found = _public_acl_grants(event.request)
    if not found:
        return Assessment(False, f"{event.event_name} on {bucket or 'a bucket'}: no public grant")
    reason = f"{event.event_name} on bucket {bucket or '<unknown>'}: {'; '.join(found)} by {_principal(event)}"
    if not bucket:
        return Assessment(True, reason + "; no bucketName in the request", remediable=False)
    return Assessment(True, reason, resource={"type": "AWS::S3::Bucket", "id": bucket}, params={"bucket": bucket})


# --------------------------------------------------------------------------- #
# S3 bucket policies
# --------------------------------------------------------------------------- #


def load_policy(value: Any) -> Mapping[str, Any] | None:
    """A policy document from CloudTrail (see :func:`trailguard_engine.policy.parse_policy`), or None."""
    return parse_policy(value).document


def statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The policy's statements as a list; non-object entries are dropped."""
    return policy_statements(policy)


def statement_internet_accessible(stmt: Mapping[str, Any]) -> bool:
    """Whether one statement admits anyone (:func:`trailguard_engine.policy.statement_public`)."""
    return statement_public(stmt) is not None


def public_statements(policy: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Index and Sid of each statement that is internet-accessible (Allow, conditions considered)."""
    return [{"index": r["index"], "sid": r["sid"]} for r in public_statement_refs(policy)]


def too_large(event: CloudTrailEvent, what: str, resource: Mapping[str, str] | None = None) -> Assessment:
    """The alert for a policy-writing call whose request CloudTrail omitted as too large (never remediated)."""
    size = event.request.get("originalSize")
    return Assessment(
        True,
        f"{event.event_name} on {what} by {_principal(event)}: CloudTrail omitted the request as too large"
        f"{f' ({size} bytes)' if isinstance(size, (str, int)) and not isinstance(size, bool) else ''}, so the "
        "policy cannot be inspected from the log (padding a policy past the limit hides it); read it live",
        resource=dict(resource or {}),
        remediable=False,
    )


@decision("s3_bucket_policy_public")
def s3_bucket_policy_public(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutBucketPolicy with an internet-accessible statement (remediable) or a grant to an external account (alert)."""
    bucket = _first_str(event.req("bucketName"))
    res = {"type": "AWS::S3::Bucket", "id": bucket} if bucket else {}
    if request_too_large(event.request):
        return too_large(event, f"bucket {bucket or '<unknown>'}", res)
    raw = event.req("bucketPolicy")
    parsed = parse_policy(raw if raw not in (None, "", [""]) else event.req("policy"))
    if parsed.document is None:
        return Assessment(
            True,
            f"PutBucketPolicy on {bucket or '<unknown>'}: the policy cannot be read from the record "
            f"({parsed.error}); check it live",
            resource=res,
            remediable=False,
        )
    public = public_statement_refs(parsed.document, event.account)
    external = external_grants(parsed.document, event.account, known_accounts(cfg), org_id=cfg.org_id)
    if not public and not external:
        return Assessment(False, f"PutBucketPolicy on {bucket or 'a bucket'}: no public statement, no external grant")
    if not public:
        return Assessment(
            True,
            f"PutBucketPolicy on bucket {bucket or '<unknown>'} grants {', '.join(external)} by {_principal(event)}: "
            f"{membership_note(cfg)}",
            resource=res,
            params={"bucket": bucket, "external": external} if bucket else {},
            remediable=False,
        )
    names = "; ".join(f"{p['sid'] or '#' + str(p['index'])} ({p['why']})" for p in public)
    reason = f"PutBucketPolicy on bucket {bucket or '<unknown>'}: public statement(s) {names} by {_principal(event)}"
    if external:
        reason += f"; also grants {', '.join(external)}"
    if not bucket:
        return Assessment(True, reason + "; no bucketName in the request", remediable=False)
    return Assessment(
        True,
        reason,
        resource=res,
        params={"bucket": bucket, "public_statements": [{"index": p["index"], "sid": p["sid"]} for p in public]},
    )


# --------------------------------------------------------------------------- #
# Snapshot / image sharing
# --------------------------------------------------------------------------- #


def _share_targets(add: Any) -> tuple[bool, list[str], list[str]]:
    """(public, account ids, organization/OU ARNs) from an ``add`` block."""
    public = False
    accounts: list[str] = []
    orgs: list[str] = []
    for item in _items(add):
        if not isinstance(item, Mapping):
            continue
        if str(item.get("group", "")).strip().lower() == "all":
            public = True
        uid = item.get("userId")
        if isinstance(uid, (str, int)) and not isinstance(uid, bool) and str(uid).strip():
            accounts.append(str(uid).strip())
        for key in ("organizationArn", "organizationalUnitArn"):
            arn = item.get(key)
            if isinstance(arn, str) and arn:
                orgs.append(arn)
    return public, accounts, orgs


#: Services that distribute images and snapshots to other accounts from their own configuration.
_DISTRIBUTORS = frozenset({"imagebuilder.amazonaws.com", "dlm.amazonaws.com", "backup.amazonaws.com"})


def _service_distribution(event: CloudTrailEvent) -> str:
    """The distributing service, when the call is provably that service acting on its own, else ''.

    Proof a member admin cannot forge: ``invokedBy`` names the service, and the identity is the
    service itself (``AWSService``) or a session of its service-linked role (IAM reserves the
    ``/aws-service-role/<service>/`` path). A customer-managed role merely named for the service
    (DLM's and Backup's default roles live at ``/service-role/``) is not proof.
    """
    service = event.invoked_by
    if service not in _DISTRIBUTORS:
        return ""
    if event.identity_type == "AWSService":
        return service
    slr = (
        rf"arn:aws(?:-[a-z]+)*:iam::[0-9]{{12}}:role/aws-service-role/{re.escape(service)}/AWSServiceRoleFor[\w+=,.@-]*"
    )
    return service if re.fullmatch(slr, event.session_issuer_arn) else ""


def _publishing_pipeline(event: CloudTrailEvent, cfg: RuntimeConfig) -> str:
    """Who published, when it is provably a pipeline the operator runs, else ''.

    Only evidence a member admin cannot forge counts: an exact ``callers.iac_principals`` entry (pinned to
    an account by config) or an AWS service acting as itself. A Terraform user agent or ``invokedBy``
    CloudFormation is not enough: anyone can send those, so such a public AMI is still alerted.
    """
    caller = classify(event, cfg)
    if caller.kind == "iac" and caller.can_silence:
        return f"the IaC pipeline {event.principal_arn} ({caller.why})"
    if caller.kind == "service":
        return f"an AWS service ({caller.why})"
    return ""


_ORG_IN_ARN = re.compile(r"^arn:aws[\w-]*:organizations::[0-9]{12}:(?:organization|ou)/(o-[a-z0-9]+)(?:/|$)")


def _foreign_orgs(orgs: list[str], cfg: RuntimeConfig) -> list[str]:
    """Organization and OU ARNs that are not of the configured organization (compared by exact ID, not prefix)."""
    out = []
    for arn in orgs:
        m = _ORG_IN_ARN.match(arn.strip())
        if not (m and cfg.org_id and m.group(1) == cfg.org_id):
            out.append(arn)
    return sorted(set(out))


def membership_note(cfg: RuntimeConfig) -> str:
    """How "external" was judged, for alert reasons."""
    if organization_known(cfg):
        return "not an account of the organization (organizations:ListAccounts / organization.accounts) nor trusted"
    return (
        "organization membership unverified (the organization's account list is unknown): verify and remove "
        "the share if it is not one of your accounts"
    )


def _share_assessment(
    event: CloudTrailEvent,
    cfg: RuntimeConfig,
    *,
    kind: str,
    resource_type: str,
    resource_id: str,
    param_key: str,
    public: bool,
    accounts: list[str],
    orgs: list[str] | None = None,
) -> Assessment:
    """Public shares remediate; shares with accounts that are not ours alert (never remediated: a partner or a
    new account of the organization is possible, and the share may be intended)."""
    ours = known_accounts(cfg)
    others = {a for a in accounts if a != event.account}
    external = sorted(a for a in others if a not in ours)
    to_ours = sorted(a for a in others if a in ours)
    foreign_orgs = _foreign_orgs(orgs or [], cfg)
    if not resource_id:
        if public or external or foreign_orgs:
            return Assessment(
                True, f"{event.event_name}: {kind} shared, but no identifier in the request", remediable=False
            )
        return Assessment(False, f"{event.event_name}: no identifier and no share")
    res = {"type": resource_type, "id": resource_id}
    who = _principal(event)
    if public:
        if resource_type == "AWS::EC2::Image" and event.account in cfg.intended.public_ami_accounts:
            pipeline = _publishing_pipeline(event, cfg)
            if pipeline:
                return Assessment(
                    False,
                    f"{kind} {resource_id} made public by {pipeline} in {event.account}, a public-AMI publishing "
                    "account (config intended_exposure.public_ami_accounts): a release",
                )
            return Assessment(
                True,
                f"{kind} {resource_id} made public by {who} in {event.account}, a public-AMI publishing account "
                "(config intended_exposure.public_ami_accounts): alert only, check it is a release",
                res,
                {param_key: resource_id},
                remediable=False,
            )
        return Assessment(True, f"{kind} {resource_id} made public by {who}", res, {param_key: resource_id})
    targets = external + foreign_orgs
    if targets:
        service = _service_distribution(event)
        if service:
            return Assessment(
                False,
                f"{kind} {resource_id} shared with {', '.join(targets)} by {service} (its service "
                "identity, from its distribution configuration): not public",
            )
        return Assessment(
            True,
            f"{kind} {resource_id} shared with {', '.join(targets)} by {who}: {membership_note(cfg)}",
            res,
            {param_key: resource_id, "shared_with": targets},
            remediable=False,
        )
    if to_ours:
        return Assessment(
            False,
            f"{kind} {resource_id} shared with {', '.join(to_ours)}: accounts of the organization or "
            "config intended_exposure.trusted_accounts",
        )
    return Assessment(False, f"{event.event_name} on {resource_id}: nothing shared outside this account")


@decision("ebs_snapshot_shared")
def ebs_snapshot_shared(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """ModifySnapshotAttribute adding group ``all`` (public) or another account to createVolumePermission."""
    snap = event.req("snapshotId")
    public, accounts, _ = _share_targets(event.req("createVolumePermission", "add"))
    # Query-API form: OperationType=add with UserId.N / Group.N
    op = event.req("operationType")
    if isinstance(op, str) and op.lower() == "add":
        groups = [str(g).lower() for g in _items(event.req("groupNames")) + _items(event.req("groupSet"))]
        public = public or "all" in groups
        accounts += [str(u) for u in _items(event.req("userIds")) if isinstance(u, (str, int))]
    return _share_assessment(
        event,
        cfg,
        kind="EBS snapshot",
        resource_type="AWS::EC2::Snapshot",
        resource_id=snap if isinstance(snap, str) else "",
        param_key="snapshot_id",
        public=public,
        accounts=accounts,
    )


@decision("ami_shared")
def ami_shared(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """ModifyImageAttribute adding group ``all`` (public), an account, or a foreign organization to launchPermission."""
    image = event.req("imageId")
    public, accounts, orgs = _share_targets(event.req("launchPermission", "add"))
    return _share_assessment(
        event,
        cfg,
        kind="AMI",
        resource_type="AWS::EC2::Image",
        resource_id=image if isinstance(image, str) else "",
        param_key="image_id",
        public=public,
        accounts=accounts,
        orgs=orgs,
    )


def _rds_share(event: CloudTrailEvent, cfg: RuntimeConfig, id_key: str, kind: str, rtype: str) -> Assessment:
    ident = event.req(id_key)
    attr = event.req("attributeName")
    if not (isinstance(attr, str) and attr.lower() == "restore"):
        return Assessment(False, f"{event.event_name}: attribute {attr!r} is not 'restore'")
    values = [str(v).strip() for v in as_list(event.req("valuesToAdd")) if isinstance(v, (str, int))]
    public = any(v.lower() == "all" for v in values)
    accounts = [v for v in values if v.lower() != "all" and v]
    return _share_assessment(
        event,
        cfg,
        kind=kind,
        resource_type=rtype,
        resource_id=ident if isinstance(ident, str) else "",
        param_key="snapshot_id",
        public=public,
        accounts=accounts,
    )


@decision("rds_snapshot_shared")
def rds_snapshot_shared(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """ModifyDBSnapshotAttribute restore += ``all`` (public) or another account."""
    return _rds_share(event, cfg, "dBSnapshotIdentifier", "RDS DB snapshot", "AWS::RDS::DBSnapshot")


@decision("rds_cluster_snapshot_shared")
def rds_cluster_snapshot_shared(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """ModifyDBClusterSnapshotAttribute restore += ``all`` (public) or another account."""
    return _rds_share(event, cfg, "dBClusterSnapshotIdentifier", "RDS cluster snapshot", "AWS::RDS::DBClusterSnapshot")


# --------------------------------------------------------------------------- #
# Lambda
# --------------------------------------------------------------------------- #


def _req_str(event: CloudTrailEvent, key: str) -> str:
    v = event.req(key)
    return v.strip() if isinstance(v, str) else ""


@decision("lambda_permission_public")
def lambda_permission_public(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """AddPermission (any API version) for anyone, or for an account outside the organization.

    Anyone: principal ``*`` or any wildcard spelling (``arn:aws:iam::*:root``, ``?`` wildcards) not scoped by
    a fixed ``sourceArn``, ``sourceAccount`` or ``principalOrgID``. External: a principal account, a
    ``sourceAccount`` or a ``principalOrgID`` that is not ours. Alert only: the statement is the function
    owner's to judge, and removing it can break an integration.
    """
    fn_name = _req_str(event, "functionName")
    sid = _req_str(event, "statementId")
    principal = _req_str(event, "principal")
    acct = principal_account(principal) if principal else ""
    org = _req_str(event, "principalOrgID")
    src_acct = _req_str(event, "sourceAccount")
    src_arn = _req_str(event, "sourceArn")

    def fixed(v: str) -> bool:
        return bool(v) and "*" not in v and "?" not in v and "${" not in v

    ours = known_accounts(cfg)
    outside: list[str] = []
    if acct and acct not in (WILDCARD, event.account) and acct not in ours:
        outside.append(f"account {acct}")
    if fixed(src_acct) and src_acct != event.account and src_acct not in ours:
        outside.append(f"source account {src_acct}")
    if fixed(org) and org != cfg.org_id:
        outside.append(f"organization {org}")
    arn_acct = src_arn.split(":")[4] if fixed(src_arn) and src_arn.count(":") >= 5 else ""
    if is_account_id(arn_acct) and arn_acct != event.account and arn_acct not in ours:
        outside.append(f"resources of account {arn_acct} ({src_arn})")
    anyone = acct == WILDCARD and not any(fixed(v) for v in (src_arn, src_acct, org))
    label = f"function {fn_name or '<unknown>'} (statement {sid or '?'})"
    res = {"type": "AWS::Lambda::Function", "id": fn_name} if fn_name else {}
    action = _req_str(event, "action") or "?"
    if anyone:
        return Assessment(
            True,
            f"{event.event_name} lets anyone ({principal!r}) call {action} on {label} by {_principal(event)}",
            resource=res,
            params={"function_name": fn_name, "statement_id": sid},
            remediable=False,
        )
    if outside:
        return Assessment(
            True,
            f"{event.event_name} lets {', '.join(outside)} call {action} on {label} by {_principal(event)}: "
            f"{membership_note(cfg)}",
            resource=res,
            params={"function_name": fn_name, "statement_id": sid, "external": outside},
            remediable=False,
        )
    return Assessment(
        False, f"{event.event_name} on {fn_name or 'a function'}: principal {principal!r} is ours or scoped"
    )


@decision("lambda_function_url_public")
def lambda_function_url_public(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A function URL created or updated with AuthType NONE."""
    fn = event.req("functionName")
    fn_name = fn if isinstance(fn, str) else ""
    auth = event.req("authType")
    if not (isinstance(auth, str) and auth.upper() == "NONE"):
        return Assessment(False, f"{event.event_name} on {fn_name or 'a function'}: authType {auth!r}")
    url = event.resp("functionUrl")
    return Assessment(
        True,
        f"{event.event_name} gave function {fn_name or '<unknown>'} a URL without authentication"
        f"{' (' + url + ')' if isinstance(url, str) else ''} by {_principal(event)}",
        resource={"type": "AWS::Lambda::Function", "id": fn_name} if fn_name else {},
        params={"function_name": fn_name},
        remediable=False,
    )
