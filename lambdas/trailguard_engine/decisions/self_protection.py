"""Decisions about trailguard's own resources: its EventBridge rules and central bus, its functions,
its run-time parameters, its roles and its stacks (self-protection, issue #12).

The patterns select calls broadly, in every spelling the APIs accept; these functions decide by
meaning:

* names are parsed, not searched as text: ARNs with :mod:`policyuniverse.arn`, Lambda's partial
  ARNs and qualifiers with the API's own grammar, SSM names reduced to the one parameter SSM
  resolves them to;
* each service's case rules apply: SSM, EventBridge, Lambda and CloudFormation names are
  case-sensitive, IAM role names are not (IAM refuses ``Admin`` beside ``admin``);
* a resource is trailguard's only if its name follows the stacks' naming conventions exactly (the
  rule's ``params``; ``tests/adversarial/test_self_protection.py`` reads every name back from the
  synthesized templates);
* only sessions of the deployment roles, by exact role ARN (``deployment_role_arns``), may change
  these resources. ``invokedBy: cloudformation.amazonaws.com`` proves nothing (anyone can run a
  stack of their own), and neither does a role name such as ``stacksets-exec-*``, which any account
  administrator can create, unless the guardrail SCP forbids exactly that (see :func:`deployment_role`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from policyuniverse.arn import ARN

from trailguard_engine.catalog import load_catalog
from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, as_list
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import request_too_large
from trailguard_engine.runtime_config import RuntimeConfig

CLOUDFORMATION = "cloudformation.amazonaws.com"
DEFAULT_BUS = "default"
#: The API version CloudTrail appends to Lambda's eventNames (``DeleteFunction20150331``).
_API_VERSION = re.compile(r"\d{8}(?:v\d+)?$")
#: Lambda's FunctionName grammar for the forms that are not full ARNs (``name``, ``name:qualifier``,
#: ``account:function:name``, ``region:account:function:name``), from the API model.
_PARTIAL_FUNCTION = re.compile(
    r"^(?:[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d:)?(?:\d{12}:)?(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?$"
)


# --------------------------------------------------------------------------- #
# Shared: who called, names and ARNs
# --------------------------------------------------------------------------- #


#: The role CloudFormation StackSets (service-managed) runs stack operations as in a member account.
_STACKSETS_EXEC = re.compile(r"^arn:aws(?:-[a-z]+)*:iam::(\d{12}):role/stacksets-exec-[A-Za-z0-9]{1,49}$")


def deployment_role(event: CloudTrailEvent, cfg: RuntimeConfig) -> str | None:
    """The deployment role this call was made through, or None.

    * a session of one of ``deployment_role_arns`` (exact session-issuer ARN);
    * a session of the StackSets execution role ``stacksets-exec-*`` of the event's own account, but only
      when the guardrail SCP denies member admins the creation of such roles (``stacksets_exec_protected``)
      and never in the management account, where SCPs do not apply.
    """
    issuer = event.session_issuer_arn
    if event.identity_type != "AssumedRole" or not issuer:
        return None
    if issuer in cfg.deployment_role_arns:
        return issuer
    m = _STACKSETS_EXEC.match(issuer)
    if (
        m is not None
        and cfg.stacksets_exec_protected
        and m.group(1) == event.account
        and event.account != cfg.management_account
    ):
        return issuer
    return None


def _by_pipeline(event: CloudTrailEvent, cfg: RuntimeConfig) -> Assessment | None:
    role = deployment_role(event, cfg)
    if role is None:
        return None
    return Assessment(False, f"{event.event_name} made by the deployment role {role}")


def _who(event: CloudTrailEvent) -> str:
    who = event.principal_arn or event.identity_type or "unknown principal"
    if event.invoked_by == CLOUDFORMATION:
        # Said out loud because it is the classic false comfort: a stack proves nothing about its author.
        return f"{who} through CloudFormation (not a deployment role)"
    return who


def _strings(value: Any) -> list[str]:
    return [v for v in as_list(value) if isinstance(v, str) and v]


@dataclass(frozen=True, slots=True)
class Arn:
    service: str
    resource: str


def parse_arn(value: str) -> Arn | None:
    """``value`` as an ARN (service and resource part), or None when it is not one.

    :class:`policyuniverse.arn.ARN` parses it. One it refuses (an account field that is not 12
    digits) is still read by the documented layout ``arn:partition:service:region:account:resource``:
    a malformed field must not hide the resource name behind it.
    """
    if not value.startswith("arn:"):
        return None
    parsed = ARN(value)
    if not parsed.error and isinstance(parsed.tech, str) and isinstance(parsed.name, str):
        return Arn(parsed.tech, parsed.name)
    parts = value.split(":", 5)
    return Arn(parts[2], parts[5]) if len(parts) == 6 else None


def _resource(value: str, service: str, kind: str) -> str | None:
    """``value``'s resource id after ``<kind>/`` (or ``<kind>:``) when it is an ARN of ``service``, else None."""
    parsed = parse_arn(value)
    if parsed is None or parsed.service != service:
        return None
    for sep in ("/", ":"):
        if parsed.resource.startswith(kind + sep):
            return parsed.resource[len(kind) + 1 :]
    return None


def _fullmatch_any(name: str, patterns: Iterable[str], *, ignore_case: bool = False) -> bool:
    flags = re.IGNORECASE if ignore_case else 0
    return any(re.fullmatch(p, name, flags) for p in patterns)


def _param_strings(rule: Rule, key: str) -> list[str]:
    return _strings(rule.params.get(key))


# --------------------------------------------------------------------------- #
# EventBridge
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class RuleRef:
    """An EventBridge rule as an API call named it: rule name and bus name (``default`` when omitted)."""

    name: str
    bus: str


def bus_name(value: Any) -> str:
    """The bus a call names: ``EventBusName`` is a name or an event-bus ARN; omitted means the default bus."""
    if not isinstance(value, str) or not value.strip():
        return DEFAULT_BUS
    value = value.strip()
    from_arn = _resource(value, "events", "event-bus")
    return from_arn if from_arn is not None else value


def rule_ref(name: str, bus: Any) -> RuleRef:
    """The rule a call names; a rule ARN (``rule/<bus>/<name>`` or ``rule/<name>``) carries its own bus."""
    from_arn = _resource(name.strip(), "events", "rule")
    if from_arn is not None:
        bus_part, _, rule_part = from_arn.rpartition("/")
        return RuleRef(rule_part, bus_part or DEFAULT_BUS)
    return RuleRef(name.strip(), bus_name(bus))


@lru_cache(maxsize=4)
def _catalog_by_central_name(prefix: str) -> dict[str, Rule]:
    return {prefix + r.id: r for r in load_catalog()}


def _intended_state(rule: Rule) -> str:
    return "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" if rule.read_only_events else "ENABLED"


def _same_pattern(raw: Any, pattern: dict[str, Any]) -> bool:
    if not isinstance(raw, str):
        return False
    try:
        return bool(json.loads(raw) == pattern)
    except ValueError:
        return False


@decision("eventbridge_self_protection")
def eventbridge_self_protection(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Changes to trailguard's EventBridge rules or central bus by anyone but the deployment pipeline.

    Rule params: ``central_bus`` (every rule on it is trailguard's), ``central_rule_prefix`` (its
    rules are ``<prefix><catalog rule id>``), ``rule_name_patterns`` (trailguard's rules on other
    buses: the member forwarding rules and the rules CloudFormation names after trailguard's stacks).

    Only a disabled central rule whose catalog rule is plain ``ENABLED`` is remediable: ``EnableRule``
    is its exact inverse. Anything else (a deleted rule, removed or replaced targets, a changed
    pattern, a forwarding rule whose intended state is not known offline) is alert only.
    """
    pipeline = _by_pipeline(event, cfg)
    if pipeline is not None:
        return pipeline
    central = str(rule.params.get("central_bus") or "trailguard-central")
    name = event.event_name
    if name == "DeleteEventBus":
        bus = bus_name(event.req("name"))
        if bus != central:
            return Assessment(False, f"DeleteEventBus on {bus}, not the central bus")
        return Assessment(
            True,
            f"the central bus {central} was deleted by {_who(event)}",
            {"type": "AWS::Events::EventBus", "id": central},
            remediable=False,
        )
    if name in ("PutPermission", "RemovePermission"):
        bus = bus_name(event.req("eventBusName"))
        if bus != central:
            return Assessment(False, f"{name} on bus {bus}, not the central bus")
        return Assessment(
            True,
            f"the policy of the central bus {central} was changed ({name}) by {_who(event)}",
            {"type": "AWS::Events::EventBus", "id": central},
            remediable=False,
        )
    raw = event.req("rule") if name in ("PutTargets", "RemoveTargets") else event.req("name")
    if not isinstance(raw, str) or not raw.strip():
        return Assessment(False, f"{name} without a rule name")
    ref = rule_ref(raw, event.req("eventBusName"))
    prefix = str(rule.params.get("central_rule_prefix") or "tg-")
    catalog_rule = _catalog_by_central_name(prefix).get(ref.name) if ref.bus == central else None
    if ref.bus == central:
        what = f"central rule {ref.name}" + (f" (catalog rule {catalog_rule.id})" if catalog_rule else "")
    elif _fullmatch_any(ref.name, _param_strings(rule, "rule_name_patterns")):
        what = f"trailguard rule {ref.name} on bus {ref.bus}"
    else:
        return Assessment(False, f"rule {ref.name} on bus {ref.bus} is not one of trailguard's rules")
    touched = Touched(what, _who(event), ref, catalog_rule)
    resource = touched.resource
    if name == "DisableRule":
        return _disabled(touched, "DisableRule", pattern_kept=True)
    if name == "PutRule":
        return _put_rule(event, touched)
    if name == "PutTargets":
        targets = [f"{t.get('id')}->{t.get('arn')}" for t in as_list(event.req("targets")) if isinstance(t, dict)]
        why = f"targets of {what} set to {', '.join(targets) or '?'} by {touched.by}"
        return Assessment(True, why, resource, remediable=False)
    if name == "RemoveTargets":
        why = f"targets {', '.join(_strings(event.req('ids'))) or '?'} removed from {what} by {touched.by}"
        return Assessment(True, why, resource, remediable=False)
    if name == "DeleteRule":
        return Assessment(True, f"{what} deleted by {touched.by}", resource, remediable=False)
    return Assessment(True, f"{name} on {what} by {touched.by}", resource, remediable=False)


@dataclass(frozen=True, slots=True)
class Touched:
    """One of trailguard's rules a call touched: how reasons name it, and what the remediation needs."""

    what: str
    by: str
    ref: RuleRef
    catalog_rule: Rule | None

    @property
    def resource(self) -> dict[str, str]:
        return {"type": "AWS::Events::Rule", "id": f"{self.ref.bus}/{self.ref.name}"}

    @property
    def params(self) -> dict[str, Any]:
        return {"rule": self.ref.name, "event_bus": self.ref.bus}


def _disabled(t: Touched, how: str, *, pattern_kept: bool) -> Assessment:
    why = f"{t.what} disabled ({how}) by {t.by}"
    if t.catalog_rule is None:
        why += " (not re-enabled: its intended state is not known offline)"
    elif _intended_state(t.catalog_rule) != "ENABLED":
        # EnableRule restores ENABLED, not ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS: only a redeploy restores it.
        why += " (not re-enabled: it must see read-only events too)"
    elif not pattern_kept:
        why += " (not re-enabled: its pattern was changed too)"
    else:
        return Assessment(True, why, t.resource, t.params)
    return Assessment(True, why, t.resource, t.params, remediable=False)


def _put_rule(event: CloudTrailEvent, t: Touched) -> Assessment:
    state = event.req("state")
    state = state if isinstance(state, str) and state else "ENABLED"  # PutRule's default
    cat = t.catalog_rule
    same = cat is not None and _same_pattern(event.req("eventPattern"), cat.event_pattern)
    if state == "DISABLED":
        return _disabled(t, "PutRule state DISABLED", pattern_kept=same)
    if cat is None:
        why = f"{t.what} redefined (PutRule, state {state}) by {t.by}; its pattern cannot be checked offline"
        return Assessment(True, why, t.resource, remediable=False)
    if same and state == _intended_state(cat):
        return Assessment(False, f"PutRule restates the catalog's own definition of {t.what}")
    changed = [] if same else ["pattern differs from the catalog"]
    if state != _intended_state(cat):
        changed.append(f"state {state} (intended {_intended_state(cat)})")
    return Assessment(True, f"{t.what} redefined by {t.by}: {'; '.join(changed)}", t.resource, remediable=False)


# --------------------------------------------------------------------------- #
# SSM
# --------------------------------------------------------------------------- #


def ssm_parameter_name(raw: str) -> str:
    """The name of the parameter SSM resolves ``raw`` to.

    SSM trims surrounding spaces, accepts a hierarchical name without its leading slash
    (``trailguard/runtime-config`` is ``/trailguard/runtime-config``), and an ARN names the
    parameter after ``parameter/``. Names stay case-sensitive, as in SSM.
    """
    name = raw.strip()
    from_arn = _resource(name, "ssm", "parameter")
    if from_arn is not None:
        name = from_arn
    if "/" in name and not name.startswith("/"):
        name = "/" + name
    return name


@decision("trailguard_parameter")
def trailguard_parameter(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """SSM writes to parameters under trailguard's prefix (``params.prefix``), in any spelling SSM accepts."""
    pipeline = _by_pipeline(event, cfg)
    if pipeline is not None:
        return pipeline
    prefix = rule.params.get("prefix")
    pfx = prefix if isinstance(prefix, str) and prefix else "/trailguard/"
    raw = _strings(event.req("name")) + _strings(event.req("names"))
    names = sorted({n for n in map(ssm_parameter_name, raw) if n.startswith(pfx)})
    if not names:
        return Assessment(False, f"no parameter under {pfx}")
    return Assessment(
        True,
        f"{event.event_name} on {', '.join(names)} by {_who(event)}",
        {"type": "AWS::SSM::Parameter", "id": ",".join(names)},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# Lambda
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class FunctionRef:
    name: str
    qualifier: str


def function_ref(raw: str) -> FunctionRef | None:
    """Name and qualifier of a FunctionName in any form Lambda accepts, or None if it is none of them."""
    raw = raw.strip()
    rest = _resource(raw, "lambda", "function")
    if rest is None:
        if raw.startswith("arn:"):
            return None
        m = _PARTIAL_FUNCTION.fullmatch(raw)
        return FunctionRef(m["name"], m["qualifier"] or "") if m else None
    name, _, qualifier = rest.partition(":")
    return FunctionRef(name, qualifier) if name else None


def _queue_name(raw: Any) -> str:
    if not isinstance(raw, str):
        return ""
    parsed = parse_arn(raw)
    return parsed.resource if parsed is not None and parsed.service == "sqs" else ""


def api_name(event_name: str) -> str:
    """The API operation of a Lambda eventName (CloudTrail appends the API version: ``DeleteFunction20150331``)."""
    return _API_VERSION.sub("", event_name)


def _function_change(event: CloudTrailEvent, named_qualifier: str = "") -> tuple[str, bool]:
    """What the call did to the function, and whether it matters to the unqualified function trailguard invokes.

    ``named_qualifier`` is the qualifier the FunctionName itself carried (``name:7``, ``arn:...:function:name:7``):
    Lambda accepts a version in the name as well as in ``Qualifier``.
    """
    api = api_name(event.event_name)
    if api == "PutFunctionConcurrency":
        n = event.req("reservedConcurrentExecutions")
        if n == 0:
            return "throttled to zero (reserved concurrency 0): it can no longer run", True
        return f"reserved concurrency set to {n}", True
    if api == "DeleteFunctionConcurrency":
        return "reserved concurrency removed (the storm cap is gone)", True
    if api == "DeleteFunction":
        qualifier = event.req("qualifier")
        if not isinstance(qualifier, str) or not qualifier:
            qualifier = named_qualifier
        if qualifier and qualifier != "$LATEST":
            return f"version {qualifier} deleted", False
        return "deleted", True
    if api == "UpdateFunctionCode":
        return "code replaced", True
    if api == "UpdateFunctionConfiguration":
        keys = sorted(k for k in event.request if k != "functionName")
        return f"configuration changed ({', '.join(keys) or 'no fields logged'})", True
    if api in ("AddPermission", "RemovePermission"):
        return f"resource policy changed ({api} {event.req('statementId') or '?'})", True
    if api.endswith("EventSourceMapping"):
        uuid = event.req("uUID") or event.resp("uUID")
        return f"event source mapping {uuid or '?'} changed ({api}, state {event.resp('state') or '?'})", True
    return f"changed ({api})", True


@decision("trailguard_function")
def trailguard_function(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Changes to trailguard's Lambda functions (or their triggers) by anyone but the deployment pipeline.

    Rule params: ``function_name_patterns`` (the names the detection stack's functions get) and
    ``event_source_queues`` (queues whose event source mappings are trailguard's). Alert only: the
    engine cannot revert a change to itself once it is throttled or deleted, and the values to restore
    (reserved concurrency, code, configuration) are not in the event.
    """
    pipeline = _by_pipeline(event, cfg)
    if pipeline is not None:
        return pipeline
    patterns = _param_strings(rule, "function_name_patterns")
    refs = [function_ref(v) for v in _strings(event.req("functionName")) + _strings(event.resp("functionArn"))]
    ours = next((r for r in refs if r is not None and _fullmatch_any(r.name, patterns)), None)
    queue = _queue_name(event.resp("eventSourceArn"))
    from_queue = queue in _param_strings(rule, "event_source_queues")
    if ours is None and not from_queue:
        return Assessment(False, "not one of trailguard's functions")
    change, matters = _function_change(event, ours.qualifier if ours is not None else "")
    fn = ours.name if ours is not None else f"the function reading {queue}"
    resource = {"type": "AWS::Lambda::Function", "id": fn}
    if not matters:
        return Assessment(False, f"trailguard function {fn}: {change}; trailguard invokes the unqualified function")
    return Assessment(True, f"trailguard function {fn} {change} by {_who(event)}", resource, remediable=False)


# --------------------------------------------------------------------------- #
# IAM
# --------------------------------------------------------------------------- #

_POLICY_EVENTS = ("CreatePolicyVersion", "SetDefaultPolicyVersion", "DeletePolicy", "DeletePolicyVersion")
#: Calls whose request carries a policy document, which CloudTrail may omit as too large to log.
_POLICY_WRITING = ("PutRolePolicy", "UpdateAssumeRolePolicy", "CreatePolicyVersion")


@decision("trailguard_role")
def trailguard_role(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Changes to trailguard's IAM roles and managed policies by anyone but the deployment pipeline.

    Rule params: ``names`` (exact) and ``name_patterns``: the names of trailguard's roles, and of its
    managed policies (named like their roles, or by CloudFormation after trailguard's stacks).
    Compared case-insensitively, as IAM compares names. Alert only: the engine acts through one of
    these roles, and letting it re-attach policies to itself would let it grant itself anything.
    """
    pipeline = _by_pipeline(event, cfg)
    if pipeline is not None:
        return pipeline
    if event.event_name in _POLICY_WRITING and request_too_large(event.request):
        # The role (or policy) is inside the omitted request: it may be trailguard's, and nobody can tell.
        return Assessment(
            True,
            f"{event.event_name} by {_who(event)} too large for CloudTrail to log: the target cannot be "
            "checked, and may be one of trailguard's roles",
            {"type": "AWS::IAM::Role", "id": "?"},
            remediable=False,
        )
    exact = {n.lower() for n in _param_strings(rule, "names")}
    patterns = _param_strings(rule, "name_patterns")

    def ours(name: str) -> bool:
        return name.lower() in exact or _fullmatch_any(name, patterns, ignore_case=True)

    by = _who(event)
    if event.event_name in _POLICY_EVENTS:
        arn = event.req("policyArn")
        policy = _resource(arn.strip(), "iam", "policy") if isinstance(arn, str) else None
        policy_name = policy.rsplit("/", 1)[-1] if policy else ""
        if not policy_name or not ours(policy_name):
            return Assessment(False, "not one of trailguard's managed policies")
        return Assessment(
            True,
            f"trailguard policy {policy_name} changed ({event.event_name}) by {by}",
            {"type": "AWS::IAM::ManagedPolicy", "id": str(arn)},
            remediable=False,
        )
    role = event.req("roleName")
    if not isinstance(role, str) or not role.strip():
        return Assessment(False, f"{event.event_name} without a role name")
    role = role.strip()
    if not ours(role):
        return Assessment(False, f"role {role} is not one of trailguard's roles")
    detail = {
        "DeleteRole": "deleted",
        "UpdateAssumeRolePolicy": "trust policy replaced (who may assume it)",
        "DetachRolePolicy": f"policy {event.req('policyArn') or '?'} detached",
        "AttachRolePolicy": f"policy {event.req('policyArn') or '?'} attached",
        "DeleteRolePolicy": f"inline policy {event.req('policyName') or '?'} deleted",
        "PutRolePolicy": f"inline policy {event.req('policyName') or '?'} written",
        "PutRolePermissionsBoundary": "permissions boundary set",
        "DeleteRolePermissionsBoundary": "permissions boundary removed",
    }.get(event.event_name, f"changed ({event.event_name})")
    return Assessment(
        True, f"trailguard role {role} {detail} by {by}", {"type": "AWS::IAM::Role", "id": role}, remediable=False
    )


# --------------------------------------------------------------------------- #
# CloudFormation
# --------------------------------------------------------------------------- #

_STACK_SET_EVENTS = ("DeleteStackInstances", "UpdateStackInstances", "DeleteStackSet", "UpdateStackSet")


def stack_set_name(raw: str) -> str:
    """The StackSet a call names: a name, or a StackSet ID ``<name>:<uuid>``."""
    raw = raw.strip()
    from_arn = _resource(raw, "cloudformation", "stackset")
    return (from_arn if from_arn is not None else raw).split(":", 1)[0]


def stack_name(raw: str) -> str:
    """The stack a call names: a name, or a stack ID (``arn:...:stack/<name>/<uuid>``)."""
    raw = raw.strip()
    from_arn = _resource(raw, "cloudformation", "stack")
    return from_arn.split("/", 1)[0] if from_arn is not None else raw


@decision("trailguard_stack")
def trailguard_stack(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Deletes or changes of the member StackSet, its instances, or trailguard's stacks, not by the pipeline.

    Rule params: ``stack_set_names``; ``stack_names`` and ``stack_name_patterns`` (the app's
    stacks, updates and deletes watched); ``instance_stack_patterns`` (the StackSet's stacks in
    member accounts: deletes watched; their updates are the StackSet's own work, and what an update
    changes is judged resource by resource by the other self-protection rules). Alert only.
    """
    pipeline = _by_pipeline(event, cfg)
    if pipeline is not None:
        return pipeline
    by = _who(event)
    name = event.event_name
    if name in _STACK_SET_EVENTS:
        raw = event.req("stackSetName")
        ss = stack_set_name(raw) if isinstance(raw, str) else ""
        if ss not in _param_strings(rule, "stack_set_names"):
            return Assessment(False, f"StackSet {ss or '?'} is not trailguard's")
        scope = [*_strings(event.req("accounts")), *_strings(event.req("deploymentTargets", "organizationalUnitIds"))]
        regions = _strings(event.req("regions"))
        where = f" for {', '.join(scope) or 'its targets'} in {', '.join(regions) or 'its regions'}"
        retain = " (stacks retained: they leave the StackSet's control)" if event.req("retainStacks") is True else ""
        what = {"DeleteStackInstances": "instances deleted", "UpdateStackInstances": "instances updated"}.get(
            name, "deleted" if name == "DeleteStackSet" else "updated"
        )
        return Assessment(
            True,
            f"trailguard StackSet {ss} {what}{where if 'Instances' in name else ''}{retain} by {by}",
            {"type": "AWS::CloudFormation::StackSet", "id": ss},
            remediable=False,
        )
    raw = event.req("stackName")
    stack = stack_name(raw) if isinstance(raw, str) else ""
    app = stack in _param_strings(rule, "stack_names") or _fullmatch_any(
        stack, _param_strings(rule, "stack_name_patterns")
    )
    instance = _fullmatch_any(stack, _param_strings(rule, "instance_stack_patterns"))
    if not app and not (instance and name == "DeleteStack"):
        kind = "a StackSet instance: its updates are the StackSet's" if instance else "not one of trailguard's stacks"
        return Assessment(False, f"stack {stack or '?'} is {kind}")
    role = event.req("roleARN")
    via = f" with the service role {role}" if isinstance(role, str) and role else ""
    what = "deleted" if name == "DeleteStack" else f"changed ({name}{via})"
    return Assessment(
        True,
        f"trailguard stack {stack} {what} by {by}",
        {"type": "AWS::CloudFormation::Stack", "id": stack},
        remediable=False,
    )


_SERVICE_ROLE_PATH = re.compile(r"^arn:aws(?:-[a-z]+)*:iam::\d{12}:role/aws-service-role/")


@decision("eventbridge_rule_disabled")
def eventbridge_rule_disabled(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Any other EventBridge rule disabled or deleted (DisableRule, DeleteRule, PutRule with state DISABLED):
    alerting and response rules stop firing. trailguard's own rules are judged by ``eventbridge-rule-tampered``
    (its params name them) and skipped here, so one call raises one finding; so are calls by an AWS service
    itself (``AWSService`` identity or a service-linked role session: IAM reserves that path), which manage
    their own managed rules."""
    if event.identity_type == "AWSService" or _SERVICE_ROLE_PATH.match(event.session_issuer_arn or ""):
        return Assessment(False, f"{event.event_name} by an AWS service on its own rule")
    name = event.event_name
    if name == "PutRule":
        state = event.req("state")
        if not isinstance(state, str) or state.strip().upper() != "DISABLED":
            return Assessment(False, "PutRule leaves the rule enabled")
    raw = event.req("name")
    if not isinstance(raw, str) or not raw.strip():
        return Assessment(False, f"{name} without a rule name")
    ref = rule_ref(raw, event.req("eventBusName"))
    own = {r.id: r for r in load_catalog()}.get(str(rule.params.get("self_protection_rule") or ""))
    if own is not None:
        central = str(own.params.get("central_bus") or "trailguard-central")
        if ref.bus == central or _fullmatch_any(ref.name, _param_strings(own, "rule_name_patterns")):
            return Assessment(False, f"rule {ref.name} on {ref.bus} is trailguard's: judged by {own.id}")
    what = "deleted" if name == "DeleteRule" else "disabled"
    return Assessment(
        True,
        f"EventBridge rule {ref.name} on bus {ref.bus} {what} ({name}) by {_who(event)}",
        {"type": "AWS::Events::Rule", "id": f"{ref.bus}/{ref.name}"},
        remediable=False,
    )
