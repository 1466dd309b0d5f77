"""Config ``callers``: IaC principals pinned to accounts and per-rule caller-class modes, into the engine."""

from __future__ import annotations

from typing import Any

import pytest
from trailguard_engine.runtime_config import RuntimeConfig

from trailguard.config import parse_config
from trailguard.exceptions import ConfigError

CFN = "arn:aws:iam::111122223333:role/cfn-exec"
TF = "arn:aws:sts::111122223333:assumed-role/terraform-ci/*"


def problems(doc: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(doc, "cfg.yaml")
    return "\n".join(info.value.problems)


def test_callers_default_to_nothing_configured() -> None:
    doc = parse_config({}, "cfg.yaml").runtime_document()
    assert doc["callers"] == {"iac_principals": [], "modes": {}}
    cfg = RuntimeConfig.from_document(doc)
    assert cfg.iac_principal_patterns == () and cfg.caller_modes == {}


def test_callers_round_trip_into_the_engine() -> None:
    conf = parse_config(
        {
            "callers": {
                "iac_principals": [CFN, TF],
                "modes": {"*": {"iac": "notice"}, "iam-admin-policy-attached": {"identity-center": "alert"}},
            }
        },
        "cfg.yaml",
    )
    cfg = RuntimeConfig.from_document(conf.runtime_document())
    assert cfg.iac_principal_patterns == (CFN, TF)
    assert cfg.caller_modes == {"*": {"iac": "notice"}, "iam-admin-policy-attached": {"identity-center": "alert"}}


@pytest.mark.parametrize(
    ("callers", "message"),
    [
        ({"iac_principals": ["arn:aws:iam::*:role/cfn-exec"]}, "must be literal"),
        ({"iac_principals": ["arn:aws:iam::111122223333:role/*"]}, "wildcards only in the name"),
        ({"iac_principals": ["cfn-exec"]}, "12-digit account ID"),
        ({"modes": {"no-such-rule": {"iac": "alert"}}}, "'no-such-rule' is not a catalog rule id"),
        ({"modes": {"*": {"robot": "alert"}}}, "callers.modes.*.robot"),
        ({"modes": {"*": {"iac": "off"}}}, "callers.modes.*.iac"),
        ({"modes": {"*": {"trailguard": "alert"}}}, "always 'notice'"),
        ({"iac_principal": [CFN]}, "callers.iac_principal"),
    ],
)
def test_bad_callers_get_a_clear_message(callers: dict[str, Any], message: str) -> None:
    assert message in problems({"callers": callers})
