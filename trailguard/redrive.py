"""Re-drive the engine's dead-letter queues: unwrap each message, check it, re-invoke, then delete.

Two queues hold events the engine never finished:

* the engine's **on-failure destination** (``EngineFailureDlq``): Lambda wraps the original input in
  an invocation record, ``{"version": "1.0", "requestContext": {..., "condition": "RetriesExhausted"},
  "requestPayload": <the input>, "responseContext": {...}, "responsePayload": {...}}``. The engine
  refuses the record itself as input, so the input is taken out of ``requestPayload``;
* the central rules' **target dead-letter queue** (``RuleTargetDlq``): EventBridge puts the original
  event (the envelope, before the rule's input transformer) in the body and says why in message
  attributes (``RULE_ARN``, ``TARGET_ARN``, ``ERROR_CODE``, ``ERROR_MESSAGE``...). The envelope is
  re-driven as it is; the engine then evaluates every catalog rule that matches it (a rule that had
  already handled the event is a duplicate by its idempotency key, so nothing acts twice).

Nothing is re-submitted unless it is a well-formed engine input: strict JSON (no duplicate keys, no
NaN), only the keys trailguard's producers write, a catalog rule id, an EventBridge envelope from an
AWS service (``source`` ``aws.*``) that the engine's own parser accepts and that the named rule's
pattern (or, for a bare envelope, some catalog pattern) matches. The engine receives exactly the
object that was checked, re-serialized, with ``origin`` kept as it was (dropping ``origin: log-file``
would give an unverified log-file event the power to remediate). A message is deleted only after
its re-submission was accepted; everything else is left in the queue and reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from trailguard_engine.events import to_envelope
from trailguard_engine.exceptions import RejectedEvent
from trailguard_engine.matcher import matches
from trailguard_engine.model import Rule

from trailguard.exceptions import TrailguardError

Kind = Literal["lambda-destination", "eventbridge-dlq", "engine-input"]
Status = Literal["resubmitted", "would-resubmit", "left", "failed"]

#: The keys trailguard's producers (the central rules' input transformer, the reconcile path) write.
ENGINE_INPUT_KEYS = frozenset({"trailguard_rule", "event", "origin"})
#: SQS returns at most 10 messages per receive.
SQS_BATCH = 10
#: Seconds a received message stays hidden from other readers while this run holds it.
VISIBILITY_TIMEOUT_S = 300
_MAX_ORIGIN = 64
_EVENTBRIDGE_ATTRIBUTES = ("RULE_ARN", "TARGET_ARN", "ERROR_CODE", "ERROR_MESSAGE", "EXHAUSTED_RETRY_CONDITION")
_CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 4}, user_agent_extra="trailguard-redrive")


class RedriveError(TrailguardError):
    """A re-submission was not accepted (the message stays in the queue)."""


class Unredrivable(ValueError):
    """This message is not something to re-drive; ``str()`` says why. It stays in the queue."""


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """A message's engine input, checked, with what an operator needs to judge it."""

    kind: Kind
    payload: dict[str, Any]
    rule: str | None
    event_id: str
    event_name: str
    account: str
    region: str
    event_time: str
    why: str

    def body(self) -> bytes:
        """The bytes the engine receives: the checked object, re-serialized."""
        return json.dumps(self.payload, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Outcome:
    message_id: str
    status: Status
    detail: str
    unwrapped: Unwrapped | None = None

    def to_json(self) -> dict[str, Any]:
        u = self.unwrapped
        out: dict[str, Any] = {"message_id": self.message_id, "status": self.status, "detail": self.detail}
        if u is not None:
            out |= {
                "kind": u.kind,
                "rule": u.rule,
                "eventID": u.event_id,
                "eventName": u.event_name,
                "account": u.account,
                "region": u.region,
                "eventTime": u.event_time,
                "why": u.why,
            }
        return out


@dataclass
class RedriveReport:
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def ok(self) -> bool:
        """True when every message read was (or would be) re-driven and nothing went wrong."""
        return not self.problems and self.count("left") == 0 and self.count("failed") == 0


# --------------------------------------------------------------------------- #
# unwrapping and checking (pure)
# --------------------------------------------------------------------------- #
def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:  # parsers disagree on which copy wins: never guess
            raise Unredrivable(f"duplicate JSON key {k[:64]!r}")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise Unredrivable(f"{name} is not JSON")


def parse_body(body: str) -> Any:
    """Strict JSON: duplicate keys, NaN/Infinity and nesting too deep to parse are refused."""
    try:
        return json.loads(body, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except Unredrivable:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise Unredrivable(f"body is not JSON: {str(exc)[:120]}") from exc


def function_name(name_or_arn: str) -> str:
    """``arn:aws:lambda:r:a:function:NAME[:qualifier]`` or ``NAME`` -> ``NAME``."""
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        return parts[6] if len(parts) > 6 else ""
    return name_or_arn.split(":", 1)[0]


def _envelope(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or "detail" not in obj or "detail-type" not in obj:
        raise Unredrivable(f"{where} is not an EventBridge envelope (detail-type + detail)")
    source = obj.get("source")
    if not isinstance(source, str) or not source.startswith("aws."):
        raise Unredrivable(f"{where}: source {str(source)[:64]!r} is not an AWS service (aws.*)")
    try:
        return to_envelope(obj)  # the engine's own parser: what it would reject is never sent
    except RejectedEvent as exc:
        raise Unredrivable(f"{where}: the engine would reject it: {exc}") from exc


def check_engine_input(payload: Any, rules: Mapping[str, Rule]) -> tuple[str | None, dict[str, Any]]:
    """``(rule id or None, envelope)`` of a well-formed engine input, or :class:`Unredrivable`.

    Two shapes: ``{"trailguard_rule": id, "event": envelope[, "origin": str]}`` whose rule is in the
    catalog and whose pattern matches the envelope, or a bare envelope some catalog rule matches.
    """
    if not isinstance(payload, dict):
        raise Unredrivable(f"the payload is a {type(payload).__name__}, not an engine input object")
    if "trailguard_rule" not in payload:
        envelope = _envelope(payload, "the payload")
        if not any(matches(r.event_pattern, envelope) for r in rules.values()):
            raise Unredrivable("no catalog rule matches this event")
        return None, envelope
    extra = sorted(set(payload) - ENGINE_INPUT_KEYS)
    if extra:
        raise Unredrivable(f"unexpected keys in the engine input: {', '.join(k[:32] for k in extra[:5])}")
    rule_id = payload["trailguard_rule"]
    if not isinstance(rule_id, str) or rule_id not in rules:
        raise Unredrivable(f"trailguard_rule {str(rule_id)[:64]!r} is not a rule of the catalog")
    origin = payload.get("origin")
    if "origin" in payload and (not isinstance(origin, str) or len(origin) > _MAX_ORIGIN):
        raise Unredrivable("origin is not a short string")
    envelope = _envelope(payload.get("event"), "the event")
    if not matches(rules[rule_id].event_pattern, envelope):
        raise Unredrivable(f"the event does not match the pattern of rule {rule_id}")
    return rule_id, envelope


def unwrap(
    body: str, attributes: Mapping[str, str], *, rules: Mapping[str, Rule], function: str | None = None
) -> Unwrapped:
    """The checked engine input in one queue message; :class:`Unredrivable` says why not.

    ``function`` (the engine, by name or ARN): a record or dead letter that names another function
    as its target is refused.
    """
    obj = parse_body(body)
    if not isinstance(obj, dict):
        raise Unredrivable(f"body is a JSON {type(obj).__name__}, not an object")
    kind: Kind
    if "requestContext" in obj or "requestPayload" in obj:
        kind = "lambda-destination"
        ctx = obj.get("requestContext")
        if not isinstance(ctx, dict) or "requestPayload" not in obj:
            raise Unredrivable("a Lambda destination record without requestContext or requestPayload")
        condition, arn = ctx.get("condition"), ctx.get("functionArn")
        if not isinstance(condition, str) or not isinstance(arn, str):
            raise Unredrivable("requestContext has no condition or functionArn")
        if condition == "Success":
            raise Unredrivable("an on-success record: the invocation did not fail")
        if function is not None and function_name(arn) != function_name(function):
            raise Unredrivable(f"a record of function {function_name(arn)[:64]!r}, not {function_name(function)!r}")
        payload = obj["requestPayload"]
        count = ctx.get("approximateInvokeCount")
        why = f"{condition[:40]} after {count if isinstance(count, int) else '?'} attempts"
    elif "trailguard_rule" in obj:
        kind, payload, why = "engine-input", obj, "engine input"
    elif "detail-type" in obj and "detail" in obj:
        kind, payload = "eventbridge-dlq", obj
        target = attributes.get("TARGET_ARN")
        if function is not None and target and function_name(target) != function_name(function):
            raise Unredrivable(
                f"a dead letter for target {function_name(target)[:64]!r}, not {function_name(function)!r}"
            )
        code, message = attributes.get("ERROR_CODE") or "?", attributes.get("ERROR_MESSAGE") or ""
        why = f"EventBridge could not deliver it: {code[:40]} {message[:80]}".rstrip()
    else:
        raise Unredrivable("not a Lambda destination record, an EventBridge dead letter or an engine input")
    rule, envelope = check_engine_input(payload, rules)
    detail = envelope["detail"]

    def text(v: Any) -> str:
        return v[:256] if isinstance(v, str) else ""

    return Unwrapped(
        kind=kind,
        payload=payload,
        rule=rule,
        event_id=text(detail.get("eventID")),
        event_name=text(detail.get("eventName")),
        account=text(envelope.get("account")),
        region=text(envelope.get("region")),
        event_time=text(detail.get("eventTime")) or text(envelope.get("time")),
        why=why,
    )


# --------------------------------------------------------------------------- #
# the queue
# --------------------------------------------------------------------------- #
def make_client(service: str, region: str | None) -> Any:
    """The one place the redrive makes AWS clients (tests replace it)."""
    make: Any = boto3.client  # boto3-stubs types client() per service literal; ours is dynamic
    return make(service, region_name=region, config=_CLIENT_CONFIG)


def region_of_queue(queue_url: str) -> str | None:
    """``https://sqs.eu-west-1.amazonaws.com/123/q`` -> ``eu-west-1`` (None for other hosts)."""
    host = queue_url.split("://", 1)[-1].split("/", 1)[0]
    parts = host.split(".")
    return parts[1] if len(parts) > 3 and parts[0] == "sqs" else None


Resubmit = Callable[[bytes], None]


def lambda_resubmitter(client: Any, function: str) -> Resubmit:
    """Re-invoke ``function`` asynchronously (as EventBridge did); raises unless Lambda queued it (202)."""

    def resubmit(body: bytes) -> None:
        try:
            resp = client.invoke(FunctionName=function, InvocationType="Event", Payload=body)
        except (ClientError, BotoCoreError) as exc:
            raise RedriveError(f"invoke {function}: {exc}") from exc
        status = resp.get("StatusCode")
        if status != 202:
            raise RedriveError(f"invoke {function} returned status {status}, not 202")

    return resubmit


def _attributes(message: Mapping[str, Any]) -> dict[str, str]:
    raw = message.get("MessageAttributes") or {}
    return {k: str(v.get("StringValue", "")) for k, v in raw.items() if k in _EVENTBRIDGE_ATTRIBUTES}


def redrive(
    sqs: Any,
    queue_url: str,
    *,
    rules: Mapping[str, Rule],
    resubmit: Resubmit | None = None,
    function: str | None = None,
    max_messages: int = 10,
    wait_seconds: int = 1,
) -> RedriveReport:
    """Read up to ``max_messages`` messages and re-drive each well-formed engine input.

    Without ``resubmit`` it is a dry run: nothing is sent or deleted. Every message that is not
    deleted is made visible again at the end of the run (it was hidden while the run held it). A
    failed re-submission stops the run: its cause (permissions, a missing function) is rarely
    specific to one message.
    """
    report = RedriveReport(dry_run=resubmit is None)
    held: list[str] = []
    seen: set[str] = set()
    try:
        while len(report.outcomes) < max_messages:
            resp = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(SQS_BATCH, max_messages - len(report.outcomes)),
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=VISIBILITY_TIMEOUT_S,
                MessageAttributeNames=["All"],
            )
            batch = resp.get("Messages") or []
            fresh = [m for m in batch if m["MessageId"] not in seen]
            held.extend(m["ReceiptHandle"] for m in batch if m["MessageId"] in seen)
            if not fresh:
                break
            stop = False
            for m in fresh:
                seen.add(m["MessageId"])
                if stop or len(report.outcomes) >= max_messages:
                    held.append(m["ReceiptHandle"])
                    continue
                outcome = _one(sqs, queue_url, m, rules=rules, resubmit=resubmit, function=function)
                report.outcomes.append(outcome)
                if outcome.status != "resubmitted":
                    held.append(m["ReceiptHandle"])
                stop = outcome.status == "failed"
            if stop:
                break
    finally:
        report.problems.extend(_release(sqs, queue_url, held))
    return report


def _one(
    sqs: Any,
    queue_url: str,
    m: Mapping[str, Any],
    *,
    rules: Mapping[str, Rule],
    resubmit: Resubmit | None,
    function: str | None,
) -> Outcome:
    mid = str(m["MessageId"])
    try:
        u = unwrap(str(m.get("Body", "")), _attributes(m), rules=rules, function=function)
    except Unredrivable as exc:
        return Outcome(mid, "left", str(exc))
    if resubmit is None:
        return Outcome(mid, "would-resubmit", "dry run: would re-invoke the engine with the checked input", u)
    try:
        resubmit(u.body())
    except RedriveError as exc:
        return Outcome(mid, "failed", str(exc), u)
    try:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    except (ClientError, BotoCoreError) as exc:  # it will come back; the engine's idempotency dedupes it
        return Outcome(mid, "resubmitted", f"re-submitted, but not deleted ({exc}): it will be re-driven again", u)
    return Outcome(mid, "resubmitted", "re-submitted and deleted", u)


def _release(sqs: Any, queue_url: str, receipts: Iterable[str]) -> list[str]:
    problems = []
    for receipt in receipts:
        try:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
        except (ClientError, BotoCoreError) as exc:
            problems.append(
                f"could not make a message visible again (it will be after {VISIBILITY_TIMEOUT_S} s): {exc}"
            )
    return problems
