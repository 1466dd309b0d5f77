"""CDK stacks: one per deployable unit. Reusable pieces live in ``stacks.constructs``."""
