"""Template-walking helpers for the detection/remediation deployment tests."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _load_catalog_matcher() -> Callable[[dict[str, Any], dict[str, Any]], bool]:
    """The catalog tests' matcher: moto's EventPattern plus EventBridge's array-of-objects semantics.

    Shared (not copied) so both test areas judge patterns the same way.
    """
    path = Path(__file__).resolve().parents[1] / "catalog" / "catalog_helpers.py"
    spec = importlib.util.spec_from_file_location("_tg_catalog_helpers", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn: Callable[[dict[str, Any], dict[str, Any]], bool] = module.moto_matches
    return fn


moto_matches = _load_catalog_matcher()


def resources_of(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template.get("Resources", {}).items() if v.get("Type") == type_}


def central_rule_parts(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Rules on the central bus by the trailguard rule id found in their input template, in name order.

    A catalog rule whose pattern was split has one EventBridge rule per part (``tg-<id>``, ``tg-<id>-p2``, ...).
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for res in resources_of(template, "AWS::Events::Rule").values():
        props = res["Properties"]
        if props.get("EventBusName") is None or "EventPattern" not in props:
            continue
        (target,) = props["Targets"]
        tpl = target["InputTransformer"]["InputTemplate"]
        rule_id = json.loads(tpl.replace("<aws.events.event.json>", "null"))["trailguard_rule"]
        out.setdefault(rule_id, []).append(props)
    for parts in out.values():
        parts.sort(key=lambda p: (len(p["Name"]), p["Name"]))
    return out


def central_rules(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The first (or only) part of each central rule, keyed by trailguard rule id."""
    return {rule_id: parts[0] for rule_id, parts in central_rule_parts(template).items()}


def forwarding_rules(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r["Properties"]
        for r in resources_of(template, "AWS::Events::Rule").values()
        if r["Properties"].get("EventBusName") == "default"
    ]
