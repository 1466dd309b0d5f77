#!/usr/bin/env python3
"""CDK entry point: read the config, build the stacks for its mode. Defines no resources.

npx cdk synth                                  # standalone defaults, no config file
npx cdk synth -c config=config/example-organization.yaml
"""

from __future__ import annotations

import sys

import aws_cdk as cdk
from trailguard_engine.exceptions import CatalogError

from stacks.app_builder import build_app
from trailguard.config import config_warnings, load_config
from trailguard.exceptions import ConfigError


def main() -> None:
    app = cdk.App()
    path = app.node.try_get_context("config")
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"trailguard: config error: {line}", file=sys.stderr)
        sys.exit(2)
    for line in config_warnings(cfg):
        print(f"trailguard: config warning: {line}", file=sys.stderr)
    try:
        build_app(app, cfg)
    except CatalogError as exc:  # e.g. a rule whose pattern EventBridge would refuse: named, no stack trace
        print(f"trailguard: catalog error: {exc}", file=sys.stderr)
        sys.exit(2)
    app.synth()


if __name__ == "__main__":
    main()
