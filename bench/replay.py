"""Replay throughput on gzip CloudTrail log files, side by side in one run.

Generates N gzip log files (``{"Records": [...]}``, a realistic mix: mostly
read-only Describe/Get/List calls, role sessions, some writes, a few risky
changes that match catalog rules), then times on the same files:

* ``orjson``: decompress + parse only (the floor any Python reader pays);
* ``replay``: ``trailguard replay``'s reader + the engine's Evaluator (patterns + decisions),
  through replay's FastEvaluator shortcut for records that match no rule;
* ``duckdb``: ``read_json`` + ``unnest(Records)`` counting the records.

Replay must reach at least 50% of the orjson-only rate (issue 6).

    .venv/bin/python -m bench.replay [FILES] [RECORDS_PER_FILE]
"""

from __future__ import annotations

import gzip
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from trailguard_engine.evaluate import Evaluator

from trailguard.demo.records import Caller, cloudtrail_record
from trailguard.replay import expand_paths, iter_inputs, replay

TARGET_RATIO = 0.5

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


def generate(out: Path, files: int, per_file: int, seed: int = 7) -> list[Path]:
    """Write ``files`` gzip log files of ``per_file`` records each; return their paths."""
    rng = random.Random(seed)
    weights = [w for w, *_ in _MIX]
    callers = [
        Caller("111122223333", f"user{i}", f"AKIA{i:016d}", f"AIDA{i:017d}", source_ip=f"198.51.100.{i}")
        for i in range(20)
    ]
    paths = []
    for n in range(files):
        records = []
        for _ in range(per_file):
            _w, service, name, ro = rng.choices(_MIX, weights)[0]
            rec = cloudtrail_record(
                service=service, event_name=name, region=rng.choice(["us-east-1", "eu-west-1"]),
                caller=rng.choice(callers), request=_request(rng, service, name), response=None, read_only=ro,
            )  # fmt: skip
            if rng.random() < 0.03:
                rec["errorCode"] = "AccessDenied"
            records.append(rec)
        p = out / f"111122223333_CloudTrail_us-east-1_20261001T{n:04d}Z_{n:08x}.json.gz"
        p.write_bytes(gzip.compress(orjson.dumps({"Records": records}), compresslevel=6))
        paths.append(p)
    return paths


def _orjson_only(paths: list[Path]) -> int:
    n = 0
    for p in paths:
        n += len(orjson.loads(gzip.decompress(p.read_bytes()))["Records"])
    return n


def _replay(paths: list[Path]) -> int:
    ev = Evaluator()
    summary = replay(iter_inputs(expand_paths([str(p) for p in paths])), ev)
    return summary.events + summary.rejected


def _duckdb(paths: list[Path]) -> int:
    import duckdb

    con = duckdb.connect()
    files = [str(p) for p in paths]
    row = con.execute(
        "SELECT count(*) FROM (SELECT unnest(Records) FROM read_json(?, format='auto', maximum_object_size=268435456))",
        [files],
    ).fetchone()
    return int(row[0]) if row else 0


def run(files: int = 40, per_file: int = 2500, repeat: int = 3) -> dict[str, Any]:
    """Generate the files, time the three readers (best of ``repeat``), print a table; return the figures."""
    with tempfile.TemporaryDirectory(prefix="tg-bench-replay-") as tmp:
        paths = generate(Path(tmp), files, per_file)
        size = sum(p.stat().st_size for p in paths)
        results: dict[str, dict[str, float]] = {}
        for name, fn in (("orjson", _orjson_only), ("replay", _replay), ("duckdb", _duckdb)):
            best = float("inf")
            count = 0
            for _ in range(repeat):
                t = time.perf_counter()
                count = fn(paths)
                best = min(best, time.perf_counter() - t)
            results[name] = {"events": count, "seconds": best, "events_per_s": count / best}
    ratio = results["replay"]["events_per_s"] / results["orjson"]["events_per_s"]
    out: dict[str, Any] = {
        "files": files,
        "records": files * per_file,
        "gzip_bytes": size,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU, Python {platform.python_version()}",
        "results": results,
        "replay_vs_orjson": ratio,
        "duckdb_vs_orjson": results["duckdb"]["events_per_s"] / results["orjson"]["events_per_s"],
        "target": TARGET_RATIO,
        "ok": ratio >= TARGET_RATIO,
    }
    print(f"replay throughput: {files} gzip files, {files * per_file} records, {size / 1e6:.1f} MB ({out['machine']})")
    print(f"{'reader':<10}{'events':>10}{'seconds':>10}{'events/s':>12}{'vs orjson':>11}")
    for name, r in results.items():
        rel = r["events_per_s"] / results["orjson"]["events_per_s"]
        print(f"{name:<10}{int(r['events']):>10}{r['seconds']:>10.3f}{r['events_per_s']:>12,.0f}{rel:>10.0%}")
    print(f"replay reaches {ratio:.0%} of orjson-only (target >= {TARGET_RATIO:.0%}): {'OK' if out['ok'] else 'FAIL'}")
    return out


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    res = run(*args)
    sys.exit(0 if res["ok"] else 1)
