"""Athena query layer over the CloudTrail archive: Glue table(s) with partition projection,
an enforced, KMS-encrypted workgroup, and the named queries from ``trailguard/queries/*.sql``.

The Glue table uses the CloudTrail SerDe and the documented CloudTrail column layout
(:data:`trailguard.sqlcatalog.CLOUDTRAIL_COLUMNS`, the same columns ``trailguard hunt``
exposes locally), so the same ``.sql`` file runs here and on DuckDB.

Partition projection (``account``, ``region``, ``date``) means no crawler and no
``MSCK REPAIR``: Athena computes the S3 prefixes from
``storage.location.template``. Organization trails write
``AWSLogs/<orgId>/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/``, account trails
``AWSLogs/<account>/CloudTrail/...``; one :class:`CloudTrailTable` is created per
layout the deployment can produce.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from trailguard.sqlcatalog import CLOUDTRAIL_COLUMNS, PARTITION_COLUMNS, Query, load_queries

SERDE = "com.amazon.emr.hive.serde.CloudTrailSerde"
INPUT_FORMAT = "com.amazon.emr.cloudtrail.CloudTrailInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
ENGINE_VERSION = "Athena engine version 3"
#: First day the ``date`` projection covers. Queries prune on it, so an early start is cheap.
PROJECTION_START = "2020/01/01"
#: Guard rail against runaway scans (Athena bills per byte scanned): 1 TiB per query.
BYTES_SCANNED_CUTOFF = 1 << 40


@dataclass(frozen=True)
class CloudTrailTable:
    """One Glue table: its name and the S3 prefix (under the bucket) that holds ``<account>/CloudTrail/...``."""

    name: str
    prefix: str
    description: str


def location_template(bucket_name: str, prefix: str) -> str:
    """``storage.location.template`` for CloudTrail's ``<prefix><account>/CloudTrail/<region>/<yyyy/MM/dd>`` keys."""
    return f"s3://{bucket_name}/{prefix}" + "${account}/CloudTrail/${region}/${date}"


def projection_parameters(*, bucket_name: str, prefix: str, account_ids: str, regions: Sequence[str]) -> dict[str, str]:
    """Glue table parameters enabling partition projection over the CloudTrail key layout."""
    return {
        "classification": "cloudtrail",
        "EXTERNAL": "TRUE",
        "projection.enabled": "true",
        "projection.account.type": "enum",
        "projection.account.values": account_ids,
        "projection.region.type": "enum",
        "projection.region.values": ",".join(regions),
        "projection.date.type": "date",
        "projection.date.format": "yyyy/MM/dd",
        "projection.date.range": f"{PROJECTION_START},NOW",
        "projection.date.interval": "1",
        "projection.date.interval.unit": "DAYS",
        "storage.location.template": location_template(bucket_name, prefix),
    }


class QueryLayer(Construct):
    """Glue database + CloudTrail tables + Athena workgroup + named queries."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        archive_bucket_name: str,
        tables: Sequence[CloudTrailTable],
        account_ids: str,
        regions: Sequence[str],
        results_bucket: s3.IBucket,
        results_key: kms.IKey,
        database_name: str = "trailguard",
        workgroup_name: str = "trailguard",
        queries: Mapping[str, Query] | None = None,
    ) -> None:
        super().__init__(scope, id)
        if not tables:
            raise ValueError("QueryLayer needs at least one CloudTrail table")
        account = cdk.Stack.of(self).account
        self.database_name = database_name
        self.table_name = tables[0].name
        database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=database_name, description="trailguard: CloudTrail archive (partition-projected tables)"
            ),
        )
        columns = [glue.CfnTable.ColumnProperty(name=name, type=hive) for name, hive, _key in CLOUDTRAIL_COLUMNS]
        partitions = [glue.CfnTable.ColumnProperty(name=name, type="string") for name in PARTITION_COLUMNS]
        self.tables: list[glue.CfnTable] = []
        for spec in tables:
            table = glue.CfnTable(
                self,
                f"Table-{spec.name}",
                catalog_id=account,
                database_name=database_name,
                table_input=glue.CfnTable.TableInputProperty(
                    name=spec.name,
                    description=spec.description,
                    table_type="EXTERNAL_TABLE",
                    parameters=projection_parameters(
                        bucket_name=archive_bucket_name, prefix=spec.prefix, account_ids=account_ids, regions=regions
                    ),
                    partition_keys=partitions,
                    storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                        columns=columns,
                        location=f"s3://{archive_bucket_name}/{spec.prefix}",
                        input_format=INPUT_FORMAT,
                        output_format=OUTPUT_FORMAT,
                        serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=SERDE),
                    ),
                ),
            )
            table.add_resource_dependency(database)
            self.tables.append(table)

        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=workgroup_name,
            description="trailguard: CloudTrail hunting and runbook queries (results KMS-encrypted, enforced)",
            state="ENABLED",
            recursive_delete_option=False,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                requester_pays_enabled=False,
                bytes_scanned_cutoff_per_query=BYTES_SCANNED_CUTOFF,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(selected_engine_version=ENGINE_VERSION),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{results_bucket.bucket_name}/results/",
                    expected_bucket_owner=account,
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=results_key.key_arn
                    ),
                ),
            ),
        )

        catalog = load_queries() if queries is None else queries
        qualified = f'"{database_name}"."{self.table_name}"'
        self.named_queries: dict[str, athena.CfnNamedQuery] = {}
        for name, query in sorted(catalog.items()):
            nq = athena.CfnNamedQuery(
                self,
                f"Query-{name}",
                name=f"trailguard: {query.title}"[:128],
                description=query.athena_description(),
                database=database_name,
                work_group=self.workgroup.ref,
                query_string=query.athena_sql(qualified),
            )
            nq.add_resource_dependency(database)
            self.named_queries[name] = nq
