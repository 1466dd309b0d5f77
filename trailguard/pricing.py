"""Public AWS prices used by ``trailguard cost`` (US East, N. Virginia, on-demand, USD).

All prices in one place, with the date they were taken. Update them together
and re-run ``tests/test_cost.py``: its worked example is computed by hand.
"""

from __future__ import annotations

#: When these figures were checked against the public price pages.
PRICES_TAKEN = "2026-11-22"
REGION = "us-east-1"

# CloudTrail (aws.amazon.com/cloudtrail/pricing)
CLOUDTRAIL_MGMT_COPY_PER_100K = 2.00  # additional copies only; the first copy is free
CLOUDTRAIL_DATA_EVENTS_PER_100K = 0.10
CLOUDTRAIL_INSIGHTS_PER_100K_ANALYZED = 0.35

# S3 (aws.amazon.com/s3/pricing), first 50 TB tier
S3_STANDARD_GB_MONTH = 0.023
S3_STANDARD_IA_GB_MONTH = 0.0125
S3_GLACIER_FLEXIBLE_GB_MONTH = 0.0036
S3_PUT_PER_1K = 0.005
S3_TRANSITION_IA_PER_1K = 0.01
S3_TRANSITION_GLACIER_PER_1K = 0.03
#: Objects smaller than this are not transitioned by lifecycle rules by default
#: (S3 default TransitionDefaultMinimumObjectSize since September 2024).
S3_MIN_TRANSITION_OBJECT_BYTES = 128 * 1024
#: Per-object overhead billed in Glacier Flexible Retrieval (32 KB Glacier + 8 KB Standard).
S3_GLACIER_OVERHEAD_GLACIER_BYTES = 32 * 1024
S3_GLACIER_OVERHEAD_STANDARD_BYTES = 8 * 1024

# KMS (aws.amazon.com/kms/pricing)
KMS_KEY_MONTH = 1.00
KMS_REQUESTS_PER_10K = 0.03

# CloudWatch Logs (aws.amazon.com/cloudwatch/pricing), standard log class
CWL_INGEST_PER_GB = 0.50
CWL_STORAGE_GB_MONTH = 0.03

# Lambda (aws.amazon.com/lambda/pricing), arm64
LAMBDA_PER_1M_REQUESTS = 0.20
LAMBDA_ARM_GB_SECOND = 0.0000133334

# EventBridge (aws.amazon.com/eventbridge/pricing): AWS service events on the
# default bus are free; events delivered to another account or region cost
# the custom-event rate.
EVENTBRIDGE_CROSS_ACCOUNT_PER_1M = 1.00

# SQS (aws.amazon.com/sqs/pricing), standard queue
SQS_PER_1M_REQUESTS = 0.40

# DynamoDB on-demand (aws.amazon.com/dynamodb/pricing)
DDB_PER_1M_WRITE_UNITS = 0.625
DDB_PER_1M_READ_UNITS = 0.125

# Athena (aws.amazon.com/athena/pricing)
ATHENA_PER_TB_SCANNED = 5.00
ATHENA_MIN_BYTES_PER_QUERY = 10 * 1024 * 1024

# CloudTrail Lake (aws.amazon.com/cloudtrail/pricing): queries are billed by the data they scan.
LAKE_QUERY_PER_GB_SCANNED = 0.005

# --------------------------------------------------------------------------- #
# Workload figures measured on real CloudTrail logs (../shared/corpus,
# invictus-sigma-aws: 2,900 records from 55 raw log files of one account), 2026-11-22.
# --------------------------------------------------------------------------- #
#: Average size of one CloudTrail record in a log file, bytes (uncompressed JSON).
BYTES_PER_EVENT = 1325
#: gzip-compressed size / uncompressed size of CloudTrail log files.
GZIP_RATIO = 0.089
#: Share of management events that are read-only (Get/List/Describe).
READ_ONLY_SHARE = 0.80

#: Share of management events that match at least one catalog pattern and are
#: therefore forwarded to the central bus and handled by the engine.
FORWARD_RATIO = 0.02
