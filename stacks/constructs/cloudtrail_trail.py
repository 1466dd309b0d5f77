"""The CloudTrail trail itself (organization or account trail), its CloudWatch Logs delivery, and CloudTrail Lake."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks import names
from trailguard.config import TrailguardConfig

#: Services that emit CloudTrail network activity events (VPC endpoint traffic).
NETWORK_ACTIVITY_SOURCES = (
    "cloudtrail.amazonaws.com",
    "ec2.amazonaws.com",
    "kms.amazonaws.com",
    "secretsmanager.amazonaws.com",
)

INSIGHT_TYPES = ("ApiCallRateInsight", "ApiErrorRateInsight")


_OPS = {"Equals": "equal_to", "NotStartsWith": "not_starts_with"}


def _selector(name: str, **fields: dict[str, list[str]]) -> cloudtrail.CfnTrail.AdvancedEventSelectorProperty:
    field_selectors = []
    for field, ops in fields.items():
        kwargs: dict[str, Any] = {_OPS[op]: values for op, values in ops.items()}
        field_selectors.append(
            cloudtrail.CfnTrail.AdvancedFieldSelectorProperty(field=field.replace("__", "."), **kwargs)
        )
    return cloudtrail.CfnTrail.AdvancedEventSelectorProperty(name=name, field_selectors=field_selectors)


def advanced_event_selectors(
    cfg: TrailguardConfig, *, archive_bucket_arn: str
) -> list[cloudtrail.CfnTrail.AdvancedEventSelectorProperty]:
    """Management events (read + write) always; S3 / Lambda data and network activity events when enabled.

    The archive bucket's own object events are excluded: logging them would make
    every log delivery produce more log records.
    """
    selectors = [_selector("Management events (read and write)", eventCategory={"Equals": ["Management"]})]
    de = cfg.features.data_events
    if de.s3:
        selectors.append(
            _selector(
                "S3 object-level events (all buckets except the CloudTrail archive)",
                eventCategory={"Equals": ["Data"]},
                resources__type={"Equals": ["AWS::S3::Object"]},
                resources__ARN={"NotStartsWith": [f"{archive_bucket_arn}/"]},
            )
        )
    if de.lambda_:
        selectors.append(
            _selector(
                "Lambda function invocations",
                eventCategory={"Equals": ["Data"]},
                resources__type={"Equals": ["AWS::Lambda::Function"]},
            )
        )
    if de.network_activity:
        for source in NETWORK_ACTIVITY_SOURCES:
            selectors.append(
                _selector(
                    f"Network activity events: {source.split('.')[0]}",
                    eventCategory={"Equals": ["NetworkActivity"]},
                    eventSource={"Equals": [source]},
                )
            )
    return selectors


class FoundationTrail(Construct):
    """Multi-Region trail with log-file validation, SSE-KMS, CloudWatch Logs, optional SNS and Insights."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cfg: TrailguardConfig,
        trail_arn: str,
        trail_owner: str,
        bucket_name: str,
        kms_key_id: str,
        log_group: logs.LogGroup,
        organization_id: str | None,
        delivery_topic: sns.ITopic | None,
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        partition = stack.partition
        group = names.trail_log_group_name(cfg)  # literal, so the IAM resource is reviewable
        stream_prefixes = [f"{trail_owner}_CloudTrail_*"]
        if organization_id:
            stream_prefixes.append(f"{organization_id}_*")
        self.log_stream_arns = stream_arns = [
            f"arn:{partition}:logs:{stack.region}:{stack.account}:log-group:{group}:log-stream:{p}"
            for p in stream_prefixes
        ]
        self.role = iam.Role(
            self,
            "CloudWatchLogsRole",
            description="trailguard: lets CloudTrail deliver this trail's events to its CloudWatch Logs group",
            assumed_by=iam.ServicePrincipal(
                "cloudtrail.amazonaws.com", conditions={"StringEquals": {"aws:SourceArn": trail_arn}}
            ),
        )
        self.policy = iam.ManagedPolicy(
            self,
            "CloudWatchLogsDelivery",
            description="trailguard: CloudTrail -> CloudWatch Logs delivery (log streams of this trail only)",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="DeliverTrailEventsToLogStreams",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=stream_arns,
                )
            ],
        )
        bucket_arn = f"arn:{partition}:s3:::{bucket_name}"
        self.trail = cloudtrail.CfnTrail(
            self,
            "Trail",
            trail_name=cfg.trail_name,
            is_logging=True,
            s3_bucket_name=bucket_name,
            kms_key_id=kms_key_id,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            is_organization_trail=organization_id is not None,
            cloud_watch_logs_log_group_arn=log_group.log_group_arn,
            cloud_watch_logs_role_arn=self.role.role_arn,
            sns_topic_name=delivery_topic.topic_arn if delivery_topic else None,
            advanced_event_selectors=advanced_event_selectors(cfg, archive_bucket_arn=bucket_arn),
            insight_selectors=(
                [cloudtrail.CfnTrail.InsightSelectorProperty(insight_type=t) for t in INSIGHT_TYPES]
                if cfg.features.insights
                else None
            ),
        )
        self.trail.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        self.trail.node.add_dependency(self.policy)
        # The retained trail keeps delivering to its retained log group only while this role and its policy exist.
        self.role.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        self.policy.apply_removal_policy(cdk.RemovalPolicy.RETAIN)


class LakeEventDataStore(Construct):
    """CloudTrail Lake event data store for management events, encrypted with a CMK (CloudTrail.10)."""

    def __init__(self, scope: Construct, id: str, *, cfg: TrailguardConfig, key: kms.IKey, organization: bool) -> None:
        super().__init__(scope, id)
        self.store = cloudtrail.CfnEventDataStore(
            self,
            "Store",
            name=f"{cfg.trail_name}-lake",
            kms_key_id=key.key_arn,
            multi_region_enabled=True,
            organization_enabled=organization,
            retention_period=cfg.features.cloudtrail_lake.retention_days,
            termination_protection_enabled=True,
            ingestion_enabled=True,
            advanced_event_selectors=[
                cloudtrail.CfnEventDataStore.AdvancedEventSelectorProperty(
                    name="Management events (read and write)",
                    field_selectors=[
                        cloudtrail.CfnEventDataStore.AdvancedFieldSelectorProperty(
                            field="eventCategory", equal_to=["Management"]
                        )
                    ],
                )
            ],
        )
        self.store.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
