"""Rows back to records: the DuckDB round trip keeps every field the Glue table keeps, and Athena's strings too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlglot

from trailguard import hunt
from trailguard.retro.rows import columns, record_from_row, select_list
from trailguard.sqlcatalog import CLOUDTRAIL_COLUMNS

FULL: dict[str, Any] = {
    "eventVersion": "1.09",
    "userIdentity": {
        "type": "AssumedRole",
        "principalId": "AROA:s",
        "arn": "arn:aws:sts::111122223333:assumed-role/Admin/s",
        "accountId": "111122223333",
        "accessKeyId": "ASIA",
        "invokedBy": "cloudformation.amazonaws.com",
        "userName": "u",
        "onBehalfOf": {"userId": "uid", "identityStoreArn": "arn:aws:identitystore::1:identitystore/d"},
        "sessionContext": {
            "attributes": {"mfaAuthenticated": "false", "creationDate": "2024-05-01T09:00:00Z"},
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROA",
                "arn": "arn:aws:iam::1:role/Admin",
                "accountId": "111122223333",
                "userName": "Admin",
            },
            "sourceIdentity": "alice",
            "ec2RoleDelivery": "2.0",
        },
    },
    "eventTime": "2024-05-01T10:00:00Z",
    "eventSource": "s3.amazonaws.com",
    "eventName": "PutBucketAcl",
    "awsRegion": "eu-west-1",
    "sourceIPAddress": "192.0.2.1",
    "userAgent": "aws-cli/2 'quoted' \u00e9",
    "errorCode": "AccessDenied",
    "errorMessage": "no\nway",
    "requestParameters": {
        "bucketName": "b",
        "x-amz-acl": ["public-read"],
        "n": 1.5,
        "z": None,
        "t": True,
        "nested": {"items": [{"k": "\u212a"}, []]},
    },
    "responseElements": {"ok": False},
    "additionalEventData": {"SignatureVersion": "SigV4", "bytesTransferredIn": 0},
    "requestID": "req",
    "eventID": "ev-1",
    "resources": [{"ARN": "arn:aws:s3:::b", "accountId": "111122223333", "type": "AWS::S3::Bucket"}, {"ARN": "x"}],
    "eventType": "AwsApiCall",
    "apiVersion": "2006-03-01",
    "readOnly": False,
    "recipientAccountId": "111122223333",
    "serviceEventDetails": {"a": [1, 2]},
    "sharedEventID": "shared",
    "vpcEndpointId": "vpce-1",
    "eventCategory": "Management",
    "sessionCredentialFromConsole": "true",
    "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": "h"},
}
MINIMAL: dict[str, Any] = {
    "eventTime": "2024-05-02T00:00:00Z",
    "eventSource": "sts.amazonaws.com",
    "eventName": "GetCallerIdentity",
    "eventID": "ev-2",
    "readOnly": True,
}


def _rows(records: list[dict[str, Any]], where: Path, kind: str = "jsonl") -> list[dict[str, Any]]:
    """Rows of the view over JSON Lines records or over a CloudTrail log file (``{"Records": [...]}``)."""
    if kind == "jsonl":
        path = where / "r.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    else:
        path = where / "AWSLogs" / "111122223333" / "CloudTrail" / "eu-west-1" / "2024" / "05" / "01" / "f.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(orjson.dumps({"Records": records}))
    con = hunt.connect(hunt.discover([path]))
    rows = con.execute(f"SELECT {select_list('duckdb')} FROM cloudtrail ORDER BY eventid").fetchall()
    con.close()
    return [dict(zip(columns(), row, strict=True)) for row in rows]


@pytest.mark.parametrize("kind", ["jsonl", "log"])
def test_round_trip_keeps_every_column_field(kind: str, tmp_path: Path) -> None:
    full, minimal = _rows([FULL, MINIMAL], tmp_path, kind)
    assert record_from_row(full) == FULL
    assert record_from_row(minimal) == MINIMAL
    assert (full["account"], full["region"], full["date"]) == ("111122223333", "eu-west-1", "2024/05/01")


def test_every_column_is_exercised() -> None:
    assert {key for _, _, key in CLOUDTRAIL_COLUMNS} == set(FULL)


@pytest.mark.parametrize("kind", ["jsonl", "log"])
def test_what_the_table_drops(kind: str, tmp_path: Path) -> None:
    dropped = {
        **MINIMAL,
        "managementEvent": True,
        "errorCode": None,
        "userIdentity": {"type": "IAMUser", "webIdFederationData": {}, "userName": None},
    }
    (row,) = _rows([dropped], tmp_path, kind)
    assert record_from_row(row) == {**MINIMAL, "userIdentity": {"type": "IAMUser"}}


def test_athena_strings_and_unnamed_rows() -> None:
    """Athena/Lake return text; an engine that renders a row as a JSON array gives members in schema order."""
    row = {
        "eventname": "X",
        "readonly": "true",
        "useridentity": '["IAMUser", "AIDA", "arn:aws:iam::1:user/u", null, null, null, "u", null, null]',
        "resources": '[{"arn": "a", "accountid": null, "type": "T"}]',
        "requestparameters": '{"a": [1]}',
        "tlsdetails": None,
        "errorcode": None,
        "account": "1",
    }
    assert record_from_row(row) == {
        "eventName": "X",
        "readOnly": True,
        "userIdentity": {"type": "IAMUser", "principalId": "AIDA", "arn": "arn:aws:iam::1:user/u", "userName": "u"},
        "resources": [{"ARN": "a", "type": "T"}],
        "requestParameters": {"a": [1]},
    }
    assert record_from_row({"readonly": "maybe", "responseelements": "not json"}) == {
        "readOnly": "maybe",
        "responseElements": "not json",
    }


def test_trino_select_list_parses() -> None:
    tree = sqlglot.parse_one(f"SELECT {select_list('trino')} FROM cloudtrail", read="trino")
    assert [e.alias_or_name for e in tree.expressions] == list(columns())
