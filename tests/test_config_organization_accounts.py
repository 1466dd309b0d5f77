"""Config ``organization.accounts``: the organization's accounts for replay (the engine adds ListAccounts)."""

from __future__ import annotations

from typing import Any

import pytest
from trailguard_engine.policy import known_accounts
from trailguard_engine.runtime_config import RuntimeConfig

from trailguard.config import parse_config
from trailguard.exceptions import ConfigError

ORG: dict[str, Any] = {
    "org_id": "o-a1b2c3d4e5",
    "management_account_id": "111111111111",
    "log_archive_account_id": "222222222222",
    "security_tooling_account_id": "333333333333",
    "target_ous": ["r-a1b2"],
}


def _runtime(organization: dict[str, Any]) -> RuntimeConfig:
    doc = parse_config({"mode": "organization", "organization": organization}, "cfg.yaml").runtime_document()
    return RuntimeConfig.from_document(doc)


def test_not_listed_means_unknown() -> None:
    assert _runtime(ORG).organization_accounts is None
    assert parse_config({}, "cfg.yaml").runtime_document()["organization_accounts"] is None


def test_listed_accounts_and_the_named_ones_reach_replay() -> None:
    cfg = _runtime({**ORG, "accounts": ["444444444444"]})
    assert cfg.organization_accounts == {"111111111111", "222222222222", "333333333333", "444444444444"}
    assert "444444444444" in known_accounts(cfg)


@pytest.mark.parametrize("bad", [["4444"], ["４４４４４４４４４４４４"], "444444444444", [444444444444]])
def test_bad_account_ids_are_refused(bad: Any) -> None:
    with pytest.raises(ConfigError):
        parse_config({"mode": "organization", "organization": {**ORG, "accounts": bad}}, "cfg.yaml")
