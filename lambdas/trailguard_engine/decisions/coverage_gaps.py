"""Decisions for high-value detections the public rule sets have and the catalog lacked (issue 14 §3).

``docs/coverage.md`` maps the catalog against Sigma, Panther, Elastic and Stratus Red Team. These close the
high-value items it found missing that no other part of the catalog owns:

* AWS's compromised-key quarantine policy attached to (or removed from) a principal: AWS found one of its
  access keys exposed in public;
* a CodeBuild project made public (its build logs and artifacts, often with secrets, readable by anyone);
* IAM Identity Center's identity source changed (a new external IdP or directory decides who signs in);
* Amazon S3 versioning suspended, MFA delete turned off or server access logging turned off on a bucket;
* a console sign-in made with an EC2 instance role's credentials (stolen from the instance metadata service);
* a WAF web ACL disassociated from the load balancer or API it protected (WAFv2 and WAF Classic Regional);
* an S3 object written with a KMS key of an account outside the organization (its owner can revoke the key:
  ransomware), or copied into a bucket of such an account (exfiltration). Both are S3 *data* events, seen only
  when the trail records them (``features.data_events.s3``).

Every function is pure and alerts only (nothing here is remediated: each change may be intended, and the
live state is not read). Request fields are looked up case-insensitively where CloudTrail's spelling varies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from trailguard_engine.caller import classify
from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.events import get_ci as _ci
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import known_accounts
from trailguard_engine.runtime_config import RuntimeConfig

#: AWS managed policies AWS attaches to a principal whose access key it found exposed (V1, V2, V3 ...).
QUARANTINE_POLICY = re.compile(
    r"^arn:aws(?:-[a-z]+)*:iam::aws:policy/AWSCompromisedKeyQuarantine(?:V\d+)?$", re.IGNORECASE
)
ATTACH_CALLS = frozenset({"AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy"})
DETACH_CALLS = frozenset({"DetachUserPolicy", "DetachRolePolicy", "DetachGroupPolicy"})
_TARGET_KEYS = (("userName", "AWS::IAM::User"), ("roleName", "AWS::IAM::Role"), ("groupName", "AWS::IAM::Group"))

IDENTITY_SOURCE_CALLS = frozenset(
    {
        "AssociateDirectory",
        "DisassociateDirectory",
        "EnableExternalIdPConfigurationForDirectory",
        "DisableExternalIdPConfigurationForDirectory",
    }
)
#: An EC2 instance id, the session name EC2 gives the instance role's credentials.
INSTANCE_SESSION = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
WAF_DISASSOCIATE = "DisassociateWebACL"
#: S3 calls that write an object and may name the SSE-KMS key to encrypt it with.
S3_OBJECT_WRITES = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})
KMS_KEY_HEADER = "x-amz-server-side-encryption-aws-kms-key-id"
#: A KMS key or alias ARN; its fifth field is the owning account. A bare key id or alias is the caller's own.
KMS_ARN = re.compile(r"^arn:aws(?:-[a-z]+)*:kms:[a-z0-9-]*:(\d{12}):(?:key|alias)/\S+$", re.IGNORECASE)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


@decision("compromised_key_quarantine")
def compromised_key_quarantine(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """AWSCompromisedKeyQuarantine* attached (AWS saw an exposed key) or detached (the quarantine lifted)."""
    name = event.event_name
    if name not in ATTACH_CALLS | DETACH_CALLS:
        return Assessment(False, f"{name} does not attach or detach a managed policy")
    arn = event.req("policyArn")
    if not isinstance(arn, str) or not QUARANTINE_POLICY.match(arn):
        return Assessment(False, f"{str(arn)[:128]} is not AWS's compromised-key quarantine policy")
    target, kind = "?", "AWS::IAM::User"
    for key, res_type in _TARGET_KEYS:
        value = _text(event.req(key))
        if value:
            target, kind = value, res_type
            break
    who = f"{kind.rsplit('::', 1)[-1].lower()} {target}"
    if name in ATTACH_CALLS:
        reason = (
            f"{arn.rsplit('/', 1)[-1]} attached to {who}: AWS found an access key of this principal exposed in "
            "public; treat the key as stolen (deactivate it, review what it did) even though the quarantine "
            "blocks its riskiest actions"
        )
    else:
        reason = (
            f"{arn.rsplit('/', 1)[-1]} detached from {who} by {event.principal_arn or '?'}: the quarantine AWS "
            "placed on an exposed key is lifted; confirm the exposed key was deleted first"
        )
    return Assessment(True, reason, {"type": kind, "id": target}, remediable=False)


@decision("codebuild_project_public")
def codebuild_project_public(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """UpdateProjectVisibility to PUBLIC_READ: anyone can read the project's build logs and artifacts."""
    if event.event_name != "UpdateProjectVisibility":
        return Assessment(False, f"{event.event_name} does not change a project's visibility")
    visibility = _text(_ci(event.request, "projectVisibility"))
    if visibility.upper() != "PUBLIC_READ":
        return Assessment(False, f"project visibility set to {visibility or '?'} (not public)")
    project = _text(_ci(event.request, "projectArn")) or "?"
    return Assessment(
        True,
        f"CodeBuild project {project} made public (PUBLIC_READ) by {event.principal_arn or '?'}: its build logs and "
        "artifacts, which often carry secrets, are readable by anyone",
        {"type": "AWS::CodeBuild::Project", "id": project},
        remediable=False,
    )


@decision("identity_center_source_changed")
def identity_center_source_changed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """IAM Identity Center's directory or external IdP associated, disassociated, enabled or disabled."""
    name = event.event_name
    if name not in IDENTITY_SOURCE_CALLS:
        return Assessment(False, f"{name} does not change Identity Center's identity source")
    directory = _text(_ci(event.request, "directoryId")) or "?"
    return Assessment(
        True,
        f"{name} on Identity Center directory {directory} by {event.principal_arn or '?'}: the identity source decides "
        "who can sign in to every account the organization's permission sets reach",
        {"type": "AWS::SSO::Instance", "id": directory},
        remediable=False,
    )


@decision("s3_versioning_or_logging_disabled")
def s3_versioning_or_logging_disabled(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutBucketVersioning suspending versioning or turning MFA delete off; PutBucketLogging turning logging off."""
    bucket = _text(_ci(event.request, "bucketName")) or "?"
    res = {"type": "AWS::S3::Bucket", "id": bucket}
    if event.event_name == "PutBucketVersioning":
        config = _ci(event.request, "VersioningConfiguration")
        status = _text(_ci(config, "Status")).lower()
        mfa = _text(_ci(config, "MfaDelete")).lower()
        lost = [
            w
            for w, on in (("versioning suspended", status == "suspended"), ("MFA delete off", mfa == "disabled"))
            if on
        ]
        if not lost:
            return Assessment(False, f"versioning status {status or '-'}, MFA delete {mfa or '-'}: nothing turned off")
        return Assessment(
            True,
            f"{' and '.join(lost)} on bucket {bucket} by {event.principal_arn or '?'}: overwritten or deleted objects "
            "can no longer be recovered (a ransomware and cover-up step)",
            res,
            remediable=False,
        )
    if event.event_name == "PutBucketLogging":
        status = _ci(event.request, "BucketLoggingStatus")
        if not isinstance(status, Mapping):
            return Assessment(False, "the record carries no BucketLoggingStatus: the change cannot be judged")
        if _ci(status, "LoggingEnabled") is not None:
            return Assessment(False, f"server access logging stays on for {bucket}")
        return Assessment(
            True,
            f"server access logging turned off on bucket {bucket} by {event.principal_arn or '?'}: object reads "
            "and writes stop being recorded there",
            res,
            remediable=False,
        )
    return Assessment(False, f"{event.event_name} changes neither versioning nor logging")


def _session_name(event: CloudTrailEvent) -> str:
    arn = event.principal_arn
    if ":assumed-role/" in arn:
        return arn.rsplit("/", 1)[-1]
    principal = event.identity_str("principalId")
    return principal.split(":", 1)[1] if ":" in principal else ""


@decision("console_login_instance_credentials")
def console_login_instance_credentials(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """ConsoleLogin by a role session named after an EC2 instance: its role credentials became a console session."""
    if event.event_name != "ConsoleLogin":
        return Assessment(False, f"{event.event_name} is not a console sign-in")
    if event.identity_type != "AssumedRole":
        return Assessment(False, f"{event.identity_type or 'unknown'} identity, not a role session")
    session = _session_name(event)
    if not INSTANCE_SESSION.match(session):
        return Assessment(False, f"session {session or '?'} is not an EC2 instance's role session")
    outcome = _text(_ci(event.response, "ConsoleLogin")) or "?"
    return Assessment(
        True,
        f"console sign-in ({outcome}) with the role credentials of instance {session} ({event.session_issuer_arn or '?'}) "
        f"from {event.source_ip or '?'}: instance credentials are for the instance, not a browser; they were likely "
        "taken from its metadata service",
        {"type": "AWS::EC2::Instance", "id": session},
        remediable=False,
    )


@decision("waf_web_acl_disassociated")
def waf_web_acl_disassociated(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """DisassociateWebACL (WAFv2 or WAF Classic Regional): the resource is no longer filtered by its web ACL."""
    if event.event_name != WAF_DISASSOCIATE:
        return Assessment(False, f"{event.event_name} does not remove a web ACL")
    resource = _text(_ci(event.request, "resourceArn")) or "?"
    return Assessment(
        True,
        f"web ACL removed from {resource} ({event.event_source or '?'}) by {event.principal_arn or '?'}: requests to it "
        "are no longer filtered",
        {"type": "AWS::WAFv2::WebACLAssociation", "id": resource},
        remediable=False,
    )


def _foreign(account: str, event: CloudTrailEvent, cfg: RuntimeConfig) -> bool:
    """An account that is neither the event's nor one of ours (organization, trusted, management, engine)."""
    return bool(account) and account != event.account and account not in known_accounts(cfg)


@decision("s3_external_kms_key")
def s3_external_kms_key(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """An object written with SSE-KMS under a key ARN of an account outside the organization."""
    if event.event_name not in S3_OBJECT_WRITES:
        return Assessment(False, f"{event.event_name} does not write an object")
    key = _text(_ci(event.request, KMS_KEY_HEADER))
    if not key:
        return Assessment(False, "no SSE-KMS key named (the bucket default or an S3-managed key)")
    m = KMS_ARN.match(key)
    if m is None:
        return Assessment(False, f"key {key[:128]} is a key id or alias: the caller's own account's key")
    owner = m.group(1)
    if not _foreign(owner, event, cfg):
        return Assessment(False, f"key {key[:128]} belongs to account {owner}, ours")
    bucket = _text(_ci(event.request, "bucketName")) or "?"
    obj = _text(_ci(event.request, "key")) or "?"
    return Assessment(
        True,
        f"{event.event_name} wrote {bucket}/{obj[:200]} encrypted with KMS key {key[:200]} of account {owner}, outside "
        f"the organization, by {event.principal_arn or '?'}: that account can revoke the key and hold the data to "
        "ransom",
        {"type": "AWS::S3::Bucket", "id": bucket},
        remediable=False,
    )


@decision("s3_copy_to_external_account")
def s3_copy_to_external_account(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """CopyObject whose destination bucket, by the record's own resources list, is owned outside the organization."""
    if event.event_name != "CopyObject":
        return Assessment(False, f"{event.event_name} does not copy an object")
    dest = _text(_ci(event.request, "bucketName"))
    owner = ""
    resources = event.detail.get("resources")
    for r in resources if isinstance(resources, list) else []:
        if not isinstance(r, Mapping) or r.get("type") != "AWS::S3::Bucket":
            continue
        arn = _text(r.get("ARN") or r.get("arn"))
        if dest and arn.split(":::", 1)[-1] == dest:
            owner = _text(r.get("accountId"))
    if not owner:
        return Assessment(False, f"the record does not say who owns the destination bucket {dest or '?'}")
    if not _foreign(owner, event, cfg):
        return Assessment(False, f"destination bucket {dest} belongs to account {owner}, ours")
    source = _text(_ci(event.request, "x-amz-copy-source")) or "?"
    return Assessment(
        True,
        f"CopyObject from {source[:200]} into bucket {dest} of account {owner}, outside the organization, by "
        f"{event.principal_arn or '?'}: data copied out of the organization",
        {"type": "AWS::S3::Bucket", "id": dest},
        remediable=False,
    )


@decision("flagged_call")
def flagged_call(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A successful call the rule lists in ``params.calls``, each risky by itself (``params.why`` says why).

    For calls with no benign form worth telling apart (a traffic mirror session, a file system deleted, an
    account closed): the rule's pattern selects them and ``params`` carries the reason and the resource field.
    """
    calls = rule.params.get("calls")
    if not isinstance(calls, list) or event.event_name not in calls:
        return Assessment(False, f"{event.event_name} is not one of this rule's calls")
    field = rule.params.get("resource_field")
    target = _text(_ci(event.request, field)) if isinstance(field, str) else ""
    why = _text(rule.params.get("why")) or rule.title
    on = f" on {target[:200]}" if target else ""
    return Assessment(
        True,
        f"{event.event_name}{on} by {event.principal_arn or event.identity_type or '?'}: {why}",
        {"type": str(rule.params.get("resource_type", "")), "id": target or "?"},
        remediable=False,
    )


#: What a container command reads to steal its task role's credentials: the ECS credentials endpoint.
ECS_CREDENTIAL_MARKERS = (
    "aws_container_credentials_relative_uri",
    "aws_container_credentials_full_uri",
    "169.254.170.2",
)
#: Unambiguous cryptocurrency-miner markers in an image name or a command line.
MINER_MARKERS = (
    "stratum+tcp://",
    "stratum+ssl://",
    "stratum2+tcp://",
    "xmrig",
    "cpuminer",
    "--donate-level",
)
_ECS_CALLS = frozenset({"RegisterTaskDefinition", "RunTask", "StartTask"})


def _container_strings(event: CloudTrailEvent) -> list[tuple[str, str]]:
    """``(container, text)`` for every image, command and entry-point string of the task (definition or overrides)."""
    out: list[tuple[str, str]] = []
    containers = _ci(event.request, "containerDefinitions")
    overrides = _ci(_ci(event.request, "overrides"), "containerOverrides")
    for c in [
        *(containers if isinstance(containers, list) else []),
        *(overrides if isinstance(overrides, list) else []),
    ]:
        if not isinstance(c, Mapping):
            continue
        name = _text(_ci(c, "name")) or "?"
        for key in ("image", "command", "entryPoint"):
            value = _ci(c, key)
            for part in value if isinstance(value, list) else [value]:
                if isinstance(part, str) and part:
                    out.append((name, part))
    return out


@decision("ecs_task_suspicious_command")
def ecs_task_suspicious_command(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A task whose container reads the ECS credentials endpoint, or runs a cryptocurrency miner."""
    if event.event_name not in _ECS_CALLS:
        return Assessment(False, f"{event.event_name} defines or starts no task")
    found: list[str] = []
    for container, text in _container_strings(event):
        low = text.lower()
        if any(m in low for m in ECS_CREDENTIAL_MARKERS):
            found.append(f"container {container} reads the task credentials endpoint ({text[:120]})")
        elif any(m in low for m in MINER_MARKERS):
            found.append(f"container {container} runs a cryptocurrency miner ({text[:120]})")
    if not found:
        return Assessment(False, "no container reads the credentials endpoint or runs a miner")
    task = _text(_ci(event.request, "family")) or _text(_ci(event.request, "taskDefinition")) or "?"
    return Assessment(
        True,
        f"{event.event_name} {task} by {event.principal_arn or '?'}: " + "; ".join(sorted(set(found))[:5]),
        {"type": "AWS::ECS::TaskDefinition", "id": task},
        remediable=False,
    )


def _person(event: CloudTrailEvent, cfg: RuntimeConfig) -> bool:
    """Whether a person made the call, judged by identity alone (a user agent is anyone's to forge)."""
    blind = CloudTrailEvent({**event.envelope, "detail": {**event.detail, "userAgent": ""}})
    return classify(blind, cfg).kind == "human"


@decision("human_call")
def human_call(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A call in ``params.calls`` made by a person: automation does it routinely (image rotation), people rarely."""
    calls = rule.params.get("calls")
    if not isinstance(calls, list) or event.event_name not in calls:
        return Assessment(False, f"{event.event_name} is not one of this rule's calls")
    if not _person(event, cfg):
        return Assessment(
            False, f"{event.identity_type or 'unknown'} caller without a sign of a person: routine automation"
        )
    flagged = flagged_call(event, rule, cfg)
    return Assessment(True, flagged.reason, flagged.resource, remediable=False)


#: Accelerated-computing instance families (GPU, Inferentia, Trainium, FPGA, Gaudi, video transcoding).
GPU_TYPE = re.compile(r"^(?:p\d+|g\d+|gr\d+|inf\d+|trn\d+|dl\d+|f\d+|vt\d+)[a-z0-9-]*\.[a-z0-9-]+$", re.IGNORECASE)
#: Failures that mean "you may not launch this (here, now)": permission or quota, not a typo.
DENIED_LAUNCH = re.compile(
    r"^(?:Client\.)?(?:UnauthorizedOperation|AccessDenied|VcpuLimitExceeded|InstanceLimitExceeded)$"
)


@decision("gpu_launch_denied")
def gpu_launch_denied(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """RunInstances of an accelerated (GPU ...) instance type refused for permission or quota: mining attempts."""
    if event.event_name != "RunInstances":
        return Assessment(False, f"{event.event_name} launches no instance")
    if not event.failed:
        return Assessment(False, "the launch succeeded: GPU instances are routine where teams train models")
    if not DENIED_LAUNCH.match(event.error_code):
        return Assessment(False, f"failed with {event.error_code or '?'}, not a permission or quota refusal")
    itype = _text(_ci(event.request, "instanceType"))
    if not GPU_TYPE.match(itype):
        return Assessment(False, f"instance type {itype or '?'} is not an accelerated-computing type")
    return Assessment(
        True,
        f"RunInstances of {itype} refused ({event.error_code}) for {event.principal_arn or '?'} in {event.region or '?'}: "
        "attempts to launch GPU capacity the principal may not use are how stolen keys are tried for mining",
        {"type": "AWS::EC2::Instance", "id": itype},
        remediable=False,
    )


#: ``arn:aws:lambda:<region>:<account>:function:<name>[:qualifier]``: the function's own account.
LAMBDA_FUNCTION_ARN = re.compile(r"^arn:aws(?:-[a-z]+)*:lambda:[a-z0-9-]+:(\d{12}):function:", re.IGNORECASE)


@decision("lambda_invoked_from_external_account")
def lambda_invoked_from_external_account(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Invoke (data event) by a principal of an account outside the organization: a granted backdoor in use."""
    if not event.event_name.startswith("Invoke"):
        return Assessment(False, f"{event.event_name} invokes nothing")
    caller = event.identity_str("accountId")
    function = _text(_ci(event.request, "functionName"))
    m = LAMBDA_FUNCTION_ARN.match(function)
    owner = m.group(1) if m else event.account
    if not caller or caller == owner or not _foreign(caller, event, cfg):
        return Assessment(False, f"invoked from account {caller or '?'}: the function's own or the organization's")
    return Assessment(
        True,
        f"function {function or '?'} of account {owner} invoked by {event.principal_arn or caller} of account {caller}, "
        "outside the organization: a permission granted to that account is being used",
        {"type": "AWS::Lambda::Function", "id": function or "?"},
        remediable=False,
    )
