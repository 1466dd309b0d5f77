"""``trailguard verify``: the reading side of log file integrity (the judging is in ``trailguard_engine.integrity``).

Two kinds of archive:

* ``s3://bucket[/prefix]``, read with boto3 (signatures from each digest's object metadata);
* a local tree synced from the archive (``aws s3 sync``), which has no object metadata: the signatures
  come from a side file written beforehand by ``trailguard verify s3://... --fetch-signatures FILE``
  (one HeadObject per digest), or else from each digest's successor, as the AWS guide describes for
  offline validation; the newest digest of a chain without either is reported "not checked".

Public keys come from ``--public-keys FILE`` (the JSON of ``aws cloudtrail list-public-keys``, for
air-gapped forensics) or from ``cloudtrail:ListPublicKeys`` in each digest's region.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from trailguard_engine import integrity as ig

from trailguard.exceptions import TrailguardError

SIDE_FILE_NAME = "trailguard-signatures.json"
SIDE_FILE_FORMAT = "trailguard-digest-signatures/1"
LOCAL_BUCKET = "(local)"
#: ListPublicKeys needs a range; CloudTrail log file validation did not exist before this.
CLOUDTRAIL_EPOCH = datetime(2015, 1, 1, tzinfo=UTC)
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 4},
    max_pool_connections=64,
    user_agent_extra="trailguard-verify",
)


class VerifyUsageError(TrailguardError):
    """The command line cannot be acted on (exit 2)."""


class VerifyAccessError(TrailguardError):
    """The archive, the keys or a side file could not be read (exit 2)."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where the archive is: S3 (bucket, prefix) or a local directory (root, prefix inside it)."""

    kind: str  # "s3" | "local"
    bucket: str
    prefix: str
    root: Path | None = None

    def describe(self) -> str:
        if self.kind == "s3":
            return f"s3://{self.bucket}/{self.prefix}"
        return str(self.root)


def parse_source(text: str) -> Source:
    """``s3://bucket[/prefix]`` or an existing directory; raises :class:`VerifyUsageError` otherwise."""
    if text.startswith("s3://"):
        rest = text[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise VerifyUsageError(f"{text}: no bucket name")
        prefix = prefix.strip("/")
        return Source("s3", bucket, prefix + "/" if prefix else "")
    root = Path(text)
    if not root.is_dir():
        raise VerifyUsageError(f"{text}: not s3://bucket[/prefix] and not a directory")
    return Source("local", LOCAL_BUCKET, _local_prefix(root), root)


def _local_prefix(root: Path, depth: int = 4) -> str:
    """The path from the tree's root to its ``AWSLogs`` folder (a tree may be synced from the bucket root)."""
    if (root / "AWSLogs").is_dir():
        return ""
    frontier = [root]
    for _ in range(depth):
        nxt = []
        for d in frontier:
            for child in sorted(p for p in d.iterdir() if p.is_dir()):
                if (child / "AWSLogs").is_dir():
                    return child.relative_to(root).as_posix() + "/"
                nxt.append(child)
        frontier = nxt
    raise VerifyUsageError(f"{root}: no AWSLogs folder in the first {depth} levels (is this a CloudTrail archive?)")


class LocalTreeReader:
    """:class:`trailguard_engine.integrity.ArchiveReader` over a synced directory; keys are relative paths."""

    def __init__(self, root: Path) -> None:
        # Resolved once: keys are paths relative to it, and a relative root (``verify logs``) must work too.
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if not p.is_relative_to(self.root.resolve()):
            raise ig.ObjectMissing(key)
        return p

    def list_dirs(self, bucket: str, prefix: str) -> list[str]:
        d = self._path(prefix)
        if not d.is_dir():
            return []
        return sorted(f"{prefix}{c.name}/" for c in d.iterdir() if c.is_dir())

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        d = self._path(prefix)
        if not d.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in d.rglob("*") if p.is_file())

    def get(self, bucket: str, key: str) -> ig.Fetched:
        try:
            return ig.Fetched(body=self._path(key).read_bytes(), metadata={})
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ig.ObjectMissing(key) from exc
        except OSError as exc:
            raise ig.AccessError(f"{self.root / key}: {exc.strerror or exc}") from exc

    def open(self, bucket: str, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ig.ObjectMissing(key) from exc
        except OSError as exc:
            raise ig.AccessError(f"{self.root / key}: {exc.strerror or exc}") from exc


def make_client(service: str, region: str | None, endpoint_url: str | None = None) -> Any:
    """The one place ``verify`` makes AWS clients (tests replace it)."""
    make: Any = boto3.client  # boto3-stubs types client() per service literal; ours is dynamic
    return make(service, region_name=region, endpoint_url=endpoint_url, config=_CLIENT_CONFIG)


def load_key_files(paths: Iterable[Path]) -> dict[str, ig.PublicKey]:
    """Keys from one or more ``list-public-keys`` JSON files (one per region, merged by fingerprint)."""
    keys: dict[str, ig.PublicKey] = {}
    for path in paths:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise VerifyAccessError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        except ValueError as exc:
            raise VerifyUsageError(f"{path}: not JSON ({exc})") from exc
        try:
            keys.update(ig.load_public_keys(doc))
        except ValueError as exc:
            raise VerifyUsageError(f"{path}: {exc}") from exc
    return keys


def key_source(
    key_files: list[Path],
    *,
    region: str | None,
    endpoint_url: str | None,
    since: datetime | None,
    until: datetime,
) -> ig.KeySource:
    """``--public-keys`` files when given, else ``cloudtrail:ListPublicKeys`` in each digest's region."""
    if key_files:
        return ig.static_keys(load_key_files(key_files))
    return ig.cloudtrail_keys(
        lambda r: make_client("cloudtrail", r or region, endpoint_url), since or CLOUDTRAIL_EPOCH, until
    )


def read_side_file(path: Path) -> dict[str, str]:
    """Digest key -> signature (hex) from a side file written by :func:`write_side_file`."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise VerifyAccessError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise VerifyUsageError(f"{path}: not JSON ({exc})") from exc
    if (
        not isinstance(doc, dict)
        or doc.get("format") != SIDE_FILE_FORMAT
        or not isinstance(doc.get("signatures"), dict)
    ):
        raise VerifyUsageError(f'{path}: not a signatures file (expected "format": "{SIDE_FILE_FORMAT}")')
    out: dict[str, str] = {}
    for key, entry in doc["signatures"].items():
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("signature"), str)
            and entry.get("signature-algorithm", ig.SIGNATURE_ALGORITHM) == ig.SIGNATURE_ALGORITHM
        ):
            out[str(key)] = entry["signature"]
    return out


def fetch_signatures(
    reader: ig.S3Reader,
    source: Source,
    *,
    since: datetime | None,
    until: datetime | None,
    accounts: Iterable[str] | None,
    workers: int,
    progress: ig.Progress | None = None,
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Every digest's signature metadata: (key -> {signature, signature-algorithm}, keys without metadata)."""
    keys = ig.list_digest_keys(reader, source.bucket, source.prefix, since=since, until=until, accounts=accounts)

    def one(key: str) -> tuple[str, Mapping[str, str] | None]:
        try:
            meta = {k.lower(): v for k, v in reader.head_metadata(source.bucket, key).items()}
        except ig.ObjectMissing:
            return key, None
        return key, meta if meta.get("signature") else None

    found: dict[str, dict[str, str]] = {}
    without: list[str] = []
    for key, meta in ig.bounded_map(one, keys, workers, progress, "digests"):
        if meta is None:
            without.append(key)
        else:
            found[key] = {
                "signature": meta["signature"],
                "signature-algorithm": meta.get("signature-algorithm", ig.SIGNATURE_ALGORITHM),
            }
    return found, without


def write_side_file(path: Path, source: Source, signatures: Mapping[str, Mapping[str, str]]) -> None:
    doc = {
        "format": SIDE_FILE_FORMAT,
        "bucket": source.bucket,
        "prefix": source.prefix,
        "signatures": {k: dict(signatures[k]) for k in sorted(signatures)},
    }
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise VerifyAccessError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def run(
    source: Source,
    keys: ig.KeySource,
    *,
    since: datetime | None,
    until: datetime | None,
    accounts: Iterable[str] | None,
    regions: Iterable[str] | None,
    signatures_file: Path | None,
    endpoint_url: str | None,
    region: str | None,
    workers: int,
    progress: ig.Progress | None = None,
    reader_factory: Callable[[Source], ig.ArchiveReader] | None = None,
) -> ig.Report:
    """Verify the archive; :class:`VerifyAccessError` when it (or the keys) cannot be read."""
    signatures: dict[str, str] | None = None
    reader: ig.ArchiveReader
    if reader_factory is not None:
        reader = reader_factory(source)
    elif source.kind == "s3":
        reader = ig.S3Reader(make_client("s3", region, endpoint_url))
    else:
        assert source.root is not None
        reader = LocalTreeReader(source.root)
    if source.kind == "local":
        assert source.root is not None
        side = signatures_file or source.root / SIDE_FILE_NAME
        signatures = read_side_file(side) if side.is_file() or signatures_file else {}
    try:
        return ig.verify_archive(
            reader,
            source.bucket,
            source.prefix,
            keys,
            since=since,
            until=until,
            accounts=accounts,
            regions=regions,
            signatures=signatures,
            workers=workers,
            progress=progress,
        )
    except ig.AccessError as exc:
        raise VerifyAccessError(str(exc)) from exc


def parse_time(text: str) -> datetime:
    """``2026-10-01``, ``2026-10-01T12:00Z``, ``2026-10-01T12:00:00+00:00`` ... (UTC when no offset)."""
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise VerifyUsageError(f"{text!r}: not an ISO 8601 time (for example 2026-10-01T12:00:00Z)") from exc
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
