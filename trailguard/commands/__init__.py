"""CLI sub-commands; each module registers its commands on ``trailguard.cli.app``."""
