"""Self-protection decisions (issue #12): names parsed by meaning, the pipeline trusted by exact role ARN.

The patterns select broadly; these cases get past a pattern (or reach the decision through
replay) and must still be judged by meaning: a name that merely looks like trailguard's is not,
every spelling the API accepts of one that is, is.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.decisions.self_protection import (
    FunctionRef,
    RuleRef,
    bus_name,
    function_ref,
    parse_arn,
    rule_ref,
    ssm_parameter_name,
    stack_name,
    stack_set_name,
)
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
DEPLOY = f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-us-east-1"
CFG = RuntimeConfig(deployment_role_arns=frozenset({DEPLOY}))
ENGINE_FN = "TrailguardDetection-Engine7B56DDA2-Qx3Lk9Rt2VbN"
SELF_PROTECTION = (
    "eventbridge-rule-tampered",
    "trailguard-config-tampered",
    "trailguard-function-tampered",
    "trailguard-role-tampered",
    "trailguard-stack-tampered",
)

Judge = Callable[..., Assessment]


def role(arn_role: str, *, account: str = ACCOUNT, invoked_by: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{account}:assumed-role/{arn_role.rsplit('/', 1)[-1]}/s",
        "accountId": account,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{account}:role/{arn_role}"}},
    }
    if invoked_by:
        out["invokedBy"] = invoked_by
    return out


@pytest.fixture
def judge(ev: Callable[..., CloudTrailEvent], run: Callable[..., Assessment]) -> Judge:
    """``judge(rule_id, eventName, request, response=None, identity=None)`` with the deployment role configured."""
    sources = {
        "eventbridge-rule-tampered": "events.amazonaws.com",
        "trailguard-config-tampered": "ssm.amazonaws.com",
        "trailguard-function-tampered": "lambda.amazonaws.com",
        "trailguard-role-tampered": "iam.amazonaws.com",
        "trailguard-stack-tampered": "cloudformation.amazonaws.com",
    }

    def _judge(rule_id: str, name: str, request: Any, response: Any = None, **kw: Any) -> Assessment:
        return run(rule_id, ev(name, request, response, source=sources[rule_id], **kw), CFG)

    return _judge


# --------------------------------------------------------------------------- #
# Parsers
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("raw", "bus"),
    [
        (None, "default"),
        ("", "default"),
        ("trailguard-central", "trailguard-central"),
        (f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/trailguard-central", "trailguard-central"),
        ("arn:aws:events:us-east-1:1:event-bus/trailguard-central", "trailguard-central"),  # malformed account
        (
            "arn:aws:sqs:us-east-1:111122223333:event-bus/trailguard-central",
            "arn:aws:sqs:us-east-1:111122223333:event-bus/trailguard-central",
        ),
    ],
)
def test_bus_name(raw: Any, bus: str) -> None:
    assert bus_name(raw) == bus


@pytest.mark.parametrize(
    ("name", "bus", "ref"),
    [
        ("tg-x", None, RuleRef("tg-x", "default")),
        ("tg-x", "trailguard-central", RuleRef("tg-x", "trailguard-central")),
        (
            f"arn:aws:events:us-east-1:{ACCOUNT}:rule/trailguard-central/tg-x",
            None,
            RuleRef("tg-x", "trailguard-central"),
        ),
        (
            f"arn:aws:events:us-east-1:{ACCOUNT}:rule/trailguard-forward-0",
            "ignored",
            RuleRef("trailguard-forward-0", "default"),
        ),
    ],
)
def test_rule_ref(name: str, bus: Any, ref: RuleRef) -> None:
    assert rule_ref(name, bus) == ref


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("/trailguard/runtime-config", "/trailguard/runtime-config"),
        ("trailguard/runtime-config", "/trailguard/runtime-config"),
        ("  /trailguard/runtime-config ", "/trailguard/runtime-config"),
        (f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/trailguard/runtime-config", "/trailguard/runtime-config"),
        (f"arn:aws-us-gov:ssm:us-gov-west-1:{ACCOUNT}:parameter/trailguard/x", "/trailguard/x"),
        (f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/flat", "flat"),
        ("/Trailguard/runtime-config", "/Trailguard/runtime-config"),  # SSM names are case-sensitive
        ("trailguard", "trailguard"),
    ],
)
def test_ssm_parameter_name(raw: str, name: str) -> None:
    assert ssm_parameter_name(raw) == name


@pytest.mark.parametrize(
    ("raw", "ref"),
    [
        (ENGINE_FN, FunctionRef(ENGINE_FN, "")),
        (f"{ENGINE_FN}:live", FunctionRef(ENGINE_FN, "live")),
        (f"{ACCOUNT}:function:{ENGINE_FN}", FunctionRef(ENGINE_FN, "")),
        (f"us-east-1:{ACCOUNT}:function:{ENGINE_FN}:$LATEST", FunctionRef(ENGINE_FN, "$LATEST")),
        (f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{ENGINE_FN}", FunctionRef(ENGINE_FN, "")),
        (f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{ENGINE_FN}:7", FunctionRef(ENGINE_FN, "7")),
        ("arn:aws:s3:::bucket", None),
        ("not a name", None),
    ],
)
def test_function_ref(raw: str, ref: FunctionRef | None) -> None:
    assert function_ref(raw) == ref


def test_stack_names() -> None:
    assert stack_set_name("trailguard-member:6f1c1d6e-51e1-4b8a-9d1e-7a3c2b1f0e9d") == "trailguard-member"
    assert stack_set_name("trailguard-member") == "trailguard-member"
    arn = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/TrailguardDetection/6f1c1d6e-51e1-4b8a-9d1e-7a3c2b1f0e9d"
    assert stack_name(arn) == "TrailguardDetection"
    assert stack_name("TrailguardDetection") == "TrailguardDetection"


def test_parse_arn() -> None:
    parsed = parse_arn(f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f:1")
    assert parsed is not None
    assert (parsed.service, parsed.resource) == ("lambda", "function:f:1")
    assert parse_arn("tg-x") is None
    assert parse_arn("arn:aws:broken") is None


# --------------------------------------------------------------------------- #
# Who may change trailguard
# --------------------------------------------------------------------------- #

DEPLOY_ROLE_NAME = DEPLOY.split(":role/", 1)[1]


@pytest.mark.parametrize(
    ("identity", "risky"),
    [
        (role(DEPLOY_ROLE_NAME), False),
        (role(DEPLOY_ROLE_NAME, invoked_by="cloudformation.amazonaws.com"), False),
        (role(DEPLOY_ROLE_NAME, account="444455556666"), True),  # same role name, another account
        (role(DEPLOY_ROLE_NAME.upper()), True),  # exact ARN, not a look-alike
        (role("Admin", invoked_by="cloudformation.amazonaws.com"), True),  # anyone can run a stack
        (role("stacksets-exec-0123456789abcdef0123456789abcdef"), True),  # anyone can create this role name
        ({"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/deploy", "accountId": ACCOUNT}, True),
    ],
)
@pytest.mark.parametrize("rule_id", SELF_PROTECTION)
def test_only_the_deployment_role_is_trusted(rule_id: str, identity: dict[str, Any], risky: bool) -> None:
    rule = rules_by_id()[rule_id]
    event = copy.deepcopy(rule.examples_positive[0])
    event["detail"]["userIdentity"] = identity
    a = registry()[rule.decision](CloudTrailEvent(event), rule, CFG)
    assert a.risky is risky, a.reason
    if not risky:
        assert DEPLOY in a.reason


# --------------------------------------------------------------------------- #
# EventBridge
# --------------------------------------------------------------------------- #

STOP_LOGGING = json.dumps(rules_by_id()["cloudtrail-stop-logging"].event_pattern)
ROOT_ACTIVITY = json.dumps(rules_by_id()["root-activity"].event_pattern)
RID = "eventbridge-rule-tampered"


@pytest.mark.parametrize(
    ("name", "request_parameters", "risky", "remediable"),
    [
        # by meaning: trailguard's naming conventions, exactly
        ("DisableRule", {"name": "tg-cloudtrail-stop-logging"}, False, None),  # tg- only on the central bus
        ("DisableRule", {"name": "trailguard-copy"}, False, None),
        ("DisableRule", {"name": "trailguard-forward-x"}, False, None),
        ("DisableRule", {"name": "trailguard-forward-3"}, True, False),  # intended state not known offline
        ("DisableRule", {"name": "StackSet-trailguard-member-0c0f7e4a-3f51-4a51-9a9e-Forward0-1A2B"}, True, False),
        ("DisableRule", {"name": "TrailguardDetection-DriftSchedule0B9D0FD2-1XK2"}, True, False),
        ("DisableRule", {"name": "tg-cloudtrail-stop-logging", "eventBusName": "trailguard-central"}, True, True),
        ("DisableRule", {"name": "tg-root-activity", "eventBusName": "trailguard-central"}, True, False),
        ("DisableRule", {"name": "exfil", "eventBusName": "trailguard-central"}, True, False),
        ("DeleteRule", {"name": "tg-cloudtrail-stop-logging", "eventBusName": "trailguard-central"}, True, False),
        ("RemoveTargets", {"rule": "trailguard-forward-0", "ids": ["central-bus"]}, True, False),
        ("PutTargets", {"rule": "exfil", "eventBusName": "trailguard-central", "targets": []}, True, False),
        # PutRule: by meaning of pattern and state
        (
            "PutRule",
            {"name": "tg-cloudtrail-stop-logging", "eventBusName": "trailguard-central", "eventPattern": STOP_LOGGING},
            False,
            None,
        ),
        (
            "PutRule",
            {
                "name": "tg-cloudtrail-stop-logging",
                "eventBusName": "trailguard-central",
                "eventPattern": STOP_LOGGING,
                "state": "DISABLED",
            },
            True,
            True,
        ),
        (
            "PutRule",
            {
                "name": "tg-cloudtrail-stop-logging",
                "eventBusName": "trailguard-central",
                "eventPattern": ROOT_ACTIVITY,
                "state": "DISABLED",
            },
            True,
            False,  # its pattern changed too: EnableRule would not restore it
        ),
        (
            "PutRule",
            {"name": "tg-root-activity", "eventBusName": "trailguard-central", "eventPattern": ROOT_ACTIVITY},
            True,  # ENABLED drops the read-only events it must see
            False,
        ),
        (
            "PutRule",
            {
                "name": "tg-root-activity",
                "eventBusName": "trailguard-central",
                "eventPattern": ROOT_ACTIVITY,
                "state": "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS",
            },
            False,
            None,
        ),
        (
            "PutRule",
            {"name": "tg-cloudtrail-stop-logging", "eventBusName": "trailguard-central", "eventPattern": "{not json"},
            True,
            False,
        ),
        ("PutRule", {"name": "trailguard-forward-0", "eventPattern": "{}", "state": "ENABLED"}, True, False),
        # the bus
        ("DeleteEventBus", {"name": "my-trailguard-central"}, False, None),
        ("DeleteEventBus", {"name": "trailguard-central"}, True, False),
        ("RemovePermission", {"statementId": "OrganizationPutEvents"}, False, None),  # the default bus
        (
            "RemovePermission",
            {
                "statementId": "OrganizationPutEvents",
                "eventBusName": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/trailguard-central",
            },
            True,
            False,
        ),
        ("PutPermission", {"eventBusName": "trailguard-central", "policy": "{}"}, True, False),
    ],
)
def test_eventbridge(judge: Judge, name: str, request_parameters: dict[str, Any], risky: bool, remediable: Any) -> None:
    a = judge(RID, name, request_parameters)
    assert a.risky is risky, a.reason
    if risky:
        assert a.remediable is remediable, a.reason
        assert a.resource
    if risky and remediable:
        assert a.params == {"rule": request_parameters["name"], "event_bus": "trailguard-central"}


def test_eventbridge_reason_names_a_spoofed_cloudformation_caller(judge: Judge) -> None:
    a = judge(
        RID,
        "DisableRule",
        {"name": "trailguard-forward-0"},
        identity=role("Admin", invoked_by="cloudformation.amazonaws.com"),
    )
    assert a.risky
    assert "through CloudFormation (not a deployment role)" in a.reason


# --------------------------------------------------------------------------- #
# SSM
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("name", "request_parameters", "ids"),
    [
        ("PutParameter", {"name": "trailguard/runtime-config"}, "/trailguard/runtime-config"),
        ("PutParameter", {"name": " /trailguard/runtime-config"}, "/trailguard/runtime-config"),
        (
            "LabelParameterVersion",
            {"name": "/trailguard/runtime-config", "labels": ["x"]},
            "/trailguard/runtime-config",
        ),
        (
            "DeleteParameters",
            {
                "names": [
                    "/app/a",
                    "trailguard/runtime-config",
                    f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/trailguard/b",
                ]
            },
            "/trailguard/b,/trailguard/runtime-config",
        ),
        ("PutParameter", {"name": "/Trailguard/runtime-config"}, None),  # another parameter: names are case-sensitive
        ("PutParameter", {"name": "/app/trailguard/x"}, None),
        ("PutParameter", {"name": "/trailguard-archive/x"}, None),
        ("PutParameter", {"name": "trailguard"}, None),
        ("DeleteParameters", {"names": []}, None),
    ],
)
def test_parameter(judge: Judge, name: str, request_parameters: dict[str, Any], ids: str | None) -> None:
    a = judge("trailguard-config-tampered", name, request_parameters)
    assert a.risky is (ids is not None), a.reason
    if ids is not None:
        assert a.resource == {"type": "AWS::SSM::Parameter", "id": ids}


# --------------------------------------------------------------------------- #
# Lambda
# --------------------------------------------------------------------------- #

RECONCILE_QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:trailguard-reconcile"


@pytest.mark.parametrize(
    ("name", "request_parameters", "response", "words"),
    [
        (
            "PutFunctionConcurrency20171031",
            {"functionName": ENGINE_FN, "reservedConcurrentExecutions": 0},
            None,
            "throttled to zero",
        ),
        (
            "PutFunctionConcurrency20171031",
            {"functionName": ENGINE_FN, "reservedConcurrentExecutions": 5},
            None,
            "set to 5",
        ),
        ("DeleteFunctionConcurrency20171031", {"functionName": ENGINE_FN}, None, "storm cap"),
        ("DeleteFunction20150331", {"functionName": f"{ENGINE_FN}:$LATEST"}, None, "deleted"),
        ("DeleteFunction20150331", {"functionName": ENGINE_FN, "qualifier": "3"}, None, None),  # a version only
        ("UpdateFunctionCode20150331v2", {"functionName": f"{ACCOUNT}:function:{ENGINE_FN}"}, None, "code replaced"),
        (
            "UpdateFunctionConfiguration20150331v2",
            {"functionName": ENGINE_FN, "role": "r", "environment": {}},
            None,
            "environment, role",
        ),
        ("RemovePermission20150331v2", {"functionName": ENGINE_FN, "statementId": "s1"}, None, "RemovePermission s1"),
        ("PutFunctionEventInvokeConfig20190925", {"functionName": ENGINE_FN}, None, "PutFunctionEventInvokeConfig"),
        ("DeleteFunction20150331", {"functionName": "trailguard-copy"}, None, None),
        ("DeleteFunction20150331", {"functionName": "my-TrailguardDetection-Engine"}, None, None),
        (
            "UpdateEventSourceMapping20150331",
            {"uUID": "u1", "functionName": "attacker-fn"},
            {
                "uUID": "u1",
                "functionArn": "arn:aws:lambda:us-east-1:111122223333:function:attacker-fn",
                "eventSourceArn": RECONCILE_QUEUE,
            },
            "the function reading trailguard-reconcile",
        ),
        (
            "DeleteEventSourceMapping20150331",
            {"uUID": "u2"},
            {
                "uUID": "u2",
                "functionArn": "arn:aws:lambda:us-east-1:111122223333:function:app",
                "eventSourceArn": f"{RECONCILE_QUEUE}-x",
            },
            None,
        ),
    ],
)
def test_function(
    judge: Judge, name: str, request_parameters: dict[str, Any], response: Any, words: str | None
) -> None:
    a = judge("trailguard-function-tampered", name, request_parameters, response)
    assert a.risky is (words is not None), a.reason
    if words is not None:
        assert words in a.reason
        assert a.remediable is False


# --------------------------------------------------------------------------- #
# IAM
# --------------------------------------------------------------------------- #

MEMBER_POLICY = f"arn:aws:iam::{ACCOUNT}:policy/TrailguardMember-us-east-1-RemediationPolicy1A2B-3C4D"


@pytest.mark.parametrize(
    ("name", "request_parameters", "risky"),
    [
        ("DeleteRole", {"roleName": "TRAILGUARD-REMEDIATION"}, True),  # IAM names are case-insensitive
        ("DeleteRole", {"roleName": "trailguard-remediation-backup"}, False),
        ("DeleteRole", {"roleName": "trailguard-forward-us-east-1"}, True),
        ("DeleteRole", {"roleName": "trailguard-forward-copy"}, False),
        ("DeleteRole", {"roleName": "TrailguardTrail-CloudTrailCloudWatchLogsRo-1A2B3C"}, True),
        ("DeleteRole", {"roleName": "TrailguardDetectionCopy-x"}, False),
        ("PutRolePolicy", {"roleName": "trailguard-engine", "policyName": "deny-all"}, True),
        ("DetachRolePolicy", {"roleName": "app-role", "policyArn": MEMBER_POLICY}, False),
        ("CreatePolicyVersion", {"policyArn": MEMBER_POLICY, "setAsDefault": True}, True),
        ("DeletePolicy", {"policyArn": f"arn:aws:iam::{ACCOUNT}:policy/trailguard-copy-policy"}, False),
        ("DeleteRole", {}, False),
    ],
)
def test_role(judge: Judge, name: str, request_parameters: dict[str, Any], risky: bool) -> None:
    a = judge("trailguard-role-tampered", name, request_parameters)
    assert a.risky is risky, a.reason


# --------------------------------------------------------------------------- #
# CloudFormation
# --------------------------------------------------------------------------- #

INSTANCE = "StackSet-trailguard-member-0c0f7e4a-3f51-4a51-9a9e-5b0e3c1d2a4f"


@pytest.mark.parametrize(
    ("name", "request_parameters", "words"),
    [
        ("DeleteStackInstances", {"stackSetName": "trailguard-member-copy"}, None),
        ("UpdateStackSet", {"stackSetName": "trailguard-member"}, "updated"),
        ("DeleteStackSet", {"stackSetName": "trailguard-member"}, "deleted"),
        ("DeleteStackInstances", {"stackSetName": "trailguard-member", "retainStacks": True}, "stacks retained"),
        ("DeleteStack", {"stackName": INSTANCE}, "deleted"),
        (
            "UpdateStack",
            {"stackName": INSTANCE},
            None,
        ),  # the StackSet's own update; its resources are judged one by one
        (
            "DeleteStack",
            {"stackName": f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/TrailguardDetection/u"},
            "deleted",
        ),
        ("CreateChangeSet", {"stackName": "TrailguardTrail", "changeSetName": "x"}, "CreateChangeSet"),
        ("UpdateStack", {"stackName": "TrailguardMember-eu-west-1", "roleARN": DEPLOY}, f"service role {DEPLOY}"),
        ("DeleteStack", {"stackName": "TrailguardDetectionCopy"}, None),
        ("DeleteStack", {"stackName": "trailguarddetection"}, None),  # stack names are case-sensitive
    ],
)
def test_stack(judge: Judge, name: str, request_parameters: dict[str, Any], words: str | None) -> None:
    a = judge("trailguard-stack-tampered", name, request_parameters)
    assert a.risky is (words is not None), a.reason
    if words is not None:
        assert words in a.reason


# --------------------------------------------------------------------------- #
# Robustness: odd values anywhere never raise, and a remediable verdict always aims
# --------------------------------------------------------------------------- #

ODD: tuple[Any, ...] = (
    None,
    7,
    "x",
    "",
    [],
    {},
    [None, 1, "a"],
    True,
    {"items": "x"},
    "arn:",
    "arn:aws:events:::rule/",
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from _paths(v, (*prefix, i))


def _replaced(detail: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(detail)
    cur: Any = out
    for step in path[:-1]:
        cur = cur[step]
    cur[path[-1]] = value
    return out


@pytest.mark.parametrize("rule_id", SELF_PROTECTION)
def test_decision_never_raises_on_mutated_examples(rule_id: str) -> None:
    rule = rules_by_id()[rule_id]
    fn = registry()[rule.decision]
    calls = 0
    for example in rule.examples_positive:
        detail = example["detail"]
        for field in ("requestParameters", "responseElements", "userIdentity"):
            for path in _paths(detail.get(field), (field,)):
                for value in ODD:
                    a = fn(CloudTrailEvent({**example, "detail": _replaced(detail, path, value)}), rule, CFG)
                    assert isinstance(a, Assessment) and a.reason, (path, value)
                    if a.risky and a.remediable and rule.remediation is not None:
                        assert a.params, (path, value, a)
                    calls += 1
    assert calls > 50
