"""``trailguard replay``: input formats, bad input, exit codes, and equality with the engine's decisions."""

from __future__ import annotations

import copy
import gzip
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import bare, load_bench, write_jsonl, write_log_file
from trailguard_engine.catalog import load_catalog
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import CloudTrailEvent, to_envelope, wrap_record
from trailguard_engine.exceptions import RejectedEvent
from trailguard_engine.matcher import matches
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import MemoryWindowStore, ThresholdGate
from typer.testing import CliRunner

from trailguard.cli import _load_commands, app
from trailguard.replay import (
    FastEvaluator,
    PatternSourceError,
    Problem,
    ReplaySummary,
    build_evaluator,
    deployed_rules,
    expand_paths,
    iter_inputs,
    iter_stdin,
    replay,
    rules_with_deployed_patterns,
)

_load_commands()
runner = CliRunner()


def run(*args: str, stdin: str | bytes | None = None) -> Any:
    return runner.invoke(app, ["replay", *args], input=stdin)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# --------------------------------------------------------------------------- #
# input formats
# --------------------------------------------------------------------------- #
def test_jsonl_mixed_envelopes_and_bare_records(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    env = stop_logging_example
    p = write_jsonl(tmp_path / "mixed.jsonl", [env, bare(env)])
    res = run(str(p), "--json")
    assert res.exit_code == 0, res.output
    out = json_lines(res.stdout)
    assert [o["verdict"] for o in out] == ["remediate", "remediate"]
    assert out[0]["findings"][0]["rule"] == "cloudtrail-stop-logging"
    assert out[0]["findings"][0]["action"] == "start_logging"


@pytest.mark.parametrize("gz", [True, False])
def test_cloudtrail_log_file_plain_and_gzip(tmp_path: Path, stop_logging_example: dict[str, Any], gz: bool) -> None:
    rec = bare(stop_logging_example)
    benign = {**rec, "eventName": "DescribeTrails", "eventID": "e-benign", "readOnly": True}
    name = "log.json.gz" if gz else "log.json"
    p = write_log_file(tmp_path / name, [rec, benign], gz=gz)
    out = json_lines(run(str(p), "--json").stdout)
    assert [(o["eventName"], o["verdict"]) for o in out] == [("StopLogging", "remediate"), ("DescribeTrails", "none")]


def test_pretty_printed_records_document(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    p = tmp_path / "pretty.json"
    p.write_text(json.dumps({"Records": [bare(stop_logging_example)]}, indent=2))
    out = json_lines(run(str(p), "--json").stdout)
    assert [o["verdict"] for o in out] == ["remediate"]


def test_directory_is_walked_recursively_in_order(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    rec = bare(stop_logging_example)
    deep = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "10" / "01"
    deep.mkdir(parents=True)
    write_log_file(deep / "b.json.gz", [{**rec, "eventID": "e-b"}])
    write_log_file(deep / "a.json.gz", [{**rec, "eventID": "e-a"}])
    digest = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail-Digest"
    digest.mkdir(parents=True)
    (digest / "x_CloudTrail-Digest_y.json.gz").write_bytes(gzip.compress(b'{"digestStartTime": "x"}'))
    (deep / "notes.txt").write_text("not a log file")
    out = json_lines(run(str(tmp_path), "--json").stdout)
    assert [o["eventID"] for o in out] == ["e-a", "e-b"]


def test_stdin(stop_logging_example: dict[str, Any]) -> None:
    text = json.dumps(stop_logging_example) + "\n" + json.dumps(bare(stop_logging_example)) + "\n"
    res = run("-", "--json", stdin=text)
    assert res.exit_code == 0
    assert [o["verdict"] for o in json_lines(res.stdout)] == ["remediate", "remediate"]


def test_stdin_gzip(stop_logging_example: dict[str, Any]) -> None:
    data = gzip.compress(json.dumps({"Records": [bare(stop_logging_example)]}).encode())
    items = list(iter_stdin(io.BytesIO(data)))
    assert len(items) == 1
    assert items[0][2]["eventName"] == "StopLogging"


def test_output_keeps_input_order_across_paths(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    rec = bare(stop_logging_example)
    a = write_jsonl(tmp_path / "a.jsonl", [{**rec, "eventID": f"a{i}"} for i in range(3)])
    b = write_log_file(tmp_path / "b.json.gz", [{**rec, "eventID": f"b{i}"} for i in range(3)])
    out = json_lines(run(str(b), str(a), "--json").stdout)
    assert [o["eventID"] for o in out] == ["b0", "b1", "b2", "a0", "a1", "a2"]


# --------------------------------------------------------------------------- #
# bad input
# --------------------------------------------------------------------------- #
def test_bad_lines_are_reported_skipped_and_counted(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    p = tmp_path / "bad.jsonl"
    lines = [
        json.dumps(stop_logging_example),
        "{not json",
        "[1, 2]",
        json.dumps({"hello": "world"}),
        json.dumps({**bare(stop_logging_example), "userIdentity": "root"}),
        "",
        json.dumps(bare(stop_logging_example)),
    ]
    p.write_text("\n".join(lines) + "\n")
    res = run(str(p), "--json")
    assert res.exit_code == 0
    assert len(json_lines(res.stdout)) == 2
    err = res.stderr.splitlines()
    assert err[0].startswith(f"{p}:2: not valid JSON")
    assert err[1] == f"{p}:3: expected a JSON object, got list"
    assert err[2].startswith(f"{p}:4: not a CloudTrail record")
    assert err[3].startswith(f"{p}:5: userIdentity is a str")
    assert "2 events judged, 4 inputs skipped" in res.stderr

    table = run(str(p))
    assert table.exit_code == 0
    assert "rejected" in table.stdout

    strict = run(str(p), "--strict", "--json")
    assert strict.exit_code == 1


def test_summary_counts(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    p = write_jsonl(tmp_path / "x.jsonl", [stop_logging_example, {"x": 1}, bare(stop_logging_example)])
    problems: list[Problem] = []
    summary = replay(iter_inputs(expand_paths([str(p)])), Evaluator(), on_problem=problems.append)
    assert (summary.events, summary.rejected, summary.errors) == (2, 1, 0)
    assert summary.to_json()["rules"]["cloudtrail-stop-logging"]["remediate"] == 2
    assert [str(x) for x in problems] == [
        f"{p}:2: not a CloudTrail record or EventBridge envelope (no eventName/eventSource)"
    ]


@pytest.mark.parametrize("missing", ["nope.jsonl", "dir/nope"])
def test_unreadable_path_exits_2_with_one_line(tmp_path: Path, missing: str) -> None:
    res = run(str(tmp_path / missing))
    assert res.exit_code == 2
    assert res.stderr.strip().count("\n") == 0
    assert "no such file or directory" in res.stderr


def test_truncated_gzip_jsonl_keeps_complete_lines(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    rec = bare(stop_logging_example)
    rng = random.Random(2)
    body = "".join(
        json.dumps({**rec, "eventID": f"e{i}", "requestID": f"{rng.getrandbits(128):032x}"}) + "\n" for i in range(50)
    ).encode()
    data = gzip.compress(body)
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(data[: len(data) * 2 // 3])
    res = run(str(p), "--json")
    assert res.exit_code == 0
    out = json_lines(res.stdout)
    assert 0 < len(out) < 50
    assert [o["eventID"] for o in out] == [f"e{i}" for i in range(len(out))]
    assert "truncated gzip file" in res.stderr
    assert res.stderr.startswith(f"{p}:")
    assert run(str(p), "--json", "--strict").exit_code == 1


def test_truncated_gzip_log_file_salvages_complete_records(
    tmp_path: Path, stop_logging_example: dict[str, Any]
) -> None:
    rec = bare(stop_logging_example)
    rng = random.Random(1)
    records = [{**rec, "eventID": f"e{i}", "requestID": f"{rng.getrandbits(128):032x}"} for i in range(40)]
    data = gzip.compress(json.dumps({"Records": records}).encode())
    p = tmp_path / "cut.json.gz"
    p.write_bytes(data[: len(data) // 2])
    res = run(str(p), "--json")
    out = json_lines(res.stdout)
    assert 0 < len(out) < 40
    assert [o["eventID"] for o in out] == [f"e{i}" for i in range(len(out))]
    assert f"{p}:1: truncated gzip file" in res.stderr


def test_records_not_an_array_and_non_object_records(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    p = tmp_path / "odd.json"
    p.write_text(json.dumps({"Records": [bare(stop_logging_example), 7]}) + "\n" + json.dumps({"Records": {}}))
    res = run(str(p), "--json")
    assert len(json_lines(res.stdout)) == 1
    assert f"{p}:1: Records[1]: expected a JSON object, got int" in res.stderr
    assert f"{p}:2: 'Records' is not an array" in res.stderr


# --------------------------------------------------------------------------- #
# same decisions as the engine
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("override", [None, "remediate"])
def test_replay_equals_engine_decision_for_every_example(
    tmp_path: Path, examples: list[tuple[str, str, dict[str, Any]]], override: str | None
) -> None:
    objs: list[dict[str, Any]] = []
    for _rid, _kind, env in examples:
        objs += [env, bare(env)]
    p = write_jsonl(tmp_path / "examples.jsonl", objs)
    args = [str(p), "--json"] + (["--mode-override", override] if override else [])
    res = run(*args)
    assert res.exit_code == 0, res.stderr
    cfg = RuntimeConfig().with_override(override)  # type: ignore[arg-type]
    engine = Evaluator(None, cfg)
    # the engine's path: evaluate, then the threshold gate (window.py) for threshold rules, in input order
    gate = ThresholdGate(MemoryWindowStore(), clock=None)
    judged = [engine.evaluate(o) for o in objs]
    expected = [
        gate.apply_result(CloudTrailEvent(to_envelope(o)), r, engine.by_id).to_json()
        for o, r in zip(objs, judged, strict=True)
    ]
    lines = json_lines(res.stdout)
    assert len(lines) == len(expected)
    # Each line is the engine's result, plus the context keys replay adds (eventTime, account, principal, ...).
    assert [{k: line[k] for k in exp} for line, exp in zip(lines, expected, strict=True)] == expected
    # and every positive example is caught by its own rule (a threshold rule's positive qualifies: it is counted)
    by_event = {r.event_id: r.to_json() for r in judged}
    for rid, kind, env in examples:
        if kind == "positive":
            rules = [f["rule"] for f in by_event[env["detail"]["eventID"]]["findings"] if f["decision"] != "skip"]
            assert rid in rules, f"{rid}: positive example not caught"


def _mutations(rec: dict[str, Any], rng: random.Random) -> list[Any]:
    out: list[Any] = []
    for key in list(rec):
        dropped = dict(rec)
        del dropped[key]
        out.append(dropped)
        for bad in (None, 7, "x", [], {}, True):
            out.append({**rec, key: bad})
    out.append({**rec, "eventID": "e" * 300})
    out.append({**rec, "userAgent": "aws-cli/2 kali linux"})
    out.append({**rec, "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root"}})
    out.append({**rec, "errorCode": "AccessDenied"})
    out.append({"detail": rec, "detail-type": "AWS API Call via CloudTrail", "source": "aws.x"})
    deep = copy.deepcopy(rec)
    deep["requestParameters"] = {"ipPermissions": {"items": [{"ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}
    out.append(deep)
    rng.shuffle(out)
    return out


def _outcome(fn: Any, obj: Any) -> Any:
    try:
        return fn(obj).to_json()
    except RejectedEvent as exc:
        return ("rejected", str(exc))


def test_fast_path_equals_engine_on_examples_mutations_and_traffic(
    tmp_path: Path, examples: list[tuple[str, str, dict[str, Any]]]
) -> None:
    synthetic = load_bench("replay").synthetic_records
    engine = Evaluator()
    fast = FastEvaluator(engine)
    rng = random.Random(3)
    objs: list[Any] = []
    for _rid, _kind, env in examples:
        objs += [bare(env), env, *_mutations(bare(env), rng)]
    objs += list(synthetic(800))  # the benchmark's own traffic mix
    for _ in range(2):  # second pass hits the memo
        for o in objs:
            assert _outcome(fast.evaluate, o) == _outcome(engine.evaluate, o), o


@pytest.mark.corpus
def test_fast_path_equals_engine_on_corpus(corpus_dir: Path) -> None:
    engine = Evaluator()
    fast = FastEvaluator(engine)
    n = 0
    for path in sorted(corpus_dir.rglob("*.jsonl")):
        if path.name.endswith(".labels.jsonl"):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            obj = json.loads(line)
            assert _outcome(fast.evaluate, obj) == _outcome(engine.evaluate, obj), (path.name, line[:200])
            n += 1
    assert n > 1000


def test_light_envelope_is_wrap_record_without_id(examples: list[tuple[str, str, dict[str, Any]]]) -> None:
    fast = FastEvaluator(Evaluator())
    for _rid, _kind, env in examples:
        rec = bare(env)
        expected = wrap_record(rec)
        del expected["id"]
        assert fast.light_envelope(rec) == expected


# --------------------------------------------------------------------------- #
# options
# --------------------------------------------------------------------------- #
def test_config_exemptions_apply(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    cfg = tmp_path / "trailguard.yaml"
    cfg.write_text("exemptions:\n  accounts: ['111122223333']\n")
    p = write_jsonl(tmp_path / "x.jsonl", [stop_logging_example])
    out = json_lines(run(str(p), "--json", "--config", str(cfg)).stdout)
    assert out[0]["verdict"] == "none"
    assert out[0]["findings"][0]["decision"] == "skip"
    assert "exempt account" in out[0]["findings"][0]["reason"]


def test_config_rule_mode_and_mode_override(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    cfg = tmp_path / "trailguard.yaml"
    cfg.write_text("rule_modes:\n  cloudtrail-stop-logging: alert\n")
    p = write_jsonl(tmp_path / "x.jsonl", [stop_logging_example])
    assert json_lines(run(str(p), "--json", "--config", str(cfg)).stdout)[0]["verdict"] == "alert"
    over = json_lines(run(str(p), "--json", "--config", str(cfg), "--mode-override", "remediate").stdout)
    assert over[0]["verdict"] == "remediate"


def test_bad_config_exits_2(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("exemptions:\n  accounts: ['12']\n")
    p = write_jsonl(tmp_path / "x.jsonl", [stop_logging_example])
    res = run(str(p), "--config", str(cfg))
    assert res.exit_code == 2
    assert "12-digit" in res.stderr


def test_human_summary_table(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    p = write_jsonl(tmp_path / "x.jsonl", [stop_logging_example, bare(stop_logging_example)])
    res = runner.invoke(app, ["replay", str(p)], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "cloudtrail-stop-logging" in res.stdout
    assert "start_logging x2" in res.stdout
    assert "CRITICAL" in res.stdout


# --------------------------------------------------------------------------- #
# patterns from synthesized templates
# --------------------------------------------------------------------------- #
def _template(rule_id: str, pattern: dict[str, Any]) -> dict[str, Any]:
    return {
        "Resources": {
            "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "trailguard-central"}},
            "R1": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventBusName": {"Ref": "Bus"},
                    "EventPattern": pattern,
                    "Targets": [
                        {
                            "Id": "engine",
                            "Arn": {"Fn::GetAtt": ["Engine", "Arn"]},
                            "InputTransformer": {
                                "InputTemplate": '{"trailguard_rule": "'
                                + rule_id
                                + '", "event": <aws.events.event.json>}'
                            },
                        }
                    ],
                },
            },
            "Other": {
                "Type": "AWS::Events::Rule",
                "Properties": {"EventPattern": {"source": ["aws.ec2"]}, "Targets": []},
            },
        }
    }


def test_patterns_from_templates_are_the_ones_used(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    out_dir = tmp_path / "cdk.out"
    out_dir.mkdir()
    # the deployed pattern differs from the catalog's: replay must follow the template
    narrowed = {"source": ["aws.cloudtrail"], "detail": {"eventName": ["StopLogging"], "awsRegion": ["eu-west-1"]}}
    (out_dir / "Det.template.json").write_text(json.dumps(_template("cloudtrail-stop-logging", narrowed)))
    rules, warnings = rules_with_deployed_patterns(out_dir)
    assert [r.id for r in rules] == ["cloudtrail-stop-logging"]
    assert rules[0].event_pattern == narrowed
    assert len(warnings) == len(load_catalog()) - 1
    p = write_jsonl(tmp_path / "x.jsonl", [stop_logging_example])
    assert json_lines(run(str(p), "--json").stdout)[0]["verdict"] == "remediate"
    res = run(str(p), "--json", "--patterns-from", str(out_dir))
    assert json_lines(res.stdout)[0]["verdict"] == "none"
    assert "not deployed" in res.stderr


def test_patterns_from_unknown_rule_or_empty_dir_exits_2(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    p = write_jsonl(tmp_path / "x.jsonl", [stop_logging_example])
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run(str(p), "--patterns-from", str(empty))
    assert res.exit_code == 2
    assert "no trailguard rules" in res.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "X.template.json").write_text(json.dumps(_template("no-such-rule", {"source": ["aws.s3"]})))
    res = run(str(p), "--patterns-from", str(bad))
    assert res.exit_code == 2
    assert "not in the catalog" in res.stderr


def test_synthesized_app_deploys_exactly_the_catalog_patterns(standalone: Any) -> None:
    """Each rule deploys its catalog pattern, or the exact parts of it when the pattern was split."""
    from trailguard_engine.pattern_split import split_pattern

    from stacks.forwarding import PATTERN_SPLIT_CHARS

    deployed = deployed_rules(Path(standalone.outdir))
    rules = {r.id: r for r in load_catalog()}
    assert {d.rule_id for d in deployed} == set(rules)
    parts: dict[str, list[dict[str, Any]]] = {}
    for d in deployed:
        parts.setdefault(d.rule_id, []).append(d.pattern)
    for rid, rule in rules.items():
        assert sorted(map(json.dumps, parts[rid])) == sorted(
            map(json.dumps, split_pattern(rule.event_pattern, PATTERN_SPLIT_CHARS))
        ), rid
    assert any(len(p) > 1 for p in parts.values())
    evaluator, warnings = build_evaluator(patterns_from=Path(standalone.outdir))
    assert warnings == []
    assert {r.id for r in evaluator.rules} == set(rules)
    for r in evaluator.rules:  # a split rule replays with the union of its parts: the catalog's verdicts
        for ev in [*rules[r.id].examples_positive, *rules[r.id].examples_negative]:
            assert matches(r.event_pattern, ev) == matches(rules[r.id].event_pattern, ev), r.id


def test_patterns_from_a_split_rule_replay_its_union(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    """Two parts of one rule in one stack are one rule for replay; stacks that disagree are refused."""
    out_dir = tmp_path / "cdk.out"
    out_dir.mkdir()
    part1 = {"source": ["aws.cloudtrail"], "detail": {"eventName": ["StopLogging"]}}
    part2 = {"source": ["aws.cloudtrail"], "detail": {"eventName": ["DeleteTrail"]}}
    tpl = _template("cloudtrail-stop-logging", part1)
    tpl["Resources"]["R2"] = copy.deepcopy(tpl["Resources"]["R1"])
    tpl["Resources"]["R2"]["Properties"]["EventPattern"] = part2
    (out_dir / "Det.template.json").write_text(json.dumps(tpl))
    rules, _ = rules_with_deployed_patterns(out_dir)
    assert [r.event_pattern for r in rules] == [{"$or": [part1, part2]}]
    (out_dir / "Det2.template.json").write_text(json.dumps(_template("cloudtrail-stop-logging", part1)))
    with pytest.raises(PatternSourceError, match="two different deployed patterns"):
        rules_with_deployed_patterns(out_dir)


def test_replay_summary_json_shape() -> None:
    s = ReplaySummary()
    assert s.to_json() == {
        "events": 0,
        "rejected": 0,
        "errors": 0,
        "verdicts": {"remediate": 0, "alert": 0, "record": 0, "none": 0},
        "rules": {},
    }
