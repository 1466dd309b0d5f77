"""Partition pruning by ``AWSLogs/`` path (issue 18): a filtered hunt reads only the files that can match,
and returns exactly what the unpruned hunt returns."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from cloudtrail_tree import MEMBER, STANDALONE

from trailguard import hunt


def _ids(logset: hunt.LogSet, where: str) -> list[str]:
    result = hunt.run_sql(f"SELECT eventid FROM cloudtrail WHERE {where} ORDER BY eventid", logset)
    return [row[0] for row in result.rows]


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"accounts": [MEMBER]}, f"account = '{MEMBER}'"),
        ({"accounts": [STANDALONE]}, f"account = '{STANDALONE}'"),
        ({"regions": ["us-east-1"]}, "region = 'us-east-1'"),
        ({"since": "2024-05-02T00:00:00Z"}, "eventtime >= '2024-05-02T00:00:00Z'"),
        (
            {"since": "2024-05-02T08:00:00Z", "accounts": [STANDALONE], "regions": ["us-east-1"]},
            f"eventtime >= '2024-05-02T08:00:00Z' AND account = '{STANDALONE}' AND region = 'us-east-1'",
        ),
    ],
)
def test_pruned_hunt_returns_what_the_full_hunt_returns(log_tree: Path, kwargs: dict, where: str) -> None:
    full = hunt.discover([log_tree])
    pruned = hunt.prune(full, **kwargs)
    expected = _ids(full, where)
    assert expected, "the filter must select some events, or the comparison proves nothing"
    assert _ids(pruned, where) == expected


def test_prune_drops_other_partitions(log_tree: Path) -> None:
    full = hunt.discover([log_tree])
    pruned = hunt.prune(full, accounts=[MEMBER])
    assert 0 < len(pruned.log_files) < len(full.log_files)
    for f in pruned.log_files:
        parts = hunt.partition_of(f)
        assert parts is None or parts[0] == MEMBER


def test_no_filter_keeps_everything(log_tree: Path) -> None:
    full = hunt.discover([log_tree])
    assert hunt.prune(full) == full
    assert hunt.prune(full, since="not a time") == full


def _log(path: Path, time: str, account: str = "123456789012") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"eventTime": time, "eventName": "ListUsers", "eventSource": "iam.amazonaws.com",
              "eventID": f"id-{time}", "recipientAccountId": account, "awsRegion": "us-east-1"}  # fmt: skip
    path.write_bytes(gzip.compress(json.dumps({"Records": [record]}).encode()))
    return path


def test_since_keeps_one_day_of_delivery_margin_and_files_outside_the_layout(tmp_path: Path) -> None:
    day = tmp_path / "AWSLogs" / "123456789012" / "CloudTrail" / "us-east-1"
    old = _log(day / "2024" / "04" / "29" / "a.json.gz", "2024-04-29T10:00:00Z")
    # delivered on the 1st, holding an event from just before midnight of the day before "since"
    late = _log(day / "2024" / "05" / "01" / "b.json.gz", "2024-05-01T23:59:00Z")
    new = _log(day / "2024" / "05" / "02" / "c.json.gz", "2024-05-02T10:00:00Z")
    loose = _log(tmp_path / "elsewhere" / "d.json.gz", "2024-04-01T00:00:00Z")
    pruned = hunt.prune(hunt.discover([tmp_path]), since="2024-05-02T00:00:00Z")
    assert set(pruned.log_files) == {late.resolve(), new.resolve(), loose.resolve()}
    assert old.resolve() not in pruned.log_files


def test_a_record_with_a_misshapen_nested_field_does_not_fail_the_hunt(tmp_path: Path) -> None:
    """Some exported records carry userIdentity or a resource as a string: the others are still read."""
    records = [
        {"eventTime": "2024-05-01T00:00:00Z", "eventName": "A", "eventSource": "s3.amazonaws.com", "eventID": "a",
         "userIdentity": "{'arn': 'x'}", "resources": ["x"]},
        {"eventTime": "2024-05-01T00:00:01Z", "eventName": "B", "eventSource": "s3.amazonaws.com", "eventID": "b",
         "userIdentity": {"type": "Root", "arn": "arn:aws:iam::1:root"}, "readOnly": True},
    ]  # fmt: skip
    f = tmp_path / "x.json.gz"
    f.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    result = hunt.run_sql(
        "SELECT eventid, useridentity.arn, readonly FROM cloudtrail ORDER BY eventid", hunt.discover([f])
    )
    assert result.rows == (("a", None, None), ("b", "arn:aws:iam::1:root", "true"))
