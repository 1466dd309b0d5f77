"""The rule-file schema: a strict pydantic model of one ``rules/<id>.json``.

It mirrors what :func:`trailguard_engine.catalog.parse_rule` reads (the Lambda
keeps its own dependency-free loader) and adds the constraints the loader does
not check: formats of ids, MITRE technique ids and IAM actions, non-empty
runbooks and examples, and a remediation wherever the default mode is
``remediate``. ``python -m trailguard.catalog_schema`` regenerates
``lambdas/trailguard_engine/rule.schema.json`` for editors; tests keep it fresh.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from trailguard_engine.catalog import RULES_DIR

SCHEMA_PATH = RULES_DIR.parent / "rule.schema.json"

NonEmpty = Annotated[str, StringConstraints(min_length=1)]
IamAction = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+:[A-Za-z0-9]+$")]
Technique = Annotated[str, StringConstraints(pattern=r"^T\d{4}(\.\d{3})?$")]
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)]
Envelope = dict[str, Any]
CallerMode = Literal["remediate", "alert", "notice"]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class RemediationModel(_Strict):
    """The optional remediation: action name, every IAM action it calls, what it does."""

    action: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    permissions: list[IamAction] = Field(min_length=1)
    description: NonEmpty


class RunbookModel(_Strict):
    triage: list[NonEmpty] = Field(min_length=1)
    queries: list[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*$")]] = Field(min_length=1)
    undo: NonEmpty


class ExamplesModel(_Strict):
    positive: list[Envelope] = Field(min_length=1)
    negative: list[Envelope] = Field(min_length=1)


class CallerModesModel(_Strict):
    """What the rule does per caller class (``trailguard_engine.caller``): the least of this and the rule mode."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)

    human: CallerMode
    iac: CallerMode
    service: CallerMode
    identity_center: CallerMode = Field(alias="identity-center")
    trailguard: Literal["notice"]
    unknown: CallerMode


class RuleModel(_Strict):
    """One detection rule."""

    id: RuleId
    title: NonEmpty
    description: NonEmpty
    severity: Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]
    category: Annotated[str, StringConstraints(pattern=r"^[a-z]+(-[a-z]+)*$")]
    mitre: list[Technique] = Field(min_length=1)
    references: dict[str, list[NonEmpty]] = Field(default_factory=dict)
    event_pattern: dict[str, Any] = Field(min_length=1)
    read_only_events: bool = False
    matches_failed_calls: bool = False
    decision: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    params: dict[str, Any] = Field(default_factory=dict)
    remediation: RemediationModel | None
    default_mode: Literal["remediate", "alert", "off"]
    caller_modes: CallerModesModel
    runbook: RunbookModel
    examples: ExamplesModel

    @model_validator(mode="after")
    def _consistent(self) -> RuleModel:
        if self.default_mode == "remediate" and self.remediation is None:
            raise ValueError("default_mode 'remediate' needs a remediation")
        if self.matches_failed_calls and self.remediation is not None:
            raise ValueError("a rule that matches failed calls must not remediate (nothing changed)")
        return self


def validate_rule_file(path: Path) -> RuleModel:
    """Parse and validate one rule file (raises ``pydantic.ValidationError`` or ``ValueError``)."""
    return RuleModel.model_validate(json.loads(path.read_text(encoding="utf-8")))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a rule file, as written to ``rule.schema.json``."""
    schema = RuleModel.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "trailguard detection rule"
    return schema


def render_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    SCHEMA_PATH.write_text(render_schema(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
