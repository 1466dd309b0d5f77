"""Attacks on trailguard itself (issue #12), each played end to end through the engine's evaluation.

Every attack is the CloudTrail record an attacker's successful call produces, wrapped the way
EventBridge delivers it and judged by the real catalog through ``Evaluator``: the code path the
engine, the log-file reconciliation and ``trailguard replay`` share (pattern index, decision,
safety policy). The runtime config names one deployment role, as a real deployment does.

* ``test_attack_is_caught``: each attack must raise a CRITICAL self-protection finding;
* ``test_deployment_pipeline_is_not_tampering`` / ``test_lookalike_is_not_trailguard``: the
  deployment role, and resources that only look like trailguard's, must not;
* ``test_every_resource_the_stacks_name_is_protected``: the naming conventions the decisions use
  are read back from the synthesized templates, so renaming a resource in a stack without
  teaching the decisions fails here, not in production;
* ``test_disabled_central_rule_is_enabled_again``: the one reversible attack, in moto, through
  ``Engine.process`` and the member role: the rule is enabled again and nothing else changes.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import pytest
from frozen_clock import FrozenClock
from moto import mock_aws
from trailguard_engine import clients
from trailguard_engine.catalog import load_catalog, rules_by_id
from trailguard_engine.clients import ClientFactory
from trailguard_engine.engine import Engine
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.model import EventResult, Finding
from trailguard_engine.notify import Notifier
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.settings import Runtime

ACCOUNT = "111122223333"
ENGINE_ACCOUNT = "123456789012"
REGION = "us-east-1"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-{REGION}"
CFG = RuntimeConfig(deployment_role_arns=frozenset({DEPLOY_ROLE}))
EVALUATOR = Evaluator(cfg=CFG)
RULES = rules_by_id()

CENTRAL_BUS_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/trailguard-central"
ENGINE_FN = "TrailguardDetection-Engine7B56DDA2-Qx3Lk9Rt2VbN"
RECONCILE_FN = "TrailguardDetection-ReconcileD51D4F4F-8HcWm1ZpY0aS"
STACKSET_ID = "trailguard-member:6f1c1d6e-51e1-4b8a-9d1e-7a3c2b1f0e9d"
MEMBER_STACK = "StackSet-trailguard-member-0c0f7e4a-3f51-4a51-9a9e-5b0e3c1d2a4f"


# --------------------------------------------------------------------------- #
# Who calls
# --------------------------------------------------------------------------- #


def role_identity(role: str, session: str, *, account: str = ACCOUNT, **extra: Any) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROA3EXAMPLE{abs(hash(role)) % 10**8:08d}:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": "ASIA3EXAMPLEKEY00001",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROA3EXAMPLE",
                "arn": f"arn:aws:iam::{account}:role/{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {"creationDate": "2026-10-01T11:40:00Z", "mfaAuthenticated": "false"},
        },
        **extra,
    }


ATTACKER = role_identity("Admin", "mallory")
#: An attacker who runs their own stack: CloudFormation calls with the attacker's credentials.
ATTACKER_VIA_CFN = role_identity("Admin", "AWSCloudFormation", invokedBy="cloudformation.amazonaws.com")
#: A CI role with an SDK user agent: not a "person", still not the deployment pipeline.
OTHER_PIPELINE = role_identity("github-deploy-apps", "GitHubActions")
DEPLOYER = role_identity(f"cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-{REGION}", "AWSCloudFormation")
DEPLOYER_VIA_CFN = role_identity(
    f"cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-{REGION}", "AWSCloudFormation", invokedBy="cloudformation.amazonaws.com"
)


def envelope(
    service: str,
    name: str,
    request: Mapping[str, Any] | None,
    *,
    identity: Mapping[str, Any] = ATTACKER,
    response: Mapping[str, Any] | None = None,
    account: str = ACCOUNT,
    region: str = REGION,
    error_code: str | None = None,
) -> dict[str, Any]:
    """The EventBridge envelope of one successful (unless ``error_code``) API call's CloudTrail record."""
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{service}/{name}/{json.dumps(request, sort_keys=True)}"))
    detail: dict[str, Any] = {
        "eventVersion": "1.10",
        "userIdentity": dict(identity),
        "eventTime": "2026-10-01T12:00:00Z",
        "eventSource": f"{service}.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": identity.get("invokedBy") or "203.0.113.10",
        "userAgent": identity.get("invokedBy") or "Boto3/1.35.30 md/Botocore#1.35.30 ua/2.0 os/linux",
        "requestParameters": dict(request) if request is not None else None,
        "responseElements": dict(response) if response is not None else None,
        "requestID": str(uuid.uuid5(uuid.NAMESPACE_URL, event_id)),
        "eventID": event_id,
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error_code:
        detail["errorCode"] = error_code
        detail["errorMessage"] = "not authorized"
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "envelope/" + event_id)),
        "detail-type": "AWS API Call via CloudTrail",
        "source": f"aws.{service}",
        "account": account,
        "time": "2026-10-01T12:00:00Z",
        "region": region,
        "resources": [],
        "detail": detail,
    }


def caught(result: EventResult) -> list[Finding]:
    """Findings that alert or act, CRITICAL, from a self-protection rule."""
    return [
        f
        for f in result.findings
        if f.decision in ("alert", "remediate")
        and f.severity == "CRITICAL"
        and RULES[f.rule].category == "self-protection"
    ]


def acted_on(result: EventResult) -> list[Finding]:
    return [f for f in result.findings if f.decision in ("alert", "remediate")]


STOP_LOGGING_PATTERN = json.dumps(RULES["cloudtrail-stop-logging"].event_pattern)

# --------------------------------------------------------------------------- #
# Attacks
# --------------------------------------------------------------------------- #

ATTACKS: dict[str, dict[str, Any]] = {
    # ---- EventBridge: central rules, forwarding rules, the drift schedule ----------------------
    "disable-central-rule-named-by-arn": envelope(
        "events",
        "DisableRule",
        {"name": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/trailguard-central/tg-cloudtrail-stop-logging"},
    ),
    "putrule-disables-central-rule": envelope(
        "events",
        "PutRule",
        {
            "name": "tg-cloudtrail-stop-logging",
            "eventBusName": "trailguard-central",
            "eventPattern": STOP_LOGGING_PATTERN,
            "state": "DISABLED",
        },
    ),
    "putrule-neuters-central-pattern": envelope(
        "events",
        "PutRule",
        {
            "name": "tg-cloudtrail-stop-logging",
            "eventBusName": CENTRAL_BUS_ARN,
            "eventPattern": json.dumps({"source": ["aws.cloudtrail"], "detail-type": ["never"]}),
            "state": "ENABLED",
        },
    ),
    "puttargets-retargets-central-rule": envelope(
        "events",
        "PutTargets",
        {
            "rule": "tg-cloudtrail-stop-logging",
            "eventBusName": "trailguard-central",
            "targets": [{"id": "engine", "arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:noop"}],
        },
    ),
    "puttargets-retargets-forwarder": envelope(
        "events",
        "PutTargets",
        {
            "rule": "trailguard-forward-0",
            "targets": [{"id": "central-bus", "arn": "arn:aws:events:us-east-1:444455556666:event-bus/sink"}],
        },
    ),
    "disable-forwarder-through-attackers-own-stack": envelope(
        "events", "DisableRule", {"name": "trailguard-forward-0"}, identity=ATTACKER_VIA_CFN
    ),
    "delete-drift-schedule": envelope(
        "events", "DeleteRule", {"name": "TrailguardDetection-DriftSchedule0B9D0FD2-1XK2ZP0Q7M3N", "force": False}
    ),
    # ---- SSM: the run-time configuration ---------------------------------------------------------
    "put-config-without-leading-slash": envelope(
        "ssm", "PutParameter", {"name": "trailguard/runtime-config", "type": "String", "overwrite": True}
    ),
    "put-config-named-by-arn": envelope(
        "ssm",
        "PutParameter",
        {
            "name": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/trailguard/runtime-config",
            "type": "String",
            "overwrite": True,
        },
    ),
    "delete-config-in-a-list": envelope(
        "ssm",
        "DeleteParameters",
        {"names": ["/app/orders/db-host", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/trailguard/runtime-config"]},
    ),
    "put-config-is-critical": envelope(
        "ssm", "PutParameter", {"name": "/trailguard/runtime-config", "type": "String", "overwrite": True}
    ),
    # ---- Lambda: the engine, reconcile and drift functions --------------------------------------
    "engine-throttled-to-zero": envelope(
        "lambda", "PutFunctionConcurrency20171031", {"functionName": ENGINE_FN, "reservedConcurrentExecutions": 0}
    ),
    "engine-deleted-by-arn": envelope(
        "lambda", "DeleteFunction20150331", {"functionName": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{ENGINE_FN}"}
    ),
    "engine-config-parameter-redirected-by-ci-role": envelope(
        "lambda",
        "UpdateFunctionConfiguration20150331v2",
        {"functionName": ENGINE_FN, "environment": {}},
        identity=OTHER_PIPELINE,
    ),
    "reconcile-code-replaced-by-partial-arn": envelope(
        "lambda",
        "UpdateFunctionCode20150331v2",
        {"functionName": f"{ACCOUNT}:function:{RECONCILE_FN}", "publish": False},
        identity=OTHER_PIPELINE,
    ),
    "engine-invoke-permission-removed": envelope(
        "lambda",
        "RemovePermission20150331v2",
        {"functionName": ENGINE_FN, "statementId": "TrailguardDetection-CentralRulesInvokeEngine"},
    ),
    "reconcile-trigger-disabled": envelope(
        "lambda",
        "UpdateEventSourceMapping20150331",
        {"uUID": "a1b2c3d4-0000-4000-8000-000000000001", "enabled": False},
        response={
            "uUID": "a1b2c3d4-0000-4000-8000-000000000001",
            "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{RECONCILE_FN}",
            "eventSourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:trailguard-reconcile",
            "state": "Disabling",
        },
    ),
    # ---- CloudFormation: the member StackSet, its instances, the app's stacks --------------------
    "stackset-instances-deleted": envelope(
        "cloudformation",
        "DeleteStackInstances",
        {"stackSetName": "trailguard-member", "accounts": ["444455556666"], "regions": [REGION], "retainStacks": False},
    ),
    "stackset-instances-deleted-by-id": envelope(
        "cloudformation",
        "DeleteStackInstances",
        {"stackSetName": STACKSET_ID, "deploymentTargets": {"organizationalUnitIds": ["ou-abcd-11111111"]}},
    ),
    "member-stack-instance-deleted-in-member": envelope(
        "cloudformation", "DeleteStack", {"stackName": MEMBER_STACK}, account="444455556666"
    ),
    "detection-stack-updated-through-the-deployment-role": envelope(
        "cloudformation",
        "UpdateStack",
        {"stackName": "TrailguardDetection", "roleARN": DEPLOY_ROLE, "usePreviousTemplate": False},
    ),
    # ---- IAM: the member role -----------------------------------------------------------------
    "remediation-role-deleted": envelope("iam", "DeleteRole", {"roleName": "trailguard-remediation"}),
    "remediation-policy-detached": envelope(
        "iam",
        "DetachRolePolicy",
        {
            "roleName": "trailguard-remediation",
            "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/{MEMBER_STACK[:40]}-RemediationPolicy-1A2B3C",
        },
    ),
    "remediation-role-trust-given-to-attacker": envelope(
        "iam",
        "UpdateAssumeRolePolicy",
        {
            "roleName": "trailguard-remediation",
            "policyDocument": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Admin"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        },
    ),
    "remediation-role-in-other-case": envelope(
        "iam", "DeleteRolePolicy", {"roleName": "Trailguard-Remediation", "policyName": "inline"}
    ),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_is_caught(attack: str) -> None:
    result = EVALUATOR.evaluate(copy.deepcopy(ATTACKS[attack]))
    assert caught(result), [f.to_json() for f in result.findings]


# --------------------------------------------------------------------------- #
# Not attacks
# --------------------------------------------------------------------------- #

BENIGN: dict[str, dict[str, Any]] = {
    "pipeline-disables-forwarder": envelope(
        "events", "DisableRule", {"name": "trailguard-forward-0"}, identity=DEPLOYER
    ),
    "pipeline-redefines-central-rule-through-cloudformation": envelope(
        "events",
        "PutRule",
        {
            "name": "tg-cloudtrail-stop-logging",
            "eventBusName": "trailguard-central",
            "eventPattern": json.dumps({"source": ["aws.cloudtrail"]}),
            "state": "ENABLED",
        },
        identity=DEPLOYER_VIA_CFN,
    ),
    "pipeline-writes-config": envelope(
        "ssm", "PutParameter", {"name": "/trailguard/runtime-config", "overwrite": True}, identity=DEPLOYER_VIA_CFN
    ),
}

LOOKALIKES: dict[str, dict[str, Any]] = {
    "rule-named-trailguard-copy": envelope("events", "DisableRule", {"name": "trailguard-copy"}),
    "rule-named-trailguard-forwarder-on-default-bus": envelope(
        "events", "RemoveTargets", {"rule": "trailguard-forwarder", "ids": ["central-bus"]}
    ),
    "bus-named-like-the-central-bus": envelope(
        "events", "DisableRule", {"name": "nightly", "eventBusName": "my-trailguard-central"}
    ),
}


@pytest.mark.parametrize("case", sorted(BENIGN))
def test_deployment_pipeline_is_not_tampering(case: str) -> None:
    result = EVALUATOR.evaluate(copy.deepcopy(BENIGN[case]))
    assert not acted_on(result), [f.to_json() for f in result.findings]


@pytest.mark.parametrize("case", sorted(LOOKALIKES))
def test_lookalike_is_not_trailguard(case: str) -> None:
    """No self-protection rule acts on a lookalike (a general rule, e.g. any rule disabled, may still alert)."""
    result = EVALUATOR.evaluate(copy.deepcopy(LOOKALIKES[case]))
    own = [f for f in acted_on(result) if RULES[f.rule].category == "self-protection"]
    assert not own, [f.to_json() for f in result.findings]
    assert all(f.decision != "remediate" for f in result.findings)


# --------------------------------------------------------------------------- #
# The names the stacks produce
# --------------------------------------------------------------------------- #

#: CloudFormation names an unnamed resource ``<stack>-<logical id>-<random>``, at most 64 characters.
RANDOM_SUFFIX = "1A2B3C4D5E6F"


def generated_name(stack: str, logical_id: str) -> str:
    return f"{stack}-{logical_id}"[: 64 - len(RANDOM_SUFFIX) - 1] + "-" + RANDOM_SUFFIX


def deployed_stacks(synth: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(stack name as deployed, template) of every stack, StackSet instances included.

    A StackSet's template is its ``TemplateBody``; CloudFormation names each instance's stack
    ``StackSet-<StackSet name>-<uuid>`` in the member accounts.
    """
    for name, template in synth.templates.items():
        yield name, template
        for res in template.get("Resources", {}).values():
            if res.get("Type") == "AWS::CloudFormation::StackSet":
                yield MEMBER_STACK, json.loads(res["Properties"]["TemplateBody"])


def resolved(value: Any, template: dict[str, Any]) -> str:
    """A name property as deployed in ACCOUNT/REGION (Fn::Join of pseudo parameters, Refs to named resources)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return str(sep).join(resolved(p, template) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}
        if value["Ref"] in pseudo:
            return pseudo[value["Ref"]]
        target = template.get("Resources", {}).get(value["Ref"], {}).get("Properties", {})
        if "Name" in target:
            return resolved(target["Name"], template)
    raise AssertionError(f"cannot resolve the name {value!r}: teach this test the new form")


def physical_name(stack: str, template: dict[str, Any], logical_id: str, key: str) -> str:
    """The name a resource gets: its name property resolved, or the one CloudFormation generates."""
    props = template["Resources"][logical_id].get("Properties", {})
    return resolved(props[key], template) if key in props else generated_name(stack, logical_id)


def protected_resources(synth: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(description, an attacker's call on it) for every resource of trailguard's stacks that has a name."""
    for stack, template in deployed_stacks(synth):
        yield f"stack {stack}", envelope("cloudformation", "DeleteStack", {"stackName": stack})

        for lid, res in template.get("Resources", {}).items():
            props = res.get("Properties", {})
            kind = res.get("Type")

            if kind == "AWS::Lambda::Function":
                name = physical_name(stack, template, lid, "FunctionName")
                yield f"function {name}", envelope("lambda", "DeleteFunction20150331", {"functionName": name})
            elif kind == "AWS::Events::Rule":
                name = physical_name(stack, template, lid, "Name")
                bus = resolved(props.get("EventBusName", "default"), template)
                yield f"rule {bus}/{name}", envelope("events", "DisableRule", {"name": name, "eventBusName": bus})
            elif kind == "AWS::IAM::Role":
                name = physical_name(stack, template, lid, "RoleName")
                yield f"role {name}", envelope("iam", "DeleteRole", {"roleName": name})
            elif kind == "AWS::IAM::ManagedPolicy":
                arn = f"arn:aws:iam::{ACCOUNT}:policy/{physical_name(stack, template, lid, 'ManagedPolicyName')}"
                yield f"policy {arn}", envelope("iam", "CreatePolicyVersion", {"policyArn": arn, "setAsDefault": True})
            elif kind == "AWS::SSM::Parameter":
                name = physical_name(stack, template, lid, "Name")
                yield f"parameter {name}", envelope("ssm", "DeleteParameter", {"name": name})
            elif kind == "AWS::CloudFormation::StackSet":
                name = physical_name(stack, template, lid, "StackSetName")
                yield (
                    f"stackset {name}",
                    envelope("cloudformation", "DeleteStackInstances", {"stackSetName": name, "regions": [REGION]}),
                )


@pytest.mark.parametrize("mode", ["standalone", "organization"])
def test_every_resource_the_stacks_name_is_protected(mode: str, request: pytest.FixtureRequest) -> None:
    synth = request.getfixturevalue(mode)
    missed = []
    kinds = set()
    for what, attack in protected_resources(synth):
        kinds.add(what.split(" ", 1)[0])
        if not caught(EVALUATOR.evaluate(attack)):
            missed.append(what)
    assert {"stack", "function", "rule", "role", "policy", "parameter"} <= kinds
    assert not missed, "\n".join(sorted(set(missed)))


# --------------------------------------------------------------------------- #
# The reversible attack, in moto: DisableRule on a central rule -> EnableRule
# --------------------------------------------------------------------------- #


def _central_rule(events: Any, rule_id: str, engine_arn: str) -> None:
    events.put_rule(
        Name=f"tg-{rule_id}",
        EventBusName="trailguard-central",
        EventPattern=json.dumps(RULES[rule_id].event_pattern),
        State="ENABLED",
        Description=f"trailguard CRITICAL: {RULES[rule_id].title}",
    )
    events.put_targets(
        Rule=f"tg-{rule_id}",
        EventBusName="trailguard-central",
        Targets=[{"Id": "engine", "Arn": engine_arn}],
    )


def _snapshot(events: Any) -> dict[str, Any]:
    out = {}
    for r in events.list_rules(EventBusName="trailguard-central")["Rules"]:
        d = events.describe_rule(Name=r["Name"], EventBusName="trailguard-central")
        targets = events.list_targets_by_rule(Rule=r["Name"], EventBusName="trailguard-central")["Targets"]
        out[r["Name"]] = {k: d.get(k) for k in ("State", "EventPattern", "Description")} | {"Targets": targets}
    return out


@pytest.fixture
def member_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """IAM actions of every call made through the member role (the least-privilege check)."""
    calls: list[str] = []
    real = clients.new_client

    def recording(service: str, *, region: str, credentials: dict[str, str] | None = None) -> Any:
        c = real(service, region=region, credentials=credentials)
        if credentials is not None:
            c.meta.events.register(
                "before-call", lambda model, **_: calls.append(f"{model.service_model.signing_name}:{model.name}")
            )
        return c

    monkeypatch.setattr(clients, "new_client", recording)
    return calls


@pytest.fixture
def moto_engine(monkeypatch: pytest.MonkeyPatch, member_calls: list[str]) -> Iterator[tuple[Engine, Runtime, Any]]:
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        topic = boto3.client("sns", region_name=REGION).create_topic(Name="trailguard-alerts")["TopicArn"]
        factory = ClientFactory(engine_region=REGION, role_name="trailguard-remediation")
        engine = Engine(
            factory=factory,
            notifier=Notifier(factory=factory, topic_arn=topic, engine_account=ENGINE_ACCOUNT),
            idempotency=None,
            limiter=None,
            clock=FrozenClock(),
            rules=load_catalog(),
        )
        runtime = Runtime(
            cfg=RuntimeConfig(
                deployment_role_arns=frozenset({DEPLOY_ROLE}),
                rule_modes={"eventbridge-rule-tampered": "remediate"},
                security_hub_findings=False,
            )
        )
        creds = boto3.client("sts", region_name=REGION).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/Admin", RoleSessionName="mallory"
        )["Credentials"]
        admin = boto3.client(
            "events",
            region_name=REGION,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        yield engine, runtime, admin


@pytest.mark.parametrize("how", ["DisableRule", "PutRule"])
def test_disabled_central_rule_is_enabled_again(
    how: str, moto_engine: tuple[Engine, Runtime, Any], member_calls: list[str]
) -> None:
    engine, runtime, events = moto_engine
    engine_arn = f"arn:aws:lambda:{REGION}:{ENGINE_ACCOUNT}:function:{ENGINE_FN}"
    events.create_event_bus(Name="trailguard-central")
    for rid in ("cloudtrail-stop-logging", "cloudtrail-delete-trail"):
        _central_rule(events, rid, engine_arn)
    safe = _snapshot(events)

    name = "tg-cloudtrail-stop-logging"
    if how == "DisableRule":
        events.disable_rule(Name=name, EventBusName=CENTRAL_BUS_ARN)
        request = {"name": name, "eventBusName": CENTRAL_BUS_ARN}
    else:
        events.put_rule(
            Name=name, EventBusName="trailguard-central", EventPattern=STOP_LOGGING_PATTERN, State="DISABLED"
        )
        request = {
            "name": name,
            "eventBusName": "trailguard-central",
            "eventPattern": STOP_LOGGING_PATTERN,
            "state": "DISABLED",
        }
    attacked = _snapshot(events)
    assert attacked[name]["State"] == "DISABLED"

    out = engine.process(envelope("events", how, request), "eventbridge-rule-tampered", runtime)

    [finding] = out["findings"]
    assert finding["decision"] == "remediate", finding
    assert finding["status"] == "remediated", finding
    assert finding["changes"] == [f"events:EnableRule trailguard-central/{name}"]
    expected = copy.deepcopy(attacked)
    expected[name]["State"] = "ENABLED"
    assert _snapshot(events) == expected  # enabled again; pattern, description, targets, the other rule untouched
    if how == "DisableRule":
        assert _snapshot(events) == safe
    spec = RULES["eventbridge-rule-tampered"].remediation
    assert spec is not None
    assert member_calls and set(member_calls) <= set(spec.permissions), member_calls

    again = engine.process(envelope("events", how, request), "eventbridge-rule-tampered", runtime)
    assert again["findings"][0]["status"] == "already_safe"  # re-reads live state: a late duplicate changes nothing
