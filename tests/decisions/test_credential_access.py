"""Per-event decisions of the credential-access threshold rules: what qualifies and which resources it counts."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.evaluate import decide
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.model import Finding, Rule
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import ITEMS_PARAM

RULES = rules_by_id()
SECRETS = RULES["secretsmanager-secrets-bulk-read"]
SSM = RULES["ssm-parameters-decrypted-bulk-read"]
PASSWORD = RULES["ec2-password-data-read"]
USERDATA = RULES["ec2-userdata-bulk-read"]


def _with(rule: Rule, name: str, request: Any, **detail: Any) -> dict[str, Any]:
    env = copy.deepcopy(rule.examples_positive[0])
    env["detail"]["eventName"] = name
    env["detail"]["requestParameters"] = request
    env["detail"].update(detail)
    return env


def _judge(rule: Rule, env: dict[str, Any]) -> Finding:
    return decide(CloudTrailEvent(to_envelope(env)), rule, RuntimeConfig())


def _items(f: Finding) -> list[str]:
    return list(f.params.get(ITEMS_PARAM) or [])


def test_get_secret_value_counts_its_secret() -> None:
    f = _judge(SECRETS, _with(SECRETS, "GetSecretValue", {"secretId": "prod/db", "versionStage": "AWSCURRENT"}))
    assert (f.decision, _items(f)) == ("alert", ["prod/db"])
    f = _judge(SECRETS, _with(SECRETS, "GetSecretValue", None))
    assert f.decision == "alert" and _items(f)[0].startswith("unnamed:")


def test_batch_counts_each_id_or_a_full_page_for_filters() -> None:
    f = _judge(SECRETS, _with(SECRETS, "BatchGetSecretValue", {"secretIdList": ["a", "b", "a"]}))
    assert _items(f) == ["a", "b"]
    filters = {"filters": [{"key": "tag-key", "values": ["env"]}]}
    assert len(_items(_judge(SECRETS, _with(SECRETS, "BatchGetSecretValue", filters)))) == 20
    assert len(_items(_judge(SECRETS, _with(SECRETS, "BatchGetSecretValue", {**filters, "maxResults": 4})))) == 4
    assert len(_items(_judge(SECRETS, _with(SECRETS, "BatchGetSecretValue", {**filters, "maxResults": 500})))) == 20


def test_aws_service_identity_and_other_calls_do_not_qualify() -> None:
    env = _with(SECRETS, "GetSecretValue", {"secretId": "x"})
    env["detail"]["userIdentity"] = {"type": "AWSService", "invokedBy": "ecs-tasks.amazonaws.com"}
    assert _judge(SECRETS, env).decision == "skip"
    assert _judge(SECRETS, _with(SECRETS, "DescribeSecret", {"secretId": "x"})).decision == "skip"


@pytest.mark.parametrize("flag", [True, "true", "TRUE"])
def test_ssm_reads_with_decryption_qualify(flag: Any) -> None:
    f = _judge(SSM, _with(SSM, "GetParameter", {"name": "/a", "withDecryption": flag}))
    assert (f.decision, _items(f)) == ("alert", ["/a"])
    f = _judge(SSM, _with(SSM, "GetParameters", {"names": ["/a", "/b"], "withDecryption": flag}))
    assert _items(f) == ["/a", "/b"]
    f = _judge(SSM, _with(SSM, "GetParameterHistory", {"name": "/k", "withDecryption": flag}))
    assert (f.decision, _items(f)) == ("alert", ["/k"])


@pytest.mark.parametrize("flag", [False, "false", None, 1])
def test_ssm_reads_without_decryption_do_not(flag: Any) -> None:
    req = {"name": "/a"} if flag is None else {"name": "/a", "withDecryption": flag}
    assert _judge(SSM, _with(SSM, "GetParameter", req)).decision == "skip"


def test_by_path_counts_path_weight_and_a_recursive_root_read_counts_everything() -> None:
    count = SSM.params["threshold"]["count"]
    root = _judge(SSM, _with(SSM, "GetParametersByPath", {"path": "/", "recursive": True, "withDecryption": True}))
    assert len(_items(root)) == count
    sub = _judge(SSM, _with(SSM, "GetParametersByPath", {"path": "/app", "recursive": True, "withDecryption": True}))
    assert len(_items(sub)) == SSM.params["path_weight"]
    flat_root = _judge(SSM, _with(SSM, "GetParametersByPath", {"path": "/", "withDecryption": True}))
    assert len(_items(flat_root)) == SSM.params["path_weight"]


def test_password_data_counts_instances_failed_calls_too() -> None:
    f = _judge(PASSWORD, _with(PASSWORD, "GetPasswordData", {"instanceId": "i-1"}))
    assert (f.decision, _items(f)) == ("alert", ["i-1"])
    denied = _with(PASSWORD, "GetPasswordData", {"instanceId": "i-2"}, errorCode="Client.UnauthorizedOperation")
    f = _judge(PASSWORD, denied)
    assert f.decision == "alert" and "failed: Client.UnauthorizedOperation" in f.reason


@pytest.mark.parametrize("attribute", ["userData", "USERDATA", " userdata "])
def test_user_data_reads_qualify_in_any_case(attribute: str) -> None:
    f = _judge(USERDATA, _with(USERDATA, "DescribeInstanceAttribute", {"instanceId": "i-1", "attribute": attribute}))
    assert (f.decision, _items(f)) == ("alert", ["i-1"])


@pytest.mark.parametrize("attribute", ["disableApiTermination", "instanceType", None, 7])
def test_other_instance_attributes_do_not(attribute: Any) -> None:
    env = _with(USERDATA, "DescribeInstanceAttribute", {"instanceId": "i-1", "attribute": attribute})
    assert _judge(USERDATA, env).decision == "skip"


def test_secrets_and_ssm_ignore_failed_calls_password_and_user_data_count_them() -> None:
    assert not SECRETS.matches_failed_calls and not SSM.matches_failed_calls
    assert PASSWORD.matches_failed_calls and USERDATA.matches_failed_calls
    denied = _with(SECRETS, "GetSecretValue", {"secretId": "x"}, errorCode="AccessDenied")
    assert _judge(SECRETS, denied).decision == "skip"
