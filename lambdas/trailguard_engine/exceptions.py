"""Typed exceptions of the engine."""

from __future__ import annotations


class EngineError(Exception):
    """Base class."""


class RejectedEvent(EngineError):
    """The input is not a CloudTrail record or EventBridge envelope we can judge."""


class CatalogError(EngineError):
    """A rule file is invalid."""


class RuntimeConfigError(EngineError):
    """The runtime configuration document (SSM parameter) is invalid."""


class RemediationError(EngineError):
    """A remediation could not complete; the engine alerts and re-raises for the DLQ."""


class AssumeRoleError(RemediationError):
    """The member remediation role could not be assumed."""
