"""replay judges CloudTrail records only: an object that merely names an API call is skipped, with a reason.

A bare object counts as a record when it has ``eventName`` and ``eventSource`` **and** the fields CloudTrail
writes in every record: ``eventTime`` and an id (``eventID``, or ``requestID``). Label files, findings and
other JSON that name an API call are reported as skipped inputs (``--strict`` exits 1 on them, as on any
skipped input); CloudTrail Insights events are skipped too. EventBridge envelopes and log files'
``Records`` arrays are read as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import bare, write_jsonl, write_log_file
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import not_a_record, to_envelope
from trailguard_engine.exceptions import RejectedEvent
from typer.testing import CliRunner

from trailguard.cli import _load_commands, app
from trailguard.replay import FastEvaluator, Problem, expand_paths, iter_inputs, replay

_load_commands()
runner = CliRunner()


def _run(*args: str) -> Any:
    return runner.invoke(app, ["replay", *args], env={"COLUMNS": "200"})


def _label(record: dict[str, Any]) -> dict[str, Any]:
    """A line of a label file written beside a corpus of records: it names the call, it is not one."""
    return {
        "source": "some/dataset",
        "eventSource": record["eventSource"],
        "eventName": record["eventName"],
        "eventType": "AwsApiCall",
        "errorCode": None,
        "label": "positive",
        "line": 0,
    }


def _insight(record: dict[str, Any]) -> dict[str, Any]:
    """A CloudTrail Insights event: the same envelope fields, an ``insightDetails`` instead of a call."""
    return {
        "eventVersion": "1.07",
        "eventTime": record["eventTime"],
        "awsRegion": "us-east-1",
        "eventID": "8b4e3e5c-0000-4000-8000-000000000001",
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": "111122223333",
        "sharedEventID": "12345678-0000-4000-8000-000000000002",
        "eventSource": record["eventSource"],
        "eventName": record["eventName"],
        "eventCategory": "Insight",
        "insightDetails": {"state": "Start", "insightType": "ApiCallRateInsight"},
    }


def test_label_files_and_other_json_are_skipped_with_a_reason(
    tmp_path: Path, stop_logging_example: dict[str, Any]
) -> None:
    rec = bare(stop_logging_example)
    p = write_jsonl(
        tmp_path / "capture.labels.jsonl",
        [
            _label(rec),
            {"eventName": rec["eventName"], "eventSource": rec["eventSource"], "note": "what to look for"},
            {"eventName": rec["eventName"], "eventSource": rec["eventSource"], "eventTime": rec["eventTime"]},
            _insight(rec),
            rec,
        ],
    )
    res = _run(str(p), "--json")
    assert res.exit_code == 0
    out = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    assert [o["eventName"] for o in out] == ["StopLogging"]  # only the real record is judged
    assert out[0]["verdict"] == "remediate"
    err = res.stderr.splitlines()
    no_time_no_id = (
        "not a CloudTrail record: it has eventName and eventSource but no eventTime and no eventID or requestID"
    )
    assert err[0] == f"{p}:1: {no_time_no_id}"
    assert err[1] == f"{p}:2: {no_time_no_id}"
    assert err[2] == f"{p}:3: not a CloudTrail record: it has eventName and eventSource but no eventID or requestID"
    assert err[3].startswith(f"{p}:4: not a CloudTrail record: a CloudTrail Insights event")
    assert "1 events judged, 4 inputs skipped" in res.stderr
    assert _run(str(p), "--strict", "--json").exit_code == 1  # skipped inputs, as for any other skipped input


@pytest.mark.parametrize(
    "drop",
    [
        (),  # as CloudTrail writes it
        ("requestID",),  # many services write no requestID
        ("eventID",),  # format 1.0 records had no eventID
        ("eventVersion",),  # exports drop it (CSV-rebuilt data events keep time and ids)
        ("eventVersion", "awsRegion", "recipientAccountId", "userAgent", "requestParameters", "responseElements"),
    ],
)
def test_real_minimal_records_are_judged(tmp_path: Path, stop_logging_example: dict[str, Any], drop: Any) -> None:
    rec = {k: v for k, v in bare(stop_logging_example).items() if k not in drop}
    assert isinstance(rec.get("eventID") or rec.get("requestID"), str)
    assert not_a_record(rec) is None
    problems: list[Problem] = []
    summary = replay(
        iter_inputs(expand_paths([str(write_jsonl(tmp_path / "r.jsonl", [rec]))])),
        Evaluator(),
        on_problem=problems.append,
    )
    assert (summary.events, summary.rejected, problems) == (1, 0, [])


def test_envelopes_and_records_arrays_are_still_read(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    rec = bare(stop_logging_example)
    log = write_log_file(tmp_path / "111122223333_CloudTrail_us-east-1_20240101T0000Z_x.json.gz", [rec, _label(rec)])
    env = write_jsonl(tmp_path / "envelopes.jsonl", [stop_logging_example])
    problems: list[Problem] = []
    summary = replay(iter_inputs(expand_paths([str(log), str(env)])), Evaluator(), on_problem=problems.append)
    assert summary.events == 2
    assert summary.rejected == 1  # the label smuggled into the Records array
    assert problems[0].reason.startswith("not a CloudTrail record: it has eventName and eventSource but no")


def test_engine_rejects_the_same_objects(stop_logging_example: dict[str, Any]) -> None:
    """The check sits in the engine's own parser: the Lambda, reconcile and redrive refuse what replay skips."""
    rec = bare(stop_logging_example)
    for obj in (
        _label(rec),
        _insight(rec),
        {**rec, "eventTime": ""},
        {k: v for k, v in rec.items() if k not in ("eventID", "requestID")},
    ):
        with pytest.raises(RejectedEvent, match="not a CloudTrail record"):
            to_envelope(obj)
    assert to_envelope(stop_logging_example)["detail"] == rec  # envelopes: unchanged
    assert to_envelope(rec)["detail"] == rec


def test_fast_path_skips_exactly_what_the_engine_skips(stop_logging_example: dict[str, Any]) -> None:
    rec = bare(stop_logging_example)
    engine = Evaluator()
    fast = FastEvaluator(engine)
    objs = [
        _label(rec),
        _insight(rec),
        {**rec, "eventTime": ""},
        {**rec, "eventTime": 7},
        {k: v for k, v in rec.items() if k != "eventID"},
        {**{k: v for k, v in rec.items() if k != "eventID"}, "requestID": "r-1"},
        {**rec, "eventID": None, "requestID": "r-1"},
        {**rec, "eventName": "GetCallerIdentity", "eventSource": "sts.amazonaws.com"},  # a record nothing matches
        {**_label(rec), "eventName": "GetCallerIdentity", "eventSource": "sts.amazonaws.com"},
    ]

    def outcome(fn: Any, obj: Any) -> Any:
        try:
            return fn(obj).to_json()
        except RejectedEvent as exc:
            return ("rejected", str(exc))

    for obj in objs:
        assert outcome(fast.evaluate, obj) == outcome(engine.evaluate, obj), obj
    assert outcome(fast.evaluate, objs[-1])[0] == "rejected"  # would have been a quick "none" before
