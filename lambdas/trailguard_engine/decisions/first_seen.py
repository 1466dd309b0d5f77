"""First-seen ("new terms") rules: the first time an identity does something within a history window.

Each decision here says whether one event *qualifies* and names its terms in
``Assessment.params["first_seen_items"]``; the rule's ``params.first_seen`` (``{"history_days", "learning_days"}``)
makes the engine's first-seen gate (:mod:`trailguard_engine.window`) fire only when the principal key (the role for
every session of an assumed role, the IAM user, root) combined with one of those items was not seen for the rule in
the account within ``history_days``. No items: the term is the principal alone ("first time this identity does
this"). These rules alert only.

Terms are normalised so that another spelling of the same thing is the same term (a secret by name or by ARN, a
role name in any case, as IAM compares it), and never so that a *different* thing collapses onto a seen term: where
a spelling is ambiguous or unreadable, the term is unique to the event (it fires), never shared.

Excluded, whatever the history: AWS services acting with their own identity or a service-linked role, and (for
reads) values read by CloudFormation, Service Catalog or EMR on the caller's behalf (``invokedBy``, written by AWS:
the value goes to the service, which resolves templates and clusters with it).
"""

from __future__ import annotations

import json
import re
from typing import Any

from trailguard_engine.caller import classify, service_linked_session
from trailguard_engine.decisions import decision
from trailguard_engine.decisions.compute_gaps import _batch_commands, batch_command_override_by_human
from trailguard_engine.decisions.data_gaps import EXTERNAL_PROTOCOLS, sns_external_subscription
from trailguard_engine.decisions.execution import person
from trailguard_engine.events import CloudTrailEvent, as_list, text
from trailguard_engine.events import get_ci as ci_get
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import request_too_large
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import FIRST_SEEN_ITEMS_PARAM, TERM_MAX

#: Services that read a value for their own work on the caller's behalf (``invokedBy``, set by AWS): CloudFormation
#: and Service Catalog resolving dynamic references, EMR configuring a cluster, AWS-internal reads.
FORWARDING_READERS = frozenset(
    {
        "cloudformation.amazonaws.com",
        "servicecatalog.amazonaws.com",
        "elasticmapreduce.amazonaws.com",
        "AWS Internal",
    }
)
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):(\d{12}):secret:(.+)$")
#: The six random characters Secrets Manager appends to a secret's name in its full ARN.
_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[^/]*/)*([^/]+)$")
_AWS_MANAGED_POLICY = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/")
_ANY_ARN_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):")
_DENIED = re.compile(r"unauthori[sz]ed|accessdenied", re.IGNORECASE)
#: Request keys that name a role a SageMaker job, notebook or pipeline runs with.
_ROLE_KEYS = frozenset({"rolearn", "executionrolearn", "executionrole"})


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def _strings(value: Any) -> list[str]:
    return [v.strip() for v in as_list(value) if isinstance(v, str) and v.strip()]


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def unreadable(event: CloudTrailEvent, what: str) -> str:
    """A term unique to this event: what names the term cannot be read, so it must not look already seen."""
    return f"unreadable-{what}:{event.event_id or event.envelope_id or 'no-id'}"


def _qualifies(reason: str, terms: list[str] | None, resource: dict[str, str] | None = None) -> Assessment:
    params: dict[str, Any] = {}
    if terms is not None:
        # Past window.MAX_TERMS_PER_EVENT the gate checks the first ones and alerts anyway (a long list hides nothing).
        params[FIRST_SEEN_ITEMS_PARAM] = list(dict.fromkeys(t[:TERM_MAX] for t in terms if t))
    return Assessment(True, reason[:500], resource or {}, params, remediable=False)


def service_itself(event: CloudTrailEvent, cfg: RuntimeConfig) -> str | None:
    """Why the call is an AWS service's own (its service identity or a service-linked role), else None."""
    if event.identity_type == "AWSService":
        return f"made by the AWS service {event.invoked_by or 'itself'} with its own identity"
    if service_linked_session(event) or classify(event, cfg).kind == "service":
        return f"made by a service-linked role ({event.session_issuer_arn or event.principal_arn or '?'})"
    return None


def routine_read(event: CloudTrailEvent, cfg: RuntimeConfig) -> str | None:
    """Why a read is never interesting here (a service's own or one forwarded by a service), else None."""
    why = service_itself(event, cfg)
    if why:
        return why
    if event.invoked_by in FORWARDING_READERS:
        return f"read by {event.invoked_by} on the caller's behalf (the value went to the service)"
    return None


def _who(event: CloudTrailEvent) -> str:
    return event.session_issuer_arn or event.principal_arn or event.identity_str("accountId") or "?"


def secret_term(event: CloudTrailEvent, raw: str) -> str:
    """One secret, by name or ARN, as ``secret:<account>:<region>:<name>``.

    A full ARN ends with ``-`` and six random characters that are not part of the name: removed, so that the
    ARN and the name of one secret are one term. A name is the event's account and region (a name cannot
    reach another account). Names keep their case: two secrets may differ only in case.
    """
    m = _SECRET_ARN.match(raw)
    if m:
        region, account, name = m.groups()
        return f"secret:{account}:{region}:{_SECRET_SUFFIX.sub('', name)}"
    return f"secret:{event.account}:{event.region}:{raw}"


def role_term(value: Any) -> str | None:
    """A role ARN as ``role:<account>/<name>`` (names compare case-insensitively in IAM; the path is not part of
    the role's identity), or None when ``value`` is not a role ARN."""
    m = _ROLE_ARN.match(text(value))
    return f"role:{m.group(1)}/{m.group(2).lower()}" if m else None


def _role_arns(obj: Any, depth: int = 0) -> list[str]:
    """Every string under a roleArn / executionRoleArn / executionRole key (any case), at most 6 levels deep."""
    out: list[str] = []
    if depth > 6:
        return out
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str) and k.lower() in _ROLE_KEYS and isinstance(v, str):
                out.append(v)
            else:
                out += _role_arns(v, depth + 1)
    elif isinstance(obj, list):
        for v in obj[:50]:
            out += _role_arns(v, depth + 1)
    return out


# --------------------------------------------------------------------------- #
# Credential reads
# --------------------------------------------------------------------------- #
@decision("secret_first_read")
def secret_first_read(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """GetSecretValue / BatchGetSecretValue: each secret read is a term (by name or ARN alike)."""
    name = event.event_name
    if name not in ("GetSecretValue", "BatchGetSecretValue"):
        return Assessment(False, f"{name} does not return secret values")
    why = routine_read(event, cfg)
    if why:
        return Assessment(False, why)
    if name == "GetSecretValue":
        ids = _strings(ci_get(event.request, "secretId"))
        terms = [secret_term(event, s) for s in ids] or [unreadable(event, "secret")]
        shown = ids[0][:200] if ids else "(secret not named in the record)"
        return _qualifies(
            f"secret value of {shown} read by {_who(event)}",
            terms,
            {"type": "AWS::SecretsManager::Secret", "id": shown},
        )
    ids = _strings(ci_get(event.request, "secretIdList"))
    if ids:
        return _qualifies(
            f"batch read of {len(ids)} secret value(s) ({', '.join(i[:80] for i in ids[:3])}) by {_who(event)}",
            [secret_term(event, s) for s in ids],
            {"type": "AWS::SecretsManager::Secret", "id": ids[0][:200]},
        )
    filters = ci_get(event.request, "filters")
    if filters in (None, "", []):
        return _qualifies(f"batch read of secret values by {_who(event)}", [unreadable(event, "secrets")])
    key = json.dumps(filters, sort_keys=True, default=str)[:300]
    return _qualifies(f"batch read of the secret values selected by {key[:200]} by {_who(event)}", [f"filters:{key}"])


@decision("ssm_decrypted_first_read")
def ssm_decrypted_first_read(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A parameter read with ``withDecryption`` true (SecureString values in clear); the term is the principal."""
    name = event.event_name
    if name not in ("GetParameter", "GetParameters", "GetParametersByPath", "GetParameterHistory"):
        return Assessment(False, f"{name} does not return parameter values")
    if not _true(ci_get(event.request, "withDecryption")):
        return Assessment(False, "read without decryption: SecureString values stay encrypted")
    why = routine_read(event, cfg)
    if why:
        return Assessment(False, why)
    names = _strings(ci_get(event.request, "name")) + _strings(ci_get(event.request, "names"))
    path = text(ci_get(event.request, "path"))
    what = f"parameters under {path[:200]}" if name == "GetParametersByPath" else ", ".join(n[:100] for n in names[:3])
    return _qualifies(
        f"decrypted read of {what or '(parameter not named in the record)'} by {_who(event)}",
        None,
        {"type": "AWS::SSM::Parameter", "id": (names[0] if names else path)[:200]},
    )


@decision("ec2_password_data_denied_first")
def ec2_password_data_denied_first(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """GetPasswordData refused (UnauthorizedOperation / AccessDenied): a principal trying what it may not do."""
    if event.event_name != "GetPasswordData":
        return Assessment(False, f"{event.event_name} returns no password data")
    if not event.failed:
        return Assessment(False, "the call succeeded: the principal is allowed to read password data")
    code = event.error_code
    if not _DENIED.search(code):
        return Assessment(False, f"failed with {code[:64] or 'a malformed errorCode'}, not a refusal")
    why = service_itself(event, cfg)
    if why:
        return Assessment(False, why)
    instance = _strings(ci_get(event.request, "instanceId"))
    shown = instance[0][:64] if instance else "?"
    return _qualifies(
        f"Windows password data of {shown} requested and refused ({code[:64]}) for {_who(event)}",
        None,
        {"type": "AWS::EC2::Instance", "id": shown},
    )


@decision("ec2_userdata_first_read")
def ec2_userdata_first_read(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """DescribeInstanceAttribute for ``userData``; the term is the principal (instances come and go)."""
    if event.event_name != "DescribeInstanceAttribute":
        return Assessment(False, f"{event.event_name} reads no instance attribute")
    attribute = text(ci_get(event.request, "attribute"))
    if attribute.lower() != "userdata":
        return Assessment(False, f"instance attribute {attribute[:64]!r} is not user data")
    why = routine_read(event, cfg)
    if why:
        return Assessment(False, why)
    instance = _strings(ci_get(event.request, "instanceId"))
    shown = instance[0][:64] if instance else "?"
    return _qualifies(f"user data of {shown} read by {_who(event)}", None, {"type": "AWS::EC2::Instance", "id": shown})


# --------------------------------------------------------------------------- #
# Privilege changes and execution
# --------------------------------------------------------------------------- #
@decision("iam_role_change_first_seen")
def iam_role_change_first_seen(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """AttachRolePolicy of a customer-managed policy (term ``attach:<role>``) or UpdateAssumeRolePolicy (term
    ``trust:<role>``). Role names compare case-insensitively, as IAM does. Changes CloudFormation makes for a
    principal count as one term (``<kind>:via-cloudformation``): stacks create and wire new roles routinely."""
    name = event.event_name
    if name == "AttachRolePolicy":
        kind = "attach"
        policy = text(ci_get(event.request, "policyArn"))
        if _AWS_MANAGED_POLICY.match(policy):
            return Assessment(False, f"AWS managed policy {policy[:120]} (not a customer-managed one)")
        what = f"customer-managed policy {policy[:200] or '?'} attached to role"
    elif name == "UpdateAssumeRolePolicy":
        kind = "trust"
        what = "trust policy replaced on role"
    else:
        return Assessment(False, f"{name} changes no role's permissions or trust")
    why = service_itself(event, cfg)
    if why:
        return Assessment(False, why)
    role = text(ci_get(event.request, "roleName"))
    if event.invoked_by == "cloudformation.amazonaws.com":
        term = f"{kind}:via-cloudformation"
    elif role and not request_too_large(event.request):
        term = f"{kind}:{role.lower()}"
    else:
        term = unreadable(event, "role")
    return _qualifies(
        f"{what} {role[:128] or '(not named in the record)'} by {_who(event)}",
        [term],
        {"type": "AWS::IAM::Role", "id": role[:128]},
    )


SAGEMAKER_CALLS = frozenset(
    {
        "CreateNotebookInstance",
        "CreateTrainingJob",
        "CreateProcessingJob",
        "CreateAutoMLJob",
        "CreateAutoMLJobV2",
        "CreateHyperParameterTuningJob",
        "CreatePipeline",
    }
)


@decision("sagemaker_role_first_passed")
def sagemaker_role_first_passed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A SageMaker notebook, job or pipeline created to run with a role: each role passed is a term."""
    if event.event_name not in SAGEMAKER_CALLS:
        return Assessment(False, f"{event.event_name} passes no execution role")
    why = service_itself(event, cfg)
    if why:
        return Assessment(False, why)
    arns = list(dict.fromkeys(_role_arns(event.request)))
    terms = [role_term(a) or unreadable(event, "role") for a in arns] or [unreadable(event, "role")]
    shown = ", ".join(a[:160] for a in arns[:3]) or "(role not named in the record)"
    return _qualifies(
        f"{event.event_name} runs with role {shown}, passed by {_who(event)}",
        terms,
        {"type": "AWS::IAM::Role", "id": arns[0][:200] if arns else ""},
    )


@decision("batch_override_first_seen")
def batch_override_first_seen(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """SubmitJob overriding the container command by a workload or pipeline identity; the term is the principal.

    A person's overrides are left to batch-job-command-override-by-human, which alerts on every one of them."""
    if event.event_name != "SubmitJob":
        return Assessment(False, f"{event.event_name} submits no job")
    job = text(ci_get(event.request, "jobName")) or "?"
    commands = _batch_commands(event.request)
    if not commands:
        return Assessment(False, f"SubmitJob {job[:128]}: the job definition's own command runs")
    why = service_itself(event, cfg)
    if why:
        return Assessment(False, why)
    caller = person(event, cfg)
    if caller.kind == "human" and batch_command_override_by_human(event, rule, cfg).risky:
        return Assessment(False, f"a person's override ({caller.why}): batch-job-command-override-by-human alerts")
    shown = " ".join(str(x) for x in as_list(commands[0]))[:200]
    definition = text(ci_get(event.request, "jobDefinition"))
    return _qualifies(
        f"SubmitJob {job[:128]} ({definition[:128] or '?'}) with command override {shown!r} by {_who(event)}",
        None,
        {"type": "AWS::Batch::JobDefinition", "id": definition[:200] or job[:128]},
    )


# --------------------------------------------------------------------------- #
# Exfiltration and anonymous access
# --------------------------------------------------------------------------- #
@decision("sns_subscription_first_protocol")
def sns_subscription_first_protocol(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Subscribe with an endpoint outside AWS (email, email-json, http, https, sms) or in another account; the term
    is the protocol. Subscriptions sns-external-subscription already alerts on (a person's) are left to it."""
    if event.event_name != "Subscribe":
        return Assessment(False, f"{event.event_name} subscribes nothing")
    protocol = text(ci_get(event.request, "protocol")).lower()
    endpoint = text(ci_get(event.request, "endpoint"))
    topic = text(ci_get(event.request, "topicArn"))
    m = _ANY_ARN_ACCOUNT.match(endpoint)
    other_account = m.group(1) if m and m.group(1) != event.account else ""
    if protocol and protocol not in EXTERNAL_PROTOCOLS and not other_account:
        return Assessment(False, f"{protocol[:32]} endpoint in this account: messages stay inside it")
    why = service_itself(event, cfg)
    if why:
        return Assessment(False, why)
    if protocol in EXTERNAL_PROTOCOLS and sns_external_subscription(event, rule, cfg).risky:
        return Assessment(False, f"{protocol} subscription by a person: sns-external-subscription alerts")
    where = f"account {other_account}" if other_account else "outside AWS"
    return _qualifies(
        f"{protocol or '?'} endpoint {endpoint[:200] or '?'} ({where}) subscribed to {topic[:200] or '?'} "
        f"by {_who(event)}",
        [f"protocol:{protocol}" if protocol else unreadable(event, "protocol")],
        {"type": "AWS::SNS::Topic", "id": topic[:300]},
    )


def _resource_arns(event: CloudTrailEvent, marker: str) -> list[str]:
    out = []
    for r in as_list(event.detail.get("resources")):
        arn = ci_get(r, "ARN")
        if isinstance(arn, str) and marker in arn:
            out.append(arn.strip())
    return out


@decision("cognito_unauth_credentials_first_seen")
def cognito_unauth_credentials_first_seen(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """GetCredentialsForIdentity without a login token: AWS credentials for a guest identity. The term is the
    identity pool (every app user gets a new identity id; the pool is what is exposed)."""
    if event.event_name != "GetCredentialsForIdentity":
        return Assessment(False, f"{event.event_name} issues no credentials")
    logins = ci_get(event.request, "logins")
    if logins not in (None, "", {}, []):
        return Assessment(False, "a login token was presented: an authenticated identity")
    if event.identity_type == "AWSService":
        return Assessment(False, f"made by the AWS service {event.invoked_by or 'itself'}")
    pools = _resource_arns(event, ":identitypool/")
    identity = text(ci_get(event.request, "identityId"))
    return _qualifies(
        f"AWS credentials issued to unauthenticated identity {identity[:100] or '?'} of pool "
        f"{pools[0][:200] if pools else '(not named in the record)'} from {event.source_ip or '?'}",
        [f"pool:{p.lower()}" for p in pools] or ["pool:unnamed"],
        {"type": "AWS::Cognito::IdentityPool", "id": pools[0][:300] if pools else ""},
    )


S3_READS = frozenset({"GetObject", "HeadObject", "ListObjects", "ListObjectsV2", "ListObjectVersions"})
S3_WRITES = frozenset({"PutObject", "DeleteObject", "DeleteObjects", "CopyObject"})


@decision("s3_anonymous_access_first_seen")
def s3_anonymous_access_first_seen(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """An S3 object read, listing or write by an anonymous caller (no credentials). The term is the kind of access
    and the bucket: a bucket public by design is learned, a bucket newly readable (or writable) by anyone fires."""
    name = event.event_name
    if name in S3_READS:
        kind = "read"
    elif name in S3_WRITES:
        kind = "write"
    else:
        return Assessment(False, f"{name} is not an object read, listing or write")
    if event.identity_str("accountId").strip().lower() != "anonymous":
        return Assessment(False, "the caller signed the request (not anonymous)")
    bucket = text(ci_get(event.request, "bucketName"))
    if not bucket:
        arns = _resource_arns(event, "arn:aws")
        bucket = next((a.split(":::", 1)[1].split("/", 1)[0] for a in arns if ":::" in a), "")
    key = text(ci_get(event.request, "key"))
    return _qualifies(
        f"anonymous {name} on bucket {bucket[:100] or '?'}{' key ' + key[:200] if key else ''} "
        f"from {event.source_ip or '?'}",
        [f"{kind}:{bucket}" if bucket else unreadable(event, "bucket")],
        {"type": "AWS::S3::Bucket", "id": bucket[:100]},
    )
