"""The coverage-gap rules (decisions/coverage_gaps.py) cannot be silenced by who the caller claims to be.

Each is alert-only: nothing here can make trailguard act in any account. What an attacker can try is to
stay silent: forge an IaC user agent, act through a role named like a service or Identity Center role, or
act as (or through) an AWS service. None of these lowers the finding below an alert, because the evidence
is forgeable or because AWS itself is the caller these rules care about (the quarantine policy).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
RULES = rules_by_id()
GAP_RULES = (
    "iam-compromised-key-quarantine",
    "codebuild-project-public",
    "identitycenter-identity-source-changed",
    "s3-versioning-or-logging-disabled",
    "signin-console-login-instance-credentials",
    "waf-web-acl-disassociated",
    "s3-object-encrypted-with-external-kms-key",
    "s3-object-copied-to-external-account",
    "ec2-traffic-mirroring-started",
    "efs-file-system-deleted",
    "iam-password-policy-deleted",
    "account-closed",
    "signin-console-login-federated-user",
    "ecs-task-credential-theft-or-mining",
    "bedrock-guardrail-deleted",
    "cloudwatch-alarms-deleted",
    "s3-bucket-encryption-or-replication-removed",
    "ec2-ami-deregistered-by-human",
    "ec2-gpu-instance-launch-denied",
    "lambda-invoked-from-external-account",
    "rds-iam-role-added",
)
#: Rules that alert on people only (automation does the same routinely): a role session without a sign of a
#: person is skipped by design, so the look-alike-role test does not apply to them.
PEOPLE_ONLY = ("ec2-ami-deregistered-by-human",)
#: Rules whose signal is the caller's account: the look-alike test below swaps in one of ours (see the foreign one).
CALLER_ACCOUNT_IS_THE_SIGNAL = ("lambda-invoked-from-external-account",)
TERRAFORM = "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.68.0"


def _positive(rule_id: str) -> dict[str, Any]:
    return copy.deepcopy(RULES[rule_id].examples_positive[0])


def _finding(envelope: dict[str, Any], rule_id: str, cfg: RuntimeConfig | None = None) -> Any:
    result = Evaluator(RULES.values(), cfg or RuntimeConfig()).evaluate(envelope, only_rule=rule_id)
    (finding,) = result.findings
    return finding


@pytest.mark.parametrize("rule_id", GAP_RULES)
def test_alert_only_never_acts(rule_id):
    rule = RULES[rule_id]
    assert rule.remediation is None and rule.default_mode == "alert"
    finding = _finding(_positive(rule_id), rule_id, RuntimeConfig(rule_modes={rule_id: "remediate"}))
    assert finding.decision == "alert" and finding.action is None


@pytest.mark.parametrize("rule_id", GAP_RULES)
def test_forged_iac_user_agent_still_alerts(rule_id):
    env = _positive(rule_id)
    env["detail"]["userAgent"] = TERRAFORM
    assert _finding(env, rule_id).decision == "alert"


@pytest.mark.parametrize(
    "rule_id",
    [r for r in GAP_RULES if not r.startswith("signin-") and r not in PEOPLE_ONLY + CALLER_ACCOUNT_IS_THE_SIGNAL],
)
def test_lookalike_service_linked_role_still_alerts(rule_id):
    """A role *named* like a service-linked role at an ordinary path is judged like anyone."""
    env = _positive(rule_id)
    name = "AWSServiceRoleForSupport"
    env["detail"]["userIdentity"] = {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLELOOK:{name}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/x",
        "accountId": ACCOUNT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}},
    }
    assert _finding(env, rule_id).decision == "alert"


def test_quarantine_attached_by_aws_itself_is_an_alert_not_a_notice():
    """AWS attaching its quarantine is the signal: a service caller must not quiet it."""
    env = _positive("iam-compromised-key-quarantine")
    env["detail"]["userIdentity"] = {"type": "AWSService", "invokedBy": "support.amazonaws.com"}
    finding = _finding(env, "iam-compromised-key-quarantine")
    assert finding.decision == "alert" and "exposed" in finding.reason


def test_identity_source_change_through_identity_center_role_still_alerts():
    env = _positive("identitycenter-identity-source-changed")
    env["detail"]["userIdentity"] = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_AdministratorAccess_0a1b2c3d/alice",
        "accountId": ACCOUNT,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_AdministratorAccess_0a1b2c3d",
            }
        },
    }
    assert _finding(env, "identitycenter-identity-source-changed").decision == "alert"


def test_instance_console_login_via_classic_spelling_of_the_detail_type():
    env = _positive("signin-console-login-instance-credentials")
    env["detail-type"] = "AWS Console Signin via CloudTrail"
    assert _finding(env, "signin-console-login-instance-credentials").decision == "alert"


def test_lookalike_quarantine_policy_in_own_account_is_not_mistaken_for_aws():
    """A customer policy named AWSCompromisedKeyQuarantineV2 is not AWS's signal (no false 'key exposed')."""
    env = _positive("iam-compromised-key-quarantine")
    env["detail"]["requestParameters"]["policyArn"] = f"arn:aws:iam::{ACCOUNT}:policy/AWSCompromisedKeyQuarantineV2"
    assert _finding(env, "iam-compromised-key-quarantine").decision == "skip"


def test_foreign_kms_key_case_and_partition_spellings_still_alert():
    """KMS ARNs are matched case-insensitively on their fixed parts, in any partition."""
    env = _positive("s3-object-encrypted-with-external-kms-key")
    req = env["detail"]["requestParameters"]
    key = req["x-amz-server-side-encryption-aws-kms-key-id"]
    for spelling in (key.replace("arn:aws:kms", "ARN:AWS:KMS"), key.replace("arn:aws:", "arn:aws-us-gov:")):
        req["x-amz-server-side-encryption-aws-kms-key-id"] = spelling
        assert _finding(env, "s3-object-encrypted-with-external-kms-key").decision == "alert", spelling


def test_lookalike_own_account_inside_a_foreign_key_arn_does_not_hide_it():
    """The owner is the ARN's account field, not any 12 digits that appear in it (a key alias named like us)."""
    env = _positive("s3-object-encrypted-with-external-kms-key")
    env["detail"]["requestParameters"]["x-amz-server-side-encryption-aws-kms-key-id"] = (
        f"arn:aws:kms:us-east-1:999988887777:alias/{ACCOUNT}"
    )
    assert _finding(env, "s3-object-encrypted-with-external-kms-key").decision == "alert"


def test_foreign_copy_cannot_hide_behind_a_second_own_bucket_entry():
    """Only the destination bucket's owner counts: adding our own account elsewhere in resources changes nothing."""
    env = _positive("s3-object-copied-to-external-account")
    env["detail"]["resources"].insert(0, {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::other"})
    assert _finding(env, "s3-object-copied-to-external-account").decision == "alert"


def test_people_only_rule_is_not_hidden_by_a_forged_service_user_agent():
    """An IAM user sending an AWS-internal or Terraform user agent is still a person for the AMI rule."""
    env = _positive("ec2-ami-deregistered-by-human")
    for agent in ("AWS Internal", TERRAFORM, "cloudformation.amazonaws.com"):
        env["detail"]["userAgent"] = agent
        assert _finding(env, "ec2-ami-deregistered-by-human").decision == "alert", agent


def test_failed_gpu_launch_alerts_even_though_failed_calls_usually_never_fire():
    env = _positive("ec2-gpu-instance-launch-denied")
    assert env["detail"]["errorCode"]
    finding = _finding(env, "ec2-gpu-instance-launch-denied")
    assert finding.decision == "alert" and finding.action is None


def test_foreign_caller_named_like_a_service_role_still_alerts():
    """A foreign account's role named like a service-linked role is still a foreign caller."""
    env = _positive("lambda-invoked-from-external-account")
    ext = "999988887777"
    name = "AWSServiceRoleForLambda"
    env["detail"]["userIdentity"] = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ext}:assumed-role/{name}/x",
        "accountId": ext,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ext}:role/{name}"}},
    }
    assert _finding(env, "lambda-invoked-from-external-account").decision == "alert"
