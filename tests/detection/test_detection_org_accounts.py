"""The engine may read the organization's account list (organization mode only), and nothing more of Organizations."""

from __future__ import annotations

from typing import Any

import pytest
from detection_helpers import resources_of

STACK = "TrailguardDetection"


def _engine_statements(tpl: dict[str, Any]) -> list[dict[str, Any]]:
    roles = resources_of(tpl, "AWS::IAM::Role")
    (rid,) = [k for k, v in roles.items() if v["Properties"].get("RoleName") == "trailguard-engine"]
    out: list[dict[str, Any]] = []
    for pol in resources_of(tpl, "AWS::IAM::Policy").values():
        if {"Ref": rid} in pol["Properties"]["Roles"]:
            out.extend(pol["Properties"]["PolicyDocument"]["Statement"])
    return out


def _org_actions(statements: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    out = []
    for st in statements:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        out += [(a, st["Resource"]) for a in actions if a.startswith("organizations:")]
    return out


@pytest.mark.parametrize(
    ("mode", "expected"), [("organization", [("organizations:ListAccounts", "*")]), ("standalone", [])]
)
def test_engine_reads_only_the_account_list_in_an_organization(
    mode: str, expected: list[tuple[str, str]], request: pytest.FixtureRequest
) -> None:
    synth = request.getfixturevalue(mode)
    assert _org_actions(_engine_statements(synth.templates[STACK])) == expected
