"""Core evaluator behaviour shared by the engine, the log-file path and replay."""

from __future__ import annotations

import copy

from trailguard_engine.catalog import rules_by_id
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.matcher import PatternIndex


def test_read_only_events_only_reach_rules_deployed_for_them() -> None:
    ev = Evaluator()
    rules = rules_by_id()
    write_rule = rules["cloudtrail-stop-logging"]
    assert not write_rule.read_only_events
    event = copy.deepcopy(write_rule.examples_positive[0])
    assert ev.evaluate(event).findings
    event["detail"]["readOnly"] = True  # EventBridge would not deliver this to a plain ENABLED rule
    assert not [f for f in ev.evaluate(event).findings if f.rule == write_rule.id]
    ro_rule = next(r for r in rules.values() if r.read_only_events)
    ro_event = next(e for e in ro_rule.examples_positive if e["detail"].get("readOnly") is True)
    assert any(f.rule == ro_rule.id for f in ev.evaluate(ro_event).findings)


def test_index_uses_event_names_beside_and_inside_or() -> None:
    beside = {"source": ["aws.s3"], "detail": {"eventName": ["PutBucketAcl"], "$or": [{"a": ["1"]}, {"b": ["2"]}]}}
    inside = {"source": ["aws.ec2"], "detail": {"$or": [{"eventName": ["A"]}, {"eventName": ["B"], "x": ["y"]}]}}
    loose = {"source": ["aws.iam"], "detail": {"$or": [{"eventName": ["C"]}, {"userAgent": ["z"]}]}}
    idx = PatternIndex([(beside, "beside"), (inside, "inside"), (loose, "loose")])
    assert idx._by_pair[("aws.s3", "PutBucketAcl")][0][-1] == "beside"
    assert {idx._by_pair[("aws.ec2", n)][0][-1] for n in ("A", "B")} == {"inside"}
    assert idx._by_source["aws.iam"][0][-1] == "loose"
    assert idx.match({"source": "aws.ec2", "detail": {"eventName": "B", "x": "y"}}) == ["inside"]
    assert idx.match({"source": "aws.ec2", "detail": {"eventName": "C", "x": "y"}}) == []
    assert idx.match({"source": "aws.iam", "detail": {"eventName": "D", "userAgent": "z"}}) == ["loose"]


def test_every_package_directory_is_installed() -> None:
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    cfg = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    dirs = cfg["package-dir"]
    found = set()
    for top, rel in dirs.items():
        base = root / rel
        for init in base.rglob("__init__.py"):
            parts = init.parent.relative_to(base).parts
            found.add(".".join((top, *parts)))
    assert found == listed, f"pyproject packages out of date: missing {found - listed}, extra {listed - found}"


def test_a_raising_decision_function_alerts_and_never_acts(monkeypatch) -> None:
    from trailguard_engine.decisions import registry
    from trailguard_engine.evaluate import DECISION_ERROR
    from trailguard_engine.runtime_config import RuntimeConfig

    rule = rules_by_id()["cloudtrail-stop-logging"]

    def broken(event, rule, cfg):
        raise KeyError("boom")

    monkeypatch.setitem(registry(), rule.decision, broken)
    result = Evaluator(cfg=RuntimeConfig(mode_override="remediate")).evaluate(rule.examples_positive[0])
    [finding] = [f for f in result.findings if f.rule == rule.id]
    assert finding.decision == "alert" and finding.action is None
    assert finding.reason.startswith(DECISION_ERROR) and "KeyError" in finding.reason
