"""Record sets for the replay and hunt benchmarks: N records in 100 gzip CloudTrail log files.

Why: issue 19 asks for benchmarks on a realistic record mix, so the records come from the shared corpus of real
CloudTrail events (``../shared/corpus`` beside the checkout) when it is present, else from the synthetic generator
in :mod:`bench.replay`. The corpus records are cycled (copy k of a record gets a fresh, deterministic ``eventID``)
and the files are laid out as CloudTrail delivers them, ``AWSLogs/<account>/CloudTrail/<region>/yyyy/MM/dd/``,
over 2 accounts x 2 regions x 25 days (one file per partition), so hunt's partition columns and file pruning
work on real paths. Each record's ``recipientAccountId``, ``awsRegion`` and ``eventTime`` date are set to its
file's partition (the time of day is kept), as in a real trail.

Sets are cached under ``$TRAILGUARD_BENCH_CACHE`` (default: ``<tmp>/trailguard-bench``), keyed by N and source.

    .venv/bin/python -m bench.corpus_set 200000
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
FILES = 100
ACCOUNTS: tuple[str, ...] = ("111122223333", "444455556666")
REGIONS: tuple[str, ...] = ("us-east-1", "eu-west-1")
FIRST_DAY = 1  # 2026-10-01 .. 2026-10-25
LAYOUT_VERSION = 3  # bump when the layout or the record rewriting changes (invalidates the cache)


@dataclass(frozen=True)
class RecordSet:
    """A built set: its root directory (holding ``AWSLogs/``), its files and what it was built from."""

    root: Path
    files: tuple[Path, ...]
    records: int
    source: str  # "corpus" or "synthetic"
    base_records: int  # distinct records cycled (corpus) or generated

    @property
    def gzip_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def partition(index: int) -> tuple[str, str, str]:
    """(account, region, yyyy/MM/dd) of file ``index``: 100 files = 2 accounts x 2 regions x 25 days."""
    account = ACCOUNTS[index % len(ACCOUNTS)]
    region = REGIONS[(index // len(ACCOUNTS)) % len(REGIONS)]
    day = FIRST_DAY + index // (len(ACCOUNTS) * len(REGIONS))
    return account, region, f"2026/10/{day:02d}"


def corpus_records(corpus: Path = CORPUS) -> list[dict[str, Any]]:
    """Every corpus record once (labels files and panther's per-rule copies of all_records left out)."""
    out: list[dict[str, Any]] = []
    for path in sorted(corpus.rglob("*.jsonl")):
        rel = path.relative_to(corpus).as_posix()
        if path.name.endswith(".labels.jsonl") or rel.startswith("panther-analysis/rules/"):
            continue
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            rec = orjson.loads(line)
            if _is_log_record(rec):
                out.append(rec)
    return out


def _is_log_record(rec: Any) -> bool:
    """A record CloudTrail could have written: the keys replay needs, and the nested fields shaped as in a log
    file (a few corpus records were rebuilt from CSV exports, with ``userIdentity`` or a resource as a string)."""
    if not isinstance(rec, dict):
        return False
    if not all(isinstance(rec.get(k), str) and rec[k] for k in ("eventTime", "eventName", "eventSource")):
        return False
    shapes: tuple[tuple[str, type], ...] = (("userIdentity", dict), ("resources", list), ("tlsDetails", dict))
    if not all(rec.get(k) is None or isinstance(rec[k], t) for k, t in shapes):
        return False
    return all(isinstance(r, dict) for r in rec.get("resources") or ())


def _base_records(n: int) -> tuple[list[dict[str, Any]], str]:
    if CORPUS.is_dir():
        recs = corpus_records()
        if recs:
            return recs, "corpus"
    from bench.replay import synthetic_records

    return list(synthetic_records(min(n, 50_000))), "synthetic"


def _cycled(base: list[dict[str, Any]], n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        rec = dict(base[i % len(base)])
        rec["eventID"] = str(uuid.UUID(int=(0x7B << 120) | i))
        yield rec


def build(n: int, cache: Path | None = None) -> RecordSet:
    """Build (or reuse from the cache) the set of ``n`` records in :data:`FILES` gzip log files."""
    base, source = _base_records(n)
    cache = cache or Path(os.environ.get("TRAILGUARD_BENCH_CACHE", Path(tempfile.gettempdir()) / "trailguard-bench"))
    root = cache / f"{source}-{n}-v{LAYOUT_VERSION}"
    done = root / ".complete"
    if not done.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=cache))
        try:
            _write(tmp, base, n)
            (tmp / ".complete").write_text(f"{n} {source} {len(base)}\n")
            shutil.rmtree(root, ignore_errors=True)
            tmp.rename(root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    files = tuple(sorted(root.rglob("*.json.gz")))
    return RecordSet(root, files, n, source, len(base))


def _write(root: Path, base: list[dict[str, Any]], n: int) -> None:
    records = _cycled(base, n)
    for index in range(FILES):
        count = n // FILES + (1 if index < n % FILES else 0)
        account, region, day = partition(index)
        date = day.replace("/", "-")
        batch = []
        for _ in range(count):
            rec = next(records)
            rec["recipientAccountId"] = account
            rec["awsRegion"] = region
            rec["eventTime"] = date + rec["eventTime"][10:]
            batch.append(rec)
        stamp = day.replace("/", "")
        folder = root / "AWSLogs" / account / "CloudTrail" / region / day
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{account}_CloudTrail_{region}_{stamp}T{index % 24:02d}00Z_{index:016x}.json.gz"
        (folder / name).write_bytes(gzip.compress(orjson.dumps({"Records": batch}), compresslevel=6))


if __name__ == "__main__":
    rs = build(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
    print(
        f"{rs.root}: {rs.records:,} records ({rs.source}, {rs.base_records:,} distinct), {len(rs.files)} files, "
        f"{rs.gzip_bytes / 1e6:.1f} MB gzip"
    )
