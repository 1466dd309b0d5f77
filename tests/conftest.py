"""Shared fixtures. The CDK app is synthesized once per test session per mode."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
EXAMPLE_ORG = ROOT / "config" / "example-organization.yaml"
EXAMPLE_STANDALONE = ROOT / "config" / "example-standalone.yaml"

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_DEPRECATED", "quiet")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

# Hypothesis: in CI every run explores the same examples (a fresh clone has no example database, and a
# random seed would make a red run unreproducible); locally it keeps exploring at random and saves what it
# finds. A failure prints a reproduction blob either way. Counterexamples found locally become @example.
# Neither profile lets machine speed decide a result: no per-example deadline, no too-slow health check.
_NO_TIMING = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, **_NO_TIMING)
settings.register_profile("dev", print_blob=True, **_NO_TIMING)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@dataclass
class Synth:
    """A synthesized cloud assembly: templates by stack name, plus the outdir."""

    outdir: Path
    templates: dict[str, dict[str, Any]]
    manifest: dict[str, Any]

    def template(self, stack_name: str) -> Any:
        from aws_cdk.assertions import Template

        return Template.from_json(self.templates[stack_name])

    def resources(self, stack_name: str, type_: str) -> dict[str, dict[str, Any]]:
        res = self.templates[stack_name].get("Resources", {})
        return {k: v for k, v in res.items() if v.get("Type") == type_}

    def all_resources(self, type_: str) -> list[tuple[str, str, dict[str, Any]]]:
        out = []
        for stack, tpl in self.templates.items():
            for lid, res in tpl.get("Resources", {}).items():
                if res.get("Type") == type_:
                    out.append((stack, lid, res))
        return out


def cdk_context() -> dict[str, Any]:
    """The context from cdk.json (tests do not read cdk.json by themselves)."""
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


def synth_app(config_path: Path | None, outdir: Path, extra_context: dict[str, Any] | None = None) -> Synth:
    import aws_cdk as cdk

    from stacks.app_builder import build_app
    from trailguard.config import load_config

    ctx = cdk_context() | (extra_context or {})
    app = cdk.App(outdir=str(outdir), context=ctx)
    build_app(app, load_config(config_path))
    assembly = app.synth()
    templates = {s.stack_name: s.template for s in assembly.stacks}
    for nested in outdir.glob("*.template.json"):  # StackSet member templates etc.
        name = nested.name.removesuffix(".template.json")
        templates.setdefault(name, json.loads(nested.read_text()))
    manifest = json.loads((outdir / "manifest.json").read_text())
    return Synth(outdir=outdir, templates=templates, manifest=manifest)


@pytest.fixture(scope="session")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The app with no config file at all (the out-of-the-box standalone default)."""
    return synth_app(None, tmp_path_factory.mktemp("cdk-standalone"))


@pytest.fixture(scope="session")
def organization(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The app with config/example-organization.yaml (every optional feature on)."""
    return synth_app(EXAMPLE_ORG, tmp_path_factory.mktemp("cdk-organization"))


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (only present beside the project checkout)")
    return CORPUS
