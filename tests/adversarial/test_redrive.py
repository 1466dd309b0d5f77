"""Crafted dead letters: ``trailguard redrive`` re-submits only well-formed engine inputs, exactly as checked.

The attacker can put a message in a dead-letter queue (a principal with ``sqs:SendMessage`` on it, or
a real event shaped to fail delivery) and hopes the operator's re-drive will carry it to the engine in
a form the engine would not otherwise take, or with more power than it had. Every crafted message
below must stay in the queue, with the reason, and nothing may be sent; what *is* sent must be the
checked object itself (no raw bytes, ``origin`` kept).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.matcher import matches

from trailguard import redrive as rd

REGION = "us-east-1"
ENGINE = "TrailguardDetection-Engine7B56DDA2"
ENGINE_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:{ENGINE}"
RULE = "cloudtrail-stop-logging"
RULES = rules_by_id()
EXAMPLE: dict[str, Any] = dict(RULES[RULE].examples_positive[0])


def record(payload: Any, *, condition: str = "RetriesExhausted", arn: str = ENGINE_ARN) -> dict[str, Any]:
    return {
        "version": "1.0",
        "timestamp": "2026-10-01T12:07:41.118Z",
        "requestContext": {
            "requestId": "r-1",
            "functionArn": f"{arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": 3,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "boom"},
    }


def good() -> dict[str, Any]:
    return {"trailguard_rule": RULE, "event": copy.deepcopy(EXAMPLE)}


def event_with(**changes: Any) -> dict[str, Any]:
    e = copy.deepcopy(EXAMPLE)
    for k, v in changes.items():
        if k.startswith("detail_"):
            e["detail"][k.removeprefix("detail_")] = v
        else:
            e[k] = v
    return e


def root_event(source: str) -> dict[str, Any]:
    """A root-user call that the root-activity rule would judge, with the envelope ``source`` given."""
    e = event_with(source=source)
    e["detail"]["userIdentity"] = {"type": "Root", "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"}
    return e


def benign_envelope() -> dict[str, Any]:
    e = event_with(source="aws.sts", detail_eventSource="sts.amazonaws.com", detail_eventName="GetCallerIdentity")
    assert not any(matches(r.event_pattern, e) for r in RULES.values()), "precondition: no rule matches it"
    return e


def raw_duplicate_rule() -> str:
    """Python keeps the last duplicate key, other parsers the first: the two rule ids disagree."""
    head = '{"trailguard_rule": "ec2-security-group-ingress-public", "trailguard_rule": '
    inner = head + json.dumps(RULE) + ', "event": ' + json.dumps(EXAMPLE) + "}"
    return json.dumps(record({})).replace('"requestPayload": {}', f'"requestPayload": {inner}')


#: (case id, body, SQS message attributes, reason the tool must give)
CRAFTED: list[tuple[str, Callable[[], str], dict[str, str], str]] = [
    ("not-json", lambda: "<xml/>", {}, "not JSON"),
    ("json-array", lambda: json.dumps([good()]), {}, "not an object"),
    ("duplicate-key", raw_duplicate_rule, {}, "duplicate JSON key"),
    ("nan", lambda: json.dumps(record(good())).replace('"approximateInvokeCount": 3', '"approximateInvokeCount": NaN'), {}, "NaN is not JSON"),
    ("deep-nesting", lambda: '{"requestPayload": ' + "[" * 200_000 + "]" * 200_000 + "}", {}, "not JSON"),
    ("unknown-rule", lambda: json.dumps(record({**good(), "trailguard_rule": "make-me-admin"})), {}, "not a rule of the catalog"),
    ("extra-key", lambda: json.dumps(record({**good(), "dry_run": False})), {}, "unexpected keys"),
    ("origin-not-text", lambda: json.dumps(record({**good(), "origin": {"log-file": False}})), {}, "origin is not a short string"),
    ("custom-source", lambda: json.dumps(record({"trailguard_rule": "root-activity", "event": root_event("my.app")})), {}, "not an AWS service"),
    ("custom-source-bare", lambda: json.dumps(root_event("evil.cloudtrail")), {}, "not an AWS service"),
    ("pattern-mismatch", lambda: json.dumps(record({**good(), "event": event_with(detail_eventName="StartLogging")})), {}, "does not match the pattern"),
    ("no-rule-matches", lambda: json.dumps(benign_envelope()), {}, "no catalog rule matches"),
    ("bare-record", lambda: json.dumps(record({**good(), "event": EXAMPLE["detail"]})), {}, "not an EventBridge envelope"),
    ("detail-not-cloudtrail", lambda: json.dumps(record({**good(), "event": event_with(detail={"x": 1})})), {}, "the engine would reject it"),
    ("identity-is-a-list", lambda: json.dumps(record({**good(), "event": event_with(detail_userIdentity=["Root"])})), {}, "the engine would reject it"),
    ("payload-is-a-string", lambda: json.dumps(record(json.dumps(good()))), {}, "not an engine input object"),
    ("success-record", lambda: json.dumps(record(good(), condition="Success")), {}, "on-success record"),
    ("other-function", lambda: json.dumps(record(good(), arn=f"arn:aws:lambda:{REGION}:123456789012:function:Attacker")), {}, "a record of function 'Attacker'"),
    ("other-target", lambda: json.dumps(EXAMPLE), {"TARGET_ARN": f"arn:aws:lambda:{REGION}:123456789012:function:Attacker"}, "a dead letter for target 'Attacker'"),
    ("record-without-context", lambda: json.dumps({"requestPayload": good()}), {}, "without requestContext"),
    ("neither", lambda: json.dumps({"hello": "world"}), {}, "not a Lambda destination record"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "attributes", "reason"), CRAFTED, ids=[c[0] for c in CRAFTED])
def test_a_crafted_message_is_refused_with_its_reason(
    case: str, body: Callable[[], str], attributes: dict[str, str], reason: str
) -> None:
    with pytest.raises(rd.Unredrivable, match=reason):
        rd.unwrap(body(), attributes, rules=RULES, function=ENGINE)


# --------------------------------------------------------------------------- #
# through the queue: nothing crafted is sent, nothing crafted is deleted
# --------------------------------------------------------------------------- #
@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        yield sqs, sqs.create_queue(QueueName="dlq")["QueueUrl"]


def _send(sqs: Any, url: str, body: str, attributes: dict[str, str] | None = None) -> None:
    attrs = {k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()}
    sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attrs)


def _visible(sqs: Any, url: str) -> int:
    return int(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )


def test_among_crafted_messages_only_the_genuine_ones_reach_the_engine(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    crafted = [c for c in CRAFTED if c[0] != "deep-nesting"]  # SQS caps a body at 256 KiB
    for _case, body, attributes, _reason in crafted:
        _send(sqs, url, body(), attributes)
    genuine = [record(good()), record({**good(), "origin": "log-file"}), EXAMPLE]
    for g in genuine:
        _send(sqs, url, json.dumps(g))
    sent: list[bytes] = []
    report = rd.redrive(sqs, url, rules=RULES, resubmit=sent.append, function=ENGINE, max_messages=100, wait_seconds=0)
    assert report.count("resubmitted") == len(genuine)
    assert report.count("left") == len(crafted)
    assert _visible(sqs, url) == len(crafted)  # the crafted ones are all back, visible, for a person to read
    got = sorted((json.loads(b) for b in sent), key=json.dumps)
    want = sorted([good(), {**good(), "origin": "log-file"}, EXAMPLE], key=json.dumps)
    assert got == want  # exactly the checked objects; origin kept, so a log-file event stays alert-only


def test_what_is_sent_is_the_checked_object_not_the_raw_bytes() -> None:
    """Whitespace, key order and escapes of the message never reach the engine: the checked object is re-serialized."""
    payload = good()
    body = json.dumps(record(payload), indent=3, ensure_ascii=True).replace('"StopLogging"', '"\\u0053topLogging"')
    u = rd.unwrap(body, {}, rules=RULES, function=ENGINE)
    assert u.body() == json.dumps(payload, separators=(",", ":")).encode()
    assert json.loads(u.body()) == payload


def test_a_dry_run_of_crafted_messages_sends_nothing_and_deletes_nothing(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    for _case, body, attributes, _reason in CRAFTED[:8]:
        _send(sqs, url, body(), attributes)
    report = rd.redrive(sqs, url, rules=RULES, resubmit=None, function=ENGINE, wait_seconds=0)
    assert report.dry_run
    assert report.count("left") == 8
    assert _visible(sqs, url) == 8


# --------------------------------------------------------------------------- #
# fuzz: any JSON shape is refused cleanly, never crashes the tool
# --------------------------------------------------------------------------- #
KEYS = st.sampled_from(
    ["requestContext", "requestPayload", "condition", "functionArn", "trailguard_rule", "event", "origin",
     "detail", "detail-type", "source", "eventName", "eventSource", "eventID", "userIdentity", "x"]
)  # fmt: skip
SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.sampled_from(["aws.cloudtrail", RULE])
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6), max_leaves=30
)


@given(JSON)
def test_any_json_is_refused_cleanly_or_is_a_checked_engine_input(doc: Any) -> None:
    try:
        u = rd.unwrap(json.dumps(doc), {}, rules=RULES, function=ENGINE)
    except rd.Unredrivable:
        return
    # accepted: then it is an engine input the catalog recognizes, from an AWS service
    rule, envelope = rd.check_engine_input(json.loads(u.body()), RULES)
    assert envelope["source"].startswith("aws.")
    assert rule is None or matches(RULES[rule].event_pattern, envelope)
