"""Properties of the windowed threshold against a brute-force oracle (hypothesis; derandomized under CI).

For any time-ordered sequence of secret reads by a few principals, with redeliveries:

* complete: whenever a principal has read ``count`` distinct secrets within ``window_seconds`` (sliding),
  an alert for it has fired within the last ``window_seconds``;
* sound: an alert fires only when that principal read ``count`` distinct secrets within 1.25 windows;
* quiet: two alerts for one principal (distinct events) are at least ``window_seconds`` apart;
* idempotent: redelivering any event never changes a later verdict.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from window_helpers import SECRETS, T0, Judge, secret_read

N, S = 10, 600
ROLES = ("A", "B")

reads = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=90),  # seconds since the previous read
        st.sampled_from(ROLES),
        st.integers(min_value=0, max_value=14),  # which secret
        st.booleans(),  # delivered twice
    ),
    min_size=1,
    max_size=80,
)


def _run(seq: list[tuple[int, str, int, bool]], *, with_redeliveries: bool) -> list[tuple[float, str, int, str, str]]:
    judge = Judge(clock=None)
    t = T0
    out = []
    for n, (gap, role, secret, twice) in enumerate(seq):
        t += gap
        env = secret_read(n, t, role=role, secret=f"s{secret}")
        f = judge.finding(env, SECRETS)
        if twice and with_redeliveries:
            judge.finding(env, SECRETS)
        out.append((t, role, secret, env["detail"]["eventID"], f.decision))
    return out


@settings(max_examples=60)
@given(reads)
def test_complete_sound_quiet_and_idempotent(seq: list[tuple[int, str, int, bool]]) -> None:
    got = _run(seq, with_redeliveries=True)
    assert [d for *_, d in got] == [d for *_, d in _run(seq, with_redeliveries=False)]  # idempotent
    for i, (t, role, _, _, decision) in enumerate(got):
        mine = [g for g in got[: i + 1] if g[1] == role]
        in_window = {s for (u, _, s, _, _) in mine if u > t - S}
        alerts = [u for (u, _, _, _, d) in mine if d == "alert"]
        if len(in_window) >= N:  # complete
            assert any(u > t - S for u in alerts), (i, t)
        if decision == "alert":  # sound
            assert len({s for (u, _, s, _, _) in mine if u >= t - S * 5 // 4}) >= N, (i, t)
    for role in ROLES:  # quiet
        times = [u for (u, r, _, _, d) in got if r == role and d == "alert"]
        assert all(b - a >= S for a, b in itertools.pairwise(times)), times
