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
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.pyc_asset import stage_with_pyc
from trailguard.sqlcatalog import CLOUDTRAIL_COLUMNS, PARTITION_COLUMNS, Query, load_queries

SERDE = "com.amazon.emr.hive.serde.CloudTrailSerde"
INPUT_FORMAT = "com.amazon.emr.cloudtrail.CloudTrailInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
ENGINE_VERSION = "Athena engine version 3"
#: Default first day of the ``date`` projection: CloudTrail's launch (November 2013), so no log that can
#: exist is out of reach (the security-tooling stack's ``QueryProjectionStart`` parameter moves it). The end is
#: ``NOW``. A query's
#: own ``"date"`` predicate prunes the range, so the early start costs nothing to a query that bounds
#: its dates; one that does not makes Athena list one more (empty) prefix per account, region and day.
PROJECTION_START = "2013/11/01"
#: Guard rail against runaway scans (Athena bills per byte scanned): 1 TiB per query.
BYTES_SCANNED_CUTOFF = 1 << 40
LAMBDA_ROOT = Path(__file__).resolve().parents[2] / "lambdas"
#: The same exclusions and staging (Python 3.12 bytecode, :mod:`stacks.constructs.pyc_asset`) as the detection
#: stack's asset, so both stacks upload one identical asset.
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/*.egg-info", ".mypy_cache", ".pytest_cache", "requirements.txt"]
ASSET_STAGING = LAMBDA_ROOT.parent / "build" / "asset-staging"
ACCOUNT_SYNC_HANDLER = "trailguard_engine.athena_accounts.handler"
#: ``trailguard-*`` like every role trailguard creates (the guardrail SCP protects the prefix).
ACCOUNT_SYNC_ROLE_NAME = "trailguard-athena-accounts"
ACCOUNT_SYNC_LOG_GROUP = "/trailguard/athena-accounts"
#: How often the account projection is re-read from Organizations, besides after every deploy of the stack.
ACCOUNT_SYNC_RATE = cdk.Duration.hours(1)
#: Stack states after which the tables may hold the template's seed again (a rollback restores the old template).
AFTER_DEPLOY_STATUSES = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")


@dataclass(frozen=True)
class CloudTrailTable:
    """One Glue table: its name and the S3 prefix (under the bucket) that holds ``<account>/CloudTrail/...``."""

    name: str
    prefix: str
    description: str


def location_template(bucket_name: str, prefix: str) -> str:
    """``storage.location.template`` for CloudTrail's ``<prefix><account>/CloudTrail/<region>/<yyyy/MM/dd>`` keys."""
    return f"s3://{bucket_name}/{prefix}" + "${account}/CloudTrail/${region}/${date}"


def projection_parameters(
    *, bucket_name: str, prefix: str, account_ids: str, regions: Sequence[str], start: str = PROJECTION_START
) -> dict[str, str]:
    """Glue table parameters enabling partition projection over the CloudTrail key layout.

    ``account_ids`` is the deployed value of the ``account`` enum; in organization mode
    :class:`AccountProjectionSync` keeps adding the organization's accounts to it after the deploy.
    """
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
        "projection.date.range": f"{start},NOW",
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
        projection_start: str = PROJECTION_START,
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
                        bucket_name=archive_bucket_name,
                        prefix=spec.prefix,
                        account_ids=account_ids,
                        regions=regions,
                        start=projection_start,
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


class AccountProjectionSync(Construct):
    """``trailguard-athena-accounts``: adds the organization's accounts to the tables' ``account`` enum.

    Organization mode only (standalone has one account). Why an updater and not an ``injected``
    projection, and why the account list is read from ``organizations:ListAccounts`` only, never
    from an event: see ``trailguard_engine.athena_accounts``.

    Triggers, both in this account and neither carrying data the function reads:

    * an hourly schedule, so an account created or invited today is queryable within the hour of
      its joining (its first log files take minutes to arrive anyway);
    * this stack's own CloudFormation status changes (:data:`AFTER_DEPLOY_STATUSES`): a
      deploy that changes a table rewrites its parameters from the template, which would otherwise
      shrink the enum back to the deployed seed until the next hourly run.

    The Organizations events themselves (``CreateAccountResult``, ``AcceptHandshake``) are emitted in
    the management account and are not among the events the member stacks forward, so they are not
    used; the hourly run bounds the delay instead.

    ``ListAccounts`` works from the management account or a delegated administrator of any AWS
    service: the security account qualifies when it is, for example, the CloudTrail delegated
    administrator (as in ``config/example-organization.yaml``). Otherwise the call is denied, the
    run fails, and the error alarm says so (docs/deploy.md).

    Permissions: ``glue:GetTable``/``glue:UpdateTable`` on the catalog, the database and the named
    tables only, and ``organizations:ListAccounts`` (which has no resource type). Nothing that reads
    or writes the archive: the function changes one table parameter.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        database_name: str,
        table_names: Sequence[str],
        key: kms.Key,
        log_retention_days: int,
        alarm_emails: Sequence[str] = (),
        reserved_concurrency: int | None = 1,
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        partition, region, account = stack.partition, stack.region, stack.account
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=ACCOUNT_SYNC_LOG_GROUP,
            encryption_key=key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # The key policy names the group by its ARN spelled out: a reference would make a cycle.
        group_arn = f"arn:{partition}:logs:{region}:{account}:log-group:{ACCOUNT_SYNC_LOG_GROUP}"
        self.log_stream_arns = f"{group_arn}:log-stream:*"
        group_cfn = self.log_group.node.default_child
        assert isinstance(group_cfn, logs.CfnLogGroup)
        group_cfn.retention_in_days = log_retention_days
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AthenaAccountsLogGroupEncryption",
                principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnEquals": {"kms:EncryptionContext:aws:logs:arn": group_arn},
                },
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AthenaAccountsAlarmsToTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            )
        )
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name="trailguard security-tooling alarms", master_key=key, enforce_ssl=True
        )
        for email in alarm_emails:
            self.topic.add_subscription(subs.EmailSubscription(email))
        self.dlq = sqs.Queue(
            self,
            "Dlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=ACCOUNT_SYNC_ROLE_NAME,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="trailguard athena-accounts function: adds the organization's accounts to the Athena tables",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="OwnLogGroup",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[group_arn, self.log_stream_arns],
            )
        )
        glue_arn = f"arn:{partition}:glue:{region}:{account}"
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadAndUpdateQueryTables",
                actions=["glue:GetTable", "glue:UpdateTable"],
                resources=[
                    f"{glue_arn}:catalog",
                    f"{glue_arn}:database/{database_name}",
                    *(f"{glue_arn}:table/{database_name}/{name}" for name in table_names),
                ],
            )
        )
        # ListAccounts has no resource type (Service Authorization Reference, AWS Organizations).
        self.role.add_to_policy(
            iam.PolicyStatement(sid="ListOrganizationAccounts", actions=["organizations:ListAccounts"], resources=["*"])
        )
        staged = stage_with_pyc(
            LAMBDA_ROOT, name="engine", runtime_dir="/var/task", staging_root=ASSET_STAGING, excludes=ASSET_EXCLUDES
        )
        if staged.warning:
            cdk.Annotations.of(self).add_warning_v2("trailguard:no-pyc", staged.warning)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler=ACCOUNT_SYNC_HANDLER,
            code=lambda_.Code.from_asset(str(staged.path)),
            role=self.role,
            log_group=self.log_group,
            environment={
                "TRAILGUARD_GLUE_DATABASE": database_name,
                "TRAILGUARD_GLUE_TABLES": ",".join(table_names),
            },
            environment_encryption=key,
            # ListAccounts pages hold 20 accounts: a few thousand accounts are a few hundred throttled calls.
            timeout=cdk.Duration.minutes(5),
            memory_size=256,
            # One run at a time (runs only add, but two would race on the table's VersionId); nothing reserved when
            # the account's Lambda quota cannot spare it (engine.reserved_concurrency null).
            reserved_concurrent_executions=reserved_concurrency,
            dead_letter_queue=self.dlq,
            retry_attempts=2,
            logging_format=lambda_.LoggingFormat.JSON,
            description="trailguard athena-accounts: adds the organization's accounts to the Athena account projection",
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="trailguard: add the organization's accounts to the Athena tables (hourly)",
            schedule=events.Schedule.rate(ACCOUNT_SYNC_RATE),
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )
        self.after_deploy = events.Rule(
            self,
            "AfterDeploy",
            description="trailguard: re-add the organization's accounts after a deploy rewrote the Athena tables",
            event_pattern=events.EventPattern(
                source=["aws.cloudformation"],
                detail_type=["CloudFormation Stack Status Change"],
                detail={
                    "stack-id": [stack.stack_id],
                    "status-details": {"status": list(AFTER_DEPLOY_STATUSES)},
                },
            ),
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )
        period = cdk.Duration.hours(1)
        self.alarms = [
            self.dlq.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5), statistic="Maximum"
            ).create_alarm(
                self,
                "DlqDepth",
                alarm_description="trailguard: athena-accounts runs failed after retries (messages in its DLQ)",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            self.function.metric_errors(period=period).create_alarm(
                self,
                "Errors",
                alarm_description="trailguard: athena-accounts failed: new accounts may be missing from Athena "
                "(ListAccounts denied? see docs/deploy.md)",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
