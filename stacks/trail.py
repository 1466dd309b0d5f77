"""Trail stack: the organization (or account) trail, its CloudWatch Logs group, CIS alarms and CloudTrail Lake.

Organization mode: deployed in the CloudTrail delegated administrator (or the
management account). The archive bucket and trail key live in the log-archive
account and are referenced by their deterministic names only.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from stacks import names
from stacks.constructs.cis_monitoring import CisMonitoring
from stacks.constructs.cloudtrail_trail import FoundationTrail, LakeEventDataStore
from stacks.constructs.keys import lake_key, logs_key, notifications_key
from stacks.constructs.nag import NagAck, acknowledge, finding_text
from trailguard.config import TrailguardConfig


class TrailStack(cdk.Stack):
    """The trail and everything that watches it in the trail account."""

    def __init__(self, scope: Construct, id: str, *, cfg: TrailguardConfig, accounts: names.Accounts, **kwargs: Any):
        super().__init__(
            scope,
            id,
            description="trailguard: CloudTrail trail, CloudWatch Logs delivery, CIS alarms, CloudTrail Lake",
            termination_protection=True,
            **kwargs,
        )
        org_id = cfg.org.org_id if cfg.mode == "organization" else None
        trail_arn = names.trail_arn(cfg, accounts)
        owner = names.trail_owner_account(accounts)
        group_name = names.trail_log_group_name(cfg)
        features = cfg.features

        self.logs_key = logs_key(self, "LogsKey", cfg=cfg, alias=names.LOGS_KEY_ALIAS, log_group_name=group_name)
        self.log_group = logs.LogGroup(
            self,
            "TrailLogGroup",
            log_group_name=group_name,
            encryption_key=self.logs_key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        cfn_group = self.log_group.node.default_child
        assert isinstance(cfn_group, logs.CfnLogGroup)
        cfn_group.retention_in_days = cfg.retention.cloudwatch_logs_days

        self.notifications_key = notifications_key(
            self,
            "NotificationsKey",
            cfg=cfg,
            alias=names.NOTIFICATIONS_KEY_ALIAS,
            trail_arn=trail_arn if features.sns_delivery_notifications else None,
        )
        self.alarm_topic = sns.Topic(
            self,
            "CisAlarmTopic",
            topic_name=names.CIS_ALARM_TOPIC_NAME,
            display_name="trailguard CIS CloudTrail alarms",
            master_key=self.notifications_key,
            enforce_ssl=True,
        )
        for email in cfg.notifications.emails:
            self.alarm_topic.add_subscription(subs.EmailSubscription(email))

        self.delivery_topic: sns.Topic | None = None
        if features.sns_delivery_notifications:
            self.delivery_topic = sns.Topic(
                self,
                "DeliveryTopic",
                topic_name=names.TRAIL_DELIVERY_TOPIC_NAME,
                display_name="trailguard CloudTrail log-file delivery notifications",
                master_key=self.notifications_key,
                enforce_ssl=True,
            )
            self.delivery_topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowCloudTrailDeliveryNotifications",
                    principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[self.delivery_topic.topic_arn],
                    conditions={"StringEquals": {"aws:SourceArn": trail_arn}},
                )
            )

        self.trail = FoundationTrail(
            self,
            "CloudTrail",
            cfg=cfg,
            trail_arn=trail_arn,
            trail_owner=owner,
            bucket_name=names.archive_bucket_name(accounts),
            kms_key_id=names.trail_key_alias_arn(accounts),
            log_group=self.log_group,
            organization_id=org_id,
            delivery_topic=self.delivery_topic,
        )
        if self.delivery_topic is not None:
            self.trail.trail.node.add_dependency(self.delivery_topic)

        self.lake: LakeEventDataStore | None = None
        if features.cloudtrail_lake.enabled:
            key = lake_key(self, "LakeKey", cfg=cfg, alias=names.LAKE_KEY_ALIAS, owner_account=owner)
            self.lake = LakeEventDataStore(self, "Lake", cfg=cfg, key=key, organization=org_id is not None)

        self.cis = CisMonitoring(self, "CisMonitoring", log_group=self.log_group, alarm_topic=self.alarm_topic)

        cdk.CfnOutput(self, "TrailArn", value=trail_arn)
        cdk.CfnOutput(self, "TrailLogGroupName", value=group_name)
        cdk.CfnOutput(self, "CisAlarmTopicArn", value=self.alarm_topic.topic_arn)
        self._acknowledge_nag_findings()

    def _acknowledge_nag_findings(self) -> None:
        """Every cdk-nag acknowledgment of this stack, in one place (tests assert the count)."""
        for resource in self.trail.log_stream_arns:
            acknowledge(
                self.trail.policy,
                NagAck(
                    f"AwsSolutions-IAM5[Resource::{finding_text(self, resource)}]",
                    "CloudTrail names one log stream per account and Region (<account>_CloudTrail_<region>, and "
                    "<orgId>_<account>_CloudTrail_<region> for an organization trail); the wildcard covers only "
                    "the stream-name suffix inside this trail's own log group.",
                ),
            )
