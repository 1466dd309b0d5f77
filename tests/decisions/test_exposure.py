"""Unit tests of the public-exposure decision functions (decisions/exposure.py)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from trailguard_engine.decisions.exposure import load_policy, public_statements
from trailguard_engine.runtime_config import RuntimeConfig

ACCOUNT = "111122223333"
OTHER = "444455556666"
S3 = "s3.amazonaws.com"
GID = "sg-0123456789abcdef0"


# --------------------------------------------------------------------------- S3 Block Public Access
def bpa(**flags):
    base = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    base.update(flags)
    return {"bucketName": "b1", "publicAccessBlock": [""], "PublicAccessBlockConfiguration": base}


def test_bpa_all_on_is_not_risky(run, ev):
    a = run("s3-block-public-access-removed", ev("PutBucketPublicAccessBlock", bpa(), source=S3))
    assert not a.risky
    assert "all four" in a.reason


@pytest.mark.parametrize("value", [False, "false", "FALSE", None])
def test_bpa_one_setting_off_is_risky_and_names_it(run, ev, value):
    req = bpa(RestrictPublicBuckets=value)
    if value is None:
        del req["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"]
    a = run("s3-block-public-access-removed", ev("PutBucketPublicAccessBlock", req, source=S3))
    assert a.risky
    assert a.remediable
    assert "RestrictPublicBuckets" in a.reason
    assert "BlockPublicAcls" not in a.reason
    assert a.params == {"bucket": "b1"}


def test_bpa_delete_and_unreadable_config_are_risky(run, ev):
    a = run("s3-block-public-access-removed", ev("DeleteBucketPublicAccessBlock", {"bucketName": ["b1"]}, source=S3))
    assert a.risky
    assert a.params == {"bucket": "b1"}
    a = run(
        "s3-block-public-access-removed",
        ev("PutBucketPublicAccessBlock", {"bucketName": "b1", "PublicAccessBlockConfiguration": "x"}, source=S3),
    )
    assert a.risky
    assert "no readable" in a.reason


def test_bpa_without_bucket_name_is_not_remediable(run, ev):
    a = run("s3-block-public-access-removed", ev("DeleteBucketPublicAccessBlock", {}, source=S3))
    assert a.risky
    assert not a.remediable
    assert a.params == {}


def test_account_bpa_alerts_and_is_never_remediable(run, ev):
    req = bpa(BlockPublicPolicy=False)
    del req["bucketName"]
    a = run("s3-account-block-public-access-removed", ev("PutAccountPublicAccessBlock", req, source=S3))
    assert a.risky
    assert not a.remediable
    assert a.params == {"account": ACCOUNT}
    assert not run("s3-account-block-public-access-removed", ev("PutAccountPublicAccessBlock", bpa(), source=S3)).risky


# --------------------------------------------------------------------------- S3 ACL
ALL = "http://acs.amazonaws.com/groups/global/AllUsers"


@pytest.mark.parametrize(
    ("req", "expect"),
    [
        ({"bucketName": "b1", "x-amz-acl": ["public-read"]}, "canned ACL public-read"),
        ({"bucketName": "b1", "x-amz-acl": "authenticated-read"}, "canned ACL authenticated-read"),
        ({"bucketName": "b1", "x-amz-grant-read": [f'uri="{ALL}"']}, "x-amz-grant-read to AllUsers"),
        (
            {
                "bucketName": "b1",
                "AccessControlPolicy": {
                    "AccessControlList": {"Grant": {"Grantee": {"URI": ALL}, "Permission": "WRITE"}}
                },
            },
            "grant WRITE to AllUsers",
        ),
    ],
)
def test_acl_public_shapes(run, ev, req, expect):
    a = run("s3-bucket-acl-public", ev("PutBucketAcl", req, source=S3))
    assert a.risky
    assert expect in a.reason
    assert a.params == {"bucket": "b1"}


@pytest.mark.parametrize(
    "req",
    [
        {"bucketName": "b1", "x-amz-acl": ["private"]},
        {"bucketName": "b1", "x-amz-acl": ["bucket-owner-full-control"]},
        {
            "bucketName": "b1",
            "AccessControlPolicy": {
                "AccessControlList": {
                    "Grant": [
                        {"Grantee": {"ID": "abc"}, "Permission": "FULL_CONTROL"},
                        {"Grantee": {"URI": "http://acs.amazonaws.com/groups/s3/LogDelivery"}, "Permission": "WRITE"},
                    ]
                }
            },
        },
        {"bucketName": "b1", "AccessControlPolicy": "garbage"},
    ],
)
def test_acl_private_shapes(run, ev, req):
    assert not run("s3-bucket-acl-public", ev("PutBucketAcl", req, source=S3)).risky


# --------------------------------------------------------------------------- S3 bucket policy
def stmt(**kw):
    return {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b1/*", **kw}


@pytest.mark.parametrize(
    ("statement", "public"),
    [
        (stmt(), True),
        (stmt(Principal={"AWS": "*"}), True),
        (stmt(Principal={"AWS": ["*"]}), True),
        (stmt(Effect="Deny"), False),
        (stmt(Principal={"AWS": f"arn:aws:iam::{OTHER}:root"}), False),
        (stmt(Principal={"Service": "cloudtrail.amazonaws.com"}), False),
        (stmt(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}), False),
        (stmt(Condition={"StringEquals": {"aws:SourceVpce": "vpce-1a2b"}}), False),
        (stmt(Condition={"StringEquals": {"aws:SourceVpc": "vpc-1a2b"}}), False),
        (stmt(Condition={"StringEquals": {"aws:SourceAccount": ACCOUNT}}), False),
        (stmt(Condition={"ArnEquals": {"aws:SourceArn": f"arn:aws:cloudfront::{ACCOUNT}:distribution/E1"}}), False),
        (stmt(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), False),
        (stmt(Condition={"IpAddress": {"aws:SourceIp": ["198.51.100.0/24", "203.0.113.7"]}}), False),
        # policyuniverse already gets these right:
        (stmt(Condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}), True),
        (stmt(Condition={"StringLike": {"aws:SourceVpce": "*"}}), True),
        (stmt(Condition={"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b"}}), True),
        (stmt(Condition={"Bool": {"aws:SecureTransport": "true"}}), True),
        # supplemented (policyuniverse says not public):
        (stmt(Condition={"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-abc123"}}), True),
        (stmt(Condition={"ForAllValues:StringEquals": {"aws:SourceVpce": ["vpce-1a2b"]}}), True),
        (stmt(Condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/1"}}), True),
        (stmt(Condition={"IpAddress": {"aws:SourceIp": "2000::/16"}}), True),
        (stmt(Condition={"StringEquals": {"aws:SourceVpc": "${aws:username}"}}), True),
        # a restricting key next to a dropped one still restricts
        (
            stmt(
                Condition={
                    "StringEqualsIfExists": {"aws:SourceVpce": "vpce-1"},
                    "StringEquals": {"aws:PrincipalOrgID": "o-abc123"},
                }
            ),
            False,
        ),
    ],
)
def test_statement_public_analysis(statement, public):
    assert bool(public_statements({"Statement": [statement]})) is public


def test_policy_lists_only_public_statement_indexes_and_sids(run, ev):
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            stmt(Sid="Private", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
            stmt(Sid="Open"),
            stmt(Effect="Deny", Condition={"Bool": {"aws:SecureTransport": "false"}}),
            stmt(Action="s3:ListBucket"),
        ],
    }
    a = run("s3-bucket-policy-public", ev("PutBucketPolicy", {"bucketName": "b1", "bucketPolicy": policy}, source=S3))
    assert a.risky
    assert a.remediable
    assert a.params == {"bucket": "b1", "public_statements": [{"index": 1, "sid": "Open"}, {"index": 3, "sid": ""}]}


def test_policy_as_json_string_and_url_encoded():
    doc = {"Statement": [stmt()]}
    assert load_policy(json.dumps(doc)) == doc
    assert load_policy(quote(json.dumps(doc), safe="")) == doc
    assert load_policy("not json") is None
    assert load_policy(["x"]) is None


def test_policy_missing_from_record_alerts_without_remediation(run, ev):
    a = run("s3-bucket-policy-public", ev("PutBucketPolicy", {"bucketName": "b1", "policy": [""]}, source=S3))
    assert a.risky
    assert not a.remediable


def test_policy_private_is_not_risky_and_malformed_statements_do_not_crash(run, ev):
    bad = {
        "Statement": [
            1,
            "x",
            {"Effect": "Allow", "Principal": 5, "Action": "s3:*"},
            {"Effect": "Allow", "Principal": {"AWS": None}},
        ]
    }
    a = run("s3-bucket-policy-public", ev("PutBucketPolicy", {"bucketName": "b1", "bucketPolicy": bad}, source=S3))
    assert not a.risky


# --------------------------------------------------------------------------- security groups
def perm(proto, lo, hi, v4=(), v6=()):
    return {
        "ipProtocol": proto,
        "fromPort": lo,
        "toPort": hi,
        "ipRanges": {"items": [{"cidrIp": c} for c in v4]},
        "ipv6Ranges": {"items": [{"cidrIpv6": c} for c in v6]},
    }


def resp_rule(rid, proto, lo, hi, *, v4=None, v6=None, egress=False):
    r = {
        "securityGroupRuleId": rid,
        "groupId": GID,
        "isEgress": egress,
        "ipProtocol": proto,
        "fromPort": lo,
        "toPort": hi,
    }
    if v4:
        r["cidrIpv4"] = v4
    if v6:
        r["cidrIpv6"] = v6
    return r


def authorize(ev, perms, rules=()):
    return ev(
        "AuthorizeSecurityGroupIngress",
        {"groupId": GID, "ipPermissions": {"items": perms}},
        {"_return": True, "securityGroupRuleSet": {"items": list(rules)}},
    )


def test_sg_443_and_22_flags_only_22_and_its_rule_id(run, ev):
    e = authorize(
        ev,
        [perm("tcp", 443, 443, v4=["0.0.0.0/0"]), perm("tcp", 22, 22, v4=["0.0.0.0/0"])],
        [resp_rule("sgr-443", "tcp", 443, 443, v4="0.0.0.0/0"), resp_rule("sgr-22", "tcp", 22, 22, v4="0.0.0.0/0")],
    )
    a = run("ec2-security-group-ingress-public", e)
    assert a.risky
    assert a.remediable
    assert a.params == {
        "group_id": GID,
        "rule_ids": ["sgr-22"],
        "offending": [{"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"}],
    }


def test_sg_allowed_ports_only_is_not_risky(run, ev):
    e = authorize(ev, [perm("tcp", 443, 443, v4=["0.0.0.0/0"], v6=["::/0"]), perm("tcp", 80, 80, v4=["0.0.0.0/0"])])
    a = run("ec2-security-group-ingress-public", e)
    assert not a.risky
    assert "allowed" in a.reason


@pytest.mark.parametrize(
    ("p", "offending"),
    [
        (
            perm("tcp", 80, 443, v4=["0.0.0.0/0"]),
            {"protocol": "tcp", "from_port": 80, "to_port": 443, "cidr": "0.0.0.0/0"},
        ),
        (perm("-1", None, None, v6=["::/0"]), {"protocol": "-1", "from_port": -1, "to_port": -1, "cidr": "::/0"}),
        (
            perm("6", "3389", "3389", v4=["0.0.0.0/0"]),
            {"protocol": "tcp", "from_port": 3389, "to_port": 3389, "cidr": "0.0.0.0/0"},
        ),
        (
            perm("udp", 53, 53, v4=["0.0.0.0/0"]),
            {"protocol": "udp", "from_port": 53, "to_port": 53, "cidr": "0.0.0.0/0"},
        ),
        (
            perm("50", None, None, v4=["0.0.0.0/0"]),
            {"protocol": "50", "from_port": -1, "to_port": -1, "cidr": "0.0.0.0/0"},
        ),
        (
            perm("tcp", None, None, v4=["0.0.0.0/0"]),
            {"protocol": "tcp", "from_port": 0, "to_port": 65535, "cidr": "0.0.0.0/0"},
        ),
    ],
)
def test_sg_offending_shapes(run, ev, p, offending):
    a = run("ec2-security-group-ingress-public", authorize(ev, [p]))
    assert a.risky
    assert a.params["offending"] == [offending]
    assert a.params["rule_ids"] == []


@pytest.mark.parametrize(
    "p",
    [perm("icmp", -1, -1, v4=["0.0.0.0/0"]), perm("58", 128, 0, v6=["::/0"]), perm("tcp", 22, 22, v4=["10.0.0.0/8"])],
)
def test_sg_icmp_and_private_sources_are_not_risky(run, ev, p):
    assert not run("ec2-security-group-ingress-public", authorize(ev, [p])).risky


def test_sg_allowed_ports_come_from_config(run, ev):
    e = authorize(ev, [perm("tcp", 22, 22, v4=["0.0.0.0/0"])])
    assert not run(
        "ec2-security-group-ingress-public", e, RuntimeConfig(allowed_public_ports=frozenset({22, 443}))
    ).risky
    assert run("ec2-security-group-ingress-public", e, RuntimeConfig(allowed_public_ports=frozenset())).risky


def test_sg_legacy_flat_request_matches_response_rule(run, ev):
    e = ev(
        "AuthorizeSecurityGroupIngress",
        {"groupId": GID, "ipPermissions": {}, "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIp": "0.0.0.0/0"},
        {
            "securityGroupRuleSet": {
                "items": [
                    resp_rule("sgr-a", "tcp", 22, 22, v4="0.0.0.0/0"),
                    resp_rule("sgr-egress", "tcp", 22, 22, v4="0.0.0.0/0", egress=True),
                ]
            }
        },
    )
    a = run("ec2-security-group-ingress-public", e)
    assert a.risky
    assert a.params["rule_ids"] == ["sgr-a"]


def test_sg_modify_security_group_rules(run, ev):
    req = {
        "ModifySecurityGroupRulesRequest": {
            "GroupId": GID,
            "SecurityGroupRule": [
                {
                    "SecurityGroupRuleId": "sgr-db",
                    "SecurityGroupRule": {
                        "IpProtocol": "tcp",
                        "FromPort": 5432,
                        "ToPort": 5432,
                        "CidrIpv4": "0.0.0.0/0",
                    },
                },
                {
                    "SecurityGroupRuleId": "sgr-web",
                    "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIpv4": "0.0.0.0/0"},
                },
            ],
        }
    }
    a = run("ec2-security-group-ingress-public", ev("ModifySecurityGroupRules", req))
    assert a.risky
    assert a.params["rule_ids"] == ["sgr-db"]
    assert a.params["offending"] == [{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "cidr": "0.0.0.0/0"}]


def test_sg_without_group_id_is_not_remediable(run, ev):
    e = ev(
        "AuthorizeSecurityGroupIngress",
        {"groupName": "default", "ipPermissions": {"items": [perm("tcp", 22, 22, v4=["0.0.0.0/0"])]}},
    )
    a = run("ec2-security-group-ingress-public", e)
    assert a.risky
    assert not a.remediable
    assert a.params == {}


# --------------------------------------------------------------------------- NACL
def nacl(**kw):
    base = {
        "networkAclId": "acl-1",
        "ruleNumber": 100,
        "egress": False,
        "ruleAction": "allow",
        "aclProtocol": "6",
        "portRange": {"from": 0, "to": 65535},
        "cidrBlock": "0.0.0.0/0",
    }
    base.update(kw)
    return base


@pytest.mark.parametrize(
    ("req", "ports"),
    [
        (nacl(), [22, 3389]),
        (nacl(aclProtocol="-1", portRange={}), [22, 3389]),
        (nacl(aclProtocol="17", portRange={"from": 3389, "to": 3389}), [3389]),
        (nacl(cidrBlock=None, ipv6CidrBlock="::/0", portRange={"from": 20, "to": 25}), [22]),
    ],
)
def test_nacl_admin_ports(run, ev, req, ports):
    a = run("nacl-admin-ports-open", ev("CreateNetworkAclEntry", req))
    assert a.risky
    assert a.params["ports"] == ports
    assert not a.remediable


@pytest.mark.parametrize(
    "req",
    [
        nacl(egress=True),
        nacl(egress="true"),
        nacl(ruleAction="deny"),
        nacl(cidrBlock="10.0.0.0/8"),
        nacl(portRange={"from": 443, "to": 443}),
        nacl(aclProtocol="1", portRange={}),
    ],
)
def test_nacl_safe_entries(run, ev, req):
    assert not run("nacl-admin-ports-open", ev("ReplaceNetworkAclEntry", req)).risky


# --------------------------------------------------------------------------- snapshots, AMIs, RDS
def snap(add):
    return {
        "snapshotId": "snap-1",
        "attributeType": "CREATE_VOLUME_PERMISSION",
        "createVolumePermission": {"add": {"items": add}},
    }


def test_snapshot_public_is_remediable(run, ev):
    a = run("ebs-snapshot-public", ev("ModifySnapshotAttribute", snap([{"group": "all"}])))
    assert a.risky
    assert a.remediable
    assert a.params == {"snapshot_id": "snap-1"}


def test_snapshot_shared_with_other_account_alerts_only(run, ev):
    a = run("ebs-snapshot-public", ev("ModifySnapshotAttribute", snap([{"userId": OTHER}, {"userId": ACCOUNT}])))
    assert a.risky
    assert not a.remediable
    assert a.params["shared_with"] == [OTHER]
    assert "organization membership" in a.reason


def test_snapshot_shared_with_own_account_or_removed_is_not_risky(run, ev):
    assert not run("ebs-snapshot-public", ev("ModifySnapshotAttribute", snap([{"userId": ACCOUNT}]))).risky
    removed = {"snapshotId": "snap-1", "createVolumePermission": {"remove": {"items": [{"group": "all"}]}}}
    assert not run("ebs-snapshot-public", ev("ModifySnapshotAttribute", removed)).risky


def test_snapshot_query_api_shape_and_missing_id(run, ev):
    a = run(
        "ebs-snapshot-public",
        ev("ModifySnapshotAttribute", {"snapshotId": "snap-2", "operationType": "add", "groupNames": ["all"]}),
    )
    assert a.risky
    assert a.params == {"snapshot_id": "snap-2"}
    a = run(
        "ebs-snapshot-public",
        ev("ModifySnapshotAttribute", {"createVolumePermission": {"add": {"items": {"group": "all"}}}}),
    )
    assert a.risky
    assert not a.remediable


def test_ami_public_and_org_shares(run, ev):
    pub = {"imageId": "ami-1", "launchPermission": {"add": {"items": [{"group": "all"}]}}}
    a = run("ami-public", ev("ModifyImageAttribute", pub))
    assert a.risky
    assert a.params == {"image_id": "ami-1"}
    org = {
        "imageId": "ami-1",
        "launchPermission": {
            "add": {"items": [{"organizationArn": "arn:aws:organizations::999988887777:organization/o-mine12345"}]}
        },
    }
    assert not run("ami-public", ev("ModifyImageAttribute", org), RuntimeConfig(org_id="o-mine12345")).risky
    a = run("ami-public", ev("ModifyImageAttribute", org), RuntimeConfig(org_id="o-other0000"))
    assert a.risky
    assert not a.remediable


@pytest.mark.parametrize(
    ("rule_id", "name", "key"),
    [
        ("rds-snapshot-public", "ModifyDBSnapshotAttribute", "dBSnapshotIdentifier"),
        ("rds-cluster-snapshot-public", "ModifyDBClusterSnapshotAttribute", "dBClusterSnapshotIdentifier"),
    ],
)
def test_rds_snapshot_shares(run, ev, rule_id, name, key):
    def mk(**kw):
        return ev(name, {key: "snap-db", "attributeName": "restore", **kw}, source="rds.amazonaws.com")

    a = run(rule_id, mk(valuesToAdd=["all"]))
    assert a.risky
    assert a.remediable
    assert a.params == {"snapshot_id": "snap-db"}
    a = run(rule_id, mk(valuesToAdd=[OTHER]))
    assert a.risky
    assert not a.remediable
    assert not run(rule_id, mk(valuesToAdd=[])).risky
    assert not run(rule_id, mk(valuesToRemove=["all"])).risky
    assert not run(rule_id, ev(name, {key: "snap-db", "attributeName": "other", "valuesToAdd": ["all"]})).risky


# --------------------------------------------------------------------------- Lambda
LAM = "lambda.amazonaws.com"


def test_lambda_permission(run, ev):
    base = {"functionName": "fn", "statementId": "s1", "action": "lambda:InvokeFunction"}
    a = run("lambda-permission-public", ev("AddPermission20150331v2", {**base, "principal": "*"}, source=LAM))
    assert a.risky
    assert not a.remediable
    assert a.params == {"function_name": "fn", "statement_id": "s1"}
    for scope in ({"sourceAccount": ACCOUNT}, {"sourceArn": "arn:aws:s3:::b1"}, {"principalOrgID": "o-abc"}):
        assert not run(
            "lambda-permission-public",
            ev("AddPermission20150331v2", {**base, "principal": "*", **scope}, source=LAM),
            RuntimeConfig(org_id="o-abc"),
        ).risky
    # pinned to an organization that is not ours (or, standalone, to any organization): outside, alerted
    for cfg in (RuntimeConfig(org_id="o-mine"), RuntimeConfig()):
        b = run(
            "lambda-permission-public",
            ev("AddPermission20150331v2", {**base, "principal": "*", "principalOrgID": "o-abc"}, source=LAM),
            cfg,
        )
        assert b.risky and not b.remediable and "organization o-abc" in b.reason
    assert not run(
        "lambda-permission-public", ev("AddPermission20150331v2", {**base, "principal": "s3.amazonaws.com"}, source=LAM)
    ).risky


def test_lambda_function_url(run, ev):
    assert run(
        "lambda-function-url-auth-none",
        ev("CreateFunctionUrlConfig20211031", {"functionName": "fn", "authType": "NONE"}, source=LAM),
    ).risky
    assert not run(
        "lambda-function-url-auth-none",
        ev("UpdateFunctionUrlConfig20211031", {"functionName": "fn", "authType": "AWS_IAM"}, source=LAM),
    ).risky
