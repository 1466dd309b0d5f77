"""Identity gaps (decisions/identity_gaps.py) and the wave-2 extensions of two identity rules:
TruffleHog in offensive-tooling-user-agent, DeleteLoginProfile in iam-login-profile-for-other-user."""

from __future__ import annotations

import copy
import json
import urllib.parse
from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.runtime_config import RuntimeConfig

RULES = rules_by_id()
S3B = "iam-s3-browser-identity-call"
PROBE = "iam-principal-enumeration-via-trust-policy"
TOOLING = "offensive-tooling-user-agent"
LOGIN = "iam-login-profile-for-other-user"
S3B_AGENT = "S3 Browser 11.5.7 https://s3browser.com"
TEMPLATE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::<YOUR-BUCKET-NAME>/*"}],
}


def _positive(rule_id: str, i: int = 0) -> dict[str, Any]:
    return copy.deepcopy(RULES[rule_id].examples_positive[i])


def _finding(envelope: dict[str, Any], rule_id: str) -> Any:
    """The rule's finding for the envelope through the evaluator (pattern, read-only and failed-call gates)."""
    result = Evaluator(RULES.values(), RuntimeConfig()).evaluate(envelope, only_rule=rule_id)
    findings = [f for f in result.findings if f.rule == rule_id]
    return findings[0] if findings else None


def _decision(envelope: dict[str, Any], rule_id: str) -> str:
    f = _finding(envelope, rule_id)
    return "unmatched" if f is None else f.decision


# --------------------------------------------------------------------------- #
# TruffleHog
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("agent", ["TruffleHog", "trufflehog", "TRUFFLEHOG", "trufflehog/3.82.6 (+https://x)"])
def test_trufflehog_key_check_alerts_on_the_read_only_get_caller_identity(agent: str) -> None:
    env = _positive(TOOLING, 1)
    assert env["detail"]["eventName"] == "GetCallerIdentity" and env["detail"]["readOnly"] is True
    env["detail"]["userAgent"] = agent
    f = _finding(env, TOOLING)
    assert f is not None and f.decision == "alert" and "trufflehog" in f.reason


def test_a_word_merely_containing_the_name_does_not_fire() -> None:
    env = _positive(TOOLING, 1)
    env["detail"]["userAgent"] = "aws-cli/2 md/trufflehogs-cousin"
    assert _decision(env, TOOLING) in ("skip", "unmatched")
    env["detail"]["userAgent"] = "aws-cli/2 app/truffle-shop"
    assert _decision(env, TOOLING) == "unmatched"


# --------------------------------------------------------------------------- #
# DeleteLoginProfile
# --------------------------------------------------------------------------- #


def _login(name: str, request: Any, identity: dict[str, Any] | None = None) -> dict[str, Any]:
    env = _positive(LOGIN)
    env["detail"]["eventName"] = name
    env["detail"]["requestParameters"] = request
    if identity is not None:
        env["detail"]["userIdentity"] = identity
    return env


def test_delete_login_profile_of_another_user_alerts_and_says_removed() -> None:
    f = _finding(_login("DeleteLoginProfile", {"userName": "carol"}), LOGIN)
    assert f.decision == "alert" and "removed" in f.reason and "carol" in f.reason
    f = _finding(_login("UpdateLoginProfile", {"userName": "carol"}), LOGIN)
    assert f.decision == "alert" and "set" in f.reason


def test_delete_login_profile_of_oneself_is_skipped() -> None:
    assert _decision(_login("DeleteLoginProfile", {"userName": "alice"}), LOGIN) == "skip"
    assert _decision(_login("DeleteLoginProfile", None), LOGIN) == "skip"  # an IAM user's own password


def test_delete_login_profile_without_user_from_a_root_session_targets_root() -> None:
    root = {"type": "Root", "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"}
    f = _finding(_login("DeleteLoginProfile", None, root), LOGIN)
    assert f.decision == "alert" and "root" in f.reason


# --------------------------------------------------------------------------- #
# S3 Browser
# --------------------------------------------------------------------------- #


def _s3b(name: str, request: Any, agent: str = S3B_AGENT) -> dict[str, Any]:
    env = _positive(S3B, 1)
    env["detail"]["eventName"] = name
    env["detail"]["requestParameters"] = request
    env["detail"]["userAgent"] = agent
    env["detail"]["readOnly"] = name.startswith("Get")
    return env


@pytest.mark.parametrize(
    ("name", "request_"),
    [
        ("CreateUser", {"userName": "svc"}),
        ("CreateAccessKey", {"userName": "svc"}),
        ("CreateLoginProfile", {"userName": "svc"}),
        ("GetLoginProfile", {"userName": "svc"}),
        ("PutUserPolicy", {"userName": "svc", "policyName": "p", "policyDocument": json.dumps(TEMPLATE)}),
    ],
)
def test_every_selected_iam_call_from_s3_browser_alerts(name: str, request_: Any) -> None:
    f = _finding(_s3b(name, request_), S3B)
    assert f.decision == "alert" and "S3 Browser" in f.reason and f.action is None


@pytest.mark.parametrize("name", ["CreateUser", "GetLoginProfile", "PutUserPolicy"])
def test_the_same_calls_from_other_clients_are_skipped(name: str) -> None:
    for agent in ("aws-cli/2.17.20 ua/2.0 os/windows#10", "Mozilla/5.0 (Windows NT 10.0)", "", "S3 Explorer/1.0"):
        assert _decision(_s3b(name, {"userName": "svc"}, agent), S3B) == "skip"


def test_template_policy_is_named_in_any_encoding() -> None:
    for doc in (json.dumps(TEMPLATE), TEMPLATE, urllib.parse.quote(json.dumps(TEMPLATE))):
        f = _finding(_s3b("PutUserPolicy", {"userName": "svc", "policyName": "p", "policyDocument": doc}), S3B)
        assert "unedited policy template" in f.reason
    edited = json.dumps(TEMPLATE).replace("<YOUR-BUCKET-NAME>", "reports")
    f = _finding(_s3b("PutUserPolicy", {"userName": "svc", "policyName": "p", "policyDocument": edited}), S3B)
    assert f.decision == "alert" and "template" not in f.reason


def test_s3_browser_in_other_casings_and_spacings_alerts() -> None:
    for agent in ("S3BROWSER/11", "s3 browser", "S3-Browser 10.9", "s3_browser"):
        assert _decision(_s3b("CreateUser", {"userName": "svc"}, agent), S3B) == "alert"


# --------------------------------------------------------------------------- #
# Trust-policy principal probes (per event; the threshold is tested in tests/adversarial)
# --------------------------------------------------------------------------- #


def _probe(error: str | None, name: str = "UpdateAssumeRolePolicy") -> dict[str, Any]:
    env = _positive(PROBE)
    env["detail"]["eventName"] = name
    env["detail"].pop("errorCode", None)
    env["detail"].pop("errorMessage", None)
    if error is not None:
        env["detail"]["errorCode"] = error
    return env


@pytest.mark.parametrize(
    "error", ["MalformedPolicyDocument", "MalformedPolicyDocumentException", "malformedpolicydocumentexception"]
)
def test_a_refused_trust_policy_qualifies(error: str) -> None:
    f = _finding(_probe(error), PROBE)
    assert f.decision == "alert" and "refused" in f.reason


@pytest.mark.parametrize("error", [None, "AccessDenied", "NoSuchEntityException", "LimitExceededException"])
def test_success_and_other_refusals_do_not_qualify(error: str | None) -> None:
    assert _decision(_probe(error), PROBE) == "skip"


def test_the_threshold_is_a_short_window_of_many_probes() -> None:
    th = RULES[PROBE].params["threshold"]
    assert th["count"] >= 5 and th["window_seconds"] <= 3600 and th["by"] == "principal"
    assert RULES[PROBE].matches_failed_calls and RULES[PROBE].remediation is None


# --------------------------------------------------------------------------- #
# Instance identity credentials (aws:ec2-instance) used directly
# --------------------------------------------------------------------------- #

IDENTITY = "ec2-instance-identity-credentials-used"


def _ident(source: str = "sts.amazonaws.com", name: str = "GetCallerIdentity", ip: str = "198.51.100.23") -> Any:
    env = _positive(IDENTITY)
    env["source"] = "aws." + source.split(".", maxsplit=1)[0]
    env["detail"].update(eventSource=source, eventName=name, sourceIPAddress=ip)
    return env


@pytest.mark.parametrize("ip", ["198.51.100.23", "10.0.12.34", "2001:db8::7", " 203.0.113.9 "])
def test_identity_credentials_from_any_address_alert(ip: str) -> None:
    f = _finding(_ident(ip=ip), IDENTITY)
    assert f.decision == "alert" and "i-0a1b2c3d4e5f60718" in f.reason and f.action is None


def test_refused_and_read_only_calls_count() -> None:
    env = _ident("s3.amazonaws.com", "ListBuckets")
    env["detail"]["errorCode"] = "AccessDenied"
    f = _finding(env, IDENTITY)
    assert f.decision == "alert" and "AccessDenied" in f.reason


@pytest.mark.parametrize("ip", ["AWS Internal", "ec2.amazonaws.com", "", "cloudformation.amazonaws.com"])
def test_calls_made_by_aws_are_skipped(ip: str) -> None:
    assert _decision(_ident(ip=ip), IDENTITY) == "skip"


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("ssm.amazonaws.com", "RegisterManagedInstance"),
        ("ssm.amazonaws.com", "UpdateInstanceInformation"),
        ("ec2-instance-connect.amazonaws.com", "SendSSHPublicKey"),
    ],
)
def test_the_features_the_credentials_serve_are_skipped(source: str, name: str) -> None:
    assert _decision(_ident(source, name), IDENTITY) == "skip"


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sts::111122223333:assumed-role/aws-ec2-instance/i-0a1b2c3d4e5f60718",
        "arn:aws:sts::111122223333:assumed-role/ops/aws:ec2-instance",
        "arn:aws:iam::111122223333:user/aws:ec2-instance",
    ],
)
def test_ordinary_principals_are_not_selected_or_are_skipped(arn: str) -> None:
    env = _ident()
    env["detail"]["userIdentity"]["arn"] = arn
    assert _decision(env, IDENTITY) in ("unmatched", "skip")
