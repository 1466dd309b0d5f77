"""Customer-managed KMS keys for the trail, its log group, its topics and CloudTrail Lake.

Every key: rotation on, retained on delete, 30-day deletion window, a fixed
alias (``stacks.names``) and the protected-key tag the engine honours. CDK adds
the only ``kms:*`` statement (to the owning account root); every other statement
is scoped to one service with a source or encryption-context condition.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from trailguard.config import TrailguardConfig


def _key(scope: Construct, id: str, *, cfg: TrailguardConfig, alias: str, description: str) -> kms.Key:
    key = kms.Key(
        scope,
        id,
        alias=alias,
        description=description,
        enable_key_rotation=True,
        pending_window=cdk.Duration.days(30),
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )
    for k, v in cfg.remediation.protected_key_tag.items():
        cdk.Tags.of(key).add(k, v)
    return key


def trail_key(
    scope: Construct,
    id: str,
    *,
    cfg: TrailguardConfig,
    alias: str,
    trail_arn: str,
    trail_owner: str,
    reader_org_id: str | None,
    log_file_readers: Sequence[str] = (),
) -> kms.Key:
    """The key CloudTrail encrypts log and digest files with (lives beside the archive bucket).

    ``log_file_readers``: role ARNs in other accounts of the organization (trailguard's own
    functions, e.g. ``trailguard-reconcile``) that read log files through S3.
    """
    key = _key(scope, id, cfg=cfg, alias=alias, description="trailguard: CloudTrail log and digest files")
    partition = cdk.Aws.PARTITION
    context_arn = f"arn:{partition}:cloudtrail:*:{trail_owner}:trail/*"
    cloudtrail = iam.ServicePrincipal("cloudtrail.amazonaws.com")
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudTrailEncryptLogs",
            principals=[cloudtrail],
            actions=["kms:GenerateDataKey*"],
            resources=["*"],
            conditions={
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": context_arn},
                "StringEquals": {"aws:SourceArn": trail_arn},
            },
        )
    )
    # With an S3 Bucket Key on the archive bucket CloudTrail needs kms:Decrypt to
    # create or update the trail; it is confined to this one trail.
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudTrailBucketKeyDecrypt",
            principals=[cloudtrail],
            actions=["kms:Decrypt"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceArn": trail_arn}},
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudTrailDescribeKey",
            principals=[cloudtrail],
            actions=["kms:DescribeKey"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceArn": trail_arn}},
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowLogArchiveAccountDecryptLogs",
            principals=[iam.AccountRootPrincipal()],
            actions=["kms:Decrypt"],
            resources=["*"],
            conditions={"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": context_arn}},
        )
    )
    if cfg.reader_role_arns:
        conditions: dict[str, dict[str, object]] = {
            "ArnLike": {"aws:PrincipalArn": list(cfg.reader_role_arns)},
            "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": context_arn},
        }
        if reader_org_id:
            conditions["StringEquals"] = {"aws:PrincipalOrgID": reader_org_id}
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowReaderRolesDecryptLogs",
                principals=[iam.AnyPrincipal()],
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions=conditions,
            )
        )
    if log_file_readers:
        key.add_to_resource_policy(s3_log_file_decrypt_statement(scope, log_file_readers, reader_org_id))
    return key


def s3_log_file_decrypt_statement(scope: Construct, readers: Sequence[str], org_id: str | None) -> iam.PolicyStatement:
    """kms:Decrypt for named roles, only when S3 asks on their behalf (a GetObject on the archive).

    Scoped by ``kms:ViaService`` rather than by the CloudTrail encryption context: with an S3
    Bucket Key on the archive, S3's KMS calls carry the bucket ARN as encryption context, so a
    condition on ``aws:cloudtrail:arn`` is not a dependable way to recognise a log-file read.
    """
    region = cdk.Stack.of(scope).region
    conditions: dict[str, dict[str, object]] = {
        "ArnEquals": {"aws:PrincipalArn": list(readers)},
        "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
    }
    if org_id:
        conditions["StringEquals"]["aws:PrincipalOrgID"] = org_id
    return iam.PolicyStatement(
        sid="AllowTrailguardReadersDecryptViaS3",
        principals=[iam.AnyPrincipal()],
        actions=["kms:Decrypt"],
        resources=["*"],
        conditions=conditions,
    )


def logs_key(scope: Construct, id: str, *, cfg: TrailguardConfig, alias: str, log_group_name: str) -> kms.Key:
    """The key for the trail's CloudWatch Logs group, usable by CloudWatch Logs for that group only."""
    key = _key(scope, id, cfg=cfg, alias=alias, description="trailguard: CloudTrail CloudWatch Logs group")
    stack = cdk.Stack.of(scope)
    group_arn = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{log_group_name}"
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsForTrailLogGroup",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": group_arn}},
        )
    )
    return key


def notifications_key(
    scope: Construct, id: str, *, cfg: TrailguardConfig, alias: str, trail_arn: str | None
) -> kms.Key:
    """The key for trailguard's SNS topics: CloudWatch alarms (and CloudTrail, when it notifies) may publish."""
    key = _key(scope, id, cfg=cfg, alias=alias, description="trailguard: SNS topics (alarms, delivery notices)")
    stack = cdk.Stack.of(scope)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchAlarmsToPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        )
    )
    if trail_arn is not None:
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudTrailDeliveryNotifications",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceArn": trail_arn}},
            )
        )
    return key


def lake_key(scope: Construct, id: str, *, cfg: TrailguardConfig, alias: str, owner_account: str) -> kms.Key:
    """The key for the CloudTrail Lake event data store (Security Hub CloudTrail.10)."""
    key = _key(scope, id, cfg=cfg, alias=alias, description="trailguard: CloudTrail Lake event data store")
    cloudtrail = iam.ServicePrincipal("cloudtrail.amazonaws.com")
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudTrailLakeEncryptDecrypt",
            principals=[cloudtrail],
            actions=["kms:GenerateDataKey*", "kms:Decrypt"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": owner_account}},
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudTrailLakeDescribeKey",
            principals=[cloudtrail],
            actions=["kms:DescribeKey"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": owner_account}},
        )
    )
    return key
