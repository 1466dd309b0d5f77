"""The one place boto3 clients are made: the engine's own clients and member-account sessions.

Every client gets the same botocore configuration: adaptive retries (exponential
backoff with jitter, client-side rate limiting on throttling errors) and short
connect/read timeouts, so a slow endpoint fails fast into a retry instead of
eating the Lambda's time budget.

Member clients act in the event's account and region through the member
remediation role (``TRAILGUARD_REMEDIATION_ROLE_NAME``). Credentials are cached
per account until five minutes before they expire.

Tests replace :func:`new_client` (the single seam) to add stubs or hooks.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from trailguard_engine.exceptions import AssumeRoleError

#: Total attempts per call, the first included (botocore's ``total_max_attempts``).
MAX_ATTEMPTS = 5
BOTO_CONFIG = Config(
    retries={"mode": "adaptive", "total_max_attempts": MAX_ATTEMPTS},
    connect_timeout=3,
    read_timeout=10,
    user_agent_extra="trailguard-engine",
)
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
    return make(
        service,
        region_name=region or None,
        config=BOTO_CONFIG,
        aws_access_key_id=creds.get("AccessKeyId"),
        aws_secret_access_key=creds.get("SecretAccessKey"),
        aws_session_token=creds.get("SessionToken"),
    )


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
