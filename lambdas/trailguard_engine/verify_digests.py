"""Continuous log-file integrity verification (``trailguard_engine.verify_digests.handler``).

Digests arrive on the queue ``trailguard-digests``. The archive bucket's one S3 notification
feeds the reconcile queue; the reconcile function forwards every ``CloudTrail-Digest/`` key here
(``{"trailguard_digest": {"bucket", "key"}}``; a raw S3 notification is accepted too). For each
digest it runs :func:`~trailguard_engine.integrity.verify_digest_object` (the library shared with
``trailguard verify``): the digest's signature (public keys from ``cloudtrail:ListPublicKeys`` of the
digest's region, matched by fingerprint and validity window), its location, the link to its
predecessor (which must exist and match), and the SHA-256 of every log file it lists. Then:

* every log file the valid digest vouched for is written to the ledger, ``verified#<bucket>/<key>`` =
  the listed SHA-256 (:class:`~trailguard_engine.state.LogFileLedger`; this function's role is the only
  one allowed to write such items). A file the reconcile path marked ``pending#`` (remediable findings
  handed over alert-only before the digest came) with the same hash gets a rescan request on the
  reconcile queue, so the engine can act on those findings if they are still recent enough;
* a modified or deleted log file, an invalid digest (bad signature, unknown or expired key, moved,
  malformed, chain broken) or a missing predecessor raises one CRITICAL alert per digest (SNS and a
  Security Hub finding) listing every problem;
* log files in the digest's own region folder stamped in the hour before the digest's start that
  neither this digest nor its predecessor lists are recorded as *suspects*; the hourly check alerts on
  those still unverified an hour later (another region's digest may list a file, and digests of one
  hour arrive over several minutes, so the verdict waits);
* the digest's end time becomes the newest digest seen for its account and region.

The same function (``handler``) also runs hourly (an EventBridge schedule; ``schedule_handler`` is
that path alone). A CRITICAL alert for every account and region whose
newest digest ended more than ``TRAILGUARD_DIGEST_MISSING_AFTER_SECONDS`` ago (default two hours:
digests are hourly and may lag by up to an hour): log file validation was turned off, the trail stopped,
or digests are being deleted before delivery notifications reach us. One alert per gap (per newest
digest), not one per hour; the ``DigestsMissing`` metric keeps counting every hour. Then the suspects.

Metrics (service ``trailguard-verify``): ``DigestsVerified``, ``LogFilesVerified``, ``IntegrityFailures``
(every invalid or missing digest, every modified, deleted or unlisted log file), ``DigestsMissing``,
``LogFilesNotChecked``, ``RescansRequested``, ``SuspectFiles``, ``BadMessages``, ``DigestsSkipped``.
Nothing here reads a clock but through :data:`clock`.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from trailguard_engine.clients import ClientFactory, invoked_account, partition_for
from trailguard_engine.exceptions import EngineError
from trailguard_engine.integrity import (
    DIGEST_FAILURES,
    LOG_FAILURES,
    Digest,
    DigestFormatError,
    Fetched,
    KeySource,
    Report,
    S3Reader,
    cloudtrail_keys,
    parse_digest,
    parse_digest_key,
    parse_log_key,
    verify_digest_object,
)
from trailguard_engine.notify import Notifier
from trailguard_engine.reconcile import DIGEST, RESCAN, BadMessage, parse_notification
from trailguard_engine.settings import Settings
from trailguard_engine.sqs_batch import SqsMessage, process_batch
from trailguard_engine.state import LogFileLedger

SERVICE = "trailguard-verify"
#: Digests are hourly and CloudTrail may deliver one up to about an hour late.
DEFAULT_MISSING_AFTER_SECONDS = 2 * 3600
#: Problems listed in one alert (the rest are counted, and ``trailguard verify`` lists them all).
MAX_PROBLEMS_PER_ALERT = 50
#: Parallel S3 reads per digest (the log files it lists).
WORKERS = 8
#: How many past hours of suspects the hourly check looks at.
SUSPECT_HOURS = 6
_ISO = "%Y-%m-%dT%H:%M:%SZ"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))

#: The function's wall clock (seconds since the epoch): the one seam tests pin.
clock: Callable[[], float] = time.time


def public_keys(factory: ClientFactory, around: datetime) -> KeySource:
    """``ListPublicKeys`` of each digest's region for the day around ``around`` (the test seam for keys)."""
    return cloudtrail_keys(lambda region: factory.engine("cloudtrail", region), around - timedelta(days=1), around)


class VerifyError(EngineError):
    """Fails one SQS message (retried, then the digest dead-letter queue, which is alarmed)."""


@dataclass(frozen=True, slots=True)
class VerifySettings:
    """The verifier's environment (names fixed by ``stacks/detection.py``)."""

    engine: Settings
    archive_bucket: str
    reconcile_queue_url: str
    missing_after_seconds: int = DEFAULT_MISSING_AFTER_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> VerifySettings:
        e = os.environ if env is None else env
        raw = e.get("TRAILGUARD_DIGEST_MISSING_AFTER_SECONDS", "") or str(DEFAULT_MISSING_AFTER_SECONDS)
        return cls(
            engine=Settings.from_env(e),
            archive_bucket=e.get("TRAILGUARD_ARCHIVE_BUCKET", ""),
            reconcile_queue_url=e.get("TRAILGUARD_RECONCILE_QUEUE_URL", ""),
            missing_after_seconds=int(raw),
        )

    def missing(self) -> list[str]:
        required = {
            "TRAILGUARD_ARCHIVE_BUCKET": self.archive_bucket,
            "TRAILGUARD_RECONCILE_QUEUE_URL": self.reconcile_queue_url,
            "TRAILGUARD_STATE_TABLE": self.engine.state_table,
            "TRAILGUARD_ALERT_TOPIC_ARN": self.engine.alert_topic_arn,
        }
        return [k for k, v in required.items() if not v]


class _DigestCache:
    """An :class:`~trailguard_engine.integrity.ArchiveReader` that keeps the digests it read (small objects),
    so the verifier can read the listed hashes without a second GET."""

    def __init__(self, inner: S3Reader) -> None:
        self.inner = inner
        self.digests: dict[tuple[str, str], Fetched] = {}

    def list_dirs(self, bucket: str, prefix: str) -> list[str]:
        return self.inner.list_dirs(bucket, prefix)

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return self.inner.list_keys(bucket, prefix)

    def get(self, bucket: str, key: str) -> Fetched:
        hit = self.digests.get((bucket, key))
        if hit is None:
            hit = self.inner.get(bucket, key)
            if parse_digest_key(key) is not None:
                self.digests[(bucket, key)] = hit
        return hit

    def open(self, bucket: str, key: str) -> BinaryIO:
        return self.inner.open(bucket, key)

    def parsed(self, bucket: str, key: str) -> Digest | None:
        hit = self.digests.get((bucket, key))
        if hit is None:
            return None
        try:
            return parse_digest(bucket, key, hit.body)
        except DigestFormatError:
            return None


@dataclass
class DigestOutcome:
    """What one digest's verification found and did."""

    bucket: str
    key: str
    report: Report
    verified_files: int = 0
    rescans: int = 0
    suspects: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [
            p.line()
            for p in self.report.problems()
            if (p.kind == "digest" and p.status in DIGEST_FAILURES)
            or (p.kind == "log file" and p.status in LOG_FAILURES)
        ]


class DigestVerifier:
    """Verifies digests as they arrive and checks hourly for missing ones. Build once per container."""

    def __init__(
        self,
        *,
        settings: VerifySettings,
        factory: ClientFactory,
        notifier: Notifier,
        ledger: LogFileLedger,
        now: Callable[[], float],
        keys: Callable[[ClientFactory, datetime], KeySource] | None = None,
        log: Any = logger,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.notifier = notifier
        self.ledger = ledger
        self.now = now
        self.keys = keys
        self.log = log
        self.counts: Counter[str] = Counter()

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    # ------------------------------------------------------------------ #
    # one digest
    # ------------------------------------------------------------------ #
    def handle_message(self, record: SqsMessage) -> list[DigestOutcome]:
        targets = self._targets(record.body)
        return [self.verify(bucket, key) for bucket, key in targets]

    def _targets(self, body: str) -> list[tuple[str, str]]:
        try:
            doc = json.loads(body)
        except (TypeError, ValueError) as exc:
            self.count("BadMessages")
            raise BadMessage(f"message body is not JSON ({exc})") from exc
        if isinstance(doc, Mapping) and isinstance(doc.get(DIGEST), Mapping):
            req = doc[DIGEST]
            if isinstance(req.get("bucket"), str) and isinstance(req.get("key"), str):
                return [(req["bucket"], req["key"])]
            self.count("BadMessages")
            raise BadMessage(f"{DIGEST} request without a bucket and key")
        try:
            return [(o.bucket, o.key) for o in parse_notification(body) if not o.rescan]
        except BadMessage:
            self.count("BadMessages")
            raise

    def verify(self, bucket: str, key: str) -> DigestOutcome:
        """Verify one digest, record what it vouches for, alert on what it does not."""
        path = parse_digest_key(key)
        if bucket != self.settings.archive_bucket or path is None:
            self.count("DigestsSkipped")
            self.log.info("skipping s3://%s/%s: not a digest of the archive bucket", bucket, key)
            return DigestOutcome(bucket, key, Report())
        reader = _DigestCache(S3Reader(self.factory.engine("s3")))
        source = (self.keys or public_keys)(self.factory, path.end)
        report = verify_digest_object(reader, bucket, key, source, workers=WORKERS)  # AccessError fails the message
        out = DigestOutcome(bucket, key, report)
        mine = next((d for d in report.digests if (d.bucket, d.key) == (bucket, key)), None)
        for d in report.digests:
            if d.status in ("invalid", "missing"):
                self.count("IntegrityFailures")
        if mine is not None and mine.status == "valid":
            self.count("DigestsVerified")
            self.ledger.record_digest_head(path.account, path.region, mine.end_time)
        digest = reader.parsed(bucket, key)
        listed = {(e.bucket, e.key): e.hash_value for e in digest.log_files} if digest else {}
        for r in report.logs:
            if r.status == "valid":
                sha = listed.get((r.bucket, r.key))
                if sha is None:
                    continue
                self.ledger.record_verified(r.bucket, r.key, sha, key)
                out.verified_files += 1
                self.count("LogFilesVerified")
                out.rescans += self._rescan_if_pending(r.bucket, r.key, sha)
            elif r.status in ("modified", "deleted", "unlisted"):
                self.count("IntegrityFailures")
            else:
                self.count("LogFilesNotChecked")
        if digest is not None and mine is not None and mine.status == "valid":
            out.suspects = self._suspects(reader, digest)
        if out.problems:
            self._alert(out, path.account, path.region)
        self.log.info(
            "digest s3://%s/%s: %s; %d log files verified, %d rescans, %d suspects, %d problems",
            bucket,
            key,
            mine.status if mine else "not judged",
            out.verified_files,
            out.rescans,
            len(out.suspects),
            len(out.problems),
        )
        return out

    def _rescan_if_pending(self, bucket: str, key: str, sha256: str) -> int:
        pending = self.ledger.pending(bucket, key)
        if pending is None:
            return 0
        if pending.lower() != sha256.lower():
            # reconcile read other bytes than the digest lists: the engine would refuse them anyway
            self.log.error("s3://%s/%s was read with another hash than its digest lists; no rescan", bucket, key)
            return 0
        self.factory.engine("sqs").send_message(
            QueueUrl=self.settings.reconcile_queue_url,
            MessageBody=json.dumps({RESCAN: {"bucket": bucket, "key": key}}),
        )
        self.ledger.clear_pending(bucket, key)
        self.count("RescansRequested")
        return 1

    def _suspects(self, reader: _DigestCache, digest: Digest) -> list[str]:
        """Log files of this digest's region folder stamped in the hour before it that it and its
        predecessor do not list (recorded; judged by the hourly check once every digest of that hour is in)."""
        path = parse_digest_key(digest.key)
        prev = digest.previous
        if path is None or prev is None:
            return []  # the start of a chain covers no earlier hour
        previous = reader.parsed(*prev)
        if previous is None:
            return []  # missing or invalid: already reported
        start = datetime.strptime(str(digest.data["digestStartTime"]), _ISO).replace(tzinfo=UTC)
        lo = start - timedelta(hours=1)
        listed = {(e.bucket, e.key) for d in (digest, previous) for e in d.log_files}
        org = f"{path.org}/" if path.org else ""
        folder = f"{path.prefix}AWSLogs/{org}{path.account}/CloudTrail/{path.region}/"
        days = sorted({lo.strftime("%Y/%m/%d"), start.strftime("%Y/%m/%d")})
        suspects: list[str] = []
        for day in days:
            for k in reader.list_keys(digest.bucket, f"{folder}{day}/"):
                lp = parse_log_key(k)
                if lp is None or (digest.bucket, k) in listed:
                    continue
                # Names that are not CloudTrail's (no timestamp) are left to ``trailguard verify``, which
                # sees the whole archive; judging them here would re-flag them with every digest.
                if lp.at is not None and lo <= lp.at < start:
                    suspects.append(k)
        if suspects:
            self.ledger.add_suspects(_hour(self.now()), digest.bucket, suspects)
            self.count("SuspectFiles", len(suspects))
        return suspects

    # ------------------------------------------------------------------ #
    # hourly: missing digests, suspects
    # ------------------------------------------------------------------ #
    def check(self) -> dict[str, Any]:
        """The scheduled check: missing digests per account and region, then last hours' suspects."""
        now = self.now()
        limit = timedelta(seconds=self.settings.missing_after_seconds)
        missing: list[dict[str, str]] = []
        for (account, region), end in sorted(self.ledger.digest_heads().items()):
            try:
                last = datetime.strptime(end, _ISO).replace(tzinfo=UTC)
            except ValueError:
                continue
            if datetime.fromtimestamp(now, UTC) - last <= limit:
                continue
            self.count("DigestsMissing")
            missing.append({"account": account, "region": region, "last_digest_end": end})
            if self.ledger.first_missing_alert(account, region, end):
                self._alert_missing(account, region, end, now)
        unlisted = self._judge_suspects(now)
        return {"missing": missing, "unlisted": unlisted}

    def _judge_suspects(self, now: float) -> list[str]:
        current = _hour(now)
        found: list[str] = []
        # Suspects recorded in hour H are judged from hour H + 2 on: at least an hour for the other digests.
        for hour in range(current - SUSPECT_HOURS, current - 1):
            entries = self.ledger.suspects(hour)
            if not entries:
                continue
            bad = [f"{b}/{k}" for b, k in entries if self.ledger.verified(b, k) is None]
            for where in bad:
                self.count("IntegrityFailures")
                found.append(where)
            if bad:
                self._alert_unlisted(bad)
            self.ledger.clear_suspects(hour)
        return found

    # ------------------------------------------------------------------ #
    # alerts
    # ------------------------------------------------------------------ #
    def _critical(
        self, subject: str, body: dict[str, Any], kind: str, *, resource: str, account: str, region: str
    ) -> None:
        self.notifier.publish(subject[:100], body, attributes={"kind": kind, "severity": "CRITICAL", "rule": "-"})
        try:
            self.notifier.security_hub(self._asff(kind, body["detail"], resource, account, region))
        except Exception as exc:  # the SNS alert went out; the metric says Security Hub did not
            self.log.error("Security Hub import failed for %s: %s", kind, exc)
            self.count("SecurityHubFailures")

    def _alert(self, out: DigestOutcome, account: str, region: str) -> None:
        problems = out.problems
        self._critical(
            f"trailguard CRITICAL: CloudTrail log integrity failure ({account} {region})",
            {
                "alert": "integrity_failure",
                "bucket": out.bucket,
                "digest": out.key,
                "account": account,
                "region": region,
                "problems": problems[:MAX_PROBLEMS_PER_ALERT],
                "problem_count": len(problems),
                "detail": "A CloudTrail digest or a log file it lists failed verification (modified, deleted, "
                "broken chain, bad signature). Preserve the evidence before anything expires and follow "
                "docs/runbooks/integrity-failure.md.",
                "runbook": "docs/runbooks/integrity-failure.md",
            },
            "integrity_failure",
            resource=f"arn:{partition_for(region)}:s3:::{out.bucket}/{out.key}",
            account=account,
            region=region,
        )

    def _alert_missing(self, account: str, region: str, end: str, now: float) -> None:
        self._critical(
            f"trailguard CRITICAL: CloudTrail digests missing ({account} {region})",
            {
                "alert": "digest_missing",
                "account": account,
                "region": region,
                "last_digest_end": end,
                "checked_at": datetime.fromtimestamp(now, UTC).strftime(_ISO),
                "detail": "No CloudTrail digest file has arrived for this account and region for longer than "
                f"{self.settings.missing_after_seconds // 60} minutes. Log file validation may have been turned "
                "off, the trail stopped or changed, or digests deleted. See docs/runbooks/integrity-failure.md.",
                "runbook": "docs/runbooks/integrity-failure.md",
            },
            "digest_missing",
            resource=f"{account}/{region}/CloudTrail-Digest",
            account=account,
            region=region,
        )

    def _alert_unlisted(self, where: list[str]) -> None:
        first = where[0]
        lp = parse_log_key(first.split("/", 1)[1]) if "/" in first else None
        account, region = (lp.account, lp.region) if lp else ("", self.factory.engine_region)
        self._critical(
            f"trailguard CRITICAL: log files no digest lists ({account} {region})",
            {
                "alert": "unlisted_log_files",
                "files": [f"s3://{w}" for w in where[:MAX_PROBLEMS_PER_ALERT]],
                "file_count": len(where),
                "detail": "These objects sit in CloudTrail log folders, but no CloudTrail digest lists them an hour "
                "after their digests arrived: they were probably planted. trailguard never acts on them. See "
                "docs/runbooks/integrity-failure.md.",
                "runbook": "docs/runbooks/integrity-failure.md",
            },
            "unlisted_log_files",
            resource=f"arn:{partition_for(region)}:s3:::{first}",
            account=account,
            region=region,
        )

    def _asff(self, kind: str, detail: str, resource: str, account: str, region: str) -> dict[str, Any]:
        engine_account = self.notifier.engine_account or account
        engine_region = self.factory.engine_region
        partition = partition_for(engine_region)
        ts = datetime.fromtimestamp(self.now(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "SchemaVersion": "2018-10-08",
            "Id": f"trailguard/{kind}/{resource}"[:512],
            "ProductArn": f"arn:{partition}:securityhub:{engine_region}:{engine_account}:product/{engine_account}/default",
            "GeneratorId": f"trailguard/{kind}",
            "AwsAccountId": engine_account,
            "Types": ["Effects/Data Destruction", "Software and Configuration Checks/AWS Security Best Practices"],
            "CreatedAt": ts,
            "UpdatedAt": ts,
            "Severity": {"Label": "CRITICAL"},
            "Title": f"trailguard: CloudTrail log file integrity ({kind.replace('_', ' ')})",
            "Description": detail[:1024],
            "Remediation": {
                "Recommendation": {"Text": "See the trailguard runbook docs/runbooks/integrity-failure.md"}
            },
            "Resources": [
                {
                    "Type": "Other",
                    "Id": resource[:512],
                    "Partition": partition,
                    "Region": region or engine_region,
                    "Details": {"Other": {"account": account}},
                }
            ],
            "Workflow": {"Status": "NEW"},
            "RecordState": "ACTIVE",
            "ProductFields": {"trailguard/kind": kind, "trailguard/account": account, "trailguard/region": region},
        }

    # ------------------------------------------------------------------ #
    def flush_metrics(self) -> None:
        if not self.counts:
            return
        s = self.settings.engine
        emf = AmazonCloudWatchEMFProvider(namespace=s.namespace, service=s.service)
        for name, n in sorted(self.counts.items()):
            emf.add_metric(name=name, unit=MetricUnit.Count, value=n)
        self.counts.clear()
        emf.flush_metrics()


def _hour(ts: float) -> int:
    return int(ts // 3600)


# --------------------------------------------------------------------------- #
# Lambda entry points
# --------------------------------------------------------------------------- #
_STATE: list[DigestVerifier] = []


def get_verifier(context: Any = None) -> DigestVerifier:
    if not _STATE:
        vs = VerifySettings.from_env()
        missing = vs.missing()
        if missing:
            raise VerifyError(f"digest verifier is not configured: {', '.join(missing)} not set")
        factory = ClientFactory(engine_region=vs.engine.region, role_name=vs.engine.remediation_role_name)

        def now() -> float:
            return clock()

        _STATE.append(
            DigestVerifier(
                settings=vs,
                factory=factory,
                notifier=Notifier(
                    factory=factory, topic_arn=vs.engine.alert_topic_arn, engine_account=invoked_account(context)
                ),
                ledger=LogFileLedger(table=vs.engine.state_table, client=factory.engine("dynamodb"), clock=now),
                now=now,
            )
        )
    return _STATE[0]


def reset() -> None:
    """Forget the container state (tests; never needed in Lambda)."""
    _STATE.clear()


def is_scheduled(event: Any) -> bool:
    """The hourly EventBridge schedule's event (``source`` ``aws.events``, ``Scheduled Event``)."""
    return isinstance(event, Mapping) and event.get("source") == "aws.events" and "Records" not in event


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """One function, two inputs: the hourly schedule runs :meth:`DigestVerifier.check`; an SQS batch of
    digests gets a partial batch response (``batchItemFailures``)."""
    verifier = get_verifier(context)
    if is_scheduled(event):
        try:
            return verifier.check()
        finally:
            verifier.flush_metrics()
    try:
        return process_batch(event, verifier.handle_message, log=logger)
    finally:
        verifier.flush_metrics()


@logger.inject_lambda_context(clear_state=True)
def schedule_handler(event: Any, context: Any) -> dict[str, Any]:
    """Hourly: alert on missing digests and on unlisted log files."""
    verifier = get_verifier(context)
    try:
        return verifier.check()
    finally:
        verifier.flush_metrics()
