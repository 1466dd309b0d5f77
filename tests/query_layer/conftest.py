"""One session-scoped synth of the security-tooling stack in both modes, with cdk-nag on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tooling_synth import Tooling

ROOT = Path(__file__).resolve().parents[2]

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_DEPRECATED", "quiet")


@pytest.fixture(scope="session")
def tooling(tmp_path_factory: pytest.TempPathFactory) -> Tooling:
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

    from stacks import names
    from stacks.security_tooling import SecurityToolingStack
    from trailguard.config import load_config

    outdir = tmp_path_factory.mktemp("cdk-security-tooling")
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(outdir=str(outdir), context=context)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))
    for stack_name, cfg in (
        ("Standalone", load_config(None)),
        ("Organization", load_config(ROOT / "config" / "example-organization.yaml")),
    ):
        accounts = names.Accounts.for_config(cfg)
        env = cdk.Environment(account=accounts.security if cfg.mode == "organization" else None, region=cfg.home_region)
        SecurityToolingStack(app, stack_name, cfg=cfg, accounts=accounts, env=env)
    assembly = app.synth()  # raises when cdk-nag reports an unacknowledged finding
    templates = {s.stack_name: s.template for s in assembly.stacks}
    return Tooling(templates=templates, outdir=outdir)
