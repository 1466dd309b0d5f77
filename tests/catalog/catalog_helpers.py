"""Helpers for the catalog meta-tests: the whole catalog (every helper's rules) and moto's matcher.

moto's ``EventPattern`` flattens nested objects but not arrays of objects, so
``{"eventSelectors": {"readWriteType": ["ReadOnly"]}}`` never matches
``"eventSelectors": [{"readWriteType": "ReadOnly"}]``. EventBridge's engine
(aws/event-ruler) does match there, with "array consistency": all the fields a
rule matches inside one array must come from the same element. The helper below
reproduces exactly that on top of moto: it tries every choice of one element per
array of objects (each variant is a plain nested object moto understands) and
matches if any variant does.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from moto.events.models import EventPattern
from trailguard_engine.catalog import RULES_DIR, load_catalog
from trailguard_engine.model import Rule

RULE_FILES = sorted(RULES_DIR.glob("*.json"))
RULES: tuple[Rule, ...] = load_catalog()
MAX_VARIANTS = 512


def _variants(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        keys = list(node)
        for combo in itertools.product(*(list(_variants(node[k])) for k in keys)):
            yield dict(zip(keys, combo, strict=True))
    elif isinstance(node, list) and node and all(isinstance(x, dict) for x in node):
        for element in node:
            yield from _variants(element)
    else:
        yield node


def eventbridge_variants(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The event with each array of objects replaced by one of its elements, every combination."""
    out = list(itertools.islice(_variants(event), MAX_VARIANTS + 1))
    if len(out) > MAX_VARIANTS:
        raise ValueError("example event has too many array-of-object combinations for the moto check")
    return out


def moto_raw(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return bool(EventPattern.load(json.dumps(pattern)).matches_event(event))


def moto_matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """moto's matcher with EventBridge's array-of-objects semantics (see the module docstring)."""
    return any(moto_raw(pattern, v) for v in eventbridge_variants(event))
