"""Which queues of a template are dead-letter / on-failure targets, and which of them an alarm watches.

A queue is identified as a dead-letter target generically, by what points at it, never by its name:

* an SQS queue's ``RedrivePolicy.deadLetterTargetArn`` (and an SNS subscription's);
* an EventBridge rule target's ``DeadLetterConfig.Arn`` (also EventBridge Pipes' and schedules');
* a Lambda function's ``DeadLetterConfig.TargetArn``;
* ``DestinationConfig.OnFailure.Destination`` of a ``Lambda::EventInvokeConfig`` or of an event source mapping.

A queue is watched when an ``AWS::CloudWatch::Alarm`` has a ``QueueName`` dimension that resolves to it
(``Fn::GetAtt [queue, QueueName]``, or the queue's literal ``QueueName``), directly or in a metric of its
metric math, on ``ApproximateNumberOfMessagesVisible``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

DEPTH_METRIC = "ApproximateNumberOfMessagesVisible"


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair anywhere under ``node``."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _queue_ref(value: Any, queues: dict[str, dict[str, Any]]) -> str | None:
    """The logical id of the local queue an ARN expression points at (None: not a local queue)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = json.loads(value)  # RedrivePolicy given as a JSON string
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            lid = target[0] if isinstance(target, list) else str(target).split(".", 1)[0]
            return lid if lid in queues else None
        if "Ref" in value:
            return value["Ref"] if value["Ref"] in queues else None
    if isinstance(value, str):
        for lid, res in queues.items():
            name = res.get("Properties", {}).get("QueueName")
            if isinstance(name, str) and value.endswith(f":{name}"):
                return lid
    return None


def dead_letter_targets(template: dict[str, Any]) -> dict[str, list[str]]:
    """``{queue logical id: [what uses it as a dead-letter / on-failure target]}``; unresolvable ones under ``?``."""
    resources: dict[str, dict[str, Any]] = template.get("Resources", {})
    queues = {lid: r for lid, r in resources.items() if r.get("Type") == "AWS::SQS::Queue"}
    out: dict[str, list[str]] = {}

    def found(value: Any, why: str) -> None:
        lid = _queue_ref(value, queues)
        out.setdefault(lid or "?", []).append(why if lid else f"{why}: {json.dumps(value)[:200]}")

    for lid, res in resources.items():
        props = res.get("Properties", {})
        type_ = res.get("Type", "")
        for key, value in _walk(props):
            if key in ("RedrivePolicy",):
                policy = json.loads(value) if isinstance(value, str) else value
                if isinstance(policy, dict) and "deadLetterTargetArn" in policy:
                    found(policy["deadLetterTargetArn"], f"{lid} ({type_}) RedrivePolicy")
            elif key == "DeadLetterConfig" and isinstance(value, dict):
                arn = value.get("Arn", value.get("TargetArn"))
                if arn is not None:
                    found(arn, f"{lid} ({type_}) DeadLetterConfig")
            elif key == "OnFailure" and isinstance(value, dict) and "Destination" in value:
                dest = value["Destination"]
                text = json.dumps(dest)
                if ":sqs:" in text or _queue_ref(dest, queues):
                    found(dest, f"{lid} ({type_}) OnFailure")
    return out


def _resolves_to(value: Any, lid: str, queue: dict[str, Any]) -> bool:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        parts = target if isinstance(target, list) else str(target).split(".", 1)
        return list(parts) == [lid, "QueueName"]
    name = queue.get("Properties", {}).get("QueueName")
    return isinstance(value, str) and value == name


def _alarm_metrics(props: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each metric an alarm reads: the plain one, or each MetricStat of its metric math."""
    if "MetricName" in props:
        yield {"MetricName": props["MetricName"], "Dimensions": props.get("Dimensions", [])}
    for m in props.get("Metrics", []) or []:
        stat = m.get("MetricStat")
        if stat:
            yield stat["Metric"]


def watched_queues(template: dict[str, Any]) -> set[str]:
    """Logical ids of the queues an alarm watches (by their depth)."""
    resources: dict[str, dict[str, Any]] = template.get("Resources", {})
    queues = {lid: r for lid, r in resources.items() if r.get("Type") == "AWS::SQS::Queue"}
    out: set[str] = set()
    for res in resources.values():
        if res.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        for metric in _alarm_metrics(res.get("Properties", {})):
            if metric.get("MetricName") != DEPTH_METRIC:
                continue
            for dim in metric.get("Dimensions", []):
                if dim.get("Name") != "QueueName":
                    continue
                out |= {lid for lid, q in queues.items() if _resolves_to(dim.get("Value"), lid, q)}
    return out


def unwatched_dead_letter_queues(template: dict[str, Any]) -> list[str]:
    """One line per dead-letter target with no alarm on its depth (or that is not a queue of this template)."""
    targets = dead_letter_targets(template)
    watched = watched_queues(template)
    problems = [
        f"cannot resolve a dead-letter target to a queue of this template: {why}" for why in targets.get("?", [])
    ]
    problems += [
        f"{lid} (dead-letter target of {', '.join(whys)}) has no alarm"
        for lid, whys in sorted(targets.items())
        if lid != "?" and lid not in watched
    ]
    return problems


def all_templates(synth: Any) -> dict[str, dict[str, Any]]:
    """Every template of a synth, StackSet template bodies included (``<stack>/<logical id>``)."""
    out = dict(synth.templates)
    for stack, tpl in synth.templates.items():
        for lid, res in tpl.get("Resources", {}).items():
            if res.get("Type") == "AWS::CloudFormation::StackSet":
                body = res["Properties"]["TemplateBody"]
                out[f"{stack}/{lid}"] = json.loads(body) if isinstance(body, str) else body
    return out
