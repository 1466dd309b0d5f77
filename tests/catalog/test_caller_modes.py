"""Meta-tests of the rules' ``caller_modes``: every rule states every caller class, with sensible floors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from catalog_helpers import RULE_FILES
from pydantic import ValidationError
from trailguard_engine.caller import CALLER_KINDS, CALLER_MODES, MODE_RANK
from trailguard_engine.catalog import load_catalog, parse_rule
from trailguard_engine.exceptions import CatalogError

from trailguard.catalog_schema import RuleModel

RULES = load_catalog()
ROOT_RULES = {"root-access-key-created", "root-activity", "root-console-login"}
#: Destroying or blinding the audit and security tooling: an IaC or service caller is alerted, never only noticed.
TAMPER_PREFIXES = (
    "trailguard-", "cloudtrail-", "organizations-", "guardduty-", "config-", "securityhub-", "macie-",
    "inspector-", "access-analyzer-", "eventbridge-rule-", "vpc-flow-logs-", "security-log-group-",
    "route53-resolver-query-logging-", "waf-logging-", "kms-key-",
)  # fmt: skip


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.stem)
def test_every_rule_file_states_every_caller_class(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    modes = doc["caller_modes"]
    assert list(modes) == list(CALLER_KINDS), "caller_modes lists every kind, in CALLER_KINDS order"
    assert set(modes.values()) <= set(CALLER_MODES)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_caller_modes_floors(rule: Any) -> None:
    m = rule.caller_modes
    assert m["trailguard"] == "notice", "trailguard's own calls are the loop guard"
    assert m["human"] == "remediate" and m["unknown"] == "remediate", "people and unknown callers get the rule mode"
    if rule.id in ROOT_RULES:
        assert all(m[k] == "remediate" for k in CALLER_KINDS if k != "trailguard"), "root is always a person"
    else:
        assert MODE_RANK[m["iac"]] <= MODE_RANK["alert"], "IaC is never remediated against by default (it flaps)"
    if rule.id.startswith(TAMPER_PREFIXES):
        for kind in ("iac", "service", "identity-center"):
            assert m[kind] == "alert", f"{kind} tampering with audit or security tooling is alerted"


def test_service_notice_is_reserved_for_changes_services_make_routinely() -> None:
    quiet = sorted(r.id for r in RULES if r.caller_modes["service"] == "notice")
    # Credential reads in bursts (issue 14): AWS services read secrets, parameters, user data and Windows
    # passwords for their own work (ECS and CloudFormation resolve secrets, Config and Systems Manager
    # inventory read instance attributes, Fleet Manager reads passwords). The service class is unforgeable
    # (an AWSService identity or a service-linked role session), so those reads are notices.
    assert quiet == [
        "ec2-password-data-read",
        "ec2-security-group-ingress-public",
        "ec2-userdata-bulk-read",
        "lambda-code-changed-by-human",
        "secretsmanager-secrets-bulk-read",
        "ssm-parameters-decrypted-bulk-read",
    ]


def test_identity_center_notice_is_reserved_for_what_it_provisions() -> None:
    quiet = sorted(r.id for r in RULES if r.caller_modes["identity-center"] == "notice")
    assert quiet == [
        "iam-admin-policy-attached",
        "iam-identity-provider-created",
        "iam-inline-policy-admin",
        "iam-role-trust-opened",
    ]


def _doc() -> dict[str, Any]:
    return json.loads(RULE_FILES[0].read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("mutate", "loader_message", "schema_message"),
    [
        (lambda d: d.pop("caller_modes"), "caller_modes: expected dict", "caller_modes"),
        (lambda d: d["caller_modes"].pop("iac"), "missing ['iac']", "iac"),
        (lambda d: d["caller_modes"].update(robot="alert"), "unknown ['robot']", "robot"),
        (lambda d: d["caller_modes"].update(service="off"), "caller_modes.service", "service"),
        (lambda d: d["caller_modes"].update(trailguard="alert"), "must be 'notice'", "trailguard"),
    ],
)
def test_loader_and_schema_reject_bad_caller_modes(mutate: Any, loader_message: str, schema_message: str) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(CatalogError) as info:
        parse_rule(doc, "x.json")
    assert loader_message in str(info.value)
    with pytest.raises(ValidationError, match=schema_message):
        RuleModel.model_validate(doc)
