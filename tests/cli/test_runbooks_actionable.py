"""Runbooks people can follow (issue 17): containment, escalation, real query names, no internal names."""

from __future__ import annotations

import json
import re
import shlex

import pytest
from trailguard_engine.catalog import load_catalog
from trailguard_engine.model import Rule
from typer.testing import CliRunner

from trailguard import runbooks
from trailguard.cli import _load_commands, app
from trailguard.sqlcatalog import load_queries

_load_commands()
GENERATED = runbooks.generate()
RULES = {r.id: r for r in load_catalog()}


def page(rule_id: str) -> str:
    return GENERATED.files[f"{rule_id}.md"]


def section(text: str, heading: str) -> str:
    """The body of the ``## heading...`` section up to the next level-2 heading."""
    start = text.index(f"\n## {heading}")
    end = text.find("\n## ", start + 2)
    return text[start : end if end != -1 else None]


def hunt_list_names() -> set[str]:
    res = CliRunner().invoke(app, ["hunt", "--list"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    return set(re.findall(r"^│ ([a-z0-9-]+) ", res.stdout, flags=re.M))


def test_every_query_a_runbook_names_is_a_hunt_query() -> None:
    listed = hunt_list_names()
    assert "access-key-activity" in listed
    snake = {n.replace("-", "_") for n in listed}
    for name, text in GENERATED.files.items():
        for q in re.findall(r"trailguard hunt (\S+)", text):
            assert q in listed, (name, q)
        for q in re.findall(r"\*\* \(([a-z0-9-]+)\): ", text):
            assert q in listed, (name, q)
        # A decision function may share a query's name (`root_activity`): it is code, not a query reference.
        prose = re.sub(r"Decision function `[a-z0-9_]+`", "", text)
        wrong = {w for w in re.findall(r"[a-z0-9]+(?:_[a-z0-9]+)+", prose) if w in snake}
        assert not wrong, (name, wrong)
    assert "Check where the key has been used since (access-key-activity)." in page("root-access-key-created")
    assert "review root-activity." in page("root-console-login")


def test_no_internal_parameter_names_or_made_up_config_file() -> None:
    for name, text in GENERATED.files.items():
        assert "params." not in text, name
        assert "trailguard.yaml" not in text, name
    text = page("cloudtrail-stop-logging")
    assert "set `rule_modes` in your config file (the one you pass with `-c config=...`)" in text
    assert "in your config file (the one you pass with `-c config=...`)." in section(text, "Who triggers this rule")
    admin = page("iam-admin-policy-attached")
    assert "Checks the policy the event attached is still attached to the same user, group or role" in admin
    # A rule's own settings are named plainly and listed with their values and file.
    bulk = page("s3-objects-deleted-in-bulk")
    assert "### Tuning" in bulk
    assert "`lambdas/trailguard_engine/rules/s3-objects-deleted-in-bulk.json`" in bulk
    assert '- `threshold`: `{"by": "principal", "count": 50,' in bulk


def test_a_new_internal_name_is_reported() -> None:
    rule = RULES["cloudtrail-stop-logging"]
    text, problems = runbooks.user_text("Deletes params.bucket_arn (see access_key_activity).", rule, load_queries())
    assert text == "Deletes `bucket_arn` (see access-key-activity)."
    assert problems == [
        "cloudtrail-stop-logging: internal name params.bucket_arn in the rule text (say what it is instead)"
    ]


def test_every_runbook_has_containment_and_escalation() -> None:
    for rule in RULES.values():
        text = page(rule.id)
        assert "## Containment" in text and "## Escalation" in text, rule.id
        assert text.index("## Remediation") < text.index("## Containment") < text.index("## Escalation"), rule.id


def deny_policy(text: str) -> dict[str, object]:
    """The policy document of the role's revoke-sessions command, with $NOW filled in as the shell would."""
    line = next(ln for ln in text.splitlines() if "--policy-document" in ln)
    args = shlex.split(line.strip())
    doc = args[args.index("--policy-document") + 1]
    parsed: dict[str, object] = json.loads(doc.replace("$NOW", "2026-01-01T00:00:00Z"))
    return parsed


def test_role_sessions_are_revoked_the_way_aws_documents() -> None:
    text = section(page("cloudtrail-stop-logging"), "Containment")
    assert "aws iam put-role-policy --role-name" in text
    assert "--policy-name AWSRevokeOlderSessions" in text
    assert "NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)" in text
    assert deny_policy(text) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2026-01-01T00:00:00Z"}},
            }
        ],
    }
    assert "--policy-arn arn:aws:iam::aws:policy/AWSDenyAll" in text
    assert "service-linked role" in text


def test_iam_users_lose_keys_and_console_password() -> None:
    text = section(page("iam-user-console-login-without-mfa"), "Containment")
    assert "aws iam update-access-key --user-name" in text and "--status Inactive" in text
    assert "aws iam delete-login-profile --user-name" in text
    assert "aws iam attach-user-policy --user-name" in text and "AWSDenyAll" in text
    # Worded for the rule's principal types: an IAM-user-only rule gets no role or root steps.
    assert "put-role-policy" not in text and "### The root user" not in text


@pytest.mark.parametrize(
    ("rule_id", "present", "absent"),
    [
        ("root-console-login", "### The root user", "delete-login-profile"),
        ("s3-anonymous-access-first-seen", "aws s3api put-public-access-block", "put-role-policy"),
        ("ec2-instance-identity-credentials-used", "aws ec2 modify-instance-attribute", "put-role-policy"),
        ("signin-console-login-federated-user", "GetFederationToken: the part after user/", "put-role-policy"),
    ],
)
def test_containment_follows_the_principal_type(rule_id: str, present: str, absent: str) -> None:
    text = section(page(rule_id), "Containment")
    assert present in text
    assert absent not in text


def test_rules_any_principal_can_trigger_cover_each_type() -> None:
    text = section(page("cloudtrail-stop-logging"), "Containment")
    for heading in ("### A role session", "### An IAM user", "### The root user"):
        assert heading in text


def first_rule(severity: str) -> Rule:
    return next(r for r in RULES.values() if r.severity == severity)


@pytest.mark.parametrize("severity", ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"])
def test_escalation_depends_on_severity(severity: str) -> None:
    rule = first_rule(severity)
    text = section(page(rule.id), "Escalation")
    who, when = runbooks.ESCALATION[severity]
    assert f"This rule is **{severity}**: {who} Do it {when}." in text
    others = {s: w for s, (w, _) in runbooks.ESCALATION.items() if s != severity}
    assert not [s for s, w in others.items() if w in text]
    assert "trailguard hunt principal-activity --logs ./AWSLogs" in text


def test_escalation_timing_is_stated() -> None:
    assert "within 15 minutes" in section(page("root-access-key-created"), "Escalation")
    assert "page the security on-call now" not in section(page(first_rule("LOW").id), "Escalation")
    assert "the root user made the call" in section(page("cloudtrail-stop-logging"), "Escalation")
    assert "the root user made the call" not in section(page("iam-user-console-login-without-mfa"), "Escalation")


def test_root_key_remediation_says_it_deletes_the_key() -> None:
    text = section(page("root-access-key-created"), "Remediation")
    warning = "**This action deletes the root access key; it does not deactivate it** (despite its name)."
    assert warning in text
    assert text.index(warning) < text.index("Uses centralized root access")
    assert "cannot be restored" in text
    row = next(ln for ln in GENERATED.files["README.md"].splitlines() if "(root-access-key-created.md)" in ln)
    assert "`deactivate_root_access_key` (deletes the key)" in row
