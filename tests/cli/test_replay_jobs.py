"""``trailguard replay --jobs N``: the same output as one process, and the output batching (issue 19)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from cli_helpers import bare, catalog_examples, load_bench, write_jsonl, write_log_file
from trailguard_engine.catalog import load_catalog
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.model import EventResult
from trailguard_engine.window import gated
from typer.testing import CliRunner

from trailguard.cli import _load_commands, app
from trailguard.commands.replay import _where, none_line
from trailguard.replay import FastEvaluator, Problem, can_fork, expand_paths, iter_file, replay, replay_files

_load_commands()
runner = CliRunner()
pytestmark = pytest.mark.skipif(not can_fork(), reason="--jobs forks its workers; this platform cannot fork")


def _benign(i: int) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "eventTime": f"2024-05-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject" if i % 2 else "DescribeInstances",
        "eventID": f"benign-{i:06d}",
        "awsRegion": "us-east-1",
        "recipientAccountId": "123456789012",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::123456789012:user/u{i % 7}"},
        "readOnly": True,
    }


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six files: every catalog example (bare and envelope), threshold-rule events spread over all files (the
    counting must cross files in order), benign records, a broken line, a rejected object, and a gzip log file."""
    root = tmp_path_factory.mktemp("jobs")
    examples = [env for _, _, env in catalog_examples()]
    gated_examples = [dict(e) for r in load_catalog() if gated(r) for e in r.examples_positive]
    files: list[list[Any]] = [[] for _ in range(6)]
    for i, env in enumerate(examples):
        files[i % 5].append(env if i % 2 else bare(env))
    for copy_no in range(12):  # enough repeats of each threshold example to cross its count, file after file
        for j, env in enumerate(gated_examples):
            rec = copy.deepcopy(bare(env))
            rec["eventID"] = f"gated-{copy_no:03d}-{j:04d}"
            files[(copy_no + j) % 6].append(rec)
    for i in range(300):
        files[i % 6].append(_benign(i))
    files[2].append({"eventName": "GetObject", "eventSource": "s3.amazonaws.com"})  # no eventTime: rejected
    for n, objs in enumerate(files[:5]):
        write_jsonl(root / f"part-{n}.jsonl", objs)
    with (root / "part-2.jsonl").open("a") as fh:
        fh.write("{not json\n")
    write_log_file(root / "zz-log.json.gz", [o for o in files[5] if "detail-type" not in o])
    return root


def _run(*args: str) -> Any:
    return runner.invoke(app, ["replay", *args])


@pytest.mark.parametrize(
    "fmt",
    [
        ("--json",),
        ("-o", "jsonl", "--only-findings"),
        ("-o", "json"),
        ("-o", "csv"),
        ("-o", "sarif"),
        ("-o", "ocsf"),
        ("-o", "asff"),
        ("-o", "table"),
        ("--json", "--account", "123456789012"),
    ],
)
def test_jobs_output_identical_to_one_process(tree: Path, fmt: tuple[str, ...]) -> None:
    one = _run(str(tree), *fmt, "--jobs", "1")
    three = _run(str(tree), *fmt, "--jobs", "3")
    assert one.exit_code == three.exit_code
    assert one.stdout == three.stdout
    assert one.stderr == three.stderr
    if fmt[0] == "--json" and len(fmt) == 1:
        lines = [json.loads(x) for x in one.stdout.splitlines()]
        assert {o["verdict"] for o in lines} >= {"none", "alert", "remediate"}
        assert "not json" in one.stderr or "line 2" in one.stderr or "part-2.jsonl" in one.stderr


def test_workers_judge_the_files_and_the_parent_merges_in_order(tree: Path) -> None:
    """The files really go to other processes, and the merged stream is replay()'s, item for item."""
    files = expand_paths([str(tree)], [])
    evaluator = Evaluator()
    fast = FastEvaluator(evaluator)  # which events the quick path settles (those arrive as lines)
    seq: list[Any] = []
    problems_seq: list[Problem] = []
    current: list[Any] = [None]

    def items() -> Any:
        for f in files:
            for item in iter_file(f):
                current[0] = item[2]
                yield item

    s1 = replay(
        items(),
        evaluator,
        on_result=lambda r: seq.append(none_line(current[0]) if fast.quick_none(current[0]) else r),
        on_problem=problems_seq.append,
    )
    par: list[Any] = []
    problems_par: list[Problem] = []
    s2 = replay_files(
        files,
        evaluator,
        jobs=2,
        none_line=none_line,
        on_output=lambda data: par.extend(line + b"\n" for line in data.split(b"\n")[:-1]),
        on_result=par.append,
        on_problem=problems_par.append,
    )
    assert par == seq
    assert problems_par == problems_seq
    assert s1.to_json() == s2.to_json()
    blocks: list[bytes] = []
    replay_files(files, evaluator, jobs=2, none_line=lambda _: b"%d\n" % os.getpid(), on_output=blocks.append)
    worker_pids = {int(p) for p in b"".join(blocks).split()}
    assert worker_pids and os.getpid() not in worker_pids


def test_none_line_is_the_in_process_line(tree: Path) -> None:
    """The directly built line of an event without findings equals ``to_json() | where`` byte for byte."""
    evaluator = Evaluator()
    seen = 0
    for f in expand_paths([str(tree)], []):
        for _, _, obj in iter_file(f):
            if type(obj) is not dict or "detail-type" in obj or "eventTime" not in obj:
                continue
            r = evaluator.evaluate(obj)
            if r.verdict != "none" or r.findings:
                continue
            old = orjson.dumps(EventResult(r.event_id, r.event_name, "none", ()).to_json() | _where(obj)) + b"\n"
            assert none_line(obj) == old
            seen += 1
    assert seen > 100
    no_id = {**_benign(1), "requestID": "r-1"}
    del no_id["eventID"]
    assert orjson.loads(none_line(no_id))["eventID"] == ""


def test_jsonl_output_is_written_in_blocks(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not one write per event (stdout is unbuffered under PYTHONUNBUFFERED): a few 1 MiB blocks at most."""
    from trailguard import output

    calls: list[int] = []
    real = output.Sink.write

    def counting(self: output.Sink, data: bytes) -> None:
        calls.append(len(data))
        real(self, data)

    monkeypatch.setattr(output.Sink, "write", counting)
    out = tmp_path / "out.jsonl"
    res = _run(str(tree), "--json", "--jobs", "1", "--out", str(out))
    assert res.exit_code == 0, res.output
    lines = out.read_bytes().count(b"\n")
    assert lines > 300
    assert len(calls) <= 3  # one block between each of the two problems reported on stderr, and the rest


def test_broken_pipe_with_jobs_is_quiet(tree: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from trailguard.cli import main; main()", "replay", "--json", "-j", "2", str(tree)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert "Traceback" not in err


def test_replay_imports_only_its_command(tmp_path: Path) -> None:
    """``trailguard replay`` does not import the other commands' heavy modules (issue 19: start-up time)."""
    p = write_jsonl(tmp_path / "one.jsonl", [_benign(1)])
    code = (
        "import sys\n"
        "from trailguard.cli import main\n"
        f"sys.argv = ['trailguard', 'replay', '--json', {str(p)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = set(res.stderr.split())
    assert "trailguard.commands.replay" in modules
    for heavy in ("boto3", "duckdb", "trailguard.demo", "trailguard.commands.hunt", "trailguard.commands.demo"):
        assert heavy not in modules, heavy
    assert json.loads(res.stdout)["verdict"] == "none"


def test_bench_single_process_row_asks_for_one_process(tmp_path: Path) -> None:
    """replay's default --jobs is every core: the bench's single-process figure must pin --jobs 1 (issue 19)."""
    cmds = load_bench("replay").commands(tmp_path, True)
    assert cmds["replay"][-2:] == ["--jobs", "1"]
    assert cmds["replay_jobs2"][-2:] == ["--jobs", "2"]
    assert "--jobs" not in load_bench("replay").commands(tmp_path, False)["replay"]  # a replay without --jobs


def test_default_jobs_follow_the_input_size(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --jobs, small inputs are judged in one process (workers cost more than they save) and large ones
    over every core; gzip counts for its JSON. An explicit --jobs is always obeyed."""
    from trailguard import replay as replay_mod
    from trailguard.commands import replay as command

    used: list[int] = []
    real = command._replay_parallel

    def spy(files: list[str], evaluator: Any, jobs: int, *rest: Any) -> Any:
        used.append(jobs)
        return real(files, evaluator, jobs, *rest)

    monkeypatch.setattr(command, "_replay_parallel", spy)
    monkeypatch.setattr(replay_mod, "default_jobs", lambda: 2)
    files = sorted(str(p) for p in tree.iterdir())
    sizes = {f: os.path.getsize(f) for f in files}
    json_bytes = sum(s * replay_mod.GZIP_RATIO if f.endswith(".gz") else s for f, s in sizes.items())
    assert replay_mod.auto_jobs(files) == 1 and json_bytes < replay_mod.PARALLEL_MIN_JSON_BYTES

    small = _run(str(tree), "--json")
    assert small.exit_code == 0 and used == []  # judged in-process

    monkeypatch.setattr(replay_mod, "PARALLEL_MIN_JSON_BYTES", json_bytes)
    assert replay_mod.auto_jobs(files) == 2
    monkeypatch.setattr(replay_mod, "PARALLEL_MIN_JSON_BYTES", json_bytes + 1)
    assert replay_mod.auto_jobs(files) == 1  # one byte short, with the gzip file counted GZIP_RATIO times
    monkeypatch.setattr(replay_mod, "PARALLEL_MIN_JSON_BYTES", json_bytes)
    large = _run(str(tree), "--json")
    assert used == [2] and large.stdout == small.stdout

    used.clear()
    monkeypatch.setattr(replay_mod, "PARALLEL_MIN_JSON_BYTES", 1 << 60)
    assert _run(str(tree), "--json", "--jobs", "2").stdout == small.stdout and used == [2]
