"""Start moto's server, with trailguard's fixes, on a free local port; point boto3 and the CDK CLI at it."""

from __future__ import annotations

import logging
import os
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from trailguard.emulator.fixes import apply_all

REGION = "us-east-1"


@contextmanager
def scoped_env(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or unset, for None) environment variables, restoring the old values on exit."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


@dataclass(frozen=True)
class Endpoint:
    """A running emulator: its URL and the environment that points AWS SDKs and the CDK CLI at it."""

    url: str
    env: dict[str, str]


def emulator_env(url: str, *, region: str = REGION, access_key: str | None = None) -> dict[str, str]:
    """Fake credentials, no profile or config file, the emulator's endpoint for every service."""
    return {
        "AWS_ENDPOINT_URL": url,
        # The CDK CLI caches the account per access key: a fresh key per emulator keeps caches apart.
        "AWS_ACCESS_KEY_ID": access_key or f"AKIAEMU{uuid.uuid4().hex[:13].upper()}",
        "AWS_SECRET_ACCESS_KEY": "emulator",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
    }


@contextmanager
def moto_server(region: str = REGION, *, fixes: bool = True) -> Iterator[Endpoint]:
    """moto's server (with :mod:`trailguard.emulator.fixes` unless ``fixes=False``), for the duration of the block.

    The URL uses ``localhost``, not 127.0.0.1: the CDK CLI rewrites stack TemplateURLs, and moto reads
    the bucket from the path only when the host is ``localhost``. The environment is set for the block.
    """
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - moto is slow to import; only the emulator needs it

    if fixes:
        apply_all()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with scoped_env({"AWS_SESSION_TOKEN": None, "AWS_PROFILE": None, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}):
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            _host, port = server.get_host_and_port()
            url = f"http://localhost:{port}"
            req = urllib.request.Request(f"{url}/moto-api/reset", method="POST")  # noqa: S310 - local emulator
            with urllib.request.urlopen(req, timeout=10):  # noqa: S310
                pass
            env = emulator_env(url, region=region)
            with scoped_env(dict(env.items())):
                yield Endpoint(url, env)
        finally:
            server.stop()
