"""CloudTrail identities as AWS writes them, for the caller-class tests.

Shapes follow the CloudTrail userIdentity reference and the records of the shared corpus (CloudFormation
service-role sessions named ``AWSCloudFormation``, ``AWSServiceRoleForSSO/AWS-SSO`` provisioning sessions,
Terraform's ``APN/1.0 HashiCorp/1.0 Terraform/...`` user agent); accounts and names are made up.
"""

from __future__ import annotations

from typing import Any

from trailguard_engine.events import CloudTrailEvent, to_envelope

ACCOUNT = "111122223333"
OTHER = "444455556666"
ENGINE_ACCOUNT = "999988887777"

TERRAFORM_UA = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.45.0 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 "
    "md/GOOS#linux md/GOARCH#amd64 api/ec2#1.155.1"
)
CDK_UA = "aws-sdk-js/2.1553.0 linux/v20.11.1 exec-env/AWS_ECS_FARGATE aws-cdk/2.130.0 promise"
PULUMI_UA = (
    "APN/1.0 Pulumi/1.0 pulumi-aws/v6.28.1 (+https://www.pulumi.com) aws-sdk-go-v2/1.25.2 os/linux lang/go#1.21.6"
)
CLI_UA = "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.5 md/arch#x86_64 lang/python#3.11.8 cmd/ec2.authorize"
CONSOLE_UA = "AWS Internal"


def role_session(
    role: str,
    session: str,
    *,
    account: str = ACCOUNT,
    path: str = "/",
    invoked_by: str | None = None,
    mfa: bool = False,
    console: bool = False,
) -> dict[str, Any]:
    ident: dict[str, Any] = {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLEID0000001:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLE000000001",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLEID0000001",
                "arn": f"arn:aws:iam::{account}:role{path}{role}",
                "accountId": account,
                "userName": role,
            },
            "webIdFederationData": {},
            "attributes": {"creationDate": "2026-12-01T10:00:00Z", "mfaAuthenticated": "true" if mfa else "false"},
        },
    }
    if invoked_by:
        ident["invokedBy"] = invoked_by
    if console:
        ident["sessionCredentialFromConsole"] = "true"
    return ident


def iam_user(name: str = "alice", *, account: str = ACCOUNT, invoked_by: str | None = None) -> dict[str, Any]:
    ident: dict[str, Any] = {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEID0000001",
        "arn": f"arn:aws:iam::{account}:user/{name}",
        "accountId": account,
        "accessKeyId": "AKIAEXAMPLE000000001",
        "userName": name,
    }
    if invoked_by:
        ident["invokedBy"] = invoked_by
    return ident


def root(account: str = ACCOUNT) -> dict[str, Any]:
    return {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root", "accountId": account}


def aws_service(invoked_by: str) -> dict[str, Any]:
    return {"type": "AWSService", "invokedBy": invoked_by}


def slr(service: str, role: str, session: str, *, invoked_by: str | None = "same") -> dict[str, Any]:
    """A session of a service-linked role, as the service writes it (path /aws-service-role/<service>/)."""
    return role_session(
        role,
        session,
        path=f"/aws-service-role/{service}/",
        invoked_by=service if invoked_by == "same" else invoked_by,
    )


def cfn_service_role(role: str = "cfn-exec") -> dict[str, Any]:
    """CloudFormation acting with a stack's service role: session name AWSCloudFormation, invokedBy set."""
    return role_session(role, "AWSCloudFormation", invoked_by="cloudformation.amazonaws.com")


def sso_user(permission_set: str = "AdministratorAccess", user: str = "alice@example.com") -> dict[str, Any]:
    role = f"AWSReservedSSO_{permission_set}_0123456789abcdef"
    return role_session(role, user, path="/aws-reserved/sso.amazonaws.com/")


def sso_provisioning() -> dict[str, Any]:
    """Identity Center provisioning a permission set (corpus: CreateSAMLProvider by AWSServiceRoleForSSO)."""
    return slr("sso.amazonaws.com", "AWSServiceRoleForSSO", "AWS-SSO")


def record(
    identity: dict[str, Any],
    *,
    name: str = "AuthorizeSecurityGroupIngress",
    source: str = "ec2.amazonaws.com",
    user_agent: str = CLI_UA,
    source_ip: str = "203.0.113.10",
    request: dict[str, Any] | None = None,
    account: str = ACCOUNT,
    **extra: Any,
) -> dict[str, Any]:
    if request is None and name == "AuthorizeSecurityGroupIngress":
        request = public_ssh()
    return {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": "2026-12-01T10:05:00Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": source_ip,
        "userAgent": user_agent,
        "requestParameters": request,
        "responseElements": None,
        "eventID": "0f6a2c3e-1b2d-4c5e-8f90-123456789abc",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        **extra,
    }


def public_ssh(group: str = "sg-0123456789abcdef0") -> dict[str, Any]:
    return {
        "groupId": group,
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": "tcp",
                    "fromPort": 22,
                    "toPort": 22,
                    "groups": {},
                    "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                    "ipv6Ranges": {},
                    "prefixListIds": {},
                }
            ]
        },
    }


def attach_admin(role: str = "AWSReservedSSO_AdministratorAccess_0123456789abcdef") -> dict[str, Any]:
    return {"roleName": role, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}


def ct_event(rec: dict[str, Any]) -> CloudTrailEvent:
    return CloudTrailEvent(to_envelope(rec))
