"""``trailguard redrive``: dry run by default, re-invoke then delete with --apply, bounded, and a runbook that matches the stack.

SQS is moto (in-process). Lambda cannot run in moto without Docker, so the engine's ``Invoke`` is a
botocore ``Stubber`` on a real Lambda client: the request the command sends is checked as botocore
serializes it, and the answer (202, an error) is chosen per test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws
from typer.testing import CliRunner

from stacks.detection import TARGET_MAX_EVENT_AGE, TARGET_RETRY_ATTEMPTS, central_rule_name
from trailguard import redrive as rd
from trailguard.cli import _load_commands, app

_load_commands()
runner = CliRunner()

REGION = "us-east-1"
ENGINE = "TrailguardDetection-Engine7B56DDA2"
ENGINE_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:{ENGINE}"
RULE = "cloudtrail-stop-logging"
ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "redrive.md"


def destination_record(payload: Any, *, condition: str = "RetriesExhausted", arn: str = ENGINE_ARN) -> dict[str, Any]:
    """What Lambda writes to the on-failure destination after the last failed attempt."""
    return {
        "version": "1.0",
        "timestamp": "2026-10-01T12:07:41.118Z",
        "requestContext": {
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "functionArn": f"{arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": 3,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "start_logging failed", "errorType": "RemediationError"},
    }


def eventbridge_attributes(rule_id: str = RULE, target: str = ENGINE_ARN) -> dict[str, Any]:
    """The attributes EventBridge puts on a rule target's dead letter."""
    values = {
        "RULE_ARN": f"arn:aws:events:{REGION}:123456789012:rule/trailguard-central/{central_rule_name(rule_id)}",
        "TARGET_ARN": target,
        "ERROR_CODE": "SDK_CLIENT_ERROR",
        "ERROR_MESSAGE": "Lambda rate exceeded",
    }
    return {k: {"DataType": "String", "StringValue": v} for k, v in values.items()}


@dataclass
class World:
    sqs: Any
    url: str
    lam: Any
    stub: Stubber
    made: list[str] = field(default_factory=list)
    invoked: list[dict[str, Any]] = field(default_factory=list)

    def send(self, body: Any, attributes: dict[str, Any] | None = None) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.sqs.send_message(QueueUrl=self.url, MessageBody=text, MessageAttributes=attributes or {})

    def bodies(self) -> list[str]:
        """Every message in the queue (all visible again after a run), read without keeping them."""
        msgs: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, VisibilityTimeout=30)
            if not batch.get("Messages"):
                break
            msgs += batch["Messages"]
        for m in msgs:
            self.sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        return sorted(m["Body"] for m in msgs)

    def expect_invokes(self, n: int) -> None:
        for _ in range(n):
            self.stub.add_response(
                "invoke",
                {"StatusCode": 202},
                expected_params={"FunctionName": ENGINE, "InvocationType": "Event", "Payload": ANY},
            )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="TrailguardDetection-EngineFailureDlqA4899809")["QueueUrl"]
        lam = boto3.client("lambda", region_name=REGION)
        stub = Stubber(lam)
        w = World(sqs=sqs, url=url, lam=lam, stub=stub)

        def record(params: dict[str, Any], **_: Any) -> None:
            w.invoked.append(dict(params))

        lam.meta.events.register("before-parameter-build.lambda.Invoke", record)

        def make_client(service: str, region: str | None) -> Any:
            w.made.append(service)
            return {"sqs": sqs, "lambda": lam}[service]

        monkeypatch.setattr(rd, "make_client", make_client)
        with stub:
            yield w


def run(world: World, *args: str) -> Any:
    return runner.invoke(app, ["redrive", "--queue-url", world.url, "--wait-seconds", "0", *args])


def engine_input(example: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"trailguard_rule": RULE, "event": example, **extra}


# --------------------------------------------------------------------------- #
def test_dry_run_is_the_default_lists_every_message_and_changes_nothing(
    world: World, stop_logging_example: dict[str, Any]
) -> None:
    world.send(destination_record(engine_input(stop_logging_example)))
    world.send(stop_logging_example, eventbridge_attributes())
    world.send("this is not an invocation record")
    before = world.bodies()
    res = run(world, "--function-name", ENGINE)
    assert res.exit_code == 1, res.output  # one message cannot be re-driven
    lines = res.stdout.splitlines()
    assert sum(line.startswith("would re-drive") for line in lines) == 2
    assert sum(line.startswith("left in queue") for line in lines) == 1
    assert any(
        "lambda-destination: RetriesExhausted after 3 attempts; rule cloudtrail-stop-logging" in x for x in lines
    )
    assert any("eventbridge-dlq: EventBridge could not deliver it: SDK_CLIENT_ERROR" in x for x in lines)
    assert any("body is not JSON" in x for x in lines)
    assert "nothing sent or deleted" in lines[-1]
    assert "lambda" not in world.made  # a dry run never even makes a Lambda client
    assert world.invoked == []
    assert world.bodies() == before  # all three are back in the queue, visible


def test_apply_reinvokes_the_engine_with_the_checked_input_and_deletes_only_what_lambda_accepted(
    world: World, stop_logging_example: dict[str, Any]
) -> None:
    from_reconcile = engine_input(stop_logging_example, origin="log-file")
    world.send(destination_record(from_reconcile))
    world.send(stop_logging_example, eventbridge_attributes())
    world.send(destination_record({"trailguard_rule": "no-such-rule", "event": stop_logging_example}))
    world.expect_invokes(2)
    res = run(world, "--function-name", ENGINE, "--apply")
    assert res.exit_code == 1, res.output
    world.stub.assert_no_pending_responses()
    sent = sorted((json.loads(p["Payload"]) for p in world.invoked), key=lambda p: "trailguard_rule" in p)
    assert sent == [stop_logging_example, from_reconcile]  # origin kept: a log-file event stays alert-only
    assert all(p["InvocationType"] == "Event" and p["FunctionName"] == ENGINE for p in world.invoked)
    [left] = world.bodies()
    assert "no-such-rule" in left
    assert sum(line.startswith("re-driven ") for line in res.stdout.splitlines()) == 2
    assert "is not a rule of the catalog" in res.stdout


def test_a_refused_invoke_stops_the_run_and_deletes_nothing(world: World, stop_logging_example: dict[str, Any]) -> None:
    for _ in range(3):
        world.send(destination_record(engine_input(stop_logging_example)))
    before = world.bodies()
    world.stub.add_client_error("invoke", "AccessDeniedException", "not authorized", http_status_code=403)
    res = run(world, "--function-name", ENGINE, "--apply")
    assert res.exit_code == 1
    assert len(world.invoked) == 1  # the run stopped at the first refusal
    assert "FAILED" in res.stdout
    assert "AccessDeniedException" in res.stdout
    assert world.bodies() == before


def test_an_invoke_lambda_did_not_queue_is_a_failure(world: World, stop_logging_example: dict[str, Any]) -> None:
    world.send(destination_record(engine_input(stop_logging_example)))
    world.stub.add_response("invoke", {"StatusCode": 200})  # a synchronous answer is not an accepted async invoke
    res = run(world, "--function-name", ENGINE, "--apply")
    assert res.exit_code == 1
    assert "returned status 200, not 202" in res.stdout
    assert len(world.bodies()) == 1


def test_apply_needs_the_function_name(world: World) -> None:
    res = run(world, "--apply")
    assert res.exit_code == 2
    assert "--apply needs --function-name" in res.output


def test_max_messages_bounds_the_run(world: World, stop_logging_example: dict[str, Any]) -> None:
    for _ in range(25):
        world.send(destination_record(engine_input(stop_logging_example)))
    res = run(world, "--max-messages", "12", "--json")
    assert res.exit_code == 0, res.output
    docs = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(docs) == 13
    assert docs[-1]["summary"] == {
        "dry_run": True,
        "read": 12,
        "resubmitted": 0,
        "would-resubmit": 12,
        "left": 0,
        "failed": 0,
        "problems": [],
    }
    assert {d["eventName"] for d in docs[:-1]} == {"StopLogging"}
    assert len(world.bodies()) == 25


def test_the_queue_region_comes_from_its_url() -> None:
    assert rd.region_of_queue("https://sqs.eu-west-3.amazonaws.com/123456789012/q") == "eu-west-3"
    assert rd.region_of_queue("http://localhost:5000/123456789012/q") is None


# --------------------------------------------------------------------------- #
# the runbook
# --------------------------------------------------------------------------- #
def _redrive_options() -> set[str]:
    import typer.main

    command = typer.main.get_command(app).commands["redrive"]  # type: ignore[attr-defined]
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}


def test_the_runbook_is_linked_and_uses_only_real_options() -> None:
    assert "](docs/redrive.md)" in (ROOT / "README.md").read_text()
    text = DOC.read_text()
    commands = re.findall(r"trailguard redrive ([^\n`]*)", text)
    assert len(commands) >= 3
    options = _redrive_options()
    for line in commands:
        for opt in re.findall(r"(?<!\S)(--[a-z][a-z-]*)", line):
            assert opt in options, f"docs/redrive.md uses `trailguard redrive {opt}`, which does not exist"
    assert "](deploy.md)" in text


def test_the_runbook_figures_are_the_stacks(standalone: Any) -> None:
    """Retries, ages, retention, names: what the runbook tells an operator is what the template deploys."""
    text = DOC.read_text()
    tpl = standalone.templates["TrailguardDetection"]
    res = tpl["Resources"]

    def one(type_: str, prefix: str) -> dict[str, Any]:
        [props] = [r["Properties"] for lid, r in res.items() if r["Type"] == type_ and lid.startswith(prefix)]
        return props

    invoke = one("AWS::Lambda::EventInvokeConfig", "EngineEventInvokeConfig")
    assert invoke["MaximumRetryAttempts"] == 2 and "both retries (3 attempts)" in text
    assert invoke["MaximumEventAgeInSeconds"] == 6 * 3600 and "longer than 6 hours" in text
    assert "EngineFailureDlq" in invoke["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert TARGET_RETRY_ATTEMPTS == 8 and "8 retries" in text
    assert int(TARGET_MAX_EVENT_AGE.to_hours()) == 2 and "up to 2 hours" in text
    for queue in ("EngineFailureDlq", "RuleTargetDlq", "ReconcileDlq"):
        assert one("AWS::SQS::Queue", queue)["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert "**14 days**" in text
    redrive_policy = one("AWS::SQS::Queue", "ReconcileQueue")["RedrivePolicy"]
    assert redrive_policy["maxReceiveCount"] == 5 and "failed reconciliation 5 times" in text
    rule = central_rule_name(RULE)
    assert any(r["Properties"].get("Name") == rule for r in res.values() if r["Type"] == "AWS::Events::Rule")
    assert f"--rule {rule}" in text
    aliases = {r["Properties"]["AliasName"] for r in res.values() if r["Type"] == "AWS::KMS::Alias"}
    assert "alias/trailguard-detection" in aliases and "`alias/trailguard-detection`" in text


def test_runbook_paths_exist() -> None:
    for path in re.findall(r"\]\(([\w./-]+\.md)\)", DOC.read_text()):
        assert (DOC.parent / path).exists(), f"docs/redrive.md links {path}, which does not exist"
