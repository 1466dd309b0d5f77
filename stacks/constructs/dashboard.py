"""The operator dashboard and the alarms that need a human (issue 8).

Plain ``aws_cloudwatch``: the dashboard is built around SEARCH expressions over the
``Trailguard`` namespace, so a per-rule (or per-account) series appears as soon as the engine
publishes it, without hard-coding rule ids; cdk-monitoring-constructs would add its own
Lambda/SQS alarm set on top of the ones the detection stack already has.

Metric contract (``flush`` in ``trailguard_engine.handler`` / ``reconcile`` / ``drift``): every
count is published under ``[service]`` (the total) and, where it applies, ``[service, rule]``,
``[service, account]`` (engine) or ``[service, invariant]`` (drift), where ``service`` is the
function's ``POWERTOOLS_SERVICE_NAME``. Alarms use the ``[service]`` set
(alarms cannot use SEARCH); graphs use SEARCH over the per-rule / per-account sets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

NAMESPACE = "Trailguard"
DASHBOARD_NAME = "trailguard"
ENGINE_SERVICE = "trailguard-engine"
RECONCILE_SERVICE = "trailguard-reconcile"
DRIFT_SERVICE = "trailguard-drift"
VERIFY_SERVICE = "trailguard-verify"

#: Remediation outcomes, in the order they are stacked on the graphs.
OUTCOMES = ("RemediationsSucceeded", "RemediationsFailed", "RemediationsSkipped", "DryRuns")
#: Engine safety counters worth a glance (rejections, loops, rate limits, side channels).
SAFETY = (
    "RejectedEvents",
    "AssumeRoleFailures",
    "FlappingAlerts",
    "RateLimited",
    "Duplicates",
    "PatternMismatches",
    "FindingsSkipped",
    "SecurityHubFailures",
    "RuntimeConfigErrors",
    "StaleEvents",
    "LogFileOnlyFindings",
    "SilencedRiskyEvents",
    "EventIdMismatches",
    "AlertsSuppressed",
    "VerifiedLogFileFindings",
    "LogFileHashMismatches",
    "LedgerReadFailures",
    # caller classes (issue 15): IaC drift alerts de-duplicated per pipeline and hour, someone new changing a
    # paused (flapping) resource, IaC/service changes found benign by the live check, live checks that failed
    "IacDriftSuppressed",
    "FlappingNewPrincipal",
    "LiveStateBenign",
    "LiveCheckFailures",
    # issue 14: windowed credential-access thresholds (counted, fired, suppressed in an open window, state
    # table errors, each of which alerts on its own) and the organization account list being unavailable
    # (shares with specific accounts then alert as unverified)
    "ThresholdCounted",
    "ThresholdFired",
    "ThresholdSuppressed",
    "ThresholdStateErrors",
    "OrgAccountsUnavailable",
    # first-seen rules (fired, seen before, still learning, state-table errors that alert on their own) and change
    # records (severity INFO: filed, silenced by who made them, past their own Security Hub budget; never paged)
    "FirstSeenFired",
    "FirstSeenKnown",
    "FirstSeenLearning",
    "FirstSeenStateErrors",
    "ChangeRecords",
    "ChangeRecordsSilenced",
    "ChangeRecordsSuppressed",
)
#: Second path (log-file reconciliation, ``trailguard_engine.reconcile``): volume and problems.
RECONCILE_VOLUME = (
    "FilesScanned",
    "EventsScanned",
    "FilesSkipped",
    "TestEvents",
    "AlreadyHandled",
    "DigestsForwarded",
    "AwaitingDigest",
    "Rescans",
    "RehandedAfterVerification",
)
RECONCILE_PROBLEMS = (
    "HandOffFailures",
    "CorruptFiles",
    "FilesMissing",
    "RejectedRecords",
    "BadMessages",
    "RescansUnverified",
)
#: Drift sweep (``trailguard_engine.drift``), published in total and by ``invariant``.
DRIFT_METRICS = ("DriftDetected", "DriftRepaired", "DriftRepairFailed", "DriftDryRuns", "DriftCheckErrors")
#: The member accounts' forwarding DLQs, read by the drift sweep (issue 20): in total and by ``account``.
MEMBER_DLQ_METRICS = ("MemberDlqMessages", "MemberDlqUnreadable")
#: Continuous log-file integrity verification (``trailguard_engine.verify_digests``), published under [service].
INTEGRITY_VOLUME = ("DigestsVerified", "LogFilesVerified", "RescansRequested")
INTEGRITY_PROBLEMS = (
    "IntegrityFailures",
    "DigestsMissing",
    "LogFilesNotChecked",
    "SuspectFiles",
    "DigestsSkipped",
    "BadMessages",
    "SecurityHubFailures",
)
#: Oldest message on the reconciliation queue before a human should look (log files arrive ~5 min late).
RECONCILE_BACKLOG_SECONDS = 3600

_PERIOD = cdk.Duration.minutes(5)


@dataclass(frozen=True)
class HumanAlarm:
    """One alarm the dashboard adds: metric name, service dimension, period and severity."""

    id: str
    metric: str
    service: str
    description: str
    period: cdk.Duration = _PERIOD
    severity: str = "high"


#: Custom-metric alarms (the Lambda/DLQ alarms live in ``stacks.detection``): each needs a human.
HUMAN_ALARMS: tuple[HumanAlarm, ...] = (
    HumanAlarm(
        "RemediationsFailedAlarm",
        "RemediationsFailed",
        ENGINE_SERVICE,
        "a remediation failed: the risky change may still be in place; see the engine logs and the alert",
    ),
    HumanAlarm(
        "AssumeRoleFailuresAlarm",
        "AssumeRoleFailures",
        ENGINE_SERVICE,
        "the engine could not assume trailguard-remediation in a member account: the member stack is missing, "
        "out of date or blocked",
    ),
    HumanAlarm(
        "FlappingAlarm",
        "FlappingAlerts",
        ENGINE_SERVICE,
        "a resource keeps being changed back after remediation (per-resource rate limit hit): someone or "
        "something is fighting the engine",
    ),
    HumanAlarm(
        "EventIdMismatchesAlarm",
        "EventIdMismatches",
        ENGINE_SERVICE,
        "two events with the same eventID and different content reached the engine: one is forged or altered; "
        "find who can put events on the central bus, invoke the engine or write to the archive",
    ),
    HumanAlarm(
        "AlertsSuppressedAlarm",
        "AlertsSuppressed",
        ENGINE_SERVICE,
        "an account sent more alerts than its hourly budget; the rest are only counted: a flood is often cover "
        "for something else",
    ),
    HumanAlarm(
        "HandOffFailuresAlarm",
        "HandOffFailures",
        RECONCILE_SERVICE,
        "the log-file path found an event EventBridge missed but could not hand it to the engine: "
        "nothing has acted on it; see the reconcile logs",
    ),
    HumanAlarm(
        "IntegrityFailuresAlarm",
        "IntegrityFailures",
        VERIFY_SERVICE,
        "a CloudTrail digest or log file failed verification (modified, deleted or unlisted log file, bad "
        "signature, broken chain): preserve the evidence, see docs/runbooks/integrity-failure.md",
        severity="critical",
    ),
    HumanAlarm(
        "DigestsMissingAlarm",
        "DigestsMissing",
        VERIFY_SERVICE,
        "no CloudTrail digest arrived for an account and region for over two hours: log file validation "
        "off, trail stopped or digests deleted; see docs/runbooks/integrity-failure.md",
        period=cdk.Duration.hours(1),
        severity="critical",
    ),
    HumanAlarm(
        "MissedByEventBridgeAlarm",
        "MissedByEventBridge",
        RECONCILE_SERVICE,
        "events reached the engine only through the log-file path in the last hour (EventBridge delivery "
        "is best effort); a steady rate means a forwarding rule or member stack is missing",
        period=cdk.Duration.hours(1),
        severity="low",
    ),
)


def search(expression: str, stat: str = "Sum", period: cdk.Duration = _PERIOD) -> str:
    """A CloudWatch SEARCH expression over ``expression`` (a search term, quoted as CloudWatch needs)."""
    return f"SEARCH('{expression}', '{stat}', {int(period.to_seconds())})"


def _names(metrics: Sequence[str]) -> str:
    return " OR ".join(f'"{m}"' for m in metrics)


def _by(dimension: str, metrics: Sequence[str], service: str) -> str:
    """SEARCH term: the metrics, split by ``dimension`` (``rule``, ``account``, ``invariant``), for one service."""
    return f'{{{NAMESPACE},{dimension},service}} service="{service}" MetricName=({_names(metrics)})'


def _totals(metrics: Sequence[str], service: str | None = None) -> str:
    """SEARCH term: the metrics under the ``[service]`` dimension set only (no double counting)."""
    where = f' service="{service}"' if service else ""
    return f"{{{NAMESPACE},service}}{where} MetricName=({_names(metrics)})"


#: CloudWatch dynamic labels, so each SEARCH result is named by what differs between them.
BY_RULE = "${PROP('Dim.rule')} ${PROP('MetricName')}"
BY_ACCOUNT = "${PROP('Dim.account')}"
BY_METRIC = "${PROP('MetricName')}"
BY_INVARIANT = "${PROP('Dim.invariant')} ${PROP('MetricName')}"


def _expr(term: str, *, label: str, period: cdk.Duration = _PERIOD) -> cw.MathExpression:
    """A SEARCH series with a (dynamic) label."""
    return cw.MathExpression(expression=search(term, "Sum", period), using_metrics={}, label=label, period=period)


class OperatorDashboard(Construct):
    """CloudWatch dashboard ``trailguard`` plus the custom-metric alarms that publish to the alert topic."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        dead_letter_queues: Mapping[str, sqs.IQueue],
        reconcile_queue: sqs.IQueue,
        topic: sns.ITopic,
        existing_alarms: Sequence[cw.IAlarm] = (),
    ) -> None:
        super().__init__(scope, id)
        self.alarms: list[cw.Alarm] = [self._alarm(a, topic) for a in HUMAN_ALARMS]
        self.alarms.append(self._backlog_alarm(reconcile_queue, topic))
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=DASHBOARD_NAME,
            default_interval=cdk.Duration.days(1),
            period_override=cw.PeriodOverride.INHERIT,
        )
        d = self.dashboard
        d.add_widgets(
            cw.TextWidget(
                markdown=(
                    "# trailguard\n"
                    "Detections and remediations by rule and outcome (namespace `Trailguard`), the log-file "
                    "path (*missed by EventBridge*), dead-letter queues and the functions. "
                    "Runtime switches (dry_run, rule modes): SSM parameter `/trailguard/runtime-config`. "
                    "Runbooks: `docs/runbooks/`."
                ),
                width=24,
                height=2,
            )
        )
        d.add_widgets(
            cw.GraphWidget(
                title="Detections by rule",
                left=[_expr(_by("rule", ["Detections"], ENGINE_SERVICE), label="${PROP('Dim.rule')}")],
                width=12,
                height=6,
                stacked=True,
            ),
            cw.GraphWidget(
                title="Remediation outcomes by rule",
                left=[_expr(_by("rule", OUTCOMES, ENGINE_SERVICE), label=BY_RULE)],
                width=12,
                height=6,
            ),
        )
        d.add_widgets(
            cw.GraphWidget(
                title="Remediation outcomes (all rules)",
                left=[_expr(_totals(("Invocations", "Detections", *OUTCOMES), ENGINE_SERVICE), label=BY_METRIC)],
                width=8,
                height=6,
            ),
            cw.GraphWidget(
                title="Detections by account",
                left=[_expr(_by("account", ["Detections"], ENGINE_SERVICE), label=BY_ACCOUNT)],
                width=8,
                height=6,
                stacked=True,
            ),
            cw.GraphWidget(
                title="Engine safety: rejections, assume-role failures, flapping, rate limits",
                left=[_expr(_totals(SAFETY, ENGINE_SERVICE), label=BY_METRIC)],
                width=8,
                height=6,
            ),
        )
        d.add_widgets(
            cw.SingleValueWidget(
                title="Missed by EventBridge (caught from log files), last hour",
                metrics=[
                    _expr(
                        _totals(["MissedByEventBridge"], RECONCILE_SERVICE),
                        label="missed by EventBridge",
                        period=cdk.Duration.hours(1),
                    )
                ],
                width=6,
                height=6,
            ),
            cw.GraphWidget(
                title="Missed by EventBridge, by rule",
                left=[_expr(_by("rule", ["MissedByEventBridge"], RECONCILE_SERVICE), label=BY_RULE)],
                width=6,
                height=6,
                stacked=True,
            ),
            cw.GraphWidget(
                title="Log-file reconciliation: files and events",
                left=[_expr(_totals(RECONCILE_VOLUME, RECONCILE_SERVICE), label=BY_METRIC)],
                width=6,
                height=6,
            ),
            cw.GraphWidget(
                title="Log-file reconciliation: problems",
                left=[_expr(_totals(RECONCILE_PROBLEMS, RECONCILE_SERVICE), label=BY_METRIC)],
                width=6,
                height=6,
            ),
        )
        d.add_widgets(
            cw.GraphWidget(
                title="Log-file integrity: digests and log files verified",
                left=[_expr(_totals(INTEGRITY_VOLUME, VERIFY_SERVICE), label=BY_METRIC)],
                width=12,
                height=5,
            ),
            cw.GraphWidget(
                title="Log-file integrity: failures, missing digests (should be 0)",
                left=[_expr(_totals(INTEGRITY_PROBLEMS, VERIFY_SERVICE), label=BY_METRIC)],
                width=12,
                height=5,
            ),
        )
        d.add_widgets(
            cw.GraphWidget(
                title="Member forwarding DLQs by account: messages, unreadable queues (should be 0)",
                left=[
                    _expr(
                        _by("account", MEMBER_DLQ_METRICS, DRIFT_SERVICE),
                        label=f"{BY_ACCOUNT} ${{PROP('MetricName')}}",
                        period=cdk.Duration.hours(1),
                    )
                ],
                width=24,
                height=5,
            ),
        )
        d.add_widgets(
            cw.GraphWidget(
                title="Drift sweep by invariant",
                left=[
                    _expr(
                        _by("invariant", DRIFT_METRICS, DRIFT_SERVICE),
                        label=BY_INVARIANT,
                        period=cdk.Duration.hours(1),
                    )
                ],
                width=24,
                height=5,
            ),
        )
        d.add_widgets(
            cw.GraphWidget(
                title="Dead-letter queues: messages waiting (should be 0)",
                left=[
                    q.metric_approximate_number_of_messages_visible(label=name, period=_PERIOD, statistic="Maximum")
                    for name, q in dead_letter_queues.items()
                ],
                width=12,
                height=6,
            ),
            cw.GraphWidget(
                title="Reconciliation queue: depth and oldest message (s)",
                left=[
                    reconcile_queue.metric_approximate_number_of_messages_visible(
                        label="visible", period=_PERIOD, statistic="Maximum"
                    )
                ],
                right=[
                    reconcile_queue.metric_approximate_age_of_oldest_message(
                        label="oldest (s)", period=_PERIOD, statistic="Maximum"
                    )
                ],
                width=12,
                height=6,
            ),
        )
        d.add_widgets(
            cw.GraphWidget(
                title="Lambda errors / invocations",
                left=[fn.metric_errors(label=f"{n} errors", period=_PERIOD) for n, fn in functions.items()],
                right=[fn.metric_invocations(label=f"{n} invocations", period=_PERIOD) for n, fn in functions.items()],
                width=8,
                height=6,
            ),
            cw.GraphWidget(
                title="Lambda duration p99 (ms)",
                left=[
                    fn.metric_duration(label=f"{n} p99", period=_PERIOD, statistic="p99") for n, fn in functions.items()
                ],
                width=8,
                height=6,
            ),
            cw.GraphWidget(
                title="Lambda throttles",
                left=[fn.metric_throttles(label=n, period=_PERIOD) for n, fn in functions.items()],
                width=8,
                height=6,
            ),
        )
        d.add_widgets(
            cw.AlarmStatusWidget(
                title="Alarms that need a human",
                alarms=[*existing_alarms, *self.alarms],
                width=24,
                height=4,
            )
        )

    def _alarm(self, spec: HumanAlarm, topic: sns.ITopic) -> cw.Alarm:
        metric = cw.Metric(
            namespace=NAMESPACE,
            metric_name=spec.metric,
            dimensions_map={"service": spec.service},
            statistic="Sum",
            period=spec.period,
        )
        alarm = metric.create_alarm(
            self,
            spec.id,
            alarm_description=f"trailguard [{spec.severity}]: {spec.description}",
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(topic))
        return alarm

    def _backlog_alarm(self, queue: sqs.IQueue, topic: sns.ITopic) -> cw.Alarm:
        alarm = queue.metric_approximate_age_of_oldest_message(period=_PERIOD, statistic="Maximum").create_alarm(
            self,
            "ReconcileBacklogAlarm",
            alarm_description=(
                f"trailguard [high]: a log-file notification has waited more than {RECONCILE_BACKLOG_SECONDS} s: "
                "the reconcile function is failing or throttled, so missed events are not being caught up"
            ),
            threshold=RECONCILE_BACKLOG_SECONDS,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(topic))
        return alarm
