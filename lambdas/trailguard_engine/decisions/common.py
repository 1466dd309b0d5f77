"""Generic decision functions usable by many rules."""

from __future__ import annotations

from trailguard_engine.caller import service_linked_session
from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, get_ci
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig


@decision("always")
def always(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """The pattern is the whole test: every matching event is risky."""
    return Assessment(True, f"{event.event_name} matched {rule.id}")


#: ``params.resource_fields`` of a change-record rule: request fields naming the resource, tried in order
#: (a dotted path walks nested objects; field names compare case-insensitively).
RESOURCE_FIELDS = "resource_fields"


def _field(event: CloudTrailEvent, path: str) -> str:
    node: object = event.request
    for part in path.split("."):
        node = get_ci(node, part)
        if node is None:
            return ""
    if isinstance(node, (str, int)) and not isinstance(node, bool):
        return str(node)
    return ""


@decision("change_record")
def change_record(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """An INFO rule's record of a change the public rule sets flag on any call (see docs/coverage.md).

    Every successful call the pattern selects is recorded (severity INFO: a Security Hub finding and the
    engine's audit log, never an SNS alert; see the engine), except one an AWS service made with its own
    identity or through one of its service-linked roles (lifecycle, replication, load balancers editing their
    security groups), which is nobody's decision. The more specific
    rules of the catalog still alert on the risky forms of the same calls.
    """
    if event.identity_type == "AWSService":
        return Assessment(False, "made by an AWS service with its own identity: not a change record")
    if service_linked_session(event):
        return Assessment(False, f"{event.event_name} made by a service-linked role: the service's own work")
    fields = rule.params.get(RESOURCE_FIELDS) or ()
    resource = next((v for v in (_field(event, str(f)) for f in fields) if v), "")
    on = f" on {resource[:200]}" if resource else ""
    rtype = rule.params.get("resource_type")
    res = {"type": str(rtype), "id": resource[:300]} if resource and isinstance(rtype, str) else {}
    return Assessment(True, f"{event.event_name}{on} by {event.actor[:200]}: change record", res, remediable=False)
