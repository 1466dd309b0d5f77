"""EventBridge delivery through the central bus's rules: pattern match + input transformer.

moto's EventBridge does not evaluate ``$or`` nested inside ``detail`` (the
catalog uses it), so routing is done here with the engine's EventBridge
matcher (checked against moto's matcher by a differential test) and an
implementation of the input transformer's documented substitutions.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trailguard_engine.events import detail_type_for, source_for
from trailguard_engine.matcher import matches

from trailguard.replay import DeployedRule

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


class TransformError(ValueError):
    """An input transformer cannot be applied to an event."""


def eventbridge_event(record: Mapping[str, Any], *, account: str, region: str) -> dict[str, Any]:
    """The event CloudTrail's EventBridge integration puts on the default bus for ``record``."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type_for(record),
        "source": source_for(str(record["eventSource"])),
        "account": account,
        "time": record.get("eventTime") or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": dict(record),
    }


def _json_path(path: str, event: Mapping[str, Any]) -> Any:
    if path == "$":
        return event
    if not path.startswith("$."):
        raise TransformError(f"unsupported InputPath {path!r}")
    cur: Any = event
    for part in path[2:].split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def apply_input_transformer(
    template: str, paths: Mapping[str, str], event: Mapping[str, Any], *, rule_name: str, rule_arn: str
) -> Any:
    """The target input EventBridge builds from ``template`` (documented substitutions only)."""
    values: dict[str, Any] = {k: _json_path(v, event) for k, v in paths.items()}
    reserved: dict[str, Any] = {
        "aws.events.event.json": event,
        "aws.events.rule-name": rule_name,
        "aws.events.rule-arn": rule_arn,
        "aws.events.event.ingestion-time": event.get("time", ""),
    }

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in values:
            v = values[name]
        elif name in reserved:
            v = reserved[name]
        else:
            return m.group(0)
        inside_quotes = m.start() > 0 and template[m.start() - 1] == '"' and template[m.end() : m.end() + 1] == '"'
        if isinstance(v, str) and inside_quotes:
            return json.dumps(v)[1:-1]
        return json.dumps(v)

    text = _PLACEHOLDER.sub(sub, template)
    try:
        return json.loads(text)
    except ValueError:
        return text  # a plain-text input template


@dataclass(frozen=True, slots=True)
class Delivery:
    rule_id: str
    rule_name: str
    payload: Any


class Router:
    """The central bus's rules (the demo reads them back from the emulator after ``cdk deploy``); disabled ones deliver nothing."""

    def __init__(self, rules: list[DeployedRule], *, account: str, region: str, bus: str) -> None:
        self.rules = rules
        self.account = account
        self.region = region
        self.bus = bus

    def deliver(self, event: Mapping[str, Any]) -> list[Delivery]:
        out = []
        for i, dep in enumerate(self.rules):
            if dep.state != "ENABLED" or not matches(dep.pattern, event):
                continue
            name = f"{dep.stack}/{dep.logical_id}"
            arn = f"arn:aws:events:{self.region}:{self.account}:rule/{self.bus}/{dep.logical_id}-{i}"
            payload: Any = event
            if dep.input_template is not None:
                payload = apply_input_transformer(
                    dep.input_template, dep.input_paths, event, rule_name=name, rule_arn=arn
                )
            out.append(Delivery(dep.rule_id, name, payload))
        return out
