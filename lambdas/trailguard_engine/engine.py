"""The remediation engine core: decide with ``evaluate``, then act safely and report.

``Engine.handle(payload)`` accepts ``{"trailguard_rule": id, "event": envelope}``
(what the central EventBridge rules send) or a bare envelope / CloudTrail record
(then every matching rule is evaluated). Bad input is reported and counted,
never raised: raising would make Lambda retry a poison event.

For each finding that is not ``skip`` the engine, once per (eventID, rule):

1. alert-only findings: SNS message + Security Hub finding;
2. remediate findings: honour ``dry_run``; assume the member role in the
   event's account and region (a failure alerts, counts ``AssumeRoleFailures``
   and re-raises); check the resource's live tags against the exemption tags;
   apply the per-resource rate limit (over the limit: no action and one
   "flapping" alert per resource per hour); run the remediation; report.
   Any AWS error in the remediation is alerted and re-raised for the DLQ.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from trailguard_engine.clients import ClientFactory
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.exceptions import AssumeRoleError, RejectedEvent, RemediationError
from trailguard_engine.model import Finding, Rule
from trailguard_engine.notify import Notifier, Outcome, SecurityHubError, asff, message, subject
from trailguard_engine.remediations import ActionResult, ParamError, RemediationContext, registry
from trailguard_engine.settings import Runtime
from trailguard_engine.state import Idempotency, RateLimiter


class Log(Protocol):
    def info(self, msg: object, *args: Any, **kwargs: Any) -> Any: ...
    def warning(self, msg: object, *args: Any, **kwargs: Any) -> Any: ...
    def error(self, msg: object, *args: Any, **kwargs: Any) -> Any: ...
    def exception(self, msg: object, *args: Any, **kwargs: Any) -> Any: ...


#: (metric name, rule id or "", account or "") -> counted by the handler into EMF.
MetricFn = Callable[[str, str, str], None]


@dataclass
class Engine:
    """Build once per Lambda container; ``runtime`` is re-read (cached) per call by the handler."""

    factory: ClientFactory
    notifier: Notifier
    idempotency: Idempotency | None
    limiter: RateLimiter | None
    rules: tuple[Rule, ...] | None = None
    log: Log = field(default_factory=lambda: logging.getLogger("trailguard.engine"))
    metric: MetricFn = lambda name, rule, account: None

    def __post_init__(self) -> None:
        self._evaluators: dict[int, tuple[Runtime, Evaluator]] = {}

    # ------------------------------------------------------------------ #
    def evaluator(self, runtime: Runtime) -> Evaluator:
        hit = self._evaluators.get(id(runtime))
        if hit is None or hit[0] is not runtime:
            self._evaluators.clear()
            hit = (runtime, Evaluator(self.rules, runtime.cfg))
            self._evaluators[id(runtime)] = hit
        return hit[1]

    def handle(self, payload: Any, runtime: Runtime) -> dict[str, Any]:
        """Process one Lambda input; always returns a JSON-able summary for bad input."""
        rule_id: str | None = None
        obj = payload
        if isinstance(payload, Mapping) and "trailguard_rule" in payload:
            rid = payload.get("trailguard_rule")
            if not isinstance(rid, str) or not rid:
                return self._reject("trailguard_rule is not a non-empty string")
            rule_id, obj = rid, payload.get("event")
        return self.process(obj, rule_id, runtime)

    def process(self, obj: Any, rule_id: str | None, runtime: Runtime) -> dict[str, Any]:
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
        if rule_id is not None and not result.findings:
            # The EventBridge rule matched but our pattern does not: catalog and deployment disagree.
            self.log.warning("event does not match the pattern of rule %s", rule_id)
            self.metric("PatternMismatches", rule_id, event.account)
        outcomes = [self._finding(event, f, ev_.by_id.get(f.rule), runtime) for f in result.findings]
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
    def _finding(self, event: CloudTrailEvent, f: Finding, rule: Rule | None, rt: Runtime) -> dict[str, Any]:
        base = {**f.to_json(), "resource": dict(f.resource)}
        if f.decision == "skip":
            self.log.info("no action for %s: %s", f.rule, f.reason)
            self.metric("FindingsSkipped", f.rule, event.account)
            return {**base, "status": "skipped"}
        key = {"eventID": event.event_id or event.envelope_id, "rule": f.rule}
        if self.idempotency is None:
            return {**base, **self._act(event, f, rule, rt), "duplicate": False}
        out, ran = self.idempotency.once(key, lambda: self._act(event, f, rule, rt))
        if not ran:
            self.log.info("duplicate of an event already handled for %s; no action", f.rule)
            self.metric("Duplicates", f.rule, event.account)
        return {**base, **out, "duplicate": not ran}

    def _act(self, event: CloudTrailEvent, f: Finding, rule: Rule | None, rt: Runtime) -> dict[str, Any]:
        self.metric("Detections", f.rule, event.account)
        outcome = Outcome("alerted", f.reason) if f.decision == "alert" else self._remediate(event, f, rule, rt)
        if not outcome.reported_elsewhere:
            self._report(event, f, rule, outcome, rt)
        return {"status": outcome.status, "detail": outcome.detail, "changes": list(outcome.changes)}

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
                self._report(event, f, rule, Outcome("failed", str(exc)), rt)
                raise
        ctx = RemediationContext(f, event, rt.cfg, account, region, session, self.factory)
        try:
            if rem.tags is not None:
                exempt = rt.cfg.tags_exempt(rem.tags(ctx))
                if exempt:
                    self.log.info("resource is exempt by tag %s; no action", exempt)
                    self.metric("RemediationsSkipped", f.rule, account)
                    return Outcome("skipped", f"resource tagged {exempt}: exempt, no action")
            limited = self._rate_limited(
                event, f, rule, rt, key=rem.resource_key(f.params), account=account, region=region
            )
            if limited is not None:
                return limited
            result = rem.fn(ctx)
        except ParamError as exc:  # a decision/catalog bug: retrying cannot help, a human must look
            self.log.error("remediation %s cannot run: %s", action, exc)
            self.metric("RemediationsFailed", f.rule, account)
            return Outcome("failed", str(exc))
        except Exception as exc:
            self.log.exception("remediation %s failed for %s", action, f.rule)
            self.metric("RemediationsFailed", f.rule, account)
            self._report(event, f, rule, Outcome("failed", f"{type(exc).__name__}: {exc}"[:1000]), rt)
            raise RemediationError(f"{action} failed for event {event.event_id}: {exc}") from exc
        return self._count_result(f, account, result)

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
    ) -> Outcome | None:
        if self.limiter is None or not key:
            return None
        resource = f"{account}/{region}/{key}"
        d = self.limiter.hit(resource, rt.cfg.max_actions_per_resource_per_hour)
        if d.allowed:
            return None
        self.metric("RemediationsSkipped", f.rule, account)
        self.metric("RateLimited", f.rule, account)
        detail = f"rate limit: {d.count} actions on {resource} this hour (limit {d.limit}); not acting"
        self.log.warning(detail)
        if self.limiter.first_flap(resource, d.window):
            self.metric("FlappingAlerts", f.rule, account)
            body = {
                "alert": "flapping",
                "rule": f.rule,
                "resource": resource,
                "actions_this_hour": d.count,
                "limit": d.limit,
                "detail": "The same resource keeps being changed back. Remediation is paused for this resource until "
                "the next hour. Find who or what reverts it (see the events of this resource).",
                "event_id": event.event_id,
                "principal": event.principal_arn,
                "runbook": rt.runbook_url(f.rule),
            }
            subj = subject(f, rule, event, Outcome("failed"))
            subj = ("trailguard FLAPPING: " + subj.split(": ", 1)[-1])[:100]
            self.notifier.publish(subj, body, attributes={"rule": f.rule, "severity": f.severity, "kind": "flapping"})
        return Outcome("skipped", detail, reported_elsewhere=True)

    # ------------------------------------------------------------------ #
    def _report(self, event: CloudTrailEvent, f: Finding, rule: Rule | None, outcome: Outcome, rt: Runtime) -> None:
        runbook = rt.runbook_url(f.rule)
        body = message(f, rule, event, outcome, runbook=runbook)
        self.notifier.publish(
            subject(f, rule, event, outcome),
            body,
            attributes={"rule": f.rule, "severity": f.severity, "kind": outcome.status},
        )
        if not rt.cfg.security_hub_findings:
            return
        doc = asff(
            f,
            rule,
            event,
            outcome,
            engine_account=self.notifier.engine_account or event.account,
            engine_region=self.factory.engine_region,
            runbook=runbook,
        )
        try:
            self.notifier.security_hub(doc)
        except (SecurityHubError, Exception) as exc:
            self.log.error("Security Hub import failed for %s: %s", f.rule, exc)
            self.metric("SecurityHubFailures", f.rule, event.account)
