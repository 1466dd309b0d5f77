"""Named fixes to moto (pinned in requirements.txt) so the real CDK CLI can deploy trailguard into it.

Each fix is small and does one thing. A fix is applied in-process, before moto's server starts
(:func:`apply_all`), and carries a *probe*: a tiny CloudFormation template and a check of the live
state that fails on unpatched moto and passes once the fix is applied. The canary test
(``tests/emulator/test_fixes_canary.py``) runs every probe both ways in fresh interpreters, so a
moto upgrade that makes a fix unnecessary, or breaks the code a fix wraps, fails loudly.

Fixes marked ``upstream=True`` are written as moto would want them (the real backend call, the
documented CloudFormation properties) and could be offered to moto as they are. The others
model something only an emulator needs (for example: the emulator stands in for AWS's TLS endpoints).

Why by hand: moto is the maintained emulator, and these are the gaps between it and what
CloudFormation does; there is no library that closes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

#: The moto version these fixes were written for (requirements.txt pins it exactly).
MOTO_VERSION = "5.2.5"


@dataclass(frozen=True)
class Probe:
    """A template whose deployment shows the gap, and a check that is True once the gap is closed."""

    resources: Mapping[str, Any]
    check: Callable[[Callable[[str], Any], str], bool]  # (client factory, stack name) -> fixed?


@dataclass(frozen=True)
class Fix:
    name: str
    summary: str
    upstream: bool
    apply: Callable[[], None]
    probe: Probe


_applied: list[str] = []
#: The added CloudFormation models, held strongly: moto finds them through ``__subclasses__()``, whose
#: references are weak, so an unreferenced class could be garbage-collected between two deployments.
_EMULATED_TYPES: dict[str, type] = {}


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _tags(props: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in props.get("Tags") or []]


def _as_json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _new_type(
    cfn_type: str,
    create: Callable[[Mapping[str, Any], str, str, str], tuple[str, dict[str, Any]]],
    delete: Callable[[Mapping[str, Any], str, str, str], None] | None = None,
) -> type:
    """A CloudFormation model for ``cfn_type`` whose create and delete call the real service backend.

    moto finds models through ``CloudFormationModel.__subclasses__()`` (direct subclasses only), so
    the class is created here, when the fix is applied, and moto's lookup caches are cleared.
    ``create(props, account, region, generated_name)`` returns (physical id, GetAtt attributes).
    """
    from moto.core.common_models import CloudFormationModel  # noqa: PLC0415 - moto is imported only by the emulator

    def create_from_cloudformation_json(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        props = cloudformation_json.get("Properties") or {}
        physical, attrs = create(props, account_id, region_name, resource_name)
        return cls(physical, attrs, props)

    def init(self: Any, physical: str, attrs: dict[str, Any], props: Mapping[str, Any]) -> None:
        self.physical_resource_id = physical
        self._attrs = attrs
        self._props = props

    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException  # noqa: PLC0415

        if attribute_name in self._attrs:
            return self._attrs[attribute_name]
        raise UnformattedGetAttTemplateException()

    def delete_resource(self: Any, account_id: str, region_name: str) -> None:
        if delete is not None:
            delete(self._props, account_id, region_name, self.physical_resource_id)

    name = cfn_type.replace("AWS::", "").replace("::", "")
    cls = type(
        f"Emulated{name}",
        (CloudFormationModel,),
        {
            "__init__": init,
            "cloudformation_type": staticmethod(lambda: cfn_type),
            "cloudformation_name_type": staticmethod(lambda: ""),
            "create_from_cloudformation_json": classmethod(cast(Any, create_from_cloudformation_json)),
            "has_cfn_attr": classmethod(lambda cls, attr: True),
            "get_cfn_attribute": get_cfn_attribute,
            "delete": delete_resource,
        },
    )
    _EMULATED_TYPES[cfn_type] = cls
    _clear_model_caches()
    return cls


def _clear_model_caches() -> None:
    from moto.cloudformation import parsing  # noqa: PLC0415

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


def _wrap_create(model: type, after: Callable[[Any, Mapping[str, Any], str, str], None]) -> None:
    """Run ``after(resource, props, account, region)`` once moto's own create_from_cloudformation_json returned."""
    original = model.__dict__["create_from_cloudformation_json"].__func__

    def create_from_cloudformation_json(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        resource = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        after(resource, cloudformation_json.get("Properties") or {}, account_id, region_name)
        return resource

    model.create_from_cloudformation_json = classmethod(cast(Any, create_from_cloudformation_json))  # type: ignore[attr-defined]


def _backend(service: str, account: str, region: str) -> Any:
    from moto.backends import get_backend  # noqa: PLC0415

    if service == "s3":
        return get_backend("s3")[account]["aws"]
    return get_backend(service)[account][region]  # type: ignore[call-overload]


# --------------------------------------------------------------------------- #
# CloudFormation fixes in existing models
# --------------------------------------------------------------------------- #
def _fix_event_bus_ref() -> None:
    """``Ref`` to an ``AWS::Events::EventBus`` returns the bus name (moto returned the Python object).

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """
    from moto.events.models import EventBus  # noqa: PLC0415

    EventBus.physical_resource_id = property(lambda self: self.name)  # type: ignore[attr-defined]


def _fix_kms_key_tags() -> None:
    """``AWS::KMS::Key`` Tags use CloudFormation's Key/Value; the KMS backend wants TagKey/TagValue.

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """
    from moto.kms.models import Key  # noqa: PLC0415

    original = Key.__dict__["create_from_cloudformation_json"].__func__

    def create(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
    ) -> Any:
        props = dict(cloudformation_json.get("Properties") or {})
        props["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in _tags(props)]
        key = original(cls, resource_name, {**cloudformation_json, "Properties": props}, account_id, region_name, **kw)
        if props.get("PendingWindowInDays"):
            key.deletion_window_in_days = int(props["PendingWindowInDays"])
        return key

    Key.create_from_cloudformation_json = classmethod(cast(Any, create))  # type: ignore[method-assign,assignment]


def _fix_termination_protection() -> None:
    """``UpdateTerminationProtection`` (the CDK CLI calls it for protected stacks) sets the stack's flag.

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """
    from moto.cloudformation.responses import CloudFormationResponse  # noqa: PLC0415
    from moto.core.responses import ActionResult  # noqa: PLC0415

    def update_termination_protection(self: Any) -> Any:
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        stack.enable_termination_protection = str(self._get_param("EnableTerminationProtection")).lower() == "true"
        return ActionResult({"StackId": stack.stack_id})

    CloudFormationResponse.update_termination_protection = update_termination_protection  # type: ignore[attr-defined]


def _fix_s3_bucket_properties() -> None:
    """``AWS::S3::Bucket`` keeps versioning, Block Public Access, logging, lifecycle, ownership and notifications.

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """
    from moto.s3.models import FakeBucket  # noqa: PLC0415

    def after(bucket: Any, props: Mapping[str, Any], account: str, region: str) -> None:
        s3 = _backend("s3", account, region)
        name = bucket.name
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(name, props["VersioningConfiguration"]["Status"])
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(name, dict(props["PublicAccessBlockConfiguration"]))
        logging_cfg = props.get("LoggingConfiguration")
        if logging_cfg:
            # Stored as given: moto's PutBucketLogging check wants an ACL grant to the log-delivery group, but
            # buckets with ObjectOwnership BucketOwnerEnforced grant log delivery in their bucket policy instead.
            bucket.logging = {
                "TargetBucket": logging_cfg.get("DestinationBucketName", name),
                "TargetPrefix": logging_cfg.get("LogFilePrefix", ""),
            }
        lifecycle = props.get("LifecycleConfiguration")
        if lifecycle:
            s3.put_bucket_lifecycle(name, [_lifecycle_rule(r) for r in lifecycle.get("Rules", [])])
        ownership = props.get("OwnershipControls")
        if ownership:
            s3.put_bucket_ownership_controls(name, ownership["Rules"][0]["ObjectOwnership"])
        notification = props.get("NotificationConfiguration") or {}
        if notification.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(name, {"EventBridgeConfiguration": {}})

    _wrap_create(FakeBucket, after)


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the shape moto's S3 API parser produces."""
    out: dict[str, Any] = {"ID": rule.get("Id", ""), "Status": rule.get("Status", "Enabled")}
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    transitions = rule.get("Transitions") or []
    if transitions:
        out["Transition"] = [
            {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]} for t in transitions
        ]
    return out


def _fix_dynamodb_table_properties() -> None:
    """``AWS::DynamoDB::Table`` keeps SSESpecification (SSEEnabled), TimeToLiveSpecification and PointInTimeRecoverySpecification.

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """
    from moto.dynamodb.models.table import Table  # noqa: PLC0415

    def after(table: Any, props: Mapping[str, Any], account: str, region: str) -> None:
        ddb = _backend("dynamodb", account, region)
        sse = props.get("SSESpecification") or {}
        if sse.get("SSEEnabled") and table.sse_specification is not None:
            # CloudFormation spells it SSEEnabled; moto's table reads the API's Enabled.
            table.sse_specification["Enabled"] = True
            table.sse_specification["SSEType"] = sse.get("SSEType", "KMS")
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(
                table.name, {"Enabled": bool(ttl["Enabled"]), "AttributeName": ttl["AttributeName"]}
            )
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr and pitr.get("PointInTimeRecoveryEnabled"):
            ddb.update_continuous_backups(table.name, {"PointInTimeRecoveryEnabled": True})

    _wrap_create(Table, after)


def _fix_lambda_function_properties() -> None:
    """``AWS::Lambda::Function`` keeps Layers, Architectures, LoggingConfig, KmsKeyArn and TracingConfig.

    ``Ref`` to an ``AWS::Lambda::LayerVersion`` gives the layer version ARN (moto returned the Python object).

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """
    from moto.awslambda.models import LambdaFunction, LayerVersion  # noqa: PLC0415

    LayerVersion.physical_resource_id = property(lambda self: self.arn)  # type: ignore[attr-defined]

    def after(fn: Any, props: Mapping[str, Any], account: str, region: str) -> None:
        if props.get("Layers"):
            fn.layers = fn._get_layers_data(list(props["Layers"]))
        if props.get("Architectures"):
            fn.architectures = list(props["Architectures"])
        if props.get("KmsKeyArn"):
            fn.kms_key_arn = props["KmsKeyArn"]
        if props.get("TracingConfig"):
            fn.tracing_config = dict(props["TracingConfig"])
        if props.get("LoggingConfig"):
            fn.logging_config = dict(props["LoggingConfig"])

    _wrap_create(LambdaFunction, after)
    original = LambdaFunction.get_configuration

    def get_configuration(self: Any, on_create: bool = False) -> dict[str, Any]:
        config: dict[str, Any] = original(self, on_create=on_create)
        if getattr(self, "logging_config", None):
            config["LoggingConfig"] = self.logging_config
        return config

    LambdaFunction.get_configuration = get_configuration  # type: ignore[method-assign]


def _fix_log_group_kms() -> None:
    """``AWS::Logs::LogGroup`` keeps KmsKeyId (moto reads ``kmsKeyId``, the API's spelling).

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """
    from moto.logs.models import LogGroup  # noqa: PLC0415

    def after(group: Any, props: Mapping[str, Any], account: str, region: str) -> None:
        if props.get("KmsKeyId"):
            group.kms_key_id = props["KmsKeyId"]

    _wrap_create(LogGroup, after)


def _fix_bucket_policy_conditions() -> None:
    """A bucket policy statement is enforced only when moto can evaluate its Condition.

    moto ignores Conditions, so a ``Deny`` on ``aws:SecureTransport: false`` (every hardened bucket has
    one) denied every write. The emulator stands in for AWS's TLS endpoints, so ``aws:SecureTransport``
    is true; a statement with any other condition key is not enforced (the README's limits say so).
    Emulator-specific, not for upstream.
    """
    from moto.iam.access_control import IAMPolicy, PermissionResult  # noqa: PLC0415
    from moto.s3.models import FakeBucket  # noqa: PLC0415

    def enforced(statement: Mapping[str, Any]) -> bool:
        cond = statement.get("Condition")
        if not cond:
            return True
        for operator, entries in cond.items():
            for key, values in entries.items():
                if key.lower() != "aws:securetransport" or operator not in ("Bool", "BoolIfExists"):
                    return False
                wanted = {str(v).lower() for v in (values if isinstance(values, list) else [values])}
                if "true" not in wanted:
                    return False
        return True

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        doc = json.loads(self.policy.decode())
        statements = doc.get("Statement", [])
        statements = [s for s in (statements if isinstance(statements, list) else [statements]) if enforced(s)]
        if not statements:
            return PermissionResult.NEUTRAL
        stripped = [{k: v for k, v in s.items() if k != "Condition"} for s in statements]
        return IAMPolicy(json.dumps({**doc, "Statement": stripped})).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def _fix_lambda_permission_id() -> None:
    """``AWS::Lambda::Permission`` has a physical id (the function and the statement id, as CloudFormation reports).

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """
    from moto.awslambda.models import Permission  # noqa: PLC0415

    def after(perm: Any, props: Mapping[str, Any], account: str, region: str) -> None:
        perm.physical_resource_id = f"{props['FunctionName']}|{props.get('Action', 'lambda:InvokeFunction')}"

    _wrap_create(Permission, after)


def _fix_managed_policy_delete() -> None:
    """Deleting an ``AWS::IAM::ManagedPolicy`` detaches it and deletes it, so its roles can be deleted after it.

    moto had no delete for the type: ``cdk destroy`` failed with "must detach all policies first" on the role.

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """
    from moto.iam.models import ManagedPolicy  # noqa: PLC0415

    def delete(self: Any, account_id: str, region_name: str) -> None:
        backend = self.backend
        for holder in [*backend.roles.values(), *backend.users.values(), *backend.groups.values()]:
            if self.arn in holder.managed_policies:
                self.detach_from(holder)
        backend.managed_policies.pop(self.arn, None)

    ManagedPolicy.delete = delete  # type: ignore[attr-defined]


#: Invocations moto would have run in Docker, kept instead (the emulator has no Docker; see lambda_runner).
HELD_INVOCATIONS: list[dict[str, Any]] = []


def _fix_lambda_invoke_without_docker() -> None:
    """A Lambda invocation inside the emulator is held, not run: no Docker here, and no minute of retries.

    moto sends some events itself (S3 CreateBucket notifications, EventBridge targets) and tried to start
    a container for each. trailguard runs the deployed handler from its deployed zip instead. Emulator-specific.
    """
    from moto.awslambda.models import LambdaFunction  # noqa: PLC0415

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        HELD_INVOCATIONS.append({"function": self.function_name, "event": event})
        return "", False, ""

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]


# --------------------------------------------------------------------------- #
# resource types moto's CloudFormation ignores
# --------------------------------------------------------------------------- #
def _add_bucket_policy() -> None:
    """``AWS::S3::BucketPolicy``: PutBucketPolicy on create, DeleteBucketPolicy on delete (moto ignored the type).

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """

    def create(props: Mapping[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, Any]]:
        bucket = str(props["Bucket"])
        _backend("s3", account, region).put_bucket_policy(bucket, _as_json(props["PolicyDocument"]).encode())
        return bucket, {}

    def delete(props: Mapping[str, Any], account: str, region: str, physical: str) -> None:
        _backend("s3", account, region).delete_bucket_policy(physical)

    _new_type("AWS::S3::BucketPolicy", create, delete)


def _add_topic_policy() -> None:
    """``AWS::SNS::TopicPolicy``: the topics' Policy attribute (moto ignored the type).

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """

    def create(props: Mapping[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, Any]]:
        sns = _backend("sns", account, region)
        for arn in props["Topics"]:
            sns.set_topic_attribute(arn, "policy", _as_json(props["PolicyDocument"]))
        return name, {}

    _new_type("AWS::SNS::TopicPolicy", create)


def _add_queue_policy() -> None:
    """``AWS::SQS::QueuePolicy``: the queues' Policy attribute, cleared on delete (moto ignored the type).

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """

    def create(props: Mapping[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, Any]]:
        sqs = _backend("sqs", account, region)
        for url in props["Queues"]:
            sqs.set_queue_attributes(
                str(url).rstrip("/").rsplit("/", 1)[-1], {"Policy": _as_json(props["PolicyDocument"])}
            )
        return name, {}

    def delete(props: Mapping[str, Any], account: str, region: str, physical: str) -> None:
        sqs = _backend("sqs", account, region)
        for url in props["Queues"]:
            queue = str(url).rstrip("/").rsplit("/", 1)[-1]
            if queue in sqs.queues:
                sqs.set_queue_attributes(queue, {"Policy": ""})

    _new_type("AWS::SQS::QueuePolicy", create, delete)


def _add_event_bus_policy() -> None:
    """``AWS::Events::EventBusPolicy``: a statement in the bus policy, removed on delete (moto ignored the type).

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """

    def create(props: Mapping[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, Any]]:
        events = _backend("events", account, region)
        bus = str(props.get("EventBusName") or "default")
        sid = str(props["StatementId"])
        statement = dict(props["Statement"]) if "Statement" in props else None
        if statement is not None:
            statement["Sid"] = sid
            policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
            events.put_permission(bus, None, None, None, None, policy)
        else:
            events.put_permission(bus, props["Action"], props["Principal"], sid, props.get("Condition"), None)
        return sid, {}

    def delete(props: Mapping[str, Any], account: str, region: str, physical: str) -> None:
        events = _backend("events", account, region)
        bus = str(props.get("EventBusName") or "default")
        if bus in events.event_buses:
            events.remove_permission(bus, physical, False)

    _new_type("AWS::Events::EventBusPolicy", create, delete)


def _add_event_invoke_config() -> None:
    """``AWS::Lambda::EventInvokeConfig``: PutFunctionEventInvokeConfig (moto ignored the type).

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """

    def create(props: Mapping[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, Any]]:
        lam = _backend("lambda", account, region)
        config = {
            k: props[k] for k in ("DestinationConfig", "MaximumEventAgeInSeconds", "MaximumRetryAttempts") if k in props
        }
        fn = str(props["FunctionName"])
        lam.put_function_event_invoke_config(fn, config)
        return f"{fn}:{props.get('Qualifier', '$LATEST')}", {}

    _new_type("AWS::Lambda::EventInvokeConfig", create)


def _add_metric_filter() -> None:
    """``AWS::Logs::MetricFilter``: PutMetricFilter, DeleteMetricFilter on delete (moto ignored the type).

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """

    def create(props: Mapping[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, Any]]:
        filter_name = str(props.get("FilterName") or name)
        # CloudFormation's MetricTransformations (MetricName, ...) in the API's shape (metricName, ...), as moto stores it.
        transformations = [{k[0].lower() + k[1:]: v for k, v in t.items()} for t in props["MetricTransformations"]]
        _backend("logs", account, region).put_metric_filter(
            filter_name, props["FilterPattern"], props["LogGroupName"], transformations
        )
        return filter_name, {}

    def delete(props: Mapping[str, Any], account: str, region: str, physical: str) -> None:
        _backend("logs", account, region).delete_metric_filter(physical, props["LogGroupName"])

    _new_type("AWS::Logs::MetricFilter", create, delete)


def _add_trail() -> None:
    """``AWS::CloudTrail::Trail``: CreateTrail, selectors, StartLogging when IsLogging (moto ignored the type).

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """

    def create(props: Mapping[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, Any]]:
        ct = _backend("cloudtrail", account, region)
        trail = ct.create_trail(
            name=str(props.get("TrailName") or name),
            bucket_name=props["S3BucketName"],
            s3_key_prefix=props.get("S3KeyPrefix"),
            sns_topic_name=props.get("SnsTopicName"),
            is_global=bool(props.get("IncludeGlobalServiceEvents", True)),
            is_multi_region=bool(props.get("IsMultiRegionTrail", False)),
            log_validation=bool(props.get("EnableLogFileValidation", False)),
            is_org_trail=bool(props.get("IsOrganizationTrail", False)),
            cw_log_group_arn=props.get("CloudWatchLogsLogGroupArn"),
            cw_role_arn=props.get("CloudWatchLogsRoleArn"),
            kms_key_id=props.get("KMSKeyId"),
            tags_list=_tags(props),
        )
        if props.get("EventSelectors") or props.get("AdvancedEventSelectors"):
            trail.put_event_selectors(
                list(props.get("EventSelectors") or []), list(props.get("AdvancedEventSelectors") or [])
            )
        if props.get("InsightSelectors"):
            trail.put_insight_selectors(list(props["InsightSelectors"]))
        if props.get("IsLogging", True):
            trail.start_logging()
        return trail.trail_name, {"Arn": trail.arn, "SnsTopicArn": ""}

    def delete(props: Mapping[str, Any], account: str, region: str, physical: str) -> None:
        _backend("cloudtrail", account, region).delete_trail(physical)

    _new_type("AWS::CloudTrail::Trail", create, delete)


def _add_glue() -> None:
    """``AWS::Glue::Database`` and ``AWS::Glue::Table``: CreateDatabase, CreateTable (moto ignored the types).

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """

    def create_db(props: Mapping[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, Any]]:
        db_input = dict(props["DatabaseInput"])
        db_name = str(db_input.get("Name") or name)
        _backend("glue", account, region).create_database(db_name, db_input)
        return db_name, {}

    def delete_db(props: Mapping[str, Any], account: str, region: str, physical: str) -> None:
        _backend("glue", account, region).delete_database(physical)

    def create_table(props: Mapping[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, Any]]:
        table_input = dict(props["TableInput"])
        table_name = str(table_input.get("Name") or name)
        _backend("glue", account, region).create_table(props["DatabaseName"], table_name, table_input)
        return table_name, {}

    def delete_table(props: Mapping[str, Any], account: str, region: str, physical: str) -> None:
        glue = _backend("glue", account, region)
        if props["DatabaseName"] in glue.databases:
            glue.delete_table(props["DatabaseName"], physical)

    _new_type("AWS::Glue::Database", create_db, delete_db)
    _new_type("AWS::Glue::Table", create_table, delete_table)


def _add_athena() -> None:
    """``AWS::Athena::WorkGroup`` and ``AWS::Athena::NamedQuery`` (moto ignored the types).

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """

    def create_wg(props: Mapping[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, Any]]:
        wg_name = str(props.get("Name") or name)
        _backend("athena", account, region).create_work_group(
            wg_name, dict(props.get("WorkGroupConfiguration") or {}), props.get("Description", ""), _tags(props)
        )
        return wg_name, {}

    def delete_wg(props: Mapping[str, Any], account: str, region: str, physical: str) -> None:
        _backend("athena", account, region).work_groups.pop(physical, None)

    def create_nq(props: Mapping[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, Any]]:
        query_id = _backend("athena", account, region).create_named_query(
            str(props.get("Name") or name),
            props.get("Description", ""),
            props["Database"],
            props["QueryString"],
            props.get("WorkGroup", "primary"),
        )
        return str(query_id), {"NamedQueryId": str(query_id)}

    def delete_nq(props: Mapping[str, Any], account: str, region: str, physical: str) -> None:
        _backend("athena", account, region).named_queries.pop(physical, None)

    _new_type("AWS::Athena::WorkGroup", create_wg, delete_wg)
    _new_type("AWS::Athena::NamedQuery", create_nq, delete_nq)


def _add_alarm() -> None:
    """``AWS::CloudWatch::Alarm``: PutMetricAlarm, with ``Fn::GetAtt Arn`` (moto ignored the type, and GetAtt failed).

    Upstream candidate: the real backend call and the documented properties, as moto would take it.
    """

    def create(props: Mapping[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, Any]]:
        from moto.cloudwatch.models import MetricDataQuery  # noqa: PLC0415

        cw = _backend("cloudwatch", account, region)
        alarm_name = str(props.get("AlarmName") or name)
        queries = [
            MetricDataQuery(
                query_id=q["Id"],
                label=q.get("Label", ""),
                period=q.get("Period"),
                return_data=q.get("ReturnData", True),
                expression=q.get("Expression"),
                metric_stat=q.get("MetricStat"),
            )
            for q in props.get("Metrics") or []
        ]
        alarm = cw.put_metric_alarm(
            name=alarm_name,
            namespace=props.get("Namespace"),
            metric_name=props.get("MetricName"),
            comparison_operator=props["ComparisonOperator"],
            evaluation_periods=int(props["EvaluationPeriods"]),
            period=props.get("Period"),
            threshold=props.get("Threshold"),
            statistic=props.get("Statistic"),
            description=props.get("AlarmDescription"),
            dimensions=[{"Name": d["Name"], "Value": d["Value"]} for d in props.get("Dimensions") or []],
            alarm_actions=list(props.get("AlarmActions") or []),
            metric_data_queries=queries or None,
            datapoints_to_alarm=props.get("DatapointsToAlarm"),
            ok_actions=list(props.get("OKActions") or []),
            insufficient_data_actions=list(props.get("InsufficientDataActions") or []),
            unit=props.get("Unit"),
            actions_enabled=props.get("ActionsEnabled", True),
            treat_missing_data=props.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=None,
            threshold_metric_id=props.get("ThresholdMetricId"),
            rule=None,
            tags=_tags(props),
        )
        return alarm_name, {"Arn": alarm.alarm_arn}

    def delete(props: Mapping[str, Any], account: str, region: str, physical: str) -> None:
        _backend("cloudwatch", account, region).delete_alarms([physical])

    _new_type("AWS::CloudWatch::Alarm", create, delete)


# --------------------------------------------------------------------------- #
# the list
# --------------------------------------------------------------------------- #
def _res(type_: str, **props: Any) -> dict[str, Any]:
    return {"Type": type_, "Properties": props}


_KEY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}],
}
_ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}],
}


def _allow_probe(action: str) -> dict[str, Any]:
    """A resource policy with one statement the probe can look for (Sid "probe")."""
    statement = {"Sid": "probe", "Effect": "Allow", "Principal": "*", "Action": action, "Resource": "*"}
    return {"Version": "2012-10-17", "Statement": [statement]}


_TLS_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::probe-tls-bucket", "arn:aws:s3:::probe-tls-bucket/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


def _physical(client: Callable[[str], Any], stack: str, logical: str) -> str:
    for r in client("cloudformation").list_stack_resources(StackName=stack)["StackResourceSummaries"]:
        if r["LogicalResourceId"] == logical:
            return str(r.get("PhysicalResourceId") or "")
    return ""


def _check_bus_rule(client: Callable[[str], Any], stack: str) -> bool:
    rules = client("events").list_rules(EventBusName="probe-bus").get("Rules", [])
    return any(r["Name"] == "probe-rule" for r in rules)


def _check_tls_put(client: Callable[[str], Any], stack: str) -> bool:
    try:
        client("s3").put_object(Bucket="probe-tls-bucket", Key="k", Body=b"x")
    except Exception:
        return False
    return True


def _check_alarm(client: Callable[[str], Any], stack: str) -> bool:
    alarms = client("cloudwatch").describe_alarms(AlarmNames=["probe-alarm"])["MetricAlarms"]
    outputs = client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    return bool(alarms) and any(str(o.get("OutputValue", "")).startswith("arn:aws:cloudwatch:") for o in outputs)


def _check_s3_props(client: Callable[[str], Any], stack: str) -> bool:
    s3 = client("s3")
    try:
        bpa = s3.get_public_access_block(Bucket="probe-props-bucket")["PublicAccessBlockConfiguration"]
    except Exception:
        return False
    versioning = s3.get_bucket_versioning(Bucket="probe-props-bucket").get("Status")
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket="probe-props-bucket")["Rules"]
    except Exception:
        return False
    logging = s3.get_bucket_logging(Bucket="probe-props-bucket").get("LoggingEnabled", {})
    return bool(
        all(bpa.values()) and versioning == "Enabled" and rules and rules[0]["Expiration"]["Days"] == 30 and logging
    )


def _check_ddb(client: Callable[[str], Any], stack: str) -> bool:
    ddb = client("dynamodb")
    ttl = ddb.describe_time_to_live(TableName="probe-table")["TimeToLiveDescription"]
    pitr = ddb.describe_continuous_backups(TableName="probe-table")["ContinuousBackupsDescription"]
    sse = ddb.describe_table(TableName="probe-table")["Table"].get("SSEDescription", {})
    return bool(
        ttl.get("TimeToLiveStatus") == "ENABLED"
        and sse.get("Status") == "ENABLED"
        and pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    )


def _check_lambda(client: Callable[[str], Any], stack: str) -> bool:
    cfg = client("lambda").get_function_configuration(FunctionName="probe-fn")
    return bool(
        cfg.get("Architectures") == ["arm64"]
        and cfg.get("Layers")
        and cfg.get("LoggingConfig", {}).get("LogFormat") == "JSON"
    )


def _check_log_group(client: Callable[[str], Any], stack: str) -> bool:
    groups = client("logs").describe_log_groups(logGroupNamePrefix="/probe/group")["logGroups"]
    return bool(groups and groups[0].get("kmsKeyId"))


def _check_bucket_policy(client: Callable[[str], Any], stack: str) -> bool:
    try:
        return bool(client("s3").get_bucket_policy(Bucket="probe-policy-bucket")["Policy"])
    except Exception:
        return False


def _check_topic_policy(client: Callable[[str], Any], stack: str) -> bool:
    sns = client("sns")
    arn = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":probe-topic"))
    policy = json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])
    return any(s.get("Sid") == "probe" for s in policy.get("Statement", []))


def _check_queue_policy(client: Callable[[str], Any], stack: str) -> bool:
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName="probe-queue")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {})
    return "probe" in attrs.get("Policy", "")


def _check_bus_policy(client: Callable[[str], Any], stack: str) -> bool:
    policy = client("events").describe_event_bus(Name="probe-bus").get("Policy")
    return bool(policy and "probe-statement" in policy)


def _check_invoke_config(client: Callable[[str], Any], stack: str) -> bool:
    try:
        cfg = client("lambda").get_function_event_invoke_config(FunctionName="probe-fn")
    except Exception:
        return False
    return bool(cfg.get("MaximumRetryAttempts") == 0)


def _check_metric_filter(client: Callable[[str], Any], stack: str) -> bool:
    filters = client("logs").describe_metric_filters(logGroupName="/probe/group")["metricFilters"]
    return bool(filters) and filters[0]["metricTransformations"][0].get("metricName") == "M"


def _check_trail(client: Callable[[str], Any], stack: str) -> bool:
    trails = client("cloudtrail").describe_trails(trailNameList=["probe-trail"])["trailList"]
    if not trails:
        return False
    status = client("cloudtrail").get_trail_status(Name="probe-trail")
    return bool(status.get("IsLogging") and trails[0].get("LogFileValidationEnabled"))


def _check_glue(client: Callable[[str], Any], stack: str) -> bool:
    try:
        client("glue").get_table(DatabaseName="probe_db", Name="probe_table")
    except Exception:
        return False
    return True


def _check_athena(client: Callable[[str], Any], stack: str) -> bool:
    athena = client("athena")
    names = [w["Name"] for w in athena.list_work_groups()["WorkGroups"]]
    queries = athena.list_named_queries(WorkGroup="probe-wg").get("NamedQueryIds", []) if "probe-wg" in names else []
    return "probe-wg" in names and bool(queries)


def _check_kms_tags(client: Callable[[str], Any], stack: str) -> bool:
    key_id = _physical(client, stack, "Key")
    if not key_id:
        return False
    tags = client("kms").list_resource_tags(KeyId=key_id)["Tags"]
    return {"TagKey": "owner", "TagValue": "probe"} in tags


def _check_termination(client: Callable[[str], Any], stack: str) -> bool:
    cfn = client("cloudformation")
    try:
        cfn.update_termination_protection(StackName=stack, EnableTerminationProtection=True)
    except Exception:
        return False
    return bool(cfn.describe_stacks(StackName=stack)["Stacks"][0].get("EnableTerminationProtection"))


_BUS = _res("AWS::Events::EventBus", Name="probe-bus")
_GROUP = _res("AWS::Logs::LogGroup", LogGroupName="/probe/group")
_ROLE = _res(
    "AWS::IAM::Role",
    RoleName="probe-role",
    AssumeRolePolicyDocument={
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    },
)
_FN_BUCKET = "probe-code-bucket"


def _fn(**extra: Any) -> dict[str, Any]:
    return _res(
        "AWS::Lambda::Function",
        FunctionName="probe-fn",
        Runtime="python3.12",
        Handler="index.handler",
        Role={"Fn::GetAtt": ["Role", "Arn"]},
        Code={"ZipFile": "def handler(event, context):\n    return event\n"},
        **extra,
    )


def _check_permission(client: Callable[[str], Any], stack: str) -> bool:
    return bool(_physical(client, stack, "Perm"))


def _check_policy_delete(client: Callable[[str], Any], stack: str) -> bool:
    cfn = client("cloudformation")
    cfn.delete_stack(StackName=stack)
    roles = [r["RoleName"] for r in client("iam").list_roles()["Roles"]]
    gone = "probe-role" not in roles
    stacks = [s["StackName"] for s in cfn.list_stacks(StackStatusFilter=["DELETE_COMPLETE"])["StackSummaries"]]
    return gone and stack in stacks


def _check_held(client: Callable[[str], Any], stack: str) -> bool:
    resp = client("lambda").invoke(FunctionName="probe-fn", Payload=b"{}")
    return resp.get("StatusCode") == 200 and "FunctionError" not in resp and bool(HELD_INVOCATIONS)


FIXES: tuple[Fix, ...] = (
    Fix(
        "lambda-permission-id",
        "AWS::Lambda::Permission has a physical id",
        True,
        _fix_lambda_permission_id,
        Probe(
            {
                "Role": _ROLE,
                "Fn": _fn(),
                "Perm": _res(
                    "AWS::Lambda::Permission",
                    FunctionName={"Ref": "Fn"},
                    Action="lambda:InvokeFunction",
                    Principal="events.amazonaws.com",
                ),
            },
            _check_permission,
        ),
    ),
    Fix(
        "iam-managed-policy-delete",
        "deleting an AWS::IAM::ManagedPolicy detaches it first",
        True,
        _fix_managed_policy_delete,
        Probe(
            {
                "Role": _ROLE,
                "Policy": _res(
                    "AWS::IAM::ManagedPolicy",
                    Roles=[{"Ref": "Role"}],
                    PolicyDocument={
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
                    },
                ),
            },
            _check_policy_delete,
        ),
    ),
    Fix(
        "lambda-invoke-without-docker",
        "Lambda invocations are held, not run in Docker",
        False,
        _fix_lambda_invoke_without_docker,
        Probe({"Role": _ROLE, "Fn": _fn()}, _check_held),
    ),
    Fix(
        "events-bus-ref",
        "Ref to an AWS::Events::EventBus gives the bus name",
        True,
        _fix_event_bus_ref,
        Probe(
            {
                "Bus": _BUS,
                "Rule": _res(
                    "AWS::Events::Rule", Name="probe-rule", EventBusName={"Ref": "Bus"}, EventPattern={"source": ["x"]}
                ),
            },
            _check_bus_rule,
        ),
    ),
    Fix(
        "kms-key-tags",
        "AWS::KMS::Key Tags (Key/Value) are accepted",
        True,
        _fix_kms_key_tags,
        Probe(
            {"Key": _res("AWS::KMS::Key", KeyPolicy=_KEY_POLICY, Tags=[{"Key": "owner", "Value": "probe"}])},
            _check_kms_tags,
        ),
    ),
    Fix(
        "cfn-termination-protection",
        "UpdateTerminationProtection is implemented",
        True,
        _fix_termination_protection,
        Probe({"Topic": _res("AWS::SNS::Topic", TopicName="probe-tp-topic")}, _check_termination),
    ),
    Fix(
        "s3-bucket-properties",
        "AWS::S3::Bucket keeps versioning, Block Public Access, logging, lifecycle, ownership",
        True,
        _fix_s3_bucket_properties,
        Probe(
            {
                "Bucket": _res(
                    "AWS::S3::Bucket",
                    BucketName="probe-props-bucket",
                    VersioningConfiguration={"Status": "Enabled"},
                    PublicAccessBlockConfiguration={
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    LoggingConfiguration={"DestinationBucketName": "probe-props-bucket", "LogFilePrefix": "logs/"},
                    LifecycleConfiguration={"Rules": [{"Id": "r", "Status": "Enabled", "ExpirationInDays": 30}]},
                )
            },
            _check_s3_props,
        ),
    ),
    Fix(
        "s3-policy-conditions",
        "bucket policies: aws:SecureTransport is true; other conditional statements are not enforced",
        False,
        _fix_bucket_policy_conditions,
        Probe(
            {
                "Bucket": _res("AWS::S3::Bucket", BucketName="probe-tls-bucket"),
                # Plain moto ignores AWS::S3::BucketPolicy; the probe sets the policy with the API (see _probe_setup).
            },
            _check_tls_put,
        ),
    ),
    Fix(
        "dynamodb-table-properties",
        "AWS::DynamoDB::Table keeps TTL and point-in-time recovery",
        True,
        _fix_dynamodb_table_properties,
        Probe(
            {
                "Table": _res(
                    "AWS::DynamoDB::Table",
                    TableName="probe-table",
                    BillingMode="PAY_PER_REQUEST",
                    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                    SSESpecification={"SSEEnabled": True, "SSEType": "KMS"},
                )
            },
            _check_ddb,
        ),
    ),
    Fix(
        "lambda-function-properties",
        "AWS::Lambda::Function keeps Layers, Architectures, LoggingConfig",
        True,
        _fix_lambda_function_properties,
        Probe(
            {
                "Role": _ROLE,
                "Layer": _res(
                    "AWS::Lambda::LayerVersion",
                    LayerName="probe-layer",
                    Content={"S3Bucket": _FN_BUCKET, "S3Key": "layer.zip"},
                ),
                "Fn": _fn(Architectures=["arm64"], Layers=[{"Ref": "Layer"}], LoggingConfig={"LogFormat": "JSON"}),
            },
            _check_lambda,
        ),
    ),
    Fix(
        "logs-group-kms",
        "AWS::Logs::LogGroup keeps KmsKeyId",
        True,
        _fix_log_group_kms,
        Probe(
            {
                "Group": _res(
                    "AWS::Logs::LogGroup",
                    LogGroupName="/probe/group",
                    KmsKeyId="arn:aws:kms:us-east-1:123456789012:key/probe",
                )
            },
            _check_log_group,
        ),
    ),
    Fix(
        "s3-bucket-policy",
        "AWS::S3::BucketPolicy",
        True,
        _add_bucket_policy,
        Probe(
            {
                "Bucket": _res("AWS::S3::Bucket", BucketName="probe-policy-bucket"),
                "Policy": _res("AWS::S3::BucketPolicy", Bucket={"Ref": "Bucket"}, PolicyDocument=_ALLOW_ALL),
            },
            _check_bucket_policy,
        ),
    ),
    Fix(
        "sns-topic-policy",
        "AWS::SNS::TopicPolicy",
        True,
        _add_topic_policy,
        Probe(
            {
                "Topic": _res("AWS::SNS::Topic", TopicName="probe-topic"),
                "Policy": _res(
                    "AWS::SNS::TopicPolicy",
                    Topics=[{"Ref": "Topic"}],
                    PolicyDocument=_allow_probe("sns:Publish"),
                ),
            },
            _check_topic_policy,
        ),
    ),
    Fix(
        "sqs-queue-policy",
        "AWS::SQS::QueuePolicy",
        True,
        _add_queue_policy,
        Probe(
            {
                "Queue": _res("AWS::SQS::Queue", QueueName="probe-queue"),
                "Policy": _res(
                    "AWS::SQS::QueuePolicy",
                    Queues=[{"Ref": "Queue"}],
                    PolicyDocument=_allow_probe("sqs:SendMessage"),
                ),
            },
            _check_queue_policy,
        ),
    ),
    Fix(
        "events-bus-policy",
        "AWS::Events::EventBusPolicy",
        True,
        _add_event_bus_policy,
        Probe(
            {
                "Bus": _BUS,
                "Policy": _res(
                    "AWS::Events::EventBusPolicy",
                    EventBusName={"Ref": "Bus"},
                    StatementId="probe-statement",
                    Statement={
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                        "Action": "events:PutEvents",
                        "Resource": "*",
                    },
                ),
            },
            _check_bus_policy,
        ),
    ),
    Fix(
        "lambda-event-invoke-config",
        "AWS::Lambda::EventInvokeConfig",
        True,
        _add_event_invoke_config,
        Probe(
            {
                "Role": _ROLE,
                "Fn": _fn(),
                "Config": _res(
                    "AWS::Lambda::EventInvokeConfig",
                    FunctionName={"Ref": "Fn"},
                    Qualifier="$LATEST",
                    MaximumRetryAttempts=0,
                ),
            },
            _check_invoke_config,
        ),
    ),
    Fix(
        "logs-metric-filter",
        "AWS::Logs::MetricFilter",
        True,
        _add_metric_filter,
        Probe(
            {
                "Group": _GROUP,
                "Filter": _res(
                    "AWS::Logs::MetricFilter",
                    LogGroupName={"Ref": "Group"},
                    FilterName="probe-filter",
                    FilterPattern='{ $.eventName = "StopLogging" }',
                    MetricTransformations=[{"MetricName": "M", "MetricNamespace": "N", "MetricValue": "1"}],
                ),
            },
            _check_metric_filter,
        ),
    ),
    Fix(
        "cloudtrail-trail",
        "AWS::CloudTrail::Trail (logging, validation, selectors)",
        True,
        _add_trail,
        Probe(
            {
                "Bucket": _res("AWS::S3::Bucket", BucketName="probe-trail-bucket"),
                "Trail": _res(
                    "AWS::CloudTrail::Trail",
                    TrailName="probe-trail",
                    S3BucketName={"Ref": "Bucket"},
                    IsLogging=True,
                    EnableLogFileValidation=True,
                ),
            },
            _check_trail,
        ),
    ),
    Fix(
        "glue-database-table",
        "AWS::Glue::Database and AWS::Glue::Table",
        True,
        _add_glue,
        Probe(
            {
                "Db": _res(
                    "AWS::Glue::Database", CatalogId={"Ref": "AWS::AccountId"}, DatabaseInput={"Name": "probe_db"}
                ),
                "Table": _res(
                    "AWS::Glue::Table",
                    CatalogId={"Ref": "AWS::AccountId"},
                    DatabaseName={"Ref": "Db"},
                    TableInput={"Name": "probe_table", "TableType": "EXTERNAL_TABLE"},
                ),
            },
            _check_glue,
        ),
    ),
    Fix(
        "athena-workgroup-named-query",
        "AWS::Athena::WorkGroup and AWS::Athena::NamedQuery",
        True,
        _add_athena,
        Probe(
            {
                "Wg": _res("AWS::Athena::WorkGroup", Name="probe-wg", WorkGroupConfiguration={}),
                "Query": _res(
                    "AWS::Athena::NamedQuery", Name="q", Database="db", QueryString="SELECT 1", WorkGroup={"Ref": "Wg"}
                ),
            },
            _check_athena,
        ),
    ),
    Fix(
        "cloudwatch-alarm",
        "AWS::CloudWatch::Alarm (with Fn::GetAtt Arn)",
        True,
        _add_alarm,
        Probe(
            {
                "Alarm": _res(
                    "AWS::CloudWatch::Alarm",
                    AlarmName="probe-alarm",
                    Namespace="N",
                    MetricName="M",
                    ComparisonOperator="GreaterThanOrEqualToThreshold",
                    EvaluationPeriods=1,
                    Period=300,
                    Threshold=1,
                    Statistic="Sum",
                )
            },
            _check_alarm,
        ),
    ),
)

#: Extra template parts a probe needs (an output for the alarm's GetAtt).
PROBE_OUTPUTS: dict[str, dict[str, Any]] = {
    "cloudwatch-alarm": {"AlarmArn": {"Value": {"Fn::GetAtt": ["Alarm", "Arn"]}}}
}


def apply_all() -> list[str]:
    """Apply every fix once (idempotent); return the names applied.

    The fixes stay applied for the life of the process (moto's server runs in it); a fresh interpreter is
    plain moto again, which is how the canary test compares the two.
    """
    import moto  # noqa: PLC0415

    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(
            f"trailguard's emulator fixes were written for moto {MOTO_VERSION}, found {moto.__version__}: "
            "run the canary (tests/emulator/test_fixes_canary.py) and update trailguard/emulator/fixes.py"
        )
    for fix in FIXES:
        if fix.name not in _applied:
            fix.apply()
            _applied.append(fix.name)
    _clear_model_caches()
    return list(_applied)


def probe_setup(name: str, client: Callable[[str], Any]) -> None:
    """What a probe needs outside its template (set through the API, so it works on unpatched moto too)."""
    if name == "s3-policy-conditions":
        client("s3").put_bucket_policy(Bucket="probe-tls-bucket", Policy=json.dumps(_TLS_ONLY))
    if name == "lambda-function-properties":
        s3 = client("s3")
        s3.create_bucket(Bucket=_FN_BUCKET)
        s3.put_object(Bucket=_FN_BUCKET, Key="layer.zip", Body=_empty_zip())


def _empty_zip() -> bytes:
    import io  # noqa: PLC0415
    import zipfile  # noqa: PLC0415

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("python/probe.py", "")
    return buf.getvalue()


def run_probes(*, patched: bool) -> dict[str, bool]:
    """Deploy each probe's template into in-process moto; {fix name: gap closed?}. Use a fresh interpreter."""
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    if patched:
        apply_all()
    out: dict[str, bool] = {}
    for fix in FIXES:
        with mock_aws():

            def client(service: str) -> Any:
                session: Any = boto3.session.Session()
                return session.client(service, region_name="us-east-1")

            stack = f"probe-{fix.name}"
            if fix.name == "lambda-function-properties":
                probe_setup(fix.name, client)
            template: dict[str, Any] = {"Resources": dict(fix.probe.resources)}
            if fix.name in PROBE_OUTPUTS:
                template["Outputs"] = PROBE_OUTPUTS[fix.name]
            try:
                client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(template))
                if fix.name == "s3-policy-conditions":
                    probe_setup(fix.name, client)
                out[fix.name] = bool(fix.probe.check(client, stack))
            except Exception:
                out[fix.name] = False
    return out


if __name__ == "__main__":  # pragma: no cover - used by the canary test in a fresh interpreter
    import sys

    print(json.dumps(run_probes(patched=sys.argv[1:] == ["--patched"])))
