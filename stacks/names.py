"""Deterministic physical names shared across stacks and accounts.

Stacks in different accounts cannot reference each other, so every name that
crosses an account boundary is derived here from the config, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk

from trailguard.config import TrailguardConfig

#: Every IAM role and customer managed policy trailguard creates is named ``trailguard-*``: the
#: guardrail SCP denies creating, changing or passing such roles to everyone but the break-glass
#: roles, the deployment roles and CloudFormation StackSets (stacks.guardrails).
NAME_PREFIX = "trailguard-"
ENGINE_ROLE_NAME = "trailguard-engine"
REMEDIATION_ROLE_NAME = "trailguard-remediation"
#: The member remediation role's managed policy (home region only, like the role).
REMEDIATION_POLICY_NAME = REMEDIATION_ROLE_NAME
#: Prefix of the member forwarding roles, their managed policies and their EventBridge rules. The
#: central bus accepts PutEvents only from roles named so (stacks.detection), and the SCP and the
#: self-protection detections recognise the rules by it.
FORWARD_PREFIX = "trailguard-forward-"
#: IAM's limit on a role name.
MAX_ROLE_NAME = 64
#: Service-managed StackSets run every stack operation in a member account as the role
#: ``stacksets-exec-<hash>`` that the service-linked role AWSServiceRoleForCloudFormationStackSetsOrgMember
#: creates there (see stacks.guardrails for the sources).
STACKSETS_EXEC_ROLE_PREFIX = "stacksets-exec-"
CENTRAL_BUS_NAME = "trailguard-central"
RUNTIME_CONFIG_PARAMETER = "/trailguard/runtime-config"
TRAIL_KEY_ALIAS = "alias/trailguard-trail"
LOGS_KEY_ALIAS = "alias/trailguard-logs"
LAKE_KEY_ALIAS = "alias/trailguard-lake"
NOTIFICATIONS_KEY_ALIAS = "alias/trailguard-notifications"
CIS_ALARM_TOPIC_NAME = "trailguard-cis-alarms"
TRAIL_DELIVERY_TOPIC_NAME = "trailguard-trail-delivery"


@dataclass(frozen=True)
class Accounts:
    """Which account each piece lands in. In standalone mode every field is the deploying account."""

    management: str
    log_archive: str
    trail: str
    security: str
    home_region: str

    @staticmethod
    def for_config(cfg: TrailguardConfig) -> Accounts:
        if cfg.mode == "organization":
            o = cfg.org
            return Accounts(
                management=o.management_account_id,
                log_archive=o.log_archive_account_id,
                trail=o.delegated_admin_account_id or o.management_account_id,
                security=o.security_tooling_account_id,
                home_region=cfg.home_region,
            )
        acct = cdk.Aws.ACCOUNT_ID
        return Accounts(acct, acct, acct, acct, cfg.home_region)


def forward_role_name(region: str) -> str:
    """``trailguard-forward-<region>``: IAM is global and the member stack is deployed in every
    governed region of an account, so the name carries the region (``region`` may be the
    ``AWS::Region`` token of the environment-agnostic StackSet template)."""
    name = f"{FORWARD_PREFIX}{region}"
    if not cdk.Token.is_unresolved(region) and len(name) > MAX_ROLE_NAME:
        raise ValueError(f"forwarding role name {name!r} exceeds IAM's {MAX_ROLE_NAME} characters")
    return name


def forward_rule_name(index: int) -> str:
    """``trailguard-forward-<i>``: the i-th forwarding rule on an account's default bus (per region)."""
    return f"{FORWARD_PREFIX}{index}"


def forward_role_arn_pattern(partition: str) -> str:
    """Every member forwarding role of every account (the central bus policy's principal pattern)."""
    return f"arn:{partition}:iam::*:role/{FORWARD_PREFIX}*"


def archive_bucket_name(accounts: Accounts) -> str:
    return f"trailguard-archive-{accounts.log_archive}-{accounts.home_region}"


def access_log_bucket_name(accounts: Accounts) -> str:
    return f"trailguard-access-logs-{accounts.log_archive}-{accounts.home_region}"


def trail_owner_account(accounts: Accounts) -> str:
    """The account that owns the trail ARN.

    An organization trail created by the CloudTrail delegated administrator is
    still owned by the management account, so its ARN (and every ``aws:SourceArn``
    condition on it) names the management account, not the deploying account.
    """
    return accounts.management


def trail_arn(cfg: TrailguardConfig, accounts: Accounts) -> str:
    owner = trail_owner_account(accounts)
    return f"arn:{cdk.Aws.PARTITION}:cloudtrail:{cfg.home_region}:{owner}:trail/{cfg.trail_name}"


def trail_key_alias_arn(accounts: Accounts) -> str:
    """Alias ARN of the trail key in the log-archive account (key IDs are random; the alias is not)."""
    return f"arn:{cdk.Aws.PARTITION}:kms:{accounts.home_region}:{accounts.log_archive}:{TRAIL_KEY_ALIAS}"


def trail_log_group_name(cfg: TrailguardConfig) -> str:
    return f"/trailguard/cloudtrail/{cfg.trail_name}"


def central_bus_arn(accounts: Accounts) -> str:
    return f"arn:{cdk.Aws.PARTITION}:events:{accounts.home_region}:{accounts.security}:event-bus/{CENTRAL_BUS_NAME}"
