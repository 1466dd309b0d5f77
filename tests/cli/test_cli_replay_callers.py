"""``trailguard replay`` shows who made each risky event: the caller class (JSON lines and the summary table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from trailguard.cli import _load_commands, app

_load_commands()
runner = CliRunner()
ACCOUNT = "111122223333"


def sg_open(identity: dict[str, Any], user_agent: str, event_id: str) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "eventName": "AuthorizeSecurityGroupIngress",
        "eventSource": "ec2.amazonaws.com",
        "eventType": "AwsApiCall",
        "eventTime": "2026-12-01T10:05:00Z",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": user_agent,
        "userIdentity": identity,
        "eventID": event_id,
        "requestParameters": {
            "groupId": "sg-0123456789abcdef0",
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "tcp",
                        "fromPort": 22,
                        "toPort": 22,
                        "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                    }
                ]
            },
        },
    }


def session(role: str, name: str, path: str = "/", invoked_by: str | None = None) -> dict[str, Any]:
    ident: dict[str, Any] = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{name}",
        "accountId": ACCOUNT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role{path}{role}"}},
    }
    if invoked_by:
        ident["invokedBy"] = invoked_by
    return ident


RECORDS = [
    sg_open(session("Admin", "mallory"), "aws-cli/2.15.30", "a0000000-0000-4000-8000-000000000001"),
    sg_open(
        session("cfn-exec", "AWSCloudFormation", invoked_by="cloudformation.amazonaws.com"),
        "cloudformation.amazonaws.com",
        "a0000000-0000-4000-8000-000000000002",
    ),
    sg_open(
        session(
            "AWSServiceRoleForEMRCleanup",
            "emr",
            path="/aws-service-role/elasticmapreduce.amazonaws.com/",
            invoked_by="elasticmapreduce.amazonaws.com",
        ),
        "elasticmapreduce.amazonaws.com",
        "a0000000-0000-4000-8000-000000000003",
    ),
]


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    return path


def test_json_lines_name_the_caller_class_of_each_finding(tmp_path: Path) -> None:
    res = runner.invoke(app, ["replay", "--json", str(_write(tmp_path))])
    assert res.exit_code == 0, res.output
    out = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    got = [(o["findings"][0]["caller"], o["findings"][0]["decision"]) for o in out]
    assert got == [("unknown", "remediate"), ("iac", "alert"), ("service", "skip")]
    assert out[2]["findings"][0]["silenced_by"] == "caller:service"


def test_the_summary_counts_risky_findings_by_caller_class(tmp_path: Path) -> None:
    res = runner.invoke(app, ["replay", str(_write(tmp_path))], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "risky findings by caller class" in res.stdout
    rows = {}
    for line in res.stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells and cells[0] in ("iac", "service", "unknown"):
            rows[cells[0]] = cells[1:]
    assert rows == {"iac": ["0", "1", "0"], "service": ["0", "0", "1"], "unknown": ["1", "0", "0"]}
