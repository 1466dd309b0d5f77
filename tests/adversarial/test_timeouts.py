"""A slow or failing AWS endpoint cannot hold one engine call past the function's timeout.

The attacker (or an AWS brown-out) controls how an endpoint answers: it hangs after the request,
fails every attempt with a 5xx, or throttles every attempt and asks for a long ``x-amz-retry-after``.
Each case is played against a local endpoint on 127.0.0.1 with a client made by the engine's own
factory (:mod:`trailguard_engine.clients`), and the test counts what the client did:

* the number of attempts (a ``before-send`` hook on the client: one call per attempt);
* the backoff botocore chose before each retry, with its jitter pinned to the maximum;
* the connect and read timeouts configured on the client.

The worst case of the call is then ``attempts x (connect + read timeout) + the backoffs``; it must
leave :data:`SPARE_S` of every function's synthesized ``Timeout`` for the failure alert. Nothing
here reads a clock: the hanging case shortens only the wall time the test waits (the client's
timeouts are replaced by 50 ms on a copy of its config); the budget is computed from the factory's
configured timeouts, not from how long anything took.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import botocore.retries.standard as std
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError
from trailguard_engine import clients

from stacks.detection import DRIFT_HANDLER, ENGINE_HANDLER, RECONCILE_HANDLER, VERIFY_HANDLER

#: Seconds a function must still have after its slowest call gave up: enough to publish the failure alert.
SPARE_S = 10
REGION = "us-east-1"
HANDLERS = (ENGINE_HANDLER, RECONCILE_HANDLER, DRIFT_HANDLER, VERIFY_HANDLER)


# --------------------------------------------------------------------------- #
# endpoints
# --------------------------------------------------------------------------- #
class _Answer(BaseHTTPRequestHandler):
    """Answers every request with the server's canned (status, headers, body)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, headers, body = self.server.canned  # type: ignore[attr-defined]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        return


CANNED = {
    "5xx": (500, {"Content-Type": "application/x-amz-json-1.1"}, b'{"__type":"InternalFailure","message":"boom"}'),
    "throttle": (
        400,
        # asks for a 60 s wait: botocore honours at most 5 s more than its own backoff
        {"Content-Type": "application/x-amz-json-1.1", "x-amz-retry-after": "60000"},
        json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode(),
    ),
}


@pytest.fixture
def answering(request: pytest.FixtureRequest) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.canned = CANNED[request.param]  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hanging() -> Iterator[str]:
    """A port that completes the TCP handshake (the kernel's backlog) and never answers: nobody accepts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }.items():
        monkeypatch.setenv(k, v)
    return monkeypatch


# --------------------------------------------------------------------------- #
# what the client did
# --------------------------------------------------------------------------- #
class Observed:
    def __init__(self) -> None:
        self.attempts = 0
        self.backoffs: list[float] = []

    def count(self, **_: Any) -> None:
        self.attempts += 1


@pytest.fixture
def observed(monkeypatch: pytest.MonkeyPatch) -> Observed:
    """Records botocore's backoff before each retry with the jitter at its maximum; never sleeps."""
    seen = Observed()
    real = std.ExponentialBackoff.delay_amount

    def at_most(self: std.ExponentialBackoff, context: Any) -> float:
        self._random = lambda: 1.0  # type: ignore[attr-defined]
        seen.backoffs.append(float(real(self, context)))
        return 0.0

    monkeypatch.setattr(std.ExponentialBackoff, "delay_amount", at_most)
    return seen


def engine_client(service: str = "cloudtrail") -> Any:
    """A client exactly as the engine gets one (same factory, same configuration)."""
    return clients.ClientFactory(engine_region=REGION, role_name="trailguard-remediation").engine(service)


def configured(client: Any) -> tuple[int, float, float, str]:
    """(total attempts, connect timeout, read timeout, retry mode) from a client's own configuration."""
    cfg = client.meta.config
    retries = dict(cfg.retries or {})
    attempts = retries.get("total_max_attempts") or retries.get("max_attempts", 4) + 1
    return int(attempts), float(cfg.connect_timeout), float(cfg.read_timeout), str(retries.get("mode", "legacy"))


def function_timeouts(synth: Any) -> dict[str, int]:
    out = {}
    for _stack, _lid, res in synth.all_resources("AWS::Lambda::Function"):
        handler = res["Properties"].get("Handler")
        if handler in HANDLERS:
            out[handler] = int(res["Properties"]["Timeout"])
    assert set(out) == set(HANDLERS), f"functions not found in the template: {set(HANDLERS) - set(out)}"
    return out


def worst_case(obs: Observed, connect: float, read: float, mode: str) -> float:
    """Every attempt hangs for its full connect + read timeout, every backoff is at its maximum."""
    total = obs.attempts * (connect + read) + sum(obs.backoffs)
    if mode == "adaptive":  # client-side rate limiter: up to 1 / min-rate (0.5/s) seconds before each attempt
        total += obs.attempts * 2.0
    return total


def assert_within_every_function(synth: Any, obs: Observed, client: Any) -> None:
    attempts, connect, read, mode = configured(client)
    assert obs.attempts == attempts, "the client did not stop at its configured attempt count"
    assert len(obs.backoffs) == attempts - 1
    worst = worst_case(obs, connect, read, mode)
    for handler, timeout in function_timeouts(synth).items():
        assert worst + SPARE_S <= timeout, (
            f"{handler}: one call can take {worst:.1f} s ({obs.attempts} attempts x ({connect:g} s connect + "
            f"{read:g} s read) + {sum(obs.backoffs):.1f} s backoff, retry mode {mode}), leaving less than "
            f"{SPARE_S} s of {timeout} s"
        )
    # and the engine's own bound is never below what botocore really did
    assert worst <= clients.worst_case_call_seconds(client.meta.config)


# --------------------------------------------------------------------------- #
# the endpoint misbehaves on every attempt
# --------------------------------------------------------------------------- #
def test_a_hanging_endpoint_gives_up_within_every_function_timeout(
    standalone: Any, aws_env: pytest.MonkeyPatch, hanging: str, observed: Observed
) -> None:
    factory_client = engine_client()
    # Same retry configuration; only the wall time this test waits per attempt is shortened.
    quick = factory_client.meta.config.merge(Config(connect_timeout=0.05, read_timeout=0.05))
    c = boto3.session.Session().client("cloudtrail", region_name=REGION, endpoint_url=hanging, config=quick)
    c.meta.events.register("before-send", observed.count)
    with pytest.raises(ReadTimeoutError):
        c.describe_trails()
    assert_within_every_function(standalone, observed, factory_client)


@pytest.mark.parametrize("answering", ["5xx", "throttle"], indirect=True)
def test_an_endpoint_failing_every_attempt_gives_up_within_every_function_timeout(
    standalone: Any, aws_env: pytest.MonkeyPatch, answering: str, observed: Observed
) -> None:
    aws_env.setenv("AWS_ENDPOINT_URL", answering)
    c = engine_client()
    c.meta.events.register("before-send", observed.count)
    with pytest.raises(ClientError) as err:
        c.describe_trails()
    assert err.value.response["Error"]["Code"] in {"InternalFailure", "ThrottlingException"}
    assert_within_every_function(standalone, observed, c)


# --------------------------------------------------------------------------- #
# the budget itself, from the configuration the factory really uses
# --------------------------------------------------------------------------- #
def test_every_client_the_factory_makes_fits_every_synthesized_function_timeout(
    standalone: Any, aws_env: pytest.MonkeyPatch
) -> None:
    made = [
        engine_client("sns"),
        clients.new_client(
            "ec2", region=REGION, credentials={"AccessKeyId": "a", "SecretAccessKey": "b", "SessionToken": "c"}
        ),
    ]
    timeouts = function_timeouts(standalone)
    for c in made:
        worst = clients.worst_case_call_seconds(c.meta.config)
        assert worst == clients.worst_case_call_seconds() == 46.0  # 4 x (2 + 4) + (1 + 5) + (2 + 5) + (4 + 5)
        for handler, timeout in timeouts.items():
            assert clients.fits_timeout(timeout, c.meta.config), f"{handler}: {worst} s + reserve > {timeout} s"
    assert timeouts[ENGINE_HANDLER] == 60  # the tightest one; a change here should revisit the budget


def test_the_bound_refuses_what_it_cannot_bound_and_reads_both_attempt_spellings() -> None:
    for mode in ("adaptive", "legacy"):
        with pytest.raises(ValueError, match=mode):
            clients.worst_case_call_seconds(Config(retries={"mode": mode, "total_max_attempts": 2}))
    total = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=1, read_timeout=2)
    retries_only = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=1, read_timeout=2)
    assert clients.worst_case_call_seconds(total) == clients.worst_case_call_seconds(retries_only) == 3 * 3 + 6 + 7
    # the backoff is capped at 20 s per retry: 10 attempts -> 1, 2, 4, 8, 16, 20, 20, 20, 20 (+ 5 each)
    many = Config(retries={"mode": "standard", "total_max_attempts": 10}, connect_timeout=1, read_timeout=1)
    assert clients.worst_case_call_seconds(many) == 10 * 2 + (1 + 2 + 4 + 8 + 16 + 4 * 20) + 9 * 5
    assert not clients.fits_timeout(60, many)
