"""The one place boto3 clients are made: the engine's own clients and member-account sessions.

Every client gets the same botocore configuration (:data:`BOTO_CONFIG`): standard
retries (exponential backoff with jitter) and short connect/read timeouts, sized so
that one call, retries included, always gives up well inside the shortest function
timeout (see "Retry budget" below), leaving time to publish the failure alert.

Member clients act in the event's account and region through the member
remediation role (``TRAILGUARD_REMEDIATION_ROLE_NAME``). Credentials are cached
per account until five minutes before they expire.

Tests replace :func:`new_client` (the single seam) to add stubs or hooks.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from trailguard_engine.exceptions import AssumeRoleError

# --------------------------------------------------------------------------- #
# Retry budget: every number bounding how long one AWS call can take is here.
# --------------------------------------------------------------------------- #
#: Total attempts per call, the first included (botocore's ``total_max_attempts``).
MAX_ATTEMPTS = 4
#: Seconds to open the connection, TLS handshake included (per attempt).
CONNECT_TIMEOUT_S = 2.0
#: Seconds botocore waits for the next bytes of the response (per attempt).
READ_TIMEOUT_S = 4.0
#: ``standard``: :func:`worst_case_call_seconds` bounds it. ``adaptive`` (documented as experimental by AWS) adds a
#: client-side token bucket that can wait before every attempt, by an amount that grows with concurrency.
RETRY_MODE: Final = "standard"
#: botocore's backoff before retry *k* (1-based) is at most ``min(2 ** (k - 1), 20)`` seconds (the
#: throttling scale; other errors back off 20 times less in current botocore, fully in older ones) ...
BACKOFF_CAP_S = 20.0
#: ... plus at most 5 s more when the service asks for it with ``x-amz-retry-after``.
RETRY_AFTER_EXTRA_S = 5.0
#: What a function must keep after its slowest call gave up: enough to publish the failure alert.
RESERVE_S = 10.0

BOTO_CONFIG = Config(
    retries={"mode": RETRY_MODE, "total_max_attempts": MAX_ATTEMPTS},
    connect_timeout=CONNECT_TIMEOUT_S,
    read_timeout=READ_TIMEOUT_S,
    user_agent_extra="trailguard-engine",
)


def worst_case_call_seconds(config: Config = BOTO_CONFIG) -> float:
    """Upper bound, in seconds, of one call made with ``config``, every retry included.

    Every attempt runs into its connect and read timeouts and every backoff is at its maximum::

        attempts x (connect + read) + sum(min(2 ** (k - 1), 20) + 5 for k in 1 .. attempts - 1)

    With the defaults: 4 x (2 + 4) + (1 + 5) + (2 + 5) + (4 + 5) = 46 s, so one call leaves 14 s of
    the engine's 60 s. Not covered, by any botocore setting: DNS resolution, a host name resolving to
    several addresses (each gets the connect timeout) and an endpoint trickling one byte per read
    timeout. Raises ``ValueError`` for a retry mode whose waits this cannot bound.
    """
    cfg: Any = config  # botocore-stubs declares Config's constructor arguments, not its attributes
    retries: dict[str, Any] = dict(cfg.retries or {})
    mode = retries.get("mode", "legacy")
    if mode != "standard":
        raise ValueError(f"retry mode {mode!r}: only 'standard' has a bounded worst case here")
    if "total_max_attempts" in retries:
        attempts = int(retries["total_max_attempts"])
    elif "max_attempts" in retries:
        attempts = int(retries["max_attempts"]) + 1  # botocore's max_attempts counts the retries only
    else:
        attempts = 3  # the standard mode's default
    per_attempt = float(cfg.connect_timeout) + float(cfg.read_timeout)
    backoff = sum(min(2.0 ** (k - 1), BACKOFF_CAP_S) + RETRY_AFTER_EXTRA_S for k in range(1, attempts))
    return attempts * per_attempt + backoff


def fits_timeout(function_timeout_s: float, config: Config = BOTO_CONFIG) -> bool:
    """True when one call made with ``config`` gives up with :data:`RESERVE_S` of the function's time left."""
    return worst_case_call_seconds(config) + RESERVE_S <= function_timeout_s


SESSION_NAME = "trailguard-remediation"
_REFRESH_MARGIN = 300.0
_SESSION = threading.local()


def _session() -> boto3.session.Session:
    s = getattr(_SESSION, "s", None)
    if s is None:
        s = boto3.session.Session()
        _SESSION.s = s
    return s


def new_client(service: str, *, region: str, credentials: dict[str, str] | None = None) -> Any:
    """Create a boto3 client with the engine's retry and timeout configuration.

    ``credentials`` holds ``AccessKeyId``, ``SecretAccessKey`` and ``SessionToken``
    (an STS response's ``Credentials``); without it the Lambda's own role is used.
    """
    creds = credentials or {}
    make: Any = _session().client  # boto3-stubs types client() per service literal; ours is dynamic
    client = make(
        service,
        region_name=region or None,
        config=BOTO_CONFIG,
        aws_access_key_id=creds.get("AccessKeyId"),
        aws_secret_access_key=creds.get("SecretAccessKey"),
        aws_session_token=creds.get("SessionToken"),
    )
    if service == "s3control" and os.environ.get("AWS_ENDPOINT_URL"):
        client.meta.events.register("before-send.s3-control", _strip_account_host)
    return client


_ACCOUNT_HOST = re.compile(r"^(https?://)[0-9]{12}\.")


def _strip_account_host(request: Any, **_: Any) -> None:
    """Drop the ``<account>.`` host prefix S3 Control puts in front of an emulator's address.

    Only registered when an endpoint override is set (``AWS_ENDPOINT_URL``: the demo and the tests;
    never in the deployed functions). Against ``http://127.0.0.1:PORT`` the prefix makes
    ``123456789012.127.0.0.1``, which does not resolve; moto reads the account from the header.
    """
    request.url = _ACCOUNT_HOST.sub(r"\1", request.url, count=1)


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True, slots=True)
class MemberSession:
    """Clients acting in one member account and region through the remediation role."""

    account: str
    region: str
    role_arn: str
    credentials: dict[str, str]
    make: Callable[..., Any]

    def client(self, service: str, region: str | None = None) -> Any:
        return self.make(service, region=region or self.region, credentials=self.credentials)


class ClientFactory:
    """Caches engine clients by (service, region) and member credentials by account."""

    def __init__(self, *, engine_region: str, role_name: str) -> None:
        self.engine_region = engine_region
        self.role_name = role_name
        self._lock = threading.Lock()
        self._engine: dict[tuple[str, str], Any] = {}
        self._creds: dict[str, tuple[float, dict[str, str]]] = {}
        self._member: dict[tuple[str, str, str], Any] = {}

    def engine(self, service: str, region: str | None = None) -> Any:
        """A client in the engine's own account (SNS, Security Hub, SSM, DynamoDB, STS)."""
        key = (service, region or self.engine_region)
        with self._lock:
            c = self._engine.get(key)
        if c is None:
            c = new_client(service, region=key[1])
            with self._lock:
                self._engine[key] = c
        return c

    def read_parameter(self, name: str) -> str:
        """The value of an SSM parameter in the engine's account (the runtime-config document)."""
        return str(self.engine("ssm").get_parameter(Name=name)["Parameter"]["Value"])

    def role_arn(self, account: str) -> str:
        return f"arn:{partition_for(self.engine_region)}:iam::{account}:role/{self.role_name}"

    def member(self, account: str, region: str) -> MemberSession:
        """A session in ``account``/``region`` through the member role; raises :class:`AssumeRoleError`."""
        if not _ACCOUNT.match(account or ""):
            raise AssumeRoleError(f"cannot assume the remediation role: bad account id {account!r}")
        arn = self.role_arn(account)
        now = time.time()
        with self._lock:
            hit = self._creds.get(account)
        if hit is None or hit[0] - _REFRESH_MARGIN <= now:
            try:
                resp = self.engine("sts").assume_role(RoleArn=arn, RoleSessionName=SESSION_NAME, DurationSeconds=3600)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "Unknown")
                raise AssumeRoleError(f"cannot assume {arn}: {code}: {exc}") from exc
            except BotoCoreError as exc:
                raise AssumeRoleError(f"cannot assume {arn}: {exc}") from exc
            raw = resp["Credentials"]
            creds = {k: str(raw[k]) for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
            exp = raw.get("Expiration")
            expires = exp.timestamp() if hasattr(exp, "timestamp") else now + 3600
            hit = (expires, creds)
            with self._lock:
                self._creds[account] = hit
                # clients made with the old credentials are dropped with them
                for k in [k for k in self._member if k[0] == account]:
                    del self._member[k]
        creds = hit[1]

        def make(service: str, *, region: str, credentials: dict[str, str]) -> Any:
            key = (account, service, region)
            with self._lock:
                c = self._member.get(key)
            if c is None:
                c = new_client(service, region=region, credentials=credentials)
                with self._lock:
                    self._member[key] = c
            return c

        return MemberSession(account=account, region=region, role_arn=arn, credentials=creds, make=make)

    def clear(self) -> None:
        with self._lock:
            self._engine.clear()
            self._creds.clear()
            self._member.clear()


def invoked_account(context: Any) -> str:
    """The function's own account, from the Lambda context's ARN ('' when unknown, as in some tests)."""
    parts = str(getattr(context, "invoked_function_arn", "") or "").split(":")
    return parts[4] if len(parts) > 4 else ""
