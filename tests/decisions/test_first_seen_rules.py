"""First-seen ("new terms") rules: what qualifies, which terms each event names, and the gate on top.

The decisions only say whether one event qualifies and name its terms (``first_seen_items``); the engine's gate
(trailguard_engine.window) fires on a term not seen within the history. Terms must not make noise from spelling
(a secret by name or ARN, a role in any case) and must not let an attacker make a new thing look seen.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.evaluate import Evaluator, decide
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.model import Assessment, Finding, Rule
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import FIRST_SEEN_ITEMS_PARAM, MemoryWindowStore, ThresholdGate, validate_first_seen

RULES = rules_by_id()
ACCOUNT = "111122223333"
FIRST_SEEN_RULES = [
    "secretsmanager-secret-first-read",
    "ssm-secure-parameter-first-read",
    "ec2-password-data-denied-first-seen",
    "ec2-userdata-first-read",
    "iam-role-changed-by-new-principal",
    "sagemaker-execution-role-first-passed",
    "batch-job-command-override-first-seen",
    "sns-subscription-first-protocol",
    "cognito-unauthenticated-credentials-first-seen",
    "s3-anonymous-access-first-seen",
]
APP_ROLE = {
    "type": "AssumedRole",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/app-backend/i-0a1b2c3d4e5f60718",
    "accountId": ACCOUNT,
    "sessionContext": {
        "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/app-backend", "userName": "app-backend"},
        "attributes": {"mfaAuthenticated": "false"},
    },
}
USER = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT, "userName": "alice"}


def _env(rule_id: str, name: str | None = None, request: Any = ..., i: int = 0, **detail: Any) -> dict[str, Any]:
    """A copy of the rule's i-th positive example with another event name, request or detail fields."""
    env = copy.deepcopy(RULES[rule_id].examples_positive[i])
    if name is not None:
        env["detail"]["eventName"] = name
    if request is not ...:
        env["detail"]["requestParameters"] = request
    env["detail"].update(detail)
    return env


def _assess(rule_id: str, env: dict[str, Any], cfg: RuntimeConfig | None = None) -> Assessment:
    rule = RULES[rule_id]
    return registry()[rule.decision](CloudTrailEvent(to_envelope(env)), rule, cfg or RuntimeConfig())


def _terms(rule_id: str, env: dict[str, Any]) -> list[str] | None:
    a = _assess(rule_id, env)
    assert a.risky, a.reason
    return a.params.get(FIRST_SEEN_ITEMS_PARAM)


# --------------------------------------------------------------------------- #
# Shape
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("rule_id", FIRST_SEEN_RULES)
def test_rule_is_a_first_seen_alert_only_rule(rule_id: str) -> None:
    rule = RULES[rule_id]
    fs = validate_first_seen(rule.params["first_seen"])
    assert (fs.history_days, fs.learning_days) == (30, 14)
    assert "threshold" not in rule.params
    assert rule.remediation is None and rule.default_mode == "alert"
    assert rule.severity in ("MEDIUM", "LOW")
    assert rule.references.get("elastic")


@pytest.mark.parametrize("rule_id", FIRST_SEEN_RULES)
def test_terms_are_bounded_strings(rule_id: str) -> None:
    for env in RULES[rule_id].examples_positive:
        items = _assess(rule_id, env).params.get(FIRST_SEEN_ITEMS_PARAM)
        assert items is None or (items and all(isinstance(t, str) and 0 < len(t) <= 512 for t in items))


@pytest.mark.parametrize("rule_id", FIRST_SEEN_RULES)
def test_aws_service_identity_never_qualifies(rule_id: str) -> None:
    for example in RULES[rule_id].examples_positive:
        env = copy.deepcopy(example)
        env["detail"]["userIdentity"] = {"type": "AWSService", "invokedBy": "ecs-tasks.amazonaws.com"}
        assert not _assess(rule_id, env).risky


@pytest.mark.parametrize("rule_id", FIRST_SEEN_RULES)
def test_crafted_requests_never_crash(rule_id: str) -> None:
    """Mistyped, nested or huge request fields: the decision answers (qualifies or not), it never raises."""
    junk: list[Any] = [
        None,
        {},
        {"secretId": 7, "name": ["x", {"a": 1}], "roleName": {"x": 1}, "protocol": 3, "bucketName": ["b"]},
        {"secretIdList": [None, 5, "a" * 5000], "withDecryption": "TRUE", "attribute": ["userData"]},
        {"roleArn": ["arn:aws:iam::111122223333:role/x"], "logins": "x", "containerOverrides": "sh"},
        {"filters": [{"key": "name", "values": ["a" * 2000]}], "endpoint": None, "policyArn": 1},
        {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"roleArn": "arn:aws:iam::1:role/deep"}}}}}}}},
    ]
    for request in junk:
        a = _assess(rule_id, _env(rule_id, request=request))
        assert isinstance(a.reason, str) and len(a.reason) <= 500
        for t in a.params.get(FIRST_SEEN_ITEMS_PARAM) or ():
            assert isinstance(t, str) and len(t) <= 512


# --------------------------------------------------------------------------- #
# Secrets: one term per secret, by name or ARN alike
# --------------------------------------------------------------------------- #
SM = "secretsmanager-secret-first-read"
FULL = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/payments/db-AbCdEf"


def test_secret_name_partial_arn_and_full_arn_are_one_term() -> None:
    by_name = _terms(SM, _env(SM, request={"secretId": "prod/payments/db"}))
    by_arn = _terms(SM, _env(SM, request={"secretId": FULL}))
    partial = _terms(
        SM, _env(SM, request={"secretId": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/payments/db"})
    )
    assert by_name == by_arn == partial == [f"secret:{ACCOUNT}:us-east-1:prod/payments/db"]


def test_secret_terms_keep_case_region_and_account() -> None:
    """Another case, region or account is another secret: never the seen one."""
    seen = _terms(SM, _env(SM, request={"secretId": "prod/payments/db"}))
    for other in (
        "Prod/Payments/DB",
        f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:prod/payments/db-AbCdEf",
        "arn:aws:secretsmanager:us-east-1:444455556666:secret:prod/payments/db-AbCdEf",
        "prod/payments/db-AbCdEf",  # a *name* ending like a suffix is its own secret (only ARNs carry the suffix)
    ):
        assert _terms(SM, _env(SM, request={"secretId": other})) != seen, other


def test_secret_batch_names_each_secret_and_a_filter_batch_its_filter() -> None:
    terms = _terms(SM, _env(SM, "BatchGetSecretValue", {"secretIdList": ["a", FULL, "a"]}))
    assert terms == [f"secret:{ACCOUNT}:us-east-1:a", f"secret:{ACCOUNT}:us-east-1:prod/payments/db"]
    f1 = _terms(SM, _env(SM, "BatchGetSecretValue", {"filters": [{"key": "name", "values": ["prod/"]}]}))
    f2 = _terms(SM, _env(SM, "BatchGetSecretValue", {"filters": [{"values": ["prod/"], "key": "name"}]}))
    assert f1 == f2 and f1 is not None and f1[0].startswith("filters:")


def test_unreadable_secret_is_a_term_of_its_own() -> None:
    a = _terms(SM, _env(SM, request=None))
    b = _terms(SM, _env(SM, request={"secretId": ""}, eventID="another-event"))
    assert a and b and a != b and a[0].startswith("unreadable-")


def test_reads_forwarded_by_cloudformation_or_by_service_linked_roles_do_not_qualify() -> None:
    env = _env(SM)
    env["detail"]["userIdentity"]["invokedBy"] = "cloudformation.amazonaws.com"
    assert not _assess(SM, env).risky
    env = _env(SM)
    env["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = (
        f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS"
    )
    assert not _assess(SM, env).risky
    # Look-alike paths (another path, another case: IAM paths are case-sensitive) are ordinary roles.
    for path in ("not-aws-service-role", "AWS-Service-Role/rds.amazonaws.com"):
        env["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = (
            f"arn:aws:iam::{ACCOUNT}:role/{path}/AWSServiceRoleForRDS"
        )
        assert _assess(SM, env).risky, path


def test_a_forged_invoked_by_outside_the_list_does_not_excuse_a_read() -> None:
    env = _env(SM)
    env["detail"]["userIdentity"]["invokedBy"] = "lambda.amazonaws.com"
    assert _assess(SM, env).risky


# --------------------------------------------------------------------------- #
# Principal-only rules
# --------------------------------------------------------------------------- #
SSM = "ssm-secure-parameter-first-read"


@pytest.mark.parametrize("flag", [True, "true", "TRUE"])
def test_ssm_decrypted_reads_qualify_with_the_principal_as_term(flag: Any) -> None:
    a = _assess(SSM, _env(SSM, request={"name": "/prod/db/password", "withDecryption": flag}))
    assert a.risky and FIRST_SEEN_ITEMS_PARAM not in a.params


@pytest.mark.parametrize("flag", [False, "false", None, 1])
def test_ssm_reads_without_decryption_do_not_qualify(flag: Any) -> None:
    assert not _assess(SSM, _env(SSM, request={"name": "/prod/db/password", "withDecryption": flag})).risky


PW = "ec2-password-data-denied-first-seen"


@pytest.mark.parametrize("code", ["Client.UnauthorizedOperation", "UnauthorizedOperation", "AccessDenied"])
def test_refused_password_reads_qualify(code: str) -> None:
    env = _env(PW, errorCode=code)
    a = _assess(PW, env)
    assert a.risky and FIRST_SEEN_ITEMS_PARAM not in a.params
    assert decide(CloudTrailEvent(to_envelope(env)), RULES[PW], RuntimeConfig()).decision == "alert"


def test_successful_or_otherwise_failed_password_reads_do_not_qualify() -> None:
    env = _env(PW)
    del env["detail"]["errorCode"]
    assert not _assess(PW, env).risky
    assert not _assess(PW, _env(PW, errorCode="Client.InvalidInstanceID.NotFound")).risky


UD = "ec2-userdata-first-read"


@pytest.mark.parametrize("attribute", ["userData", "userdata", "USERDATA", " userData "])
def test_userdata_attribute_any_case(attribute: str) -> None:
    assert _assess(UD, _env(UD, request={"instanceId": "i-1", "attribute": attribute})).risky


def test_userdata_term_is_the_principal_not_the_instance() -> None:
    a = _assess(UD, _env(UD, request={"instanceId": "i-1", "attribute": "userData"}))
    assert FIRST_SEEN_ITEMS_PARAM not in a.params


BATCH = "batch-job-command-override-first-seen"


def test_batch_override_by_a_workload_role_qualifies_a_persons_is_left_to_the_human_rule() -> None:
    assert _assess(BATCH, _env(BATCH)).risky
    person = _env(BATCH)
    person["detail"]["userIdentity"] = USER
    assert not _assess(BATCH, person).risky
    assert registry()["batch_command_override_by_human"](
        CloudTrailEvent(to_envelope(person)), RULES["batch-job-command-override-by-human"], RuntimeConfig()
    ).risky
    # A person hiding behind a Terraform user agent is still a person for the human rule (no gap, no double).
    forged = copy.deepcopy(person)
    forged["detail"]["userAgent"] = "Terraform/1.9.0 terraform-provider-aws/5.60.0"
    assert not _assess(BATCH, forged).risky


def test_batch_without_override_does_not_qualify() -> None:
    assert not _assess(BATCH, _env(BATCH, request={"jobName": "n", "jobQueue": "q", "jobDefinition": "d"})).risky


# --------------------------------------------------------------------------- #
# IAM role changes
# --------------------------------------------------------------------------- #
IAM = "iam-role-changed-by-new-principal"
CUSTOM = f"arn:aws:iam::{ACCOUNT}:policy/ops-full-access"


def test_role_terms_ignore_case_and_separate_the_kind_of_change() -> None:
    attach = _terms(IAM, _env(IAM, "AttachRolePolicy", {"roleName": "ops-deploy", "policyArn": CUSTOM}))
    upper = _terms(IAM, _env(IAM, "AttachRolePolicy", {"roleName": "OPS-Deploy", "policyArn": CUSTOM}))
    trust = _terms(IAM, _env(IAM, "UpdateAssumeRolePolicy", {"roleName": "ops-deploy", "policyDocument": "{}"}))
    assert attach == upper == ["attach:ops-deploy"]
    assert trust == ["trust:ops-deploy"]


@pytest.mark.parametrize(
    ("policy", "risky"),
    [
        ("arn:aws:iam::aws:policy/ReadOnlyAccess", False),
        ("arn:aws-cn:iam::aws:policy/ReadOnlyAccess", False),
        ("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole", False),
        (CUSTOM, True),
        ("arn:aws:iam::111122223333:policy/aws:policy/x", True),  # look-alike of a managed ARN
        ("ARN:AWS:IAM::AWS:POLICY/ReadOnlyAccess", True),  # not how IAM writes a managed ARN: judged
        (None, True),
    ],
)
def test_only_customer_managed_policies_qualify(policy: Any, risky: bool) -> None:
    request = {"roleName": "ops-deploy", "policyArn": policy}
    assert _assess(IAM, _env(IAM, "AttachRolePolicy", request)).risky is risky


def test_role_changes_through_cloudformation_are_one_term_per_kind() -> None:
    env = _env(IAM, "AttachRolePolicy", {"roleName": "stack-fn-role-1XYZ", "policyArn": CUSTOM})
    env["detail"]["userIdentity"]["invokedBy"] = "cloudformation.amazonaws.com"
    assert _terms(IAM, env) == ["attach:via-cloudformation"]


def test_role_that_cannot_be_read_is_always_new() -> None:
    omitted = {"reason": "requestParameters too large", "omitted": True, "originalSize": "131072"}
    a = _terms(IAM, _env(IAM, "UpdateAssumeRolePolicy", omitted))
    b = _terms(IAM, _env(IAM, "UpdateAssumeRolePolicy", omitted, eventID="other"))
    assert a and b and a != b and a[0].startswith("unreadable-")


# --------------------------------------------------------------------------- #
# SageMaker
# --------------------------------------------------------------------------- #
SG = "sagemaker-execution-role-first-passed"


def test_sagemaker_role_term_ignores_path_and_case() -> None:
    a = _terms(SG, _env(SG, request={"roleArn": f"arn:aws:iam::{ACCOUNT}:role/service-role/ML-Exec"}))
    b = _terms(SG, _env(SG, request={"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/ml-exec"}))
    c = _terms(SG, _env(SG, request={"roleArn": "arn:aws:iam::444455556666:role/ml-exec"}))
    assert a == b == [f"role:{ACCOUNT}/ml-exec"]
    assert c == ["role:444455556666/ml-exec"]


def test_sagemaker_role_found_where_each_api_puts_it() -> None:
    tuning = {"trainingJobDefinition": {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/tuner"}}
    assert _terms(SG, _env(SG, "CreateHyperParameterTuningJob", tuning)) == [f"role:{ACCOUNT}/tuner"]


def test_sagemaker_without_a_readable_role_is_always_new() -> None:
    for request in (None, {"roleArn": "not-an-arn"}, {"roleArn": f"arn:aws:iam::{ACCOUNT}:user/x"}):
        terms = _terms(SG, _env(SG, request=request))
        assert terms and terms[0].startswith("unreadable-")


# --------------------------------------------------------------------------- #
# SNS
# --------------------------------------------------------------------------- #
SNS = "sns-subscription-first-protocol"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:orders"


@pytest.mark.parametrize(
    ("request_parameters", "term"),
    [
        ({"topicArn": TOPIC, "protocol": "https", "endpoint": "https://x.example.net/"}, "protocol:https"),
        ({"topicArn": TOPIC, "protocol": "HTTPS", "endpoint": "https://x.example.net/"}, "protocol:https"),
        ({"topicArn": TOPIC, "protocol": "email", "endpoint": "a@example.com"}, "protocol:email"),
        (
            {"topicArn": TOPIC, "protocol": "lambda", "endpoint": "arn:aws:lambda:us-east-1:444455556666:function:f"},
            "protocol:lambda",
        ),
    ],
)
def test_sns_external_or_cross_account_endpoints_qualify_with_their_protocol(
    request_parameters: dict[str, Any], term: str
) -> None:
    assert _terms(SNS, _env(SNS, request=request_parameters)) == [term]


def test_sns_in_account_endpoints_and_persons_external_subscriptions_do_not_qualify() -> None:
    inside = {"topicArn": TOPIC, "protocol": "sqs", "endpoint": f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"}
    assert not _assess(SNS, _env(SNS, request=inside)).risky
    person = _env(SNS, request={"topicArn": TOPIC, "protocol": "email", "endpoint": "a@example.com"})
    person["detail"]["userIdentity"] = USER
    assert not _assess(SNS, person).risky  # sns-external-subscription alerts on it
    # A person's cross-account queue is not judged by sns-external-subscription: this rule takes it.
    queue = _env(
        SNS, request={"topicArn": TOPIC, "protocol": "sqs", "endpoint": "arn:aws:sqs:us-east-1:444455556666:q"}
    )
    queue["detail"]["userIdentity"] = USER
    assert _assess(SNS, queue).risky


# --------------------------------------------------------------------------- #
# Cognito and anonymous S3
# --------------------------------------------------------------------------- #
COG = "cognito-unauthenticated-credentials-first-seen"


def test_cognito_term_is_the_pool_in_lower_case_not_the_guest_identity() -> None:
    env = _env(COG)
    pool = env["detail"]["resources"][0]["ARN"]
    other_guest = _env(COG, request={"identityId": "us-east-1:00000000-0000-4000-8000-000000000000"})
    assert _terms(COG, env) == _terms(COG, other_guest) == [f"pool:{pool.lower()}"]
    no_pool = _env(COG)
    del no_pool["detail"]["resources"]
    assert _terms(COG, no_pool) == ["pool:unnamed"]


@pytest.mark.parametrize("logins", [{"accounts.google.com": "HIDDEN_DUE_TO_SECURITY_REASONS"}, "token", ["x"]])
def test_cognito_with_a_login_token_does_not_qualify(logins: Any) -> None:
    env = _env(COG)
    env["detail"]["requestParameters"]["logins"] = logins
    assert not _assess(COG, env).risky


S3 = "s3-anonymous-access-first-seen"


def test_s3_anonymous_terms_are_kind_and_bucket() -> None:
    assert _terms(S3, _env(S3, i=0)) == ["read:acme-exports"]
    assert _terms(S3, _env(S3, i=1)) == ["write:acme-exports"]
    # The bucket from the record's resources when the request does not name it.
    assert _terms(S3, _env(S3, i=0, requestParameters={"key": "x"})) == ["read:acme-exports"]


def test_s3_signed_requests_do_not_qualify() -> None:
    env = _env(S3)
    env["detail"]["userIdentity"] = APP_ROLE
    assert not _assess(S3, env).risky


# --------------------------------------------------------------------------- #
# Through the gate: learning, first sighting, spelling, history
# --------------------------------------------------------------------------- #
T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def _at(env: dict[str, Any], when: datetime, n: int) -> dict[str, Any]:
    env = copy.deepcopy(env)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    env["detail"]["eventTime"] = env["time"] = stamp
    env["detail"]["eventID"] = env["id"] = f"00000000-0000-4000-8000-{n:012d}"
    return env


class _Gate:
    def __init__(self) -> None:
        self.gate = ThresholdGate(MemoryWindowStore(), clock=None)
        self.evaluator = Evaluator(tuple(RULES.values()), RuntimeConfig())
        self.n = 0

    def decision(self, rule: Rule, env: dict[str, Any], when: datetime) -> str:
        self.n += 1
        env = _at(env, when, self.n)
        result = self.evaluator.evaluate(env)
        result = self.gate.apply_result(CloudTrailEvent(to_envelope(env)), result, self.evaluator.by_id)
        mine: list[Finding] = [f for f in result.findings if f.rule == rule.id]
        assert len(mine) == 1
        return mine[0].decision


def test_secret_read_fires_once_after_learning_and_spelling_does_not_refire() -> None:
    rule, judge = RULES[SM], _Gate()
    read = _env(SM, request={"secretId": "prod/db"})
    assert judge.decision(rule, read, T0) == "skip"  # learning starts
    later = T0 + timedelta(days=15)
    other = _env(SM, request={"secretId": "prod/other"})
    assert judge.decision(rule, other, later) == "alert"  # new secret for this role
    again = _env(SM, request={"secretId": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/other-XyZ123"})
    assert judge.decision(rule, again, later + timedelta(hours=1)) == "skip"  # same secret, ARN spelling
    assert judge.decision(rule, read, later + timedelta(hours=2)) == "skip"  # learned in the learning period
    assert judge.decision(rule, read, later + timedelta(days=46)) == "alert"  # not seen for more than 30 days


def test_another_session_of_the_same_role_is_not_new_another_role_is() -> None:
    rule, judge = RULES[UD], _Gate()
    read = _env(UD)
    assert judge.decision(rule, read, T0) == "skip"  # learning
    later = T0 + timedelta(days=15)
    session = copy.deepcopy(read)
    session["detail"]["userIdentity"]["arn"] = f"arn:aws:sts::{ACCOUNT}:assumed-role/app-backend/attacker-chosen"
    assert judge.decision(rule, session, later) == "skip"
    stranger = copy.deepcopy(read)
    stranger["detail"]["userIdentity"] = USER
    assert judge.decision(rule, stranger, later) == "alert"


def test_cloudformation_wiring_new_roles_fires_once_a_new_role_by_hand_fires() -> None:
    rule, judge = RULES[IAM], _Gate()
    by_hand = _env(IAM, "AttachRolePolicy", {"roleName": "ops-deploy", "policyArn": CUSTOM})
    assert judge.decision(rule, by_hand, T0) == "skip"  # learning
    later = T0 + timedelta(days=15)
    stack = []
    for n in range(3):
        env = _env(IAM, "AttachRolePolicy", {"roleName": f"stack-fn-role-{n}", "policyArn": CUSTOM})
        env["detail"]["userIdentity"]["invokedBy"] = "cloudformation.amazonaws.com"
        stack.append(judge.decision(rule, env, later + timedelta(hours=n)))
    assert stack == ["alert", "skip", "skip"]  # the first change through CloudFormation, then routine
    other = _env(IAM, "AttachRolePolicy", {"roleName": "Admin-Break-Glass", "policyArn": CUSTOM})
    assert judge.decision(rule, other, later + timedelta(hours=5)) == "alert"
    trust = _env(IAM, "UpdateAssumeRolePolicy", {"roleName": "ops-deploy", "policyDocument": "{}"})
    assert judge.decision(rule, trust, later + timedelta(hours=6)) == "alert"  # another kind of change
    upper = _env(IAM, "AttachRolePolicy", {"roleName": "OPS-DEPLOY", "policyArn": CUSTOM})
    assert judge.decision(rule, upper, later + timedelta(hours=7)) == "skip"  # the learned role, in another case
