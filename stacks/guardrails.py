"""Guardrails stack (organization mode, ``features.scps``): SCPs that protect the trail, archive and keys.

Prevention first: these deny, to every principal except the configured
break-glass role pattern, the calls that would blind or erase the audit trail.
Remediation (the engine) is the second line. Deployed in the management account;
SCPs never restrict the management account itself, which is why the trail,
archive and keys are also protected by their own resource policies.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_organizations as organizations
from constructs import Construct

from stacks import names
from trailguard.config import TrailguardConfig

TRAIL_ACTIONS = (
    "cloudtrail:StopLogging",
    "cloudtrail:DeleteTrail",
    "cloudtrail:UpdateTrail",
    "cloudtrail:PutEventSelectors",
    "cloudtrail:PutInsightSelectors",
)
BUCKET_ACTIONS = (
    "s3:DeleteBucket",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketLogging",
)
KEY_ACTIONS = ("kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy")
ALIAS_ACTIONS = ("kms:DeleteAlias", "kms:UpdateAlias")
TRAIL_KEY_ALIASES = (names.TRAIL_KEY_ALIAS, names.LOGS_KEY_ALIAS, names.LAKE_KEY_ALIAS)
#: AWS counts SCP size without whitespace.
SCP_MAX_CHARS = 5120


def guardrail_policy(cfg: TrailguardConfig, accounts: names.Accounts) -> dict[str, Any]:
    """The SCP document (one policy, so it uses one of the five SCP slots per target)."""
    except_break_glass = cfg.except_break_glass()
    archive = names.archive_bucket_name(accounts)
    access_logs = names.access_log_bucket_name(accounts)
    partition = cdk.Aws.PARTITION
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ProtectOrganizationTrail",
                "Effect": "Deny",
                "Action": list(TRAIL_ACTIONS),
                "Resource": [names.trail_arn(cfg, accounts)],
                **_when(except_break_glass),
            },
            {
                "Sid": "ProtectArchiveBucket",
                "Effect": "Deny",
                "Action": list(BUCKET_ACTIONS),
                "Resource": [
                    f"arn:{partition}:s3:::{archive}",
                    f"arn:{partition}:s3:::{access_logs}",
                ],
                **_when(except_break_glass),
            },
            {
                "Sid": "ProtectTrailKeys",
                "Effect": "Deny",
                "Action": list(KEY_ACTIONS),
                "Resource": "*",
                "Condition": {
                    **except_break_glass,
                    "ForAnyValue:StringEquals": {"kms:ResourceAliases": list(TRAIL_KEY_ALIASES)},
                },
            },
            {
                "Sid": "ProtectTrailKeyAliases",
                "Effect": "Deny",
                "Action": list(ALIAS_ACTIONS),
                "Resource": [f"arn:{partition}:kms:*:*:{alias}" for alias in TRAIL_KEY_ALIASES],
                **_when(except_break_glass),
            },
            {
                "Sid": "DenyLeaveOrganization",
                "Effect": "Deny",
                "Action": ["organizations:LeaveOrganization"],
                "Resource": "*",
                **_when(except_break_glass),
            },
        ],
    }


def _when(condition: dict[str, Any]) -> dict[str, Any]:
    """``{"Condition": condition}``, or nothing for an empty condition (IAM rejects an empty one)."""
    return {"Condition": condition} if condition else {}


class GuardrailsStack(cdk.Stack):
    """The guardrail SCP, attached to the configured target OUs."""

    def __init__(self, scope: Construct, id: str, *, cfg: TrailguardConfig, accounts: names.Accounts, **kwargs: Any):
        super().__init__(
            scope,
            id,
            description="trailguard: guardrail SCPs protecting the trail, archive bucket and trail keys",
            termination_protection=True,
            **kwargs,
        )
        self.policy = organizations.CfnPolicy(
            self,
            "TrailProtection",
            name="trailguard-protect-audit-trail",
            description="Deny stopping or changing the org trail, its archive bucket and keys (except break-glass)",
            type="SERVICE_CONTROL_POLICY",
            content=guardrail_policy(cfg, accounts),
            target_ids=list(cfg.org.target_ous),
        )
