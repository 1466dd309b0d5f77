"""Check what a deployment really created, resource by resource and service by service.

Never trust the CLI's ✅ or a stack's CREATE_COMPLETE: after a failed ExecuteChangeSet the SDK retries
and the stack still reads CREATE_COMPLETE. Every resource of every template must have a physical
resource, and the services themselves must say what the templates asked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trailguard.emulator.deploy import StackInfo, stacks

CENTRAL_BUS = "trailguard-central"
TRAIL_NAME = "trailguard"
CIS_FILTERS = 15


@dataclass
class StackInventory:
    stack: str
    region: str
    expected: int
    missing: list[str] = field(default_factory=list)  # "LogicalId (Type)"


@dataclass
class Inventory:
    stacks: list[StackInventory]

    @property
    def resources(self) -> int:
        return sum(s.expected for s in self.stacks)

    @property
    def missing(self) -> list[str]:
        return [f"{s.stack}/{m}" for s in self.stacks for m in s.missing]

    def line(self) -> str:
        return f"deployed: {len(self.stacks)} stacks, {self.resources} resources, {len(self.missing)} missing"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


Clients = Callable[..., Any]  # client(service, region=...) -> boto3 client


def _condition(value: Any, conditions: Mapping[str, Any], region: str, account: str) -> Any:
    """Evaluate the condition functions our templates use (Equals, Not, And, Or, Condition, Ref pseudo params)."""
    if isinstance(value, Mapping) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            pseudo = {"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": "aws"}
            if arg not in pseudo:
                raise ValueError(f"condition Ref to {arg!r} is not a pseudo parameter")
            return pseudo[arg]
        if fn == "Condition":
            return _condition(conditions[arg], conditions, region, account)
        args = [_condition(a, conditions, region, account) for a in arg]
        if fn == "Fn::Equals":
            return args[0] == args[1]
        if fn == "Fn::Not":
            return not args[0]
        if fn == "Fn::And":
            return all(args)
        if fn == "Fn::Or":
            return any(args)
        raise ValueError(f"unsupported condition function {fn}")
    return value


def expected_resources(template: Mapping[str, Any], region: str, account: str) -> dict[str, str]:
    """Logical id -> type of every resource the template creates in ``region`` (conditions evaluated)."""
    conditions = template.get("Conditions") or {}
    out = {}
    for lid, res in (template.get("Resources") or {}).items():
        cond = res.get("Condition")
        if cond and not _condition(conditions[cond], conditions, region, account):
            continue
        out[lid] = str(res["Type"])
    return out


def inventory(assembly: Path, account: str, client: Clients) -> Inventory:
    """Every template resource against the emulator's ListStackResources: a physical id for each, or missing."""
    out = []
    for info in stacks(assembly):
        template = json.loads((assembly / info.template).read_text(encoding="utf-8"))
        expected = expected_resources(template, info.region, account)
        inv = StackInventory(info.name, info.region, len(expected))
        physical = _physical_ids(client, info)
        for lid, type_ in sorted(expected.items()):
            if not physical.get(lid):
                inv.missing.append(f"{lid} ({type_})")
        out.append(inv)
    return Inventory(out)


def _physical_ids(client: Clients, info: StackInfo) -> dict[str, str]:
    cfn = client("cloudformation", region=info.region)
    out: dict[str, str] = {}
    try:
        pages = cfn.get_paginator("list_stack_resources").paginate(StackName=info.name)
        for page in pages:
            for r in page["StackResourceSummaries"]:
                out[str(r.get("LogicalResourceId") or "")] = str(r.get("PhysicalResourceId") or "")
    except Exception:  # a stack that is not there has no resources: all of them are missing
        return {}
    return out


# --------------------------------------------------------------------------- #
# service-level checks
# --------------------------------------------------------------------------- #
def service_checks(client: Clients, *, home: str = "us-east-1") -> list[Check]:
    """What the services say about trailguard's own resources, as deployed (not as templated)."""
    checks: list[Callable[[Clients, str], Check]] = [
        _trail,
        _archive,
        _central_rules,
        _metric_filters,
        _table,
        _functions,
        _topic,
        _runtime_config,
    ]
    out = []
    for fn in checks:
        try:
            out.append(fn(client, home))
        except Exception as exc:  # a failed look-up is a failed check, with its reason
            out.append(Check(fn.__name__.strip("_").replace("_", " "), False, f"{type(exc).__name__}: {exc}"))
    return out


def _trail(client: Clients, home: str) -> Check:
    ct = client("cloudtrail", region=home)
    trails = ct.describe_trails(trailNameList=[TRAIL_NAME])["trailList"]
    if not trails:
        return Check("trail", False, f"no trail named {TRAIL_NAME}")
    t = trails[0]
    status = ct.get_trail_status(Name=TRAIL_NAME)
    problems = []
    if not status.get("IsLogging"):
        problems.append("not logging")
    if not t.get("LogFileValidationEnabled"):
        problems.append("no log file validation")
    if not t.get("KmsKeyId"):
        problems.append("no KMS key")
    if not t.get("IsMultiRegionTrail"):
        problems.append("not multi-region")
    if not t.get("CloudWatchLogsLogGroupArn"):
        problems.append("no CloudWatch Logs group")
    detail = f"{TRAIL_NAME}: logging, validation, KMS, multi-region, to {t.get('S3BucketName')}"
    return Check("trail", not problems, "; ".join(problems) or detail)


def _archive(client: Clients, home: str) -> Check:
    ct = client("cloudtrail", region=home)
    bucket = ct.describe_trails(trailNameList=[TRAIL_NAME])["trailList"][0]["S3BucketName"]
    s3 = client("s3", region=home)
    problems = []
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        problems.append("versioning off")
    bpa = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    if not all(bpa.values()):
        problems.append(f"Block Public Access incomplete {bpa}")
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    if rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] != "aws:kms":
        problems.append("not SSE-KMS")
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    principals = json.dumps([s.get("Principal") for s in policy["Statement"]])
    if "cloudtrail.amazonaws.com" not in principals:
        problems.append("bucket policy has no CloudTrail grant")
    if not s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled"):
        problems.append("no access logging")
    detail = f"{bucket}: versioned, BPA on, SSE-KMS, CloudTrail grant, access-logged"
    return Check("archive", not problems, "; ".join(problems) or detail)


def _central_rules(client: Clients, home: str) -> Check:
    events = client("events", region=home)
    rules = []
    for page in events.get_paginator("list_rules").paginate(EventBusName=CENTRAL_BUS):
        rules.extend(page["Rules"])
    if not rules:
        return Check("central rules", False, f"no rules on {CENTRAL_BUS}")
    no_target, no_dlq = [], []
    for r in rules:
        targets = events.list_targets_by_rule(Rule=r["Name"], EventBusName=CENTRAL_BUS)["Targets"]
        if not targets:
            no_target.append(r["Name"])
        elif not all(t.get("DeadLetterConfig", {}).get("Arn") for t in targets):
            no_dlq.append(r["Name"])
    problems = []
    if no_target:
        problems.append(f"{len(no_target)} without a target")
    if no_dlq:
        problems.append(f"{len(no_dlq)} without a DLQ")
    return Check(
        "central rules", not problems, "; ".join(problems) or f"{len(rules)} rules, each with a target and a DLQ"
    )


def _metric_filters(client: Clients, home: str) -> Check:
    logs = client("logs", region=home)
    group = f"/trailguard/cloudtrail/{TRAIL_NAME}"
    filters = logs.describe_metric_filters(logGroupName=group)["metricFilters"]
    cw = client("cloudwatch", region=home)
    alarms = cw.describe_alarms()["MetricAlarms"]
    alarmed = {a.get("MetricName") for a in alarms}
    metrics = [t["metricName"] for f in filters for t in f["metricTransformations"]]
    unalarmed = [m for m in metrics if m not in alarmed]
    ok = len(filters) == CIS_FILTERS and not unalarmed
    detail = f"{len(filters)} CIS metric filters on {group}, each with an alarm"
    if not ok:
        detail = f"{len(filters)} filters (expected {CIS_FILTERS}); without an alarm: {', '.join(unalarmed) or 'none'}"
    return Check("metric filters", ok, detail)


def _table(client: Clients, home: str) -> Check:
    ddb = client("dynamodb", region=home)
    names = [n for n in ddb.list_tables()["TableNames"] if "trailguard" in n.lower() or "state" in n.lower()]
    if len(names) != 1:
        return Check("state table", False, f"expected one state table, found {names}")
    name = names[0]
    table = ddb.describe_table(TableName=name)["Table"]
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    problems = []
    if table.get("SSEDescription", {}).get("Status") != "ENABLED":
        problems.append("not encrypted with KMS")
    if ttl.get("TimeToLiveStatus") != "ENABLED":
        problems.append("no TTL")
    return Check(
        "state table", not problems, "; ".join(problems) or f"{name}: KMS-encrypted, TTL on {ttl['AttributeName']}"
    )


def _functions(client: Clients, home: str) -> Check:
    lam = client("lambda", region=home)
    fns = [f for f in lam.list_functions()["Functions"] if f["FunctionName"].startswith("TrailguardDetection-")]
    if not fns:
        return Check("functions", False, "no trailguard functions")
    bad = [
        f["FunctionName"]
        for f in fns
        if f.get("Architectures") != ["arm64"] or not f.get("Layers") or f.get("Runtime") != "python3.12"
    ]
    detail = f"{len(fns)} functions, python3.12 on arm64, with the dependencies layer"
    return Check("functions", not bad, f"not arm64 with the layer: {', '.join(bad)}" if bad else detail)


def _topic(client: Clients, home: str) -> Check:
    sns = client("sns", region=home)
    arns = [t["TopicArn"] for t in sns.list_topics()["Topics"] if "Alert" in t["TopicArn"]]
    if not arns:
        return Check("alert topic", False, "no alert topic")
    attrs = sns.get_topic_attributes(TopicArn=arns[0])["Attributes"]
    ok = bool(attrs.get("KmsMasterKeyId")) and bool(attrs.get("Policy"))
    return Check("alert topic", ok, "KMS-encrypted, with its topic policy" if ok else f"attributes: {sorted(attrs)}")


def _runtime_config(client: Clients, home: str) -> Check:
    value = client("ssm", region=home).get_parameter(Name="/trailguard/runtime-config")["Parameter"]["Value"]
    doc = json.loads(value)
    mode = "dry-run" if doc.get("dry_run") else "live"
    return Check(
        "runtime config", True, f"/trailguard/runtime-config: {mode}, {len(doc.get('rule_modes', {}))} mode overrides"
    )
