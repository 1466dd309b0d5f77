"""The named-query catalog: every file parses as Trino SQL and runs on DuckDB with the expected rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlglot
from cloudtrail_tree import ALICE, CI_ROLE, JSONL_EVENTS, MALLORY, MEMBER, STANDALONE, events
from sqlglot import exp

from trailguard import hunt
from trailguard.sqlcatalog import (
    ParameterError,
    QueryError,
    UnknownQueryError,
    get_query,
    load_queries,
    parse_query,
)

QUERIES = load_queries()
ATHENA_TABLE = "trailguard.cloudtrail"

#: Functions that exist under these names in Trino (Athena engine 3) and in DuckDB
#: (directly, or through the two macros in trailguard.hunt.COMPAT_MACROS).
PORTABLE_FUNCTIONS = {
    "JSONExtractScalar", "Lower", "RegexpLike", "CountIf", "StrPosition", "Substring", "Replace", "Cast",
    "Coalesce", "AnyValue", "Count", "Min", "Max", "Sum", "Case", "If",
}  # fmt: skip

REQUIRED_TOPICS = {
    "logging-tampering", "root-activity", "console-logins-without-mfa", "principal-activity",
    "access-key-activity", "access-denied-by-principal", "public-exposure-changes", "iam-privilege-changes",
    "kms-key-deletion", "unusual-user-agents", "new-access-keys", "detective-controls-disabled",
}  # fmt: skip


@pytest.fixture(scope="module")
def logs(log_tree: Path) -> hunt.LogSet:
    return hunt.discover([log_tree])


def run(logs: hunt.LogSet, name: str, **params: str) -> list[dict[str, Any]]:
    return hunt.run_query(QUERIES[name], params, logs).records()


def ids(rows: list[dict[str, Any]]) -> set[str]:
    return {r["eventid"] for r in rows}


def test_catalog_covers_the_runbook_topics() -> None:
    assert len(QUERIES) >= 12
    assert set(QUERIES) >= REQUIRED_TOPICS
    for q in QUERIES.values():
        assert q.title
        assert len(q.description) > 20
        assert {"start", "end"} <= {p.name for p in q.params}, f"{q.name}: every query takes a time window"


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_parses_as_trino_and_reads_only_the_table(name: str) -> None:
    q = QUERIES[name]
    sql = q.athena_sql(ATHENA_TABLE)
    statements = sqlglot.parse(sql, read="trino")
    assert len(statements) == 1
    assert isinstance(statements[0], exp.Select)
    tree = statements[0]
    tables = {f"{t.db}.{t.name}" if t.db else t.name for t in tree.find_all(exp.Table)}
    assert tables == {ATHENA_TABLE}
    assert len(list(tree.find_all(exp.Placeholder))) == len(q.placeholders())
    funcs = {type(f).__name__ for f in tree.find_all(exp.Func) if not isinstance(f, exp.Connector)} - {"Anonymous"}
    anonymous = {f.name.lower() for f in tree.find_all(exp.Anonymous)}
    assert funcs <= PORTABLE_FUNCTIONS, f"{name}: functions outside the portable set: {funcs - PORTABLE_FUNCTIONS}"
    assert not anonymous, f"{name}: unknown functions {anonymous}"
    # the DuckDB form parses too, with named parameters instead of '?'
    sqlglot.parse_one(q.duckdb_sql(), read="duckdb")


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_runs_on_duckdb(name: str, logs: hunt.LogSet) -> None:
    q = QUERIES[name]
    required = {p.name: "nobody" for p in q.params if p.default is None}
    result = hunt.run_query(q, required, logs)
    assert result.columns, name


def test_athena_description_lists_execution_parameters_in_order() -> None:
    q = QUERIES["principal-activity"]
    assert q.placeholders() == ["start", "start", "end", "principal"]
    assert "start, start, end, principal" in q.athena_description()


# --------------------------------------------------------------------------- #
# Expected rows on the generated tree
# --------------------------------------------------------------------------- #


def test_logging_tampering(logs: hunt.LogSet) -> None:
    assert ids(run(logs, "logging-tampering")) == {"ev-stop-logging", "ev-update-trail"}
    assert ids(run(logs, "logging-tampering", start="2024-05-02")) == {"ev-update-trail"}
    assert ids(run(logs, "logging-tampering", end="2024-05-01T10:00:00Z")) == set()


def test_root_activity_excludes_service_events(logs: hunt.LogSet) -> None:
    assert ids(run(logs, "root-activity")) == {"ev-root-login-nomfa", "ev-root-list-buckets"}


def test_console_logins_without_mfa_sso_friendly(logs: hunt.LogSet) -> None:
    assert ids(run(logs, "console-logins-without-mfa")) == {"ev-root-login-nomfa", "ev-carol-login-nomfa"}


def test_console_login_failures(logs: hunt.LogSet) -> None:
    rows = run(logs, "console-login-failures")
    assert [(r["user_name"], r["sourceipaddress"], r["failures"]) for r in rows] == [("eve", "203.0.113.99", 3)]
    assert run(logs, "console-login-failures", min_failures="4") == []


def _expected(identity: dict[str, Any], start: str, end: str) -> set[str]:
    return {
        r["eventID"]
        for r in [*events(), *JSONL_EVENTS]
        if r["userIdentity"] is identity and start <= r["eventTime"] < end
    }


def test_principal_activity_by_arn_name_and_role(logs: hunt.LogSet) -> None:
    window = {"start": "2024-05-01", "end": "2024-05-02"}
    expected = _expected(ALICE, "2024-05-01", "2024-05-02")
    assert "ev-alice-early" not in expected
    assert "ev-jsonl-alice" in expected
    assert len(expected) >= 8
    assert ids(run(logs, "principal-activity", principal=ALICE["arn"], **window)) == expected
    assert ids(run(logs, "principal-activity", principal="alice", **window)) == expected
    by_role = ids(run(logs, "principal-activity", principal="arn:aws:iam::111111111111:role/ci-deployer"))
    assert by_role == _expected(CI_ROLE, "0", "9")


def test_access_key_activity(logs: hunt.LogSet) -> None:
    rows = run(logs, "access-key-activity", access_key_id="AKIAMALLORYEXAMPLE01")
    assert ids(rows) == _expected(MALLORY, "0", "9")
    assert [r["eventtime"] for r in rows] == sorted(r["eventtime"] for r in rows)


def test_access_denied_storm(logs: hunt.LogSet) -> None:
    rows = run(logs, "access-denied-by-principal")
    assert len(rows) == 1
    row = rows[0]
    assert (row["principal"], row["denied_calls"], row["distinct_actions"], row["source_ips"]) == (
        MALLORY["arn"], 13, 5, 2,
    )  # fmt: skip
    low = run(logs, "access-denied-by-principal", min_denied="1")
    assert [r["principal"] for r in low] == [MALLORY["arn"], "arn:aws:iam::111111111111:user/bob"]


def test_public_exposure_changes_only_successful(logs: hunt.LogSet) -> None:
    rows = run(logs, "public-exposure-changes")
    assert ids(rows) == {"ev-put-bucket-acl", "ev-snapshot-public", "ev-sg-open-ssh", "ev-sg-private"}
    assert {r["eventid"]: r["resource"] for r in rows}["ev-snapshot-public"] == "snap-0123456789abcdef0"


def test_security_group_open_to_world(logs: hunt.LogSet) -> None:
    assert ids(run(logs, "security-group-open-to-world")) == {"ev-sg-open-ssh"}


def test_iam_privilege_changes(logs: hunt.LogSet) -> None:
    rows = run(logs, "iam-privilege-changes")
    assert [(r["eventid"], r["target_principal"], r["policy"]) for r in rows] == [
        ("ev-attach-admin", "bob", "arn:aws:iam::aws:policy/AdministratorAccess")
    ]


def test_kms_key_deletion(logs: hunt.LogSet) -> None:
    rows = run(logs, "kms-key-deletion")
    assert [(r["eventid"], r["pending_window_days"]) for r in rows] == [("ev-schedule-key-deletion", "7")]


def test_unusual_user_agents(logs: hunt.LogSet) -> None:
    rows = run(logs, "unusual-user-agents")
    assert {(r["reason"], r["useragent"].split("/")[0], r["principal"]) for r in rows} == {
        ("offensive-tooling", "aws-cli", MALLORY["arn"]),
        ("non-sdk-client", "python-requests", MALLORY["arn"]),
    }
    assert rows[0]["reason"] == "offensive-tooling"


def test_new_access_keys(logs: hunt.LogSet) -> None:
    rows = run(logs, "new-access-keys")
    assert [(r["principal"], r["key_owner"], r["access_key_id"]) for r in rows] == [
        (ALICE["arn"], "bob", "AKIANEWKEYFORBOB0001")
    ]


def test_detective_controls_disabled(logs: hunt.LogSet) -> None:
    assert ids(run(logs, "detective-controls-disabled")) == {
        "ev-gd-delete", "ev-gd-disable", "ev-config-stop", "ev-securityhub-off",
    }  # fmt: skip


def test_mfa_and_organizations(logs: hunt.LogSet) -> None:
    assert ids(run(logs, "mfa-device-changes")) == {"ev-deactivate-mfa"}
    rows = run(logs, "organizations-changes")
    assert [(r["eventid"], r["recipientaccountid"]) for r in rows] == [("ev-member-leave-org", MEMBER)]


def test_source_ip_and_summary(logs: hunt.LogSet) -> None:
    rows = run(logs, "source-ip-activity", source_ip="203.0.113.66")
    assert {r["principal"] for r in rows} == {MALLORY["arn"]}
    assert sum(r["calls"] for r in rows) == 12
    assert sum(r["failed_calls"] for r in rows) == 12
    summary = {r["principal"]: r for r in run(logs, "principal-summary")}
    assert summary[MALLORY["arn"]]["calls"] == len(_expected(MALLORY, "0", "9"))


# --------------------------------------------------------------------------- #
# View, parameters, file format
# --------------------------------------------------------------------------- #


def test_view_partitions_from_both_path_layouts(logs: hunt.LogSet) -> None:
    rows = hunt.run_sql('SELECT DISTINCT account, region, "date" FROM cloudtrail ORDER BY 1, 2, 3', logs).rows
    assert rows == (
        (STANDALONE, "us-east-1", "2024/04/30"),
        (STANDALONE, "us-east-1", "2024/05/01"),
        (STANDALONE, "us-east-1", "2024/05/02"),
        (MEMBER, "eu-west-1", "2024/05/02"),
        (MEMBER, "us-east-1", "2024/05/02"),
    )
    total = hunt.run_sql("SELECT count(*) FROM cloudtrail", logs).rows[0][0]
    assert total == len(events()) + len(JSONL_EVENTS)
    assert not any("Digest" in p.as_posix() for p in logs.log_files)


def test_view_column_types_match_glue(logs: hunt.LogSet) -> None:
    row = hunt.run_sql(
        "SELECT readonly, requestparameters, useridentity.sessioncontext.sessionissuer.username, "
        "typeof(requestparameters), resources FROM cloudtrail WHERE eventid = 'ev-put-bucket-acl'",
        logs,
    ).rows[0]
    assert row[0] == "false"
    assert row[1].startswith("{")
    assert '"bucketName":"data-bucket"' in row[1]
    assert row[2] == "ci-deployer"
    assert row[3] == "VARCHAR"


def test_parameters_are_bound_not_pasted(logs: hunt.LogSet) -> None:
    q = QUERIES["principal-activity"]
    assert "{{" not in q.duckdb_sql()
    assert "$principal" in q.duckdb_sql()
    for evil in ("x' OR '1'='1", "alice' --", "'; DROP TABLE cloudtrail; --"):
        assert run(logs, "principal-activity", principal=evil) == []
    assert run(logs, "principal-activity", principal="alice")  # the view still exists


def test_parameter_errors() -> None:
    q = QUERIES["principal-activity"]
    with pytest.raises(ParameterError, match="needs --param principal"):
        q.bind({})
    with pytest.raises(ParameterError, match="no parameter 'princpal'"):
        q.bind({"princpal": "x", "principal": "y"})
    with pytest.raises(ParameterError, match="ISO-8601"):
        q.bind({"principal": "x", "start": "yesterday"})
    with pytest.raises(ParameterError, match="integer"):
        QUERIES["access-denied-by-principal"].bind({"min_denied": "10 OR 1=1"})
    with pytest.raises(UnknownQueryError, match="did you mean: root-activity"):
        get_query("root")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- title: t\n-- description: d\nSELECT 1", "'-- name: ...' is missing"),
        ("-- name: abc\n-- title: t\n-- description: d\nSELECT {{x}}", "differ from those used"),
        ("-- name: abc\n-- title: t\n-- description: d\n-- param x blob: text\nSELECT {{x}}", "type 'blob'"),
        ("-- name: abc\n-- title: t\n-- description: d\nSELECT 1; SELECT 2", "one statement"),
        ("-- name: abc\n-- title: t\n-- description: d\n", "no SQL"),
        ("-- name: abc\n-- title: t\n-- description: d\n-- param s timestamp = soon: x\nSELECT {{s}}", "default"),
    ],
)
def test_malformed_query_files(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(text, "x.sql")


def test_athena_rendering_qualifies_table() -> None:
    sql = QUERIES["root-activity"].athena_sql('"trailguard"."cloudtrail"')
    assert 'FROM "trailguard"."cloudtrail"' in sql
    assert "{{" not in sql
