"""Hunt against replay per record, and the bytes a filtered hunt reads, measured on the CLI as a subprocess.

On each record set of :mod:`bench.corpus_set` (20k and 200k records, 1M with ``--full``), alternating,
``repeat`` rounds, median wall time, CPU time and peak RSS of:

* ``hunt``: ``trailguard hunt <query> --logs DIR -o jsonl > /dev/null`` (DuckDB over the ``cloudtrail`` view);
* ``replay``: ``trailguard replay --json DIR --jobs <cores> > /dev/null`` on the same files (every core, as DuckDB uses).

Target (issue 18): hunt costs at most 1.5x replay per record. Then, on the 200k set, the bytes of log files a hunt
opens (traced with ``strace -e openat``) with and without ``--since``/``--account`` filters: with partition
pruning only the matching ``AWSLogs/<account>/CloudTrail/<region>/yyyy/MM/dd/`` folders are read.

    .venv/bin/python -m bench.hunt [--full]
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.replay import BIN, alternate, baseline_jobs, measure, replay_cmd, sizes

TARGET_RATIO = 1.5
QUERY = "principal-summary"  # groups every record: no query can skip the scan
#: The filtered hunt of the pruning row: one account of two, the last 6 of 25 days.
FILTER: tuple[str, ...] = ("--since", "2026-10-20T00:00:00Z", "--account", "111122223333")
#: The same filtered scan through the library with :func:`trailguard.hunt.prune` applied first (what the CLI does
#: once ``trailguard hunt`` calls prune before building the view).
PRUNED_SCRIPT = (
    "import sys\n"
    "from trailguard import hunt\n"
    "logset = hunt.prune(hunt.discover([sys.argv[1]]), since=sys.argv[2], accounts=[sys.argv[3]])\n"
    'print(hunt.run_sql("SELECT count(*) FROM cloudtrail WHERE eventtime >= \'" + sys.argv[2]\n'
    '    + "\' AND account = \'" + sys.argv[3] + "\'", logset).rows)\n'
)
_OPENAT = re.compile(r'openat\([^,]+, "([^"]+)"')


def hunt_cmd(root: Path, query: str = QUERY, extra: tuple[str, ...] = ()) -> list[str]:
    return [str(BIN / "trailguard"), "hunt", query, "--logs", str(root), "-o", "jsonl", "--no-progress", *extra]


def opened_bytes(cmd: list[str], root: Path) -> tuple[int, int] | None:
    """(files, bytes) of the log files under ``root`` that ``cmd`` opens, traced with strace; None without it."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    with tempfile.TemporaryDirectory(prefix="tg-bench-strace-") as tmp:
        log = Path(tmp) / "trace"
        subprocess.run(
            [strace, "-f", "-qq", "-e", "trace=openat", "-o", str(log), "--", *cmd],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
        )  # fmt: skip
        prefix = str(root.resolve())
        opened = {
            m.group(1)
            for m in _OPENAT.finditer(log.read_text(errors="replace"))
            if m.group(1).startswith(prefix) and m.group(1).endswith(".json.gz")
        }
    return len(opened), sum(Path(p).stat().st_size for p in opened)


def run(full: bool | None = None, repeat: int = 3) -> dict[str, Any]:
    """Hunt vs replay per record set; then the pruning row on the 200k set."""
    from bench.corpus_set import build

    rows = []
    jobs = baseline_jobs()
    for n in sizes(full):
        rs = build(n)
        measure(hunt_cmd(rs.root))  # warm the page cache; not counted
        res = alternate({"hunt": hunt_cmd(rs.root), "replay": replay_cmd(rs.root, jobs)}, repeat)
        row = {
            "records": n, "files": len(rs.files), "source": rs.source, "results": res,
            "ratio": res["hunt"]["seconds"] / res["replay"]["seconds"],
            "cpu_ratio": res["hunt"]["cpu_seconds"] / res["replay"]["cpu_seconds"],
        }  # fmt: skip
        rows.append(row)
        print(
            f"{n:>9,} records: hunt {QUERY} {res['hunt']['seconds']:.2f}s ({res['hunt']['max_rss_mb']:.0f} MB), "
            f"replay {res['replay']['seconds']:.2f}s ({res['replay']['max_rss_mb']:.0f} MB) -> "
            f"{row['ratio']:.2f}x wall, {row['cpu_ratio']:.2f}x CPU"
        )
    rs = build(200_000)
    pruning: dict[str, Any] = {"filter": " ".join(FILTER), "files": len(rs.files), "gzip_bytes": rs.gzip_bytes}
    runs: dict[str, list[str]] = {
        "cli_unfiltered": hunt_cmd(rs.root),
        "cli_filtered": hunt_cmd(rs.root, extra=FILTER),
        "library_pruned": [sys.executable, "-c", PRUNED_SCRIPT, str(rs.root), FILTER[1], FILTER[3]],
    }
    for name, cmd in runs.items():
        traced = opened_bytes(cmd, rs.root)
        pruning[name] = None if traced is None else {"files": traced[0], "bytes": traced[1]}
    print(f"pruning ({pruning['filter']}): {pruning}")
    return {
        "query": QUERY, "rows": rows, "repeat": repeat, "target": TARGET_RATIO, "pruning": pruning, "replay_jobs": jobs,
    }  # fmt: skip


if __name__ == "__main__":
    res = run(full="--full" in sys.argv[1:])
    sys.exit(0 if all(r["ratio"] <= TARGET_RATIO for r in res["rows"]) else 1)
