"""The remediation engine core: decide with ``evaluate``, then act safely and report.

``Engine.handle(payload)`` accepts ``{"trailguard_rule": id, "event": envelope}``
(what the central EventBridge rules send) or a bare envelope / CloudTrail record
(then every matching rule is evaluated). Bad input is reported and counted,
never raised: raising would make Lambda retry a poison event.

For each finding that is not ``skip`` the engine, once per (account, eventID, rule, digest of
the fields that matter; see :func:`~trailguard_engine.state.event_digest`):

1. alert-only findings: SNS message + Security Hub finding. A finding alert-only *only* because its caller
   class lowered it (``Finding.lowered_by_caller``) first runs its remediation's read-only live ``check``
   through the member role (also in dry run): when the live state is already safe or intended it is
   ``skipped`` (``LiveStateBenign``, a low-severity notice, no alert, the pipeline's hourly alert kept); when the
   check fails the alert goes out with the error. An alert whose caller class is ``iac`` is sent
   once per (account, pipeline) and hour (a more severe one is sent too), the rest are counted
   (``IacDriftSuppressed``): IaC drift is fixed in the pipeline, and another caller's alert is never held back;
2. remediate findings are first downgraded to alerts, with the reason, when acting would not be
   safe: the event is older than ``max_event_age`` (or its eventTime is missing, unreadable or in
   the future), or it reached the engine only through a log file (``origin: log-file``) whose
   integrity has not been verified. The engine decides that itself (:meth:`Engine.log_file_trust`):
   the hand-off names the file (``log_file: {bucket, key, sha256}``, the hash the reconcile reader
   computed over the bytes it read), and the finding may act only when the state table holds a
   ``verified#<bucket>/<key>`` record (written by the digest verifier alone) with that same hash and
   the record's account is the file's account. Any "verified" claim in the payload is ignored;
3. remediate findings: honour ``dry_run``; assume the member role in the
   event's account and region (a failure alerts, counts ``AssumeRoleFailures``
   and re-raises); check the resource's live tags against the exemption tags (read only when
   ``exemptions.resource_tags`` is configured, and never for trailguard's own resources, which no tag
   exempts; the remediation reuses that one read);
   apply the per-resource rate limit: at most ``max_actions_per_resource_per_hour`` actions that
   changed something in any 3600 seconds (a sliding window, :class:`~trailguard_engine.state.RateLimiter`),
   and never a third after a remediation was reverted twice (:data:`REVERTS_BEFORE_STOP`). Over the limit:
   no action (alert only until the window has passed) and one "flapping" alert per resource per hour that
   names who reverted it (principals and caller classes); a principal it did not name who changes the
   paused resource gets an alert of its own. Then run the remediation, which re-reads the live state and
   changes nothing when it is already safe; report.
   Any AWS error in the remediation is alerted (once per event, not once per
   Lambda retry) and re-raised for the DLQ.

A rule with ``params.threshold`` (credential reads in bursts) fires only when its qualifying events of one
principal add up within the window (:class:`~trailguard_engine.window.ThresholdGate`, counted in the state
table; the rest are skipped as counted, and a failing table alerts each event).

Change records (findings of severity ``INFO``, :func:`~trailguard_engine.notify.is_record`) are never
alerts: no SNS message on any path (the finding itself, its notice, IaC de-duplication, failure reports),
never counted against the alert budget nor able to set off the "budget exhausted" notice. Each is one
structured audit-log line (``change record``, with the finding JSON) and metric ``ChangeRecords``, and a
Security Hub ``INFORMATIONAL`` finding when ``security_hub_findings`` is on, within a per-account hourly
budget of its own (key ``info#<account>``, the same limit as alerts; past it: ``ChangeRecordsSuppressed``
and the log line only, no notice). A change record is never acted on, whatever its decision says.

Risky events skipped because of who made them or where (loop guard, exemptions) get a
low-severity notice, never silence (a change record skipped so: ``ChangeRecordsSilenced`` and the log
line only). A second, different content for an (account, eventID, rule) already seen is alarmed as a
forged copy (``EventIdMismatches``) and judged on its own.
Every alert counts against a per-source-account hourly budget; past it, alerts are counted
(``AlertsSuppressed``) and one "budget exhausted" notice is sent per account and hour.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from trailguard_engine.caller import Caller, classify
from trailguard_engine.clients import ClientFactory
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.exceptions import AssumeRoleError, RejectedEvent, RemediationError
from trailguard_engine.logfile import log_key_account
from trailguard_engine.model import SEVERITIES, Finding, Rule
from trailguard_engine.notify import (
    RECORDED,
    Notifier,
    Outcome,
    SecurityHubError,
    asff,
    is_record,
    message,
    record,
    subject,
)
from trailguard_engine.org_accounts import OrgAccounts
from trailguard_engine.remediations import ActionResult, ParamError, RemediationContext, registry
from trailguard_engine.runtime_config import MAX_FUTURE_SKEW_SECONDS
from trailguard_engine.settings import Runtime
from trailguard_engine.state import Idempotency, LogFileLedger, RateDecision, RateLimiter, event_digest
from trailguard_engine.window import DynamoWindowStore, MemoryWindowStore, ThresholdGate, WindowStore

#: ``origin`` of an engine input handed over by the log-file reconciliation path.
ORIGIN_LOG_FILE = "log-file"
#: What the engine says of a finding only an unverified log file showed (tests and runbooks match it).
LOG_FILE_ONLY = "seen only in a log file whose integrity has not been verified"
#: A resource whose remediation was changed back this many times within the sliding hour is not remediated
#: again until the hour has passed (alert-only), whatever ``max_actions_per_resource_per_hour`` allows.
REVERTS_BEFORE_STOP = 2
#: Larger is more severe (the IaC drift marker keeps the most severe alert sent).
SEVERITY_RANK = {s: len(SEVERITIES) - i for i, s in enumerate(SEVERITIES)}
_SHA256_HEX = frozenset("0123456789abcdef")
#: Budget key prefix of change records' Security Hub imports (:meth:`Engine._record_budget`): never the alert budget.
RECORD_BUDGET_PREFIX = "info#"


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a finding's event came from, as the engine itself established it.

    ``from_log_file``: handed over by the reconcile path. ``verified``: the engine found the
    named file in the verifier's ledger with the hash the reader computed; ``why`` says why not
    (or which digest vouched for it).
    """

    from_log_file: bool = False
    verified: bool = False
    why: str = ""

    @property
    def alert_only(self) -> bool:
        return self.from_log_file and not self.verified


EVENTBRIDGE = Provenance()


class Log(Protocol):
    def info(self, msg: object, *args: Any, **kwargs: Any) -> Any: ...
    def warning(self, msg: object, *args: Any, **kwargs: Any) -> Any: ...
    def error(self, msg: object, *args: Any, **kwargs: Any) -> Any: ...
    def exception(self, msg: object, *args: Any, **kwargs: Any) -> Any: ...


#: (metric name, rule id or "", account or "") -> counted by the handler into EMF.
MetricFn = Callable[[str, str, str], None]


def event_time(event: CloudTrailEvent) -> float | None:
    """``eventTime`` in seconds since the epoch, or None when missing or not an ISO-8601 UTC time."""
    raw = event.event_time
    if not raw or len(raw) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def stale_reason(event: CloudTrailEvent, now: float, max_age_seconds: int) -> str | None:
    """Why ``event`` is too old (or too odd in time) to act on, or None when it is recent."""
    at = event_time(event)
    if at is None:
        return "eventTime missing or unreadable: cannot tell whether the change is still current"
    age = now - at
    if age > max_age_seconds:
        return (
            f"event is {int(age // 60)} min old (limit {max_age_seconds // 60} min): the live state may "
            "have been changed deliberately since"
        )
    if age < -MAX_FUTURE_SKEW_SECONDS:
        return f"eventTime is {int(-age // 60)} min in the future: not a genuine recent event"
    return None


def idempotency_key(event: CloudTrailEvent, rule_id: str, *, log_file: bool = False) -> dict[str, str]:
    """The engine's once-only key (shared with the reconciliation path's ``seen`` check).

    A finding handed over by the log-file path from a file not (yet) verified against its digest has
    its own key: it is alert-only, so it must not pre-claim the event and turn a later (delayed)
    EventBridge delivery, or the rescan after the digest verified the file, into a duplicate.
    """
    key = {
        "account": event.account,
        "eventID": event.event_id or event.envelope_id,
        "rule": rule_id,
        "digest": event_digest(event.detail, event.account),
    }
    if log_file:
        key["path"] = ORIGIN_LOG_FILE
    return key


@dataclass
class Engine:
    """Build once per Lambda container; ``runtime`` is re-read (cached) per call by the handler."""

    factory: ClientFactory
    notifier: Notifier
    idempotency: Idempotency | None
    limiter: RateLimiter | None
    #: Seconds since the epoch (the handler's seam): event age is judged against it.
    clock: Callable[[], float]
    rules: tuple[Rule, ...] | None = None
    log: Log = field(default_factory=lambda: logging.getLogger("trailguard.engine"))
    metric: MetricFn = lambda name, rule, account: None
    #: The verifier's ledger of log files a valid digest listed; None: no log file is ever trusted.
    ledger: LogFileLedger | None = None
    #: Changes back of one resource's remediation, within the sliding hour, after which it stops.
    reverts_before_stop: int = REVERTS_BEFORE_STOP
    #: Windowed thresholds (:mod:`~trailguard_engine.window`); by default on the rate limiter's state table.
    thresholds: ThresholdGate | None = None
    #: The organization's accounts (cached ListAccounts, :mod:`~trailguard_engine.org_accounts`), added to the
    #: configured ``organization_accounts`` when the config has an organization; None: configured ones only.
    org_accounts: OrgAccounts | None = None

    def __post_init__(self) -> None:
        self._evaluators: dict[int, tuple[Runtime, Evaluator, frozenset[str] | None]] = {}
        if self.thresholds is None:
            store: WindowStore = (
                DynamoWindowStore(table=self.limiter.table, client=self.limiter.client)
                if self.limiter is not None
                else MemoryWindowStore()  # no state table (tests, local runs): per container
            )
            self.thresholds = ThresholdGate(store, clock=self.clock, metric=self._metric, logger=self.log)

    def _metric(self, name: str, rule: str, account: str) -> None:
        self.metric(name, rule, account)

    # ------------------------------------------------------------------ #
    def evaluator(self, runtime: Runtime) -> Evaluator:
        org = self._organization_accounts(runtime)
        hit = self._evaluators.get(id(runtime))
        if hit is None or hit[0] is not runtime or hit[2] != org:
            self._evaluators.clear()
            cfg = runtime.cfg
            if cfg.engine_account is None and self.notifier.engine_account:
                # The loop guard trusts trailguard's own roles only in the account they run in.
                cfg = replace(cfg, engine_account=self.notifier.engine_account)
            if org is not None:
                cfg = replace(cfg, organization_accounts=(cfg.organization_accounts or frozenset()) | org)
            hit = (runtime, Evaluator(self.rules, cfg), org)
            self._evaluators[id(runtime)] = hit
        return hit[1]

    def _organization_accounts(self, runtime: Runtime) -> frozenset[str] | None:
        """The cached ListAccounts answer in organization mode (None: unknown or standalone; counted, logged)."""
        if self.org_accounts is None or not runtime.cfg.org_id:
            return None
        snap = self.org_accounts.get()
        if snap.error:
            self.log.warning("organization accounts %s: %s", "stale" if snap.accounts else "unknown", snap.error)
            self.metric("OrgAccountsUnavailable", "", "")
        return snap.accounts

    def handle(self, payload: Any, runtime: Runtime) -> dict[str, Any]:
        """Process one Lambda input; always returns a JSON-able summary for bad input."""
        rule_id: str | None = None
        obj = payload
        origin = None
        log_file: Any = None
        if isinstance(payload, Mapping) and "trailguard_rule" in payload:
            rid = payload.get("trailguard_rule")
            if not isinstance(rid, str) or not rid:
                return self._reject("trailguard_rule is not a non-empty string")
            rule_id, obj = rid, payload.get("event")
            origin = payload.get("origin")
            log_file = payload.get("log_file")
        return self.process(obj, rule_id, runtime, from_log_file=origin == ORIGIN_LOG_FILE, log_file=log_file)

    def process(
        self, obj: Any, rule_id: str | None, runtime: Runtime, *, from_log_file: bool = False, log_file: Any = None
    ) -> dict[str, Any]:
        """Decide and act on one envelope (or bare record) for ``rule_id`` or every matching rule."""
        ev_ = self.evaluator(runtime)
        if rule_id is not None and rule_id not in ev_.by_id:
            return self._reject(f"unknown rule id {rule_id!r}")
        try:
            envelope = to_envelope(obj)
            result = ev_.evaluate(envelope, only_rule=rule_id)
        except RejectedEvent as exc:
            return self._reject(str(exc))
        event = CloudTrailEvent(envelope)
        if self.thresholds is not None:  # a qualifying event of a threshold rule fires once per principal and window
            result = self.thresholds.apply_result(event, result, ev_.by_id)
        if rule_id is not None and not result.findings:
            # The EventBridge rule matched but our pattern does not: catalog and deployment disagree.
            self.log.warning("event does not match the pattern of rule %s", rule_id)
            self.metric("PatternMismatches", rule_id, event.account)
        source = EVENTBRIDGE
        if from_log_file:
            verified, why = self.log_file_trust(event, log_file) if result.findings else (False, "")
            source = Provenance(from_log_file=True, verified=verified, why=why)
        outcomes = [
            self._finding(event, self._guard(event, f, runtime, source), ev_.by_id.get(f.rule), runtime, source)
            for f in result.findings
        ]
        return {
            "eventID": result.event_id,
            "eventName": result.event_name,
            "verdict": result.verdict,
            "findings": outcomes,
        }

    def _reject(self, reason: str) -> dict[str, Any]:
        self.log.warning("rejected input: %s", reason)
        self.metric("RejectedEvents", "", "")
        return {"rejected": True, "reason": reason, "findings": []}

    # ------------------------------------------------------------------ #
    def log_file_trust(self, event: CloudTrailEvent, log_file: Any) -> tuple[bool, str]:
        """``(verified, why)`` for an event the reconcile path read from the log file ``log_file`` names.

        Trusts nothing in the payload but the name and the hash the reader computed: the file must be
        in the verifier's ledger (``verified#<bucket>/<key>``, which only the verifier's role may write)
        with exactly that SHA-256, so the bytes the record was read from are the bytes a signed, chained
        digest listed; and the record's account must be the account of the file's key.
        """
        if not isinstance(log_file, Mapping):
            return False, "the hand-off names no log file"
        bucket, key, sha = log_file.get("bucket"), log_file.get("key"), log_file.get("sha256")
        if not (isinstance(bucket, str) and bucket and isinstance(key, str) and key):
            return False, "the hand-off names no log file"
        if not (isinstance(sha, str) and len(sha) == 64 and set(sha.lower()) <= _SHA256_HEX):
            return False, "the reader computed no SHA-256 for the file (damaged or partly read)"
        if log_key_account(key) != event.account:
            return False, "the record's account is not the account of the log file's key"
        if self.ledger is None:
            return False, "no state table to look the file up in"
        try:
            record = self.ledger.verified(bucket, key)
        except Exception as exc:  # fail closed: an unreadable ledger means "not verified"
            self.log.error("cannot read the verified-file ledger for s3://%s/%s: %s", bucket, key, exc)
            self.metric("LedgerReadFailures", "", event.account)
            return False, "the verified-file ledger could not be read"
        if record is None:
            return False, "its CloudTrail digest has not arrived or not been verified yet"
        if not record.matches(sha):
            self.metric("LogFileHashMismatches", "", event.account)
            return False, "the file read differs from the file the digest listed (SHA-256 mismatch)"
        return True, f"verified against digest {record.digest_key}"

    def _guard(self, event: CloudTrailEvent, f: Finding, rt: Runtime, source: Provenance) -> Finding:
        """Downgrade a remediate finding to an alert when acting would not be safe (with the reason)."""
        if f.decision != "remediate":
            return f
        if source.alert_only:
            self.metric("LogFileOnlyFindings", f.rule, event.account)
            why = f"{LOG_FILE_ONLY} ({source.why}): alert only"
            return replace(f, decision="alert", action=None, reason=f"{f.reason} (not remediated: {why})")
        if source.from_log_file:
            self.metric("VerifiedLogFileFindings", f.rule, event.account)
        stale = stale_reason(event, self.clock(), rt.cfg.max_event_age_seconds)
        if stale:
            self.metric("StaleEvents", f.rule, event.account)
            return replace(f, decision="alert", action=None, reason=f"{f.reason} (not remediated: {stale})")
        return f

    def _finding(
        self, event: CloudTrailEvent, f: Finding, rule: Rule | None, rt: Runtime, source: Provenance = EVENTBRIDGE
    ) -> dict[str, Any]:
        base = {**f.to_json(), "resource": dict(f.resource)}
        if f.decision == "skip" and not f.silenced_by:
            self.log.info("no action for %s: %s", f.rule, f.reason)
            self.metric("FindingsSkipped", f.rule, event.account)
            return {**base, "status": "skipped"}
        # A verified log file is as good as EventBridge's word: it shares EventBridge's key, so the
        # event is acted on once whichever path comes first. An unverified one keeps its own key.
        key = idempotency_key(event, f.rule, log_file=source.alert_only)

        def work() -> dict[str, Any]:
            return self._notice(event, f, rule, rt) if f.decision == "skip" else self._act(event, f, rule, rt)

        if self.idempotency is None:
            return {**base, **work(), "duplicate": False}
        claim = f"{key['account']}#{key['eventID']}#{key['rule']}"
        out, ran = self.idempotency.once(
            key,
            work,
            claim=(claim, key["digest"]),
            on_forged=lambda other: self._forged_copy(event, f, rt, key, other),
        )
        if not ran:
            self.log.info("duplicate of an event already handled for %s; no action", f.rule)
            self.metric("Duplicates", f.rule, event.account)
        return {**base, **out, "duplicate": not ran}

    def _forged_copy(self, event: CloudTrailEvent, f: Finding, rt: Runtime, key: Mapping[str, str], other: str) -> None:
        """Alarm: this (account, eventID, rule) was seen before with other content (digest ``other``)."""
        self.log.error("eventID %s seen with two different contents for %s", key["eventID"], f.rule)
        self.metric("EventIdMismatches", f.rule, event.account)
        body = {
            "alert": "event_id_mismatch",
            "rule": f.rule,
            "account": event.account,
            "event_id": key["eventID"],
            "digests": {"first": other, "this": key["digest"]},
            "principal": event.principal_arn,
            "event_name": event.event_name,
            "detail": "Two events with this eventID and different content (account, region, source, name, "
            "parameters or time) reached trailguard. One of them is forged or altered: find who can put events "
            "on the central bus, invoke the engine or write to the archive. Both are judged on their own.",
        }
        subj = f"trailguard CRITICAL: forged or altered copy of event {key['eventID']}"[:100]
        self._publish(
            event.account, subj, body, {"rule": f.rule, "severity": "CRITICAL", "kind": "event_id_mismatch"}, rt
        )

    def _notice(self, event: CloudTrailEvent, f: Finding, rule: Rule | None, rt: Runtime) -> dict[str, Any]:
        """A risky event skipped because of who made it or where: a low-severity notice, not silence.

        A change record skipped so is not raised to a LOW notice (that would page on routine calls): it is
        counted (``ChangeRecordsSilenced``) and written to the audit log only.
        """
        if is_record(f):
            self.metric("ChangeRecordsSilenced", f.rule, event.account)
            self.log.info(
                "change record %s silenced (%s)",
                f.rule,
                f.silenced_by,
                extra={"change_record": record(f, event, "silenced", security_hub="not sent (silenced)")},
            )
            return {"status": "skipped", "detail": f"{f.silenced_by}: change record logged only", "changes": []}
        self.log.info("risky event skipped (%s) for %s: %s", f.silenced_by, f.rule, f.reason)
        self.metric("SilencedRiskyEvents", f.rule, event.account)
        low = replace(f, severity="LOW")
        self._report(event, low, rule, Outcome("skipped", f"not acted on: {f.silenced_by}"), rt)
        return {"status": "skipped", "detail": f"{f.silenced_by}: low-severity notice sent", "changes": []}

    def _act(self, event: CloudTrailEvent, f: Finding, rule: Rule | None, rt: Runtime) -> dict[str, Any]:
        if is_record(f):  # before the live check, IaC de-duplication and any action: a record is only kept
            return self._keep_record(event, f, rule, rt)
        self.metric("Detections", f.rule, event.account)
        caller = self._caller(event, f, rt) if f.decision == "alert" and self.limiter is not None else None
        if caller is not None and f.caller is None:
            f = replace(f, caller=caller)
        live_error = ""
        if f.decision == "alert" and f.lowered_by_caller:
            benign, live_error = self._live_check(event, f, rule, rt)
            if benign is not None:
                return benign
            if live_error:
                f = replace(f, reason=f"{f.reason} (live check failed: {live_error})")
        pipeline = caller.pipeline if caller is not None and caller.kind == "iac" else ""
        if pipeline:
            if self._iac_already_alerted(event, f, pipeline):
                detail = f"IaC drift by {pipeline}: already alerted this hour (one alert per pipeline and hour)"
                return {"status": "suppressed", "detail": detail, "changes": []}
            outcome = Outcome(
                "alerted",
                f"IaC drift by {pipeline}; its further drift alerts this hour are counted (IacDriftSuppressed)",
            )
        elif f.decision == "alert":
            outcome = Outcome("alerted", f.reason)
        else:
            outcome = self._remediate(event, f, rule, rt)
        if live_error and outcome.status == "alerted" and live_error not in outcome.detail:
            outcome = replace(outcome, detail=f"{outcome.detail} (live check failed: {live_error})")
        if not outcome.reported_elsewhere:
            self._report(event, f, rule, outcome, rt)
        return {"status": outcome.status, "detail": outcome.detail, "changes": list(outcome.changes)}

    def _live_check(
        self, event: CloudTrailEvent, f: Finding, rule: Rule | None, rt: Runtime
    ) -> tuple[dict[str, Any] | None, str]:
        """Read the live state before alerting a finding its caller class lowered to alert.

        Runs the rule's remediation ``check`` (read-only, so also in dry run) through the member role.
        Returns ``(skipped outcome, "")`` when the live state is already safe or intended: nothing to
        alert about, only the low-severity notice (as for any skipped risky event), and the IaC pipeline's
        hourly alert is not used up.
        ``(None, "")`` when the risk is there; ``(None, error)`` when the check could not run (the caller
        alerts with the error: a failing check never silences).
        """
        action = rule.remediation.action if rule is not None and rule.remediation is not None else ""
        rem = registry().get(action) if action else None
        if rem is None or rem.check is None:
            return None, ""
        account, region = event.account, event.region or self.factory.engine_region
        try:
            session = self.factory.member(account, region) if rem.needs_member_role else None
            ctx = RemediationContext(replace(f, action=action), event, rt.cfg, account, region, session, self.factory)
            reason = rem.check(ctx)
        except Exception as exc:  # never silent: alert as before, with why the live state could not be read
            self.log.warning("live check %s failed for %s: %s", action, f.rule, exc)
            self.metric("LiveCheckFailures", f.rule, account)
            return None, f"{type(exc).__name__}: {exc}"[:500]
        if reason is None:
            return None, ""
        detail = f"live state benign, not alerted: {reason}"
        self.log.info("%s (%s): %s", f.rule, f.caller.kind if f.caller else "unknown", detail)
        self.metric("LiveStateBenign", f.rule, account)
        # Never silent: the low-severity notice of every skipped risky event (not an alert; it does not use up
        # the pipeline's hourly alert). A change made and reverted before this read still leaves a trace.
        self._report(event, replace(f, severity="LOW"), rule, Outcome("skipped", detail), rt)
        return {"status": "skipped", "detail": detail, "changes": []}, ""

    def _iac_already_alerted(self, event: CloudTrailEvent, f: Finding, pipeline: str) -> bool:
        """True when an alert about the same IaC pipeline (and no less severe) already went out this hour.

        Only alerts whose caller class is ``iac`` with a pipeline are de-duplicated, per (account, pipeline):
        a human's, a service's or an unknown caller's alert is never held back by an IaC one. The pipeline of
        a user-agent or CloudFormation caller includes its principal ARN, so another principal gets its own
        alert; a more severe finding than the one sent is sent too.
        """
        if self.limiter is None:
            return False
        if self.limiter.first_iac_alert(event.account or "unknown", pipeline, SEVERITY_RANK.get(f.severity, 0)):
            return False
        self.log.info("IaC drift by %s (%s): already alerted this hour; counted, not sent", pipeline, f.rule)
        self.metric("IacDriftSuppressed", f.rule, event.account)
        return True

    def _remediate(self, event: CloudTrailEvent, f: Finding, rule: Rule | None, rt: Runtime) -> Outcome:
        action = f.action or ""
        rem = registry().get(action)
        account, region = event.account, event.region or self.factory.engine_region
        if rem is None:
            self.log.error("no remediation is implemented for action %r (rule %s)", action, f.rule)
            self.metric("RemediationsFailed", f.rule, account)
            return Outcome("failed", f"no remediation is implemented for action {action!r}")
        if rt.cfg.dry_run:
            detail = f"dry run: would run {action} on {f.resource.get('id') or f.params} in {account}/{region}"
            self.log.info(
                detail, extra={"would_do": {"action": action, "params": f.params, "account": account, "region": region}}
            )
            self.metric("DryRuns", f.rule, account)
            return Outcome("dry_run", detail)
        session = None
        if rem.needs_member_role:
            try:
                session = self.factory.member(account, region)
            except AssumeRoleError as exc:
                self.log.error("assume-role failed for %s: %s", f.rule, exc)
                self.metric("AssumeRoleFailures", f.rule, account)
                self.metric("RemediationsFailed", f.rule, account)
                self._report_failure_once(event, f, rule, Outcome("failed", str(exc)), rt)
                raise
        ctx = RemediationContext(f, event, rt.cfg, account, region, session, self.factory)
        claim: tuple[str, int, str] | None = None
        try:
            # The live tags are read only when an exemption by tag is configured (``exemptions.resource_tags``,
            # which applies to every rule); the remediation reuses the read (RemediationContext.tags). Never for
            # trailguard's own resource: whoever can tag it must not be able to switch its self-protection off.
            if rem.tags is not None and rt.cfg.exempt_resource_tags and not f.own_resource:
                exempt = rt.cfg.tags_exempt(ctx.tags(rem.tags))
                if exempt:
                    self.log.info("resource is exempt by tag %s; no action", exempt)
                    self.metric("RemediationsSkipped", f.rule, account)
                    return Outcome("skipped", f"resource tagged {exempt}: exempt, no action")
            limited, claim = self._rate_limited(
                event, f, rule, rt, key=rem.resource_key(f.params), account=account, region=region
            )
            if limited is not None:
                return limited
            result = rem.fn(ctx)
        except ParamError as exc:  # a decision/catalog bug: retrying cannot help, a human must look
            self._release(claim)
            self.log.error("remediation %s cannot run: %s", action, exc)
            self.metric("RemediationsFailed", f.rule, account)
            return Outcome("failed", str(exc))
        except Exception as exc:
            self._release(claim)
            self.log.exception("remediation %s failed for %s", action, f.rule)
            self.metric("RemediationsFailed", f.rule, account)
            self._report_failure_once(event, f, rule, Outcome("failed", f"{type(exc).__name__}: {exc}"[:1000]), rt)
            raise RemediationError(f"{action} failed for event {event.event_id}: {exc}") from exc
        if result.status != "remediated" or not result.changes:
            self._release(claim)  # nothing changed: the rate limit counts only actions that changed something
        return self._count_result(f, account, result)

    def _release(self, claim: tuple[str, int, str] | None) -> None:
        if claim is not None and self.limiter is not None:
            self.limiter.release(*claim)

    def _report_failure_once(
        self, event: CloudTrailEvent, f: Finding, rule: Rule | None, outcome: Outcome, rt: Runtime
    ) -> None:
        """Alert a failure on the first attempt only: Lambda retries the event, the humans need one message."""
        if self.limiter is not None:
            key = idempotency_key(event, f.rule)
            if not self.limiter.first_failure(f"{key['account']}#{key['eventID']}#{key['rule']}#{key['digest']}"):
                self.log.info("failure of %s already alerted for this event", f.rule)
                return
        self._report(event, f, rule, outcome, rt)

    def _count_result(self, f: Finding, account: str, result: ActionResult) -> Outcome:
        name = {"remediated": "RemediationsSucceeded", "failed": "RemediationsFailed"}.get(
            result.status, "RemediationsSkipped"
        )
        self.metric(name, f.rule, account)
        log = self.log.warning if result.status == "failed" or result.alert else self.log.info
        log("remediation %s: %s: %s", f.action, result.status, result.detail)
        return Outcome(result.status, result.detail, result.changes)

    def _rate_limited(
        self, event: CloudTrailEvent, f: Finding, rule: Rule | None, rt: Runtime, *, key: str, account: str, region: str
    ) -> tuple[Outcome | None, tuple[str, int, str] | None]:
        """``(outcome if over the limit, the claim to give back if the action changes nothing)``.

        The limit is ``max_actions_per_resource_per_hour`` actions in any 3600 seconds, and never more than
        :attr:`reverts_before_stop` (a remediation changed back that often is fighting someone: stop).
        """
        if self.limiter is None or not key:
            return None, None
        resource = f"{account}/{region}/{key}"
        caller = self._caller(event, f, rt)
        limit = max(1, min(rt.cfg.max_actions_per_resource_per_hour, self.reverts_before_stop))
        d = self.limiter.hit(resource, limit, caller=caller.kind, principal=event.principal_arn)
        if d.allowed:
            return None, (resource, d.window, d.stamp)
        self.limiter.release(resource, d.window, d.stamp)  # a refused action changes nothing
        self.metric("RemediationsSkipped", f.rule, account)
        self.metric("RateLimited", f.rule, account)
        until = datetime.fromtimestamp(d.resumes_at(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        detail = (
            f"rate limit: {len(d.others)} actions on {resource} within the hour (limit {d.limit}); not acting "
            f"before {until} (alert only)"
        )
        self.log.warning(detail)
        reverters = _reverters(d, caller, event.principal_arn)
        notice = self.limiter.flapping(resource, d.window, event.principal_arn, [r["principal"] for r in reverters])
        if notice == "first":
            self.metric("FlappingAlerts", f.rule, account)
            names = ", ".join(f"{r['principal']} ({r['caller']})" for r in reverters)
            body = {
                "alert": "flapping",
                "rule": f.rule,
                "resource": resource,
                "actions_this_hour": d.count,
                "limit": d.limit,
                "remediated_then_reverted": len(d.others),
                "paused_until": until,
                "reverted_by": reverters,
                "detail": f"Remediated {len(d.others)} times within the hour and changed back each time, by {names}. "
                f"Remediation of this resource is stopped (alert only) until {until}. If one of them is a pipeline "
                "that owns the resource, change the pipeline or exempt the resource; otherwise treat it as an attack.",
                "event_id": event.event_id,
                "principal": event.principal_arn,
                "caller": caller.kind,
                "runbook": rt.runbook_url(f.rule),
            }
            subj = subject(f, rule, event, Outcome("failed"))
            subj = ("trailguard FLAPPING: " + subj.split(": ", 1)[-1])[:100]
            self._publish(account, subj, body, {"rule": f.rule, "severity": f.severity, "kind": "flapping"}, rt)
        elif notice == "new-principal":
            # Someone the flapping alert did not name changed the paused resource: they get their own alert.
            self.metric("FlappingNewPrincipal", f.rule, account)
            paused = f"remediation of this resource is paused (flapping) until {until}"
            alert = replace(f, decision="alert", action=None, reason=f"{f.reason} (not remediated: {paused})")
            self._report(event, alert, rule, Outcome("alerted", detail), rt)
        return Outcome("skipped", detail, reported_elsewhere=True), None

    def _caller(self, event: CloudTrailEvent, f: Finding, rt: Runtime) -> Caller:
        """The finding's caller class (set by the evaluator), classified here when a finding lacks it."""
        if f.caller is not None:
            return f.caller
        return classify(event, self.evaluator(rt).cfg)

    # ------------------------------------------------------------------ #
    def _keep_record(self, event: CloudTrailEvent, f: Finding, rule: Rule | None, rt: Runtime) -> dict[str, Any]:
        """A change record (severity INFO): never acted on, never an alert; see :meth:`_record`."""
        if f.caller is None and self.limiter is not None:
            f = replace(f, caller=self._caller(event, f, rt))
        self.metric("ChangeRecords", f.rule, event.account)
        hub = self._record(event, f, rule, Outcome(RECORDED, f.reason), rt)
        return {"status": RECORDED, "detail": f"change record (not an alert); Security Hub: {hub}", "changes": []}

    def _record(self, event: CloudTrailEvent, f: Finding, rule: Rule | None, outcome: Outcome, rt: Runtime) -> str:
        """Keep one change record: one audit-log line, and a Security Hub INFORMATIONAL finding within budget.

        Never SNS, never the alert budget. Returns what became of the Security Hub finding.
        """
        hub = "off (security_hub_findings is false)"
        if rt.cfg.security_hub_findings:
            if not self._record_budget(event.account, f.rule, rt):
                hub = f"not imported: over the hourly budget of {rt.cfg.alerts_per_account_per_hour} for this account"
            else:  # a failed import still leaves the audit log line below
                failed = self._security_hub(event, f, rule, outcome, rt)
                hub = f"import failed: {failed}" if failed else "imported (INFORMATIONAL)"
        self.log.info(
            "change record %s: %s",
            f.rule,
            f.reason[:500],
            extra={"change_record": record(f, event, outcome.status, security_hub=hub)},
        )
        return hub

    def _record_budget(self, account: str, rule: str, rt: Runtime) -> bool:
        """Count one change record's Security Hub import against its account's record budget; False past it.

        A budget of its own (``info#<account>``), never the alert budget: a flood of selected routine calls
        cannot use up the alerts of the account nor set off the "budget exhausted" notice. Past it the record
        is counted (``ChangeRecordsSuppressed``) and kept in the audit log only; no notice is sent.
        """
        if self.limiter is None:
            return True
        d = self.limiter.alert(f"{RECORD_BUDGET_PREFIX}{account or 'unknown'}", rt.cfg.alerts_per_account_per_hour)
        if d.allowed:
            return True
        self.metric("ChangeRecordsSuppressed", rule, account)
        return False

    def _report(self, event: CloudTrailEvent, f: Finding, rule: Rule | None, outcome: Outcome, rt: Runtime) -> None:
        if is_record(f):  # every path that reports a change record (failures included) keeps it as a record
            self._record(event, f, rule, outcome, rt)
            return
        runbook = rt.runbook_url(f.rule)
        body = message(f, rule, event, outcome, runbook=runbook)
        if f.caller is not None and "caller" not in body:
            body["caller"] = {"kind": f.caller.kind, "why": f.caller.why}
            if f.caller.pipeline:
                body["caller"]["pipeline"] = f.caller.pipeline
        sent = self._publish(
            event.account,
            subject(f, rule, event, outcome),
            body,
            {"rule": f.rule, "severity": f.severity, "kind": outcome.status},
            rt,
        )
        if not sent or not rt.cfg.security_hub_findings:
            return
        self._security_hub(event, f, rule, outcome, rt)

    def _security_hub(
        self, event: CloudTrailEvent, f: Finding, rule: Rule | None, outcome: Outcome, rt: Runtime
    ) -> str:
        """Import the finding into Security Hub; "" when imported, else the error's name (logged and counted)."""
        doc = asff(
            f,
            rule,
            event,
            outcome,
            engine_account=self.notifier.engine_account or event.account,
            engine_region=self.factory.engine_region,
            runbook=rt.runbook_url(f.rule),
        )
        try:
            self.notifier.security_hub(doc)
        except (SecurityHubError, Exception) as exc:
            self.log.error("Security Hub import failed for %s: %s", f.rule, exc)
            self.metric("SecurityHubFailures", f.rule, event.account)
            return type(exc).__name__
        return ""

    def _publish(
        self, account: str, subj: str, body: Mapping[str, Any], attributes: Mapping[str, str], rt: Runtime
    ) -> bool:
        """Send one alert if the source account's hourly alert budget allows; False when suppressed.

        A flood of unique forged events from one account must not exhaust SNS, Security Hub or the
        humans: past the budget alerts are counted (``AlertsSuppressed``) and one notice says so.
        """
        if self.limiter is not None:
            source = account or "unknown"
            d = self.limiter.alert(source, rt.cfg.alerts_per_account_per_hour)
            if not d.allowed:
                self.metric("AlertsSuppressed", str(attributes.get("rule", "")), account)
                if self.limiter.first_over_budget(source, d.window):
                    self.notifier.publish(
                        f"trailguard CRITICAL: alert budget exhausted for account {source}"[:100],
                        {
                            "alert": "alert_budget_exhausted",
                            "account": source,
                            "limit": d.limit,
                            "detail": "More alerts than the hourly budget came from this account; the rest of this "
                            "hour's alerts are counted in the AlertsSuppressed metric, not sent. A flood is often "
                            "cover for something else: look at this account's activity now.",
                        },
                        attributes={"rule": "", "severity": "CRITICAL", "kind": "alert_budget"},
                    )
                return False
        self.notifier.publish(subj, body, attributes=attributes)
        return True


def _reverters(d: RateDecision, caller: Caller, principal: str) -> list[dict[str, Any]]:
    """Who changed the resource back: the principals of the remediated changes in the window, and this one.

    Each entry: ``principal`` (ARN), ``caller`` (class) and ``changes`` (how many of the window's changes).
    """
    counts: dict[tuple[str, str], int] = {}
    for s in d.others:
        counts[(s.principal, s.caller)] = counts.get((s.principal, s.caller), 0) + 1
    now = (principal or "unknown", caller.kind)
    counts[now] = counts.get(now, 0) + 1
    return [{"principal": p, "caller": k, "changes": n} for (p, k), n in sorted(counts.items())]
