"""Defense-evasion calls the first catalog selected only in part (issue 14, wave 2): Bedrock safety controls.

* Guardrails weakened (``bedrock-guardrail-weakened``): ``UpdateGuardrail`` replaces a guardrail's whole
  configuration, so a request that carries it shows what the guardrail does afterwards. A filter whose strength
  is ``NONE``, whose action is ``NONE`` (detect only, nothing blocked) or that is switched off
  (``inputEnabled``/``outputEnabled``/``enabled`` false) is a weakening. The ``PROMPT_ATTACK`` content filter
  has no output side (AWS requires its ``outputStrength`` to be ``NONE``), so that one value is not a weakening.
  Values CloudTrail hides are never read as ``NONE``. Measured limit: the real console record in the shared
  corpus logs only ``guardrailIdentifier`` and a hidden ``name`` (no policy block at all), so a record without
  any policy block is "not judgeable", never "every filter removed" (that would fire on every update). An
  Automated Reasoning safety policy deleted is a finding by itself (the enforced guardrail configuration
  deleted is ``bedrock-guardrail-deleted``'s). ``PutEnforcedGuardrailConfiguration``
  and ``UpdateAutomatedReasoningPolicy`` are not selected: whether the new guardrail or policy is weaker than
  the old one is not in the record.
* Invocation logging weakened (``bedrock-invocation-logging-deleted``): ``PutModelInvocationLoggingConfiguration``
  with no destination (neither CloudWatch Logs nor S3) or with text data delivery turned off (prompts and
  responses, the evidence of model abuse, are no longer written); the delete is judged as before.
* Resource policies (``bedrock-resource-policy-public``): ``PutResourcePolicy`` on a guardrail or guardrail
  profile judged with the catalog's one policy reading (:func:`decisions.resource_policies.judge_policy`):
  public statements and grants outside the organization, in every encoding; a request too large to log is an
  alert. ``DeleteResourcePolicy`` only narrows access and is not selected.

All alert only: a guardrail or logging configuration is not something trailguard rewrites.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trailguard_engine.decisions import decision
from trailguard_engine.decisions.detective import request_resource
from trailguard_engine.decisions.evasion import _alert, field, is_false, upper
from trailguard_engine.decisions.resource_policies import judge_policy
from trailguard_engine.events import CloudTrailEvent, as_list
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import request_too_large
from trailguard_engine.runtime_config import RuntimeConfig

#: The policy blocks of a guardrail (CreateGuardrail/UpdateGuardrail request keys).
GUARDRAIL_POLICIES: tuple[str, ...] = (
    "contentPolicyConfig",
    "topicPolicyConfig",
    "wordPolicyConfig",
    "sensitiveInformationPolicyConfig",
    "contextualGroundingPolicyConfig",
    "automatedReasoningPolicyConfig",
)
_STRENGTHS = ("inputStrength", "outputStrength")
_ACTIONS = ("action", "inputAction", "outputAction")
_SWITCHES = ("enabled", "inputEnabled", "outputEnabled")
#: Bound on the entries walked in one request (a crafted request cannot make the decision run long). AWS allows
#: up to 10,000 custom words and CloudTrail logs requests of a few hundred kilobytes at most, so a real request
#: stays under it; a request past it is itself a finding (read it live), never a silent skip.
MAX_ENTRIES = 20000


def _label(entry: Mapping[str, Any]) -> str:
    for key in ("type", "name", "regex", "text", "pattern"):
        value = field(entry, key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:64]
    return "entry"


def _weak_entry(block: str, entry: Mapping[str, Any]) -> list[str]:
    """Why one filter / topic / word / entity entry no longer protects (empty when it still does)."""
    kind = _label(entry)
    out: list[str] = []
    for key in _STRENGTHS:
        if upper(field(entry, key)) == "NONE" and not (key == "outputStrength" and upper(kind) == "PROMPT_ATTACK"):
            out.append(f"{block} {kind} {key} NONE")
    for key in _ACTIONS:
        if upper(field(entry, key)) == "NONE":
            out.append(f"{block} {kind} {key} NONE (detect only)")
    for key in _SWITCHES:
        if is_false(field(entry, key)):
            out.append(f"{block} {kind} {key} false")
    return out


def policies_logged(request: Any) -> bool:
    """Whether the record carries any guardrail policy block (CloudTrail usually logs none of them)."""
    return isinstance(request, Mapping) and any(field(request, name) is not None for name in GUARDRAIL_POLICIES)


def guardrail_weakenings(request: Any) -> list[str]:
    """What an UpdateGuardrail request leaves unprotected: filters off or at NONE (empty when none, or when the
    record carries no policy block to judge: see :func:`policies_logged`)."""
    if not isinstance(request, Mapping):
        return []
    present = [name for name in GUARDRAIL_POLICIES if field(request, name) is not None]
    found: list[str] = []
    seen = 0
    for name in present:
        block = field(request, name)
        if not isinstance(block, Mapping):
            continue  # hidden or unreadable: never read as weakened
        for key, value in block.items():
            for entry in as_list(value):
                seen += 1
                if seen > MAX_ENTRIES:
                    found.append(f"more than {MAX_ENTRIES} entries: not all judged (read the guardrail live)")
                    return found
                if isinstance(entry, Mapping):
                    found.extend(_weak_entry(f"{name}.{key}", entry))
    return found


@decision("bedrock_guardrail_weakened")
def bedrock_guardrail_weakened(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Guardrail filters turned off or to NONE, or an Automated Reasoning policy deleted."""
    name = event.event_name
    if name == "DeleteAutomatedReasoningPolicy":
        rid = str(event.req("policyArn") or "?")
        return _alert(event, "AWS::Bedrock::AutomatedReasoningPolicy", rid, f"Automated Reasoning policy {rid} deleted")
    if name != "UpdateGuardrail":
        return Assessment(False, f"{name} is not judged by this rule")
    gid = str(event.req("guardrailIdentifier") or event.resp("guardrailArn") or "?")
    if request_too_large(event.detail.get("requestParameters")):
        return _alert(
            event,
            "AWS::Bedrock::Guardrail",
            gid,
            f"guardrail {gid} updated; CloudTrail omitted the request as too large to log (read it live)",
        )
    if not policies_logged(event.request):
        return Assessment(
            False, f"guardrail {gid} updated; the record carries no policy (CloudTrail hides them): nothing to judge"
        )
    weak = guardrail_weakenings(event.request)
    if not weak:
        return Assessment(False, f"guardrail {gid} update: no filter off or at NONE in what the record shows")
    return _alert(event, "AWS::Bedrock::Guardrail", gid, f"guardrail {gid} weakened: {'; '.join(weak[:10])}")


def _named(block: Any, *keys: str) -> bool:
    return isinstance(block, Mapping) and any(
        isinstance(field(block, k), str) and field(block, k).strip() for k in keys
    )


def logging_weakenings(config: Mapping[str, Any]) -> list[str]:
    """What a model invocation logging configuration no longer records."""
    out: list[str] = []
    if not _named(field(config, "cloudWatchConfig"), "logGroupName") and not _named(
        field(config, "s3Config"), "bucketName"
    ):
        out.append("no destination (neither CloudWatch Logs nor S3)")
    if is_false(field(config, "textDataDeliveryEnabled")):
        out.append("text data delivery off (prompts and responses not logged)")
    return out


@decision("bedrock_invocation_logging_weakened")
def bedrock_invocation_logging_weakened(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Invocation logging deleted, or put with no destination or with text delivery off."""
    if event.event_name != "PutModelInvocationLoggingConfiguration":
        return request_resource(event, rule, cfg)
    where = f"{event.account or '?'}/{event.region or '?'}"
    rtype = "AWS::Bedrock::ModelInvocationLogging"
    if request_too_large(event.detail.get("requestParameters")):
        return _alert(
            event, rtype, where, "Bedrock invocation logging changed; request too large to log (read it live)"
        )
    config = field(event.request, "loggingConfig")
    if not isinstance(config, Mapping):
        return Assessment(False, "no readable loggingConfig in the request")
    weak = logging_weakenings(config)
    if not weak:
        return Assessment(False, "invocation logging keeps a destination and text delivery")
    return _alert(event, rtype, where, f"Bedrock invocation logging weakened: {'; '.join(weak)}")


@decision("bedrock_resource_policy_exposed")
def bedrock_resource_policy_exposed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutResourcePolicy on a guardrail (profile): public, or granted outside the organization."""
    arn = event.req("resourceArn")
    return judge_policy(
        event,
        cfg,
        kind="Bedrock resource",
        resource_type="AWS::Bedrock::Guardrail",
        resource_id=arn if isinstance(arn, str) else "",
        policy=event.req("resourcePolicy"),
        required=True,
    )
