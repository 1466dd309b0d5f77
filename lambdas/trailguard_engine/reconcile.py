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
* **Verified or not.** The file is read once, through :class:`~trailguard_engine.logfile.HashingReader`,
  so its SHA-256 (what a digest lists as ``hashValue``) is known when the last byte is read; the
  hand-offs wait for it and carry ``log_file: {bucket, key, sha256}``. The engine, not this
  function, decides whether that file is verified (its ``verified#`` ledger record from the digest
  verifier, same hash). A file usually arrives up to an hour before its digest, so its remediable
  findings are alerted only; the file is then marked ``pending#`` (before any hand-off, so a failed
  mark retries the message) and, once the digest verifier has verified it, it asks for a **rescan**
  (``{"trailguard_rescan": {"bucket", "key"}}`` on this queue): the file is read again and its
  remediable findings are handed over again, now under EventBridge's idempotency key, so the engine
  acts on them if they are still younger than its event-age limit (see docs/architecture.md).
* **Digests go elsewhere.** S3 notification filters cannot tell ``CloudTrail-Digest/`` keys from
  log files (prefix and suffix only, and the account comes first), so the one bucket notification
  feeds this queue and this function forwards each digest key to the digest queue
  (``TRAILGUARD_DIGEST_QUEUE_URL``) of the verifier, :mod:`trailguard_engine.verify_digests`.
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
``CorruptFiles``, ``FilesMissing``, ``RejectedRecords``, ``HandOffFailures``, ``DigestsForwarded``,
``AwaitingDigest`` (remediable findings handed over alert-only, their file marked pending),
``Rescans``, ``RehandedAfterVerification``, ``RescansUnverified``.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from trailguard_engine.clients import ClientFactory, invoked_account
from trailguard_engine.engine import ORIGIN_LOG_FILE, idempotency_key
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.exceptions import EngineError, RejectedEvent
from trailguard_engine.logfile import (
    LOG_KEY,
    HashingReader,
    LogFileError,
    is_digest_key,
    iter_file_records,
    log_key_account,
)
from trailguard_engine.model import Rule
from trailguard_engine.notify import Notifier
from trailguard_engine.remediations import error_code
from trailguard_engine.settings import Runtime, RuntimeLoader, Settings
from trailguard_engine.sqs_batch import SqsMessage, process_batch
from trailguard_engine.state import Idempotency, LogFileLedger

__all__ = ["LOG_KEY", "Reconciler", "handler", "is_log_file", "key_account", "parse_notification"]

#: Metrics published per rule as well as in total.
_RULE_METRICS = frozenset({"MissedByEventBridge", "AlreadyHandled", "HandOffFailures", "RehandedAfterVerification"})
#: The body of a rescan request (sent by the digest verifier once it has verified a pending file).
RESCAN = "trailguard_rescan"
#: The body of a digest forwarded to the verifier's queue.
DIGEST = "trailguard_digest"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "trailguard-reconcile"))

#: The function's wall clock (seconds since the epoch): record expiry is judged against it; tests pin it.
clock: Callable[[], float] = time.time


def _now() -> float:
    return clock()


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
    #: Asked for by the digest verifier after it verified the file: hand over remediable findings again.
    rescan: bool = False


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    """The reconcile function's environment (names fixed by ``stacks/detection.py``)."""

    engine: Settings
    archive_bucket: str
    engine_function: str
    #: The digest verifier's queue; empty: digest keys are skipped like any other non-log object.
    digest_queue_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReconcileSettings:
        e = os.environ if env is None else env
        return cls(
            engine=Settings.from_env(e),
            archive_bucket=e.get("TRAILGUARD_ARCHIVE_BUCKET", ""),
            engine_function=e.get("TRAILGUARD_ENGINE_FUNCTION", ""),
            digest_queue_url=e.get("TRAILGUARD_DIGEST_QUEUE_URL", ""),
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
    #: Findings to hand over once the whole file is read (the hand-off carries the file's hash).
    candidates: list[Candidate] = field(default_factory=list)
    #: SHA-256 of the object's bytes as read; None when the file was damaged (read only in part).
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A finding of one record, waiting for the file's hash before it is handed over."""

    rule: str
    envelope: dict[str, Any]
    event: CloudTrailEvent
    #: The decision is ``remediate``: only such findings are worth a rescan once the file is verified.
    remediable: bool


def is_log_file(key: str) -> bool:
    """True for a CloudTrail log file key (not a digest, not an Insights file)."""
    return bool(LOG_KEY.match(key))


def key_account(key: str) -> str | None:
    """The account a log file's key says it belongs to (CloudTrail writes each account's events under
    ``AWSLogs/[org-id/]<account>/``), or None for a key that is not a log file."""
    return log_key_account(key)


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
    if RESCAN in doc:
        req = doc[RESCAN]
        bucket, key = (req.get("bucket"), req.get("key")) if isinstance(req, Mapping) else (None, None)
        if not isinstance(bucket, str) or not isinstance(key, str):
            raise BadMessage(f"{RESCAN} request without a bucket and key")
        return [LogObject(bucket, key, rescan=True)]
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
        ledger: LogFileLedger | None = None,
        rules: tuple[Rule, ...] | None = None,
        log: Any = logger,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.notifier = notifier
        self.seen = seen
        self.ledger = ledger
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
    def handle_message(self, record: SqsMessage, runtime: Runtime) -> list[FileScan]:
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
            if self._is_digest(obj):
                self._forward_digest(obj)
                continue
            reason = self._skip_reason(obj)
            if reason:
                self.count("FilesSkipped")
                self.log.info("skipping s3://%s/%s: %s", obj.bucket, obj.key, reason)
                continue
            try:
                scans.append(self.scan(obj, runtime, first_receive=record.receive_count <= 1))
            except ReconcileError as exc:
                failures.append(str(exc))
        if failures:
            raise ReconcileError("; ".join(failures)[:2000])
        return scans

    def _is_digest(self, obj: LogObject) -> bool:
        return (
            bool(self.settings.digest_queue_url)
            and obj.bucket == self.settings.archive_bucket
            and not obj.rescan
            and is_digest_key(obj.key)
        )

    def _forward_digest(self, obj: LogObject) -> None:
        """Queue a digest for the verifier (an error fails the message: it is retried)."""
        self.factory.engine("sqs").send_message(
            QueueUrl=self.settings.digest_queue_url,
            MessageBody=json.dumps({DIGEST: {"bucket": obj.bucket, "key": obj.key}}),
        )
        self.count("DigestsForwarded")
        self.log.info("digest s3://%s/%s forwarded to the verifier", obj.bucket, obj.key)

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
        tap: list[HashingReader] = []
        try:
            for rec in iter_file_records(body, gzipped=True, tap=tap):
                scan.records += 1
                self._record(rec, runtime, scan)
        except LogFileError as exc:
            damage = str(exc)
        finally:
            body.close()
        # The SHA-256 of the uncompressed content (a digest's hashValue), known only for a file read whole.
        scan.sha256 = tap[0].hexdigest() if damage is None and tap else None
        self._hand_over(scan)
        if obj.rescan:
            self.count("Rescans")
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
            scan.candidates.append(Candidate(f.rule, dict(envelope), event, f.decision == "remediate"))

    def _verified(self, scan: FileScan) -> bool:
        """Whether the verifier's ledger vouches for the bytes just read (the engine checks again itself)."""
        if scan.sha256 is None or self.ledger is None:
            return False
        record = self.ledger.verified(scan.obj.bucket, scan.obj.key)
        return record is not None and record.matches(scan.sha256)

    def _hand_over(self, scan: FileScan) -> None:
        """Hand each candidate that neither path handled yet to the engine, naming the file and its hash."""
        obj = scan.obj
        if not scan.candidates:
            return
        verified = self._verified(scan)
        if obj.rescan and not verified:
            self.count("RescansUnverified")
            self.log.error(
                "rescan of s3://%s/%s asked for, but the file read is not the file verified", obj.bucket, obj.key
            )
            return
        fresh: list[Candidate] = []
        for c in [c for c in scan.candidates if c.remediable] if obj.rescan else scan.candidates:
            keys = [idempotency_key(c.event, c.rule)]
            if not verified:
                keys.append(idempotency_key(c.event, c.rule, log_file=True))
            if any(self.seen.seen(k) for k in keys):
                scan.already_handled += 1
                self.count("AlreadyHandled", c.rule)
            else:
                fresh.append(c)
        remediable = sum(1 for c in fresh if c.remediable)
        if remediable and not verified and scan.sha256 and self.ledger is not None:
            # Before any hand-off: a failed write fails the message, and its retry still finds them unhandled.
            self.ledger.mark_pending(obj.bucket, obj.key, scan.sha256)
            self.count("AwaitingDigest", n=remediable)
        log_file = {"bucket": obj.bucket, "key": obj.key, "sha256": scan.sha256}
        for c in fresh:
            try:
                self._hand_off(c.rule, c.envelope, log_file)
            except Exception as exc:
                self.count("HandOffFailures", c.rule)
                self.log.exception("could not hand event %s (%s) to the engine", c.event.event_id, c.rule)
                scan.errors.append(f"{c.event.event_id}/{c.rule}: {type(exc).__name__}: {exc}"[:500])
                continue
            scan.handed_off += 1
            if obj.rescan:
                self.count("RehandedAfterVerification", c.rule)
                self.log.warning(
                    "event %s (%s, %s) handed to the engine again: its log file is now verified",
                    c.event.event_id,
                    c.event.event_name,
                    c.rule,
                )
                continue
            self.count("MissedByEventBridge", c.rule)
            self.log.warning(
                "event %s (%s, %s) was missed by EventBridge: handed to the engine",
                c.event.event_id,
                c.event.event_name,
                c.rule,
            )

    def _hand_off(self, rule_id: str, envelope: Mapping[str, Any], log_file: Mapping[str, Any]) -> None:
        # origin log-file: the engine alerts but does not remediate a finding only a log file showed,
        # until it finds the named file, with this hash, in the digest verifier's ledger.
        payload = json.dumps(
            {"trailguard_rule": rule_id, "event": envelope, "origin": ORIGIN_LOG_FILE, "log_file": dict(log_file)},
            default=str,
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
                seen=Idempotency(table=rs.engine.state_table, client=factory.engine("dynamodb"), clock=_now),
                ledger=LogFileLedger(table=rs.engine.state_table, client=factory.engine("dynamodb"), clock=_now),
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
        return process_batch(event, lambda record: reconciler.handle_message(record, runtime), log=reconciler.log)
    finally:
        reconciler.flush_metrics()
