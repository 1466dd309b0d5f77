"""The member stack: deployed in every governed account and region.

It holds two things, both generated from the catalog:

* forwarding rules ``trailguard-forward-<i>`` on the account's default bus (the compact union of
  the catalog patterns, see :mod:`stacks.forwarding`) that send matching CloudTrail events to the
  central bus in the security account's home region as the role ``trailguard-forward-<region>``
  (the only principal name the central bus accepts), with a retry policy and a dead-letter queue
  ``trailguard-forward-dlq``, alarmed here (``trailguard-forward-dlq``, messages visible > 0) and read
  hourly by the security account's drift sweep, which alerts centrally (issue 20);
* the remediation role ``trailguard-remediation`` the central engine assumes. IAM is global,
  so the role is created only where ``AWS::Region`` is the home region (a CloudFormation
  condition: the same template is deployed to every region by the StackSet).

Every name is deterministic (:mod:`stacks.names`) so that the guardrail SCP can deny changing
these roles, their policies and the forwarding rules to a member account's own administrators.

The stack must synthesize without assets: in organization mode its template is embedded in a
StackSet (``TemplateBody``), and member accounts are not CDK-bootstrapped.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from trailguard_engine.catalog import load_catalog
from trailguard_engine.member_queues import FORWARD_DLQ_NAME

from stacks import names
from stacks.forwarding import forwarding_patterns, remediation_statements
from trailguard.config import TrailguardConfig

#: Reads the drift sweep (issue 7) makes in the trail and log-archive accounts, by what they read.
#: They are not remediation permissions of any rule, so they get their own statements, each pinned
#: to the resource whose name is known at synth time (the trail ARN, the archive bucket; the trail
#: keys' IDs are random, so key reads are pinned to this account's keys in the home region).
DRIFT_TRAIL_READS: tuple[str, ...] = ("cloudtrail:GetTrail", "cloudtrail:GetTrailStatus")
DRIFT_BUCKET_READS: tuple[str, ...] = (
    "s3:GetBucketPolicy",
    "s3:GetBucketPolicyStatus",
    "s3:GetBucketPublicAccessBlock",
)
DRIFT_KEY_READS: tuple[str, ...] = ("kms:DescribeKey",)
#: What the drift sweep may do to the forwarding DLQ (its depth, nothing else), in every governed region.
DRIFT_QUEUE_READS: tuple[str, ...] = ("sqs:GetQueueAttributes",)
DRIFT_READ_ACTIONS: tuple[str, ...] = DRIFT_TRAIL_READS + DRIFT_BUCKET_READS + DRIFT_KEY_READS + DRIFT_QUEUE_READS
DRIFT_ROLE_NAME = "trailguard-drift"
RECONCILE_ROLE_NAME = "trailguard-reconcile"
#: The digest verifier (issue 13): reads digests and log files of the archive, like reconcile.
VERIFY_ROLE_NAME = "trailguard-verify"
FORWARD_RETRY_ATTEMPTS = 20
FORWARD_MAX_EVENT_AGE = cdk.Duration.hours(6)


class MemberStack(cdk.Stack):
    """Forwarding rules + remediation role for one account and region."""

    def __init__(self, scope: Construct, id: str, *, cfg: TrailguardConfig, **kwargs: object) -> None:
        super().__init__(scope, id, **kwargs)  # type: ignore[arg-type]
        self.template_options.description = (
            "trailguard member: forwards risky CloudTrail events to the central bus; remediation role (home region)"
        )
        accounts = names.Accounts.for_config(cfg)
        if cfg.mode == "standalone":
            accounts = names.Accounts(*(self.account,) * 4, home_region=cfg.home_region)
        rules = load_catalog()

        # ---- forwarding ---------------------------------------------------------------
        dlq = sqs.Queue(
            self,
            "ForwardDlq",
            queue_name=FORWARD_DLQ_NAME,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        central_bus = events.EventBus.from_event_bus_arn(self, "CentralBus", names.central_bus_arn(accounts))
        forward_name = names.forward_role_name(self.region)
        forward_role = iam.Role(
            self,
            "ForwardRole",
            role_name=forward_name,
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description="Lets EventBridge put matching events on the trailguard central bus",
        )
        iam.ManagedPolicy(
            self,
            "ForwardPolicy",
            managed_policy_name=forward_name,
            description="trailguard: put events on the central bus",
            roles=[forward_role],
            statements=[iam.PolicyStatement(actions=["events:PutEvents"], resources=[central_bus.event_bus_arn])],
        )
        self.forward_rules: list[events.CfnRule] = []
        for i, fp in enumerate(forwarding_patterns(rules)):
            rule = events.CfnRule(
                self,
                f"Forward{i}",
                name=names.forward_rule_name(i),
                description=f"trailguard: forward catalog events to the central bus ({i})",
                event_bus_name="default",
                event_pattern=fp.pattern,
                state="ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" if fp.read_only_events else "ENABLED",
                targets=[
                    events.CfnRule.TargetProperty(
                        id="central-bus",
                        arn=central_bus.event_bus_arn,
                        role_arn=forward_role.role_arn,
                        dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=dlq.queue_arn),
                        retry_policy=events.CfnRule.RetryPolicyProperty(
                            maximum_retry_attempts=FORWARD_RETRY_ATTEMPTS,
                            maximum_event_age_in_seconds=int(FORWARD_MAX_EVENT_AGE.to_seconds()),
                        ),
                    )
                ],
            )
            self.forward_rules.append(rule)
        dlq.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeDeadLetters",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[dlq.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": [r.attr_arn for r in self.forward_rules]}},
            )
        )

        # A local alarm for this account's operators; the security account's drift sweep reads the same
        # depth (and reports a queue it cannot read) because a member admin can delete this alarm.
        self.forward_dlq = dlq
        self.forward_dlq_alarm = dlq.metric_approximate_number_of_messages_visible(
            period=cdk.Duration.minutes(5), statistic="Maximum"
        ).create_alarm(
            self,
            "ForwardDlqDepth",
            alarm_name=FORWARD_DLQ_NAME,
            alarm_description="trailguard: forwarded events failed to reach the central bus (messages in "
            f"{FORWARD_DLQ_NAME}); the security account's drift sweep alerts on it centrally",
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )

        # ---- remediation role (home region only) -------------------------------------
        home = cdk.CfnCondition(
            self, "IsHomeRegion", expression=cdk.Fn.condition_equals(cdk.Aws.REGION, cfg.home_region)
        )
        trusted = [
            f"arn:{self.partition}:iam::{accounts.security}:role/{names.ENGINE_ROLE_NAME}",
            f"arn:{self.partition}:iam::{accounts.security}:role/{DRIFT_ROLE_NAME}",
        ]
        trust_conditions: dict[str, dict[str, object]] = {"ArnEquals": {"aws:PrincipalArn": trusted}}
        if cfg.mode == "organization":
            trust_conditions["StringEquals"] = {"aws:PrincipalOrgID": cfg.org.org_id}
        statements = remediation_statements(rules, partition=self.partition, account=self.account)
        statements += self._drift_read_statements(cfg, accounts)
        role = iam.CfnRole(
            self,
            "RemediationRole",
            role_name=names.REMEDIATION_ROLE_NAME,
            description="Assumed by the central trailguard engine to remediate risky changes in this account",
            max_session_duration=3600,
            assume_role_policy_document={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        # The account principal + aws:PrincipalArn pin, rather than the role ARN as
                        # principal: IAM rejects a trust policy naming a role that does not exist
                        # yet, and silently breaks it if the engine role is ever recreated.
                        "Sid": "CentralEngineOnly",
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:{self.partition}:iam::{accounts.security}:root"},
                        "Action": "sts:AssumeRole",
                        "Condition": trust_conditions,
                    }
                ],
            },
        )
        role.cfn_options.condition = home
        policy = iam.CfnManagedPolicy(
            self,
            "RemediationPolicy",
            managed_policy_name=names.REMEDIATION_POLICY_NAME,
            description="trailguard: union of the catalog's remediation permissions + drift sweep reads",
            roles=[role.ref],
            policy_document={"Version": "2012-10-17", "Statement": statements},
        )
        policy.cfn_options.condition = home
        self.remediation_role = role
        self.remediation_policy = policy
        self.remediation_statements = statements
        self._acknowledge(dlq, policy, statements)

    def _drift_read_statements(self, cfg: TrailguardConfig, accounts: names.Accounts) -> list[dict[str, Any]]:
        """The drift sweep's reads, each on the one resource it checks (useful only in the trail and
        log-archive accounts; elsewhere they name resources that are not there)."""
        p = self.partition
        return [
            {
                "Sid": "DriftSweepTrailReads",
                "Effect": "Allow",
                "Action": list(DRIFT_TRAIL_READS),
                "Resource": names.trail_arn(cfg, accounts),
            },
            {
                "Sid": "DriftSweepArchiveReads",
                "Effect": "Allow",
                "Action": list(DRIFT_BUCKET_READS),
                "Resource": f"arn:{p}:s3:::{names.archive_bucket_name(accounts)}",
            },
            {
                "Sid": "DriftSweepKeyReads",
                "Effect": "Allow",
                "Action": list(DRIFT_KEY_READS),
                "Resource": f"arn:{p}:kms:{cfg.home_region}:{self.account}:key/*",
            },
            {
                # IAM is global: the role in the home region reads the queue of every governed region.
                "Sid": "DriftSweepForwardDlqDepth",
                "Effect": "Allow",
                "Action": list(DRIFT_QUEUE_READS),
                "Resource": [
                    f"arn:{p}:sqs:{region}:{self.account}:{FORWARD_DLQ_NAME}" for region in cfg.governed_regions
                ],
            },
        ]

    def _acknowledge(self, dlq: sqs.Queue, policy: iam.CfnManagedPolicy, statements: list[dict[str, Any]]) -> None:
        """Every cdk-nag acknowledgment of this stack, each with its reason."""
        acks: list[tuple[Construct, str, str]] = [
            (dlq, "AwsSolutions::AwsSolutions-SQS3", "This queue is the dead-letter queue of the forwarding targets."),
            (
                self.forward_dlq_alarm,
                "NIST.800.53.R5::NIST.800.53.R5-CloudWatchAlarmAction",
                "Member accounts have no alert topic: the security account's drift sweep reads this queue's depth "
                "hourly and alerts centrally (and reports a queue it cannot read); this alarm is the local view.",
            ),
        ]
        reasons: dict[str, str] = {}
        for st in statements:
            for resource in _as_list(st["Resource"]):
                if "*" not in resource:
                    continue
                if st["Sid"] == "DriftSweepKeyReads":
                    reason = (
                        "The trail keys have random IDs; the drift sweep reads only this account's keys in the "
                        "home region, where the trail keys live."
                    )
                elif resource == "*":
                    reason = "Describe/List/Get actions without resource-level permissions."
                else:
                    reason = "Resource names are only known at event time; scoped to this account and resource type."
                reasons.setdefault(resource, reason)
        for resource in sorted(reasons):
            acks.append(
                (policy, f"AwsSolutions::AwsSolutions-IAM5[Resource::{self._spelled(resource)}]", reasons[resource])
            )
        for construct, rule, reason in acks:
            cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))
        self.acknowledgment_count = len(acks)

    def _spelled(self, value: str) -> str:
        """A string with pseudo-parameter tokens spelled the way cdk-nag prints them."""
        for token, spelled in (
            (self.account, "<AWS::AccountId>"),
            (cdk.Aws.ACCOUNT_ID, "<AWS::AccountId>"),
            (self.partition, "<AWS::Partition>"),
            (cdk.Aws.PARTITION, "<AWS::Partition>"),
        ):
            if cdk.Token.is_unresolved(token):
                value = value.replace(token, spelled)
        return value


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
