"""Replay throughput, measured as a user runs it: the CLI as a subprocess, against parse-only, in one run.

On each record set of :mod:`bench.corpus_set` (20k and 200k records, 1M with ``--full``; real corpus records when
the shared corpus is present), alternating, ``repeat`` rounds, median wall time and the child's peak RSS of:

* ``parse``: a Python process that decompresses and orjson-parses every file (the floor any Python reader pays);
* ``replay``: ``trailguard replay --json DIR --jobs 1 > /dev/null`` (reader, every rule, decisions, output, one
  process: replay's default ``--jobs`` is every core);
* ``replay --jobs 2``: when this checkout's replay has ``--jobs``.

The ratio is parse time / replay time (replay's rate as a share of parse-only); targets: >= 0.5 single process,
>= 0.8 with ``--jobs 2`` (issue 19). The synthetic generator below is the fallback when the corpus is absent.

    .venv/bin/python -m bench.replay [--full]
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procenv import measured_env
from trailguard.demo.records import Caller, cloudtrail_record

TARGET_RATIO = 0.5
TARGET_JOBS2 = 0.8

#: (weight, service, eventName, read_only); requestParameters come from _request
_MIX: list[tuple[float, str, str, bool]] = [
    (30, "ec2", "DescribeInstances", True),
    (12, "s3", "GetBucketAcl", True),
    (10, "sts", "AssumeRole", False),
    (8, "iam", "ListRoles", True),
    (8, "kms", "Decrypt", True),
    (6, "ec2", "DescribeSecurityGroups", True),
    (5, "logs", "PutLogEvents", False),
    (4, "s3", "PutBucketTagging", False),
    (4, "ec2", "CreateTags", False),
    (3, "lambda", "UpdateFunctionConfiguration20150331v2", False),
    (3, "s3", "GetObject", True),
    (2, "ec2", "DescribeVolumes", True),
    # about 1% of records are changes that reach a rule's decision function (a busy account's share)
    (0.4, "ec2", "AuthorizeSecurityGroupIngress", False),
    (0.3, "s3", "PutBucketAcl", False),
    (0.1, "cloudtrail", "StopLogging", False),
    (0.1, "iam", "AttachUserPolicy", False),
    (0.1, "kms", "ScheduleKeyDeletion", False),
    (0.1, "ec2", "ModifySnapshotAttribute", False),
]


def _request(rng: random.Random, service: str, name: str) -> dict[str, Any] | None:
    if name == "AuthorizeSecurityGroupIngress":
        port = rng.choice([22, 443, 3389, 8080])
        cidr = rng.choice(["0.0.0.0/0", "10.0.0.0/8"])
        return {
            "groupId": f"sg-{rng.getrandbits(64):017x}",
            "ipPermissions": {
                "items": [
                    {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "groups": {},
                     "ipRanges": {"items": [{"cidrIp": cidr}]}, "ipv6Ranges": {}, "prefixListIds": {}}
                ]
            },
        }  # fmt: skip
    if name == "PutBucketAcl":
        return {
            "bucketName": f"bucket-{rng.randrange(50)}",
            "acl": [""],
            "x-amz-acl": [rng.choice(["private", "public-read"])],
        }
    if name == "StopLogging":
        return {"name": "org-trail"}
    if name == "AttachUserPolicy":
        return {
            "userName": "dev",
            "policyArn": rng.choice(
                ["arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/ReadOnlyAccess"]
            ),
        }
    if name == "ScheduleKeyDeletion":
        return {"keyId": str(uuid.UUID(int=rng.getrandbits(128))), "pendingWindowInDays": 7}
    if name == "ModifySnapshotAttribute":
        return {
            "snapshotId": f"snap-{rng.getrandbits(64):017x}",
            "createVolumePermission": {"add": {"items": [{"group": "all"}]}},
            "attributeType": "CREATE_VOLUME_PERMISSION",
        }
    if name == "DescribeInstances":
        return {
            "instancesSet": {},
            "filterSet": {"items": [{"name": "instance-state-name", "valueSet": {"items": [{"value": "running"}]}}]},
        }
    if name == "AssumeRole":
        return {
            "roleArn": f"arn:aws:iam::111122223333:role/app-{rng.randrange(20)}",
            "roleSessionName": f"s{rng.randrange(10**6)}",
            "durationSeconds": 3600,
        }
    if name == "Decrypt":
        return {
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "encryptionContext": {"aws:lambda:FunctionArn": "arn:aws:lambda:us-east-1:111122223333:function:f"},
        }
    if name in ("GetBucketAcl", "PutBucketTagging"):
        return {"bucketName": f"bucket-{rng.randrange(50)}", "Host": "s3.amazonaws.com", "acl": [""]}
    if name == "CreateTags":
        return {"resourcesSet": {"items": [{"resourceId": f"i-{rng.getrandbits(64):017x}"}]}}
    return None


def synthetic_records(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """``n`` synthetic records in the mix above (used when the shared corpus is absent)."""
    rng = random.Random(seed)
    weights = [w for w, *_ in _MIX]
    callers = [
        Caller("111122223333", f"user{i}", f"AKIA{i:016d}", f"AIDA{i:017d}", source_ip=f"198.51.100.{i}")
        for i in range(20)
    ]
    for _ in range(n):
        _w, service, name, ro = rng.choices(_MIX, weights)[0]
        rec = cloudtrail_record(
            service=service, event_name=name, region=rng.choice(["us-east-1", "eu-west-1"]),
            caller=rng.choice(callers), request=_request(rng, service, name), response=None, read_only=ro,
        )  # fmt: skip
        if rng.random() < 0.03:
            rec["errorCode"] = "AccessDenied"
        yield rec


#: The floor any Python reader pays, run as its own process like the CLI: decompress + orjson-parse every file.
PARSE_ONLY = (
    "import gzip, pathlib, sys, orjson\n"
    "n = 0\n"
    "for p in sorted(pathlib.Path(sys.argv[1]).rglob('*.json.gz')):\n"
    "    n += len(orjson.loads(gzip.decompress(p.read_bytes()))['Records'])\n"
    "print(n)\n"
)
BIN = Path(sys.executable).parent
SIZES: tuple[int, ...] = (20_000, 200_000)
FULL_SIZE = 1_000_000


@dataclass(frozen=True)
class Sample:
    """One subprocess run: wall time, CPU time (user + system, all threads) and the child's own peak RSS (from
    wait4, not the maximum over all children). CPU time shows the work even when other processes share the cores."""

    seconds: float
    cpu_seconds: float
    max_rss_mb: float


def measure(cmd: Sequence[str]) -> Sample:
    """Run ``cmd`` with stdout to /dev/null; wall time and peak RSS of that one child."""
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, env=measured_env()
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {tail}")
    return Sample(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def alternate(cmds: Mapping[str, Sequence[str]], repeat: int) -> dict[str, dict[str, float]]:
    """Run the commands in turn (A B A B ...), ``repeat`` rounds; median wall time, CPU time and peak RSS of each."""
    samples: dict[str, list[Sample]] = {name: [] for name in cmds}
    for _ in range(repeat):
        for name, cmd in cmds.items():
            samples[name].append(measure(cmd))
    return {
        name: {
            "seconds": statistics.median(s.seconds for s in runs),
            "cpu_seconds": statistics.median(s.cpu_seconds for s in runs),
            "max_rss_mb": statistics.median(s.max_rss_mb for s in runs),
            "runs": len(runs),
        }
        for name, runs in samples.items()
    }


def replay_cmd(root: Path, jobs: int | None = None) -> list[str]:
    cmd = [str(BIN / "trailguard"), "replay", "--json", str(root)]
    return [*cmd, "--jobs", str(jobs)] if jobs else cmd


def baseline_jobs() -> int | None:
    """The ``--jobs`` hunt and retro compare against: every core, as DuckDB uses (None: this replay has no ``--jobs``).

    Stated, not left to replay's default, which depends on the input's size.
    """
    return (os.cpu_count() or 1) if supports_jobs() else None


def parse_cmd(root: Path) -> list[str]:
    return [sys.executable, "-c", PARSE_ONLY, str(root)]


def supports_jobs() -> bool:
    """``--jobs`` is measured only when this checkout's replay has it."""
    out = subprocess.run(
        [str(BIN / "trailguard"), "replay", "--help"], capture_output=True, text=True, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    return "--jobs" in out.stdout


def sizes(full: bool | None = None) -> tuple[int, ...]:
    """20k and 200k records; 1M too with ``--full`` or ``TRAILGUARD_BENCH_FULL=1``."""
    if full is None:
        full = os.environ.get("TRAILGUARD_BENCH_FULL", "") not in ("", "0")
    return (*SIZES, FULL_SIZE) if full else SIZES


def commands(root: Path, jobs: bool) -> dict[str, list[str]]:
    """What one round runs: parse-only, replay in one process, and (when replay has ``--jobs``) two processes.

    replay's default ``--jobs`` depends on the input's size (:func:`trailguard.replay.auto_jobs`), so the
    single-process row asks for one explicitly.
    """
    cmds = {"parse": parse_cmd(root), "replay": replay_cmd(root, 1 if jobs else None)}
    if jobs:
        cmds["replay_jobs2"] = replay_cmd(root, 2)
    return cmds


def run(full: bool | None = None, repeat: int = 3) -> dict[str, Any]:
    """Replay CLI vs parse-only, per record set; median of ``repeat`` alternating runs each."""
    from bench.corpus_set import build

    jobs = supports_jobs()
    rows = []
    for n in sizes(full):
        rs = build(n)
        measure(parse_cmd(rs.root))  # warm the page cache; not counted
        res = alternate(commands(rs.root, jobs), repeat)
        row: dict[str, Any] = {
            "records": n, "files": len(rs.files), "gzip_bytes": rs.gzip_bytes, "source": rs.source,
            "base_records": rs.base_records, "results": res,
            "ratio": res["parse"]["seconds"] / res["replay"]["seconds"],
        }  # fmt: skip
        if jobs:
            row["ratio_jobs2"] = res["parse"]["seconds"] / res["replay_jobs2"]["seconds"]
        rows.append(row)
        print(
            f"{n:>9,} records: parse {res['parse']['seconds']:.2f}s ({res['parse']['max_rss_mb']:.0f} MB), "
            f"replay {res['replay']['seconds']:.2f}s ({res['replay']['max_rss_mb']:.0f} MB) -> {row['ratio']:.2f}"
            + (f"; --jobs 2 {res['replay_jobs2']['seconds']:.2f}s -> {row['ratio_jobs2']:.2f}" if jobs else "")
        )
    return {"rows": rows, "repeat": repeat, "jobs": jobs, "target": TARGET_RATIO, "target_jobs2": TARGET_JOBS2}


if __name__ == "__main__":
    res = run(full="--full" in sys.argv[1:])
    sys.exit(0 if all(r["ratio"] >= TARGET_RATIO for r in res["rows"]) else 1)
