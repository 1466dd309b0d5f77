"""Resource policies beyond S3 cannot be slipped past the rules by a legal spelling (issue 14).

A member admin writes the policy, so every part of it is attacker-controlled: conditions that look like an
organization pin but are not, account ids that look like ours, encodings, request padding. And the converse:
policies that genuinely restrict (a service principal pinned by aws:SourceArn to this account's resource)
must stay quiet, or the rules become noise that gets switched off. Nothing here may ever remediate.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
EXT = "999988887777"
ORG = "o-a1b2c3d4e5"
CFG = RuntimeConfig(org_id=ORG, organization_accounts=frozenset({ACCOUNT, "444455556666"}))
RULE_IDS = (
    "kms-key-policy-public",
    "sns-topic-policy-public",
    "sqs-queue-policy-public",
    "ecr-repository-policy-public",
    "secretsmanager-secret-policy-public",
    "lambda-layer-permission-public",
    "s3-access-point-policy-public",
    "efs-file-system-policy-public",
    "opensearch-domain-policy-public",
    "glacier-vault-policy-public",
)
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders"


def record(name: str, source: str, request: Any) -> CloudTrailEvent:
    detail = {
        "eventName": name,
        "eventSource": source,
        "eventType": "AwsApiCall",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "eventTime": "2026-10-02T09:00:00Z",
        "eventID": "11111111-2222-4333-8444-555555555555",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT},
        "requestParameters": request,
    }
    return CloudTrailEvent(
        {"detail-type": "AWS API Call via CloudTrail", "account": ACCOUNT, "region": "us-east-1", "detail": detail}
    )


def judge(rule_id: str, event: CloudTrailEvent, cfg: RuntimeConfig = CFG) -> Assessment:
    rule = rules_by_id()[rule_id]
    return registry()[rule.decision](event, rule, cfg)


def queue_policy(policy: Any) -> Assessment:
    req = {"queueUrl": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/orders", "attributes": {"Policy": policy}}
    return judge("sqs-queue-policy-public", record("SetQueueAttributes", "sqs.amazonaws.com", req))


def topic_policy(policy: Any) -> Assessment:
    req = {"topicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:t", "attributeName": "Policy", "attributeValue": policy}
    return judge("sns-topic-policy-public", record("SetTopicAttributes", "sns.amazonaws.com", req))


def key_policy(policy: Any) -> Assessment:
    return judge("kms-key-policy-public", record("PutKeyPolicy", "kms.amazonaws.com", {"keyId": "k", "policy": policy}))


def stmt(principal: Any, condition: dict[str, Any] | None = None, action: str = "sqs:*") -> str:
    s: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": QUEUE_ARN}
    if condition is not None:
        s["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [s]})


# --------------------------------------------------------------------------- organization conditions that look restrictive
@pytest.mark.parametrize(
    "condition",
    [
        {"StringLike": {"aws:PrincipalOrgID": "o-*"}},
        {"StringLike": {"aws:PrincipalOrgID": "o-a1b2*"}},  # a prefix of ours matches other organizations
        {"StringLike": {"aws:PrincipalOrgID": "o-a1b2c3d4e?"}},
        {"StringEqualsIfExists": {"aws:PrincipalOrgID": ORG}},  # true for callers without an organization
        {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": ORG}},  # true when the key is absent
        {"StringNotEquals": {"aws:PrincipalOrgID": "o-zzzzzzzzzz"}},  # everyone but one other organization
        {"StringEquals": {"aws:PrincipalOrgID": "${aws:PrincipalOrgID}"}},  # a variable matches every caller
        {"StringLike": {"aws:PrincipalOrgPaths": "o-*/r-*/*"}},
        {"Null": {"aws:PrincipalOrgID": "false"}},  # any organization at all
    ],
    ids=json.dumps,
)
def test_org_conditions_that_do_not_restrict_still_fire(condition):
    a = queue_policy(stmt("*", condition))
    assert a.risky, a.reason
    assert a.params.get("public_statements")


def test_our_org_pin_is_quiet_and_another_org_is_not():
    assert not queue_policy(stmt("*", {"StringEquals": {"aws:PrincipalOrgID": ORG}})).risky
    other = queue_policy(stmt("*", {"StringEquals": {"aws:PrincipalOrgID": "o-zzzzzzzzzz"}}))
    assert other.risky
    assert "o-zzzzzzzzzz" in other.reason


# --------------------------------------------------------------------------- service principals and source pins
@pytest.mark.parametrize(
    "condition",
    [
        {"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:orders-events"}},
        {"ArnLike": {"aws:SourceArn": f"arn:aws:sns:*:{ACCOUNT}:*"}},
        {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        {"StringEquals": {"aws:SourceOwner": ACCOUNT}},
    ],
    ids=json.dumps,
)
@pytest.mark.parametrize("principal", ["*", {"Service": "sns.amazonaws.com"}], ids=["star", "service"])
def test_source_pins_to_this_account_stay_quiet(principal, condition):
    for judge_fn in (queue_policy, topic_policy):
        a = judge_fn(stmt(principal, condition))
        assert not a.risky, a.reason


@pytest.mark.parametrize(
    "condition",
    [
        {"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:us-east-1:{EXT}:feed"}},
        {"StringEquals": {"aws:SourceAccount": EXT}},
        {"StringEquals": {"aws:SourceAccount": [ACCOUNT, EXT]}},  # ours OR theirs admits theirs
    ],
    ids=json.dumps,
)
@pytest.mark.parametrize("principal", ["*", {"Service": "sns.amazonaws.com"}], ids=["star", "service"])
def test_source_pins_to_another_account_fire(principal, condition):
    a = queue_policy(stmt(principal, condition))
    assert a.risky, a.reason
    assert a.params["external_accounts"] == [EXT]


@pytest.mark.parametrize(
    "condition",
    [
        {"ArnLike": {"aws:SourceArn": "arn:aws:sns:us-east-1:*:feed"}},  # any account's topic named feed
        {"StringNotEquals": {"aws:SourceAccount": ACCOUNT}},  # every *other* account
        {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}},  # a direct caller carries no SourceAccount
        {"StringLike": {"aws:SourceAccount": "1111*"}},
    ],
    ids=json.dumps,
)
def test_source_pins_that_do_not_pin_fire_for_a_wildcard_principal(condition):
    assert queue_policy(stmt("*", condition)).risky


# --------------------------------------------------------------------------- lookalike accounts
@pytest.mark.parametrize(
    "principal",
    [
        "111122223334",  # one digit off
        "arn:aws:iam::111122223334:root",
        "arn:aws:iam::１１１１２２２２３３３３:root",  # full-width digits: not an account id we can trust
        "AIDAEXAMPLEUNIQUEID1",  # a unique id names nobody we can check
        {"AWS": [f"arn:aws:iam::{ACCOUNT}:root", EXT]},  # hidden second principal
    ],
    ids=repr,
)
def test_lookalike_and_hidden_accounts_fire(principal):
    p = principal if isinstance(principal, dict) else {"AWS": principal}
    a = queue_policy(stmt(p))
    assert a.risky, a.reason
    assert a.params.get("external_accounts")


def test_layer_lookalike_account_fires_and_own_account_is_quiet():
    def layer(principal: str) -> Assessment:
        req = {"layerName": "utils", "versionNumber": 1, "principal": principal, "action": "lambda:GetLayerVersion"}
        return judge(
            "lambda-layer-permission-public", record("AddLayerVersionPermission20181031", "lambda.amazonaws.com", req)
        )

    assert layer("111122223334").risky
    assert layer("arn:aws:iam::*:root").risky
    assert not layer(ACCOUNT).risky


# --------------------------------------------------------------------------- encodings and padding
def _public() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}],
    }


@pytest.mark.parametrize(
    "spelling",
    [
        lambda d: d,
        json.dumps,
        lambda d: quote(json.dumps(d), safe=""),
        lambda d: quote(quote(json.dumps(d), safe=""), safe=""),
        lambda d: json.dumps(json.dumps(d)),
        lambda d: quote(json.dumps(d)).replace("%20", "+"),
        lambda d: [json.dumps(d)],
        lambda d: "\n\t " + json.dumps(d, indent=4) + "\n",
    ],
    ids=["object", "json", "url", "url-twice", "json-in-json", "plus-spaces", "one-element-list", "whitespace"],
)
def test_every_spelling_of_a_public_key_policy_fires(spelling):
    assert key_policy(spelling(_public())).risky


@pytest.mark.parametrize(
    "statement",
    [
        {
            "Effect": "Allow",
            "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::????????????:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"CanonicalUser": "*"}, "Action": "kms:*", "Resource": "*"},
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"StringLike": {"kms:CallerAccount": "*"}},
        },
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"kms:CallerAccount": ACCOUNT}},
        },
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        },
    ],
    ids=[
        "not-principal",
        "question-marks",
        "list-star",
        "canonical-star",
        "caller-like-star",
        "caller-not-ours",
        "tls-only",
    ],
)
def test_wildcards_and_non_restricting_conditions_fire(statement):
    assert key_policy({"Version": "2012-10-17", "Statement": [statement]}).risky


def test_padding_a_request_past_the_log_limit_is_an_alert_on_every_rule():
    too_large = {"reason": "requestParameters too large", "omitted": True}
    calls = {
        "kms-key-policy-public": ("PutKeyPolicy", "kms.amazonaws.com"),
        "sns-topic-policy-public": ("SetTopicAttributes", "sns.amazonaws.com"),
        "sqs-queue-policy-public": ("SetQueueAttributes", "sqs.amazonaws.com"),
        "ecr-repository-policy-public": ("SetRepositoryPolicy", "ecr.amazonaws.com"),
        "secretsmanager-secret-policy-public": ("PutResourcePolicy", "secretsmanager.amazonaws.com"),
        "lambda-layer-permission-public": ("AddLayerVersionPermission20181031", "lambda.amazonaws.com"),
        "s3-access-point-policy-public": ("PutAccessPointPolicy", "s3.amazonaws.com"),
        "efs-file-system-policy-public": ("PutFileSystemPolicy", "elasticfilesystem.amazonaws.com"),
        "opensearch-domain-policy-public": ("UpdateDomainConfig", "es.amazonaws.com"),
        "glacier-vault-policy-public": ("SetVaultAccessPolicy", "glacier.amazonaws.com"),
    }
    assert set(calls) == set(RULE_IDS)
    for rule_id, (name, source) in calls.items():
        for omitted in (True, "true"):
            a = judge(rule_id, record(name, source, {**too_large, "omitted": omitted}))
            assert a.risky, rule_id
            assert "too large" in a.reason


def test_case_variant_keys_are_read_not_skipped():
    """IAM rejects these spellings, but a record is attacker-shaped: reading them can only add findings."""
    lower = {"queueUrl": "q", "attributes": {"policy": stmt("*")}}
    assert judge("sqs-queue-policy-public", record("SetQueueAttributes", "sqs.amazonaws.com", lower)).risky
    attr = {"topicArn": "t", "attributeName": "policy", "attributeValue": stmt("*")}
    assert judge("sns-topic-policy-public", record("SetTopicAttributes", "sns.amazonaws.com", attr)).risky


def test_a_vpc_claim_only_quiets_a_domain_creation():
    public = stmt("*", action="es:*")
    vpc = {"subnetIds": ["subnet-1"]}
    update = record(
        "UpdateDomainConfig", "es.amazonaws.com", {"domainName": "d", "accessPolicies": public, "vPCOptions": vpc}
    )
    assert judge("opensearch-domain-policy-public", update).risky
    create = record(
        "CreateDomain", "es.amazonaws.com", {"domainName": "d", "accessPolicies": public, "vPCOptions": vpc}
    )
    assert not judge("opensearch-domain-policy-public", create).risky
    wrong_type = record(
        "CreateDomain", "es.amazonaws.com", {"domainName": "d", "accessPolicies": public, "vPCOptions": "x"}
    )
    assert judge("opensearch-domain-policy-public", wrong_type).risky


def test_a_glacier_policy_hidden_under_a_null_is_an_alert():
    req = {"vaultName": "v", "policy": {"policy": None}}
    assert judge("glacier-vault-policy-public", record("SetVaultAccessPolicy", "glacier.amazonaws.com", req)).risky


# --------------------------------------------------------------------------- never act
@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_these_rules_never_remediate(rule_id):
    """Alert only: no remediation declared, and no example or variant leads to an action under any caller mode."""
    rule = rules_by_id()[rule_id]
    assert rule.remediation is None
    assert rule.default_mode == "alert"
    evaluator = Evaluator(tuple(rules_by_id().values()), RuntimeConfig(rule_modes={rule_id: "remediate"}))
    events = list(rule.examples_positive) + [v["event"] for v in rule.examples_variants]
    assert events
    for event in events:
        mine = [f for f in evaluator.evaluate(event).findings if f.rule == rule_id]
        assert len(mine) == 1
        assert mine[0].decision == "alert", mine[0].reason
        assert mine[0].action is None


def test_a_private_decoy_policy_beside_the_real_one_does_not_hide_it():
    """S3 logs query-string parameters beside the body: ``?Policy=<private>`` must not shadow the body's policy."""
    private = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "s3:*"}]})
    public = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]})
    req = {"name": "ap", "Policy": private, "PutAccessPointPolicyRequest": {"Policy": public}}
    a = judge("s3-access-point-policy-public", record("PutAccessPointPolicy", "s3.amazonaws.com", req))
    assert a.risky, a.reason
    swapped = {"name": "ap", "Policy": public, "PutAccessPointPolicyRequest": {"Policy": private}}
    assert judge("s3-access-point-policy-public", record("PutAccessPointPolicy", "s3.amazonaws.com", swapped)).risky
    only_private = {"name": "ap", "Policy": [""], "PutAccessPointPolicyRequest": {"Policy": private}}
    assert not judge(
        "s3-access-point-policy-public", record("PutAccessPointPolicy", "s3.amazonaws.com", only_private)
    ).risky
