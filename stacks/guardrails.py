"""Guardrails stack (organization mode, ``features.scps``): SCPs that protect the audit trail and trailguard.

Prevention first: these deny the calls that would blind or erase the audit trail, or blind or
hijack trailguard itself. Remediation (the engine) is the second line. Deployed in the management
account; SCPs never restrict the management account itself, which is why the trail, archive and
keys are also protected by their own resource policies.

Who passes which statement (exact role ARNs from the config; no name patterns but StackSets'):

* the trail, the archive bucket, the trail keys, leaving the organization: only the break-glass
  roles (``break_glass_role_arns``);
* trailguard's own roles and managed policies (``trailguard-*``) and the member forwarding rules
  (``trailguard-forward-*``): the break-glass roles, the pipeline roles that deploy trailguard
  (``deployment_role_arns``) and CloudFormation StackSets' execution role (``stacksets-exec-*``);
* the break-glass roles themselves and the ``stacksets-exec-*`` roles: only the break-glass roles,
  so that nobody else can create a role with either name, or re-trust or pass the real one, to
  inherit its exception.

How service-managed StackSets reach a member account, and why that exception is safe (AWS docs):

* "Configure a custom execution role template for StackSets" (CloudFormation User Guide): "By
  default, StackSets with service-managed permissions creates an execution role named
  stacksets-exec-* in each target account" with AdministratorAccess; stack operations in the
  member account run as that role, which is an ordinary IAM role, so SCPs apply to it: it needs
  the exception to deploy trailguard's member stack.
* The AWS managed policies "CloudFormationStackSetsOrgAdminServiceRolePolicy" (management account:
  ``sts:AssumeRole`` on ``role/stacksets-exec-*``) and "CloudFormationStackSetsOrgMemberServiceRolePolicy"
  (member account, on the service-linked role AWSServiceRoleForCloudFormationStackSetsOrgMember:
  ``iam:CreateRole``, ``DeleteRole``, ``PutRolePolicy``, ``AttachRolePolicy``... on
  ``role/stacksets-exec-*``): the execution role is created and maintained by a service-linked role.
* "Service control policies (SCPs)" (Organizations User Guide): SCPs do not affect service-linked
  roles. So denying everyone the creation or modification of ``stacksets-exec-*`` roles leaves
  StackSets working while a member admin can no longer mint a role whose name passes this SCP (or
  the engine's ``stacksets-exec-*`` exemption), nor re-trust or pass the real one.

The whole document must stay within the 5,120-character SCP quota (:func:`scp_size` is checked
when the stack is built, with the longest partition name).
"""

from __future__ import annotations

import json
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
#: Creating, changing, tagging, passing or deleting a role. (Reads stay allowed.)
ROLE_ACTIONS = (
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:PassRole",
)
#: Creating or rewriting a customer managed policy (the forwarding and remediation roles' policies).
POLICY_ACTIONS = (
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion",
)
#: Everything that changes, re-targets or stops a forwarding rule.
FORWARD_RULE_ACTIONS = (
    "events:DeleteRule",
    "events:DisableRule",
    "events:PutRule",
    "events:PutTargets",
    "events:RemoveTargets",
)
#: AWS counts SCP size without whitespace.
SCP_MAX_CHARS = 5120
#: The longest partition name an ARN of the SCP may carry once CloudFormation resolves it.
_LONGEST_PARTITION = "aws-us-gov"


def guardrail_policy(
    cfg: TrailguardConfig, accounts: names.Accounts, *, partition: str = cdk.Aws.PARTITION
) -> dict[str, Any]:
    """The SCP document (one policy, so it uses one of the five SCP slots per target)."""
    except_break_glass = cfg.except_break_glass()
    archive = names.archive_bucket_name(accounts)
    access_logs = names.access_log_bucket_name(accounts)
    stacksets_exec = f"arn:{partition}:iam::*:role/{names.STACKSETS_EXEC_ROLE_PREFIX}*"
    trusted = [*cfg.break_glass_role_arns, *cfg.deployment_role_arns]
    except_trailguard_deployers: dict[str, Any] = {"ArnNotLike": {"aws:PrincipalArn": stacksets_exec}}
    if trusted:
        except_trailguard_deployers["ArnNotEquals"] = {"aws:PrincipalArn": trusted}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # The trail, its archive and access-log buckets, the trail key aliases. One statement:
                # each action only ever meets resources of its own service, and the break-glass list
                # is written once (it is what makes the SCP grow).
                "Sid": "ProtectAuditTrail",
                "Effect": "Deny",
                "Action": [*TRAIL_ACTIONS, *BUCKET_ACTIONS, *ALIAS_ACTIONS],
                "Resource": [
                    names.trail_arn(cfg, accounts),
                    f"arn:{partition}:s3:::{archive}",
                    f"arn:{partition}:s3:::{access_logs}",
                    *(f"arn:{partition}:kms:*:*:{alias}" for alias in TRAIL_KEY_ALIASES),
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
                "Sid": "DenyLeaveOrganization",
                "Effect": "Deny",
                "Action": ["organizations:LeaveOrganization"],
                "Resource": "*",
                **_when(except_break_glass),
            },
            {
                # Roles whose name carries an exception (see the module docstring). A break-glass role
                # that exists only in the config, not yet in its account, is thereby protected from
                # being created by anyone else; stacksets-exec-* roles are created by a service-linked
                # role, which SCPs do not affect.
                "Sid": "ProtectPrivilegedRoles",
                "Effect": "Deny",
                "Action": list(ROLE_ACTIONS),
                "Resource": [*cfg.break_glass_role_arns, stacksets_exec],
                **_when(except_break_glass),
            },
            {
                # trailguard's own roles and managed policies (member remediation and forwarding roles;
                # in the security account the engine, drift and reconcile roles) and the member
                # forwarding rules: nobody but trailguard's deployers may create, re-trust, extend,
                # fence in, pass, re-target, disable or delete them. The patterns match role paths too
                # (role/trailguard-x/y), exactly as the central bus policy's pattern does.
                "Sid": "ProtectTrailguard",
                "Effect": "Deny",
                "Action": [*ROLE_ACTIONS, *POLICY_ACTIONS, *FORWARD_RULE_ACTIONS],
                "Resource": [
                    f"arn:{partition}:iam::*:role/{names.NAME_PREFIX}*",
                    f"arn:{partition}:iam::*:policy/{names.NAME_PREFIX}*",
                    f"arn:{partition}:events:*:*:rule/{names.FORWARD_PREFIX}*",
                ],
                "Condition": except_trailguard_deployers,
            },
        ],
    }


def scp_size(cfg: TrailguardConfig, accounts: names.Accounts) -> int:
    """Characters the SCP counts against its quota (no whitespace), with the longest partition name."""
    return len(json.dumps(guardrail_policy(cfg, accounts, partition=_LONGEST_PARTITION), separators=(",", ":")))


def _when(condition: dict[str, Any]) -> dict[str, Any]:
    """``{"Condition": condition}``, or nothing for an empty condition (IAM rejects an empty one)."""
    return {"Condition": condition} if condition else {}


class GuardrailsStack(cdk.Stack):
    """The guardrail SCP, attached to the configured target OUs."""

    def __init__(self, scope: Construct, id: str, *, cfg: TrailguardConfig, accounts: names.Accounts, **kwargs: Any):
        super().__init__(
            scope,
            id,
            description="trailguard: guardrail SCP protecting the trail, archive bucket, trail keys and trailguard",
            termination_protection=True,
            **kwargs,
        )
        size = scp_size(cfg, accounts)
        if size > SCP_MAX_CHARS:
            raise ValueError(
                f"the guardrail SCP would be {size} characters, over the {SCP_MAX_CHARS}-character quota: "
                "list fewer break_glass_role_arns / deployment_role_arns"
            )
        self.policy = organizations.CfnPolicy(
            self,
            "TrailProtection",
            name="trailguard-protect-audit-trail",
            description="Deny stopping or changing the org trail, its archive and keys, and trailguard's roles and "
            "forwarders (except break-glass, trailguard's deployers)",
            type="SERVICE_CONTROL_POLICY",
            content=guardrail_policy(cfg, accounts),
            target_ids=list(cfg.org.target_ous),
        )
