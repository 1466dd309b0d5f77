"""Decisions for execution on instances: SSM commands and sessions, EC2 Instance Connect and serial console keys.

Running commands through SSM or pushing an SSH key through EC2 Instance Connect is how an attacker holding
AWS credentials reaches the operating system (and the instance role's credentials). Automation does the same
all day (patching, State Manager, pipelines), so the SSM decision fires only when the caller is a person
(:func:`trailguard_engine.caller.classify` says ``human``: an IAM user, root, a console, Identity Center or
MFA-authenticated session). Instance Connect and serial-console keys are pushed by people or by tools acting
for one; both fire for any caller that is not AWS itself.
"""

from __future__ import annotations

from trailguard_engine.caller import Caller, classify, iac_agent
from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, as_list
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig

#: Calls that run a document on instances now (SendCommand), open a shell (StartSession), or make State Manager run
#: one on a schedule (CreateAssociation/UpdateAssociation: the same commands, repeated: persistence).
SSM_CALLS = ("SendCommand", "StartSession", "CreateAssociation", "UpdateAssociation")
INSTANCE_CONNECT_CALLS = ("SendSSHPublicKey", "SendSerialConsoleSSHPublicKey")


def _instances(event: CloudTrailEvent) -> list[str]:
    """Instance (or managed-node) ids a SendCommand/StartSession names; targets as ``Key=Values``."""
    out = [i for i in as_list(event.req("instanceIds")) if isinstance(i, str)]
    target = event.req("target")
    if isinstance(target, str) and target:
        out.append(target)
    for t in as_list(event.req("targets")):
        if isinstance(t, dict):
            values = [v for v in as_list(t.get("values", t.get("Values"))) if isinstance(v, str)]
            key = t.get("key", t.get("Key"))
            out.append(f"{key}={','.join(values)}")
    return out


def person(event: CloudTrailEvent, cfg: RuntimeConfig) -> Caller:
    """The caller class, except that a user agent alone never turns a person into a pipeline.

    :func:`classify` puts a Terraform, CDK or Pulumi user agent in the ``iac`` class (alert-only evidence, since
    anyone can send that string). Here that would *drop* the event, so the identity is judged without it: an IAM
    user sending SendCommand with a Terraform user agent is still a person.
    """
    caller = classify(event, cfg)
    if caller.kind == "iac" and not caller.can_silence and iac_agent(event.user_agent):
        without_agent = CloudTrailEvent({**event.envelope, "detail": {**event.detail, "userAgent": ""}})
        caller = classify(without_agent, cfg)
    return caller


@decision("ssm_exec_by_human")
def ssm_exec_by_human(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """SSM SendCommand, StartSession or a State Manager association made by a person (automation through services
    or IaC is normal)."""
    if event.event_name not in SSM_CALLS:
        return Assessment(False, f"{event.event_name} is not a command or session")
    caller = person(event, cfg)
    if caller.kind != "human":
        return Assessment(False, f"{caller.describe()}: automation runs commands routinely")
    targets = _instances(event)
    doc = event.req("documentName") or event.req("name")
    what = {"StartSession": "session", "SendCommand": "command"}.get(event.event_name, "association")
    doc_txt = f" with {doc}" if isinstance(doc, str) and doc else ""
    where = ", ".join(targets[:5]) + (f" (+{len(targets) - 5})" if len(targets) > 5 else "") if targets else "?"
    return Assessment(
        True,
        f"SSM {what}{doc_txt} on {where} by {event.principal_arn or 'unknown'} ({caller.why})",
        {"type": "AWS::EC2::Instance", "id": targets[0] if targets else ""},
        remediable=False,
    )


@decision("instance_connect_key")
def instance_connect_key(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """An SSH key pushed to an instance (Instance Connect) or to its serial console."""
    if event.event_name not in INSTANCE_CONNECT_CALLS:
        return Assessment(False, f"{event.event_name} pushes no key")
    iid = event.req("instanceId")
    instance = iid if isinstance(iid, str) else ""
    if event.event_name == "SendSerialConsoleSSHPublicKey":
        port = event.req("serialPort")
        how = f"serial console (port {port if port is not None else 0})"
    else:
        user = event.req("instanceOSUser")
        how = f"OS user {user}" if isinstance(user, str) and user else "an OS user"
    return Assessment(
        True,
        f"SSH key pushed to {instance or '?'} for {how} by {event.principal_arn or 'unknown'}",
        {"type": "AWS::EC2::Instance", "id": instance},
        remediable=False,
    )


@decision("serial_console_enabled")
def serial_console_enabled(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """EnableSerialConsoleAccess: the account-wide switch that lets keys reach every instance's serial port."""
    if event.event_name != "EnableSerialConsoleAccess":
        return Assessment(False, f"{event.event_name} does not enable the serial console")
    if event.resp("serialConsoleAccessEnabled") is False:
        return Assessment(False, "the response says serial console access stayed disabled")
    return Assessment(
        True,
        f"EC2 serial console access enabled in {event.account or '?'} {event.region or '?'} by "
        f"{event.principal_arn or 'unknown'}",
        {"type": "AWS::EC2::SerialConsoleAccess", "id": f"{event.account}:{event.region}"},
        remediable=False,
    )
