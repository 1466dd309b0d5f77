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


#: Bypass classes (issue 14): legal variants of a risky request that a string-matching rule would miss.
#: A rule lists the classes that apply to it in ``bypass_classes`` and ships one variant example per class
#: (``examples.variants``); tests/catalog/test_variants.py checks both, and which classes must apply.
BypassClass = Literal[
    "cidr-semantics",  # any /0 spelling, covering sets of ranges, wide public IPv6, IPv4-mapped IPv6
    "flat-request",  # the flat request form (AWS CLI --cidr/--port, attribute/value)
    "prefix-list",  # rules that reach the internet through a managed prefix list
    "attach-open-group",  # attaching an already-open security group to an instance or ENI
    "policy-encoding",  # a policy as an object, a JSON string or a URL-encoded string
    "policy-wildcard",  # arn:*, ?*, service:Put* sets, NotAction/NotPrincipal
    "policy-condition",  # conditions that look restrictive but are not
    "external-account",  # a grant to a specific account outside the organization
    "request-too-large",  # requestParameters omitted as too large to log
    "case-naming",  # names compared case-insensitively, ARNs as well as names
    "api-version-suffix",  # Lambda's versioned API names (UpdateFunctionCode20150331v2)
    "waf-classic",  # WAF Classic (waf, waf-regional) as well as WAFv2
    "root-console",  # root actions invoked through the console (invokedBy signin.amazonaws.com)
    "service-variant",  # the same effect through a sibling API or service
    "default-value",  # a field left out so that the API's default (the risky value) applies
]


class VariantModel(_Strict):
    """A legal variant of a positive example: the rule must still fire (and decide ``expect`` when given)."""

    bypass: BypassClass
    why: NonEmpty
    expect: Literal["remediate", "alert"] | None = None
    event: Envelope


class ExamplesModel(_Strict):
    positive: list[Envelope] = Field(min_length=1)
    negative: list[Envelope] = Field(min_length=1)
    variants: list[VariantModel] = Field(default_factory=list)


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
    bypass_classes: list[BypassClass] = Field(default_factory=list)
    #: Why this rule fires more than twice as often on the shared corpus as its recorded baseline
    #: (tests/precision/corpus_firing_baseline.json); required only then.
    noise_note: NonEmpty | None = None

    @model_validator(mode="after")
    def _consistent(self) -> RuleModel:
        if self.default_mode == "remediate" and self.remediation is None:
            raise ValueError("default_mode 'remediate' needs a remediation")
        declared = set(self.bypass_classes)
        shown = {v.bypass for v in self.examples.variants}
        if shown - declared:
            raise ValueError(f"variants for undeclared bypass_classes: {sorted(shown - declared)}")
        if declared - shown:
            raise ValueError(f"bypass_classes without a variant example: {sorted(declared - shown)}")
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
