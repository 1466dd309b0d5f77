"""Typed exceptions for the CLI and the CDK app."""

from __future__ import annotations


class TrailguardError(Exception):
    """Base class for every error trailguard reports to a user."""


class ConfigError(TrailguardError):
    """A configuration file is invalid. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))
