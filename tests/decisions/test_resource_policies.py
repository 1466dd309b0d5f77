"""Unit tests of the resource-policy decisions beyond S3 buckets (decisions/resource_policies.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.decisions import registry
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.intended import IntendedExposure
from trailguard_engine.model import Assessment
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
EXT = "999988887777"
ORG = "o-a1b2c3d4e5"
TOO_LARGE = {"reason": "requestParameters too large", "omitted": True, "originalSize": 204800}


def doc(*stmts: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(stmts)}


def allow(principal: Any, condition: dict[str, Any] | None = None, sid: str = "S") -> dict[str, Any]:
    stmt: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": "*", "Resource": "*"}
    if condition is not None:
        stmt["Condition"] = condition
    return stmt


PUBLIC = doc(allow("*", sid="Open"))
PRIVATE = doc(allow({"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"}))
EXTERNAL = doc(allow({"AWS": f"arn:aws:iam::{EXT}:root"}, sid="Partner"))


@dataclass(frozen=True)
class Call:
    """One policy-writing call: the rule, the API, and how its request carries a policy."""

    rule: str
    source: str
    name: str
    build: Callable[[Any], dict[str, Any]]
    resource: str
    required: bool = True

    def __str__(self) -> str:
        return f"{self.rule}:{self.name}"


CALLS = [
    Call(
        "kms-key-policy-public",
        "kms.amazonaws.com",
        "PutKeyPolicy",
        lambda p: {"keyId": "k-1", "policyName": "default", "policy": p},
        "arn:aws:kms:us-east-1:111122223333:key/k-1",
    ),
    Call("kms-key-policy-public", "kms.amazonaws.com", "CreateKey", lambda p: {"policy": p}, "", required=False),
    Call(
        "sns-topic-policy-public",
        "sns.amazonaws.com",
        "SetTopicAttributes",
        lambda p: {"topicArn": "arn:aws:sns:us-east-1:111122223333:t", "attributeName": "Policy", "attributeValue": p},
        "arn:aws:sns:us-east-1:111122223333:t",
    ),
    Call(
        "sns-topic-policy-public",
        "sns.amazonaws.com",
        "CreateTopic",
        lambda p: {"name": "t", "attributes": {"Policy": p}},
        "t",
        required=False,
    ),
    Call(
        "sqs-queue-policy-public",
        "sqs.amazonaws.com",
        "SetQueueAttributes",
        lambda p: {"queueUrl": "https://sqs.us-east-1.amazonaws.com/111122223333/q", "attributes": {"Policy": p}},
        "https://sqs.us-east-1.amazonaws.com/111122223333/q",
        required=False,
    ),
    Call(
        "sqs-queue-policy-public",
        "sqs.amazonaws.com",
        "CreateQueue",
        lambda p: {"queueName": "q", "attributes": {"Policy": p}},
        "q",
        required=False,
    ),
    Call(
        "ecr-repository-policy-public",
        "ecr.amazonaws.com",
        "SetRepositoryPolicy",
        lambda p: {"repositoryName": "repo", "policyText": p},
        "repo",
    ),
    Call(
        "ecr-repository-policy-public", "ecr.amazonaws.com", "PutRegistryPolicy", lambda p: {"policyText": p}, ACCOUNT
    ),
    Call(
        "secretsmanager-secret-policy-public",
        "secretsmanager.amazonaws.com",
        "PutResourcePolicy",
        lambda p: {"secretId": "prod/db", "resourcePolicy": p},
        "prod/db",
    ),
    Call(
        "s3-access-point-policy-public",
        "s3.amazonaws.com",
        "PutAccessPointPolicy",
        lambda p: {"name": "ap1", "PutAccessPointPolicyRequest": {"xmlns": "x", "Policy": p}},
        "ap1",
    ),
    Call(
        "efs-file-system-policy-public",
        "elasticfilesystem.amazonaws.com",
        "PutFileSystemPolicy",
        lambda p: {"fileSystemId": "fs-1", "policy": p},
        "fs-1",
    ),
    Call(
        "opensearch-domain-policy-public",
        "es.amazonaws.com",
        "UpdateDomainConfig",
        lambda p: {"domainName": "d1", "accessPolicies": p},
        "d1",
        required=False,
    ),
    Call(
        "glacier-vault-policy-public",
        "glacier.amazonaws.com",
        "SetVaultAccessPolicy",
        lambda p: {"accountId": "-", "vaultName": "v1", "policy": {"policy": p}},
        "v1",
    ),
]
by_call = pytest.mark.parametrize("call", CALLS, ids=str)


def judge(run, ev, call: Call, policy: Any, cfg: RuntimeConfig | None = None):
    return run(call.rule, ev(call.name, call.build(policy), source=call.source), cfg)


def encodings(document: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(document)
    return {
        "object": document,
        "json": text,
        "url-encoded": quote(text, safe=""),
        "url-encoded twice": quote(quote(text, safe=""), safe=""),
        "json in a json string": json.dumps(text),
    }


# --------------------------------------------------------------------------- every policy-writing call
@by_call
def test_public_policy_is_risky_and_names_the_statement(run, ev, call):
    a = judge(run, ev, call, json.dumps(PUBLIC))
    assert a.risky
    assert not a.remediable
    assert "Open" in a.reason
    assert a.params["public_statements"]
    if call.resource:
        assert a.resource["id"] == call.resource


@by_call
@pytest.mark.parametrize("encoding", list(encodings(PUBLIC)))
def test_every_encoding_gives_the_same_verdict(run, ev, call, encoding):
    assert judge(run, ev, call, encodings(PUBLIC)[encoding]).risky
    assert not judge(run, ev, call, encodings(PRIVATE)[encoding]).risky


@by_call
def test_own_account_policy_is_not_risky(run, ev, call):
    a = judge(run, ev, call, json.dumps(PRIVATE))
    assert not a.risky, a.reason


@by_call
def test_external_account_is_risky_unless_known(run, ev, call):
    a = judge(run, ev, call, json.dumps(EXTERNAL))
    assert a.risky
    assert a.params["external_accounts"] == [EXT]
    in_org = RuntimeConfig(organization_accounts=frozenset({ACCOUNT, EXT}))
    assert not judge(run, ev, call, json.dumps(EXTERNAL), in_org).risky
    trusted = RuntimeConfig(intended=IntendedExposure(trusted_accounts=frozenset({EXT})))
    assert not judge(run, ev, call, json.dumps(EXTERNAL), trusted).risky


@by_call
def test_request_too_large_is_an_alert(run, ev, call):
    a = run(call.rule, ev(call.name, dict(TOO_LARGE), source=call.source))
    assert a.risky
    assert not a.remediable
    assert "too large" in a.reason
    assert a.params == {"request_too_large": True}


@by_call
def test_unreadable_policy_is_an_alert(run, ev, call):
    a = judge(run, ev, call, '{"Version": "2012-10-17", "Statement": [')
    assert a.risky
    assert "cannot be read" in a.reason


@by_call
def test_duplicate_keys_are_an_alert_not_a_guess(run, ev, call):
    text = '{"Statement": [{"Effect": "Allow", "Principal": "*", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "*"}]}'
    assert judge(run, ev, call, text).risky


@by_call
def test_missing_policy(run, ev, call):
    request = call.build(None)
    a = run(call.rule, ev(call.name, request, source=call.source))
    assert a.risky is call.required, a.reason


@by_call
def test_deny_statements_are_not_grants(run, ev, call):
    deny = doc({"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}, *PRIVATE["Statement"])
    assert not judge(run, ev, call, json.dumps(deny)).risky


@by_call
def test_organization_pin(run, ev, call):
    pinned = doc(allow("*", {"StringEquals": {"aws:PrincipalOrgID": ORG}}))
    assert not judge(run, ev, call, json.dumps(pinned), RuntimeConfig(org_id=ORG)).risky
    other = judge(run, ev, call, json.dumps(pinned), RuntimeConfig(org_id="o-zzzzzzzzzz"))
    assert other.risky
    assert ORG in other.reason


@by_call
def test_service_principal_pinned_to_this_account_is_not_a_finding(run, ev, call):
    own = doc(
        allow(
            {"Service": "events.amazonaws.com"},
            {"ArnEquals": {"aws:SourceArn": f"arn:aws:events:us-east-1:{ACCOUNT}:rule/r"}},
        )
    )
    assert not judge(run, ev, call, json.dumps(own)).risky
    foreign = doc(allow({"Service": "events.amazonaws.com"}, {"StringEquals": {"aws:SourceAccount": EXT}}))
    a = judge(run, ev, call, json.dumps(foreign))
    assert a.risky
    assert a.params["external_accounts"] == [EXT]


@by_call
def test_unpinned_service_principal_is_not_judged(run, ev, call):
    """A documented limit: a confused-deputy risk, not an exposure to an identity (module docstring)."""
    assert not judge(run, ev, call, json.dumps(doc(allow({"Service": "s3.amazonaws.com"})))).risky


# --------------------------------------------------------------------------- KMS
def test_kms_lockout_bypass_is_risky_with_a_private_policy(run, ev):
    req = {"keyId": "k-1", "policy": json.dumps(PRIVATE), "bypassPolicyLockoutSafetyCheck": True}
    a = run("kms-key-policy-public", ev("PutKeyPolicy", req, source="kms.amazonaws.com"))
    assert a.risky
    assert "bypassPolicyLockoutSafetyCheck" in a.reason
    req["bypassPolicyLockoutSafetyCheck"] = "false"
    assert not run("kms-key-policy-public", ev("PutKeyPolicy", req, source="kms.amazonaws.com")).risky


def test_kms_caller_account_and_via_service_pin_is_not_public(run, ev):
    policy = doc(
        allow(
            {"AWS": "*"},
            {"StringEquals": {"kms:CallerAccount": ACCOUNT, "kms:ViaService": "ec2.us-east-1.amazonaws.com"}},
        )
    )
    req = {"keyId": "k-1", "policy": json.dumps(policy)}
    assert not run("kms-key-policy-public", ev("PutKeyPolicy", req, source="kms.amazonaws.com")).risky


def test_kms_create_key_names_the_new_key(run, ev):
    resp = {"keyMetadata": {"keyId": "k-9", "arn": "arn:aws:kms:us-east-1:111122223333:key/k-9"}}
    a = run("kms-key-policy-public", ev("CreateKey", {"policy": json.dumps(PUBLIC)}, resp, source="kms.amazonaws.com"))
    assert a.risky
    assert a.resource == {"type": "AWS::KMS::Key", "id": "arn:aws:kms:us-east-1:111122223333:key/k-9"}


def test_kms_protected_trail_key_is_named(run, ev):
    key = "arn:aws:kms:us-east-1:111122223333:key/trail"
    cfg = RuntimeConfig(protected_key_arns=frozenset({key}))
    a = run(
        "kms-key-policy-public", ev("PutKeyPolicy", {"keyId": key, "policy": PUBLIC}, source="kms.amazonaws.com"), cfg
    )
    assert a.risky
    assert "protected trail key" in a.reason


# --------------------------------------------------------------------------- SNS / SQS
def test_sns_other_attributes_are_not_policies(run, ev):
    req = {"topicArn": "arn:aws:sns:us-east-1:111122223333:t", "attributeName": "DisplayName", "attributeValue": "*"}
    assert not run("sns-topic-policy-public", ev("SetTopicAttributes", req, source="sns.amazonaws.com")).risky


def test_sqs_other_attributes_are_not_policies(run, ev):
    req = {"queueUrl": "https://sqs.us-east-1.amazonaws.com/111122223333/q", "attributes": {"VisibilityTimeout": "30"}}
    assert not run("sqs-queue-policy-public", ev("SetQueueAttributes", req, source="sqs.amazonaws.com")).risky


@pytest.mark.parametrize(
    "case",
    [
        (
            "sns-topic-policy-public",
            "sns.amazonaws.com",
            "aWSAccountId",
            {"topicArn": "arn:aws:sns:us-east-1:111122223333:t"},
        ),
        ("sqs-queue-policy-public", "sqs.amazonaws.com", "aWSAccountIds", {"queueUrl": "https://sqs/111122223333/q"}),
    ],
)
def test_add_permission(run, ev, case):
    rule, source, key, target = case

    def call(accounts: Any, cfg: RuntimeConfig | None = None):
        return run(rule, ev("AddPermission", {**target, "label": "l", key: accounts}, source=source), cfg)

    a = call([EXT])
    assert a.risky
    assert a.params["external_accounts"] == [EXT]
    assert not call([ACCOUNT]).risky
    assert not call(EXT, RuntimeConfig(organization_accounts=frozenset({EXT}))).risky
    assert call(["*"]).params["public"] is True
    assert call([]).risky  # nothing readable: alert
    assert run(rule, ev("AddPermission", dict(TOO_LARGE), source=source)).risky


# --------------------------------------------------------------------------- Secrets Manager
def _secret(run, ev, policy: dict[str, Any], block: Any, cfg: RuntimeConfig | None = None):
    req = {"secretId": "s", "resourcePolicy": json.dumps(policy), "blockPublicPolicy": block}
    return run(
        "secretsmanager-secret-policy-public", ev("PutResourcePolicy", req, source="secretsmanager.amazonaws.com"), cfg
    )


def test_secret_block_public_policy_off_with_a_wildcard_is_a_signal(run, ev):
    pinned = doc(allow("*", {"StringEquals": {"aws:PrincipalOrgID": ORG}}, sid="Org"))
    cfg = RuntimeConfig(org_id=ORG)
    a = _secret(run, ev, pinned, False, cfg)
    assert a.risky
    assert "blockPublicPolicy false" in a.reason
    assert not _secret(run, ev, pinned, True, cfg).risky
    assert not _secret(run, ev, pinned, None, cfg).risky
    assert not _secret(run, ev, PRIVATE, False, cfg).risky


# --------------------------------------------------------------------------- OpenSearch
def _domain(run, ev, name: str, policy: Any, vpc: Any = None, *, cfg: RuntimeConfig | None = None):
    req: dict[str, Any] = {"domainName": "d1", "accessPolicies": policy}
    if vpc is not None:
        req["vPCOptions"] = vpc
    return run("opensearch-domain-policy-public", ev(name, req, source="es.amazonaws.com"), cfg)


@pytest.mark.parametrize("name", ["CreateDomain", "CreateElasticsearchDomain"])
def test_opensearch_created_in_a_vpc_is_not_internet_exposed(run, ev, name):
    vpc = {"subnetIds": ["subnet-1"], "securityGroupIds": ["sg-1"]}
    assert not _domain(run, ev, name, json.dumps(PUBLIC), vpc).risky
    assert _domain(run, ev, name, json.dumps(PUBLIC)).risky
    assert _domain(run, ev, name, json.dumps(PUBLIC), {"subnetIds": []}).risky
    # a VPC does not make a grant to an outside account harmless
    assert _domain(run, ev, name, json.dumps(EXTERNAL), vpc).risky


def test_opensearch_update_is_judged_even_with_vpc_options(run, ev):
    assert _domain(run, ev, "UpdateDomainConfig", json.dumps(PUBLIC), {"subnetIds": ["subnet-1"]}).risky


def test_opensearch_ip_pinned_policy_is_not_public(run, ev):
    pinned = doc(allow({"AWS": "*"}, {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}}))
    assert not _domain(run, ev, "UpdateDomainConfig", json.dumps(pinned)).risky
    halves = doc(allow({"AWS": "*"}, {"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}}))
    assert _domain(run, ev, "UpdateDomainConfig", json.dumps(halves)).risky


# --------------------------------------------------------------------------- S3 access points, Glacier
def test_access_point_variants_are_read(run, ev):
    mrap = {"PutMultiRegionAccessPointPolicyRequest": {"Details": {"Name": "global", "Policy": json.dumps(PUBLIC)}}}
    a = run("s3-access-point-policy-public", ev("PutMultiRegionAccessPointPolicy", mrap, source="s3.amazonaws.com"))
    assert a.risky
    assert a.resource["id"] == "global"
    olap = {"name": "olap", "PutAccessPointPolicyForObjectLambdaRequest": {"Policy": json.dumps(PRIVATE)}}
    assert not run(
        "s3-access-point-policy-public", ev("PutAccessPointPolicyForObjectLambda", olap, source="s3.amazonaws.com")
    ).risky


def test_glacier_bare_policy_is_read(run, ev):
    req = {"accountId": "-", "vaultName": "v1", "policy": json.dumps(PUBLIC)}
    assert run("glacier-vault-policy-public", ev("SetVaultAccessPolicy", req, source="glacier.amazonaws.com")).risky


# --------------------------------------------------------------------------- Lambda layers
LAYER = "lambda-layer-permission-public"


def _layer(run, ev, principal: Any, org: str | None = None, cfg: RuntimeConfig | None = None):
    req: dict[str, Any] = {
        "layerName": "utils",
        "versionNumber": 3,
        "statementId": "s",
        "action": "lambda:GetLayerVersion",
    }
    if principal is not None:
        req["principal"] = principal
    if org is not None:
        req["organizationId"] = org
    return run(LAYER, ev("AddLayerVersionPermission20181031", req, source="lambda.amazonaws.com"), cfg)


def test_layer_public(run, ev):
    a = _layer(run, ev, "*")
    assert a.risky
    assert a.resource == {"type": "AWS::Lambda::LayerVersion", "id": "utils:3"}
    assert a.params == {"public": True}


def test_layer_organization(run, ev):
    assert not _layer(run, ev, "*", ORG, RuntimeConfig(org_id=ORG)).risky
    assert _layer(run, ev, "*", "o-zzzzzzzzzz", RuntimeConfig(org_id=ORG)).risky
    unknown = _layer(run, ev, "*", ORG)
    assert unknown.risky
    assert "org_id is not set" in unknown.reason


@pytest.mark.parametrize("principal", [EXT, f"arn:aws:iam::{EXT}:root", "111122223334"])
def test_layer_other_accounts(run, ev, principal):
    assert _layer(run, ev, principal).risky


def test_layer_own_or_known_account(run, ev):
    assert not _layer(run, ev, ACCOUNT).risky
    assert not _layer(run, ev, EXT, cfg=RuntimeConfig(organization_accounts=frozenset({EXT}))).risky


def test_layer_without_principal_or_too_large(run, ev):
    assert _layer(run, ev, None).risky
    assert run(LAYER, ev("AddLayerVersionPermission20181031", dict(TOO_LARGE), source="lambda.amazonaws.com")).risky


# --------------------------------------------------------------------------- robustness
GARBAGE: list[Any] = [None, 7, [], ["x"], {"a": {"b": []}}, "", "null", "[]", '"just a string"', {"Statement": "x"}]


@by_call
@pytest.mark.parametrize("value", GARBAGE, ids=repr)
def test_garbage_never_raises(run, ev, call, value):
    a = judge(run, ev, call, value)
    assert isinstance(a.reason, str) and a.reason


def test_config_replace_keeps_org_semantics():
    """The helper configs above are plain RuntimeConfig values (no hidden defaults turning the org on)."""
    assert RuntimeConfig().org_id is None
    assert replace(RuntimeConfig(), org_id=ORG).organization_accounts is None


# --------------------------------------------------------------------------- properties


def run_call(call: Call, policy: Any, cfg: RuntimeConfig) -> Assessment:
    """The call's decision without fixtures (hypothesis runs many examples per test function)."""
    rule = rules_by_id()[call.rule]
    record = {
        "eventName": call.name,
        "eventSource": call.source,
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT},
        "requestParameters": call.build(policy),
    }
    ev = CloudTrailEvent({"detail-type": "AWS API Call via CloudTrail", "account": ACCOUNT, "detail": record})
    return registry()[rule.decision](ev, rule, cfg)


PRINCIPALS = [
    "*",
    {"AWS": "*"},
    {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    {"AWS": f"arn:aws:iam::{EXT}:root"},
    {"AWS": "arn:aws:iam::*:root"},
    {"Service": "sns.amazonaws.com"},
    {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/a", EXT]},
]
CONDITIONS = [
    None,
    {"StringEquals": {"aws:PrincipalOrgID": ORG}},
    {"StringLike": {"aws:PrincipalOrgID": "o-*"}},
    {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    {"StringEquals": {"aws:SourceAccount": EXT}},
    {"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:t"}},
    {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
    {"StringEqualsIfExists": {"aws:PrincipalOrgID": ORG}},
]
statement = st.builds(
    lambda effect, principal, condition: {
        "Effect": effect,
        "Principal": principal,
        "Action": "*",
        "Resource": "*",
        **({"Condition": condition} if condition else {}),
    },
    st.sampled_from(["Allow", "Deny"]),
    st.sampled_from(PRINCIPALS),
    st.sampled_from(CONDITIONS),
)
statements_ = st.lists(statement, min_size=1, max_size=4)
configs = st.sampled_from(
    [RuntimeConfig(), RuntimeConfig(org_id=ORG), RuntimeConfig(organization_accounts=frozenset({EXT}))]
)
calls = st.sampled_from(CALLS)


@given(calls, statements_, configs, st.sampled_from(list(encodings(PUBLIC))))
def test_property_encoding_never_changes_the_verdict(call, stmts, cfg, encoding):
    document = doc(*stmts)
    plain = run_call(call, document, cfg)
    encoded = run_call(call, encodings(document)[encoding], cfg)
    assert (plain.risky, plain.params) == (encoded.risky, encoded.params)


@given(calls, statements_, statements_, configs)
def test_property_more_statements_never_hide_a_finding(call, stmts, extra, cfg):
    before = run_call(call, doc(*stmts), cfg)
    after = run_call(call, doc(*stmts, *extra), cfg)
    assert after.risky or not before.risky
    assert set(before.params.get("external_accounts", [])) <= set(after.params.get("external_accounts", []))


@given(calls, statements_, configs, st.randoms(use_true_random=False))
def test_property_statement_order_does_not_matter(call, stmts, cfg, rnd):
    shuffled = list(stmts)
    rnd.shuffle(shuffled)
    a = run_call(call, doc(*stmts), cfg)
    b = run_call(call, doc(*shuffled), cfg)
    assert a.risky == b.risky
    assert a.params.get("external_accounts") == b.params.get("external_accounts")
