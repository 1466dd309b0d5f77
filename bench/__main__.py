"""``make bench``: run every benchmark side by side and write docs/benchmarks.md.

Every figure is a ratio measured in this one run, printed with the absolute
numbers and the machine it ran on. Nothing here is a pass/fail test: the
targets are stated next to the figures.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks.md"


def _machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return (
        f"{platform.machine()}, {os.cpu_count()} CPU ({cpu}){mem}, Linux {platform.release()}, "
        f"Python {platform.python_version()}, Node {node or '?'}"
    )


def _quiet(fn: Any, *args: Any) -> Any:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        return fn(*args)


def _mb(value: float) -> str:
    return f"{value:,.0f} MB"


def api_call_lines(*runs: dict[str, Any]) -> list[str]:
    """One row per :func:`bench.engine_overhead.run`: the AWS API calls of one remediation, on the trail it names."""
    return [
        f"| AWS API calls per remediation ({eo['remediation']}, {eo['trail']}) | {eo['api_calls_per_remediation']:.0f} "
        f"| minimum needed: {eo['api_calls_minimum']} | {eo['api_calls_per_remediation'] / eo['api_calls_minimum']:.0f}x "
        f"| <= 5 |"
        for eo in runs
    ]


def cold_start_lines(cs: dict[str, Any]) -> list[str]:
    """One row per Lambda entry point (:data:`bench.cold_start.HANDLERS`): the budget applies to each."""
    return [
        f"| Cold start: `import {mod}`, median of {cs['samples']} fresh interpreters, bytecode cached "
        f"| {h['import_s'] * 1000:.0f} ms | `import boto3`: {cs['boto3_import_s'] * 1000:.0f} ms "
        f"| {h['ratio']:.2f}x | <= {cs['budget']}x |"
        for mod, h in cs["handlers"].items()
    ]


def replay_lines(rp: dict[str, Any]) -> list[str]:
    """Table rows for :func:`bench.replay.run`: one per record set, and ``--jobs 2`` when replay has it."""
    lines = []
    for row in rp["rows"]:
        r = row["results"]
        us = r["replay"]["seconds"] / row["records"] * 1e6
        lines.append(
            f"| Replay, CLI as a subprocess, one process (`trailguard replay --json DIR{' --jobs 1' if rp['jobs'] else ''} "
            f"> /dev/null`), {row['records']:,} records "
            f"in {row['files']} gzip files ({row['source']}), median of {rp['repeat']} alternating "
            f"| {r['replay']['seconds']:.2f} s ({us:.0f} µs/record, CPU {r['replay']['cpu_seconds']:.2f} s), "
            f"peak RSS {_mb(r['replay']['max_rss_mb'])} "
            f"| decompress + orjson-parse only, also a subprocess: {r['parse']['seconds']:.2f} s, "
            f"peak RSS {_mb(r['parse']['max_rss_mb'])} | {row['ratio']:.2f} | >= {rp['target']} |"
        )
        if "ratio_jobs2" in row:
            j = r["replay_jobs2"]
            lines.append(
                f"| Replay `--jobs 2`, {row['records']:,} records | {j['seconds']:.2f} s (wall), "
                f"peak RSS {_mb(j['max_rss_mb'])} | parse only: {r['parse']['seconds']:.2f} s "
                f"| {row['ratio_jobs2']:.2f} | >= {rp['target_jobs2']} |"
            )
    if not rp["jobs"]:
        lines.append("| Replay `--jobs 2` | not measured: this replay has no `--jobs` | — | — | >= 0.8 |")
    return lines


def _replay_baseline(result: dict[str, Any]) -> str:
    """How hunt's and retro's baseline replay ran: ``replay --json DIR --jobs N`` (N stated, never the default)."""
    jobs = result.get("replay_jobs")
    return f"`replay --json DIR{f' --jobs {jobs}' if jobs else ''}`"


def hunt_lines(hn: dict[str, Any]) -> list[str]:
    """Table rows for :func:`bench.hunt.run`: hunt vs replay per record set, then bytes read with pruning."""
    lines = []
    for row in hn["rows"]:
        r = row["results"]
        lines.append(
            f"| `trailguard hunt {hn['query']} --logs DIR -o jsonl > /dev/null` (DuckDB), {row['records']:,} records, "
            f"median of {hn['repeat']} alternating | {r['hunt']['seconds']:.2f} s (CPU {r['hunt']['cpu_seconds']:.2f} s), "
            f"peak RSS {_mb(r['hunt']['max_rss_mb'])} | {_replay_baseline(hn)} on the same files: {r['replay']['seconds']:.2f} s "
            f"(CPU {r['replay']['cpu_seconds']:.2f} s) | {row['ratio']:.2f}x | <= {hn['target']}x |"
        )
    pr = hn["pruning"]

    def read(key: str) -> str:
        got = pr.get(key)
        return "not traced (no strace)" if got is None else f"{got['files']} files, {got['bytes'] / 1e6:.1f} MB"

    lines.append(
        f"| Bytes a hunt opens on the partitioned 200k set ({pr['files']} files, {pr['gzip_bytes'] / 1e6:.1f} MB), "
        f"`{pr['filter']}`, traced with strace: CLI / library with `hunt.prune` | {read('cli_filtered')} / "
        f"{read('library_pruned')} | unfiltered: {read('cli_unfiltered')} | — | — |"
    )
    return lines


def retro_lines(rt: dict[str, Any]) -> list[str]:
    """Table rows for :func:`bench.retro.run`: retro vs replay, the findings compared, bytes with and without pruning."""
    r, w, f = rt["results"], rt["whole"], rt["findings"]
    lines = [
        f"| `trailguard retro --engine duckdb DIR {rt['pruning']['window']} -o jsonl > /dev/null`, {rt['records']:,} "
        f"records in {rt['files']} gzip files ({rt['source']}), median of {rt['repeat']} alternating; "
        f"{w['candidates']:,} candidates reach Python | {r['retro']['seconds']:.2f} s (CPU {r['retro']['cpu_seconds']:.2f} s), "
        f"peak RSS {_mb(r['retro']['max_rss_mb'])} | {_replay_baseline(rt)} on the same files: {r['replay']['seconds']:.2f} s "
        f"(CPU {r['replay']['cpu_seconds']:.2f} s), peak RSS {_mb(r['replay']['max_rss_mb'])} "
        f"| {rt['ratio']:.2f}x (CPU {rt['cpu_ratio']:.2f}x) | < 1x (retro faster) |"
    ]

    def names(rules: dict[str, int]) -> str:
        more = f" and {len(rules) - 6} more" if len(rules) > 6 else ""
        return ", ".join(list(rules)[:6]) + more

    if f["identical"]:
        same = f"identical: {f['retro']:,} finding lines each"
    else:
        d, o = f["vs_replay"], f["vs_replay_time_ordered"]
        same = (
            f"differ: {d['only_first']:,} lines only in retro, {d['only_second']:,} only in replay (rules: "
            f"{names(d['rules'])}); {f['files_not_time_ordered']} of {rt['files']} files are not in time order. "
            f"Against replay fed the same records in retro's order (eventTime, eventID): "
            + ("identical" if f["identical_time_ordered"] else
               f"{o['only_first']:,} only in retro, {o['only_second']:,} only in replay (rules: {names(o['rules'])})")
        )  # fmt: skip
    lines.append(
        f"| Findings, retro vs replay (`-o jsonl --only-findings`, lines sorted), {rt['records']:,} records | {same} "
        f"| retro {f['retro']:,} / replay {f['replay']:,} lines | — | identical |"
    )
    pr = rt["pruning"]
    whole, pruned = pr["whole"], pr["pruned"]
    t = pr["results"]
    lines.append(
        f"| Retro partition pruning on the partitioned {rt['records']:,} set (local stand-in for Athena's partition "
        f"projection: files pruned by their AWSLogs account/region/date path), `{pr['filter']}`, median of "
        f"{rt['repeat']} alternating | {pruned['files']} files, {pruned['bytes'] / 1e6:.1f} MB scanned, "
        f"{t['pruned']['seconds']:.2f} s | whole set: {whole['files']} files, {whole['bytes'] / 1e6:.1f} MB, "
        f"{t['whole']['seconds']:.2f} s | {pruned['bytes'] / whole['bytes']:.3f} of the bytes | — |"
    )
    return lines


def method_paragraph(rp: dict[str, Any]) -> str:
    """The machine, the data and the method of the replay, hunt and retro rows, in one paragraph (issue 19)."""
    row = rp["rows"][0]
    if row["source"] == "corpus":
        data = (
            f"{row.get('base_records', 0):,} real CloudTrail records of the shared corpus (`../shared/corpus`: "
            "invictus-sigma-aws, otrf-security-datasets, panther-analysis, zmallen; records without eventTime, "
            "eventName or eventSource, or with a nested field rebuilt as a string, left out), cycled to each size "
            "with a fresh eventID per copy"
        )
    else:
        data = "synthetic records from `bench/replay.py` (the shared corpus was absent)"
    return (
        f'Replay, hunt and retro rows: machine {_machine()}. Data: {data}, written as 100 gzip `{{"Records": [...]}}` '
        "files in the CloudTrail layout `AWSLogs/<account>/CloudTrail/<region>/yyyy/MM/dd/` (2 accounts x 2 "
        "regions x 25 days; each record's account, region and date set to its file's). Method: every command "
        "runs as its own process (interpreter start and imports included), output to /dev/null; the figure is "
        f"wall time, the median of {rp['repeat']} runs alternating with the baseline, which is measured in the "
        "same run on the same files (page cache warmed first); CPU time and peak RSS come from wait4 for that "
        "one process. Other processes sharing the machine slow wall times; CPU times are less affected."
    )


def main() -> int:
    from bench import cold_start, demo, engine_overhead, hunt, replay, retro, synth, verify

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    # The 1M-record rows of replay and hunt (issue 19: 20k / 200k / 1M scaling rows) unless --quick.
    os.environ["TRAILGUARD_BENCH_FULL"] = "0" if "--quick" in sys.argv[1:] else "1"
    print("cold start ...", file=sys.stderr)
    cs = _quiet(cold_start.run, 25)
    print(
        "replay vs parse-only, CLI subprocesses (20k/200k/1M records; 1M left out with --quick) ...",
        file=sys.stderr,
    )
    rp = _quiet(replay.run)
    print("hunt vs replay, CLI subprocesses, and partition pruning ...", file=sys.stderr)
    hn = _quiet(hunt.run)
    print("retro (DuckDB) vs replay, CLI subprocesses, and partition pruning ...", file=sys.stderr)
    rt = _quiet(retro.run)
    print("engine overhead (moto server) ...", file=sys.stderr)
    eo = _quiet(engine_overhead.run, 30)["engine_overhead"]
    eo_own = _quiet(lambda: engine_overhead.run(30, own_trail=True))["engine_overhead"]
    print("log file verification (moto server) ...", file=sys.stderr)
    vf = _quiet(verify.run)["verify"]
    print("synth, organization mode, 1/4/17 regions ...", file=sys.stderr)
    sy = _quiet(synth.run, 1)["synth"]
    print("demo: synth + cdk deploy into the emulator + attack, cold and warm ...", file=sys.stderr)
    dm = _quiet(demo.run, 2)["demo"]

    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        f"Machine: {_machine()}.",
        "Each ratio is measured side by side in the same run. Absolute numbers depend on the machine; the ratios are the figures to compare.",
        "",
        "| benchmark | measured | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|",
        f"| Engine overhead: one remediation ({eo['remediation']}) through the handler, against moto server, median of {eo['iterations']} "
        f"| {eo['engine_ms_median']:.1f} ms | bare `start_logging` call: {eo['bare_boto3_ms_median']:.1f} ms "
        f"| {eo['ratio']:.1f}x | — |",
        *api_call_lines(eo, eo_own),
        *cold_start_lines(cs),
        *replay_lines(rp),
        *hunt_lines(hn),
        *retro_lines(rt),
    ]
    lines.append(
        f"| Log file verification (`trailguard verify`): {vf['log_files']} log files of {vf['records_per_file']} records in "
        f"{vf['digests']} signed digests, from moto server, {vf['workers']} threads "
        f"| {vf['verify_files_per_s']:,.0f} files/s | plain `get_object` reads of the same files: {vf['read_files_per_s']:,.0f} files/s "
        f"| {vf['ratio']:.2f}x | >= {vf['target']}x |"
    )
    lines.append(
        f"| `trailguard demo` (the main job: cdk bootstrap + deploy of every stack into the emulator, inspection, attack), "
        f"warm: same assembly with `--no-synth`, median of {dm['warm_runs']} | {dm['warm_s']:.0f} s "
        f"| cold, synth included: {dm['cold_s']:.0f} s | {dm['warm_s'] / dm['cold_s']:.2f}x | warm < {dm['target_warm_s']:.0f} s |"
    )
    for n, s in sy.items():
        lines.append(
            f"| Synth, organization mode, {n} governed region(s): {s['templates']} templates, {s['resources']:,} resources "
            f"| {s['seconds']:.1f} s | 1 region: {sy[1]['seconds']:.1f} s | {s['ratio_to_1_region']:.2f}x | — |"
        )
    lines += [
        "",
        method_paragraph(rp),
        "",
        "Where the engine's extra calls go (one remediation, a member's trail): "
        + ", ".join(f"`{k}` x{v}" for k, v in sorted(eo["calls_breakdown"].items()))
        + "; on trailguard's own trail: "
        + ", ".join(f"`{k}` x{v}" for k, v in sorted(eo_own["calls_breakdown"].items()))
        + ". The minimum is the one write; the rest are the live re-read, the exemption-tag read (none on trailguard's "
        "own resources, which no tag exempts), idempotency and rate-limit state, the SNS alert and the Security Hub "
        "finding.",
        "",
        "Reproduce: `make bench` (or `.venv/bin/python -m bench.<name>` for one of cold_start, replay, hunt, retro, corpus_set, engine_overhead, verify, synth, demo; `--full` adds the 1M-record rows to replay and hunt, which `make bench` always measures; `python -m bench --quick` leaves them out).",
        "",
    ]
    OUT.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
