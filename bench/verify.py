"""Log file verification throughput against a local moto S3 server, side by side in one run.

Builds one trail's archive in moto (``HOURS`` hourly digests in the documented format, signed with a
fresh RSA key, each listing ``FILES_PER_HOUR`` gzip log files of ``RECORDS`` records), then times, on
the same objects and the same bounded pool of 16 threads:

* ``read``: a plain ``get_object`` + read of every log file (what ``aws s3 cp`` of the tree costs);
* ``verify``: :func:`trailguard_engine.integrity.verify_archive`: every digest's signature and chain,
  and the SHA-256 of every log file's uncompressed content.

Target (issue 13): verify reaches at least 0.7x the plain read rate.

    .venv/bin/python -m bench.verify [HOURS] [FILES_PER_HOUR] [RECORDS]
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer
from trailguard_engine.integrity import S3Reader, bounded_map, load_public_keys, static_keys, verify_archive

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 0.7
WORKERS = 16


def _generator() -> Any:
    """The digest-chain generator of the tests (documented format), loaded by path: one generator, not two."""
    path = ROOT / "tests" / "integrity" / "integrity_helpers.py"
    spec = importlib.util.spec_from_file_location("bench_integrity_helpers", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _records(gen: Any, end: Any, n: int, file_no: int) -> list[dict[str, Any]]:
    names = ("DescribeInstances", "GetBucketAcl", "AssumeRole", "ListRoles", "Decrypt", "PutLogEvents")
    at = end - timedelta(minutes=30)
    return [gen.record(at + timedelta(seconds=i), name=names[(i + file_no) % len(names)]) for i in range(n)]


def build(s3: Any, hours: int, files_per_hour: int, records: int) -> tuple[Any, Any, list[str]]:
    gen = _generator()
    s3.create_bucket(Bucket=gen.BUCKET)
    signer = gen.Signer.generate()
    chain = gen.Chain(s3, signer)
    logs: list[str] = []
    for h in range(hours):
        end = gen.T0 + timedelta(hours=h)
        listed = []
        for j in range(files_per_hour):
            key = chain.log_key(end - timedelta(minutes=40), j)
            raw = json.dumps({"Records": _records(gen, end, records, j)}).encode()
            s3.put_object(Bucket=gen.BUCKET, Key=key, Body=gzip.compress(raw, mtime=0))
            listed.append((key, raw))
            logs.append(key)
        chain.put_digest(end, listed)
    return gen, signer, logs


def run(hours: int = 12, files_per_hour: int = 20, records: int = 100) -> dict[str, Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = boto3.client(
            "s3",
            region_name="us-east-1",
            endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        gen, signer, logs = build(s3, hours, files_per_hour, records)
        size = sum(s3.head_object(Bucket=gen.BUCKET, Key=k)["ContentLength"] for k in logs[:20]) / min(20, len(logs))

        def read(key: str) -> int:
            body = s3.get_object(Bucket=gen.BUCKET, Key=key)["Body"]
            return len(body.read())

        t0 = time.perf_counter()
        read_bytes = sum(bounded_map(read, logs, WORKERS, None, "read"))
        read_s = time.perf_counter() - t0

        keys = static_keys(load_public_keys(signer.keys_doc()))
        t1 = time.perf_counter()
        report = verify_archive(S3Reader(s3), gen.BUCKET, "", keys, workers=WORKERS)
        verify_s = time.perf_counter() - t1
        counts = report.counts()
        if not report.ok or counts["log_files"]["valid"] != len(logs):
            raise RuntimeError(f"the benchmark archive did not verify: {counts} {report.problems()[:3]}")
        read_rate, verify_rate = len(logs) / read_s, len(logs) / verify_s
        return {
            "verify": {
                "log_files": len(logs),
                "digests": hours,
                "records_per_file": records,
                "mean_gzip_bytes": size,
                "read_bytes": read_bytes,
                "workers": WORKERS,
                "read_files_per_s": read_rate,
                "verify_files_per_s": verify_rate,
                "ratio": verify_rate / read_rate,
                "target": TARGET_RATIO,
                "fingerprint_sha": hashlib.sha256(signer.fingerprint.encode()).hexdigest()[:8],
            }
        }
    finally:
        server.stop()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    out = run(*args)["verify"]
    print(
        f"verify: {out['log_files']} log files ({out['records_per_file']} records, ~{out['mean_gzip_bytes'] / 1024:.0f} KiB gzip) "
        f"in {out['digests']} digests, {out['workers']} threads: read {out['read_files_per_s']:.0f} files/s, "
        f"verify {out['verify_files_per_s']:.0f} files/s, ratio {out['ratio']:.2f} (target >= {TARGET_RATIO})"
    )
