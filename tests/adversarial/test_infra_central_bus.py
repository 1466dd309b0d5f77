"""Finding 1: a principal of the organization cannot put events on the central bus.

Attacker: an administrator of a member account (AdministratorAccess, so ``events:PutEvents`` on
``*`` in their identity policy). Before the fix the bus policy allowed PutEvents to every principal
of the organization, so the attacker could put events straight onto ``trailguard-central``: flood
the engine (20 reserved executions) to delay everyone else's remediation, or replay crafted
envelopes at it. Now only the member forwarding roles ``trailguard-forward-<region>`` may; the SCP
(test_infra_scp.py) stops a member admin from creating or re-trusting a role of that name, and
the engine checks every envelope it receives.
"""

from __future__ import annotations

from typing import Any

import pytest
from infra_templates import (
    HOME,
    MANAGEMENT,
    MEMBER,
    ORG_ID,
    OUTSIDER,
    SECURITY,
    STANDALONE,
    Resolver,
    identity_policies,
    resources,
    role_lid,
    stackset_member_template,
)
from policy_eval import ADMINISTRATOR_ACCESS, Caller, Decision, Request, evaluate

DETECTION = "TrailguardDetection"


def _bus(synth: Any, account: str) -> tuple[str, dict[str, Any]]:
    """(bus ARN, bus policy statements) of the central bus, resolved for ``account``."""
    tpl = synth.templates[DETECTION]
    resolver = Resolver(tpl, account)
    (bus_lid,) = resources(tpl, "AWS::Events::EventBus")
    arn = resolver.resolve({"Fn::GetAtt": [bus_lid, "Arn"]})
    statements = [
        resolver.resolve(p["Properties"]["Statement"]) for p in resources(tpl, "AWS::Events::EventBusPolicy").values()
    ]
    return arn, {"Statement": statements}


def _put_events(synth: Any, caller: Caller, *, bus_account: str, identity: list[dict[str, Any]]) -> Decision:
    arn, policy = _bus(synth, bus_account)
    return evaluate(
        Request(caller, "events:PutEvents", arn),
        resource_account=bus_account,
        resource_policy=policy,
        identity_policies=identity,
    )


# --------------------------------------------------------------------------- #
# the attacks
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("role", ["OrganizationAccountAccessRole", "app-deployer", "trailguard-forwarder"])
def test_member_admin_cannot_put_events_on_the_central_bus(organization: Any, role: str) -> None:
    attacker = Caller.role(MEMBER, role, org_id=ORG_ID)
    decision = _put_events(organization, attacker, bus_account=SECURITY, identity=[ADMINISTRATOR_ACCESS])
    assert decision is not Decision.ALLOW, f"{attacker.arn} may PutEvents on the central bus"


def test_management_account_admin_cannot_put_events_on_the_central_bus(organization: Any) -> None:
    attacker = Caller.role(MANAGEMENT, "Admin", org_id=ORG_ID)
    decision = _put_events(organization, attacker, bus_account=SECURITY, identity=[ADMINISTRATOR_ACCESS])
    assert decision is not Decision.ALLOW


def test_a_forward_role_name_outside_the_organization_is_refused(organization: Any) -> None:
    outsider = Caller.role(OUTSIDER, f"trailguard-forward-{HOME}", org_id="o-zzzzzzzzzz")
    assert (
        _put_events(organization, outsider, bus_account=SECURITY, identity=[ADMINISTRATOR_ACCESS]) is not Decision.ALLOW
    )


# --------------------------------------------------------------------------- #
# trailguard's own forwarding still works
# --------------------------------------------------------------------------- #
def _forward_role(template: dict[str, Any], account: str, region: str) -> tuple[Caller, list[dict[str, Any]]]:
    """The member stack's forwarding role, as deployed in ``account``/``region``, and its identity policies."""
    resolver = Resolver(template, account, region)
    lid = role_lid(template, "trailguard-forward-")
    arn = resolver.resolve({"Fn::GetAtt": [lid, "Arn"]})
    caller = Caller(arn=arn, account=account, org_id=ORG_ID if account != STANDALONE else None)
    return caller, identity_policies(template, lid, resolver)


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "eu-central-1"])
def test_stackset_forward_role_of_any_member_account_and_region_may_put(organization: Any, region: str) -> None:
    caller, identity = _forward_role(stackset_member_template(organization), MEMBER, region)
    assert caller.arn == f"arn:aws:iam::{MEMBER}:role/trailguard-forward-{region}"
    assert _put_events(organization, caller, bus_account=SECURITY, identity=identity) is Decision.ALLOW


def test_management_account_forward_role_may_put(organization: Any) -> None:
    caller, identity = _forward_role(organization.templates["TrailguardMember-eu-west-1"], MANAGEMENT, "eu-west-1")
    assert _put_events(organization, caller, bus_account=SECURITY, identity=identity) is Decision.ALLOW


def test_standalone_forward_roles_of_every_governed_region_may_put(standalone: Any) -> None:
    from trailguard.config import load_config

    for region in load_config(None).governed_regions:
        caller, identity = _forward_role(standalone.templates[f"TrailguardMember-{region}"], STANDALONE, region)
        assert _put_events(standalone, caller, bus_account=STANDALONE, identity=identity) is Decision.ALLOW, region


def test_standalone_bus_policy_grants_nothing_beyond_the_forward_roles(standalone: Any) -> None:
    """One account: identity policies still grant PutEvents there (IAM's same-account rule), so the bus
    policy's part is to add nobody: a role without a PutEvents grant of its own gets nothing from it."""
    for caller in (Caller.role(STANDALONE, "app"), Caller.role(OUTSIDER, f"trailguard-forward-{HOME}")):
        assert _put_events(standalone, caller, bus_account=STANDALONE, identity=[]) is Decision.IMPLICIT_DENY
