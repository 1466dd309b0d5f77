"""Helpers for the operator-experience tests (dashboard, alarms, docs). Synths come from tests/conftest.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DETECTION = "TrailguardDetection"
ENGINE_PACKAGE = ROOT / "lambdas" / "trailguard_engine"

#: ``self.metric("Name", ...)``, ``self.count("Name", ...)``, ``_count("Name", ...)``,
#: ``add_metric(name="Name", ...)``: how the Lambda code emits its metrics.
_EMIT = re.compile(r"""(?:\bmetric|\b_?count|\badd_metric)\(\s*(?:name\s*=\s*)?["']([A-Z][A-Za-z]+)["']""")


def flat(node: Any) -> str:
    """CloudFormation intrinsics rendered as text: ``{"Ref": "X"}`` -> ``<Ref:X>``, GetAtt -> ``<X.Arn>``."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        if "Ref" in node:
            return f"<Ref:{node['Ref']}>"
        if "Fn::GetAtt" in node:
            return "<" + ".".join(node["Fn::GetAtt"]) + ">"
        if "Fn::Join" in node:
            sep, parts = node["Fn::Join"]
            return str(sep).join(flat(p) for p in parts)
    return json.dumps(node, sort_keys=True)


def resources(tpl: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in tpl["Resources"].items() if v["Type"] == type_}


def dashboard_body(tpl: dict[str, Any]) -> dict[str, Any]:
    """The one dashboard of the template, its body parsed (intrinsics flattened inside the JSON strings)."""
    boards = resources(tpl, "AWS::CloudWatch::Dashboard")
    assert len(boards) == 1, f"expected one dashboard, got {sorted(boards)}"
    props = next(iter(boards.values()))["Properties"]
    body: dict[str, Any] = json.loads(flat(props["DashboardBody"]))
    body["_name"] = props.get("DashboardName")
    return body


def widget_metrics(widget: dict[str, Any]) -> list[list[Any]]:
    return list(widget.get("properties", {}).get("metrics", []))


def expressions(body: dict[str, Any]) -> list[str]:
    """Every math/SEARCH expression on the dashboard."""
    out = []
    for w in body["widgets"]:
        for m in widget_metrics(w):
            for part in m:
                if isinstance(part, dict) and "expression" in part:
                    out.append(part["expression"])
    return out


def widget(body: dict[str, Any], title_part: str) -> dict[str, Any]:
    found = [w for w in body["widgets"] if title_part in w.get("properties", {}).get("title", "")]
    assert len(found) == 1, f"expected one widget titled like {title_part!r}, got {len(found)}"
    return found[0]


def emitted_metric_names() -> set[str]:
    """Every custom metric name the Lambda package emits (engine, reconcile, drift)."""
    names: set[str] = set()
    for path in ENGINE_PACKAGE.rglob("*.py"):
        names |= set(_EMIT.findall(path.read_text()))
    return names


def function_service(tpl: dict[str, Any], handler: str) -> str:
    """POWERTOOLS_SERVICE_NAME of the function with this handler."""
    for res in resources(tpl, "AWS::Lambda::Function").values():
        if res["Properties"].get("Handler") == handler:
            return str(res["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"])
    raise AssertionError(f"no function with handler {handler}")


def function_lid(tpl: dict[str, Any], handler: str) -> str:
    for lid, res in resources(tpl, "AWS::Lambda::Function").items():
        if res["Properties"].get("Handler") == handler:
            return lid
    raise AssertionError(f"no function with handler {handler}")


def dead_letter_queue_lids(tpl: dict[str, Any]) -> set[str]:
    """Queues used as a dead letter: SQS redrive targets, EventBridge target DLQs, Lambda on-failure destinations."""
    queues = resources(tpl, "AWS::SQS::Queue")
    arn_to_lid = {f"<{lid}.Arn>": lid for lid in queues}
    out: set[str] = set()
    for q in queues.values():
        redrive = q["Properties"].get("RedrivePolicy")
        if redrive:
            out.add(arn_to_lid[flat(redrive["deadLetterTargetArn"])])
    for rule in resources(tpl, "AWS::Events::Rule").values():
        for t in rule["Properties"].get("Targets", []):
            if "DeadLetterConfig" in t:
                out.add(arn_to_lid[flat(t["DeadLetterConfig"]["Arn"])])
    for cfg in resources(tpl, "AWS::Lambda::EventInvokeConfig").values():
        on_failure = cfg["Properties"].get("DestinationConfig", {}).get("OnFailure")
        if on_failure:
            out.add(arn_to_lid[flat(on_failure["Destination"])])
    return out
