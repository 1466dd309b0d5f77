"""The synthesized security-tooling templates (shared by conftest and tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Tooling:
    templates: dict[str, dict[str, Any]]
    outdir: Path

    def resources(self, stack: str, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.templates[stack]["Resources"].values() if r["Type"] == type_]
