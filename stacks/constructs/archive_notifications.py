"""S3 event notifications from the log archive bucket to the reconciliation queue.

The queue lives in the security account (``stacks.detection``); the bucket in the log-archive
account (``stacks`` foundation). Stacks in different accounts cannot reference each other, so
the queue has a deterministic name and ARN, computed here from the config.

Deploy order: the detection stack first (its queue policy and KMS key policy already allow the
bucket, by name), then the log-archive stack; S3 validates the destination when the
notification is written and rejects it if the queue does not accept the bucket yet.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

from stacks.names import Accounts

RECONCILE_QUEUE_NAME = "trailguard-reconcile"
#: CloudTrail log and digest files. S3 filters have only a prefix and a suffix, so digests (same prefix and
#: suffix) come too: the reconcile function forwards them to the digest verifier's queue (stacks.detection).
LOG_PREFIX = "AWSLogs/"
LOG_SUFFIX = ".json.gz"


def reconcile_queue_arn(accounts: Accounts) -> str:
    """ARN of the reconciliation queue in the security account's home region."""
    return f"arn:{cdk.Aws.PARTITION}:sqs:{accounts.home_region}:{accounts.security}:{RECONCILE_QUEUE_NAME}"


def add_archive_notifications(bucket: s3.IBucket, queue_arn: str) -> None:
    """Send ``s3:ObjectCreated:*`` of CloudTrail log files in ``bucket`` to the queue ``queue_arn``.

    Written as a CloudFormation property (no notification custom resource, no extra Lambda in
    the log-archive stack). It replaces any other queue configuration on the bucket.
    """
    cfn = bucket.node.default_child
    if not isinstance(cfn, s3.CfnBucket):
        raise TypeError("add_archive_notifications needs a bucket defined in this app (s3.Bucket)")
    cfn.add_property_override(
        "NotificationConfiguration.QueueConfigurations",
        [
            {
                "Event": "s3:ObjectCreated:*",
                "Queue": queue_arn,
                "Filter": {
                    "S3Key": {
                        "Rules": [
                            {"Name": "prefix", "Value": LOG_PREFIX},
                            {"Name": "suffix", "Value": LOG_SUFFIX},
                        ]
                    }
                },
            }
        ],
    )
