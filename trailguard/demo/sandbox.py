"""The emulated account's attack targets (seeded), and the sandbox the scenario runs in.

The demo deploys everything trailguard owns with ``cdk deploy`` and seeds only what an attacker
changes: buckets, security groups, a snapshot, a key, a Config recorder and two IAM users.
:func:`seed` adds stand-ins for trailguard's own resources for the engine benchmark, which
measures the handler, not a deployment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

import boto3
from botocore.config import Config

from trailguard.demo.records import Caller
from trailguard.emulator.server import moto_server, scoped_env

__all__ = [
    "REGION",
    "Sandbox",
    "Targets",
    "client",
    "drain_alerts",
    "moto_server",
    "scoped_env",
    "seed",
    "seed_targets",
]

REGION = "us-east-1"
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=30)


def client(service: str, *, region: str = REGION, creds: tuple[str, str] | None = None) -> Any:
    """A boto3 client on the emulator (AWS_ENDPOINT_URL), as the admin or with ``creds``."""
    kwargs: dict[str, Any] = {"region_name": region, "config": _CLIENT_CONFIG}
    if creds is not None:
        kwargs.update(aws_access_key_id=creds[0], aws_secret_access_key=creds[1])
    session: Any = boto3.session.Session()
    return session.client(service, **kwargs)


@dataclass
class Targets:
    """What the attacker goes after, seeded in the emulated account."""

    account: str
    region: str
    data_bucket: str
    legacy_bucket: str
    vpc_id: str
    web_sg: str
    lb_sg: str
    legit_cidr: str
    snapshot_id: str
    key_id: str
    key_arn: str
    intern_user: str
    recorder: str
    attacker: Caller
    attacker_creds: tuple[str, str]


@dataclass
class Sandbox(Targets):
    """The scenario's view: the seeded targets plus trailguard's own resources (deployed, or stand-ins)."""

    trail_name: str
    trail_arn: str
    log_bucket: str
    table_name: str
    topic_arn: str
    alert_queue_url: str
    config_parameter: str
    engine_role_arn: str
    remediation_role_arn: str

    def attacker_client(self, service: str) -> Any:
        return client(service, region=self.region, creds=self.attacker_creds)


PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def seed_targets(region: str = REGION) -> Targets:
    """Create the attack targets: nothing trailguard owns."""
    account = client("sts", region=region).get_caller_identity()["Account"]
    s3 = client("s3", region=region)
    ec2 = client("ec2", region=region)
    iam = client("iam", region=region)
    kms = client("kms", region=region)

    # --- a Config recorder that is recording, delivering to its own bucket --------------------- #
    config_bucket = f"demo-config-{account}"
    s3.create_bucket(Bucket=config_bucket)
    s3.put_public_access_block(Bucket=config_bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
    config_role = iam.create_role(
        RoleName="demo-config-recorder",
        AssumeRolePolicyDocument=_trust({"Service": "config.amazonaws.com"}),
    )["Role"]["Arn"]
    cfg = client("config", region=region)
    cfg.put_configuration_recorder(
        ConfigurationRecorder={"name": "default", "roleARN": config_role, "recordingGroup": {"allSupported": True}}
    )
    cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": config_bucket})
    cfg.start_configuration_recorder(ConfigurationRecorderName="default")

    # --- data: a bucket with Block Public Access, a legacy bucket that still uses ACLs -------- #
    data_bucket = f"demo-data-{account}"
    s3.create_bucket(Bucket=data_bucket)
    s3.put_public_access_block(Bucket=data_bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
    s3.put_bucket_tagging(Bucket=data_bucket, Tagging={"TagSet": [{"Key": "owner", "Value": "analytics"}]})
    legacy_bucket = f"demo-legacy-site-{account}"
    s3.create_bucket(Bucket=legacy_bucket, ObjectOwnership="ObjectWriter")

    # --- network: a security group with a legitimate rule, and a load-balancer group -------- #
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    web_sg = ec2.create_security_group(GroupName="demo-web", Description="web servers", VpcId=vpc_id)["GroupId"]
    legit_cidr = "10.20.0.0/16"
    ec2.authorize_security_group_ingress(
        GroupId=web_sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 8080,
                "ToPort": 8080,
                "IpRanges": [{"CidrIp": legit_cidr, "Description": "from the load balancer"}],
            }
        ],
    )
    lb_sg = ec2.create_security_group(GroupName="demo-lb", Description="public load balancer", VpcId=vpc_id)["GroupId"]

    # --- a private EBS snapshot ------------------------------------------------------------ #
    vol = ec2.create_volume(AvailabilityZone=f"{region}a", Size=8)["VolumeId"]
    snapshot_id = ec2.create_snapshot(VolumeId=vol, Description="nightly backup")["SnapshotId"]

    # --- a protected KMS key ----------------------------------------------------------------- #
    key = kms.create_key(
        Description="demo: protected key (customer data)",
        Tags=[{"TagKey": "trailguard:protected", "TagValue": "true"}],
    )["KeyMetadata"]
    kms.create_alias(AliasName="alias/demo-protected", TargetKeyId=key["KeyId"])

    # --- people: the attacker (with an access key) and an intern ---------------------------- #
    mallory = iam.create_user(UserName="mallory")["User"]
    key_pair = iam.create_access_key(UserName="mallory")["AccessKey"]
    iam.create_user(UserName="intern")
    attacker = Caller(
        account=account,
        user_name="mallory",
        access_key_id=key_pair["AccessKeyId"],
        principal_id=mallory["UserId"],
    )
    return Targets(
        account=account,
        region=region,
        data_bucket=data_bucket,
        legacy_bucket=legacy_bucket,
        vpc_id=vpc_id,
        web_sg=web_sg,
        lb_sg=lb_sg,
        legit_cidr=legit_cidr,
        snapshot_id=snapshot_id,
        key_id=key["KeyId"],
        key_arn=key["Arn"],
        intern_user="intern",
        recorder="default",
        attacker=attacker,
        attacker_creds=(key_pair["AccessKeyId"], key_pair["SecretAccessKey"]),
    )


def subscribe_inbox(topic_arn: str, region: str = REGION) -> str:
    """An SQS queue subscribed to the alert topic, to read what was published; its URL."""
    sqs = client("sqs", region=region)
    inbox = sqs.create_queue(QueueName="demo-alert-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client("sns", region=region).subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=inbox_arn)
    return str(inbox)


def sandbox(targets: Targets, **owned: Any) -> Sandbox:
    """The scenario's view: the seeded targets plus trailguard's own resources (deployed, or stand-ins)."""
    return Sandbox(**{f.name: getattr(targets, f.name) for f in fields(Targets)}, **owned)


def seed(
    *,
    runtime_document: str,
    remediation_permissions: list[str],
    table_name: str = "trailguard-state",
    topic_name: str = "trailguard-alerts",
    region: str = REGION,
) -> Sandbox:
    """The targets plus hand-made stand-ins for trailguard's own resources (the engine benchmark only)."""
    targets = seed_targets(region)
    account = targets.account
    s3 = client("s3", region=region)
    iam = client("iam", region=region)
    log_bucket = f"demo-trail-logs-{account}"
    s3.create_bucket(Bucket=log_bucket)
    s3.put_public_access_block(Bucket=log_bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
    trail_name = "demo-trail"
    trail = client("cloudtrail", region=region).create_trail(
        Name=trail_name, S3BucketName=log_bucket, IsMultiRegionTrail=True, EnableLogFileValidation=True
    )
    client("cloudtrail", region=region).start_logging(Name=trail_name)
    ddb = client("dynamodb", region=region)
    ddb.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )
    topic_arn = client("sns", region=region).create_topic(Name=topic_name)["TopicArn"]
    inbox = subscribe_inbox(topic_arn, region)
    config_parameter = "/trailguard/runtime-config"
    client("ssm", region=region).put_parameter(
        Name=config_parameter, Value=runtime_document, Type="String", Overwrite=True
    )
    engine_role = iam.create_role(
        RoleName="trailguard-engine", AssumeRolePolicyDocument=_trust({"Service": "lambda.amazonaws.com"})
    )["Role"]["Arn"]
    remediation_role = iam.create_role(
        RoleName="trailguard-remediation", AssumeRolePolicyDocument=_trust({"AWS": engine_role})
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName="trailguard-remediation",
        PolicyName="remediations",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": sorted(set(remediation_permissions)), "Resource": "*"}],
            }
        ),
    )
    return sandbox(
        targets,
        trail_name=trail_name,
        trail_arn=trail["TrailARN"],
        log_bucket=log_bucket,
        table_name=table_name,
        topic_arn=topic_arn,
        alert_queue_url=inbox,
        config_parameter=config_parameter,
        engine_role_arn=engine_role,
        remediation_role_arn=remediation_role,
    )


def _trust(principal: dict[str, str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
        }
    )


def drain_alerts(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Every alert published to the topic so far (SNS -> SQS inbox), as parsed messages."""
    sqs = client("sqs", region=sandbox.region)
    out: list[dict[str, Any]] = []
    while True:
        resp = sqs.receive_message(QueueUrl=sandbox.alert_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        msgs = resp.get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            envelope = json.loads(m["Body"])
            text = envelope.get("Message", "")
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = text
            out.append({"subject": envelope.get("Subject"), "message": body, "raw": text})
            sqs.delete_message(QueueUrl=sandbox.alert_queue_url, ReceiptHandle=m["ReceiptHandle"])
