"""The central bus's rules as the emulator holds them after ``cdk deploy`` (not as cdk.out says)."""

from __future__ import annotations

import json
from typing import Any

from trailguard_engine.catalog import load_catalog

from trailguard.exceptions import TrailguardError
from trailguard.replay import CENTRAL_BUS_NAME, DeployedRule, rule_id_of


class DeployedRulesError(TrailguardError):
    """The deployed central-bus rules cannot be read or attributed to catalog rules."""


def deployed_rules(events: Any, *, bus: str = CENTRAL_BUS_NAME, stack: str = "deployed") -> list[DeployedRule]:
    """Every rule on ``bus`` with its deployed EventPattern, state and target input transformer.

    The rule id comes from the deployed target's input transformer (``{"trailguard_rule": "<id>"}``), as for
    templates. A rule that cannot be attributed is an error: the demo never routes through a guess.
    """
    catalog_ids = {r.id for r in load_catalog()}
    out: list[DeployedRule] = []
    for page in events.get_paginator("list_rules").paginate(EventBusName=bus):
        for summary in page["Rules"]:
            name = summary["Name"]
            rule = events.describe_rule(Name=name, EventBusName=bus)
            if "EventPattern" not in rule:
                continue  # a scheduled rule: nothing is routed through it
            targets = events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]
            props: dict[str, Any] = {"Name": name, "Description": rule.get("Description"), "Targets": targets}
            rule_id, template, paths = rule_id_of(props, catalog_ids)
            if rule_id is None:
                raise DeployedRulesError(f"{bus}/{name}: cannot tell which catalog rule this deployed rule is")
            out.append(
                DeployedRule(
                    rule_id=rule_id,
                    pattern=json.loads(rule["EventPattern"]),
                    input_template=template,
                    input_paths=paths,
                    state=str(rule.get("State", "ENABLED")),
                    stack=stack,
                    logical_id=name,
                )
            )
    if not out:
        raise DeployedRulesError(f"no pattern rules on the deployed bus {bus}")
    return out
