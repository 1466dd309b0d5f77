"""Change records (severity INFO) for network, compute and security-service changes (issue 14).

Public rule sets flag some network, compute-access and security-tooling calls on any occurrence (a NACL
entry, a security-group rule, an imported key pair, an EKS access entry, a Bedrock guardrail update ...).
Those calls are routine work as often as they are an attacker's, so the catalog records them (a Security
Hub INFORMATIONAL finding and the engine's audit log, never an SNS alert) while its alerting rules judge the
risky forms of the same calls (a world-open ingress rule, a cluster-admin access policy, a weakened
guardrail ...).

* :func:`infra_change_record`: the generic :func:`~trailguard_engine.decisions.common.change_record` with a
  resource type per API call (``params.resource_types``: eventName -> type), for record rules that group
  calls of several resource types so each costs one EventBridge rule, not one per call.
* :func:`accelerated_instance_launch`: a record of each successful launch of accelerated-computing (GPU,
  Inferentia, Trainium, FPGA ...) instances, the capacity stolen keys are used to mine with. Launches are
  routine where teams train models, so it records rather than alerts (a refused launch alerts:
  ``ec2-gpu-instance-launch-denied``).
"""

from __future__ import annotations

from collections.abc import Mapping

from trailguard_engine.decisions import decision
from trailguard_engine.decisions.common import change_record
from trailguard_engine.decisions.coverage_gaps import GPU_TYPE
from trailguard_engine.events import CloudTrailEvent, as_list, get_ci, text
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig

#: ``params.resource_types`` of an :func:`infra_change_record` rule: eventName -> CloudFormation-style type.
RESOURCE_TYPES = "resource_types"
#: At most this many instance ids are named in one record (a launch can start hundreds).
_MAX_IDS = 10


@decision("infra_change_record")
def infra_change_record(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A change record (see ``change_record``) whose resource type depends on the API call.

    The type comes from ``params.resource_types[eventName]``, else ``params.resource_type``; a call the map
    does not name keeps the rule's default. A session of a service-linked role is the service's own work
    (no customer can assume one), so it is not recorded either. Never raises on a crafted request: the
    resource is read only from string or number fields the rule names.
    """
    assessment = change_record(event, rule, cfg)  # skips AWS services and service-linked roles
    if not assessment.risky or not assessment.resource:
        return assessment
    types = rule.params.get(RESOURCE_TYPES)
    rtype = types.get(event.event_name) if isinstance(types, Mapping) else None
    if isinstance(rtype, str) and rtype:
        return Assessment(
            True,
            assessment.reason,
            {**assessment.resource, "type": rtype},
            remediable=False,
        )
    return assessment


def _launched(event: CloudTrailEvent) -> list[tuple[str, str]]:
    """(instance id, instance type) of each instance the response says was launched."""
    out: list[tuple[str, str]] = []
    for item in as_list(get_ci(get_ci(event.response, "instancesSet"), "items")):
        if isinstance(item, Mapping):
            out.append((text(get_ci(item, "instanceId")), text(get_ci(item, "instanceType"))))
    return out


@decision("accelerated_instance_launch")
def accelerated_instance_launch(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A successful RunInstances of an accelerated-computing instance type: a change record.

    The type is read from the request (``instanceType``) and from every instance of the response (a launch
    template or a fleet names the type only there), so a launch template cannot hide a GPU launch. A call an
    AWS service made with its own identity is not recorded.
    """
    if event.event_name != "RunInstances":
        return Assessment(False, f"{event.event_name} launches no instance")
    if event.identity_type == "AWSService":
        return Assessment(False, "launched by an AWS service with its own identity: not a change record")
    launched = _launched(event)
    types = {t for t in [text(get_ci(event.request, "instanceType")), *(t for _, t in launched)] if t}
    accelerated = sorted(t for t in types if GPU_TYPE.match(t))
    if not accelerated:
        shown = ", ".join(sorted(types)) or "not logged"
        return Assessment(False, f"instance type {shown[:200]}: not an accelerated-computing type")
    ids = [i for i, t in launched if i and (not t or GPU_TYPE.match(t))]
    count = len(launched) or 1
    who = event.principal_arn or event.access_key_id or event.invoked_by or "unknown principal"
    named = ", ".join(ids[:_MAX_IDS]) + (f" and {len(ids) - _MAX_IDS} more" if len(ids) > _MAX_IDS else "")
    on = f" ({named})" if named else ""
    return Assessment(
        True,
        f"{count} instance(s) of accelerated type {', '.join(accelerated)[:200]} launched{on} by {who[:200]}: "
        "change record",
        {"type": "AWS::EC2::Instance", "id": (ids[0] if len(ids) == 1 else accelerated[0])[:300]},
        remediable=False,
    )
