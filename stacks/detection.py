"""The detection stack: security account, home region.

* the central bus ``trailguard-central`` (PutEvents only from the member forwarding roles
  ``trailguard-forward-*``: of the organization, or of this account in standalone mode) and one
  rule per catalog rule on it, each targeting the engine with
  ``{"trailguard_rule": "<id>", "event": <the whole event>}``;
* the engine Lambda (role ``trailguard-engine``), its state table, runtime-config parameter,
  alert topic, dead-letter queues and alarms;
* the reconciliation path (S3 notification -> SQS -> ``trailguard-reconcile``) and the hourly
  drift sweep (``trailguard-drift``);
* continuous log-file integrity verification (issue 13): reconcile forwards each digest key to the
  queue ``trailguard-digests``; ``trailguard-verify`` verifies the digest and every log file it lists,
  records them in the state table (``verified#``), asks reconcile to rescan pending files, and checks
  hourly (its own schedule) for missing digests and unlisted files.

Every rule is deployed ENABLED, including rules whose mode is ``off``: modes are read at run
time from the SSM parameter, so switching a rule on is an SSM edit, not a redeploy. The engine
skips rules that are off before doing any work.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct
from trailguard_engine.catalog import load_catalog
from trailguard_engine.member_queues import FORWARD_DLQ_NAME
from trailguard_engine.model import Rule
from trailguard_engine.pattern_split import split_pattern
from trailguard_engine.remediations.iam import ROOT_TASK_POLICY

from stacks import names
from stacks.constructs.archive_notifications import RECONCILE_QUEUE_NAME
from stacks.constructs.dashboard import MEMBER_DLQ_METRICS, OperatorDashboard
from stacks.constructs.pyc_asset import StagedAsset, stage_with_pyc
from stacks.forwarding import PATTERN_SPLIT_CHARS, engine_remediation_actions
from stacks.member import DRIFT_ROLE_NAME, RECONCILE_ROLE_NAME, VERIFY_ROLE_NAME
from trailguard.config import TrailguardConfig

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_ROOT = ROOT / "lambdas"
LAYER_DIR = ROOT / "build" / "lambda-layer"
#: Where the assets are staged with Python 3.12 bytecode (:mod:`stacks.constructs.pyc_asset`).
ASSET_STAGING = ROOT / "build" / "asset-staging"
#: What of ``lambdas/`` never ships: the synth's own bytecode (the staged tree gets Lambda's 3.12 bytecode
#: instead), caches and packaging metadata. Applied when staging; the staged tree is shipped whole.
ASSET_EXCLUDES = [
    "**/__pycache__",
    "**/*.pyc",
    "**/*.egg-info",
    ".mypy_cache",
    ".pytest_cache",
    "requirements.txt",
]

ENGINE_HANDLER = "trailguard_engine.handler.handler"
RECONCILE_HANDLER = "trailguard_engine.reconcile.handler"
DRIFT_HANDLER = "trailguard_engine.drift.handler"
VERIFY_HANDLER = "trailguard_engine.verify_digests.handler"
DIGEST_QUEUE_NAME = "trailguard-digests"
VERIFY_RESERVED_CONCURRENCY = 2
#: State-table items only the verifier writes (the ledger of verified log files and digest heads).
VERIFIER_ITEMS = ("verified#*", "digest-accounts", "digest-heads#*", "digest-missing#*", "suspects#*")
METRICS_NAMESPACE = "Trailguard"
#: The engine's reservation is ``engine.reserved_concurrency`` in the config (default 20; it caps a runaway
#: storm, the Cloud Custodian complaint). These small ones apply only when that is set: ``null`` means the
#: account's Lambda quota cannot spare reservations, and then no trailguard function reserves any. The
#: SQS-fed functions keep their caps anyway through the event source's maximum concurrency (no quota needed);
#: the drift sweep runs hourly with a 5-minute timeout, so its runs never overlap.
RECONCILE_RESERVED_CONCURRENCY = 5
DRIFT_RESERVED_CONCURRENCY = 1
#: State-table items the drift sweep reads: the verifier's digest heads, its roster of member accounts.
DRIFT_ROSTER_ITEMS = ("digest-accounts", "digest-heads#*")
RECONCILE_BATCH_SIZE = 2
TARGET_RETRY_ATTEMPTS = 8
TARGET_MAX_EVENT_AGE = cdk.Duration.hours(2)
ENGINE_ERROR_RATE_PERCENT = 5
RULE_NAME_PREFIX = "tg-"
#: What ``cdk deploy`` prints (output ``RemediationMode``) and synth notes, so a first deploy says it acts on nothing.
DRY_RUN_NOTICE = (
    "dry-run: trailguard alerts and reports what it would change, and changes nothing "
    "(set dry_run: false in your config to remediate)"
)
LIVE_NOTICE = "live: rules in remediate mode change resources"


def central_rule_name(rule_id: str, part: int = 1) -> str:
    """Deterministic rule name on the central bus (EventBridge allows 64 characters).

    Part 1 of a split pattern keeps the rule's own name; part ``n`` > 1 is ``<name>-p<n>``. Every
    name starts with ``RULE_NAME_PREFIX``, so the engine's one permission covers every part.
    """
    suffix = f"-p{part}" if part > 1 else ""
    name = RULE_NAME_PREFIX + rule_id
    if len(name) + len(suffix) <= 64:
        return name + suffix
    digest = hashlib.sha256(rule_id.encode()).hexdigest()[:8]
    return f"{name[: 64 - 9 - len(suffix)]}-{digest}{suffix}"


def engine_input_template(rule_id: str) -> str:
    """The InputTransformer template: the rule id plus the whole original event.

    ``<aws.events.event.json>`` is EventBridge's reserved variable for the complete original
    event (``detail`` included); ``<aws.events.event>`` would drop ``detail``.
    """
    return '{"trailguard_rule": ' + json.dumps(rule_id) + ', "event": <aws.events.event.json>}'


def engine_asset() -> StagedAsset:
    """``lambdas/`` staged with Python 3.12 bytecode for ``/var/task``."""
    return stage_with_pyc(
        LAMBDA_ROOT, name="engine", runtime_dir="/var/task", staging_root=ASSET_STAGING, excludes=ASSET_EXCLUDES
    )


def layer_asset() -> StagedAsset:
    """The dependencies layer staged with Python 3.12 bytecode for ``/opt`` (pip's 3.11 bytecode dropped)."""
    return stage_with_pyc(layer_dir(), name="layer", runtime_dir="/opt", staging_root=ASSET_STAGING)


def layer_dir() -> Path:
    """The dependencies layer built by ``make setup``; a one-line exit when it is missing."""
    if not (LAYER_DIR / "python").is_dir():
        raise SystemExit(f"trailguard: {LAYER_DIR.relative_to(ROOT)} is missing: run make setup")
    return LAYER_DIR


class DetectionStack(cdk.Stack):
    """Central bus, catalog rules, engine, reconciliation and drift sweep."""

    def __init__(self, scope: Construct, id: str, *, cfg: TrailguardConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.template_options.description = "trailguard detection: central bus, rules, remediation engine"
        self.cfg = cfg
        accounts = names.Accounts.for_config(cfg)
        if cfg.mode == "standalone":
            accounts = names.Accounts(*(self.account,) * 4, home_region=cfg.home_region)
        self.accounts = accounts
        self.catalog: tuple[Rule, ...] = load_catalog()
        self._acks: list[tuple[Construct, str, str]] = []
        self._roles: list[iam.Role] = []

        self.key = self._key()
        self.topic = self._topic()
        self.table = self._table()
        self.parameter = self._parameter()
        self._remediation_mode()
        layer = layer_asset()
        engine_code = engine_asset()
        for staged in (layer, engine_code):
            if staged.warning:
                cdk.Annotations.of(self).add_warning_v2("trailguard:no-pyc", staged.warning)
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(layer.path)),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description="trailguard Lambda dependencies (lambdas/requirements.txt)",
        )
        self.code = lambda_.Code.from_asset(str(engine_code.path))

        self.engine_failure_dlq = self._queue("EngineFailureDlq", dlq=True)
        self.target_dlq = self._queue("RuleTargetDlq", dlq=True)
        self.engine = self._engine()
        self.bus = self._bus()
        self.central_rules = self._central_rules()
        self.reconcile_queue, self.reconcile_dlq, self.reconcile = self._reconcile()
        self.drift = self._drift()
        self.digest_queue, self.digest_dlq, self.verify = self._verifier()
        self.alarms: list[cw.Alarm] = []
        self._alarms()
        self.dashboard = OperatorDashboard(
            self,
            "Operator",
            functions={"engine": self.engine, "reconcile": self.reconcile, "drift": self.drift, "verify": self.verify},
            dead_letter_queues={
                "RuleTargetDlq": self.target_dlq,
                "EngineFailureDlq": self.engine_failure_dlq,
                "ReconcileDlq": self.reconcile_dlq,
                "DigestDlq": self.digest_dlq,
            },
            reconcile_queue=self.reconcile_queue,
            topic=self.topic,
            existing_alarms=self.alarms,
        )
        self._apply_acks()

    # ------------------------------------------------------------------ #
    # shared pieces
    # ------------------------------------------------------------------ #
    def _key(self) -> kms.Key:
        key = kms.Key(
            self,
            "DetectionKey",
            alias="alias/trailguard-detection",
            description="trailguard detection: queues, topic, state table, log groups",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        account, region, partition = self.account, self.region, self.partition
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsEncryption",
                principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account}:log-group:*"
                    }
                },
            )
        )
        for sid, service, source_account in (
            ("EventBridgeDeadLetters", "events.amazonaws.com", account),
            ("CloudWatchAlarmsToTopic", "cloudwatch.amazonaws.com", account),
            ("ArchiveNotifications", "s3.amazonaws.com", self.accounts.log_archive),
        ):
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    principals=[iam.ServicePrincipal(service)],
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:SourceAccount": source_account}},
                )
            )
        return key

    def _topic(self) -> sns.Topic:
        topic = sns.Topic(
            self,
            "AlertTopic",
            display_name="trailguard alerts",
            master_key=self.key,
            enforce_ssl=True,
        )
        for email in self.cfg.notifications.emails:
            topic.add_subscription(subs.EmailSubscription(email))
        return topic

    def _table(self) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            "StateTable",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration",
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def protected_key_arns(self) -> list[str]:
        """The trail's KMS keys, by alias ARN (the engine resolves aliases with DescribeKey)."""
        a = self.accounts
        return [
            f"arn:{self.partition}:kms:{a.home_region}:{a.log_archive}:{names.TRAIL_KEY_ALIAS}",
            f"arn:{self.partition}:kms:{a.home_region}:{a.trail}:{names.LOGS_KEY_ALIAS}",
        ]

    def runtime_document(self) -> dict[str, Any]:
        doc = self.cfg.runtime_document()
        doc["protected_key_arns"] = self.protected_key_arns()
        doc["engine_account_id"] = self.account
        # trailguard's own trail as deployed: UpdateTrail on it is compared with this (not with name prefixes).
        doc["trailguard_trail"] = {
            "arn": names.trail_arn(self.cfg, self.accounts),
            "bucket": names.archive_bucket_name(self.accounts),
            "kms_key": names.trail_key_alias_arn(self.accounts),
            "log_group": names.trail_log_group_name(self.cfg),
        }
        return doc

    def _parameter(self) -> ssm.StringParameter:
        # json.dumps, not Stack.to_json_string (which drops null values such as org_id): the
        # pseudo-parameter tokens inside string values are resolved by CDK into an Fn::Join.
        value = json.dumps(self.runtime_document(), sort_keys=True)
        return ssm.StringParameter(
            self,
            "RuntimeConfig",
            parameter_name=names.RUNTIME_CONFIG_PARAMETER,
            string_value=value,
            description="trailguard runtime config: dry_run, rule modes, exemptions (edit to change without deploying)",
            tier=ssm.ParameterTier.STANDARD,
        )

    def _remediation_mode(self) -> None:
        """Say at deploy (output) and synth (info, not a warning: strict synth fails on warnings) whether
        trailguard will change resources, so nobody goes live by not writing a config file."""
        notice = DRY_RUN_NOTICE if self.cfg.dry_run else LIVE_NOTICE
        cdk.CfnOutput(
            self,
            "RemediationMode",
            value=notice,
            description="dry_run in the runtime config at deploy time (an SSM edit can change it later)",
        )
        cdk.Annotations.of(self).add_info(notice)

    def _queue(self, id: str, *, dlq: bool, **kwargs: Any) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            id,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
            **kwargs,
        )
        if dlq:
            self._ack(queue, "AwsSolutions::AwsSolutions-SQS3", "This queue is a dead-letter queue.")
        return queue

    def _work_queue(self, id: str, name: str, timeout: cdk.Duration) -> tuple[sqs.Queue, sqs.Queue]:
        """``(<id>Queue, <id>Dlq)``: a function's input queue (visibility 6x its timeout, as Lambda advises)
        and its dead-letter queue after 5 receives."""
        dlq = self._queue(f"{id}Dlq", dlq=False)  # cdk-nag sees the redrive policy itself
        queue = self._queue(
            f"{id}Queue",
            dlq=False,
            queue_name=name,
            visibility_timeout=cdk.Duration.seconds(timeout.to_seconds() * 6),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=5),
        )
        return queue, dlq

    def _log_group(self, id: str) -> logs.LogGroup:
        group = logs.LogGroup(self, id, encryption_key=self.key, removal_policy=cdk.RemovalPolicy.RETAIN)
        cfn = group.node.default_child
        assert isinstance(cfn, logs.CfnLogGroup)
        cfn.retention_in_days = self.cfg.retention.cloudwatch_logs_days
        return group

    def _role(self, id: str, name: str, group: logs.LogGroup) -> iam.Role:
        role = iam.Role(
            self,
            id,
            role_name=name,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"trailguard {name.removeprefix('trailguard-')} function",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="OwnLogGroup",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[group.log_group_arn, f"{group.log_group_arn}:log-stream:*"],
            )
        )
        group_cfn = group.node.default_child
        assert isinstance(group_cfn, cdk.CfnElement)
        self._roles.append(role)
        self._ack(
            role,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{self.get_logical_id(group_cfn)}.Arn>:log-stream:*]",
            "Log streams are created by Lambda with run-time names inside the function's own log group.",
        )
        return role

    def _function(
        self,
        id: str,
        *,
        handler: str,
        role: iam.Role,
        group: logs.LogGroup,
        service: str,
        environment: dict[str, str],
        timeout: cdk.Duration,
        memory: int,
        reserved: int | None,
        **kwargs: Any,
    ) -> lambda_.Function:
        env = {
            "TRAILGUARD_CONFIG_PARAMETER": names.RUNTIME_CONFIG_PARAMETER,
            "TRAILGUARD_ALERT_TOPIC_ARN": self.topic.topic_arn,
            "TRAILGUARD_REMEDIATION_ROLE_NAME": names.REMEDIATION_ROLE_NAME,
            "POWERTOOLS_SERVICE_NAME": service,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "TRAILGUARD_TRACING": "true" if self.cfg.features.tracing else "false",
            **environment,
        }
        fn = lambda_.Function(
            self,
            id,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=self.code,
            layers=[self.layer],
            role=role,
            log_group=group,
            environment=env,
            environment_encryption=self.key,
            timeout=timeout,
            memory_size=memory,
            reserved_concurrent_executions=reserved,
            tracing=lambda_.Tracing.ACTIVE if self.cfg.features.tracing else lambda_.Tracing.DISABLED,
            logging_format=lambda_.LoggingFormat.JSON,
            **kwargs,
        )
        self.parameter.grant_read(role)
        self.topic.grant_publish(role)
        return fn

    def _helper_reserved(self, n: int) -> int | None:
        """A helper function's reservation: ``n``, or none when the engine has none (a low Lambda quota)."""
        return n if self.cfg.engine.reserved_concurrency is not None else None

    def _allow_assume_remediation(self, role: iam.Role) -> None:
        role.add_to_policy(self._assume_remediation_statement())
        if self.cfg.mode == "organization":
            self._ack(
                role,
                f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:{self.partition}:iam::*:role/"
                f"{names.REMEDIATION_ROLE_NAME}]",
                "Accounts join the organization at any time; aws:ResourceOrgID limits it to this organization.",
            )

    def _assume_remediation_statement(self) -> iam.PolicyStatement:
        """sts:AssumeRole on the member remediation roles, inside the organization only."""
        if self.cfg.mode == "organization":
            return iam.PolicyStatement(
                sid="AssumeMemberRemediationRole",
                actions=["sts:AssumeRole"],
                resources=[f"arn:{self.partition}:iam::*:role/{names.REMEDIATION_ROLE_NAME}"],
                conditions={"StringEquals": {"aws:ResourceOrgID": self.cfg.org.org_id}},
            )
        return iam.PolicyStatement(
            sid="AssumeMemberRemediationRole",
            actions=["sts:AssumeRole"],
            resources=[f"arn:{self.partition}:iam::{self.account}:role/{names.REMEDIATION_ROLE_NAME}"],
        )

    def _allow_assume_root(self, role: iam.Role) -> None:
        """``sts:AssumeRoot`` for the remediations that run with the engine's own credentials.

        Centralized root access: the engine (security account, when it is the IAM delegated
        administrator) calls AssumeRoot into a member account with the one AWS-managed task policy
        the remediation uses, ``root-task/IAMDeleteRootUserCredentials``. The grant is pinned to it
        with ``sts:TaskPolicyArn`` (IAM User Guide, "Perform a privileged task on an AWS Organizations
        member account"): no other task policy (for example ``IAMCreateRootUserPassword``, a root
        takeover) can be used. The resource type is ``root-user``, ``arn:<partition>:iam::<account>:root``
        (Service Authorization Reference, AWS STS). It lists no resource condition keys, so no
        ``aws:ResourceOrgID`` pin: AssumeRoot itself only reaches member accounts of the caller's
        organization, and an unverified key in an Allow would fail closed and silently break the
        remediation. Standalone has no organization, hence no grant.
        """
        actions = engine_remediation_actions(self.catalog)
        if "sts:AssumeRoot" not in actions or self.cfg.mode != "organization":
            return
        root_arn = f"arn:{self.partition}:iam::*:root"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="AssumeRootDeleteRootCredentialsOnly",
                actions=["sts:AssumeRoot"],
                resources=[root_arn],
                conditions={"StringEquals": {"sts:TaskPolicyArn": f"arn:{self.partition}:{ROOT_TASK_POLICY}"}},
            )
        )
        self._ack(
            role,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::{root_arn}]",
            "AssumeRoot targets any member account (they join at any time); sts:TaskPolicyArn pins the one "
            "task policy the root-key remediation uses.",
        )

    def _invoke_engine_statement(self) -> iam.PolicyStatement:
        """Hand matches/repairs to the engine (unqualified function only, no versions)."""
        return iam.PolicyStatement(
            sid="InvokeEngine", actions=["lambda:InvokeFunction"], resources=[self.engine.function_arn]
        )

    # ------------------------------------------------------------------ #
    # engine + central bus
    # ------------------------------------------------------------------ #
    def _engine(self) -> lambda_.Function:
        group = self._log_group("EngineLogs")
        role = self._role("EngineRole", names.ENGINE_ROLE_NAME, group)
        fn = self._function(
            "Engine",
            handler=ENGINE_HANDLER,
            role=role,
            group=group,
            service="trailguard-engine",
            environment={"TRAILGUARD_STATE_TABLE": self.table.table_name},
            timeout=cdk.Duration.seconds(60),
            memory=512,
            reserved=self.cfg.engine.reserved_concurrency,
            description="trailguard engine: decides on and remediates risky CloudTrail events",
            on_failure=destinations.SqsDestination(self.engine_failure_dlq),
            retry_attempts=2,
            max_event_age=cdk.Duration.hours(6),
        )
        self._allow_assume_remediation(role)
        self._allow_assume_root(role)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SecurityHubFindings",
                actions=["securityhub:BatchImportFindings"],
                resources=[
                    f"arn:{self.partition}:securityhub:{self.region}:{self.account}:product/{self.account}/default",
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="StateTable",
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:ConditionCheckItem",
                ],
                resources=[self.table.table_arn],
            )
        )
        role.add_to_policy(self._deny_verifier_items())
        self.key.grant_encrypt_decrypt(role)
        self._allow_list_accounts(role)
        return fn

    def _allow_list_accounts(self, role: iam.Role) -> None:
        """Organization mode: ``organizations:ListAccounts`` (read-only, cached by the engine) to tell the
        organization's accounts from external ones in shares (``trailguard_engine.org_accounts``)."""
        if self.cfg.mode != "organization":
            return
        role.add_to_policy(
            iam.PolicyStatement(sid="ListOrganizationAccounts", actions=["organizations:ListAccounts"], resources=["*"])
        )
        self._ack(
            role,
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "organizations:ListAccounts has no resource type: it can only be granted on *; it is read-only.",
        )

    def _deny_verifier_items(self) -> iam.PolicyStatement:
        """Only the verifier may write the ledger the engine trusts (``verified#...``) and its digest heads."""
        return iam.PolicyStatement(
            sid="OnlyTheVerifierWritesTheLedger",
            effect=iam.Effect.DENY,
            actions=["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"],
            resources=[self.table.table_arn],
            conditions={"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": list(VERIFIER_ITEMS)}},
        )

    def _bus(self) -> events.EventBus:
        """The central bus: PutEvents only from the member forwarding roles ``trailguard-forward-*``.

        The member rules target this bus with a role (``RoleArn``), so EventBridge calls PutEvents
        as that role and ``aws:PrincipalArn`` is the role's ARN. Organization mode: any account's
        forwarding role, inside the organization (accounts join at any time). A member admin could
        create a role of that name in their own account: the guardrail SCP denies creating,
        re-trusting or passing ``trailguard-*`` roles (stacks.guardrails), and the engine still
        checks every envelope it receives (source, account, region), so the name is not the only
        line. Standalone: the forwarding roles of this account's governed regions, exactly; in one
        account IAM also honours identity policies that grant PutEvents, so there the policy only
        stops adding anybody.
        """
        bus = events.EventBus(self, "CentralBus", event_bus_name=names.CENTRAL_BUS_NAME)
        if self.cfg.mode == "organization":
            statement: dict[str, Any] = {
                "Sid": "MemberForwardRolesPutEvents",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Resource": bus.event_bus_arn,
                "Condition": {
                    "StringEquals": {"aws:PrincipalOrgID": self.cfg.org.org_id},
                    "ArnLike": {"aws:PrincipalArn": names.forward_role_arn_pattern(self.partition)},
                },
            }
        else:
            forward_roles = [
                f"arn:{self.partition}:iam::{self.account}:role/{names.forward_role_name(region)}"
                for region in self.cfg.governed_regions
            ]
            statement = {
                "Sid": "ForwardRolesPutEvents",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{self.partition}:iam::{self.account}:root"},
                "Action": "events:PutEvents",
                "Resource": bus.event_bus_arn,
                "Condition": {"ArnEquals": {"aws:PrincipalArn": forward_roles}},
            }
        events.CfnEventBusPolicy(
            self,
            "CentralBusPolicy",
            event_bus_name=bus.event_bus_name,
            statement_id=statement["Sid"],
            statement=statement,
        )
        return bus

    def _central_rules(self) -> list[events.CfnRule]:
        """One EventBridge rule per catalog rule, or per part of its pattern when that is too large.

        A pattern above ``PATTERN_SPLIT_CHARS`` is split into parts whose union matches exactly the
        events it matches (``split_pattern``); every part's target sends the same rule id, so the
        engine judges the event against the catalog pattern as for an unsplit rule, and an event two
        overlapping parts both match is acted on once (same idempotency key).
        """
        out = []
        seen: set[str] = set()
        for rule in self.catalog:
            parts = split_pattern(rule.event_pattern, PATTERN_SPLIT_CHARS)
            for n, pattern in enumerate(parts, start=1):
                name = central_rule_name(rule.id, n)
                if name in seen:
                    raise ValueError(f"two central rules would be named {name}")
                seen.add(name)
                out.append(self._central_rule(rule, n, len(parts), name, pattern))
        rules_arn = (
            f"arn:{self.partition}:events:{self.region}:{self.account}:rule/"
            f"{names.CENTRAL_BUS_NAME}/{RULE_NAME_PREFIX}*"
        )
        # One permission for every rule: per-rule permissions would outgrow the 20 KB
        # function policy limit at a few dozen rules.
        lambda_.CfnPermission(
            self,
            "CentralRulesInvokeEngine",
            action="lambda:InvokeFunction",
            function_name=self.engine.function_arn,
            principal="events.amazonaws.com",
            source_account=self.account,
            source_arn=rules_arn,
        )
        self.target_dlq.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CentralRulesDeadLetters",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.target_dlq.queue_arn],
                conditions={"ArnLike": {"aws:SourceArn": rules_arn}},
            )
        )
        return out

    def _central_rule(self, rule: Rule, part: int, parts: int, name: str, pattern: dict[str, Any]) -> events.CfnRule:
        title = f"trailguard {rule.severity}: {rule.title}"
        return events.CfnRule(
            self,
            f"Rule-{rule.id}" if part == 1 else f"Rule-{rule.id}-p{part}",
            name=name,
            description=(title if parts == 1 else f"{title} (part {part} of {parts})")[:512],
            event_bus_name=self.bus.event_bus_name,
            event_pattern=pattern,
            state="ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" if rule.read_only_events else "ENABLED",
            targets=[
                events.CfnRule.TargetProperty(
                    id="engine",
                    arn=self.engine.function_arn,
                    input_transformer=events.CfnRule.InputTransformerProperty(
                        input_template=engine_input_template(rule.id)
                    ),
                    retry_policy=events.CfnRule.RetryPolicyProperty(
                        maximum_retry_attempts=TARGET_RETRY_ATTEMPTS,
                        maximum_event_age_in_seconds=int(TARGET_MAX_EVENT_AGE.to_seconds()),
                    ),
                    dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=self.target_dlq.queue_arn),
                )
            ],
        )

    # ------------------------------------------------------------------ #
    # reconciliation + drift (issue 7)
    # ------------------------------------------------------------------ #
    def _reconcile(self) -> tuple[sqs.Queue, sqs.Queue, lambda_.Function]:
        a = self.accounts
        timeout = cdk.Duration.minutes(5)
        queue, dlq = self._work_queue("Reconcile", RECONCILE_QUEUE_NAME, timeout)
        bucket = names.archive_bucket_name(a)
        bucket_arn = f"arn:{self.partition}:s3:::{bucket}"
        queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ArchiveBucketNotifications",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[queue.queue_arn],
                conditions={
                    "ArnEquals": {"aws:SourceArn": bucket_arn},
                    "StringEquals": {"aws:SourceAccount": a.log_archive},
                },
            )
        )
        group = self._log_group("ReconcileLogs")
        role = self._role("ReconcileRole", RECONCILE_ROLE_NAME, group)
        fn = self._function(
            "Reconcile",
            handler=RECONCILE_HANDLER,
            role=role,
            group=group,
            service="trailguard-reconcile",
            environment={
                "TRAILGUARD_STATE_TABLE": self.table.table_name,
                "TRAILGUARD_ENGINE_FUNCTION": self.engine.function_name,
                "TRAILGUARD_ARCHIVE_BUCKET": bucket,
                "TRAILGUARD_DIGEST_QUEUE_URL": self._digest_queue_url(),
            },
            timeout=timeout,
            memory=1024,
            reserved=self._helper_reserved(RECONCILE_RESERVED_CONCURRENCY),
            description="trailguard reconcile: scans new CloudTrail log files for events EventBridge missed",
        )
        fn.add_event_source(
            sources.SqsEventSource(
                queue,
                batch_size=RECONCILE_BATCH_SIZE,
                report_batch_item_failures=True,
                max_concurrency=RECONCILE_RESERVED_CONCURRENCY,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(sid="ReadLogFiles", actions=["s3:GetObject"], resources=[f"{bucket_arn}/AWSLogs/*"])
        )
        # The trail key lives beside the archive (log-archive account). Scoped to S3 reads: the
        # key policy (stacks.constructs.keys) grants this role the same, via S3 only.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DecryptLogFiles",
                actions=["kms:Decrypt"],
                resources=[f"arn:{self.partition}:kms:{a.home_region}:{a.log_archive}:key/*"],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{a.home_region}.amazonaws.com"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(sid="SeenByEngine", actions=["dynamodb:GetItem"], resources=[self.table.table_arn])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="MarkFilesAwaitingTheirDigest",
                actions=["dynamodb:PutItem"],
                resources=[self.table.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["pending#*"]}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ForwardDigestsToTheVerifier",
                actions=["sqs:SendMessage"],
                resources=[self._digest_queue_arn()],
            )
        )
        role.add_to_policy(self._invoke_engine_statement())
        self.key.grant_decrypt(role)
        self.key.grant(role, "kms:GenerateDataKey")  # SSE-KMS of the digest queue and the table
        self._ack(
            role,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::{bucket_arn}/AWSLogs/*]",
            "Log file keys are written by CloudTrail with run-time names under AWSLogs/.",
        )
        self._ack(
            role,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:{self.partition}:kms:{a.home_region}:{a.log_archive}:key/*]",
            "The trail key lives in the log-archive stack/account (random key id); kms:ViaService limits use "
            "to S3 reads of the archive, and the key policy names this role.",
        )
        return queue, dlq, fn

    def _digest_queue_arn(self) -> str:
        return f"arn:{self.partition}:sqs:{self.region}:{self.account}:{DIGEST_QUEUE_NAME}"

    def _digest_queue_url(self) -> str:
        return f"https://sqs.{self.region}.{self.url_suffix}/{self.account}/{DIGEST_QUEUE_NAME}"

    # ------------------------------------------------------------------ #
    # continuous log-file integrity verification (issue 13)
    # ------------------------------------------------------------------ #
    def _verifier(self) -> tuple[sqs.Queue, sqs.Queue, lambda_.Function]:
        """Digest queue -> ``trailguard-verify``; the same function runs hourly for missing digests.

        Why a queue of its own, fed by reconcile: S3 notification filters have a prefix and a suffix
        only, and digest keys differ from log-file keys in the middle (``AWSLogs/<org>/<account>/
        CloudTrail-Digest/``), so the archive's one notification cannot split them; two overlapping
        configurations are rejected by S3. The queue gives the verifier its own retries, DLQ, alarm and
        concurrency: a slow digest never delays the reconciliation of log files.
        """
        a = self.accounts
        timeout = cdk.Duration.minutes(5)
        queue, dlq = self._work_queue("Digest", DIGEST_QUEUE_NAME, timeout)
        bucket = names.archive_bucket_name(a)
        bucket_arn = f"arn:{self.partition}:s3:::{bucket}"
        group = self._log_group("VerifyLogs")
        role = self._role("VerifyRole", VERIFY_ROLE_NAME, group)
        fn = self._function(
            "Verify",
            handler=VERIFY_HANDLER,
            role=role,
            group=group,
            service="trailguard-verify",
            environment={
                "TRAILGUARD_STATE_TABLE": self.table.table_name,
                "TRAILGUARD_ARCHIVE_BUCKET": bucket,
                "TRAILGUARD_RECONCILE_QUEUE_URL": self.reconcile_queue.queue_url,
            },
            timeout=timeout,
            memory=1024,
            reserved=self._helper_reserved(VERIFY_RESERVED_CONCURRENCY),
            description="trailguard verify: CloudTrail digest signatures, chain and log file hashes; missing digests",
        )
        fn.add_event_source(
            sources.SqsEventSource(
                queue, batch_size=1, report_batch_item_failures=True, max_concurrency=VERIFY_RESERVED_CONCURRENCY
            )
        )
        events.Rule(
            self,
            "VerifySchedule",
            description="trailguard: hourly check for missing CloudTrail digests and unlisted log files",
            schedule=events.Schedule.rate(cdk.Duration.hours(1)),
            targets=[targets.LambdaFunction(fn, retry_attempts=2)],
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadDigestsAndLogFiles", actions=["s3:GetObject"], resources=[f"{bucket_arn}/AWSLogs/*"]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListLogFolders",
                actions=["s3:ListBucket"],
                resources=[bucket_arn],
                conditions={"StringLike": {"s3:prefix": ["AWSLogs/*"]}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DecryptDigestsAndLogFiles",
                actions=["kms:Decrypt"],
                resources=[f"arn:{self.partition}:kms:{a.home_region}:{a.log_archive}:key/*"],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{a.home_region}.amazonaws.com"}},
            )
        )
        # ListPublicKeys has no resource type (Service Authorization Reference, AWS CloudTrail).
        role.add_to_policy(
            iam.PolicyStatement(sid="CloudTrailPublicKeys", actions=["cloudtrail:ListPublicKeys"], resources=["*"])
        )
        role.add_to_policy(
            iam.PolicyStatement(sid="ReadLedger", actions=["dynamodb:GetItem"], resources=[self.table.table_arn])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteLedger",
                actions=["dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[self.table.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(VERIFIER_ITEMS)}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ClearPendingAndSuspects",
                actions=["dynamodb:DeleteItem"],
                resources=[self.table.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["pending#*", "suspects#*"]}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="AskReconcileToRescan", actions=["sqs:SendMessage"], resources=[self.reconcile_queue.queue_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SecurityHubFindings",
                actions=["securityhub:BatchImportFindings"],
                resources=[
                    f"arn:{self.partition}:securityhub:{self.region}:{self.account}:product/{self.account}/default",
                ],
            )
        )
        self.key.grant_decrypt(role)
        self.key.grant(role, "kms:GenerateDataKey")  # SSE-KMS of the reconcile queue and the table
        self._ack(
            role,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::{bucket_arn}/AWSLogs/*]",
            "Digest and log file keys are written by CloudTrail with run-time names under AWSLogs/.",
        )
        self._ack(
            role,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:{self.partition}:kms:{a.home_region}:{a.log_archive}:key/*]",
            "The trail key lives in the log-archive stack/account (random key id); kms:ViaService limits use "
            "to S3 reads of the archive, and the key policy names this role.",
        )
        self._ack(
            role,
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "cloudtrail:ListPublicKeys has no resource type: it can only be granted on *; it returns public keys.",
        )
        return queue, dlq, fn

    def _drift(self) -> lambda_.Function:
        a = self.accounts
        group = self._log_group("DriftLogs")
        role = self._role("DriftRole", DRIFT_ROLE_NAME, group)
        fn = self._function(
            "Drift",
            handler=DRIFT_HANDLER,
            role=role,
            group=group,
            service="trailguard-drift",
            environment={
                "TRAILGUARD_ENGINE_FUNCTION": self.engine.function_name,
                "TRAILGUARD_TRAIL_ARN": names.trail_arn(self.cfg, a),
                "TRAILGUARD_TRAIL_ACCOUNT": a.trail,
                "TRAILGUARD_ARCHIVE_BUCKET": names.archive_bucket_name(a),
                "TRAILGUARD_LOG_ARCHIVE_ACCOUNT": a.log_archive,
                "TRAILGUARD_HOME_REGION": a.home_region,
                # The member forwarding DLQs (issue 20): the roster is these accounts + the verifier's digest heads.
                "TRAILGUARD_STATE_TABLE": self.table.table_name,
                "TRAILGUARD_FORWARD_DLQ_NAME": FORWARD_DLQ_NAME,
                "TRAILGUARD_GOVERNED_REGIONS": ",".join(self.cfg.governed_regions),
                "TRAILGUARD_MEMBER_ACCOUNTS": a.management if self.cfg.mode == "organization" else self.account,
            },
            timeout=cdk.Duration.minutes(5),
            memory=256,
            reserved=self._helper_reserved(DRIFT_RESERVED_CONCURRENCY),
            description="trailguard drift sweep: trail logging, archive bucket, trail keys",
        )
        self._allow_assume_remediation(role)
        role.add_to_policy(self._invoke_engine_statement())
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadDigestRoster",
                actions=["dynamodb:GetItem"],
                resources=[self.table.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(DRIFT_ROSTER_ITEMS)}},
            )
        )
        self.key.grant_decrypt(role)  # the state table's SSE-KMS
        events.Rule(
            self,
            "DriftSchedule",
            description="trailguard: hourly drift sweep",
            schedule=events.Schedule.rate(cdk.Duration.hours(1)),
            targets=[targets.LambdaFunction(fn, retry_attempts=2)],
        )
        return fn

    # ------------------------------------------------------------------ #
    # alarms
    # ------------------------------------------------------------------ #
    def _alarms(self) -> None:
        action = cw_actions.SnsAction(self.topic)
        period = cdk.Duration.minutes(5)

        def add(alarm: cw.Alarm) -> None:
            alarm.add_alarm_action(action)
            self.alarms.append(alarm)

        for id, queue in (
            ("RuleTargetDlqDepth", self.target_dlq),
            ("EngineFailureDlqDepth", self.engine_failure_dlq),
            ("ReconcileDlqDepth", self.reconcile_dlq),
            ("DigestDlqDepth", self.digest_dlq),
        ):
            add(
                queue.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum").create_alarm(
                    self,
                    id,
                    alarm_description=f"trailguard: messages in {id.removesuffix('Depth')}: events were not handled",
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                )
            )
        # The member accounts' forwarding DLQs, rolled up by the drift sweep (messages, or a queue it cannot read).
        member_dlqs = cw.MathExpression(
            expression="messages + unreadable",
            using_metrics={
                key: cw.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name=name,
                    dimensions_map={"service": "trailguard-drift"},
                    statistic="Sum",
                    period=cdk.Duration.hours(1),
                )
                for key, name in zip(("messages", "unreadable"), MEMBER_DLQ_METRICS, strict=True)
            },
            label="member forwarding DLQs: messages + unreadable queues",
            period=cdk.Duration.hours(1),
        )
        add(
            member_dlqs.create_alarm(
                self,
                "MemberForwardDlqs",
                alarm_description="trailguard: a member account's forwarding DLQ has messages, or the drift sweep "
                "cannot read it (deleted queue or role, denied read): forwarded events are failing",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
        )
        error_rate = cw.MathExpression(
            expression="100 * errors / MAX([invocations, 1])",
            using_metrics={
                "errors": self.engine.metric_errors(period=period, statistic="Sum"),
                "invocations": self.engine.metric_invocations(period=period, statistic="Sum"),
            },
            label="engine error rate (%)",
            period=period,
        )
        add(
            error_rate.create_alarm(
                self,
                "EngineErrorRate",
                alarm_description=f"trailguard: more than {ENGINE_ERROR_RATE_PERCENT}% of engine invocations failed",
                threshold=ENGINE_ERROR_RATE_PERCENT,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
        )
        for id, fn in (("EngineThrottles", self.engine), ("ReconcileThrottles", self.reconcile)):
            add(
                fn.metric_throttles(period=period, statistic="Sum").create_alarm(
                    self,
                    id,
                    alarm_description=f"trailguard: {id.removesuffix('Throttles').lower()} function throttled",
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                )
            )
        for id, fn in (("ReconcileErrors", self.reconcile), ("DriftErrors", self.drift), ("VerifyErrors", self.verify)):
            add(
                fn.metric_errors(period=period if id != "DriftErrors" else cdk.Duration.hours(1)).create_alarm(
                    self,
                    id,
                    alarm_description=f"trailguard: {id.removesuffix('Errors').lower()} function failed",
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                )
            )

    # ------------------------------------------------------------------ #
    # cdk-nag acknowledgments: all of them, in one place
    # ------------------------------------------------------------------ #
    def _ack(self, construct: Construct, rule: str, reason: str) -> None:
        """Queue an acknowledgment; tokens in finding ids are spelled the way cdk-nag prints them."""
        for token, spelled in (
            (self.account, "<AWS::AccountId>"),
            (cdk.Aws.ACCOUNT_ID, "<AWS::AccountId>"),
            (self.partition, "<AWS::Partition>"),
            (cdk.Aws.PARTITION, "<AWS::Partition>"),
        ):
            if cdk.Token.is_unresolved(token):
                rule = rule.replace(token, spelled)
        self._acks.append((construct, rule, reason))

    def _apply_acks(self) -> None:
        for fn in (self.engine, self.reconcile, self.drift, self.verify):
            self._ack(
                fn,
                "AwsSolutions::AwsSolutions-L1",
                "python3.12 is the runtime the Lambda contract and the dependency layer are built for.",
            )
            self._ack(
                fn,
                "NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC",
                "The functions only call AWS APIs; a VPC would add NAT/endpoints cost and cold-start latency.",
            )
        for fn in (self.reconcile, self.drift, self.verify):
            self._ack(
                fn,
                "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
                "Invoked synchronously (SQS event source with its own DLQ; schedule with retries); "
                "failures raise the error alarms.",
            )
        if self.cfg.engine.reserved_concurrency is None:
            for fn in (self.engine, self.reconcile, self.drift, self.verify):
                self._ack(
                    fn,
                    "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency",
                    "engine.reserved_concurrency is null: the account's Lambda quota cannot spare reservations "
                    "(Lambda keeps 100 unreserved); the SQS event sources cap reconcile and verify.",
                )
        self._ack(
            self.engine,
            "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
            "Asynchronous failures go to the on-failure destination queue (EngineFailureDlq), which is alarmed.",
        )
        for role in self._roles:
            self._ack(
                role,
                "AwsSolutions::AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
                "CDK's KMS grant for the detection key (SQS/SNS/DynamoDB/env encryption), scoped to that one key.",
            )
            self._ack(
                role,
                "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy",
                "Each function role has its own policy generated from its grants; nothing is shared to reuse.",
            )
        self._ack(
            self._roles[0],  # the engine role
            "AwsSolutions::AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
            "CDK's encrypt/decrypt grant on the detection key only (DynamoDB and SQS re-encrypt data keys).",
        )
        self._ack(
            self.table,
            "NIST.800.53.R5::NIST.800.53.R5-DynamoDBInBackupPlan",
            "Idempotency and rate-limit records that expire within days (TTL); PITR covers accidents.",
        )
        self.acknowledgment_count = len(self._acks)
        for construct, rule, reason in self._acks:
            cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))
