"""Retro-detection against replay, and the bytes retro scans with and without partition pruning (issue 18).

On the 200k-record set of :mod:`bench.corpus_set` (100 gzip files in the AWSLogs account/region/date layout),
both measured as CLI subprocesses with :func:`bench.replay.alternate` (median wall, CPU and peak RSS of
``repeat`` alternating runs, output to /dev/null):

* ``retro``: ``trailguard retro --engine duckdb DIR --since/--until <covering the set> -o jsonl`` (DuckDB scans
  with the compiled catalog, only candidates reach Python);
* ``replay``: ``trailguard replay --json DIR --jobs <cores>`` (every record through Python, on every core as DuckDB).

Then the pruning row: retro over the whole set against ``--since <last 5 days> --accounts <one> --regions <one>``,
the files and bytes of the stats line retro prints on stderr, and wall time. This is the local stand-in for Athena's
partition projection: files are pruned by their ``AWSLogs/<account>/CloudTrail/<region>/yyyy/MM/dd/`` path, as
Athena prunes by projected partitions. Last, the findings of both (``-o jsonl --only-findings``, lines sorted) are
compared once. When they differ, replay is run a third time on the same records in retro's order (eventTime,
eventID) through stdin, which separates differences due to the order stateful rules see events in from any other.

    .venv/bin/python -m bench.retro
"""

from __future__ import annotations

import collections
import gzip
import multiprocessing
import re
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.corpus_set import ACCOUNTS, FILES, FIRST_DAY, REGIONS, build
from bench.replay import BIN, alternate, baseline_jobs, replay_cmd

RECORDS = 200_000
DAYS = FILES // (len(ACCOUNTS) * len(REGIONS))
_FIRST = date(2026, 10, FIRST_DAY)
_LAST = _FIRST + timedelta(days=DAYS - 1)
#: The whole set, with a day either side (retro's default --until is the wall clock; fixed here).
WINDOW: tuple[str, ...] = (
    "--since", f"{_FIRST - timedelta(days=1)}T00:00:00Z", "--until", f"{_LAST + timedelta(days=2)}T00:00:00Z",
)  # fmt: skip
#: The pruned scan: the last 5 days, one account of two, one region of two.
PRUNED: tuple[str, ...] = (
    "--since", f"{_LAST - timedelta(days=4)}T00:00:00Z", "--until", WINDOW[3],
    "--accounts", ACCOUNTS[0], "--regions", REGIONS[0],
)  # fmt: skip
_STATS = re.compile(
    r"retro \((?P<engine>\w+)\): (?P<queries>\d+) queries, (?P<candidates>\d+) candidates, "
    r"(?:(?P<files>\d+) files, )?(?P<size>[\d.]+) (?P<unit>B|KB|MB|GB|TB) scanned"
)
_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def retro_cmd(root: Path, window: tuple[str, ...] = WINDOW, extra: tuple[str, ...] = ()) -> list[str]:
    return [str(BIN / "trailguard"), "retro", "--engine", "duckdb", str(root), *window, "-o", "jsonl", *extra]


def parse_stats(stderr: str) -> dict[str, Any]:
    """The numbers of retro's stats line; its sizes are in units of 1024 bytes (KB = KiB), so bytes are approximate."""
    m = _STATS.search(stderr)
    if m is None:
        raise RuntimeError(f"no retro stats line on stderr: {stderr[-500:]}")
    return {
        "line": m.group(0),
        "queries": int(m.group("queries")),
        "candidates": int(m.group("candidates")),
        "files": int(m.group("files") or 0),
        "bytes": round(float(m.group("size")) * _UNITS[m.group("unit")]),
    }


def stats_of(cmd: list[str]) -> dict[str, Any]:
    """Run a retro command once, output discarded, and read its stats line."""
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return parse_stats(proc.stderr)


def _findings(cmd: list[str], stdin: Path | None = None) -> list[bytes]:
    """The ``--only-findings`` JSON lines of ``cmd``, sorted."""
    with open(stdin, "rb") if stdin else open("/dev/null", "rb") as src:
        proc = subprocess.run(cmd, stdin=src, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]!r}")
    return sorted(line for line in proc.stdout.splitlines() if line.strip())


def _diff(a: list[bytes], b: list[bytes]) -> dict[str, Any]:
    """Events whose finding lines differ between two sorted outputs, and the rules named in those lines."""
    ca, cb = collections.Counter(a), collections.Counter(b)
    only_a, only_b = ca - cb, cb - ca
    rules: collections.Counter[str] = collections.Counter()
    for line in (*only_a.elements(), *only_b.elements()):
        for f in orjson.loads(line).get("findings") or ():
            rules[f["rule"]] += 1
    return {"only_first": sum(only_a.values()), "only_second": sum(only_b.values()), "rules": dict(rules.most_common())}


def _time_ordered(root: Path, out: Path) -> int:
    """Write every record of the set as JSON Lines in retro's order (eventTime, eventID); files not in time order."""
    records: list[dict[str, Any]] = []
    unordered = 0
    for path in sorted(root.rglob("*.json.gz")):
        batch = orjson.loads(gzip.decompress(path.read_bytes()))["Records"]
        times = [r["eventTime"] for r in batch]
        unordered += times != sorted(times)
        records += batch
    records.sort(key=lambda r: (r["eventTime"], r["eventID"]))
    with out.open("wb") as fh:
        for rec in records:
            fh.write(orjson.dumps(rec) + b"\n")
    return unordered


def compare_findings(root: Path) -> dict[str, Any]:
    """Retro's findings against replay's, once; when they differ, against replay in retro's event order too."""
    only = ("--only-findings",)
    retro = _findings(retro_cmd(root, extra=only))
    replay = _findings([str(BIN / "trailguard"), "replay", str(root), "-o", "jsonl", *only])
    res: dict[str, Any] = {"retro": len(retro), "replay": len(replay), "identical": retro == replay}
    if not res["identical"]:
        res["vs_replay"] = _diff(retro, replay)
        with tempfile.TemporaryDirectory(prefix="tg-bench-retro-") as tmp:
            ordered = Path(tmp) / "ordered.jsonl"
            # In a forked child: the bench process stays small, and its RSS would otherwise be the floor of the peak
            # RSS wait4 reports for every later child (the child's maxrss starts from the parent's at vfork/exec).
            with multiprocessing.get_context("fork").Pool(1) as pool:
                res["files_not_time_ordered"] = pool.apply(_time_ordered, (root, ordered))
            sorted_replay = _findings([str(BIN / "trailguard"), "replay", "-", "-o", "jsonl", *only], ordered)
        res["replay_time_ordered"] = len(sorted_replay)
        res["identical_time_ordered"] = retro == sorted_replay
        res["vs_replay_time_ordered"] = _diff(retro, sorted_replay)
    return res


def run(repeat: int = 3) -> dict[str, Any]:
    """Retro vs replay on the 200k set; the findings compared; retro's bytes with and without partition pruning."""
    rs = build(RECORDS)
    whole = stats_of(retro_cmd(rs.root))  # also warms the page cache; not counted
    jobs = baseline_jobs()
    res = alternate({"retro": retro_cmd(rs.root), "replay": replay_cmd(rs.root, jobs)}, repeat)
    print(
        f"{RECORDS:,} records: retro {res['retro']['seconds']:.2f}s (CPU {res['retro']['cpu_seconds']:.2f}s, "
        f"{res['retro']['max_rss_mb']:.0f} MB), replay {res['replay']['seconds']:.2f}s "
        f"(CPU {res['replay']['cpu_seconds']:.2f}s, {res['replay']['max_rss_mb']:.0f} MB) -> "
        f"{res['retro']['seconds'] / res['replay']['seconds']:.2f}x wall; {whole['line']}"
    )
    pruned = stats_of(retro_cmd(rs.root, PRUNED))  # also warms; not counted
    prune_times = alternate({"whole": retro_cmd(rs.root), "pruned": retro_cmd(rs.root, PRUNED)}, repeat)
    print(f"pruning ({' '.join(PRUNED)}): whole {whole['line']} / pruned {pruned['line']}; {prune_times}")
    findings = compare_findings(rs.root)  # last: it holds both outputs in this process
    print(f"findings: {findings}")
    return {
        "records": RECORDS, "files": len(rs.files), "gzip_bytes": rs.gzip_bytes, "source": rs.source,
        "repeat": repeat, "results": res, "ratio": res["retro"]["seconds"] / res["replay"]["seconds"],
        "cpu_ratio": res["retro"]["cpu_seconds"] / res["replay"]["cpu_seconds"], "whole": whole,
        "findings": findings, "replay_jobs": jobs,
        "pruning": {"window": " ".join(WINDOW), "filter": " ".join(PRUNED), "whole": whole, "pruned": pruned,
                    "results": prune_times},
    }  # fmt: skip


if __name__ == "__main__":
    out = run()
    sys.exit(0 if out["findings"]["identical"] else 1)
