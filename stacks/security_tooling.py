"""Security-tooling stack: the Athena query layer over the CloudTrail archive.

Organization mode: deployed in the security-tooling account (Athena reads the archive
bucket in the log-archive account; the archive bucket policy and the trail key must
grant that account read and decrypt). Standalone: the one account.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks import names
from stacks.constructs.nag import NagAck, acknowledge, finding_text
from stacks.constructs.query_layer import PROJECTION_START, AccountProjectionSync, CloudTrailTable, QueryLayer
from trailguard.config import KNOWN_REGIONS, TrailguardConfig

ATHENA_KEY_ALIAS = "alias/trailguard-athena"
DATABASE_NAME = "trailguard"
WORKGROUP_NAME = "trailguard"
ORG_TABLE = "cloudtrail"
ACCOUNT_TRAIL_TABLE = "cloudtrail_account_trails"
#: ``yyyy/MM/dd`` (the date projection's format), a plausible calendar day from 2000 on.
PROJECTION_START_PATTERN = r"^20[0-9]{2}/(0[1-9]|1[0-2])/(0[1-9]|[12][0-9]|3[01])$"


class SecurityToolingStack(cdk.Stack):
    """Athena workgroup, results bucket and key, Glue tables and the named queries."""

    def __init__(
        self, scope: Construct, id: str, *, cfg: TrailguardConfig, accounts: names.Accounts, **kwargs: Any
    ) -> None:
        kwargs.setdefault(
            "description", "trailguard: security tooling (Athena query layer over the CloudTrail archive)"
        )
        super().__init__(scope, id, **kwargs)
        org = cfg.mode == "organization"

        self.results_key = kms.Key(
            self,
            "AthenaResultsKey",
            alias=ATHENA_KEY_ALIAS,
            description="trailguard: encrypts Athena query results and their bucket",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.access_logs = s3.Bucket(
            self,
            "AthenaResultsAccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=cdk.Duration.days(max(365, cfg.retention.athena_results_days)),
                    noncurrent_version_expiration=cdk.Duration.days(30),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.results_bucket = s3.Bucket(
            self,
            "AthenaResults",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.results_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="athena-results/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-query-results",
                    expiration=cdk.Duration.days(cfg.retention.athena_results_days),
                    noncurrent_version_expiration=cdk.Duration.days(1),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        if org:
            org_id = cfg.org.org_id
            known = sorted(
                {accounts.management, accounts.log_archive, accounts.security, accounts.trail}
                | set(cfg.exemptions.accounts)
            )
            account_ids = cdk.CfnParameter(
                self,
                "QueryAccountIds",
                type="CommaDelimitedList",
                default=",".join(known),
                description="Seed of the account IDs the Athena tables project (partition projection enum). "
                "The trailguard-athena-accounts function adds every account of the organization hourly and "
                "after each deploy; it never removes one.",
            )
            account_values = cdk.Fn.join(",", account_ids.value_as_list)
            tables = [
                CloudTrailTable(
                    ORG_TABLE,
                    f"AWSLogs/{org_id}/",
                    "CloudTrail organization-trail logs (AWSLogs/<orgId>/<account>/CloudTrail/...)",
                ),
                CloudTrailTable(
                    ACCOUNT_TRAIL_TABLE,
                    "AWSLogs/",
                    "CloudTrail account-trail logs in the same archive (AWSLogs/<account>/CloudTrail/...)",
                ),
            ]
        else:
            account_values = accounts.log_archive
            tables = [
                CloudTrailTable(
                    ORG_TABLE, "AWSLogs/", "CloudTrail account-trail logs (AWSLogs/<account>/CloudTrail/...)"
                )
            ]

        projection_start = cdk.CfnParameter(
            self,
            "QueryProjectionStart",
            type="String",
            default=PROJECTION_START,
            allowed_pattern=PROJECTION_START_PATTERN,
            constraint_description="a day as yyyy/MM/dd, e.g. 2013/11/01",
            description="First day (yyyy/MM/dd) the Athena tables' date projection covers; it ends at NOW. The default, "
            "CloudTrail's launch, reaches every log; a later day (your organization's first log) makes queries "
            "without a date bound list fewer empty prefixes.",
        )
        self.query_layer = QueryLayer(
            self,
            "QueryLayer",
            archive_bucket_name=names.archive_bucket_name(accounts),
            tables=tables,
            account_ids=account_values,
            # Every commercial region: a multi-region trail also logs regions nobody governs,
            # which is exactly where an intruder likes to work.
            regions=KNOWN_REGIONS,
            projection_start=projection_start.value_as_string,
            results_bucket=self.results_bucket,
            results_key=self.results_key,
            database_name=DATABASE_NAME,
            workgroup_name=WORKGROUP_NAME,
        )
        self.account_sync: AccountProjectionSync | None = None
        self.cfg_unreserved = cfg.engine.reserved_concurrency is None
        if org:
            self.account_sync = AccountProjectionSync(
                self,
                "AccountSync",
                database_name=DATABASE_NAME,
                table_names=[t.name for t in tables],
                key=self.results_key,
                log_retention_days=cfg.retention.cloudwatch_logs_days,
                alarm_emails=cfg.notifications.emails,
                # engine.reserved_concurrency null: the account's Lambda quota cannot spare any reservation.
                reserved_concurrency=1 if cfg.engine.reserved_concurrency is not None else None,
            )
            for table in self.query_layer.tables:
                self.account_sync.node.add_dependency(table)
        cdk.CfnOutput(self, "AthenaWorkGroup", value=WORKGROUP_NAME)
        cdk.CfnOutput(self, "AthenaTable", value=f"{DATABASE_NAME}.{ORG_TABLE}")
        cdk.CfnOutput(self, "AthenaResultsBucket", value=self.results_bucket.bucket_name)
        self._acknowledge_nag_findings()

    def _acknowledge_nag_findings(self) -> None:
        """Every cdk-nag acknowledgment of this stack, in one place (tests assert the count)."""
        acknowledge(
            self.access_logs,
            NagAck(
                "NIST.800.53.R5-S3DefaultEncryptionKMS",
                "S3 server access logging only delivers to SSE-S3 buckets, so the access-log bucket uses SSE-S3; "
                "the Athena results bucket itself is encrypted with the customer-managed Athena key.",
            ),
        )
        if self.account_sync is not None:
            sync = self.account_sync
            acknowledge(
                sync.role,
                NagAck(
                    f"AwsSolutions-IAM5[Resource::{finding_text(sync, sync.log_stream_arns)}]",
                    "Log streams are created by Lambda with run-time names inside the function's own log group.",
                ),
                NagAck(
                    "AwsSolutions-IAM5[Resource::*]",
                    "organizations:ListAccounts has no resource type: it can only be granted on *; it is read-only.",
                ),
                NagAck(
                    "NIST.800.53.R5-IAMNoInlinePolicy",
                    "The athena-accounts role has its own policy generated from its grants; nothing is shared.",
                ),
            )
            acknowledge(
                sync.function,
                NagAck(
                    "AwsSolutions-L1",
                    "python3.12 is the runtime the Lambda contract and the detection functions are built for.",
                ),
                NagAck(
                    "NIST.800.53.R5-LambdaInsideVPC",
                    "The function only calls the Glue and Organizations APIs; a VPC would add endpoints for nothing.",
                ),
            )
            if self.cfg_unreserved:
                acknowledge(
                    sync.function,
                    NagAck(
                        "NIST.800.53.R5-LambdaConcurrency",
                        "engine.reserved_concurrency is null: the account's Lambda quota cannot spare reservations "
                        "(Lambda keeps 100 unreserved); the function runs hourly and after deploys.",
                    ),
                )
        for bucket in (self.access_logs, self.results_bucket):
            acknowledge(
                bucket,
                NagAck(
                    "NIST.800.53.R5-S3BucketReplicationEnabled",
                    "Athena query results and their access logs are short-lived, re-creatable outputs that expire "
                    "by lifecycle; the evidence (the CloudTrail archive) lives in the log-archive account.",
                ),
            )
