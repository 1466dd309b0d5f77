"""CIS AWS Foundations Benchmark v5.0 section 4 (monitoring): metric filters and alarms 4.1-4.15.

Each control is a CloudWatch Logs metric filter on the trail's log group plus an
alarm (Sum >= 1 over 5 minutes) that publishes to ``alarm_topic``. The patterns are
the benchmark's v5 patterns, with two deliberate readings:

* 4.1 is written with explicit parentheses, ``(A || B) && C && D``: the benchmark
  text mixes ``||`` and ``&&`` without them, and the intent (ignore
  ``delivery.logs`` and ``HeadBucket`` noise for both error codes) is only
  guaranteed this way.
* 4.2 is the SSO-friendly variant: only successful ``IAMUser`` sign-ins count, so
  federated (Identity Center) and assumed-role sign-ins are not "without MFA".
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

NAMESPACE = "CISBenchmark"


@dataclass(frozen=True)
class CisControl:
    id: str
    metric_name: str
    title: str
    pattern: str


CIS_CONTROLS: tuple[CisControl, ...] = (
    CisControl(
        "4.1",
        "UnauthorizedAPICalls",
        "Unauthorized API calls",
        '{ (($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*")) && '
        '($.sourceIPAddress != "delivery.logs.amazonaws.com") && ($.eventName != "HeadBucket") }',
    ),
    CisControl(
        "4.2",
        "ConsoleSigninWithoutMFA",
        "Management Console sign-in without MFA (IAM users; SSO-friendly)",
        '{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && '
        '($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }',
    ),
    CisControl(
        "4.3",
        "RootAccountUsage",
        "Usage of the root user",
        '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }',
    ),
    CisControl(
        "4.4",
        "IAMPolicyChanges",
        "IAM policy changes",
        "{ ($.eventName = DeleteGroupPolicy) || ($.eventName = DeleteRolePolicy) || "
        "($.eventName = DeleteUserPolicy) || ($.eventName = PutGroupPolicy) || "
        "($.eventName = PutRolePolicy) || ($.eventName = PutUserPolicy) || "
        "($.eventName = CreatePolicy) || ($.eventName = DeletePolicy) || "
        "($.eventName = CreatePolicyVersion) || ($.eventName = DeletePolicyVersion) || "
        "($.eventName = AttachRolePolicy) || ($.eventName = DetachRolePolicy) || "
        "($.eventName = AttachUserPolicy) || ($.eventName = DetachUserPolicy) || "
        "($.eventName = AttachGroupPolicy) || ($.eventName = DetachGroupPolicy) }",
    ),
    CisControl(
        "4.5",
        "CloudTrailConfigChanges",
        "CloudTrail configuration changes",
        "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || "
        "($.eventName = StartLogging) || ($.eventName = StopLogging) }",
    ),
    CisControl(
        "4.6",
        "ConsoleAuthenticationFailures",
        "Management Console authentication failures",
        '{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }',
    ),
    CisControl(
        "4.7",
        "DisableOrDeleteCMK",
        "Disabling or scheduled deletion of customer-managed KMS keys",
        "{ ($.eventSource = kms.amazonaws.com) && (($.eventName = DisableKey) || "
        "($.eventName = ScheduleKeyDeletion)) }",
    ),
    CisControl(
        "4.8",
        "S3BucketPolicyChanges",
        "S3 bucket policy changes",
        "{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || "
        "($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || "
        "($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || "
        "($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || "
        "($.eventName = DeleteBucketLifecycle) || ($.eventName = DeleteBucketReplication)) }",
    ),
    CisControl(
        "4.9",
        "AWSConfigChanges",
        "AWS Config configuration changes",
        "{ ($.eventSource = config.amazonaws.com) && (($.eventName = StopConfigurationRecorder) || "
        "($.eventName = DeleteDeliveryChannel) || ($.eventName = PutDeliveryChannel) || "
        "($.eventName = PutConfigurationRecorder)) }",
    ),
    CisControl(
        "4.10",
        "SecurityGroupChanges",
        "Security group changes",
        "{ ($.eventName = AuthorizeSecurityGroupIngress) || "
        "($.eventName = AuthorizeSecurityGroupEgress) || ($.eventName = RevokeSecurityGroupIngress) || "
        "($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || "
        "($.eventName = DeleteSecurityGroup) || ($.eventName = ModifySecurityGroupRules) }",
    ),
    CisControl(
        "4.11",
        "NACLChanges",
        "Network ACL changes",
        "{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || "
        "($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || "
        "($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }",
    ),
    CisControl(
        "4.12",
        "NetworkGatewayChanges",
        "Network gateway changes",
        "{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || "
        "($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || "
        "($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }",
    ),
    CisControl(
        "4.13",
        "RouteTableChanges",
        "Route table changes",
        "{ ($.eventSource = ec2.amazonaws.com) && (($.eventName = CreateRoute) || "
        "($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || "
        "($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || "
        "($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable)) }",
    ),
    CisControl(
        "4.14",
        "VPCChanges",
        "VPC changes",
        "{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || "
        "($.eventName = ModifyVpcAttribute) || ($.eventName = AcceptVpcPeeringConnection) || "
        "($.eventName = CreateVpcPeeringConnection) || ($.eventName = DeleteVpcPeeringConnection) || "
        "($.eventName = RejectVpcPeeringConnection) || ($.eventName = AttachClassicLinkVpc) || "
        "($.eventName = DetachClassicLinkVpc) || ($.eventName = DisableVpcClassicLink) || "
        "($.eventName = EnableVpcClassicLink) }",
    ),
    CisControl(
        "4.15",
        "OrganizationsChanges",
        "AWS Organizations changes",
        '{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || '
        '($.eventName = "AttachPolicy") || ($.eventName = "CreateAccount") || '
        '($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || '
        '($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || '
        '($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || '
        '($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || '
        '($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || '
        '($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || '
        '($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || '
        '($.eventName = "UpdateOrganizationalUnit")) }',
    ),
)


class CisMonitoring(Construct):
    """Metric filters + alarms for CIS AWS Foundations v5.0 controls 4.1-4.15 on a CloudTrail log group."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        log_group: logs.ILogGroup,
        alarm_topic: sns.ITopic,
        namespace: str = NAMESPACE,
    ) -> None:
        super().__init__(scope, id)
        self.filters: dict[str, logs.MetricFilter] = {}
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        action = cw_actions.SnsAction(alarm_topic)
        for control in CIS_CONTROLS:
            cid = "Cis" + control.id.replace(".", "_")
            metric_filter = logs.MetricFilter(
                self,
                f"{cid}Filter",
                log_group=log_group,
                filter_name=f"cis-{control.id}-{control.metric_name}",
                filter_pattern=logs.FilterPattern.literal(control.pattern),
                metric_namespace=namespace,
                metric_name=control.metric_name,
                metric_value="1",
            )
            alarm = cloudwatch.Alarm(
                self,
                f"{cid}Alarm",
                alarm_name=f"trailguard-cis-{control.id}-{control.metric_name}",
                alarm_description=f"CIS AWS Foundations v5.0 {control.id}: {control.title}.",
                metric=metric_filter.metric(statistic="Sum", period=cdk.Duration.minutes(5)),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            self.filters[control.id] = metric_filter
            self.alarms[control.id] = alarm
