"""Attacks on first-seen rules (trailguard_engine.window): an attacker wants a new identity's first secret read,
policy attachment or trust change to look "already seen", or the rule to stay in its learning period.

The gate's clock bounds every event time (a forged eventTime cannot pre-seed a term or the learning start ahead
of time), an out-of-order sighting only ever moves a term's last sighting forward, and a request naming more
terms than are checked alerts anyway.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.model import Finding, Rule
from trailguard_engine.window import DAY, FIRST_SEEN_ITEMS_PARAM, MAX_TERMS_PER_EVENT, MemoryWindowStore, ThresholdGate

_HELPERS = Path(__file__).resolve().parents[1] / "engine_core" / "window_helpers.py"
if "window_helpers" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("window_helpers", _HELPERS)
    assert _spec is not None and _spec.loader is not None
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["window_helpers"] = _mod
    _spec.loader.exec_module(_mod)

from window_helpers import T0, first_seen_rule, secret_read  # noqa: E402


def _rule(learning: int) -> Rule:
    return first_seen_rule(learning=learning, rule_id="fs-adv")


class Engine:
    """The gate as the engine runs it: the injected clock bounds event times."""

    def __init__(self, rule: Rule, now: float) -> None:
        self.now = now
        self.rule = rule
        self.gate = ThresholdGate(MemoryWindowStore(), clock=lambda: self.now)

    def judge(self, env: dict[str, Any], items: list[str] | None = None) -> str:
        params = {FIRST_SEEN_ITEMS_PARAM: items} if items is not None else {}
        f = Finding(self.rule.id, "MEDIUM", "alert", None, "x", params=params)
        (out,) = self.gate.apply(CloudTrailEvent(to_envelope(env)), [f], {self.rule.id: self.rule})
        return out.decision


def test_a_forged_future_sighting_cannot_make_a_later_real_read_look_seen() -> None:
    e = Engine(_rule(0), T0)
    # A crafted record on the bus claims the intruder's role read the secret 29 days from now.
    assert e.judge(secret_read(1, T0 + 29 * DAY, role="Intruder", event_id="forged-0000001")) == "alert"
    # 31 days later the real read: the forged sighting counted at its arrival, so it is older than the history.
    e.now = T0 + 31 * DAY
    assert e.judge(secret_read(2, T0 + 31 * DAY, role="Intruder", event_id="real-00000002")) == "alert"


def test_a_forged_future_first_event_cannot_stretch_the_learning_period() -> None:
    e = Engine(_rule(14), T0)
    # The first qualifying event the deployment sees claims a time a year ahead: learning starts now anyway.
    assert e.judge(secret_read(1, T0 + 365 * DAY, role="App", event_id="forged-0000003")) == "skip"
    e.now = T0 + 15 * DAY
    assert e.judge(secret_read(2, T0 + 15 * DAY, role="Intruder", event_id="real-00000004")) == "alert"


def test_padding_a_request_with_known_terms_does_not_hide_a_new_one() -> None:
    e = Engine(_rule(0), T0)
    known = [f"arn:aws:secretsmanager:us-east-1:111122223333:secret:app-{i:03d}" for i in range(MAX_TERMS_PER_EVENT)]
    e.judge(secret_read(1, T0, role="App", event_id="seed-00000005"), known)
    e.now = T0 + 60
    padded = [*known, "arn:aws:secretsmanager:us-east-1:111122223333:secret:zz-root-credentials"]
    assert e.judge(secret_read(2, T0 + 60, role="App", event_id="pad-000000006"), padded) == "alert"


def test_another_session_name_or_the_role_name_in_another_case_is_the_same_identity() -> None:
    # Not a way to look new (noise) nor a way to look like someone else: IAM role names are case-insensitive.
    e = Engine(_rule(0), T0)
    assert e.judge(secret_read(1, T0, role="DevOps", session="a", event_id="one-000000007")) == "alert"
    e.now = T0 + 60
    assert e.judge(secret_read(2, T0 + 60, role="devops", session="b", event_id="two-000000008")) == "skip"
    # A role of another account with the same name is another identity.
    assert e.judge(secret_read(3, T0 + 60, role="DevOps", account="444455556666", event_id="three-0000009")) == "alert"


def test_a_late_old_record_cannot_refresh_a_term_into_the_past() -> None:
    e = Engine(_rule(0), T0 + 40 * DAY)
    assert e.judge(secret_read(1, T0 + 40 * DAY, role="Ops", event_id="now-000000010")) == "alert"
    # An old record (or a forged one) delivered late counts at most LATE_SECONDS back: it is not new, and it does not
    # move the last sighting back so that a later read would look new or old.
    assert e.judge(secret_read(2, T0, role="Ops", event_id="old-000000011")) == "skip"
    e.now = T0 + 41 * DAY
    assert e.judge(secret_read(3, T0 + 41 * DAY, role="Ops", event_id="next-00000012")) == "skip"
