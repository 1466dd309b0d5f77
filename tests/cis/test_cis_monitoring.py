"""CIS AWS Foundations v5.0 4.1-4.15: exact filter patterns and alarms on the template, and each
pattern evaluated against positive and negative CloudTrail records."""

from __future__ import annotations

import os
from typing import Any

import pytest
from cwl_filter import FilterSyntaxError, compile_pattern, matches

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

EXPECTED: dict[str, tuple[str, str]] = {
    "4.1": ("UnauthorizedAPICalls", '{ (($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*")) && ($.sourceIPAddress != "delivery.logs.amazonaws.com") && ($.eventName != "HeadBucket") }'),
    "4.2": ("ConsoleSigninWithoutMFA", '{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }'),
    "4.3": ("RootAccountUsage", '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }'),
    "4.4": ("IAMPolicyChanges", "{ ($.eventName = DeleteGroupPolicy) || ($.eventName = DeleteRolePolicy) || ($.eventName = DeleteUserPolicy) || ($.eventName = PutGroupPolicy) || ($.eventName = PutRolePolicy) || ($.eventName = PutUserPolicy) || ($.eventName = CreatePolicy) || ($.eventName = DeletePolicy) || ($.eventName = CreatePolicyVersion) || ($.eventName = DeletePolicyVersion) || ($.eventName = AttachRolePolicy) || ($.eventName = DetachRolePolicy) || ($.eventName = AttachUserPolicy) || ($.eventName = DetachUserPolicy) || ($.eventName = AttachGroupPolicy) || ($.eventName = DetachGroupPolicy) }"),
    "4.5": ("CloudTrailConfigChanges", "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || ($.eventName = StartLogging) || ($.eventName = StopLogging) }"),
    "4.6": ("ConsoleAuthenticationFailures", '{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }'),
    "4.7": ("DisableOrDeleteCMK", "{ ($.eventSource = kms.amazonaws.com) && (($.eventName = DisableKey) || ($.eventName = ScheduleKeyDeletion)) }"),
    "4.8": ("S3BucketPolicyChanges", "{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || ($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || ($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || ($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || ($.eventName = DeleteBucketLifecycle) || ($.eventName = DeleteBucketReplication)) }"),
    "4.9": ("AWSConfigChanges", "{ ($.eventSource = config.amazonaws.com) && (($.eventName = StopConfigurationRecorder) || ($.eventName = DeleteDeliveryChannel) || ($.eventName = PutDeliveryChannel) || ($.eventName = PutConfigurationRecorder)) }"),
    "4.10": ("SecurityGroupChanges", "{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress) || ($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) || ($.eventName = ModifySecurityGroupRules) }"),
    "4.11": ("NACLChanges", "{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || ($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || ($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }"),
    "4.12": ("NetworkGatewayChanges", "{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || ($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || ($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }"),
    "4.13": ("RouteTableChanges", "{ ($.eventSource = ec2.amazonaws.com) && (($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable)) }"),
    "4.14": ("VPCChanges", "{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || ($.eventName = ModifyVpcAttribute) || ($.eventName = AcceptVpcPeeringConnection) || ($.eventName = CreateVpcPeeringConnection) || ($.eventName = DeleteVpcPeeringConnection) || ($.eventName = RejectVpcPeeringConnection) || ($.eventName = AttachClassicLinkVpc) || ($.eventName = DetachClassicLinkVpc) || ($.eventName = DisableVpcClassicLink) || ($.eventName = EnableVpcClassicLink) }"),
    "4.15": ("OrganizationsChanges", '{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || ($.eventName = "CreateAccount") || ($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || ($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || ($.eventName = "UpdateOrganizationalUnit")) }'),
}  # fmt: skip

USER = {
    "type": "IAMUser",
    "arn": "arn:aws:iam::111111111111:user/alice",
    "accountId": "111111111111",
    "userName": "alice",
}
ROLE = {"type": "AssumedRole", "arn": "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_1/alice"}
ROOT = {"type": "Root", "arn": "arn:aws:iam::111111111111:root", "accountId": "111111111111"}


def ct(name: str, source: str, identity: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    rec = {
        "eventVersion": "1.09", "userIdentity": identity or USER, "eventTime": "2024-05-01T10:00:00Z",
        "eventSource": source, "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0", "requestParameters": {}, "responseElements": None,
        "eventID": "e", "eventType": "AwsApiCall", "recipientAccountId": "111111111111",
    }  # fmt: skip
    return rec | extra


def login(identity: dict[str, Any], mfa: str, ok: bool = True) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "eventType": "AwsConsoleSignIn",
        "responseElements": {"ConsoleLogin": "Success" if ok else "Failure"},
        "additionalEventData": {"MFAUsed": mfa, "MobileVersion": "No"},
    }
    if not ok:
        extra["errorMessage"] = "Failed authentication"
    return ct("ConsoleLogin", "signin.amazonaws.com", identity, **extra)


EC2, IAM = "ec2.amazonaws.com", "iam.amazonaws.com"
CASES: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    "4.1": (
        [ct("GetObject", "s3.amazonaws.com", errorCode="AccessDenied"),
         ct("RunInstances", EC2, errorCode="Client.UnauthorizedOperation"),
         ct("ListKeys", "kms.amazonaws.com", errorCode="AccessDeniedException")],
        [ct("GetObject", "s3.amazonaws.com"),
         ct("PutObject", "s3.amazonaws.com", errorCode="AccessDenied", sourceIPAddress="delivery.logs.amazonaws.com"),
         ct("RunInstances", EC2, errorCode="Client.UnauthorizedOperation", sourceIPAddress="delivery.logs.amazonaws.com"),
         ct("HeadBucket", "s3.amazonaws.com", errorCode="AccessDenied"),
         ct("GetObject", "s3.amazonaws.com", errorCode="NoSuchKey")],
    ),
    "4.2": (
        [login(USER, "No")],
        [login(USER, "Yes"), login(ROLE, "No"), login(USER, "No", ok=False), login(ROOT, "Yes")],
    ),
    "4.3": (
        [ct("ListBuckets", "s3.amazonaws.com", ROOT), login(ROOT, "Yes")],
        [ct("ListBuckets", "s3.amazonaws.com", USER),
         ct("Decrypt", "kms.amazonaws.com", ROOT | {"invokedBy": "cloudtrail.amazonaws.com"}),
         ct("CredentialChange", IAM, ROOT, eventType="AwsServiceEvent")],
    ),
    "4.4": ([ct("AttachRolePolicy", IAM), ct("PutUserPolicy", IAM), ct("CreatePolicyVersion", IAM)],
            [ct("ListPolicies", IAM), ct("CreateUser", IAM)]),
    "4.5": ([ct("StopLogging", "cloudtrail.amazonaws.com"), ct("UpdateTrail", "cloudtrail.amazonaws.com")],
            [ct("DescribeTrails", "cloudtrail.amazonaws.com"), ct("PutEventSelectors", "cloudtrail.amazonaws.com")]),
    "4.6": ([login(USER, "No", ok=False)], [login(USER, "No"), ct("GetUser", IAM, errorMessage="Failed authentication")]),
    "4.7": ([ct("ScheduleKeyDeletion", "kms.amazonaws.com"), ct("DisableKey", "kms.amazonaws.com")],
            [ct("EnableKey", "kms.amazonaws.com"), ct("DisableKey", "payment-cryptography.amazonaws.com")]),
    "4.8": ([ct("PutBucketPolicy", "s3.amazonaws.com"), ct("DeleteBucketLifecycle", "s3.amazonaws.com")],
            [ct("GetBucketPolicy", "s3.amazonaws.com"), ct("PutObject", "s3.amazonaws.com")]),
    "4.9": ([ct("StopConfigurationRecorder", "config.amazonaws.com"), ct("PutDeliveryChannel", "config.amazonaws.com")],
            [ct("DescribeConfigurationRecorders", "config.amazonaws.com"), ct("StartConfigurationRecorder", "config.amazonaws.com")]),
    "4.10": ([ct("ModifySecurityGroupRules", EC2), ct("AuthorizeSecurityGroupIngress", EC2), ct("DeleteSecurityGroup", EC2)],
             [ct("DescribeSecurityGroups", EC2), ct("DescribeSecurityGroupRules", EC2)]),
    "4.11": ([ct("CreateNetworkAclEntry", EC2), ct("ReplaceNetworkAclAssociation", EC2)], [ct("DescribeNetworkAcls", EC2)]),
    "4.12": ([ct("AttachInternetGateway", EC2), ct("DeleteCustomerGateway", EC2)], [ct("DescribeInternetGateways", EC2)]),
    "4.13": ([ct("CreateRoute", EC2), ct("DisassociateRouteTable", EC2)],
             [ct("DescribeRouteTables", EC2), ct("CreateRoute", "apigateway.amazonaws.com")]),
    "4.14": ([ct("CreateVpcPeeringConnection", EC2), ct("ModifyVpcAttribute", EC2)], [ct("DescribeVpcs", EC2)]),
    "4.15": ([ct("LeaveOrganization", "organizations.amazonaws.com"), ct("DetachPolicy", "organizations.amazonaws.com")],
             [ct("ListAccounts", "organizations.amazonaws.com"), ct("DetachPolicy", IAM)]),
}  # fmt: skip


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    import aws_cdk as cdk
    from aws_cdk import aws_logs as logs
    from aws_cdk import aws_sns as sns
    from aws_cdk.assertions import Template

    from stacks.constructs.cis_monitoring import CisMonitoring

    app = cdk.App()
    stack = cdk.Stack(app, "CisTest")
    group = logs.LogGroup(stack, "TrailLogs")
    topic = sns.Topic(stack, "Alarms")
    CisMonitoring(stack, "Cis", log_group=group, alarm_topic=topic)
    return dict(Template.from_stack(stack).to_json())


def _of_type(template: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == type_]


def _patterns(template: dict[str, Any]) -> dict[str, str]:
    out = {}
    for props in _of_type(template, "AWS::Logs::MetricFilter"):
        cid = props["FilterName"].split("-")[1]
        out[cid] = props["FilterPattern"]
    return out


def test_fifteen_filters_with_exact_v5_patterns(template: dict[str, Any]) -> None:
    filters = _of_type(template, "AWS::Logs::MetricFilter")
    assert len(filters) == 15
    by_id = {p["FilterName"].split("-")[1]: p for p in filters}
    assert set(by_id) == set(EXPECTED)
    for cid, (metric, pattern) in EXPECTED.items():
        props = by_id[cid]
        assert props["FilterPattern"] == pattern, cid
        assert props["MetricTransformations"] == [
            {"MetricName": metric, "MetricNamespace": "CISBenchmark", "MetricValue": "1"}
        ]
        assert props["LogGroupName"] == {
            "Ref": next(k for k, r in template["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup")
        }


def test_fifteen_alarms_publish_to_the_topic(template: dict[str, Any]) -> None:
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    topic_ref = {"Ref": next(k for k, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic")}
    assert len(alarms) == 15
    assert {a["MetricName"] for a in alarms} == {m for m, _ in EXPECTED.values()}
    for a in alarms:
        assert a["AlarmActions"] == [topic_ref]
        assert a["Namespace"] == "CISBenchmark"
        assert (a["Statistic"], a["Period"], a["Threshold"], a["EvaluationPeriods"]) == ("Sum", 300, 1, 1)
        assert a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert a["TreatMissingData"] == "notBreaching"
        assert a["AlarmName"].startswith("trailguard-cis-4.")


@pytest.mark.parametrize("cid", sorted(EXPECTED, key=lambda c: int(c.split(".")[1])))
def test_pattern_matches_positive_and_not_negative_records(cid: str, template: dict[str, Any]) -> None:
    pattern = _patterns(template)[cid]  # the deployed pattern, not the Python constant
    positives, negatives = CASES[cid]
    for rec in positives:
        assert matches(pattern, rec), f"{cid} should match {rec['eventName']} {rec.get('errorCode')}"
    for rec in negatives:
        assert not matches(pattern, rec), f"{cid} should not match {rec['eventName']} {rec.get('errorCode')}"


def test_unparenthesised_4_1_would_be_ambiguous() -> None:
    # The benchmark's text form mixes || and && at one level; the evaluator refuses to guess.
    with pytest.raises(FilterSyntaxError, match="ambiguous"):
        compile_pattern('{ ($.errorCode = "x") || ($.errorCode = "y") && ($.eventName != "HeadBucket") }')


def test_evaluator_basics() -> None:
    rec = {"a": {"b": "Client.UnauthorizedOperation"}, "n": None, "t": True}
    assert matches('{ $.a.b = "*UnauthorizedOperation" }', rec)
    assert not matches('{ $.a.b = "Unauthorized*" }', rec)
    assert matches("{ $.a.c NOT EXISTS }", rec)
    assert not matches("{ $.a.b NOT EXISTS }", rec)
    assert matches("{ $.n IS NULL }", rec)
    assert matches("{ $.t = true }", rec)
    assert not matches('{ $.missing != "x" }', rec)
    with pytest.raises(FilterSyntaxError):
        compile_pattern("{ $.a.b ~ x }")
