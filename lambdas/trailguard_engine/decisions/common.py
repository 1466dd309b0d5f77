"""Generic decision functions usable by many rules."""

from __future__ import annotations

from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig


@decision("always")
def always(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """The pattern is the whole test: every matching event is risky."""
    return Assessment(True, f"{event.event_name} matched {rule.id}")
