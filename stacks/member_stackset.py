"""Organization mode: the member stack as a service-managed StackSet (management account).

The member template is synthesized in its own, separate ``cdk.App`` (with the main app's
context) and embedded as ``TemplateBody``: StackSet templates cannot use CDK assets, and member
accounts are not bootstrapped, so it is synthesized without the bootstrap-version rule.
StackSets never deploy to the management account itself; ``stacks.app_builder`` deploys the
same member stack there directly, once per governed region.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudformation as cfn
from constructs import Construct

from stacks.member import MemberStack
from trailguard.config import TrailguardConfig

#: CloudFormation's limit for an inline StackSet TemplateBody.
MAX_TEMPLATE_BODY = 51_200
MEMBER_TEMPLATE_STACK = "TrailguardMemberTemplate"


def synth_member_template(cfg: TrailguardConfig, context: dict[str, Any]) -> dict[str, Any]:
    """The member stack's template, environment-agnostic and asset-free."""
    app = cdk.App(context=context)
    stack = MemberStack(
        app,
        MEMBER_TEMPLATE_STACK,
        cfg=cfg,
        synthesizer=cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
    )
    assembly = app.synth()
    art = assembly.get_stack_artifact(stack.artifact_id)
    if art.assets:
        raise ValueError("the member stack must not use assets: it is deployed through a StackSet")
    template: dict[str, Any] = art.template
    return template


class MemberStackSetStack(cdk.Stack):
    """Service-managed StackSet with auto-deployment to the target OUs and governed regions."""

    def __init__(self, scope: Construct, id: str, *, cfg: TrailguardConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.template_options.description = "trailguard: member StackSet (forwarding rules + remediation role)"
        context = dict(self.node.get_all_context())
        self.member_template = synth_member_template(cfg, context)
        body = json.dumps(self.member_template, separators=(",", ":"), sort_keys=True)
        if len(body) > MAX_TEMPLATE_BODY:
            raise ValueError(
                f"member template is {len(body)} bytes; a StackSet TemplateBody allows {MAX_TEMPLATE_BODY}"
            )
        org = cfg.org
        # This stack is deployed to the management account, so it calls as SELF (DELEGATED_ADMIN
        # is only for a StackSet created from a delegated administrator account).
        self.stack_set = cfn.CfnStackSet(
            self,
            "MemberStackSet",
            stack_set_name="trailguard-member",
            description="trailguard member: forwarding rules to the central bus + remediation role",
            permission_model="SERVICE_MANAGED",
            call_as="SELF",
            auto_deployment=cfn.CfnStackSet.AutoDeploymentProperty(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            capabilities=["CAPABILITY_NAMED_IAM"],
            managed_execution={"Active": True},
            operation_preferences=cfn.CfnStackSet.OperationPreferencesProperty(
                failure_tolerance_percentage=10,
                max_concurrent_percentage=25,
                region_concurrency_type="PARALLEL",
            ),
            stack_instances_group=[
                cfn.CfnStackSet.StackInstancesProperty(
                    deployment_targets=cfn.CfnStackSet.DeploymentTargetsProperty(
                        organizational_unit_ids=list(org.target_ous)
                    ),
                    regions=list(cfg.governed_regions),
                )
            ],
            template_body=body,
        )
