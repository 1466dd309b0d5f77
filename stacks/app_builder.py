"""Build every stack for the configured deployment mode.

Ownership: ``add_foundation`` (trail, log archive, guardrails, query layer:
issue 3) and ``add_detection`` (central bus, engine, member stacks, StackSet:
issues 4, 5 and 7) are separate so they can evolve independently. Stacks in
different accounts never reference each other; shared names come from
``stacks.names``.
"""

from __future__ import annotations

import aws_cdk as cdk

from trailguard.config import TrailguardConfig


def build_app(app: cdk.App, cfg: TrailguardConfig) -> None:
    """Add the stacks for ``cfg.mode`` to ``app``."""
    add_foundation(app, cfg)
    add_detection(app, cfg)


def add_foundation(app: cdk.App, cfg: TrailguardConfig) -> None:
    """Log archive, trail (+ CIS monitoring), guardrails, security-tooling query layer."""
    cdk.Stack(app, "TrailguardPlaceholder")


def add_detection(app: cdk.App, cfg: TrailguardConfig) -> None:
    """Central bus, rules, engine, reconciliation, drift sweep, member stacks and StackSet."""
