"""Log-archive stack: the trail KMS key, the archive bucket and its access-log bucket.

Organization mode: deployed in the log-archive account. Standalone: the one account.
Everything is retained on delete and the stack has termination protection.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from stacks import names
from stacks.constructs.archive import LogArchiveBuckets
from stacks.constructs.keys import trail_key
from stacks.constructs.nag import NagAck, acknowledge
from stacks.member import RECONCILE_ROLE_NAME, VERIFY_ROLE_NAME
from trailguard.config import TrailguardConfig


class LogArchiveStack(cdk.Stack):
    """Trail key + archive buckets, in the log-archive account (or the standalone account)."""

    def __init__(self, scope: Construct, id: str, *, cfg: TrailguardConfig, accounts: names.Accounts, **kwargs: Any):
        super().__init__(
            scope,
            id,
            description="trailguard: CloudTrail log archive (trail KMS key, archive and access-log buckets)",
            termination_protection=True,
            **kwargs,
        )
        org_id = cfg.org.org_id if cfg.mode == "organization" else None
        owner = names.trail_owner_account(accounts)
        trail_arn = names.trail_arn(cfg, accounts)
        # Organization mode: trailguard's reconcile function (security account) reads new log
        # files through S3. Standalone needs nothing: its IAM policy suffices in one account.
        # The digest verifier (issue 13) reads digests and log files the same way, and lists log folders.
        verifier = f"arn:{cdk.Aws.PARTITION}:iam::{accounts.security}:role/{VERIFY_ROLE_NAME}"
        readers = (
            [f"arn:{cdk.Aws.PARTITION}:iam::{accounts.security}:role/{RECONCILE_ROLE_NAME}", verifier] if org_id else []
        )
        self.trail_key = trail_key(
            self,
            "TrailKey",
            cfg=cfg,
            alias=names.TRAIL_KEY_ALIAS,
            trail_arn=trail_arn,
            trail_owner=owner,
            reader_org_id=org_id,
            log_file_readers=readers,
        )
        self.archive = LogArchiveBuckets(
            self,
            "Buckets",
            cfg=cfg,
            key=self.trail_key,
            bucket_name=names.archive_bucket_name(accounts),
            access_log_bucket_name=names.access_log_bucket_name(accounts),
            trail_arn=trail_arn,
            trail_owner=owner,
            org_id=org_id,
            log_file_readers=readers,
            log_folder_listers=[verifier] if org_id else [],
        )
        cdk.CfnOutput(self, "ArchiveBucketName", value=self.archive.bucket.bucket_name)
        cdk.CfnOutput(self, "TrailKeyArn", value=self.trail_key.key_arn)
        self._acknowledge_nag_findings()

    def _acknowledge_nag_findings(self) -> None:
        """Every cdk-nag acknowledgment of this stack, in one place (tests assert the count)."""
        acknowledge(
            self.archive.access_logs,
            NagAck(
                "NIST.800.53.R5-S3DefaultEncryptionKMS",
                "S3 server access logging only delivers to SSE-S3 buckets, so the access-log bucket uses SSE-S3; "
                "the CloudTrail archive itself is encrypted with the customer-managed trail key.",
            ),
        )
        acknowledge(
            self.archive,
            NagAck(
                "NIST.800.53.R5-S3BucketReplicationEnabled",
                "Cross-Region replication of the archive is an operator choice (second bucket, key and role); "
                "durability comes from versioning, optional Object Lock and the deletion denies in the policy.",
            ),
        )
