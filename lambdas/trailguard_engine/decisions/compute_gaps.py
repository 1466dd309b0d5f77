"""Decisions for compute and execution paths beyond EC2 and SSM sessions: SageMaker, Glue, Batch, SSM documents, Lambda.

What is judged here, and why (also in the rules' runbooks):

* SageMaker lifecycle configurations run as root on a notebook instance, with its execution role, every time it
  starts. Attaching one to an *existing* notebook (``UpdateNotebookInstance`` with a lifecycle configuration
  name) is the persistence/execution technique itself, whatever the script says: it is rare and always
  alerted. A configuration created or rewritten on its own runs nothing until attached or until an attached
  notebook restarts, so it fires only when its script (base64 in ``onCreate``/``onStart``) decodes to a
  reverse shell, a download-and-run, a metadata-credential read or a decode-and-run.
* Glue development endpoints accept SSH public keys: a key added at creation or later is a shell with the
  endpoint's role. Every key added is alerted (endpoints are rare and deprecated).
* Batch ``SubmitJob`` with a container command override runs an arbitrary command with the job role; pipelines
  do it routinely, people rarely, so only people fire.
* SSM ``CreateDocument`` of a Command document whose steps run shell or PowerShell scripts, by a person: the
  document is then run anywhere by name. The content is read when CloudTrail logged it; a Command document
  whose content was not logged (or omitted as too large) is alerted as uninspectable.
* Lambda layers are code that runs in the function: a layer ARN of an account that is not ours (the function's
  account, the organization, trusted accounts, or ``params.trusted_layer_accounts`` for vendors) puts someone
  else's code in the function. Event source mappings reading from another account's queue or stream, or from a
  self-managed Kafka cluster, let whoever controls that source invoke the function with their data.

Account membership comes from :func:`trailguard_engine.policy.known_accounts`; when the organization list is
unknown an organization account looks external (an alert, never a silence).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from trailguard_engine.decisions import decision
from trailguard_engine.decisions.execution import person
from trailguard_engine.events import CloudTrailEvent, as_list
from trailguard_engine.events import get_ci as ci_get
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import known_accounts, request_too_large
from trailguard_engine.runtime_config import RuntimeConfig

#: Script content that gives an outsider a shell or runs fetched code (matched on the case-folded script).
SUSPICIOUS_SCRIPT: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("reverse shell via /dev/tcp or /dev/udp", re.compile(r"/dev/(?:tcp|udp)/")),
    (
        "netcat/ncat/socat with a program attached",
        re.compile(r"\b(?:nc|ncat|netcat)\b[^\n|;&]*\s-[a-z]*[ec]\b|\bsocat\b"),
    ),
    ("interactive shell wired to a network pipe", re.compile(r"\bmkfifo\b|\b(?:bash|sh)\s+-i\b")),
    (
        "script language opening a socket",
        re.compile(r"\b(?:python[23]?|perl|ruby|php)\b[^\n]*\bsocket\b"),
    ),
    (
        "download piped into an interpreter",
        re.compile(r"\b(?:curl|wget)\b[^\n]*\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b|\b(?:curl|wget)\b[^\n]*\|\s*python"),
    ),
    (
        "download made executable and run",
        re.compile(r"\b(?:curl|wget)\b.*\bchmod\s+(?:[ugoa]*\+[rw]*x|[0-7]*[1357][0-7]*\b)", re.DOTALL),
    ),
    (
        "download run through command substitution",
        re.compile(
            r"(?:\beval\b|\b(?:ba|z|da)?sh\s+-c|\bsource\b|^\s*\.)\s*[\"']?\s*(?:\$\(|`|<\()\s*(?:curl|wget)\b", re.M
        ),
    ),
    ("decoded payload run by a shell", re.compile(r"base64\s+(?:-d|--decode)[^\n]*\|\s*(?:ba|z)?sh\b")),
    (
        "instance metadata credential read",
        re.compile(r"169\.254\.169\.254|fd00:ec2::254|169\.254\.170\.2|\binstance-data\b|/latest/api/token"),
    ),
    (
        "socket one-liner (perl, ruby, php)",
        re.compile(r"\bio::socket\b|-rsocket\b|\btcpsocket\b|\bfsockopen\b"),
    ),
    ("pseudo-terminal spawned for a remote shell", re.compile(r"\bpty\.spawn\b")),
    (
        "cryptocurrency miner",
        re.compile(r"\bxmrig\b|\bminerd\b|\bcpuminer\b|\bnbminer\b|\bt-rex\b|stratum\+(?:tcp|ssl|tls)://"),
    ),
    ("SSH key planted (authorized_keys)", re.compile(r"\bauthorized_keys2?\b")),
)
_LAYER_ARN = re.compile(r"^arn:aws[\w-]*:lambda:[\w-]+:(?P<acct>\d{12}):layer:", re.IGNORECASE)
_ARN_ACCOUNT = re.compile(r"^arn:aws[\w-]*:[\w-]+:[\w-]*:(?P<acct>\d{12})?:", re.IGNORECASE)
#: SSM plugins that run arbitrary commands on the instance (schema 2.x ``action`` values, schema 1.2 keys).
_SHELL_STEPS = ("aws:runshellscript", "aws:runpowershellscript", "aws:rundockeraction")
_LIFECYCLE_CALLS = ("CreateNotebookInstanceLifecycleConfig", "UpdateNotebookInstanceLifecycleConfig")


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def decode_script(content: str) -> str:
    """A lifecycle script as text: base64 as the API requires, else the string itself (never raises)."""
    raw = re.sub(r"\s+", "", content)
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return content


def script_findings(script: str) -> list[str]:
    """Why ``script`` looks like a foothold: reverse shells, download-and-run, credential reads ([] when none)."""
    folded = script.casefold()
    return [why for why, pat in SUSPICIOUS_SCRIPT if pat.search(folded)]


def _lifecycle_scripts(request: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for hook in ("onCreate", "onStart"):
        for item in as_list(ci_get(request, hook)):
            content = _text(ci_get(item, "content")) if isinstance(item, Mapping) else _text(item)
            if content:
                out.append(decode_script(content))
    return out


@decision("sagemaker_lifecycle_config")
def sagemaker_lifecycle_config(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A lifecycle configuration attached to an existing notebook, or a lifecycle script that opens a foothold."""
    req = event.request
    name = event.event_name
    if name == "UpdateNotebookInstance":
        notebook = _text(ci_get(req, "notebookInstanceName")) or "?"
        config = _text(ci_get(req, "lifecycleConfigName"))
        if not config:
            return Assessment(False, f"UpdateNotebookInstance of {notebook} attaches no lifecycle configuration")
        return Assessment(
            True,
            f"lifecycle configuration {config} attached to existing notebook {notebook} by {event.principal_arn or '?'}: "
            "its scripts run as root with the notebook's role at every start",
            {"type": "AWS::SageMaker::NotebookInstance", "id": notebook},
            remediable=False,
        )
    if name not in _LIFECYCLE_CALLS:
        return Assessment(False, f"{name} writes no lifecycle configuration")
    config = _text(ci_get(req, "notebookInstanceLifecycleConfigName")) or "?"
    scripts = _lifecycle_scripts(req)
    findings = list(dict.fromkeys(f for s in scripts for f in script_findings(s)))
    if not findings:
        what = "no script content logged" if not scripts else "no reverse shell, download-and-run or credential read"
        return Assessment(False, f"{name} {config}: {what}")
    return Assessment(
        True,
        f"{name} {config} by {event.principal_arn or '?'}: lifecycle script with {'; '.join(findings)}",
        {"type": "AWS::SageMaker::NotebookInstanceLifecycleConfig", "id": config},
        remediable=False,
    )


def _glue_keys(request: Mapping[str, Any]) -> list[str]:
    keys = [_text(ci_get(request, "publicKey"))]
    for k in ("publicKeys", "addPublicKeys"):
        keys += [_text(v) for v in as_list(ci_get(request, k))]
    return [k for k in keys if k]


@decision("glue_dev_endpoint_key")
def glue_dev_endpoint_key(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """An SSH public key put on a Glue development endpoint (at creation or added later)."""
    if event.event_name not in ("CreateDevEndpoint", "UpdateDevEndpoint"):
        return Assessment(False, f"{event.event_name} adds no key to a development endpoint")
    endpoint = _text(ci_get(event.request, "endpointName")) or "?"
    keys = _glue_keys(event.request)
    if not keys:
        return Assessment(False, f"{event.event_name} {endpoint}: no public key added")
    return Assessment(
        True,
        f"{event.event_name} {endpoint}: {len(keys)} SSH public key(s) added by {event.principal_arn or '?'}: "
        "the key holder gets a shell with the endpoint's role",
        {"type": "AWS::Glue::DevEndpoint", "id": endpoint},
        remediable=False,
    )


def _batch_commands(request: Mapping[str, Any]) -> list[Any]:
    """Command overrides anywhere a SubmitJob can carry them (container, multi-node, ECS and EKS properties)."""
    found: list[Any] = []
    found.append(ci_get(ci_get(request, "containerOverrides"), "command"))
    for node in as_list(ci_get(ci_get(request, "nodeOverrides"), "nodePropertyOverrides")):
        found.append(ci_get(ci_get(node, "containerOverrides"), "command"))
    for task in as_list(ci_get(ci_get(request, "ecsPropertiesOverride"), "taskProperties")):
        for c in as_list(ci_get(task, "containers")):
            found.append(ci_get(c, "command"))
    pod = ci_get(ci_get(request, "eksPropertiesOverride"), "podProperties")
    for c in as_list(ci_get(pod, "containers")) + as_list(ci_get(pod, "initContainers")):
        found.append(ci_get(c, "command"))
        found.append(ci_get(c, "args"))
    return [c for c in found if c not in (None, "", [])]


@decision("batch_command_override_by_human")
def batch_command_override_by_human(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Batch SubmitJob overriding the container command, by a person (pipelines do it routinely)."""
    if event.event_name != "SubmitJob":
        return Assessment(False, f"{event.event_name} submits no job")
    commands = _batch_commands(event.request)
    job = _text(ci_get(event.request, "jobName")) or "?"
    if not commands:
        return Assessment(False, f"SubmitJob {job}: the job definition's own command runs")
    caller = person(event, cfg)
    if caller.kind != "human":
        return Assessment(False, f"SubmitJob {job} with a command override: {caller.describe()}")
    shown = " ".join(str(x) for x in as_list(commands[0]))[:200]
    return Assessment(
        True,
        f"SubmitJob {job} ({_text(ci_get(event.request, 'jobDefinition')) or '?'}) with command override {shown!r} "
        f"by {event.principal_arn or '?'} ({caller.why}): it runs with the job role",
        {"type": "AWS::Batch::JobDefinition", "id": _text(ci_get(event.request, "jobDefinition")) or job},
        remediable=False,
    )


def _strings(obj: Any) -> Iterable[str]:
    """Every key and string value in a parsed JSON document (duplicate keys included: see :func:`shell_steps`)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, tuple) and len(item) == 2:
                yield from _strings(item[0])
                yield from _strings(item[1])
            else:
                yield from _strings(item)


def shell_steps(content: str) -> tuple[list[str], bool]:
    """(script-running plugins named in an SSM document, whether the content could be read with confidence).

    JSON is parsed (escapes such as ``\\u0053`` decoded, every duplicate key kept); the runtime has no YAML
    parser, so YAML is searched as text, and YAML that uses escapes (a backslash) or tags (``!!``) where no
    plugin name is visible counts as unreadable: an alert, not a silence.
    """
    try:
        parsed = json.loads(content, object_pairs_hook=list)
    except ValueError:
        folded = content.casefold()
        found = [s for s in _SHELL_STEPS if s in folded]
        return found, bool(found) or ("\\" not in content and "!!" not in content)
    except RecursionError:
        return [], False
    try:
        names = {v.strip().casefold() for v in _strings(parsed)}
    except RecursionError:
        return [], False
    return [s for s in _SHELL_STEPS if s in names], True


@decision("ssm_shell_document_by_human")
def ssm_shell_document_by_human(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """SSM CreateDocument of a Command document with shell or PowerShell steps, by a person."""
    if event.event_name != "CreateDocument":
        return Assessment(False, f"{event.event_name} creates no document")
    req = event.request
    doc = _text(ci_get(req, "name")) or "?"
    # The API's default type is Command: a request without documentType creates one.
    dtype = _text(ci_get(req, "documentType")) or "Command"
    if dtype.casefold() != "command":
        return Assessment(False, f"document {doc} is of type {dtype}, not Command")
    caller = person(event, cfg)
    if caller.kind != "human":
        return Assessment(False, f"Command document {doc}: {caller.describe()}")
    content = ci_get(req, "content")
    if request_too_large(req) or not isinstance(content, str) or not content.strip():
        why = "its content was not logged, so it cannot be inspected"
    else:
        steps, readable = shell_steps(content)
        if not steps and readable:
            return Assessment(False, f"Command document {doc} has no shell or PowerShell step")
        why = f"steps {', '.join(steps)}" if steps else "its YAML uses escapes or tags this check cannot read"
    return Assessment(
        True,
        f"Command document {doc} created by {event.principal_arn or '?'} ({caller.why}): {why}; it can then be "
        "run on any managed instance by name",
        {"type": "AWS::SSM::Document", "id": doc},
        remediable=False,
    )


def _ours(event: CloudTrailEvent, cfg: RuntimeConfig, extra: Iterable[Any] = ()) -> frozenset[str]:
    own = {event.account} if event.account else set()
    return known_accounts(cfg) | own | {a for a in extra if isinstance(a, str)}


@decision("lambda_external_layer")
def lambda_external_layer(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A function given a layer published by an account that is not ours."""
    name = event.event_name
    if not name.startswith(("CreateFunction", "UpdateFunctionConfiguration")):
        return Assessment(False, f"{name} sets no layers")
    layers = [_text(x) for x in as_list(ci_get(event.request, "layers"))]
    ours = _ours(event, cfg, as_list(rule.params.get("trusted_layer_accounts")))
    outside = []
    for arn in layers:
        m = _LAYER_ARN.match(arn)
        if m is not None and m.group("acct") not in ours:
            outside.append(arn)
    fn = _text(ci_get(event.request, "functionName")) or "?"
    if not outside:
        return Assessment(False, f"{name} {fn}: no layer from an account outside ours ({len(layers)} layer(s))")
    return Assessment(
        True,
        f"{name} {fn}: layer(s) {', '.join(outside)} from an account outside the organization and the trusted list, "
        f"added by {event.principal_arn or '?'}: that account's code runs inside the function with its role",
        {"type": "AWS::Lambda::Function", "id": fn},
        remediable=False,
    )


@decision("lambda_event_source_external")
def lambda_event_source_external(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """An event source mapping reading from another account's queue or stream, or a self-managed Kafka cluster."""
    if not event.event_name.startswith("CreateEventSourceMapping"):
        return Assessment(False, f"{event.event_name} creates no event source mapping")
    req = event.request
    fn = _text(ci_get(req, "functionName")) or "?"
    source = _text(ci_get(req, "eventSourceArn"))
    if source:
        m = _ARN_ACCOUNT.match(source)
        acct = m.group("acct") if m is not None else None
        if not acct or acct in _ours(event, cfg):
            return Assessment(False, f"event source {source} of {fn} is in an account of ours")
        why = f"{source} belongs to account {acct}, outside the organization and the trusted list"
    else:
        brokers = ci_get(ci_get(ci_get(req, "selfManagedEventSource"), "endpoints"), "KAFKA_BOOTSTRAP_SERVERS")
        servers = [_text(b) for b in as_list(brokers) if _text(b)]
        if not servers:
            return Assessment(False, f"event source mapping of {fn} names no source")
        why = f"self-managed Kafka brokers {', '.join(servers[:3])} outside AWS's account boundary"
    return Assessment(
        True,
        f"event source mapping for {fn} created by {event.principal_arn or '?'}: {why}; whoever writes to it invokes "
        "the function with their data",
        {"type": "AWS::Lambda::Function", "id": fn},
        remediable=False,
    )
