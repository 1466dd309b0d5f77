"""CloudTrail remediations."""

from __future__ import annotations

from collections.abc import Mapping

from trailguard_engine.remediations import ActionResult, RemediationContext, error_code, remediation


def _trail_arn(ctx: RemediationContext) -> str:
    trail = ctx.param("trail")
    if trail.startswith("arn:"):
        return trail
    return f"arn:{ctx.partition()}:cloudtrail:{ctx.region}:{ctx.account}:trail/{trail}"


def _trail_region(arn: str, default: str) -> str:
    """Trail APIs must be called in the trail's home region (a multi-region trail's events come from everywhere)."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else default


def trail_tags(ctx: RemediationContext) -> Mapping[str, str]:
    arn = _trail_arn(ctx)
    ct = ctx.session_client("cloudtrail", _trail_region(arn, ctx.region))
    resp = ct.list_tags(ResourceIdList=[arn])
    out: dict[str, str] = {}
    for entry in resp.get("ResourceTagList", []):
        for t in entry.get("TagsList", []) or []:
            out[str(t.get("Key"))] = str(t.get("Value", ""))
    return out


#: A stack in one of these states may be stopping a trail it replaces or deletes (CloudFormation stops,
#: then deletes, the old trail): starting it again would fight the stack.
STACK_BUSY = frozenset(
    {
        "DELETE_IN_PROGRESS",
        "UPDATE_IN_PROGRESS",
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
    }
)
STACK_NAME_TAG = "aws:cloudformation:stack-name"


def is_own_trail(ctx: RemediationContext, arn: str) -> bool:
    """trailguard's own trail, by the deployed ARN in the runtime document (exact)."""
    own = ctx.cfg.deployed_trail.get("arn")
    return bool(own) and own == arn


def stopped_by_a_person(ctx: RemediationContext) -> bool:
    """The stop was made by a person (caller class ``human``: the root user, an IAM user, a console, federated,
    Identity Center user or MFA session), never by CloudFormation.

    CloudFormation stops a trail through its own calls (``invokedBy cloudformation.amazonaws.com``: class
    ``iac``) or through a custom resource's function (a role session: class ``unknown``); a person's stop is
    neither, so the stack is not asked about: the trail is started whatever its stack is doing. An unclassified
    finding is not a person's.
    """
    caller = ctx.finding.caller
    return caller is not None and caller.kind == "human"


def _stack_status(ctx: RemediationContext, region: str, stack: str) -> str:
    try:
        stacks = ctx.session_client("cloudformation", region).describe_stacks(StackName=stack)["Stacks"]
    except Exception as exc:
        if error_code(exc) == "ValidationError":  # "Stack with id ... does not exist"
            return ""
        raise
    return str(stacks[0].get("StackStatus", "")) if stacks else ""


@remediation("start_logging", resource="trail", tags=trail_tags)
def start_logging(ctx: RemediationContext) -> ActionResult:
    """Start the trail again if it still exists and is still stopped. Changes nothing else on the trail.

    A trail CloudFormation manages (tag ``aws:cloudformation:stack-name``, which only CloudFormation
    can set) whose stack is being updated or deleted is alerted, not started: the stack stops a
    trail it replaces or deletes. A person's stop (:func:`stopped_by_a_person`) is not the stack's, so
    its trail is started without asking CloudFormation. trailguard's own trail is always started, whoever
    stopped it and whatever its stack is doing (self-protection).
    """
    arn = _trail_arn(ctx)
    region = _trail_region(arn, ctx.region)
    ct = ctx.session_client("cloudtrail", region)
    try:
        logging = ct.get_trail_status(Name=arn).get("IsLogging")
    except Exception as exc:
        if error_code(exc) == "TrailNotFoundException":
            return ActionResult("already_safe", f"trail {arn} no longer exists (deleted after it was stopped)")
        raise
    if logging:
        return ActionResult("already_safe", f"trail {arn} is logging")
    if not is_own_trail(ctx, arn) and not stopped_by_a_person(ctx):
        stack = ctx.tags(trail_tags).get(STACK_NAME_TAG, "")
        status = _stack_status(ctx, region, stack) if stack else ""
        if status in STACK_BUSY:
            return ActionResult(
                "skipped",
                f"trail {arn} belongs to CloudFormation stack {stack}, which is {status}: the stack stops a trail "
                "it replaces or deletes, so it was not started. Check that the stack finishes and that its "
                "replacement trail is logging; if the stack rolls back, start the trail by hand.",
                alert=True,
            )
    ct.start_logging(Name=arn)
    return ActionResult("remediated", f"started logging on {arn}", (f"cloudtrail:StartLogging {arn}",))
