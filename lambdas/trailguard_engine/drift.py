"""Drift sweep (``trailguard_engine.drift.handler``), run hourly by a schedule.

Events can be missed altogether (the system was down, a change was made while the trail was
stopped), so the invariants that matter most are checked directly against live state:

* the trail exists, is logging, is multi-region, has log file validation on (and is an
  organization trail when the runtime config names an organization);
* the archive bucket has all four Block Public Access settings, a bucket policy, a statement
  denying requests without TLS, and is not public (``GetBucketPolicyStatus``);
* the trail's KMS keys (``protected_key_arns`` of the runtime config and the key the trail
  uses) exist and are enabled.

Every check runs in the account that owns the resource, through the member remediation role
(which trusts the drift role). For each broken invariant: one SNS alert and the metric
``DriftDetected``. Three are repaired when the matching catalog rule's mode is ``remediate``
and ``dry_run`` is off, with the engine's own remediation functions (which re-read live
state and change only what is broken): StartLogging (``cloudtrail-stop-logging``), Block
Public Access (``s3-block-public-access-removed``), a disabled or pending-deletion trail key
(``kms-key-disabled`` / ``kms-key-scheduled-for-deletion``: these keys are protected by
definition). A resource tagged with an exemption tag is alerted on, never repaired.

It also reads the member accounts' forwarding dead-letter queues (issue 20,
:mod:`trailguard_engine.member_queues`): a queue with messages is a drift
(``forward-dlq-empty``, alert only), a queue it cannot read is reported as such, never as empty, and
the metrics ``MemberDlqMessages`` and ``MemberDlqUnreadable`` (in total, and by ``account`` when not
zero) feed the central alarm.

A check that cannot run (assume-role refused, access denied, throttled past retries) and a
repair that fails are alerted on, and the function then fails so the error alarm fires.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from trailguard_engine.catalog import load_catalog
from trailguard_engine.clients import ClientFactory, MemberSession, invoked_account
from trailguard_engine.events import CloudTrailEvent, as_list
from trailguard_engine.exceptions import EngineError
from trailguard_engine.member_queues import ForwardQueueReader, QueueDepth, roster
from trailguard_engine.model import Finding, Rule
from trailguard_engine.notify import Notifier
from trailguard_engine.remediations import RemediationContext, error_code, registry
from trailguard_engine.remediations.s3 import BPA_FLAGS
from trailguard_engine.settings import Runtime, RuntimeLoader, Settings
from trailguard_engine.state import LogFileLedger

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "trailguard-drift"))

#: The catalog rule whose mode decides whether a broken invariant is repaired.
RULE_STOP_LOGGING = "cloudtrail-stop-logging"
RULE_BPA = "s3-block-public-access-removed"
RULE_KEY_DISABLED = "kms-key-disabled"
RULE_KEY_DELETION = "kms-key-scheduled-for-deletion"


#: The function's wall clock (seconds since the epoch): the one seam tests pin.
clock: Callable[[], float] = time.time


class DriftError(EngineError):
    """Some checks could not run or some repairs failed (each one was alerted)."""


@dataclass(frozen=True, slots=True)
class DriftSettings:
    """The drift function's environment (names fixed by ``stacks/detection.py``)."""

    engine: Settings
    trail_arn: str
    trail_account: str
    archive_bucket: str
    log_archive_account: str
    home_region: str
    #: The member forwarding DLQ's name; empty: the member-queue check is not configured (tests of other checks).
    forward_dlq_name: str = ""
    governed_regions: tuple[str, ...] = ()
    #: Accounts whose forwarding queues are read whatever the digests say (management / the one account).
    member_accounts: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DriftSettings:
        e = os.environ if env is None else env
        engine = Settings.from_env(e)
        return cls(
            engine=engine,
            trail_arn=e.get("TRAILGUARD_TRAIL_ARN", ""),
            trail_account=e.get("TRAILGUARD_TRAIL_ACCOUNT", ""),
            archive_bucket=e.get("TRAILGUARD_ARCHIVE_BUCKET", ""),
            log_archive_account=e.get("TRAILGUARD_LOG_ARCHIVE_ACCOUNT", ""),
            home_region=e.get("TRAILGUARD_HOME_REGION", "") or engine.region,
            forward_dlq_name=e.get("TRAILGUARD_FORWARD_DLQ_NAME", ""),
            governed_regions=_csv(e.get("TRAILGUARD_GOVERNED_REGIONS", "")),
            member_accounts=_csv(e.get("TRAILGUARD_MEMBER_ACCOUNTS", "")),
        )

    def missing(self) -> list[str]:
        required = {
            "TRAILGUARD_TRAIL_ARN": self.trail_arn,
            "TRAILGUARD_TRAIL_ACCOUNT": self.trail_account,
            "TRAILGUARD_ARCHIVE_BUCKET": self.archive_bucket,
            "TRAILGUARD_LOG_ARCHIVE_ACCOUNT": self.log_archive_account,
            "TRAILGUARD_HOME_REGION": self.home_region,
        }
        return [k for k, v in required.items() if not v]


@dataclass(frozen=True, slots=True)
class Drift:
    """One broken invariant, and the repair that fits it (if any)."""

    invariant: str
    account: str
    region: str
    resource_type: str
    resource: str
    observed: str
    expected: str
    rule: str | None = None
    action: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    severity: str = "HIGH"


@dataclass(slots=True)
class SweepResult:
    """Everything one sweep found and did."""

    checked: list[str] = field(default_factory=list)
    drifts: list[tuple[Drift, str, str]] = field(default_factory=list)  # (drift, status, detail)
    errors: list[str] = field(default_factory=list)

    def statuses(self) -> dict[str, str]:
        return {d.invariant: status for d, status, _ in self.drifts}


class DriftSweep:
    """Checks the invariants, alerts and repairs. Build once per container; ``run`` per invocation."""

    def __init__(
        self,
        *,
        settings: DriftSettings,
        factory: ClientFactory,
        notifier: Notifier,
        rules: tuple[Rule, ...] | None = None,
        log: Any = logger,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.notifier = notifier
        self.rules = {r.id: r for r in (load_catalog() if rules is None else rules)}
        self.log = log
        self.clock = clock
        self.counts: Counter[tuple[str, str]] = Counter()
        self.account_counts: Counter[tuple[str, str]] = Counter()  # (metric, account): member queue metrics

    def count(self, name: str, invariant: str = "", n: int = 1) -> None:
        self.counts[(name, invariant)] += n

    # ------------------------------------------------------------------ #
    def run(self, runtime: Runtime) -> SweepResult:
        """Check every invariant; alert (and repair where allowed) each broken one."""
        out = SweepResult()
        trail_key = ""
        for check in (self._trail, self._bucket):
            try:
                for item in check(runtime, out):
                    if isinstance(item, str):
                        trail_key = item
                    else:
                        self._handle(item, runtime, out)
            except Exception as exc:
                self._check_failed(check.__name__.strip("_"), exc, out)
        try:
            for drift in self._keys(runtime, trail_key, out):
                self._handle(drift, runtime, out)
        except Exception as exc:
            self._check_failed("keys", exc, out)
        if self.settings.forward_dlq_name:
            try:
                self._member_queues(runtime, out)
            except Exception as exc:
                self._check_failed("member-queues", exc, out)
        return out

    def _check_failed(self, what: str, exc: Exception, out: SweepResult) -> None:
        msg = f"drift check {what} could not run: {type(exc).__name__}: {exc}"[:1000]
        self.log.error(msg)
        self.count("DriftCheckErrors", what)
        out.errors.append(msg)
        self.notifier.publish(
            f"trailguard DRIFT CHECK FAILED: {what}"[:100],
            {"alert": "drift_check_failed", "check": what, "error": msg, "error_code": error_code(exc)},
            attributes={"kind": "drift_check_failed", "severity": "HIGH", "rule": "-"},
        )

    def _session(self, account: str, region: str) -> MemberSession:
        return self.factory.member(account, region)

    # ------------------------------------------------------------------ #
    # the invariants
    # ------------------------------------------------------------------ #
    def _trail(self, runtime: Runtime, out: SweepResult) -> Iterator[Drift | str]:
        s = self.settings
        arn = s.trail_arn
        parts = arn.split(":")
        region = parts[3] if len(parts) > 5 and parts[3] else s.home_region
        ct = self._session(s.trail_account, region).client("cloudtrail", region)
        out.checked.append("trail-exists")

        def drift(invariant: str, observed: str, expected: str, **kw: Any) -> Drift:
            return Drift(invariant, s.trail_account, region, "AWS::CloudTrail::Trail", arn, observed, expected, **kw)

        try:
            trail = ct.get_trail(Name=arn)["Trail"]
        except Exception as exc:
            if error_code(exc) == "TrailNotFoundException":
                yield drift("trail-exists", "trail not found", "the trail exists", severity="CRITICAL")
                return
            raise
        if trail.get("KmsKeyId"):
            yield str(trail["KmsKeyId"])
        out.checked += ["trail-logging", "trail-multi-region", "trail-log-file-validation"]
        if not ct.get_trail_status(Name=arn).get("IsLogging"):
            yield drift(
                "trail-logging",
                "IsLogging=false",
                "IsLogging=true",
                rule=RULE_STOP_LOGGING,
                action="start_logging",
                params={"trail": arn},
                severity="CRITICAL",
            )
        if trail.get("IsMultiRegionTrail") is not True:
            yield drift("trail-multi-region", "IsMultiRegionTrail=false", "IsMultiRegionTrail=true")
        if trail.get("LogFileValidationEnabled") is not True:
            yield drift("trail-log-file-validation", "LogFileValidationEnabled=false", "LogFileValidationEnabled=true")
        if runtime.cfg.org_id:
            out.checked.append("trail-organization")
            if trail.get("IsOrganizationTrail") is not True:
                yield drift("trail-organization", "IsOrganizationTrail=false", "an organization trail")

    def _bucket(self, runtime: Runtime, out: SweepResult) -> Iterator[Drift | str]:
        s = self.settings
        bucket, account, region = s.archive_bucket, s.log_archive_account, s.home_region
        s3 = self._session(account, region).client("s3", region)

        def drift(invariant: str, observed: str, expected: str, **kw: Any) -> Drift:
            return Drift(invariant, account, region, "AWS::S3::Bucket", bucket, observed, expected, **kw)

        out.checked.append("bucket-block-public-access")
        try:
            bpa = s3.get_public_access_block(Bucket=bucket).get("PublicAccessBlockConfiguration", {})
        except Exception as exc:
            if error_code(exc) == "NoSuchBucket":
                yield drift("bucket-exists", "bucket not found", "the archive bucket exists", severity="CRITICAL")
                return
            if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
                raise
            bpa = {}
        off = [f for f in BPA_FLAGS if bpa.get(f) is not True]
        if off:
            yield drift(
                "bucket-block-public-access",
                "off: " + ", ".join(off),
                "all four Block Public Access settings on",
                rule=RULE_BPA,
                action="restore_bucket_public_access_block",
                # the archive must have all four on, public or not (the remediation's invariant mode)
                params={"bucket": bucket, "all_settings": True},
            )
        out.checked += ["bucket-policy-present", "bucket-policy-tls", "bucket-not-public"]
        try:
            policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        except Exception as exc:
            if error_code(exc) != "NoSuchBucketPolicy":
                raise
            policy = None
        if policy is None:
            yield drift("bucket-policy-present", "no bucket policy", "the archive bucket policy", severity="CRITICAL")
        elif not has_tls_deny(policy):
            yield drift(
                "bucket-policy-tls", "no statement denies aws:SecureTransport=false", "a TLS-only deny statement"
            )
        if policy is not None:
            status = s3.get_bucket_policy_status(Bucket=bucket).get("PolicyStatus", {})
            if status.get("IsPublic"):
                yield drift("bucket-not-public", "PolicyStatus.IsPublic=true", "not public", severity="CRITICAL")

    def _keys(self, runtime: Runtime, trail_key: str, out: SweepResult) -> Iterator[Drift]:
        s = self.settings
        wanted = sorted({*runtime.cfg.protected_key_arns, *([trail_key] if trail_key else [])})
        seen: set[str] = set()
        for key in wanted:
            account, region = _key_location(key, s.trail_account, s.home_region)
            kms = self._session(account, region).client("kms", region)
            out.checked.append(f"key-enabled {key}")
            try:
                meta = kms.describe_key(KeyId=key)["KeyMetadata"]
            except Exception as exc:
                if error_code(exc) == "NotFoundException":
                    yield Drift("key-exists", account, region, "AWS::KMS::Key", key, "not found", "the key exists")
                    continue
                raise
            arn = str(meta.get("Arn") or key)
            if arn in seen:
                continue
            seen.add(arn)
            state = str(meta.get("KeyState", ""))
            if state == "Enabled":
                continue
            rule, action = {
                "Disabled": (RULE_KEY_DISABLED, "enable_key"),
                "PendingDeletion": (RULE_KEY_DELETION, "cancel_key_deletion"),
            }.get(state, (None, None))
            yield Drift(
                "key-enabled",
                account,
                region,
                "AWS::KMS::Key",
                arn,
                f"KeyState={state}",
                "KeyState=Enabled",
                rule=rule,
                action=action,
                params={"key_id": arn},
                severity="CRITICAL",
            )

    def _member_queues(self, runtime: Runtime, out: SweepResult) -> None:
        """Read every member forwarding DLQ of the roster; alert non-empty and unreadable ones."""
        s = self.settings
        heads: Mapping[tuple[str, str], str] = {}
        if s.engine.state_table:
            ledger = LogFileLedger(table=s.engine.state_table, client=self.factory.engine("dynamodb"), clock=self.clock)
            heads = ledger.digest_heads()
        where = roster(heads, fixed_accounts=s.member_accounts, regions=s.governed_regions, now=self.clock())
        reader = ForwardQueueReader(factory=self.factory, queue_name=s.forward_dlq_name)
        results = reader.read_all(where)
        out.checked += [f"forward-dlq {q.account}/{q.region}" for q in results]
        self.count("MemberDlqMessages", "", 0)  # emitted every sweep: the central alarm sees zeros too
        self.count("MemberDlqUnreadable", "", 0)
        unreadable = [q for q in results if not q.readable]
        for q in results:
            if q.depth:
                self.count("MemberDlqMessages", "", q.depth)
                self.account_counts[("MemberDlqMessages", q.account)] += q.depth
                self._handle(
                    Drift(
                        "forward-dlq-empty",
                        q.account,
                        q.region,
                        "AWS::SQS::Queue",
                        q.queue_arn,
                        f"{q.depth} message(s): forwarded events that never reached the central bus",
                        "no messages",
                    ),
                    runtime,
                    out,
                )
        if unreadable:
            self._member_queues_unreadable(unreadable, out)

    def _member_queues_unreadable(self, unreadable: list[QueueDepth], out: SweepResult) -> None:
        """One alert for every queue the sweep could not read: unknown is reported, never taken for empty."""
        for q in unreadable:
            self.count("MemberDlqUnreadable")
            self.account_counts[("MemberDlqUnreadable", q.account)] += 1
            out.errors.append(f"cannot read DLQ depth in account {q.account} ({q.region}): {q.error}"[:1000])
        accounts = sorted({q.account for q in unreadable})
        where = f"account {accounts[0]}" if len(accounts) == 1 else f"{len(accounts)} accounts"
        self.log.error("cannot read the forwarding DLQ depth in %s", where)
        self.notifier.publish(
            f"trailguard MEMBER DLQ UNREADABLE: cannot read DLQ depth in {where}"[:100],
            {
                "alert": "member_dlq_unreadable",
                "severity": "HIGH",
                "message": f"cannot read DLQ depth in {where}: a deleted queue or role, or a denied read, is not "
                "an empty queue; events forwarded from there may be failing unseen",
                "accounts": accounts,
                "queues": [
                    {"account": q.account, "region": q.region, "queue": q.queue_arn, "error": q.error}
                    for q in unreadable[:100]
                ],
                "count": len(unreadable),
            },
            attributes={"kind": "member_dlq_unreadable", "severity": "HIGH", "rule": "-"},
        )

    # ------------------------------------------------------------------ #
    # alert + repair
    # ------------------------------------------------------------------ #
    def _handle(self, drift: Drift, runtime: Runtime, out: SweepResult) -> None:
        self.count("DriftDetected", drift.invariant)
        self.log.warning("drift: %s on %s: %s", drift.invariant, drift.resource, drift.observed)
        status, detail, changes = self._repair(drift, runtime)
        out.drifts.append((drift, status, detail))
        if status == "failed":
            out.errors.append(f"repair of {drift.invariant} on {drift.resource} failed: {detail}")
        self._alert(drift, status, detail, changes, runtime)

    def _repair(self, drift: Drift, runtime: Runtime) -> tuple[str, str, tuple[str, ...]]:
        """``(status, detail, changes)``; status: alerted | dry_run | skipped | remediated | already_safe | failed."""
        rule = self.rules.get(drift.rule or "")
        rem = registry().get(drift.action or "")
        if rule is None or rem is None:
            return "alerted", "no automatic repair for this invariant", ()
        mode = runtime.cfg.mode_for(rule)
        if mode != "remediate":
            return "alerted", f"rule {rule.id} is in mode {mode}: alert only", ()
        if runtime.cfg.dry_run:
            self.count("DriftDryRuns", drift.invariant)
            detail = f"dry run: would run {rem.name} on {drift.resource} in {drift.account}/{drift.region}"
            self.log.info(detail)
            return "dry_run", detail, ()
        cfg = runtime.cfg
        if drift.resource_type == "AWS::KMS::Key":  # a configured trail key: protected by definition
            cfg = replace(cfg, protected_key_arns=cfg.protected_key_arns | {drift.resource})
        finding = Finding(
            rule.id,
            rule.severity,
            "remediate",
            rem.name,
            f"drift: {drift.invariant}: {drift.observed}",
            {"type": drift.resource_type, "id": drift.resource},
            dict(drift.params),
        )
        try:
            session = self._session(drift.account, drift.region)
            ctx = RemediationContext(
                finding, _sweep_event(drift), cfg, drift.account, drift.region, session, self.factory
            )
            if rem.tags is not None:
                exempt = cfg.tags_exempt(rem.tags(ctx))
                if exempt:
                    return "skipped", f"resource tagged {exempt}: exempt, not repaired", ()
            result = rem.fn(ctx)
        except Exception as exc:
            self.count("DriftRepairFailed", drift.invariant)
            self.log.exception("repair %s of %s failed", rem.name, drift.invariant)
            return "failed", f"{rem.name}: {type(exc).__name__}: {exc}"[:1000], ()
        if result.status == "remediated":
            self.count("DriftRepaired", drift.invariant)
        return result.status, result.detail, result.changes

    def _alert(self, drift: Drift, status: str, detail: str, changes: tuple[str, ...], runtime: Runtime) -> None:
        verb = {"remediated": "REPAIRED", "failed": "REPAIR FAILED", "dry_run": "DRY RUN"}.get(status, "DETECTED")
        subject = f"trailguard DRIFT {verb} {drift.severity}: {drift.invariant} ({drift.account} {drift.region})"
        body = {
            "alert": "drift",
            "invariant": drift.invariant,
            "severity": drift.severity,
            "where": {
                "account": drift.account,
                "region": drift.region,
                "resource": {"type": drift.resource_type, "id": drift.resource},
            },
            "observed": drift.observed,
            "expected": drift.expected,
            "rule": drift.rule,
            "action": {"name": drift.action, "status": status, "detail": detail, "changes": list(changes)},
            "runbook": runtime.runbook_url(drift.rule) if drift.rule else None,
        }
        self.notifier.publish(
            subject[:100],
            body,
            attributes={"kind": "drift", "severity": drift.severity, "rule": drift.rule or "-"},
        )

    # ------------------------------------------------------------------ #
    def flush_metrics(self) -> None:
        """EMF: each metric in total and by invariant."""
        s = self.settings.engine
        per: dict[str, Counter[str]] = {}
        totals: Counter[str] = Counter()
        for (name, inv), n in self.counts.items():
            totals[name] += n
            if inv:
                per.setdefault(inv, Counter())[name] += n
        self.counts.clear()
        docs: list[tuple[str, Counter[str]]] = [("", totals)] if totals else []
        for inv, counts in [*docs, *sorted(per.items())]:
            emf = AmazonCloudWatchEMFProvider(namespace=s.namespace, service=s.service)
            for name, n in sorted(counts.items()):
                emf.add_metric(name=name, unit=MetricUnit.Count, value=n)
            if inv:
                emf.add_dimensions(service=s.service, invariant=inv)
            emf.flush_metrics()
        for (name, account), n in sorted(self.account_counts.items()):
            emf = AmazonCloudWatchEMFProvider(namespace=s.namespace, service=s.service)
            emf.add_metric(name=name, unit=MetricUnit.Count, value=n)
            emf.add_dimensions(service=s.service, account=account)
            emf.flush_metrics()
        self.account_counts.clear()


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def has_tls_deny(policy: Mapping[str, Any]) -> bool:
    """True if a Deny statement covers requests made without TLS (``aws:SecureTransport`` false)."""
    for st in as_list(policy.get("Statement")):
        if not isinstance(st, Mapping) or st.get("Effect") != "Deny":
            continue
        cond = st.get("Condition")
        if not isinstance(cond, Mapping):
            continue
        for op in ("Bool", "BoolIfExists"):
            block = cond.get(op)
            if not isinstance(block, Mapping):
                continue
            for k, v in block.items():
                if k.lower() == "aws:securetransport" and any(str(x).lower() == "false" for x in as_list(v)):
                    return True
    return False


def _key_location(key: str, default_account: str, default_region: str) -> tuple[str, str]:
    parts = key.split(":")
    if key.startswith("arn:") and len(parts) >= 6:
        return parts[4] or default_account, parts[3] or default_region
    return default_account, default_region


def _sweep_event(drift: Drift) -> CloudTrailEvent:
    """The event a remediation context carries: the sweep itself, not a CloudTrail call."""
    return CloudTrailEvent(
        {
            "id": f"drift-{uuid.uuid4()}",
            "account": drift.account,
            "region": drift.region,
            "detail-type": "trailguard drift sweep",
            "source": "trailguard.drift",
            "detail": {
                "eventID": f"drift-{uuid.uuid4()}",
                "eventName": "DriftSweep",
                "eventSource": "trailguard",
                "awsRegion": drift.region,
                "recipientAccountId": drift.account,
            },
        }
    )


# --------------------------------------------------------------------------- #
# Lambda entry point
# --------------------------------------------------------------------------- #
_STATE: list[DriftSweep] = []
_LOADER: list[RuntimeLoader] = []


def get_sweep(context: Any = None) -> DriftSweep:
    """The container's sweep, built on first use from the environment."""
    if not _STATE:
        ds = DriftSettings.from_env()
        missing = ds.missing()
        if missing:
            raise DriftError(f"drift sweep is not configured: {', '.join(missing)} not set")
        factory = ClientFactory(engine_region=ds.engine.region, role_name=ds.engine.remediation_role_name)
        notifier = Notifier(
            factory=factory, topic_arn=ds.engine.alert_topic_arn, engine_account=invoked_account(context)
        )

        def now() -> float:  # late-bound: tests pin the module's clock
            return clock()

        _STATE.append(DriftSweep(settings=ds, factory=factory, notifier=notifier, clock=now))
    return _STATE[0]


def get_runtime(sweep: DriftSweep) -> Runtime:
    if not _LOADER:
        _LOADER.append(RuntimeLoader(sweep.factory.read_parameter))
    return _LOADER[0].load(sweep.settings.engine.config_parameter)


def reset() -> None:
    """Forget the container state (tests; never needed in Lambda)."""
    _STATE.clear()
    _LOADER.clear()


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Run one sweep; raises :class:`DriftError` after alerting if a check or a repair failed."""
    sweep = get_sweep(context)
    try:
        result = sweep.run(get_runtime(sweep))
    finally:
        sweep.flush_metrics()
    summary = {
        "checked": len(result.checked),
        "drifts": [
            {"invariant": d.invariant, "resource": d.resource, "status": status, "detail": detail}
            for d, status, detail in result.drifts
        ],
        "errors": result.errors,
    }
    logger.info("drift sweep done", extra={"summary": summary})
    if result.errors:
        raise DriftError(f"{len(result.errors)} drift check(s)/repair(s) failed: {result.errors[0]}")
    return summary
