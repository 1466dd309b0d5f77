"""Command-line options of the remote engines, declared once for ``hunt`` and ``retro``, and the AWS client they use."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from trailguard.retro.athena import DEFAULT_DATABASE, DEFAULT_TABLE, DEFAULT_WORKGROUP
from trailguard.retro.engines import RemoteQueryError


class Engine(enum.StrEnum):
    duckdb = "duckdb"
    athena = "athena"
    lake = "lake"


EngineOption = Annotated[
    Engine,
    typer.Option("--engine", help="duckdb (local logs), athena (the deployed table) or lake (an event data store)."),
]
WorkgroupOption = Annotated[
    str, typer.Option("--workgroup", help="athena: the workgroup (its result location and limits apply).")
]
DatabaseOption = Annotated[str, typer.Option("--database", help="athena: the Glue database.")]
TableOption = Annotated[str, typer.Option("--table", help="athena: the CloudTrail table.")]
EventDataStoreOption = Annotated[
    str | None, typer.Option("--event-data-store", help="lake: the event data store ID or ARN (required).")
]
ProfileOption = Annotated[str | None, typer.Option("--profile", help="athena/lake: the AWS CLI profile.")]
AwsRegionOption = Annotated[
    str | None,
    typer.Option("--aws-region", help="athena/lake: the AWS region of the API (--region filters events)."),
]

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_TABLE",
    "DEFAULT_WORKGROUP",
    "AwsRegionOption",
    "DatabaseOption",
    "Engine",
    "EngineOption",
    "EventDataStoreOption",
    "ProfileOption",
    "TableOption",
    "WorkgroupOption",
    "aws_client",
]


def aws_client(service: str, profile: str | None, aws_region: str | None) -> object:
    """A boto3 client for ``service``; a one-line :class:`RemoteQueryError` without credentials or a region."""
    import boto3  # noqa: PLC0415 - only the remote engines need the SDK
    from botocore.exceptions import BotoCoreError  # noqa: PLC0415

    try:
        session = boto3.Session(profile_name=profile) if profile else boto3.Session()
        if session.get_credentials() is None:
            raise RemoteQueryError(
                "no AWS credentials found: pass --profile, set AWS_PROFILE, or run `aws sso login` / `aws configure`"
            )
        region = aws_region or session.region_name
        if not region:
            raise RemoteQueryError("no AWS region: pass --aws-region or set AWS_REGION / the profile's region")
        return session.client(service, region_name=region)  # type: ignore[call-overload]
    except BotoCoreError as exc:
        raise RemoteQueryError(
            f"cannot open AWS {'profile ' + repr(profile) if profile else 'session'}: {exc}"
        ) from exc
