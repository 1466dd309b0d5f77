"""Build every stack for the configured deployment mode.

Ownership: ``add_foundation`` (trail, log archive, guardrails, query layer:
issue 3) and ``add_detection`` (central bus, engine, member stacks, StackSet:
issues 4, 5 and 7) are separate so they can evolve independently. Stacks in
different accounts never reference each other; shared names come from
``stacks.names``.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

from stacks import names
from stacks.constructs.archive_notifications import add_archive_notifications, reconcile_queue_arn
from stacks.detection import DetectionStack
from stacks.guardrails import GuardrailsStack
from stacks.log_archive import LogArchiveStack
from stacks.member import MemberStack
from stacks.member_stackset import MemberStackSetStack
from stacks.security_tooling import SecurityToolingStack
from stacks.trail import TrailStack
from trailguard.config import TrailguardConfig


def build_app(app: cdk.App, cfg: TrailguardConfig) -> None:
    """Add the stacks for ``cfg.mode`` to ``app``."""
    add_foundation(app, cfg)
    add_detection(app, cfg)
    _add_nag(app)


def _add_nag(app: cdk.App) -> None:
    """cdk-nag 3 as validation plugins: any unacknowledged finding fails the synth."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))


def _env(account: str | None, region: str) -> cdk.Environment:
    """Organization mode pins each stack to its account; standalone leaves the account to the CLI."""
    return cdk.Environment(account=account, region=region)


def add_foundation(app: cdk.App, cfg: TrailguardConfig) -> None:
    """Log archive, trail (+ CIS monitoring), guardrails, security-tooling query layer."""
    accounts = names.Accounts.for_config(cfg)
    org = cfg.mode == "organization"
    region = cfg.home_region

    def env(account: str) -> cdk.Environment:
        return _env(account if org else None, region)

    archive = LogArchiveStack(app, "TrailguardLogArchive", cfg=cfg, accounts=accounts, env=env(accounts.log_archive))
    trail = TrailStack(app, "TrailguardTrail", cfg=cfg, accounts=accounts, env=env(accounts.trail))
    trail.add_dependency(archive, "the trail delivers to the archive bucket and trail key")
    if org and cfg.features.scps:
        guardrails = GuardrailsStack(
            app, "TrailguardGuardrails", cfg=cfg, accounts=accounts, env=env(accounts.management)
        )
        guardrails.add_dependency(trail, "protect the trail only once it exists")
        _tag(guardrails, "guardrails")
    tooling = SecurityToolingStack(
        app, "TrailguardSecurityTooling", cfg=cfg, accounts=accounts, env=env(accounts.security)
    )
    tooling.add_dependency(archive, "the query layer reads the archive bucket")
    _tag(archive, "log-archive")
    _tag(trail, "trail")
    _tag(tooling, "security-tooling")


def _tag(stack: cdk.Stack, component: str) -> None:
    """Tag every taggable resource (Security Hub CloudTrail.9 wants trails tagged)."""
    cdk.Tags.of(stack).add("trailguard:managed-by", "trailguard")
    cdk.Tags.of(stack).add("trailguard:component", component)


def add_detection(app: cdk.App, cfg: TrailguardConfig) -> None:
    """Central bus, rules, engine, reconciliation, drift sweep, member stacks and StackSet.

    Organization mode: the detection stack in the security account, a service-managed StackSet
    in the management account, and the member stack deployed directly to the management account
    in every governed region (StackSets never reach it). Standalone: the detection stack and one
    member stack per governed region, all in the deploying account.
    """
    accounts = names.Accounts.for_config(cfg)
    org = cfg.mode == "organization"
    detection = DetectionStack(
        app,
        "TrailguardDetection",
        cfg=cfg,
        env=cdk.Environment(account=accounts.security if org else None, region=cfg.home_region),
    )
    archive = app.node.try_find_child("TrailguardLogArchive")
    if isinstance(archive, LogArchiveStack):
        # New log files -> reconciliation queue (issue 7). S3 validates the queue when the
        # notification is written, so the detection stack deploys first.
        add_archive_notifications(archive.archive.bucket, reconcile_queue_arn(accounts))
        archive.add_dependency(detection, "the archive bucket notifies the reconciliation queue")
    if org:
        stackset = MemberStackSetStack(
            app,
            "TrailguardMemberStackSet",
            cfg=cfg,
            env=cdk.Environment(account=accounts.management, region=cfg.home_region),
        )
        stackset.add_dependency(detection, "members forward to the central bus; the engine role must exist")
    for region in cfg.governed_regions:
        member = MemberStack(
            app,
            f"TrailguardMember-{region}",
            cfg=cfg,
            env=cdk.Environment(account=accounts.management if org else None, region=region),
        )
        member.add_dependency(detection, "members forward to the central bus")
