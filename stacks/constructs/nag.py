"""cdk-nag 3 acknowledgments, kept deliberate and countable.

Every stack declares its acknowledgments in ONE place (a tuple of
:class:`NagAck` passed to :func:`acknowledge`). The acknowledgments end up as
``aws:cdk:acknowledged-rules`` metadata in the cloud assembly, which is what the
tests count, per stack, so that a new acknowledgment is always a visible,
reviewed change.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from constructs import IConstruct

#: The rule packs run on the whole app (see ``stacks.app_builder._add_nag``).
PACKS = ("AwsSolutions", "NIST.800.53.R5")

_MIN_REASON = 40


class NagAckError(ValueError):
    """An acknowledgment that would hide a finding without a real reason."""


@dataclass(frozen=True)
class NagAck:
    """One acknowledged finding: ``rule`` is the id nag prints, e.g. ``AwsSolutions-S1`` or
    ``AwsSolutions-IAM5[Resource::arn:...]``; the pack prefix is added automatically."""

    rule: str
    reason: str

    @property
    def full_id(self) -> str:
        pack = "NIST.800.53.R5" if self.rule.startswith("NIST.800.53.R5-") else self.rule.split("-", 1)[0]
        if pack not in PACKS:
            raise NagAckError(f"{self.rule}: not a rule of the packs in use {PACKS}")
        return f"{pack}::{self.rule}"


def acknowledge(scope: IConstruct, *acks: NagAck) -> None:
    """Acknowledge findings on ``scope`` (and its children). Each reason must be specific."""
    for ack in acks:
        reason = ack.reason.strip()
        if len(reason) < _MIN_REASON:
            raise NagAckError(f"{ack.rule}: reason too short to be specific ({reason!r})")
        cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=ack.full_id, reason=reason))


def finding_text(scope: IConstruct, value: str) -> str:
    """Render ``value`` the way cdk-nag prints it in a finding id (``<AWS::AccountId>`` for tokens)."""
    resolved = cdk.Stack.of(scope).resolve(value)
    return _render(resolved)


def _render(node: object) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        if "Ref" in node:
            return f"<{node['Ref']}>"
        if "Fn::GetAtt" in node:
            return "<{}.{}>".format(*node["Fn::GetAtt"])
        if "Fn::Join" in node:
            sep, parts = node["Fn::Join"]
            return str(sep).join(_render(p) for p in parts)
    raise NagAckError(f"cannot render {node!r} as a cdk-nag finding id")
