"""The hardened CloudTrail archive bucket and its server-access-log bucket."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from trailguard.config import TrailguardConfig

_LOG_DELETE_ACTIONS = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
#: Every way to create an object in the archive: PutObject (also CopyObject and multipart uploads)
#: and replication from another bucket.
_OBJECT_WRITE_ACTIONS = ("s3:PutObject", "s3:ReplicateObject")
CLOUDTRAIL_SERVICE = "cloudtrail.amazonaws.com"


def _bucket_hardening(bucket: s3.Bucket, *, cfg: TrailguardConfig, org_id: str | None, readers_allowed: bool) -> None:
    """Statements both buckets carry: outsider deny, no bucket deletion, no log deletion but break-glass.

    The break-glass exception is :meth:`TrailguardConfig.except_break_glass`: the exact,
    account-pinned role ARNs of ``break_glass_role_arns``; with none configured, nobody may delete
    log objects (lifecycle expiration still runs: it is not a request a bucket policy judges).
    """
    stack = cdk.Stack.of(bucket)
    outsider: dict[str, dict[str, object]] = {"BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}
    if org_id:
        outsider["StringNotEquals"] = {"aws:PrincipalOrgID": org_id}
    else:
        outsider["StringNotEquals"] = {"aws:PrincipalAccount": stack.account}
        if readers_allowed and cfg.reader_role_arns:
            outsider["ArnNotLike"] = {"aws:PrincipalArn": list(cfg.reader_role_arns)}
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="DenyPrincipalsOutsideOrganization" if org_id else "DenyPrincipalsOutsideAccount",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:*"],
            resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
            conditions=outsider,
        )
    )
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="DenyBucketDeletion",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:DeleteBucket"],
            resources=[bucket.bucket_arn],
        )
    )
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="DenyLogDeletionExceptBreakGlass",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=_LOG_DELETE_ACTIONS,
            resources=[bucket.arn_for_objects("*")],
            conditions=cfg.except_break_glass() or None,
        )
    )


class LogArchiveBuckets(Construct):
    """Archive bucket (SSE-KMS with bucket key, versioned, lifecycle, optional Object Lock) + access-log bucket."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cfg: TrailguardConfig,
        key: kms.IKey,
        bucket_name: str,
        access_log_bucket_name: str,
        trail_arn: str,
        trail_owner: str,
        org_id: str | None,
        log_file_readers: Sequence[str] = (),
        log_folder_listers: Sequence[str] = (),
    ) -> None:
        """``log_file_readers``: role ARNs (other accounts of the organization) that may GetObject under AWSLogs/;
        ``log_folder_listers``: those that may also list keys under AWSLogs/ (the digest verifier)."""
        super().__init__(scope, id)
        r = cfg.retention
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=access_log_bucket_name,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # S3 server access logging can only deliver to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            versioned=True,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=cdk.Duration.days(r.archive_days),
                    noncurrent_version_expiration=cdk.Duration.days(30),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                ),
                s3.LifecycleRule(id="remove-expired-delete-markers", expired_object_delete_marker=True),
            ],
        )
        _bucket_hardening(self.access_logs, cfg=cfg, org_id=org_id, readers_allowed=False)

        lock = cfg.features.object_lock
        retention: s3.ObjectLockRetention | None = None
        if lock.enabled:
            days = cdk.Duration.days(lock.days)
            retention = (
                s3.ObjectLockRetention.compliance(days)
                if lock.mode == "COMPLIANCE"
                else s3.ObjectLockRetention.governance(days)
            )
        self.bucket = s3.Bucket(
            self,
            "Archive",
            bucket_name=bucket_name,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            versioned=True,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="archive/",
            object_lock_enabled=lock.enabled or None,
            object_lock_default_retention=retention,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="tier-then-expire-logs",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=cdk.Duration.days(r.transition_to_infrequent_access_days),
                        ),
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER,
                            transition_after=cdk.Duration.days(r.transition_to_glacier_days),
                        ),
                    ],
                    expiration=cdk.Duration.days(r.archive_days),
                    noncurrent_version_expiration=cdk.Duration.days(90),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                ),
                s3.LifecycleRule(id="remove-expired-delete-markers", expired_object_delete_marker=True),
            ],
        )
        cloudtrail = iam.ServicePrincipal(CLOUDTRAIL_SERVICE)
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AWSCloudTrailAclCheck",
                principals=[cloudtrail],
                actions=["s3:GetBucketAcl"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringEquals": {"aws:SourceArn": trail_arn}},
            )
        )
        prefixes = [trail_owner] + ([org_id] if org_id else [])
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AWSCloudTrailWrite",
                principals=[cloudtrail],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"AWSLogs/{p}/*") for p in prefixes],
                conditions={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}},
            )
        )
        # Only CloudTrail writes objects here. Without this Deny a log-archive admin (the bucket's own
        # account, where an identity policy alone allows PutObject) could plant forged log files or
        # digests under AWSLogs/ (and AWSLogs/<org-id>/ for the organization trail), which the
        # reconcile function and the Athena tables read as CloudTrail's word; replication into the
        # bucket would do the same. aws:PrincipalServiceName is in the request context only when an
        # AWS service principal makes the call (IAM User Guide, "AWS global condition context keys"),
        # so every IAM principal (break-glass included: repairs never need to write logs) and every
        # other service is denied, while CloudTrail's delivery of logs and digests passes and is
        # still limited to this trail by the aws:SourceArn of AWSCloudTrailWrite above. The whole
        # object space, not just AWSLogs/: CloudTrail writes nothing else here, and nothing else
        # should.
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyObjectWritesExceptCloudTrail",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(_OBJECT_WRITE_ACTIONS),
                resources=[self.bucket.arn_for_objects("*")],
                conditions={"StringNotEqualsIfExists": {"aws:PrincipalServiceName": CLOUDTRAIL_SERVICE}},
            )
        )
        if cfg.reader_role_arns:
            reader_conditions: dict[str, dict[str, object]] = {
                "ArnLike": {"aws:PrincipalArn": list(cfg.reader_role_arns)}
            }
            if org_id:
                reader_conditions["StringEquals"] = {"aws:PrincipalOrgID": org_id}
            self.bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowReaderRolesReadLogs",
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
                    resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects("*")],
                    conditions=reader_conditions,
                )
            )
        if log_file_readers:
            log_reader_conditions: dict[str, dict[str, object]] = {
                "ArnEquals": {"aws:PrincipalArn": list(log_file_readers)}
            }
            if org_id:
                log_reader_conditions["StringEquals"] = {"aws:PrincipalOrgID": org_id}
            self.bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowTrailguardReadersGetLogFiles",
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:GetObject"],
                    resources=[self.bucket.arn_for_objects("AWSLogs/*")],
                    conditions=log_reader_conditions,
                )
            )
        if log_folder_listers:
            list_conditions: dict[str, dict[str, object]] = {
                "ArnEquals": {"aws:PrincipalArn": list(log_folder_listers)},
                "StringLike": {"s3:prefix": ["AWSLogs/*"]},
            }
            if org_id:
                list_conditions["StringEquals"] = {"aws:PrincipalOrgID": org_id}
            self.bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowTrailguardVerifierListLogFolders",
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:ListBucket"],
                    resources=[self.bucket.bucket_arn],
                    conditions=list_conditions,
                )
            )
        _bucket_hardening(self.bucket, cfg=cfg, org_id=org_id, readers_allowed=True)
        # The buckets are retained on `cdk destroy`, and so is the trail, which keeps writing: their policies must
        # stay too (CloudTrail's write grant, S3 log delivery, the TLS-only and organization-only denies), or the
        # retained trail stops delivering and the retained evidence loses its protections.
        for bucket in (self.bucket, self.access_logs):
            assert bucket.policy is not None  # enforce_ssl and the hardening statements always create one
            bucket.policy.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
