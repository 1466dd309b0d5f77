"""Read what the demo needs from a synthesized cloud assembly (``cdk.out``) before deploying it.

The demo deploys the assembly with the CDK CLI; from the templates it only takes which function is the
engine and checks the runtime-config parameter is there. Everything it runs against is read back from
the emulator after the deployment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trailguard.exceptions import TrailguardError
from trailguard.replay import DeployedRule, deployed_rules

ENGINE_HANDLER = "trailguard_engine.handler.handler"
RUNTIME_CONFIG_PARAMETER = "/trailguard/runtime-config"


class AssemblyError(TrailguardError):
    """The synthesized templates lack something the demo needs."""


@dataclass(frozen=True, slots=True)
class Resource:
    stack: str
    logical_id: str
    type: str
    properties: Mapping[str, Any]


@dataclass
class Assembly:
    """Every ``*.template.json`` of a cloud assembly, by stack name."""

    outdir: Path
    templates: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, outdir: Path) -> Assembly:
        if not outdir.is_dir():
            raise AssemblyError(f"{outdir}: no cloud assembly (synthesize first: npx cdk synth)")
        templates: dict[str, dict[str, Any]] = {}
        for p in sorted(outdir.rglob("*.template.json")):
            try:
                templates[p.name.removesuffix(".template.json")] = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise AssemblyError(f"{p}: cannot read template ({exc})") from exc
        if not templates:
            raise AssemblyError(f"{outdir}: no *.template.json files (synthesize first: npx cdk synth)")
        return cls(outdir, templates)

    def resources(self, type_: str) -> list[Resource]:
        out = []
        for stack, tpl in self.templates.items():
            for lid, res in (tpl.get("Resources") or {}).items():
                if isinstance(res, Mapping) and res.get("Type") == type_:
                    out.append(Resource(stack, lid, type_, res.get("Properties") or {}))
        return out

    def resource(self, stack: str, logical_id: str) -> Resource | None:
        res = (self.templates.get(stack, {}).get("Resources") or {}).get(logical_id)
        if not isinstance(res, Mapping):
            return None
        return Resource(stack, logical_id, str(res.get("Type")), res.get("Properties") or {})

    def central_rules(self) -> list[DeployedRule]:
        rules = deployed_rules(self.outdir)
        if not rules:
            raise AssemblyError(f"{self.outdir}: no rules on the central event bus in any template")
        return rules

    def engine_function(self) -> Resource:
        fns = [r for r in self.resources("AWS::Lambda::Function") if r.properties.get("Handler") == ENGINE_HANDLER]
        if len(fns) != 1:
            raise AssemblyError(
                f"{self.outdir}: expected exactly one Lambda function with handler {ENGINE_HANDLER}, found {len(fns)}"
            )
        return fns[0]

    def runtime_config_parameter(self) -> Resource:
        params = [
            r for r in self.resources("AWS::SSM::Parameter") if r.properties.get("Name") == RUNTIME_CONFIG_PARAMETER
        ]
        if len(params) != 1:
            raise AssemblyError(
                f"{self.outdir}: expected one SSM parameter {RUNTIME_CONFIG_PARAMETER}, found {len(params)}"
            )
        return params[0]
