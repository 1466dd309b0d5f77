"""Decisions for AWS Organizations rules: guardrails (SCPs and other policies) and delegated security services.

Organizations calls are made in the management account (or by a delegated administrator) and change every
account below the target at once. None of them can be undone safely by a machine (re-attaching a policy or
re-enabling a service's trusted access is a decision of the organization's owners), so all are alerts.
"""

from __future__ import annotations

from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, as_list
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import parse_policy, request_too_large, statements
from trailguard_engine.runtime_config import RuntimeConfig

#: AWS's default SCP: detaching it *removes* permissions (nothing is allowed without an Allow), so it never loosens.
FULL_AWS_ACCESS = "p-FullAWSAccess"

#: Service principals whose organization-wide trusted access or delegated administrator is a security control.
#: Overridable with the rule's ``params.security_principals``.
SECURITY_PRINCIPALS = (
    "cloudtrail.amazonaws.com",
    "guardduty.amazonaws.com",
    "malware-protection.guardduty.amazonaws.com",
    "securityhub.amazonaws.com",
    "config.amazonaws.com",
    "config-multiaccountsetup.amazonaws.com",
    "access-analyzer.amazonaws.com",
    "macie.amazonaws.com",
    "inspector2.amazonaws.com",
    "detective.amazonaws.com",
    "securitylake.amazonaws.com",
    "fms.amazonaws.com",
    "auditmanager.amazonaws.com",
    "health.amazonaws.com",
    "member.org.stacksets.cloudformation.amazonaws.com",
    "stacksets.cloudformation.amazonaws.com",
)


def _who(event: CloudTrailEvent) -> str:
    return event.principal_arn or "unknown principal"


def _target_kind(target: str) -> str:
    if target.startswith("r-"):
        return "root"
    if target.startswith("ou-"):
        return "OU"
    if target.isdigit() and len(target) == 12:
        return "account"
    return ""


@decision("org_policy_detached")
def org_policy_detached(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """DetachPolicy from the root, an OU or an account: every account below loses that guardrail at once.

    ``p-FullAWSAccess`` is the exception: detaching AWS's allow-everything SCP removes permissions.
    """
    target = event.req("targetId")
    policy = event.req("policyId")
    target_id = target.strip() if isinstance(target, str) else ""
    kind = _target_kind(target_id)
    if not kind:
        return Assessment(False, f"policy detached from {target!s}: not a root, OU or account id")
    if isinstance(policy, str) and policy.strip() == FULL_AWS_ACCESS:
        return Assessment(False, f"{FULL_AWS_ACCESS} detached from the {kind} {target_id}: that removes permissions")
    return Assessment(
        True,
        f"policy {policy!s} detached from the {kind} {target_id} by {_who(event)}",
        {"type": "AWS::Organizations::Policy", "id": f"{policy!s}@{target_id}"},
        remediable=False,
    )


@decision("org_policy_updated")
def org_policy_updated(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """UpdatePolicy that replaces a policy's content (an SCP's statements); a new name or description is not."""
    policy = event.req("policyId")
    policy_id = policy if isinstance(policy, str) and policy else "<unknown policy>"
    resource = {"type": "AWS::Organizations::Policy", "id": policy_id}
    if request_too_large(event.request):
        return Assessment(
            True,
            f"UpdatePolicy on {policy_id} by {_who(event)}: the request was omitted as too large to log, so the new "
            "content cannot be inspected",
            resource,
            remediable=False,
        )
    if "content" not in event.request:
        return Assessment(False, f"UpdatePolicy on {policy_id}: only the name or description changed", resource)
    parsed = parse_policy(event.req("content"))
    if parsed.document is None:
        summary = f"content unreadable ({parsed.error})"
    else:
        stmts = statements(parsed.document)
        denies = sum(1 for s in stmts if str(s.get("Effect", "")).strip().lower() == "deny")
        summary = f"new content has {len(stmts)} statement(s), {denies} Deny"
    return Assessment(
        True,
        f"UpdatePolicy replaced the content of {policy_id} by {_who(event)} ({summary}): every target of the policy "
        "gets the new guardrails at once; compare with the previous version",
        resource,
        remediable=False,
    )


@decision("org_account_moved")
def org_account_moved(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """MoveAccount: the account leaves the guardrails of its OU for those of the destination."""
    account = event.req("accountId")
    source = event.req("sourceParentId")
    dest = event.req("destinationParentId")
    account_id = account if isinstance(account, str) and account else "<unknown account>"
    to_root = isinstance(dest, str) and dest.startswith("r-")
    return Assessment(
        True,
        f"account {account_id} moved from {source!s} to {dest!s}{' (the root)' if to_root else ''} by {_who(event)}: "
        "it now has the destination's policies and loses those attached to the source OU",
        {"type": "AWS::Organizations::Account", "id": account_id},
        remediable=False,
    )


@decision("org_security_service")
def org_security_service(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """DisableAWSServiceAccess / DeregisterDelegatedAdministrator for a security service (case-insensitive)."""
    configured = [p.strip().lower() for p in as_list(rule.params.get("security_principals")) if isinstance(p, str)]
    principals = frozenset(configured or SECURITY_PRINCIPALS)
    service = event.req("servicePrincipal")
    name = service.strip().lower() if isinstance(service, str) else ""
    if name not in principals:
        return Assessment(False, f"{event.event_name} for {service!s}: not a security service")
    if event.event_name == "DeregisterDelegatedAdministrator":
        account = event.req("accountId")
        what = f"account {account!s} is no longer the delegated administrator of {name}"
    else:
        what = f"trusted access for {name} disabled for the whole organization"
    return Assessment(
        True,
        f"{event.event_name}: {what} by {_who(event)}",
        {"type": "AWS::Organizations::Organization", "id": name},
        remediable=False,
    )
