"""Read what the demo needs from a synthesized cloud assembly (``cdk.out``).

The demo deploys nothing: it reads the central-bus rules, the engine
function's environment and the runtime-config parameter out of the templates
and recreates just those pieces in the emulator. CloudFormation tokens that
point at resources (``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, pseudo
parameters) are resolved against the resources the demo seeded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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


#: How a seeded resource answers ``Ref`` and ``Fn::GetAtt``: (ref value, {attribute: value}).
Seeded = tuple[str, dict[str, str]]


@dataclass
class Resolver:
    """Resolve CloudFormation intrinsic functions for one stack against seeded resources.

    ``by_type`` maps a resource type (``AWS::DynamoDB::Table``) to what the seeded
    emulator resource answers. A token that cannot be resolved is an
    :class:`AssemblyError`: the demo never runs with a placeholder.
    """

    assembly: Assembly
    stack: str
    account: str
    region: str
    by_type: dict[str, Seeded] = field(default_factory=dict)
    by_logical_id: dict[str, Seeded] = field(default_factory=dict)

    def pseudo(self, name: str) -> str | None:
        return {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack,
            "AWS::NoValue": "",
        }.get(name)

    def _seeded(self, logical_id: str) -> Seeded:
        if logical_id in self.by_logical_id:
            return self.by_logical_id[logical_id]
        res = self.assembly.resource(self.stack, logical_id)
        if res is None:
            raise AssemblyError(f"{self.stack}: Ref to unknown resource {logical_id}")
        hit = self.by_type.get(res.type)
        if hit is None:
            raise AssemblyError(f"{self.stack}: {logical_id} ({res.type}) has no seeded stand-in in the emulator")
        return hit

    def resolve(self, value: Any) -> Any:
        if isinstance(value, str | int | float | bool) or value is None:
            return value
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, Mapping):
            raise AssemblyError(f"{self.stack}: unexpected template value {value!r}")
        if len(value) == 1:
            ((fn, arg),) = value.items()
            handler = self._functions().get(fn)
            if handler is not None:
                return handler(arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def _functions(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Join": self._join,
            "Fn::Sub": self._sub,
            "Fn::Select": lambda a: self.resolve(a[1])[int(self.resolve(a[0]))],
            "Fn::Split": lambda a: str(self.resolve(a[1])).split(str(a[0])),
        }

    def _ref(self, name: Any) -> str:
        p = self.pseudo(str(name))
        if p is not None:
            return p
        return self._seeded(str(name))[0]

    def _get_att(self, arg: Any) -> str:
        lid, attr = arg.split(".", 1) if isinstance(arg, str) else arg
        seeded = self._seeded(str(lid))
        if attr not in seeded[1]:
            raise AssemblyError(f"{self.stack}: Fn::GetAtt {lid}.{attr}: attribute not seeded")
        return seeded[1][attr]

    def _join(self, arg: Any) -> str:
        sep, parts = arg
        return str(sep).join(str(self.resolve(p)) for p in parts)

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name:
                return self._get_att(name)
            return self._ref(name)

        return re.sub(r"\$\{([^}!]+)\}", repl, str(text))
