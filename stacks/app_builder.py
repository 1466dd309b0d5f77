"""Build every stack for the configured deployment mode."""

from __future__ import annotations

import aws_cdk as cdk

from trailguard.config import TrailguardConfig


def build_app(app: cdk.App, cfg: TrailguardConfig) -> None:
    """Add the stacks for ``cfg.mode`` to ``app``."""
    cdk.Stack(app, "TrailguardPlaceholder")
