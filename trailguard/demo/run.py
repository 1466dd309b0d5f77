"""Run the end-to-end demo: synth -> emulator -> seed -> attack -> route -> engine -> verify.

Routing uses the central-bus rules read from the synthesized templates
(EventPattern and input transformer exactly as synthesized, see
:mod:`trailguard.demo.routing`). Each delivery is passed to the real engine
handler, in this process (the emulator cannot run Lambda without Docker), with
the environment variables of the synthesized engine function and boto3
pointed at the emulator.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trailguard_engine.catalog import load_catalog
from trailguard_engine.model import Rule
from trailguard_engine.runtime_config import RuntimeConfig

from trailguard.demo.routing import Router, eventbridge_event
from trailguard.demo.sandbox import REGION, Sandbox, client, drain_alerts, moto_server, scoped_env, seed
from trailguard.demo.scenario import Step, scenario
from trailguard.demo.templates import Assembly, AssemblyError, Resolver
from trailguard.exceptions import TrailguardError

ROOT = Path(__file__).resolve().parents[2]
BUS = "trailguard-central"

#: Which catalog rule must catch each risky step of the scenario.
EXPECTED_RULES: dict[str, str] = {
    "stop-trail": "cloudtrail-stop-logging",
    "open-ssh": "ec2-security-group-ingress-public",
    "delete-bpa": "s3-block-public-access-removed",
    "public-acl": "s3-bucket-acl-public",
    "public-snapshot": "ebs-snapshot-public",
    "delete-key": "kms-key-scheduled-for-deletion",
    "attach-admin": "iam-admin-policy-attached",
    "public-policy": "s3-bucket-policy-public",
    "stop-recorder": "config-recorder-stopped",
}


class DemoError(TrailguardError):
    """The demo cannot run (a missing piece, a failed synth)."""


@dataclass
class StepReport:
    """What happened to one change, and whether the live state agrees."""

    step: Step
    event_id: str = ""
    routed: list[str] = field(default_factory=list)
    #: Rules that alerted or remediated (routed rules whose decision skipped the event are not here).
    acted: list[str] = field(default_factory=list)
    #: Change-record rules (severity INFO) that kept a record of the change: never an alert or an action.
    recorded: list[str] = field(default_factory=list)
    verdict: str = "none"
    actions: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    expected: str = "none"  # remediate | alert | none
    verified: bool = False
    detail: str = ""


@dataclass
class DemoReport:
    steps: list[StepReport]
    timings: dict[str, float]
    engine_log: Path | None = None

    @property
    def ok(self) -> bool:
        return all(s.verified for s in self.steps)


# --------------------------------------------------------------------------- #
# synth
# --------------------------------------------------------------------------- #
def synth(outdir: Path, root: Path = ROOT) -> None:
    """``npx cdk synth --quiet`` in the project root, output in ``outdir``."""
    if not (root / "cdk.json").is_file():
        raise DemoError(f"{root}: no cdk.json (run the demo from a trailguard checkout)")
    env = os.environ | {
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "JSII_DEPRECATED": "quiet",
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    cmd = ["npx", "cdk", "synth", "--quiet", "--output", str(outdir)]
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    except FileNotFoundError as exc:
        raise DemoError("npx not found: install Node.js 20+ and run make setup") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise DemoError(f"cdk synth failed (exit {proc.returncode}):\n{tail}")


# --------------------------------------------------------------------------- #
# the engine, in process
# --------------------------------------------------------------------------- #
@dataclass
class LambdaContext:
    """The attributes of the Lambda context object the engine and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/trailguard-engine"
    log_stream_name: str = "demo"
    deadline: float = field(default_factory=lambda: time.monotonic() + 60)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _load_handler() -> tuple[Any, Callable[..., dict[str, Any]]]:
    try:
        module = importlib.import_module("trailguard_engine.handler")
    except ModuleNotFoundError as exc:
        raise DemoError(f"the engine handler is missing: {exc}") from exc
    fn = getattr(module, "handler", None)
    if not callable(fn):
        raise DemoError("trailguard_engine.handler has no handler function")
    return module, fn


@contextlib.contextmanager
def _engine_output(log_file: io.TextIOBase) -> Iterator[None]:
    """Send the engine's structured logs and EMF metrics (stdout in Lambda) to ``log_file``."""
    swapped: list[tuple[logging.StreamHandler[Any], Any]] = []
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for h in getattr(logger, "handlers", []):
            if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) in (sys.stdout, sys.__stdout__):
                swapped.append((h, h.setStream(log_file)))
    try:
        with contextlib.redirect_stdout(log_file), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Powertools: "No application metrics to publish"
            yield
    finally:
        for h, old in swapped:
            h.setStream(old)


# --------------------------------------------------------------------------- #
# wiring the emulator from the templates
# --------------------------------------------------------------------------- #
def _seeded_resolver(assembly: Assembly, stack: str, sb: Sandbox | None, account: str) -> Resolver:
    by_type: dict[str, tuple[str, dict[str, str]]] = {}
    if sb is not None:
        table_arn = f"arn:aws:dynamodb:{sb.region}:{sb.account}:table/{sb.table_name}"
        by_type = {
            "AWS::DynamoDB::Table": (sb.table_name, {"Arn": table_arn}),
            "AWS::SNS::Topic": (sb.topic_arn, {"TopicName": sb.topic_arn.rsplit(":", 1)[-1], "TopicArn": sb.topic_arn}),
            "AWS::SSM::Parameter": (sb.config_parameter, {}),
        }
    return Resolver(assembly=assembly, stack=stack, account=account, region=REGION, by_type=by_type)


# --------------------------------------------------------------------------- #
# the run
# --------------------------------------------------------------------------- #
def _expected(step: Step, rules: dict[str, Rule], cfg: RuntimeConfig) -> str:
    if step.rule is None:
        return "none"
    rule = rules.get(step.rule)
    if rule is None:
        raise DemoError(f"scenario step {step.key}: rule {step.rule!r} is not in the catalog")
    mode = cfg.mode_for(rule)
    if mode == "remediate" and rule.remediation is not None and not cfg.dry_run:
        return "remediate"
    return "alert" if mode != "off" else "none"


def run_demo(
    outdir: Path,
    *,
    do_synth: bool = True,
    log_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> DemoReport:
    """Run the whole demo; raise :class:`DemoError` when a piece is missing."""
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    if do_synth:
        say(f"synthesizing the app into {outdir} (npx cdk synth)")
        synth(outdir)
    timings["synth"] = time.monotonic() - t0
    try:
        assembly = Assembly.load(outdir)
        central = assembly.central_rules()
        engine_fn = assembly.engine_function()
        param = assembly.runtime_config_parameter()
    except AssemblyError as exc:
        raise DemoError(str(exc)) from exc
    _module, handler = _load_handler()
    catalog = {r.id: r for r in load_catalog()}
    steps = scenario(EXPECTED_RULES)
    missing = sorted({s.rule for s in steps if s.rule and s.rule not in catalog})
    if missing:
        raise DemoError(f"rules the scenario needs are not in the catalog: {', '.join(missing)}")
    deployed = {d.rule_id for d in central}
    undeployed = sorted({s.rule for s in steps if s.rule and s.rule not in deployed})
    if undeployed:
        raise DemoError(f"rules the scenario needs are not deployed on the central bus: {', '.join(undeployed)}")

    t1 = time.monotonic()
    say("starting the AWS emulator (moto) on 127.0.0.1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with moto_server() as _url:
        account = client("sts").get_caller_identity()["Account"]
        doc_text = _seeded_resolver(assembly, param.stack, None, account).resolve(param.properties.get("Value"))
        if not isinstance(doc_text, str):
            raise DemoError("the runtime-config parameter value is not a string")
        runtime_doc = json.loads(doc_text)
        cfg = RuntimeConfig.from_document(runtime_doc)
        permissions = sorted({p for r in catalog.values() if r.remediation for p in r.remediation.permissions})
        say("seeding the sandbox account")
        sb = seed(runtime_document=doc_text, remediation_permissions=permissions)
        timings["setup"] = time.monotonic() - t1

        t2 = time.monotonic()
        router = Router(central, account=sb.account, region=sb.region, bus=BUS)
        env_raw = (engine_fn.properties.get("Environment") or {}).get("Variables") or {}
        env = _seeded_resolver(assembly, engine_fn.stack, sb, sb.account).resolve(env_raw)
        env = {str(k): str(v) for k, v in env.items()}
        env |= {
            "AWS_LAMBDA_FUNCTION_NAME": "trailguard-engine",
            "AWS_REGION": sb.region,
            "AWS_DEFAULT_REGION": sb.region,
        }
        reports = [StepReport(step=s, expected=_expected(s, catalog, cfg)) for s in steps]
        log_dir = log_dir or outdir
        log_path = log_dir / "demo-engine.log"
        ctx_arn = f"arn:aws:lambda:{sb.region}:{sb.account}:function:trailguard-engine"
        with open(log_path, "w", encoding="utf-8") as log_file, scoped_env(dict(env.items())):
            reset = getattr(_module, "reset", None)
            if callable(reset):
                reset()
            for rep in reports:
                say(f"attack: {rep.step.title}")
                record = rep.step.act(sb)
                rep.event_id = record["eventID"]
                event = eventbridge_event(record, account=sb.account, region=sb.region)
                for delivery in router.deliver(event):
                    rep.routed.append(delivery.rule_id)
                    with _engine_output(log_file):
                        result = handler(delivery.payload, LambdaContext("trailguard-engine", ctx_arn))
                    _absorb(rep, result)
        alerts = drain_alerts(sb)
        say("verifying the live state of every resource")
        for rep in reports:
            _verify(rep, sb, alerts)
        timings["scenario"] = time.monotonic() - t2
    return DemoReport(reports, timings, log_path)


def _absorb(rep: StepReport, result: Any) -> None:
    if not isinstance(result, dict):
        rep.statuses.append(f"unexpected handler result {type(result).__name__}")
        return
    order = {"none": 0, "record": 1, "alert": 2, "remediate": 3}
    v = str(result.get("verdict", "none"))
    if order.get(v, 0) > order.get(rep.verdict, 0):
        rep.verdict = v
    if result.get("rejected"):
        rep.statuses.append(f"rejected: {result.get('reason')}")
    for f in result.get("findings") or []:
        if f.get("action"):
            rep.actions.append(str(f["action"]))
        if f.get("decision") != "skip":
            into = rep.recorded if f.get("status") == "recorded" else rep.acted
            if f.get("rule") and str(f["rule"]) not in into:
                into.append(str(f["rule"]))
            rep.statuses.append(f"{f.get('rule')}: {f.get('status')}")


def _verify(rep: StepReport, sb: Sandbox, alerts: list[dict[str, Any]]) -> None:
    step = rep.step
    alerted = [a for a in alerts if rep.event_id and rep.event_id in a["raw"]]
    if step.benign:
        ok, seen = step.is_in_place(sb)
        problems = []
        if not ok:
            problems.append("the benign change was undone")
        # A benign change is left alone and never alerted; a change-record rule may keep a record of it.
        if rep.actions or rep.verdict not in ("none", "record"):
            problems.append(f"engine verdict {rep.verdict}")
        if alerted:
            problems.append(f"{len(alerted)} alert(s) sent")
        rep.verified = not problems
        rep.detail = f"{seen}" + (f" ({'; '.join(problems)})" if problems else "")
        return
    problems = []
    if step.rule not in rep.routed:
        problems.append(f"not routed to {step.rule} (routed: {', '.join(rep.routed) or 'nothing'})")
    if rep.verdict != rep.expected:
        problems.append(f"verdict {rep.verdict}, expected {rep.expected}")
    if rep.expected == "remediate":
        ok, seen = step.is_undone(sb)
        if not ok:
            problems.append("still in place")
    else:
        ok, seen = step.is_in_place(sb)
        if not ok:
            problems.append("changed although the rule only alerts")
        if not alerted:
            problems.append("no alert published")
    rep.verified = not problems
    rep.detail = seen + (f" ({'; '.join(problems)})" if problems else "")
