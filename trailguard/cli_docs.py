"""Write ``docs/cli.md``: every command's help and its real output on a small sample, generated, never typed.

``python -m trailguard.cli_docs`` regenerates it; ``--check`` exits 1 when the file is stale (a test runs the
check). The sample is a CloudTrail log tree built from catalog examples, so the output is the same on every
machine. ``--with-demo`` also captures a real ``trailguard demo`` run (a minute); without it, the demo section
already in the file is kept as it is, because the check cannot afford to deploy.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trailguard_engine.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "cli.md"
WIDTH = 100
#: Rules whose first positive example goes into the sample logs, plus one benign event.
SAMPLE_RULES = (
    "cloudtrail-stop-logging",
    "ec2-security-group-ingress-public",
    "s3-bucket-acl-public",
    "iam-admin-policy-attached",
)
DEMO_START = "<!-- demo output: captured with `python -m trailguard.cli_docs --with-demo` -->"
DEMO_END = "<!-- end of demo output -->"


@dataclass(frozen=True)
class Run:
    title: str
    args: tuple[str, ...]
    #: Keep the first N lines of stdout (long outputs), 0 for all.
    head: int = 0
    stderr: bool = False


RUNS: tuple[Run, ...] = (
    Run("The commands", ("--help",)),
    Run("The version", ("version",)),
    Run("Check a config file", ("validate-config", "config/example-standalone.yaml"), stderr=True),
    Run("Judge logs: one row per finding, then the summary", ("replay", "logs")),
    Run("Only the findings, as JSON Lines for a pipeline", ("replay", "logs", "--only-findings", "-o", "jsonl"), 2),
    Run("Gate a pipeline: exit 3 on a HIGH or CRITICAL finding", ("replay", "logs", "--fail-on", "high", "-o", "csv")),
    Run("SARIF 2.1.0 for code-scanning dashboards", ("replay", "logs", "-o", "sarif"), 25),
    Run("Filters", ("replay", "logs", "--only-findings", "--severity", "critical", "--since", "2020-01-01T00:00:00Z")),
    Run("The hunt queries", ("hunt", "--list"), 12),
    Run(
        "Ad-hoc, read-only SQL over the logs",
        ("hunt", "--sql", "SELECT eventname, count(*) AS n FROM cloudtrail GROUP BY 1 ORDER BY 1", "--logs", "logs"),
    ),
    Run(
        "Retro-detection: the catalog compiled to SQL, only candidates judged (the same findings as replay)",
        ("retro", "logs", "--since", "2015-01-01", "--only-findings"),
        stderr=True,
    ),
    Run("Retro on Athena or CloudTrail Lake", ("retro", "--help")),
    Run("The catalog", ("rules",), 12),
    Run("One rule", ("rules", "cloudtrail-stop-logging"), 30),
    Run("What it costs", ("cost", "--accounts", "50", "--regions", "4", "--events-per-day", "200000")),
    Run("Log file integrity (the sample has no digest files: verify says so)", ("verify", "logs"), stderr=True),
    Run("Runbooks from the catalog", ("docs", "--help")),
    Run("Dead letters", ("redrive", "--help")),
    Run("The demo", ("demo", "--help")),
)


def _sample(root: Path) -> None:
    """A synced-archive tree holding catalog examples (and one benign call)."""
    by_id = {r.id: r for r in load_catalog()}
    records = [dict(by_id[rid].examples_positive[0]["detail"]) for rid in SAMPLE_RULES]
    benign = dict(records[0], eventName="DescribeTrails", eventID="00000000-0000-4000-8000-00000000b001")
    records.append(benign)
    by_place: dict[tuple[str, str, str], list[dict[str, object]]] = {}
    for rec in records:
        account = str(rec.get("recipientAccountId", "111111111111"))
        key = (account, str(rec["awsRegion"]), str(rec["eventTime"])[:10])
        by_place.setdefault(key, []).append(rec)
    for (account, region, day), recs in sorted(by_place.items()):
        y, m, d = day.split("-")
        folder = root / "logs" / "AWSLogs" / account / "CloudTrail" / region / y / m / d
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{account}_CloudTrail_{region}_{y}{m}{d}T0000Z_sample.json.gz"
        data = json.dumps({"Records": recs}, sort_keys=True).encode()
        (folder / name).write_bytes(gzip.compress(data, mtime=0))


_TIMING = re.compile(r"\bin \d+\.\d+s\b")


def _run(run: Run) -> tuple[str, int]:
    """The command as a user runs it: a subprocess, not a terminal, at a fixed width."""
    env = {**os.environ, "COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)
    res = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [str(Path(sys.executable).with_name("trailguard")), *run.args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    text = res.stdout
    if run.head:
        lines = text.splitlines()
        text = "\n".join(lines[: run.head]) + (
            f"\n... ({len(lines) - run.head} more lines)" if len(lines) > run.head else ""
        )
    if run.stderr and res.stderr.strip():
        text = text.rstrip("\n") + ("\n" if text.strip() else "") + res.stderr
    text = _TIMING.sub("in 0.00s", text)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n"), res.returncode


def render(*, demo_section: str) -> str:
    """The whole document (the demo section passed in: captured or kept)."""
    parts = [
        "# The trailguard CLI, with real output",
        "",
        "Generated by `python -m trailguard.cli_docs` from the commands themselves, on a sample log tree built from",
        "catalog examples (`logs/AWSLogs/...`); a test fails when this file is stale. Every command's `--help` has",
        "its options and examples. Exit codes: 0 clean, 1 input problems with `--strict` (or an integrity failure",
        "for `verify`), 2 usage or config error, 3 findings at or above `--fail-on`.",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="trailguard-cli-docs-") as tmp:
        root = Path(tmp)
        _sample(root)
        (root / "config").mkdir()
        (root / "config" / "example-standalone.yaml").write_text(
            (ROOT / "config" / "example-standalone.yaml").read_text(encoding="utf-8"), encoding="utf-8"
        )
        with contextlib.chdir(root):
            for run in RUNS:
                text, code = _run(run)
                parts += [f"## {run.title}", "", "```console", f"$ trailguard {_shell(run.args)}", text]
                if code:
                    parts.append(f"$ echo $?\n{code}")
                parts += ["```", ""]
    parts += ["## A whole demo run", "", DEMO_START, demo_section.strip("\n"), DEMO_END, ""]
    return "\n".join(parts)


def _shell(args: Sequence[str]) -> str:
    return " ".join(a if re.fullmatch(r"[\w./:=-]+", a) else f"'{a}'" for a in args)


def _kept_demo_section(text: str) -> str:
    if DEMO_START in text and DEMO_END in text:
        return text.split(DEMO_START, 1)[1].split(DEMO_END, 1)[0]
    return "(not captured yet: run `python -m trailguard.cli_docs --with-demo`)"


def _capture_demo() -> str:
    proc = subprocess.run(  # noqa: S603 - our own CLI
        [str(Path(sys.executable).with_name("trailguard")), "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"},
        check=False,
    )
    out = re.sub(r"\S*/cdk\.out/demo-engine\.log", "cdk.out/demo-engine.log", proc.stdout)
    out = re.sub(r"\d+\.\d+s", "N.Ns", out)
    out = re.sub(r"sg-[0-9a-f]+", "sg-…", out)
    out = re.sub(r"snap-[0-9a-f]+", "snap-…", out)
    out = re.sub(r"StateTable[0-9A-F]+-[A-Z0-9]+", "StateTable…", out)
    return "```console\n$ trailguard demo\n" + "\n".join(line.rstrip() for line in out.splitlines()) + "\n```"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
    demo = _capture_demo() if "--with-demo" in args else _kept_demo_section(current)
    text = render(demo_section=demo)
    if "--check" in args:
        if text != current:
            print(f"{OUT.relative_to(ROOT)} is stale: run python -m trailguard.cli_docs", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
