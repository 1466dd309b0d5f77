"""Run the end-to-end demo: synth -> emulator -> cdk deploy -> inspect -> attack -> route -> engine -> verify.

Everything trailguard owns comes from a real ``cdk bootstrap`` + ``cdk deploy`` (the CDK CLI) into the
emulator (:mod:`trailguard.emulator`); only the attack targets are seeded. The deployment is inspected
resource by resource before anything else runs. Events are routed through the central-bus rules
**read back from the emulator** (:mod:`trailguard.emulator.rules`), and each delivery goes to the
engine **from its deployed code and layer zips**, with the deployed function's environment, in a
child interpreter (:mod:`trailguard.emulator.lambda_runner`; the emulator cannot run Lambda without Docker).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trailguard_engine.catalog import load_catalog
from trailguard_engine.model import Rule
from trailguard_engine.runtime_config import RuntimeConfig

from trailguard.demo.routing import Router, eventbridge_event
from trailguard.demo.sandbox import (
    REGION,
    Sandbox,
    client,
    drain_alerts,
    moto_server,
    sandbox,
    seed_targets,
    subscribe_inbox,
)
from trailguard.demo.scenario import Step, scenario
from trailguard.demo.templates import RUNTIME_CONFIG_PARAMETER, Assembly, AssemblyError
from trailguard.emulator import deploy as emu_deploy
from trailguard.emulator.inspect import TRAIL_NAME, Check, Inventory, inventory, service_checks
from trailguard.emulator.lambda_runner import EngineProcess, LambdaRunnerError, fetch_deployed_function
from trailguard.emulator.rules import DeployedRulesError
from trailguard.emulator.rules import deployed_rules as emulator_rules
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
    #: What each remediation changed, in the engine's words ("security group sg-1: revoked 1 public rule(s); ...").
    changed: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    expected: str = "none"  # remediate | alert | none
    verified: bool = False
    detail: str = ""


@dataclass
class DemoReport:
    steps: list[StepReport]
    timings: dict[str, float]
    engine_log: Path | None = None
    deployment: Deployment | None = None
    #: Where the engine's code came from in the child (the deployed zip), and the layer's binary packages
    #: that were taken from this machine (same version) because they are built for arm64.
    engine_code: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        deployed = self.deployment is None or self.deployment.ok
        return deployed and bool(self.steps) and all(s.verified for s in self.steps)


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


@dataclass
class Deployment:
    """What ``cdk deploy`` put in the emulator, as the emulator reports it."""

    inventory: Inventory
    checks: list[Check]
    targets: list[str]
    dry_run_deployed: bool

    @property
    def ok(self) -> bool:
        return not self.inventory.missing and all(c.ok for c in self.checks)


def _stack_of(assembly: Assembly, logical_id: str) -> str:
    for stack, tpl in assembly.templates.items():
        if logical_id in (tpl.get("Resources") or {}):
            return stack
    raise DemoError(f"no template defines {logical_id}")


def _go_live(parameter: str, region: str) -> dict[str, Any]:
    """The operator's switch from the safe first deploy to remediation (docs/deploy.md): dry_run false in SSM."""
    ssm = client("ssm", region=region)
    doc: dict[str, Any] = json.loads(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
    doc["dry_run"] = False
    ssm.put_parameter(Name=parameter, Value=json.dumps(doc), Type="String", Overwrite=True)
    return doc


def _physical(stack: str, logical_id: str, region: str) -> str:
    cfn = client("cloudformation", region=region)
    return str(
        cfn.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)["StackResourceDetail"][
            "PhysicalResourceId"
        ]
    )


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
        engine_fn = assembly.engine_function()
        assembly.runtime_config_parameter()
    except AssemblyError as exc:
        raise DemoError(str(exc)) from exc
    _check_demo_assembly(outdir)
    catalog = {r.id: r for r in load_catalog()}
    steps = scenario(EXPECTED_RULES)
    missing = sorted({s.rule for s in steps if s.rule and s.rule not in catalog})
    if missing:
        raise DemoError(f"rules the scenario needs are not in the catalog: {', '.join(missing)}")
    log_dir = log_dir or outdir
    log_path = log_dir / "demo-engine.log"

    t1 = time.monotonic()
    say("starting the AWS emulator (moto, with trailguard's fixes) on localhost")
    with moto_server() as endpoint, tempfile.TemporaryDirectory(prefix="trailguard-demo-") as work:
        account = client("sts").get_caller_identity()["Account"]
        try:
            say("cdk bootstrap: every environment of the assembly")
            targets = emu_deploy.bootstrap(outdir, account, endpoint.env)
            timings["bootstrap"] = time.monotonic() - t1
            t_dep = time.monotonic()
            say("cdk deploy --all (the real CDK CLI, from the synthesized assembly)")
            emu_deploy.deploy(outdir, endpoint.env)
            timings["deploy"] = time.monotonic() - t_dep
        except emu_deploy.DeployError as exc:
            raise DemoError(str(exc)) from exc

        say("inspecting the deployment: every template resource, then the services")
        inv = inventory(outdir, account, lambda svc, region=REGION: client(svc, region=region))
        checks = service_checks(lambda svc, region=REGION: client(svc, region=region))
        param_doc = json.loads(client("ssm").get_parameter(Name=RUNTIME_CONFIG_PARAMETER)["Parameter"]["Value"])
        deployment = Deployment(inv, checks, targets, bool(param_doc.get("dry_run")))
        if not deployment.ok:
            return DemoReport([], timings, None, deployment)

        say("seeding the attack targets (nothing trailguard owns)")
        tg = seed_targets(REGION)
        detection = _stack_of(assembly, engine_fn.logical_id)
        sb = sandbox(
            tg,
            trail_name=TRAIL_NAME,
            trail_arn=f"arn:aws:cloudtrail:{REGION}:{account}:trail/{TRAIL_NAME}",
            log_bucket=client("cloudtrail").describe_trails(trailNameList=[TRAIL_NAME])["trailList"][0]["S3BucketName"],
            table_name=_physical(detection, _logical(assembly, detection, "AWS::DynamoDB::Table"), REGION),
            topic_arn=_physical(detection, _logical(assembly, detection, "AWS::SNS::Topic"), REGION),
            alert_queue_url="",
            config_parameter=RUNTIME_CONFIG_PARAMETER,
            engine_role_arn="",
            remediation_role_arn=f"arn:aws:iam::{account}:role/trailguard-remediation",
        )
        sb.alert_queue_url = subscribe_inbox(sb.topic_arn, REGION)
        cfg_doc = param_doc
        if deployment.dry_run_deployed:
            say("going live as the operator would: dry_run false in /trailguard/runtime-config (docs/deploy.md)")
            cfg_doc = _go_live(RUNTIME_CONFIG_PARAMETER, REGION)
        cfg = RuntimeConfig.from_document(cfg_doc)

        say("reading the central-bus rules back from the emulator")
        try:
            central = emulator_rules(client("events"))
        except DeployedRulesError as exc:
            raise DemoError(str(exc)) from exc
        undeployed = sorted({s.rule for s in steps if s.rule and s.rule not in {d.rule_id for d in central}})
        if undeployed:
            raise DemoError(f"rules the scenario needs are not deployed on the central bus: {', '.join(undeployed)}")
        router = Router(central, account=sb.account, region=sb.region, bus=BUS)

        say("fetching the deployed engine: code and layer zips from the asset bucket, hashes checked")
        try:
            fn = fetch_deployed_function(
                engine_fn.logical_id,
                stack_name=detection,
                cloudformation=client("cloudformation"),
                lambda_client=client("lambda"),
                s3=client("s3"),
                workdir=Path(work),
            )
        except LambdaRunnerError as exc:
            raise DemoError(f"cannot run the deployed engine: {exc}") from exc
        timings["setup"] = time.monotonic() - t1

        t2 = time.monotonic()
        reports = [StepReport(step=s, expected=_expected(s, catalog, cfg)) for s in steps]
        engine = EngineProcess(
            fn,
            log_path=log_path,
            region=REGION,
            endpoint_url=endpoint.url,
            aws_access_key_id=endpoint.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=endpoint.env["AWS_SECRET_ACCESS_KEY"],
        )
        try:
            with engine:
                loaded = engine.loaded_modules().get("trailguard_engine")
                engine_code = {
                    "trailguard_engine": str(loaded or ""),
                    "from_deployed_zip": bool(loaded and fn.code_dir.resolve() in loaded.resolve().parents),
                    "substituted": ", ".join(f"{x.name} {x.version}" for x in fn.substituted),
                }
                for rep in reports:
                    say(f"attack: {rep.step.title}")
                    record = rep.step.act(sb)
                    rep.event_id = record["eventID"]
                    event = eventbridge_event(record, account=sb.account, region=sb.region)
                    for delivery in router.deliver(event):
                        rep.routed.append(delivery.rule_id)
                        _absorb(rep, engine.invoke(delivery.payload))
        except LambdaRunnerError as exc:
            raise DemoError(f"the deployed engine failed: {exc}") from exc
        alerts = drain_alerts(sb)
        say("verifying the live state of every resource")
        for rep in reports:
            _verify(rep, sb, alerts)
        timings["scenario"] = time.monotonic() - t2
    return DemoReport(reports, timings, log_path, deployment, engine_code)


def _logical(assembly: Assembly, stack: str, type_: str) -> str:
    hits = [lid for lid, r in (assembly.templates[stack].get("Resources") or {}).items() if r.get("Type") == type_]
    if len(hits) != 1:
        raise DemoError(f"{stack}: expected one {type_}, found {len(hits)}")
    return str(hits[0])


def _check_demo_assembly(outdir: Path) -> None:
    """The demo deploys the embedded default: standalone, environment-agnostic stacks into one emulated account.

    An organization-mode assembly pins its stacks to the organization's accounts; it is not the demo's.
    """
    try:
        manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DemoError(f"{outdir}: no readable manifest.json ({exc}); synthesize first") from exc
    stack_envs = {
        n: str(a.get("environment", ""))
        for n, a in manifest.get("artifacts", {}).items()
        if a.get("type") == "aws:cloudformation:stack"
    }
    pinned = sorted(n for n, e in stack_envs.items() if not e.startswith("aws://unknown-account/"))
    if "TrailguardDetection" not in stack_envs or pinned:
        why = f"stacks pinned to accounts: {', '.join(pinned[:4])}" if pinned else "no TrailguardDetection stack"
        raise DemoError(
            f"{outdir} is not the demo's assembly ({why}; an organization-mode synth?): run the demo without "
            "--no-synth, or synthesize the default app into it (npx cdk synth)"
        )


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
            if f.get("status") == "remediated" and f.get("detail"):
                rep.changed.append(f"{f['action']}: {f['detail']}")
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
