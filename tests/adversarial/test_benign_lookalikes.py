"""An attacker with admin in a member account replays the benign set's shapes from their own principals.

The benign precision set (tests/precision/benign) is what services, Identity Center and IaC really send,
and trailguard lets it through. Everything in it that an account admin can imitate must buy them nothing
more than an alert:

* a role *named* like a service-linked or Identity Center role, created at an ordinary path, with the
  service's user agent and source "IP" strings is not a service; with ``invokedBy`` as well (a service acting
  through an ordinary role, or a forged record) it is at most a service that cannot silence. Either way, what
  the real record got as a notice, the look-alike gets as an alert or a remediation;
* CloudFormation (their own stack) and IaC user agents are forgeable: even when the operator lowers the
  IaC class to ``notice`` for every rule, such callers that are not in ``callers.iac_principals`` still
  alert.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from trailguard_engine.caller import classify
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.runtime_config import RuntimeConfig

_PATH = Path(__file__).resolve().parents[1] / "precision" / "precision_helpers.py"
if "precision_helpers" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("precision_helpers", _PATH)
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["precision_helpers"] = _module
    _spec.loader.exec_module(_module)

import precision_helpers as ph  # noqa: E402

SCENARIOS = ph.load_scenarios()
IDS = ph.fake_ids(
    ph.placeholders([s.records for s in SCENARIOS])
    | ph.placeholders([s.setup for s in SCENARIOS])
    | ph.placeholders(ph.config_data())
)
TRUSTED = ("service", "identity-center")
ATTACKER_IP = "203.0.113.66"


def _records(kind: set[str]) -> list[Any]:
    return [
        pytest.param(ph.resolve(r, IDS), id=f"{s.id}[{i}]") for s, i, r in ph.records(SCENARIOS) if s.caller in kind
    ]


def _lookalike(record: dict[str, Any], *, keep_invoked_by: bool) -> dict[str, Any]:
    """The same call by a role of the same name at path ``/`` in the same account."""
    env = copy.deepcopy(record)
    ui = env["detail"]["userIdentity"]
    issuer = ui["sessionContext"]["sessionIssuer"]
    name = issuer["arn"].rsplit("/", 1)[-1]
    issuer["arn"] = f"arn:aws:iam::{ph.MEMBER}:role/{name}"
    if not keep_invoked_by:
        ui.pop("invokedBy", None)  # what CloudTrail really writes for a direct call
    env["detail"]["sourceIPAddress"] = ATTACKER_IP  # the user agent string is kept: it is forgeable
    return env


@pytest.mark.parametrize("keep_invoked_by", [False, True], ids=["direct-call", "forged-invokedBy"])
@pytest.mark.parametrize("record", _records({"service", "identity-center"}))
def test_a_role_named_like_a_service_gets_no_notice(record: dict[str, Any], keep_invoked_by: bool) -> None:
    ui = record["detail"]["userIdentity"]
    if ui.get("type") != "AssumedRole":
        pytest.skip("AWSService identities have no role to imitate")
    cfg = RuntimeConfig()
    fake = _lookalike(record, keep_invoked_by=keep_invoked_by)
    caller = classify(CloudTrailEvent(to_envelope(fake)), cfg)
    assert caller.kind != "trailguard", caller
    if keep_invoked_by:
        # invokedBy a service on an ordinary role may be called a service, but one that can never silence
        assert caller.kind not in TRUSTED or not caller.can_silence, caller
    else:
        assert caller.kind not in TRUSTED, caller
    ev = Evaluator(None, cfg)
    real = {f.rule: f for f in ev.evaluate(record).findings}
    for f in ev.evaluate(fake).findings:
        assert not (f.silenced_by or "").startswith("caller:"), f"{f.rule}: {f.reason}"
        was = real.get(f.rule)
        if was is not None and (was.silenced_by or "").startswith("caller:"):
            # what the real service got as a notice, the look-alike gets as an alert or a remediation
            assert f.decision in ("alert", "remediate"), f"{f.rule}: {f.decision} {f.reason}"


@pytest.mark.parametrize("record", _records({"iac"}))
def test_forgeable_iac_evidence_never_lowers_to_a_notice(record: dict[str, Any]) -> None:
    """``callers.modes: {"*": {iac: notice}}`` and no iac_principals: CloudFormation and user agents still alert."""
    doc = {"callers": {"iac_principals": [], "modes": {"*": {"iac": "notice"}}}}
    cfg = RuntimeConfig.from_document(doc)
    caller = classify(CloudTrailEvent(to_envelope(record)), cfg)
    assert caller.kind == "iac", caller
    assert not caller.can_silence, f"{caller.why} is forgeable evidence"
    baseline = {f.rule: f for f in Evaluator(None, RuntimeConfig()).evaluate(record).findings}
    for f in Evaluator(None, cfg).evaluate(record).findings:
        assert not (f.silenced_by or "").startswith("caller:"), f"{f.rule}: {f.reason}"
        if baseline[f.rule].decision != "skip":
            assert f.decision == "alert", f"{f.rule}: {f.decision} {f.reason}"
