"""The end-to-end demo on the session's synthesized standalone app: cdk deploy into the emulator, then attack."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from trailguard.demo.records import Caller, cloudtrail_record
from trailguard.demo.routing import apply_input_transformer, eventbridge_event
from trailguard.demo.run import EXPECTED_RULES, StepReport, run_demo
from trailguard.demo.scenario import Step, scenario


@pytest.mark.slow
def test_demo_end_to_end(standalone: Any, tmp_path: Path) -> None:
    report = run_demo(Path(standalone.outdir), do_synth=False, log_dir=tmp_path)
    # Deployed with the real CDK CLI: every stack and every resource of every template exists in the emulator.
    dep = report.deployment
    assert dep is not None
    stacks = [n for n, a in standalone.manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"]
    assert len(dep.inventory.stacks) == len(stacks) >= 20
    assert dep.inventory.missing == []
    assert dep.inventory.resources > 800
    assert [c.name for c in dep.checks if not c.ok] == []
    assert {c.name for c in dep.checks} >= {"trail", "archive", "central rules", "metric filters", "state table"}
    # The default config deploys in dry-run (issue 16): the demo goes live as an operator would.
    assert dep.dry_run_deployed is True
    # The engine ran from the deployed zip, not from this checkout.
    assert report.engine_code["from_deployed_zip"] is True
    assert "/lambdas/" not in report.engine_code["trailguard_engine"]
    failed = [(r.step.key, r.verdict, r.actions, r.detail) for r in report.steps if not r.verified]
    assert failed == []
    risky = [r for r in report.steps if not r.step.benign]
    benign = [r for r in report.steps if r.step.benign]
    assert len(risky) >= 8
    assert len(benign) >= 2
    # A benign change is never acted on or alerted; a change-record rule may keep an INFORMATIONAL record of it.
    assert all(r.verdict in ("none", "record") and not r.actions for r in benign)
    remediated = {r.step.key: r.actions for r in risky if r.expected == "remediate"}
    # default standalone config: these are auto-remediated, the rest alert
    assert remediated["stop-trail"] == ["start_logging"]
    assert remediated["open-ssh"] == ["revoke_public_sg_ingress"]
    assert remediated["public-snapshot"] == ["make_snapshot_private"]
    # Patterns select API calls broadly (issue 14), so a change may reach several rules; only its own acts.
    assert all(r.step.rule in r.routed for r in risky)
    assert {r.step.key: r.acted for r in risky} == {r.step.key: [r.step.rule] for r in risky}
    # How long the demo takes is a benchmark figure (make bench, README), never a pass/fail condition.


def test_scenario_covers_the_issue_list() -> None:
    steps = scenario(EXPECTED_RULES)
    keys = {s.key for s in steps}
    assert {"stop-trail", "open-ssh", "public-acl", "delete-bpa", "public-snapshot", "delete-key"} <= keys
    assert sum(1 for s in steps if not s.benign) >= 8
    assert sum(1 for s in steps if s.benign) >= 2


def test_verification_fails_when_a_benign_change_is_touched_or_a_risky_one_is_missed() -> None:
    from trailguard.demo import run as demo_run

    def live(ok: bool) -> Any:
        return lambda _sb: (ok, "live state")

    def step(rule: str | None, *, undone: bool, in_place: bool) -> Step:
        return Step("k", "a change", rule, lambda _sb: {}, live(undone), live(in_place))

    ok = StepReport(step=step(None, undone=False, in_place=True), event_id="e1")
    demo_run._verify(ok, None, [])  # type: ignore[arg-type]
    assert ok.verified
    touched = StepReport(
        step=step(None, undone=False, in_place=True), event_id="e1", verdict="remediate", actions=["x"]
    )
    demo_run._verify(touched, None, [])  # type: ignore[arg-type]
    assert not touched.verified
    undone = StepReport(step=step(None, undone=True, in_place=False), event_id="e1")
    demo_run._verify(undone, None, [])  # type: ignore[arg-type]
    assert not undone.verified
    missed = StepReport(step=step("r", undone=False, in_place=True), event_id="e2", expected="alert")
    demo_run._verify(missed, None, [])  # type: ignore[arg-type]
    assert not missed.verified
    assert "not routed" in missed.detail
    fixed = StepReport(step=step("r", undone=True, in_place=False), event_id="e3", expected="remediate")
    fixed.routed, fixed.verdict = ["r"], "remediate"
    demo_run._verify(fixed, None, [])  # type: ignore[arg-type]
    assert fixed.verified
    still_open = StepReport(step=step("r", undone=False, in_place=True), event_id="e4", expected="remediate")
    still_open.routed, still_open.verdict = ["r"], "remediate"
    demo_run._verify(still_open, None, [])  # type: ignore[arg-type]
    assert not still_open.verified
    alerted = StepReport(step=step("r", undone=False, in_place=True), event_id="e5", expected="alert")
    alerted.routed, alerted.verdict = ["r"], "alert"
    demo_run._verify(alerted, None, [{"raw": "... e5 ..."}])  # type: ignore[arg-type]
    assert alerted.verified


def test_record_builder_shape() -> None:
    caller = Caller("123456789012", "mallory", "AKIAEXAMPLE", "AIDAEXAMPLE")
    rec = cloudtrail_record(
        service="iam", event_name="AttachUserPolicy", region="eu-west-1", caller=caller,
        request={"userName": "u", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, response=None,
    )  # fmt: skip
    assert rec["eventSource"] == "iam.amazonaws.com"
    assert rec["awsRegion"] == "us-east-1"  # IAM is global: logged in us-east-1
    assert uuid.UUID(rec["eventID"])
    assert rec["userIdentity"]["arn"] == "arn:aws:iam::123456789012:user/mallory"
    assert rec["eventType"] == "AwsApiCall"
    assert rec["recipientAccountId"] == "123456789012"
    env = eventbridge_event(rec, account="123456789012", region="us-east-1")
    assert env["source"] == "aws.iam"
    assert env["detail-type"] == "AWS API Call via CloudTrail"


def test_input_transformer_substitution() -> None:
    event = {"id": "1", "source": "aws.s3", "detail": {"eventName": "PutBucketAcl", "n": 3}}
    tpl = '{"trailguard_rule": "r", "event": <aws.events.event.json>, "name": "<n>", "count": <c>}'
    out = apply_input_transformer(
        tpl, {"n": "$.detail.eventName", "c": "$.detail.n"}, event, rule_name="x", rule_arn="y"
    )
    assert out == {"trailguard_rule": "r", "event": event, "name": "PutBucketAcl", "count": 3}


def test_an_organization_mode_assembly_is_not_taken_for_the_demos(organization: Any, standalone: Any) -> None:
    from trailguard.demo.run import DemoError, _check_demo_assembly

    with pytest.raises(DemoError, match=r"not the demo's assembly .*stacks pinned to accounts"):
        _check_demo_assembly(Path(organization.outdir))
    _check_demo_assembly(Path(standalone.outdir))


def test_the_demo_tables_explain_the_check_mark_and_show_what_each_remediation_changed() -> None:
    import io

    from rich.console import Console

    from trailguard.commands.demo import LEGEND, report_details, report_table
    from trailguard.demo.run import DemoReport

    steps = scenario(EXPECTED_RULES)
    fixed = StepReport(step=steps[0], verdict="remediate", verified=True, detail="trail on")
    fixed.changed = ["start_logging: started logging on arn:aws:cloudtrail:us-east-1:1:trail/t"]
    alerted = StepReport(step=steps[1], verdict="alert", verified=True, detail="ingress 22<-0.0.0.0/0")
    report = DemoReport([fixed, alerted], {})
    out = io.StringIO()
    console = Console(file=out, width=80, color_system=None)
    console.print(report_table(report))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "undone" in text and "alerted" in text
    # Rule ids are never split across lines.
    assert steps[0].rule is not None and steps[0].rule in text
    assert report_details(report) == [
        "1. start_logging: started logging on arn:aws:cloudtrail:us-east-1:1:trail/t",
        "2. live state: ingress 22<-0.0.0.0/0",
    ]
    assert LEGEND.startswith("✓ = behaved as expected") and "alert" in LEGEND
