"""Build the CloudTrail record AWS writes for an API call.

The demo makes real boto3 calls against the emulator, which writes no
CloudTrail. For each call the scenario describes the request and response in
CloudTrail's own shapes (``requestParameters``/``responseElements`` as the
service logs them, which differ per service) and this module adds the common
envelope: identity, time, ids, TLS details, category.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

EVENT_VERSION = "1.09"
CLI_USER_AGENT = "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.8 md/prompt#off"


@dataclass(frozen=True, slots=True)
class Caller:
    """An IAM user calling with a long-term access key (the demo's attacker or operator)."""

    account: str
    user_name: str
    access_key_id: str
    principal_id: str
    source_ip: str = "203.0.113.66"
    user_agent: str = CLI_USER_AGENT

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account}:user/{self.user_name}"

    def identity(self) -> dict[str, Any]:
        return {
            "type": "IAMUser",
            "principalId": self.principal_id,
            "arn": self.arn,
            "accountId": self.account,
            "accessKeyId": self.access_key_id,
            "userName": self.user_name,
        }


def _host(service: str, region: str, bucket: str | None) -> str:
    if service == "s3" and bucket:
        return f"{bucket}.s3.{region}.amazonaws.com"
    if service == "iam":
        return "iam.amazonaws.com"
    return f"{service}.{region}.amazonaws.com"


def cloudtrail_record(
    *,
    service: str,
    event_name: str,
    region: str,
    caller: Caller,
    request: dict[str, Any] | None,
    response: dict[str, Any] | None,
    request_id: str | None = None,
    resources: list[dict[str, Any]] | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    read_only: bool = False,
    event_time: datetime | None = None,
    bucket: str | None = None,
) -> dict[str, Any]:
    """One CloudTrail management-event record, as it appears in a log file's ``Records``.

    ``service`` is the endpoint prefix (``ec2``, ``s3``...). IAM is a global
    service: its records are written in us-east-1 whatever the client region.
    """
    when = (event_time or datetime.now(UTC)).astimezone(UTC)
    if service == "iam":
        region = "us-east-1"
    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": caller.identity(),
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{service}.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": caller.source_ip,
        "userAgent": caller.user_agent,
    }
    if error_code:
        record["errorCode"] = error_code
        record["errorMessage"] = error_message or error_code
    record["requestParameters"] = request
    record["responseElements"] = response
    if service == "s3":
        record["additionalEventData"] = {
            "SignatureVersion": "SigV4",
            "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": 0,
            "AuthenticationMethod": "AuthHeader",
            "bytesTransferredOut": 0,
        }
    record["requestID"] = request_id or str(uuid.uuid4())
    record["eventID"] = str(uuid.uuid4())
    record["readOnly"] = read_only
    if resources:
        record["resources"] = resources
    record["eventType"] = "AwsApiCall"
    record["managementEvent"] = True
    record["recipientAccountId"] = caller.account
    record["eventCategory"] = "Management"
    record["tlsDetails"] = {
        "tlsVersion": "TLSv1.3",
        "cipherSuite": "TLS_AES_128_GCM_SHA256",
        "clientProvidedHostHeader": _host(service, region, bucket),
    }
    return record
