"""replay's readers accept Event History output, CloudTrail Lake results, and skip Insights/digest files by name."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

from cli_helpers import bare, write_log_file
from trailguard_engine.evaluate import Evaluator

from trailguard.replay import Problem, SkippedFile, expand_paths, iter_file, iter_inputs, replay, skipped_summary


def _judge(paths: list[str]) -> tuple[list[str], list[Problem], Any]:
    problems: list[Problem] = []
    verdicts: list[str] = []
    summary = replay(
        iter_inputs(expand_paths(paths)), Evaluator(), on_problem=problems.append,
        on_result=lambda r: verdicts.append(r.verdict),
    )  # fmt: skip
    return verdicts, problems, summary


def test_aws_cli_lookup_events_output_is_an_input(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    rec = bare(stop_logging_example)
    doc = {
        "Events": [
            {"EventId": rec["eventID"], "EventName": rec["eventName"], "EventTime": "2024-05-01T10:00:00+00:00",
             "CloudTrailEvent": json.dumps(rec)},
            {"EventId": "x", "EventName": "Bad", "CloudTrailEvent": "{truncated"},
        ],
        "NextToken": "abc",
    }  # fmt: skip
    path = tmp_path / "lookup.json"
    path.write_text(json.dumps(doc, indent=4))  # the AWS CLI pretty-prints
    objs = [obj for _, _, obj in iter_file(str(path))]
    assert objs[0] == rec
    verdicts, problems, summary = _judge([str(path)])
    assert verdicts == ["remediate"]
    assert (summary.events, summary.rejected) == (1, 1)
    assert problems[0].reason.startswith("Events[1]: CloudTrailEvent is not valid JSON")
    # one Event per line (jq -c '.Events[]') works too
    lines = tmp_path / "events.jsonl"
    lines.write_text(json.dumps(doc["Events"][0]) + "\n")
    assert [obj for _, _, obj in iter_file(str(lines))] == [rec]


def _lake_columns(rec: dict[str, Any]) -> dict[str, str]:
    """A Lake result row as the console shows it: lower-case columns, Trino-rendered structs, text values."""
    ident = rec["userIdentity"]
    rendered = "{" + ", ".join(f"{k.lower()}={v}" for k, v in ident.items() if not isinstance(v, dict)) + "}"
    return {
        "eventversion": rec.get("eventVersion", "1.08"),
        "useridentity": rendered,
        "eventtime": rec["eventTime"].replace("T", " ").replace("Z", ".000"),
        "eventsource": rec["eventSource"],
        "eventname": rec["eventName"],
        "awsregion": rec["awsRegion"],
        "sourceipaddress": rec.get("sourceIPAddress", ""),
        "useragent": rec.get("userAgent", ""),
        "requestparameters": json.dumps(rec.get("requestParameters")) if rec.get("requestParameters") else "",
        "eventid": rec["eventID"],
        "readonly": "false",
        "eventtype": rec.get("eventType", "AwsApiCall"),
        "recipientaccountid": rec.get("recipientAccountId", ""),
    }


def test_lake_query_results_are_inputs(tmp_path: Path, stop_logging_example: dict[str, Any]) -> None:
    rec = bare(stop_logging_example)
    cols = _lake_columns(rec)
    # GetQueryResults: QueryResultRows is a list of rows, each a list of one-column objects
    api = tmp_path / "get-query-results.json"
    api.write_text(json.dumps({"QueryStatus": "FINISHED", "QueryResultRows": [[{k: v} for k, v in cols.items()]]}))
    # the same rows as a JSON array, as JSON Lines, with eventJson, and as the console's CSV
    array = tmp_path / "rows.json"
    array.write_text(json.dumps([cols]))
    with_json = tmp_path / "eventjson.jsonl"
    with_json.write_text(json.dumps({"eventJson": json.dumps(rec)}) + "\n")
    csv_path = tmp_path / "results.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(cols))
        writer.writeheader()
        writer.writerow(cols)
    gz_csv = tmp_path / "results.csv.gz"
    gz_csv.write_bytes(gzip.compress(csv_path.read_bytes()))
    for path in (api, array, with_json, csv_path, gz_csv):
        verdicts, problems, _ = _judge([str(path)])
        assert (verdicts, problems) == (["remediate"], []), path.name
    rebuilt = next(obj for _, _, obj in iter_file(str(csv_path)))
    assert rebuilt["eventTime"] == rec["eventTime"].replace(".000", "")
    assert rebuilt["userIdentity"]["arn"] == rec["userIdentity"]["arn"]
    assert rebuilt["readOnly"] is False
    assert [line for _, line, _ in iter_file(str(csv_path))] == [2]


def test_lake_row_with_an_unreadable_struct_is_skipped_with_the_column(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    row = {"eventname": "StopLogging", "eventsource": "cloudtrail.amazonaws.com", "useridentity": "{type=IAMUser"}
    path.write_text(json.dumps(row) + "\n")
    _, problems, summary = _judge([str(path)])
    assert summary.rejected == 1
    assert problems[0].reason.startswith("Lake column 'useridentity': cannot read")


def test_csv_that_is_not_lake_results_says_so(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    _, problems, _ = _judge([str(path)])
    assert problems[0].reason == "CSV without an eventJson column or eventName and eventSource columns"


def test_insights_and_digest_files_are_skipped_by_name_not_rejected(
    tmp_path: Path, stop_logging_example: dict[str, Any]
) -> None:
    base = tmp_path / "AWSLogs" / "111122223333"
    day = ("us-east-1", "2024", "05", "01")
    trail = base / "CloudTrail" / Path(*day)
    trail.mkdir(parents=True)
    write_log_file(trail / "111122223333_CloudTrail_us-east-1_20240501T1000Z_a.json.gz", [bare(stop_logging_example)])
    insight_dir = base / "CloudTrail-Insight" / Path(*day)
    insight_dir.mkdir(parents=True)
    insight = insight_dir / "111122223333_CloudTrail-Insight_us-east-1_20240501T1000Z_b.json.gz"
    write_log_file(insight, [{"eventType": "AwsCloudTrailInsight", "insightDetails": {"state": "Start"}}])
    digest_dir = base / "CloudTrail-Digest" / Path(*day)
    digest_dir.mkdir(parents=True)
    (digest_dir / "111122223333_CloudTrail-Digest_us-east-1_x.json.gz").write_bytes(gzip.compress(b"{}"))
    skipped: list[SkippedFile] = []
    files = expand_paths([str(tmp_path)], skipped)
    assert files == [str(trail / "111122223333_CloudTrail_us-east-1_20240501T1000Z_a.json.gz")]
    assert [s.kind for s in skipped] == ["digest", "insights"]
    assert str(skipped[1]).endswith("skipped, a CloudTrail Insights file (unusual-activity summaries, not API calls)")
    assert skipped_summary(skipped) == (
        "skipped 1 CloudTrail Insights file and 1 digest file by name: they hold no API activity to judge"
    )
    assert skipped_summary([]) is None
    named: list[SkippedFile] = []
    assert expand_paths([str(insight)], named) == []  # named explicitly: skipped all the same, and said
    assert named == [SkippedFile(str(insight), "insights")]
    verdicts, problems, summary = _judge([str(tmp_path)])
    assert (verdicts, problems, summary.rejected) == (["remediate"], [], 0)
