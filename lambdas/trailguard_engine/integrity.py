"""Verify CloudTrail log file integrity from the digest files: signatures, the digest chain, every log file.

Public API (shared by the continuous-verification Lambda and ``trailguard verify``)::

    PublicKey(fingerprint, der, valid_from, valid_until)                  # one ListPublicKeys entry
    load_public_keys(doc) -> dict[str, PublicKey]                         # list-public-keys JSON or boto3 response
    KeySource = Callable[[str], Mapping[str, PublicKey]]                  # region -> keys by fingerprint
    static_keys(keys) -> KeySource ; cloudtrail_keys(client_for_region, start, end) -> KeySource
    Fetched(body, metadata)                                               # one object read with its user metadata
    ArchiveReader (Protocol): list_dirs(bucket, prefix), list_keys(bucket, prefix),
                              get(bucket, key) -> Fetched, open(bucket, key) -> BinaryIO   (ObjectMissing if absent)
    S3Reader(client)                                                      # the reader over an injected boto3 S3 client
    parse_digest_key(key) -> DigestPath | None ; parse_log_key(key) -> LogPath | None
    parse_digest(bucket, key, body) -> Digest                             # raises DigestFormatError
    string_to_sign(digest) -> bytes ; check_signature(digest, signature_hex, keys) -> str | None (reason)
    hash_log_stream(stream) -> str                                        # SHA-256 hex of the *uncompressed* content
    verify_digest_object(reader, bucket, key, keys, *, workers=8) -> Report   # one digest: signature, link, logs
    verify_archive(reader, bucket, prefix, keys, *, since, until, accounts, regions, signatures,
                   workers=16, progress=None) -> Report                   # a whole archive (or a slice of it)
    list_digest_keys(reader, bucket, prefix, *, since, until, accounts) -> list[str]
    bounded_map(fn, items, workers, progress, phase) -> list          # the bounded pool the readers use
    Report: digests: list[DigestResult], logs: list[LogResult]; .counts(), .problems(), .ok, .to_json()
    DigestResult(bucket, key, status, reason, account, region, end_time, log_files)
        status: "valid" | "invalid" | "missing" | "not-checked"
    LogResult(bucket, key, status, reason, digest_key)
        status: "valid" | "modified" | "deleted" | "unlisted" | "not-checked"
    Problem(kind, bucket, key, status, reason).line()                     # "s3://bucket/key: digest invalid: why"

What is checked, from the AWS documentation ("CloudTrail digest file structure", "Custom implementations
of CloudTrail log file integrity validation") and the AWS CLI's ``validate-logs``:

* A digest is a gzip-compressed JSON object at
  ``[prefix/]AWSLogs/[o-orgid/]<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/
  <account>_CloudTrail-Digest_<region>_<trail>_<home-region>_<YYYYMMDDTHHMMSSZ>.json.gz``.
  Its signature is in the object's user metadata (``x-amz-meta-signature``, hex; and
  ``x-amz-meta-signature-algorithm``, ``SHA256withRSA``), never in the file.
* The signed string is ``digestEndTime + "\\n" + digestS3Bucket + "/" + digestS3Object + "\\n" +
  hex(SHA-256(uncompressed digest)) + "\\n" + previousDigestSignature`` (the literal ``null`` for a
  starting digest), verified as RSA PKCS#1 v1.5 with SHA-256 against the key whose ``Fingerprint`` in
  ``ListPublicKeys`` (of the digest's region) equals ``digestPublicKeyFingerprint``. The key is DER
  PKCS#1 (base64 in the CLI's JSON); the digest's end time must lie inside the key's validity window.
* A digest must sit where it says it was delivered (``digestS3Bucket``/``digestS3Object``).
* Each digest names its predecessor (``previousDigestS3Bucket``/``Object``), the SHA-256 of the
  predecessor's uncompressed content and the predecessor's signature. A predecessor that is absent is a
  *missing* digest; one whose content or signature differs breaks the chain. A starting digest (all
  previous fields null) starts a chain.
* ``logFiles[].hashValue`` is the SHA-256 of the log file's *uncompressed* content. A listed file that
  is absent is *deleted*, one that hashes differently (or is not gzip) is *modified*. A log file in the
  archive that no digest lists, although digests cover its hour, is *unlisted* (planted).
* A digest with no activity has ``logFiles: []``; log files may be listed by a digest in another
  region's folder (each file keeps its own region in its key).

Offline (a synced local tree) the signature of a digest comes from a side file written beforehand, or,
as the AWS guide describes for previous digests, from its successor's ``previousDigestSignature``; a
digest with neither is "not-checked" (and so are the hashes it lists: they are compared, but a match
proves nothing). Nothing here reads a clock.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

DigestStatus = Literal["valid", "invalid", "missing", "not-checked"]
LogStatus = Literal["valid", "modified", "deleted", "unlisted", "not-checked"]

SIGNATURE_ALGORITHM = "SHA256withRSA"
HASH_ALGORITHM = "SHA-256"
#: A log file is expected in a digest once the digests reach this long after its timestamp (CloudTrail
#: delivers within minutes; a digest lists what was *delivered* in its hour).
LATE_DELIVERY_GRACE = timedelta(hours=1)
_CHUNK = 1 << 16
_ISO = "%Y-%m-%dT%H:%M:%SZ"
_BASIC = "%Y%m%dT%H%M%SZ"

_ORG = r"o-[a-z0-9]{10,32}"
DIGEST_KEY = re.compile(
    r"^(?P<prefix>(?:.*/)?)AWSLogs/(?:(?P<org>" + _ORG + r")/)?(?P<account>\d{12})/CloudTrail-Digest/"
    r"(?P<region>[a-z0-9-]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
    r"(?P=account)_CloudTrail-Digest_(?P=region)_(?P<trail>.+)_(?P<home>[a-z]{2}(?:-[a-z]+)+-\d+)_"
    r"(?P<ts>\d{8}T\d{6}Z)(?P<backfill>_backfill)?\.json\.gz$"
)
LOG_KEY = re.compile(
    r"^(?P<prefix>(?:.*/)?)AWSLogs/(?:(?P<org>" + _ORG + r")/)?(?P<account>\d{12})/CloudTrail/"
    r"(?P<region>[a-z0-9-]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<name>[^/]+)$"
)
_LOG_NAME = re.compile(r"^(?P<account>\d{12})_CloudTrail_(?P<region>[a-z0-9-]+)_(?P<ts>\d{8}T\d{4}Z)_[^/]+\.json\.gz$")

_REQUIRED = (
    "awsAccountId",
    "digestStartTime",
    "digestEndTime",
    "digestS3Bucket",
    "digestS3Object",
    "digestPublicKeyFingerprint",
    "digestSignatureAlgorithm",
    "previousDigestSignature",
    "logFiles",
)
_PREVIOUS = (
    "previousDigestS3Bucket",
    "previousDigestS3Object",
    "previousDigestHashValue",
    "previousDigestHashAlgorithm",
    "previousDigestSignature",
)


class DigestFormatError(ValueError):
    """The object is not a well-formed digest file (not gzip, not JSON, a field missing or mistyped)."""


class ObjectMissing(LookupError):
    """The object does not exist (S3 NoSuchKey / 404, or no such file in a local tree)."""


class AccessError(RuntimeError):
    """The archive or the key list could not be read (permissions, network, endpoint): not an integrity verdict."""


# --------------------------------------------------------------------------- #
# Public keys
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, slots=True)
class PublicKey:
    """One entry of ``ListPublicKeys``: DER PKCS#1 RSA key, valid between two instants (None: open)."""

    fingerprint: str
    der: bytes
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def covers(self, when: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= when) and (
            self.valid_until is None or when <= self.valid_until
        )


KeySource = Callable[[str], Mapping[str, PublicKey]]


def _instant(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value)):
        return datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    raise ValueError(f"not a time: {value!r}")


def load_public_keys(doc: Any) -> dict[str, PublicKey]:
    """Keys by fingerprint from ``aws cloudtrail list-public-keys`` JSON or a boto3 ``list_public_keys`` response.

    Accepts ``{"PublicKeyList": [...]}`` (also the guide's ``publicKeyList``) or the bare list. ``Value``
    is base64 text in the CLI's JSON and raw bytes in a boto3 response. Raises ``ValueError`` naming the
    entry that is malformed.
    """
    entries = doc.get("PublicKeyList", doc.get("publicKeyList")) if isinstance(doc, Mapping) else doc
    if not isinstance(entries, list):
        raise ValueError('no "PublicKeyList" array: not the output of list-public-keys')
    out: dict[str, PublicKey] = {}
    for i, e in enumerate(entries):
        if not isinstance(e, Mapping) or not isinstance(e.get("Fingerprint"), str) or "Value" not in e:
            raise ValueError(f"PublicKeyList[{i}]: needs Fingerprint and Value")
        value = e["Value"]
        try:
            der = bytes(value) if isinstance(value, bytes | bytearray) else base64.b64decode(str(value), validate=True)
            key = PublicKey(
                fingerprint=e["Fingerprint"].lower(),
                der=der,
                valid_from=_instant(e.get("ValidityStartTime")),
                valid_until=_instant(e.get("ValidityEndTime")),
            )
        except (ValueError, binascii.Error, OverflowError) as exc:
            raise ValueError(f"PublicKeyList[{i}] ({e['Fingerprint']}): {exc}") from exc
        out[key.fingerprint] = key
    return out


def static_keys(keys: Mapping[str, PublicKey]) -> KeySource:
    """The same keys for every region (a ``--public-keys`` file, or tests)."""
    frozen = dict(keys)
    return lambda _region: frozen


def cloudtrail_keys(client_for_region: Callable[[str], Any], start: datetime, end: datetime) -> KeySource:
    """Keys from ``cloudtrail:ListPublicKeys`` in each digest's region, fetched once per region.

    CloudTrail signs each region's digests with that region's key, so the lookup is per region. A
    failing call raises :class:`AccessError`.
    """
    cache: dict[str, dict[str, PublicKey]] = {}
    lock = threading.Lock()

    def source(region: str) -> Mapping[str, PublicKey]:
        with lock:
            if region in cache:
                return cache[region]
            try:
                client = client_for_region(region)
                keys: dict[str, PublicKey] = {}
                for page in client.get_paginator("list_public_keys").paginate(StartTime=start, EndTime=end):
                    keys.update(load_public_keys(page))
            except (ClientError, BotoCoreError) as exc:
                raise AccessError(f"cloudtrail:ListPublicKeys in {region}: {exc}") from exc
            cache[region] = keys
            return keys

    return source


# --------------------------------------------------------------------------- #
# Reading the archive
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, slots=True)
class Fetched:
    """An object's bytes and its user metadata (boto3's ``Metadata``: ``x-amz-meta-`` stripped)."""

    body: bytes
    metadata: Mapping[str, str] = field(default_factory=dict)


class ArchiveReader(Protocol):
    """Where the digests and log files are read from (S3, a local tree, a test double)."""

    def list_dirs(self, bucket: str, prefix: str) -> list[str]:
        """The immediate "sub-folders" of ``prefix`` (each ends with ``/``)."""
        ...

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key under ``prefix``."""
        ...

    def get(self, bucket: str, key: str) -> Fetched:
        """The whole object with its metadata; :class:`ObjectMissing` if absent, :class:`AccessError` if unreadable."""
        ...

    def open(self, bucket: str, key: str) -> BinaryIO:
        """A stream of the object; :class:`ObjectMissing` if absent, :class:`AccessError` if unreadable."""
        ...


def _client_error(exc: ClientError, what: str) -> Exception:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code in {"NoSuchKey", "404", "NotFound"}:
        return ObjectMissing(what)
    return AccessError(f"{what}: {code or exc}")


class S3Reader:
    """:class:`ArchiveReader` over an S3 client the caller made (the Lambda's factory, the CLI's boto3)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def list_dirs(self, bucket: str, prefix: str) -> list[str]:
        out: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, Delimiter="/"
            ):
                out.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        except ClientError as exc:
            raise _client_error(exc, f"list s3://{bucket}/{prefix}") from exc
        except BotoCoreError as exc:
            raise AccessError(f"list s3://{bucket}/{prefix}: {exc}") from exc
        return out

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        out: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                out.extend(o["Key"] for o in page.get("Contents", []))
        except ClientError as exc:
            raise _client_error(exc, f"list s3://{bucket}/{prefix}") from exc
        except BotoCoreError as exc:
            raise AccessError(f"list s3://{bucket}/{prefix}: {exc}") from exc
        return out

    def get(self, bucket: str, key: str) -> Fetched:
        try:
            resp = self.client.get_object(Bucket=bucket, Key=key)
            return Fetched(body=resp["Body"].read(), metadata=dict(resp.get("Metadata") or {}))
        except ClientError as exc:
            raise _client_error(exc, f"s3://{bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise AccessError(f"s3://{bucket}/{key}: {exc}") from exc

    def open(self, bucket: str, key: str) -> BinaryIO:
        try:
            body: BinaryIO = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as exc:
            raise _client_error(exc, f"s3://{bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise AccessError(f"s3://{bucket}/{key}: {exc}") from exc
        return body

    def head_metadata(self, bucket: str, key: str) -> Mapping[str, str]:
        """The user metadata only (``--fetch-signatures``)."""
        try:
            return dict(self.client.head_object(Bucket=bucket, Key=key).get("Metadata") or {})
        except ClientError as exc:
            raise _client_error(exc, f"s3://{bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise AccessError(f"s3://{bucket}/{key}: {exc}") from exc


# --------------------------------------------------------------------------- #
# Keys and digests
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, slots=True)
class DigestPath:
    prefix: str
    org: str | None
    account: str
    region: str
    trail: str
    home_region: str
    end: datetime
    backfill: bool

    @property
    def chain(self) -> tuple[str, str, str, str, str, bool]:
        """Digests of one chain share this (one trail delivering to one region folder of one account)."""
        return (
            self.prefix,
            self.org or "",
            self.account,
            self.region,
            self.trail + "/" + self.home_region,
            self.backfill,
        )


@dataclass(frozen=True, slots=True)
class LogPath:
    prefix: str
    org: str | None
    account: str
    region: str
    day: datetime
    at: datetime | None  # the timestamp in a well-formed CloudTrail log file name


def parse_digest_key(key: str) -> DigestPath | None:
    """The parts of a digest key, or None when the key is not a digest file's."""
    m = DIGEST_KEY.match(key)
    if not m:
        return None
    try:
        end = datetime.strptime(m["ts"], _BASIC).replace(tzinfo=UTC)
    except ValueError:
        return None
    return DigestPath(
        prefix=m["prefix"],
        org=m["org"],
        account=m["account"],
        region=m["region"],
        trail=m["trail"],
        home_region=m["home"],
        end=end,
        backfill=bool(m["backfill"]),
    )


def parse_log_key(key: str) -> LogPath | None:
    """The parts of a key under ``.../CloudTrail/<region>/YYYY/MM/DD/``, or None for any other key."""
    m = LOG_KEY.match(key)
    if not m:
        return None
    try:
        day = datetime(int(m["y"]), int(m["m"]), int(m["d"]), tzinfo=UTC)
    except ValueError:
        return None
    at: datetime | None = None
    n = _LOG_NAME.match(m["name"])
    if n and n["account"] == m["account"]:
        try:
            at = datetime.strptime(n["ts"], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
        except ValueError:
            at = None
    return LogPath(prefix=m["prefix"], org=m["org"], account=m["account"], region=m["region"], day=day, at=at)


@dataclass(frozen=True, slots=True)
class LogEntry:
    bucket: str
    key: str
    hash_value: str
    hash_algorithm: str


@dataclass(frozen=True, slots=True)
class Digest:
    """A parsed digest file: where it was read, its uncompressed bytes and the fields verification uses."""

    bucket: str
    key: str
    raw: bytes
    data: Mapping[str, Any]
    log_files: tuple[LogEntry, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def end_time(self) -> datetime:
        return datetime.strptime(str(self.data["digestEndTime"]), _ISO).replace(tzinfo=UTC)

    @property
    def previous(self) -> tuple[str, str] | None:
        b, k = self.data.get("previousDigestS3Bucket"), self.data.get("previousDigestS3Object")
        return (str(b), str(k)) if b and k else None


def _str(data: Mapping[str, Any], name: str, *, nullable: bool = False) -> None:
    v = data.get(name)
    if v is None and nullable:
        return
    if not isinstance(v, str) or not v:
        raise DigestFormatError(f'field "{name}" is {"missing" if name not in data else "not a non-empty string"}')


def parse_digest(bucket: str, key: str, body: bytes) -> Digest:
    """Decompress and check the shape of a digest file. Raises :class:`DigestFormatError` with one line."""
    try:
        raw = gzip.decompress(body)
    except (OSError, EOFError, zlib.error) as exc:
        raise DigestFormatError(f"not a complete gzip file ({exc or type(exc).__name__})") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DigestFormatError(f"not JSON ({str(exc).splitlines()[0][:120]})") from exc
    if not isinstance(data, dict):
        raise DigestFormatError("not a JSON object")
    for name in _REQUIRED:
        if name not in data:
            raise DigestFormatError(f'field "{name}" is missing')
    for name in ("awsAccountId", "digestStartTime", "digestEndTime", "digestS3Bucket", "digestS3Object"):
        _str(data, name)
    _str(data, "digestPublicKeyFingerprint")
    _str(data, "digestSignatureAlgorithm")
    for name in _PREVIOUS:
        _str(data, name, nullable=True)
    nulls = [data.get(n) is None for n in _PREVIOUS]
    if any(nulls) and not all(nulls):
        raise DigestFormatError("previous-digest fields are partly null (a starting digest has all five null)")
    for name in ("digestStartTime", "digestEndTime"):
        try:
            datetime.strptime(data[name], _ISO)
        except ValueError as exc:
            raise DigestFormatError(f'field "{name}" is not a UTC time like 2015-08-17T15:01:31Z') from exc
    logs = data["logFiles"]
    if not isinstance(logs, list):
        raise DigestFormatError('field "logFiles" is not an array')
    entries = []
    for i, lf in enumerate(logs):
        if not isinstance(lf, dict):
            raise DigestFormatError(f"logFiles[{i}] is not an object")
        for name in ("s3Bucket", "s3Object", "hashValue", "hashAlgorithm"):
            if not isinstance(lf.get(name), str) or not lf[name]:
                raise DigestFormatError(f'logFiles[{i}]: field "{name}" is missing or not a string')
        entries.append(LogEntry(lf["s3Bucket"], lf["s3Object"], lf["hashValue"].lower(), lf["hashAlgorithm"]))
    return Digest(bucket=bucket, key=key, raw=raw, data=data, log_files=tuple(entries))


def string_to_sign(digest: Digest) -> bytes:
    """The documented data-signing string (a starting digest signs the literal ``null``)."""
    d = digest.data
    previous = d.get("previousDigestSignature")
    return "\n".join(
        (
            str(d["digestEndTime"]),
            f"{d['digestS3Bucket']}/{d['digestS3Object']}",
            digest.sha256,
            "null" if previous is None else str(previous),
        )
    ).encode("utf-8")


def check_signature(digest: Digest, signature_hex: str, keys: Mapping[str, PublicKey]) -> str | None:
    """None when the signature verifies; otherwise the one-line reason (unknown key, outside validity, bad)."""
    algorithm = str(digest.data.get("digestSignatureAlgorithm"))
    if algorithm != SIGNATURE_ALGORITHM:
        return f"unsupported signature algorithm {algorithm!r} (expected {SIGNATURE_ALGORITHM})"
    fingerprint = str(digest.data["digestPublicKeyFingerprint"]).lower()
    key = keys.get(fingerprint)
    if key is None:
        return f"unknown key fingerprint {fingerprint} (not among the {len(keys)} public key(s) of this region)"
    end = digest.end_time
    if not key.covers(end):
        window = f"{_fmt(key.valid_from)} .. {_fmt(key.valid_until)}"
        return f"key {fingerprint} was not valid at {end.strftime(_ISO)} (valid {window})"
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        return "signature is not hexadecimal"
    try:
        public = serialization.load_der_public_key(key.der)
    except ValueError as exc:
        return f"public key {fingerprint} is not a DER RSA key ({exc})"
    if not isinstance(public, rsa.RSAPublicKey):
        return f"public key {fingerprint} is not an RSA key"
    try:
        public.verify(signature, string_to_sign(digest), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return "signature does not verify (the digest or its signature was changed)"
    return None


def _fmt(t: datetime | None) -> str:
    return t.strftime(_ISO) if t else "open"


def hash_log_stream(stream: BinaryIO) -> str:
    """SHA-256 (hex) of the uncompressed content of a gzip stream; ``DigestFormatError`` if it is not gzip."""
    h = hashlib.sha256()
    d = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            while chunk:
                h.update(d.decompress(chunk))
                if d.eof and d.unused_data:  # a second gzip member
                    chunk = d.unused_data
                    d = zlib.decompressobj(zlib.MAX_WBITS | 16)
                else:
                    chunk = b""
        h.update(d.flush())
    except zlib.error as exc:
        raise DigestFormatError(f"not a gzip file ({exc})") from exc
    if not d.eof:
        raise DigestFormatError("truncated gzip file")
    return h.hexdigest()


# --------------------------------------------------------------------------- #
# Results
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, slots=True)
class DigestResult:
    bucket: str
    key: str
    status: DigestStatus
    reason: str = ""
    account: str = ""
    region: str = ""
    end_time: str = ""
    log_files: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "status": self.status,
            "reason": self.reason,
            "account": self.account,
            "region": self.region,
            "end_time": self.end_time,
            "log_files": self.log_files,
        }


@dataclass(frozen=True, slots=True)
class LogResult:
    bucket: str
    key: str
    status: LogStatus
    reason: str = ""
    digest_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "status": self.status,
            "reason": self.reason,
            "digest": self.digest_key,
        }


@dataclass(frozen=True, slots=True)
class Problem:
    kind: Literal["digest", "log file"]
    bucket: str
    key: str
    status: str
    reason: str

    def line(self) -> str:
        return f"s3://{self.bucket}/{self.key}: {self.kind} {self.status}: {self.reason}"


DIGEST_FAILURES = frozenset({"invalid", "missing"})
LOG_FAILURES = frozenset({"modified", "deleted", "unlisted"})


@dataclass
class Report:
    digests: list[DigestResult] = field(default_factory=list)
    logs: list[LogResult] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        d = dict.fromkeys(("valid", "invalid", "missing", "not-checked"), 0)
        for r in self.digests:
            d[r.status] += 1
        lg = dict.fromkeys(("valid", "modified", "deleted", "unlisted", "not-checked"), 0)
        for x in self.logs:
            lg[x.status] += 1
        return {"digests": d, "log_files": lg}

    def problems(self) -> list[Problem]:
        """Every failure and every unchecked object, digests first, each sorted by key."""
        out = [
            Problem("digest", r.bucket, r.key, r.status, r.reason)
            for r in sorted(self.digests, key=lambda r: (r.bucket, r.key))
            if r.status != "valid"
        ]
        out += [
            Problem("log file", r.bucket, r.key, r.status, r.reason)
            for r in sorted(self.logs, key=lambda r: (r.bucket, r.key))
            if r.status != "valid"
        ]
        return out

    @property
    def ok(self) -> bool:
        """No integrity failure (objects not checked are not failures; they are listed as problems)."""
        return not any(r.status in DIGEST_FAILURES for r in self.digests) and not any(
            r.status in LOG_FAILURES for r in self.logs
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": self.counts(),
            "problems": [p.line() for p in self.problems()],
            "digests": [r.to_json() for r in sorted(self.digests, key=lambda r: (r.bucket, r.key))],
            "log_files": [r.to_json() for r in sorted(self.logs, key=lambda r: (r.bucket, r.key))],
        }


# --------------------------------------------------------------------------- #
# Verification
# --------------------------------------------------------------------------- #
Progress = Callable[[str, int], None]  # (phase, objects done in this call); phases: "digests", "log files"


@dataclass
class _Loaded:
    path: DigestPath | None
    bucket: str
    key: str
    digest: Digest | None = None
    metadata: Mapping[str, str] | None = None
    error: str = ""
    missing: bool = False


def _load(reader: ArchiveReader, bucket: str, key: str) -> _Loaded:
    item = _Loaded(parse_digest_key(key), bucket, key)
    try:
        fetched = reader.get(bucket, key)
    except ObjectMissing:
        item.missing = True
        return item
    item.metadata = fetched.metadata
    try:
        item.digest = parse_digest(bucket, key, fetched.body)
    except DigestFormatError as exc:
        item.error = f"malformed digest: {exc}"
    return item


def _signature_from_metadata(meta: Mapping[str, str] | None) -> tuple[str | None, str]:
    """(signature hex or None, why it is absent)."""
    if meta is None:
        return None, "no signature metadata"
    lowered = {k.lower(): v for k, v in meta.items()}
    sig = lowered.get("signature")
    alg = lowered.get("signature-algorithm")
    if not sig:
        return None, "signature metadata (x-amz-meta-signature) is missing"
    if alg is not None and alg != SIGNATURE_ALGORITHM:
        return None, f"signature algorithm metadata is {alg!r} (expected {SIGNATURE_ALGORITHM})"
    return sig, ""


def _verify_logs(
    reader: ArchiveReader,
    jobs: list[tuple[LogEntry, str, bool]],
    workers: int,
    progress: Progress | None,
) -> list[LogResult]:
    """Hash every listed log file: (entry, digest key, digest verified?) -> result."""

    def one(job: tuple[LogEntry, str, bool]) -> LogResult:
        entry, digest_key, trusted = job
        if entry.hash_algorithm != HASH_ALGORITHM:
            return LogResult(
                entry.bucket, entry.key, "modified", f"unsupported hash algorithm {entry.hash_algorithm!r}", digest_key
            )
        try:
            with reader.open(entry.bucket, entry.key) as stream:
                actual = hash_log_stream(stream)
        except ObjectMissing:
            return LogResult(
                entry.bucket, entry.key, "deleted", f"listed in digest {digest_key} but absent", digest_key
            )
        except DigestFormatError as exc:
            return LogResult(entry.bucket, entry.key, "modified", f"{exc} (listed in digest {digest_key})", digest_key)
        if actual != entry.hash_value:
            return LogResult(
                entry.bucket,
                entry.key,
                "modified",
                f"SHA-256 of the uncompressed content is {actual[:16]}…, digest {digest_key} lists {entry.hash_value[:16]}…",
                digest_key,
            )
        if not trusted:
            return LogResult(
                entry.bucket,
                entry.key,
                "not-checked",
                f"hash matches digest {digest_key}, whose signature was not checked",
                digest_key,
            )
        return LogResult(entry.bucket, entry.key, "valid", "", digest_key)

    return bounded_map(one, jobs, workers, progress, "log files")


def bounded_map(
    fn: Callable[[Any], Any], items: list[Any], workers: int, progress: Progress | None, phase: str
) -> list[Any]:
    """``[fn(x) for x in items]`` on at most ``workers`` threads, in input order, ticking ``progress``."""
    if not items:
        return []
    out: list[Any] = []
    if workers <= 1 or len(items) == 1:
        for it in items:
            out.append(fn(it))
            if progress:
                progress(phase, 1)
        return out
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        for r in pool.map(fn, items):  # map keeps input order: results are deterministic
            out.append(r)
            if progress:
                progress(phase, 1)
    return out


def _prev_ref(item: _Loaded, offline: bool) -> tuple[str, str] | None:
    """Where this digest's predecessor is in the archive being read (a local tree may drop the prefix)."""
    d = item.digest
    if d is None or d.previous is None:
        return None
    if not offline:
        return d.previous
    return (item.bucket, _local_key(d.previous[1], item, offline))


def _region_of(item: _Loaded) -> str:
    if item.path:
        return item.path.region
    if item.digest:
        p = parse_digest_key(str(item.digest.data["digestS3Object"]))
        if p:
            return p.region
    return ""


def _offline_signature(signatures: Mapping[str, str], item: _Loaded) -> str | None:
    """A local tree's side file is keyed by the S3 key the digest names for itself."""
    if item.digest is None:
        return None
    return signatures.get(str(item.digest.data["digestS3Object"])) or signatures.get(item.key)


def _judge(
    loaded: Mapping[tuple[str, str], _Loaded],
    keys: KeySource,
    signatures: Mapping[str, str],
    offline: bool,
) -> dict[tuple[str, str], DigestResult]:
    """Verdicts for every loaded digest: format, location and signature (the chain is judged after)."""
    # The documented offline method: a digest's signature is also its successor's previousDigestSignature.
    successor_sig: dict[tuple[str, str], str] = {}
    for item in loaded.values():
        prev = _prev_ref(item, offline)
        if prev is not None and item.digest is not None:
            successor_sig.setdefault(prev, str(item.digest.data["previousDigestSignature"]))
    verdicts: dict[tuple[str, str], DigestResult] = {}
    for ref, item in loaded.items():
        p = item.path
        acct, region = (p.account if p else ""), _region_of(item)
        if item.missing:
            verdicts[ref] = DigestResult(item.bucket, item.key, "missing", "listed, but absent when read", acct, region)
            continue
        d = item.digest
        if d is None:
            verdicts[ref] = DigestResult(item.bucket, item.key, "invalid", item.error, acct, region)
            continue
        base: dict[str, Any] = {
            "account": acct or str(d.data["awsAccountId"]),
            "region": region,
            "end_time": str(d.data["digestEndTime"]),
            "log_files": len(d.log_files),
        }
        if not _same_location(d, item, offline):
            where = f"s3://{d.data['digestS3Bucket']}/{d.data['digestS3Object']}"
            verdicts[ref] = DigestResult(
                item.bucket, item.key, "invalid", f"moved: the digest says it was delivered to {where}", **base
            )
            continue
        if offline:
            sig, why = _offline_signature(signatures, item) or successor_sig.get(ref), ""
        else:
            sig, why = _signature_from_metadata(item.metadata)
        if sig is None:
            if offline:
                why = "signature not checked: not in the side file (run verify --fetch-signatures), no successor"
                verdicts[ref] = DigestResult(item.bucket, item.key, "not-checked", why, **base)
            else:
                verdicts[ref] = DigestResult(item.bucket, item.key, "invalid", why, **base)
            continue
        reason = check_signature(d, sig, keys(region))
        verdicts[ref] = DigestResult(item.bucket, item.key, "invalid" if reason else "valid", reason or "", **base)
    return verdicts


def _same_location(d: Digest, item: _Loaded, offline: bool) -> bool:
    claimed = str(d.data["digestS3Object"])
    if not offline:
        return d.data["digestS3Bucket"] == item.bucket and claimed == item.key
    # A local tree may be synced from the bucket root or from the prefix: the claimed key must end with
    # the local path from AWSLogs/ on (the guide's "path resolution" for offline validation).
    local = item.key[item.key.find("AWSLogs/") :] if "AWSLogs/" in item.key else item.key
    return claimed in {item.key, local} or claimed.endswith("/" + local)


def _link(newer: Digest, older_item: _Loaded, older_sig: str | None) -> str | None:
    """Why the link from ``newer`` to its predecessor is broken (None: intact)."""
    older = older_item.digest
    if older is None:
        return None  # the predecessor is itself reported invalid
    alg = newer.data.get("previousDigestHashAlgorithm")
    if alg != HASH_ALGORITHM:
        return f"unsupported previousDigestHashAlgorithm {alg!r}"
    if str(newer.data.get("previousDigestHashValue", "")).lower() != older.sha256:
        return f"previousDigestHashValue does not match the content of {older_item.key}"
    if older_sig is not None and str(newer.data.get("previousDigestSignature", "")).lower() != older_sig.lower():
        return f"previousDigestSignature does not match the signature of {older_item.key}"
    return None


def _chain_pass(
    reader: ArchiveReader,
    loaded: dict[tuple[str, str], _Loaded],
    verdicts: dict[tuple[str, str], DigestResult],
    *,
    signatures: Mapping[str, str],
    offline: bool,
    since: datetime | None,
) -> None:
    """Follow each digest's previous-digest reference: missing predecessors, and links that do not hold."""
    for ref in sorted(verdicts):
        item = loaded[ref]
        prev = _prev_ref(item, offline)
        if item.digest is None or prev is None:
            continue
        prev_path = parse_digest_key(prev[1])
        if prev not in loaded:
            if prev_path is not None and since is not None and prev_path.end < since:
                continue  # the chain leaves the requested range
            loaded[prev] = _load(reader, prev[0], prev[1])
        older = loaded[prev]
        if older.missing:
            verdicts[prev] = DigestResult(
                prev[0],
                prev[1],
                "missing",
                f"named as the previous digest by {item.key}, but absent",
                prev_path.account if prev_path else "",
                prev_path.region if prev_path else "",
                prev_path.end.strftime(_ISO) if prev_path else "",
            )
            continue
        older_sig = _offline_signature(signatures, older) if offline else _signature_from_metadata(older.metadata)[0]
        why = _link(item.digest, older, older_sig)
        v = verdicts[ref]
        if why and v.status != "invalid":
            verdicts[ref] = DigestResult(
                v.bucket, v.key, "invalid", f"chain broken: {why}", v.account, v.region, v.end_time, v.log_files
            )


def _local_key(claimed: str, item: _Loaded, offline: bool) -> str:
    """Where a key named inside a digest is found in this archive (a local tree may drop the prefix)."""
    if not offline or claimed == item.key or "AWSLogs/" not in item.key or "AWSLogs/" not in claimed:
        return claimed
    return item.key[: item.key.find("AWSLogs/")] + claimed[claimed.find("AWSLogs/") :]


def _assemble(
    reader: ArchiveReader,
    loaded: dict[tuple[str, str], _Loaded],
    keys: KeySource,
    *,
    signatures: Mapping[str, str],
    offline: bool,
    since: datetime | None,
    workers: int,
    progress: Progress | None,
) -> Report:
    verdicts = _judge(loaded, keys, signatures, offline)
    _chain_pass(reader, loaded, verdicts, signatures=signatures, offline=offline, since=since)
    jobs: list[tuple[LogEntry, str, bool]] = []
    seen: dict[tuple[str, str], int] = {}
    skipped: dict[tuple[str, str], LogResult] = {}
    for ref in sorted(verdicts):
        item = loaded[ref]
        if item.digest is None:
            continue
        status = verdicts[ref].status
        for e in item.digest.log_files:
            entry = LogEntry(
                item.bucket if offline else e.bucket, _local_key(e.key, item, offline), e.hash_value, e.hash_algorithm
            )
            where = (entry.bucket, entry.key)
            if status == "invalid":
                skipped.setdefault(
                    where,
                    LogResult(*where, "not-checked", f"listed only in digest {item.key}, which is invalid", item.key),
                )
                continue
            if where in seen:  # listed twice (a backfill digest): prefer the verified listing
                idx = seen[where]
                if status == "valid" and not jobs[idx][2]:
                    jobs[idx] = (entry, item.key, True)
                continue
            seen[where] = len(jobs)
            jobs.append((entry, item.key, status == "valid"))
    logs = _verify_logs(reader, jobs, workers, progress)
    logs += [r for where, r in sorted(skipped.items()) if where not in seen]
    return Report(digests=list(verdicts.values()), logs=logs)


def verify_digest_object(
    reader: ArchiveReader,
    bucket: str,
    key: str,
    keys: KeySource,
    *,
    workers: int = 8,
) -> Report:
    """Verify one delivered digest: its signature and location, the link to its predecessor (which must
    exist and match), and every log file it lists. For the Lambda that runs on each digest's arrival.

    Raises :class:`AccessError` when the archive or the keys cannot be read (not an integrity verdict).
    """
    item = _load(reader, bucket, key)
    if item.missing:
        return Report(digests=[DigestResult(bucket, key, "missing", "the digest named by the notification is absent")])
    loaded = {(bucket, key): item}
    return _assemble(reader, loaded, keys, signatures={}, offline=False, since=None, workers=workers, progress=None)


def _days(since: datetime, until: datetime) -> Iterator[datetime]:
    day = datetime(since.year, since.month, since.day, tzinfo=UTC)
    while day <= until:
        yield day
        day += timedelta(days=1)


def _account_roots(reader: ArchiveReader, bucket: str, prefix: str, accounts: set[str] | None) -> list[str]:
    base = prefix + "AWSLogs/"
    roots: list[str] = []
    for d in reader.list_dirs(bucket, base):
        name = d[len(base) :].rstrip("/")
        if re.fullmatch(r"\d{12}", name):
            if not accounts or name in accounts:
                roots.append(d)
        elif re.fullmatch(_ORG, name):
            for a in reader.list_dirs(bucket, d):
                acct = a[len(d) :].rstrip("/")
                if re.fullmatch(r"\d{12}", acct) and (not accounts or acct in accounts):
                    roots.append(a)
    return sorted(roots)


def _list_kind(
    reader: ArchiveReader, bucket: str, root: str, kind: str, *, since: datetime | None, until: datetime | None
) -> list[str]:
    """Keys under ``root/<kind>/<region>/...``, by day folders when a range is given."""
    out: list[str] = []
    for region_dir in reader.list_dirs(bucket, f"{root}{kind}/"):
        if since is None or until is None:
            out.extend(reader.list_keys(bucket, region_dir))
            continue
        for day in _days(since - timedelta(days=1), until + timedelta(days=1)):
            out.extend(reader.list_keys(bucket, f"{region_dir}{day.strftime('%Y/%m/%d')}/"))
    return out


def list_digest_keys(
    reader: ArchiveReader,
    bucket: str,
    prefix: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    accounts: Iterable[str] | None = None,
) -> list[str]:
    """The digest keys of an archive whose end time (in the key) lies in [since, until + 1 h], sorted."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    upper = until + timedelta(hours=1) if until else None
    out: set[str] = set()
    for root in _account_roots(reader, bucket, prefix, set(accounts or ()) or None):
        for k in _list_kind(reader, bucket, root, "CloudTrail-Digest", since=since, until=until):
            p = parse_digest_key(k)
            if p is not None and not (since and p.end < since) and not (upper and p.end > upper):
                out.add(k)
    return sorted(out)


def verify_archive(
    reader: ArchiveReader,
    bucket: str,
    prefix: str,
    keys: KeySource,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    accounts: Iterable[str] | None = None,
    regions: Iterable[str] | None = None,
    signatures: Mapping[str, str] | None = None,
    workers: int = 16,
    progress: Progress | None = None,
) -> Report:
    """Verify every digest (and every log file) of an archive, or of a time/account/region slice of it.

    ``prefix`` is the trail's S3 key prefix with its trailing ``/`` (``""`` for none). With
    ``signatures`` (key -> hex, a local tree's side file) the archive is treated as offline: signatures
    are not read from object metadata, and a digest without one is "not-checked" unless its successor
    carries it. ``since``/``until`` select digests by the end time in their key (until + 1 h, for log
    files delivered after ``until``) and log files by their timestamp. ``regions`` keeps digests of those
    region folders and digests listing a log file of those regions. Reads run on ``workers`` threads.
    Raises :class:`AccessError` when the archive or the keys cannot be read.
    """
    offline = signatures is not None
    sigs = dict(signatures or {})
    acct_filter = set(accounts or ()) or None
    region_filter = set(regions or ()) or None
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    chosen = list_digest_keys(reader, bucket, prefix, since=since, until=until, accounts=acct_filter)
    log_keys: list[str] = []
    for root in _account_roots(reader, bucket, prefix, acct_filter):
        log_keys += _list_kind(reader, bucket, root, "CloudTrail", since=since, until=until)
    loaded_list = bounded_map(lambda k: _load(reader, bucket, k), chosen, workers, progress, "digests")
    loaded: dict[tuple[str, str], _Loaded] = {(it.bucket, it.key): it for it in loaded_list}
    if region_filter:
        loaded = {
            ref: it
            for ref, it in loaded.items()
            if (it.path and it.path.region in region_filter)
            or (
                it.digest
                and any((lp := parse_log_key(e.key)) and lp.region in region_filter for e in it.digest.log_files)
            )
        }
    report = _assemble(
        reader, loaded, keys, signatures=sigs, offline=offline, since=since, workers=workers, progress=progress
    )
    report.logs += _unlisted(
        loaded, log_keys, bucket, since=since, until=until, region_filter=region_filter, offline=offline
    )
    return report


def _unlisted(
    loaded: Mapping[tuple[str, str], _Loaded],
    log_keys: list[str],
    bucket: str,
    *,
    since: datetime | None,
    until: datetime | None,
    region_filter: set[str] | None,
    offline: bool,
) -> list[LogResult]:
    """Log files in the archive that no digest lists although the account's digests cover their hour."""
    listed: set[str] = set()
    coverage: dict[str, tuple[datetime, datetime]] = {}
    for item in loaded.values():
        d = item.digest
        if d is None:
            continue
        listed.update(_local_key(e.key, item, offline) for e in d.log_files if offline or e.bucket == bucket)
        acct = item.path.account if item.path else str(d.data["awsAccountId"])
        start = datetime.strptime(str(d.data["digestStartTime"]), _ISO).replace(tzinfo=UTC)
        lo, hi = coverage.get(acct, (start, d.end_time))
        coverage[acct] = (min(lo, start), max(hi, d.end_time))
    out: list[LogResult] = []
    for k in sorted(set(log_keys)):
        if k in listed:
            continue
        lp = parse_log_key(k)
        if lp is None or (region_filter and lp.region not in region_filter):
            continue
        when = lp.at or lp.day
        if (since and when < since) or (until and when > until):
            continue
        cov = coverage.get(lp.account)
        if cov is None:
            continue
        if lp.at is None:
            # Not a CloudTrail log file name: planted if its day folder lies inside the covered span.
            if cov[0] - timedelta(days=1) < lp.day <= cov[1]:
                out.append(LogResult(bucket, k, "unlisted", "not a CloudTrail log file name, and no digest lists it"))
            continue
        if cov[0] <= lp.at and lp.at + LATE_DELIVERY_GRACE <= cov[1]:
            out.append(
                LogResult(
                    bucket,
                    k,
                    "unlisted",
                    f"no digest lists it, though digests cover {lp.at.strftime(_ISO)} and the hour after",
                )
            )
    return out
