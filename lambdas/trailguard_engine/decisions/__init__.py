"""Decision functions: pure functions of (event, rule, config) -> Assessment.

A rule names its decision function in ``"decision"``; extra knobs go in the
rule's ``"params"``. Decision functions make no AWS calls. They are grouped by
topic in the modules of this package, which register themselves with
:func:`decision` when imported by :func:`registry`.

The generic safety checks (failed calls, loop guard, exemptions, modes) are
applied by :func:`trailguard_engine.evaluate.decide`, not here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TypeAlias

from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig

DecisionFn: TypeAlias = Callable[[CloudTrailEvent, Rule, RuntimeConfig], Assessment]

_REGISTRY: dict[str, DecisionFn] = {}
_LOADED: list[bool] = []


def decision(name: str) -> Callable[[DecisionFn], DecisionFn]:
    """Register a decision function under ``name`` (the rule's ``"decision"`` value)."""

    def register(fn: DecisionFn) -> DecisionFn:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"decision {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn

    return register


def registry() -> dict[str, DecisionFn]:
    """Every registered decision function, importing the topic modules on first use."""
    if not _LOADED:
        for mod in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{mod.name}")
        _LOADED.append(True)
    return _REGISTRY
