"""Log-file reconciliation (``trailguard_engine.reconcile.handler``): the second path.

EventBridge delivers CloudTrail events on a best-effort basis; CloudTrail log files reach
the archive bucket a few minutes after the call, every record included. Each new log file
raises an S3 notification, queued in SQS; this function reads the file as a stream
(``get_object`` body -> gzip -> :func:`~trailguard_engine.logfile.iter_file_records`, never
the whole file in memory), judges every record with the same catalog and decision code as
the engine, and hands each finding that is not ``skip`` to the engine.

* **Dedupe.** A finding whose idempotency record (the engine's key: account, CloudTrail
  ``eventID``, rule id and content digest) already exists was handled through EventBridge:
  nothing is done. Otherwise it is counted as ``MissedByEventBridge`` (by rule) and handed to
  the engine function (asynchronous invoke, ``{"trailguard_rule": id, "event": envelope,
  "origin": "log-file"}``). The engine records the key before acting, so a second delivery of
  the same file leads to one alert.
* **Trusts no file blindly.** A record whose account differs from the account in the file's key
  (``AWSLogs/[org-id/]<account>/``) is counted as ``RejectedRecords`` and alerted once per file
  (``log_file_account_mismatch``), never handed over: whoever can write one account's folder must
  not make trailguard act in another. The engine treats ``origin: log-file`` findings as
  alert-only until the file's integrity is verified against the CloudTrail digest chain.
  The engine function acts, not this one: the member remediation roles trust only the
  engine and drift roles, and the engine owns retries, the on-failure queue and alerts.
* **Mirrors EventBridge.** A read-only record is ignored for rules deployed without
  read-only events (``ENABLED``): EventBridge would never have delivered it.
* **Failures.** SQS partial batch responses: one bad file does not redo the batch.
  A corrupt or truncated file is counted (``CorruptFiles``), alerted on its first receive,
  and its message fails (retried, then the DLQ, which is alarmed); the records read before
  the damage are processed. A message that is not an S3 notification is counted
  (``BadMessages``) and fails the same way. ``s3:TestEvent`` messages and objects that are
  not CloudTrail log files (digests, Insights) are counted and consumed.

Metrics (namespace ``POWERTOOLS_METRICS_NAMESPACE``): ``FilesScanned``, ``EventsScanned``,
``MissedByEventBridge``, ``AlreadyHandled``, ``FilesSkipped``, ``TestEvents``, ``BadMessages``,
``CorruptFiles``, ``FilesMissing``, ``RejectedRecords``, ``HandOffFailures``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from trailguard_engine.clients import ClientFactory, invoked_account
from trailguard_engine.engine import ORIGIN_LOG_FILE, idempotency_key
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.exceptions import EngineError, RejectedEvent
from trailguard_engine.logfile import LogFileError, iter_file_records
from trailguard_engine.model import Rule
from trailguard_engine.notify import Notifier
from trailguard_engine.remediations import error_code
from trailguard_engine.settings import Runtime, RuntimeLoader, Settings
from trailguard_engine.state import Idempotency

#: ``AWSLogs/[o-orgid/]<account>/CloudTrail/<region>/YYYY/MM/DD/<name>.json.gz``. Digest
#: files (``CloudTrail-Digest/``) and Insights (``CloudTrail-Insight/``) do not match.
LOG_KEY = re.compile(
    r"^AWSLogs/(?:o-[a-z0-9]{10,32}/)?(?P<account>\d{12})/CloudTrail/[a-z0-9-]+/\d{4}/\d{2}/\d{2}/[^/]+\.json\.gz$"
)
#: Metrics published per rule as well as in total.
_RULE_METRICS = frozenset({"MissedByEventBridge", "AlreadyHandled", "HandOffFailures"})

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "trailguard-reconcile"))


class ReconcileError(EngineError):
    """Base class of the failures that fail one SQS message (it is retried, then dead-lettered)."""


class BadMessage(ReconcileError):
    """The SQS message body is not an S3 event notification."""


class CorruptLogFile(ReconcileError):
    """The log file is corrupt or truncated (records before the damage were processed)."""


class HandOffError(ReconcileError):
    """The engine could not be invoked for one or more findings."""


@dataclass(frozen=True, slots=True)
class LogObject:
    """One object named by an S3 event notification."""

    bucket: str
    key: str
    size: int = 0


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    """The reconcile function's environment (names fixed by ``stacks/detection.py``)."""

    engine: Settings
    archive_bucket: str
    engine_function: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReconcileSettings:
        e = os.environ if env is None else env
        return cls(
            engine=Settings.from_env(e),
            archive_bucket=e.get("TRAILGUARD_ARCHIVE_BUCKET", ""),
            engine_function=e.get("TRAILGUARD_ENGINE_FUNCTION", ""),
        )

    def missing(self) -> list[str]:
        """Names of required variables that are empty."""
        required = {
            "TRAILGUARD_ARCHIVE_BUCKET": self.archive_bucket,
            "TRAILGUARD_ENGINE_FUNCTION": self.engine_function,
            "TRAILGUARD_STATE_TABLE": self.engine.state_table,
            "TRAILGUARD_CONFIG_PARAMETER": self.engine.config_parameter,
        }
        return [k for k, v in required.items() if not v]


@dataclass(slots=True)
class FileScan:
    """What one log file contained and what was done about it."""

    obj: LogObject
    records: int = 0
    findings: int = 0
    handed_off: int = 0
    already_handled: int = 0
    #: Records for another account than the one in the key (a planted or misplaced file): never acted on.
    foreign: int = 0
    errors: list[str] = field(default_factory=list)


def is_log_file(key: str) -> bool:
    """True for a CloudTrail log file key (not a digest, not an Insights file)."""
    return bool(LOG_KEY.match(key))


def key_account(key: str) -> str | None:
    """The account a log file's key says it belongs to (CloudTrail writes each account's events under
    ``AWSLogs/[org-id/]<account>/``), or None for a key that is not a log file."""
    m = LOG_KEY.match(key)
    return m.group("account") if m else None


def parse_notification(body: str) -> list[LogObject]:
    """The objects created according to one S3 notification body; ``[]`` for ``s3:TestEvent``.

    Raises :class:`BadMessage` with a one-line reason for anything else.
    """
    try:
        doc = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise BadMessage(f"message body is not JSON ({exc})") from exc
    if not isinstance(doc, Mapping):
        raise BadMessage(f"message body is a JSON {type(doc).__name__}, not an S3 notification")
    if doc.get("Event") == "s3:TestEvent":
        return []
    records = doc.get("Records")
    if not isinstance(records, list) or not records:
        raise BadMessage("message body has no Records list: not an S3 event notification")
    out: list[LogObject] = []
    for i, rec in enumerate(records):
        s3 = rec.get("s3") if isinstance(rec, Mapping) else None
        bucket = s3.get("bucket") if isinstance(s3, Mapping) else None
        obj = s3.get("object") if isinstance(s3, Mapping) else None
        name = bucket.get("name") if isinstance(bucket, Mapping) else None
        key = obj.get("key") if isinstance(obj, Mapping) else None
        if rec.get("eventSource") != "aws:s3" or not isinstance(name, str) or not isinstance(key, str):
            raise BadMessage(f"Records[{i}] is not an S3 object event (no s3.bucket.name / s3.object.key)")
        event_name = rec.get("eventName")
        if not isinstance(event_name, str) or not event_name.startswith("ObjectCreated:"):
            continue
        size = obj.get("size") if isinstance(obj, Mapping) else 0
        out.append(LogObject(name, unquote_plus(key), size if isinstance(size, int) else 0))
    return out


class Reconciler:
    """Scans log files and hands missed findings to the engine. Build once per container."""

    def __init__(
        self,
        *,
        settings: ReconcileSettings,
        factory: ClientFactory,
        notifier: Notifier,
        seen: Idempotency,
        rules: tuple[Rule, ...] | None = None,
        log: Any = logger,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.notifier = notifier
        self.seen = seen
        self.rules = rules
        self.log = log
        self.counts: Counter[tuple[str, str]] = Counter()
        self._evaluator: tuple[Runtime, Evaluator] | None = None

    def count(self, name: str, rule: str = "", n: int = 1) -> None:
        self.counts[(name, rule)] += n

    def evaluator(self, runtime: Runtime) -> Evaluator:
        if self._evaluator is None or self._evaluator[0] is not runtime:
            cfg = runtime.cfg
            if cfg.engine_account is None and self.notifier.engine_account:
                cfg = replace(cfg, engine_account=self.notifier.engine_account)  # where the loop guard trusts roles
            self._evaluator = (runtime, Evaluator(self.rules, cfg))
        return self._evaluator[1]

    # ------------------------------------------------------------------ #
    def handle_message(self, record: SQSRecord, runtime: Runtime) -> list[FileScan]:
        """Process one SQS message; raises :class:`ReconcileError` (or an AWS error) to fail it."""
        try:
            objects = parse_notification(record.body)
        except BadMessage as exc:
            self.count("BadMessages")
            self.log.error("bad message %s: %s", record.message_id, exc)
            raise
        if not objects:
            self.count("TestEvents")
            self.log.info("message %s is an s3:TestEvent or has no created objects; nothing to scan", record.message_id)
            return []
        scans, failures = [], []
        for obj in objects:
            reason = self._skip_reason(obj)
            if reason:
                self.count("FilesSkipped")
                self.log.info("skipping s3://%s/%s: %s", obj.bucket, obj.key, reason)
                continue
            try:
                scans.append(self.scan(obj, runtime, first_receive=_receive_count(record) <= 1))
            except ReconcileError as exc:
                failures.append(str(exc))
        if failures:
            raise ReconcileError("; ".join(failures)[:2000])
        return scans

    def _skip_reason(self, obj: LogObject) -> str | None:
        if obj.bucket != self.settings.archive_bucket:
            return f"not the archive bucket ({self.settings.archive_bucket})"
        if not is_log_file(obj.key):
            return "not a CloudTrail log file (digest, Insights or other object)"
        return None

    def scan(self, obj: LogObject, runtime: Runtime, *, first_receive: bool = True) -> FileScan:
        """Stream one log file and hand its missed findings to the engine."""
        scan = FileScan(obj)
        s3 = self.factory.engine("s3")
        try:
            body = s3.get_object(Bucket=obj.bucket, Key=obj.key)["Body"]
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "NoSuchBucket"):
                self.count("FilesMissing")
                self.log.warning("s3://%s/%s no longer exists; nothing to scan", obj.bucket, obj.key)
                return scan
            raise
        damage: str | None = None
        try:
            for rec in iter_file_records(body, gzipped=True):
                scan.records += 1
                self._record(rec, runtime, scan)
        except LogFileError as exc:
            damage = str(exc)
        finally:
            body.close()
        self.count("FilesScanned")
        self.count("EventsScanned", n=scan.records)
        self.log.info(
            "scanned s3://%s/%s: %d records, %d findings, %d handed to the engine, %d already handled",
            obj.bucket,
            obj.key,
            scan.records,
            scan.findings,
            scan.handed_off,
            scan.already_handled,
        )
        if scan.foreign and first_receive:
            self._foreign(obj, scan)
        if damage is not None:
            self._corrupt(obj, scan, damage, alert=first_receive)
        if scan.errors:
            raise HandOffError(f"s3://{obj.bucket}/{obj.key}: {len(scan.errors)} hand-off failure(s): {scan.errors[0]}")
        return scan

    def _foreign(self, obj: LogObject, scan: FileScan) -> None:
        where = f"s3://{obj.bucket}/{obj.key}"
        self.log.error("%d record(s) in %s are for another account than its key", scan.foreign, where)
        self.notifier.publish(
            "trailguard ALERT: log file holds records of another account",
            {
                "alert": "log_file_account_mismatch",
                "bucket": obj.bucket,
                "key": obj.key,
                "key_account": key_account(obj.key),
                "foreign_records": scan.foreign,
                "detail": "CloudTrail writes each account's events under AWSLogs/[org-id/]<account>/. Records of "
                "another account in this file were not acted on: the file was probably planted. Find who wrote it "
                "(S3 data events or server access logs of the archive bucket) and check its digest.",
            },
            attributes={"kind": "log_file_account_mismatch", "severity": "HIGH", "rule": "-"},
        )

    def _corrupt(self, obj: LogObject, scan: FileScan, damage: str, *, alert: bool) -> None:
        self.count("CorruptFiles")
        where = f"s3://{obj.bucket}/{obj.key}"
        self.log.error("corrupt log file %s after %d records: %s", where, scan.records, damage)
        if alert:
            self.notifier.publish(
                "trailguard ALERT: corrupt CloudTrail log file in the archive bucket",
                {
                    "alert": "corrupt_log_file",
                    "bucket": obj.bucket,
                    "key": obj.key,
                    "records_processed": scan.records,
                    "error": damage,
                    "detail": "The records before the damage were checked; the rest of the file could not be read. "
                    "The message is retried and then kept in the reconcile dead-letter queue. Check the file's "
                    "integrity with the CloudTrail digest files (aws cloudtrail validate-logs).",
                },
                attributes={"kind": "corrupt_log_file", "severity": "HIGH", "rule": "-"},
            )
        raise CorruptLogFile(f"{where}: {damage} (after {scan.records} records)")

    def _record(self, rec: dict[str, Any], runtime: Runtime, scan: FileScan) -> None:
        ev = self.evaluator(runtime)
        try:
            envelope = to_envelope(rec)
            result = ev.evaluate(envelope)
        except RejectedEvent as exc:
            self.count("RejectedRecords")
            self.log.warning("record %d of %s rejected: %s", scan.records, scan.obj.key, exc)
            return
        event = CloudTrailEvent(envelope)
        if event.account != key_account(scan.obj.key):
            # The record says it happened in another account than the one whose folder holds the file:
            # acting on it would let whoever can write one account's folder act in another account.
            scan.foreign += 1
            self.count("RejectedRecords")
            self.log.warning(
                "record %d of %s is for account %r, not the key's account: not handed off",
                scan.records,
                scan.obj.key,
                event.account,
            )
            return
        for f in result.findings:
            if f.decision == "skip" and not f.silenced_by:
                continue
            rule = ev.by_id[f.rule]
            if event.read_only and not rule.read_only_events:
                continue  # deployed without read-only events: EventBridge never delivers it
            scan.findings += 1
            if not event.event_id:
                self.count("RejectedRecords")
                self.log.warning("record without eventID matched %s: cannot dedupe, not handed off", f.rule)
                continue
            if self.seen.seen(idempotency_key(event, f.rule)) or self.seen.seen(
                idempotency_key(event, f.rule, log_file=True)
            ):
                scan.already_handled += 1
                self.count("AlreadyHandled", f.rule)
                continue
            try:
                self._hand_off(f.rule, envelope)
            except Exception as exc:
                self.count("HandOffFailures", f.rule)
                self.log.exception("could not hand event %s (%s) to the engine", event.event_id, f.rule)
                scan.errors.append(f"{event.event_id}/{f.rule}: {type(exc).__name__}: {exc}"[:500])
                continue
            scan.handed_off += 1
            self.count("MissedByEventBridge", f.rule)
            self.log.warning(
                "event %s (%s, %s) was missed by EventBridge: handed to the engine",
                event.event_id,
                event.event_name,
                f.rule,
            )

    def _hand_off(self, rule_id: str, envelope: Mapping[str, Any]) -> None:
        # origin log-file: the engine alerts but does not remediate a finding only a log file showed,
        # until the file's integrity is verified against the CloudTrail digest chain.
        payload = json.dumps(
            {"trailguard_rule": rule_id, "event": envelope, "origin": ORIGIN_LOG_FILE}, default=str
        ).encode()
        resp = self.factory.engine("lambda").invoke(
            FunctionName=self.settings.engine_function, InvocationType="Event", Payload=payload
        )
        status = resp.get("StatusCode")
        if status != 202:
            raise HandOffError(f"engine invoke returned status {status}")

    # ------------------------------------------------------------------ #
    def flush_metrics(self) -> None:
        """One EMF document per rule (plus one for the totals) of everything counted so far."""
        s = self.settings.engine
        per_rule: dict[str, Counter[str]] = {}
        totals: Counter[str] = Counter()
        for (name, rule), n in self.counts.items():
            totals[name] += n
            if rule and name in _RULE_METRICS:
                per_rule.setdefault(rule, Counter())[name] += n
        self.counts.clear()
        docs: list[tuple[str, Counter[str]]] = [("", totals)] if totals else []
        docs += sorted(per_rule.items())
        for rule, counts in docs:
            emf = AmazonCloudWatchEMFProvider(namespace=s.namespace, service=s.service)
            for name, n in sorted(counts.items()):
                emf.add_metric(name=name, unit=MetricUnit.Count, value=n)
            if rule:
                emf.add_dimensions(service=s.service, rule=rule)
            emf.flush_metrics()


def _receive_count(record: SQSRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count)
    except (TypeError, ValueError, KeyError):
        return 1


# --------------------------------------------------------------------------- #
# Lambda entry point
# --------------------------------------------------------------------------- #
_STATE: list[Reconciler] = []
_LOADER: list[RuntimeLoader] = []


def get_reconciler(context: Any = None) -> Reconciler:
    """The container's reconciler, built on first use from the environment."""
    if not _STATE:
        rs = ReconcileSettings.from_env()
        missing = rs.missing()
        if missing:
            raise ReconcileError(f"reconcile is not configured: {', '.join(missing)} not set")
        factory = ClientFactory(engine_region=rs.engine.region, role_name=rs.engine.remediation_role_name)
        _STATE.append(
            Reconciler(
                settings=rs,
                factory=factory,
                notifier=Notifier(
                    factory=factory,
                    topic_arn=rs.engine.alert_topic_arn,
                    engine_account=invoked_account(context),
                ),
                seen=Idempotency(table=rs.engine.state_table, client=factory.engine("dynamodb"), clock=time.time),
            )
        )
    return _STATE[0]


def get_runtime(reconciler: Reconciler) -> Runtime:
    if not _LOADER:
        _LOADER.append(RuntimeLoader(reconciler.factory.read_parameter))
    runtime = _LOADER[0].load(reconciler.settings.engine.config_parameter)
    if _LOADER[0].last_error:
        reconciler.log.error("using the last good runtime config: %s", _LOADER[0].last_error)
    return runtime


def reset() -> None:
    """Forget the container state (tests; never needed in Lambda)."""
    _STATE.clear()
    _LOADER.clear()


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """SQS batch of S3 notifications -> partial batch response (``batchItemFailures``)."""
    reconciler = get_reconciler(context)
    try:
        runtime = get_runtime(reconciler)
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

        def one(record: SQSRecord) -> None:
            reconciler.handle_message(record, runtime)

        response: dict[str, Any] = dict(
            process_partial_response(event=event, record_handler=one, processor=processor, context=context)
        )
        return response
    finally:
        reconciler.flush_metrics()
