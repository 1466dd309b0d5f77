"""Attacks on the identity-gap rules (decisions/identity_gaps.py): staying under the enumeration threshold,
hiding behind a caller class, hiding the request, or making the alert unbounded.

All are alert-only: nothing here can make trailguard act in any account. What an attacker can try is silence.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.runtime_config import RuntimeConfig

_HELPERS = Path(__file__).resolve().parents[1] / "engine_core" / "window_helpers.py"
if "window_helpers" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("window_helpers", _HELPERS)
    assert _spec is not None and _spec.loader is not None
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["window_helpers"] = _mod
    _spec.loader.exec_module(_mod)

from window_helpers import T0, Judge, iso  # noqa: E402

RULES = rules_by_id()
ACCOUNT = "111122223333"
PROBE = RULES["iam-principal-enumeration-via-trust-policy"]
S3B = "iam-s3-browser-identity-call"
COUNT = PROBE.params["threshold"]["count"]
WINDOW = PROBE.params["threshold"]["window_seconds"]
TERRAFORM = "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.68.0"


def probe(n: int, t: float, *, session: str = "scan", role: str = "ci-deployer", ok: bool = False) -> dict[str, Any]:
    """Refused (or, with ``ok``, accepted) UpdateAssumeRolePolicy number ``n`` by ``role``/``session`` at ``t``."""
    env = copy.deepcopy(PROBE.examples_positive[0])
    d = env["detail"]
    d["eventID"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"probe-{role}-{session}-{n}-{t}-{ok}"))
    d["eventTime"] = env["time"] = iso(t)
    ident = d["userIdentity"]
    ident["arn"] = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"
    ident["principalId"] = f"AROA3EXAMPLEROLE0009:{session}"
    ident["sessionContext"]["sessionIssuer"]["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{role}"
    ident["sessionContext"]["sessionIssuer"]["userName"] = role
    if ok:
        d.pop("errorCode", None)
        d.pop("errorMessage", None)
    return env


def test_a_scan_fires_once_and_one_probe_fewer_never() -> None:
    judge = Judge(clock=None)
    got = judge.decisions([probe(i, T0 + i) for i in range(3 * COUNT)], PROBE)
    assert got.index("alert") == COUNT - 1 and got.count("alert") == 1
    judge = Judge(clock=None)
    assert set(judge.decisions([probe(i, T0 + i) for i in range(COUNT - 1)], PROBE)) == {"skip"}


def test_spreading_probes_over_session_names_of_one_role_still_fires() -> None:
    judge = Judge(clock=None)
    got = judge.decisions([probe(i, T0 + i, session=f"s{i}") for i in range(COUNT)], PROBE)
    assert got[-1] == "alert"


def test_accepted_updates_between_probes_neither_count_nor_reset() -> None:
    judge = Judge(clock=None)
    events = []
    for i in range(COUNT):
        events += [probe(i, T0 + 2 * i), probe(i, T0 + 2 * i + 1, ok=True)]
    got = judge.decisions(events, PROBE)
    assert got.count("alert") == 1 and got[-2] == "alert"  # the last refused probe fires; successes never


def test_redelivered_probes_count_once() -> None:
    judge = Judge(clock=None)
    one = probe(0, T0)
    assert set(judge.decisions([copy.deepcopy(one) for _ in range(3 * COUNT)], PROBE)) == {"skip"}


def test_a_slow_scan_beyond_the_window_is_not_claimed() -> None:
    """The documented limit: probes spaced wider than window/count never add up (a slower scan is a
    scan of fewer principals per hour; the per-event finding is still recorded as a counted qualifier)."""
    judge = Judge(clock=None)
    spacing = 2 * WINDOW / COUNT
    assert set(judge.decisions([probe(i, T0 + i * spacing) for i in range(3 * COUNT)], PROBE)) == {"skip"}


@pytest.mark.parametrize("agent", [TERRAFORM, "aws-internal/3 aws-sdk-java/1.12", "console.amazonaws.com"])
def test_a_forged_caller_class_does_not_quiet_a_probe(agent: str) -> None:
    env = probe(0, T0)
    env["detail"]["userAgent"] = agent
    (f,) = Evaluator(RULES.values(), RuntimeConfig()).evaluate(env, only_rule=PROBE.id).findings
    assert f.decision == "alert"


def test_a_service_named_role_does_not_quiet_a_probe() -> None:
    env = probe(0, T0, role="AWSServiceRoleForSupport")
    (f,) = Evaluator(RULES.values(), RuntimeConfig()).evaluate(env, only_rule=PROBE.id).findings
    assert f.decision == "alert"


def test_a_huge_error_message_keeps_the_reason_bounded() -> None:
    env = probe(0, T0)
    env["detail"]["errorMessage"] = "Invalid principal in policy: " + "A" * 200_000
    (f,) = Evaluator(RULES.values(), RuntimeConfig()).evaluate(env, only_rule=PROBE.id).findings
    assert f.decision == "alert" and len(f.reason) < 1000


def _s3b() -> dict[str, Any]:
    return copy.deepcopy(RULES[S3B].examples_positive[0])


def test_s3_browser_hiding_the_policy_still_alerts_and_never_acts() -> None:
    env = _s3b()
    env["detail"]["requestParameters"] = {"reason": "requestParameters too large", "omitted": True}
    cfg = RuntimeConfig(rule_modes={S3B: "remediate"})
    (f,) = Evaluator(RULES.values(), cfg).evaluate(env, only_rule=S3B).findings
    assert f.decision == "alert" and f.action is None and "too large" in f.reason


@pytest.mark.parametrize(
    "request_", [None, {}, {"userName": ["x"]}, {"userName": 7}, {"policyDocument": "%%%{not json"}]
)
def test_s3_browser_with_malformed_requests_still_alerts(request_: Any) -> None:
    env = _s3b()
    env["detail"]["requestParameters"] = request_
    (f,) = Evaluator(RULES.values(), RuntimeConfig()).evaluate(env, only_rule=S3B).findings
    assert f.decision == "alert"


IDENTITY = "ec2-instance-identity-credentials-used"


def _identity(agent: str | None = None, arn: str | None = None) -> dict[str, Any]:
    env = copy.deepcopy(RULES[IDENTITY].examples_positive[0])
    if agent is not None:
        env["detail"]["userAgent"] = agent
    if arn is not None:
        env["detail"]["userIdentity"]["arn"] = arn
    return env


@pytest.mark.parametrize(
    "agent", [TERRAFORM, "console.amazonaws.com", "Mozilla/5.0 (X11)", "aws-internal/3", "amazon-ssm-agent/3.3"]
)
def test_a_forged_user_agent_does_not_quiet_stolen_identity_credentials(agent: str) -> None:
    (f,) = Evaluator(RULES.values(), RuntimeConfig()).evaluate(_identity(agent), only_rule=IDENTITY).findings
    assert f.decision == "alert"


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_every_partition_is_judged(partition: str) -> None:
    arn = f"arn:{partition}:sts::{ACCOUNT}:assumed-role/aws:ec2-instance/i-0a1b2c3d4e5f60718"
    (f,) = Evaluator(RULES.values(), RuntimeConfig()).evaluate(_identity(arn=arn), only_rule=IDENTITY).findings
    assert f.decision == "alert"


def test_a_huge_session_name_keeps_the_alert_bounded() -> None:
    arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/aws:ec2-instance/i-" + "0" * 100_000
    (f,) = Evaluator(RULES.values(), RuntimeConfig()).evaluate(_identity(arn=arn), only_rule=IDENTITY).findings
    assert f.decision == "alert" and len(f.reason) < 1000 and len(f.resource["id"]) <= 64


def test_identity_rule_never_acts_even_in_remediate_mode() -> None:
    cfg = RuntimeConfig(rule_modes={IDENTITY: "remediate"})
    (f,) = Evaluator(RULES.values(), cfg).evaluate(_identity(), only_rule=IDENTITY).findings
    assert f.decision == "alert" and f.action is None
