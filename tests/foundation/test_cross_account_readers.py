"""Cross-account readers of the archive: trailguard's reconcile function (security account) and the reader roles.

In organization mode the archive bucket and the trail key live in the log-archive account while the
reconcile function runs in the security account: it needs an Allow in the bucket policy AND the key
policy (resource policies) as well as in its own IAM policy. Standalone is one account, so its IAM
policy is enough and the resource policies stay as they are.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from foundation_helpers import LOG_ARCHIVE, archive_bucket, as_list, bucket_policy, flat, key_by_alias, statements

from stacks import names
from stacks.detection import RECONCILE_HANDLER

DETECTION = "TrailguardDetection"
ORG_ID = "o-a1b2c3d4e5"
SECURITY = "333333333333"
LOG_ARCHIVE_ACCOUNT = "222222222222"
#: Denies a reader passes by using TLS 1.2+.
TRANSPORT_DENIES = ({"Bool": {"aws:SecureTransport": "false"}}, {"NumericLessThan": {"s3:TlsVersion": 1.2}})


def _arn(text: str) -> str:
    """The detection stack knows its region, so CDK writes the partition literally there: compare both ways."""
    return text.replace("${AWS::Partition}", "aws")


def _reconcile_role(synth: Any) -> tuple[str, dict[str, Any]]:
    """(RoleName, merged policy statements by Sid) of the reconcile function's role, read from the template."""
    tpl = synth.templates[DETECTION]["Resources"]
    (fn,) = [
        r
        for r in tpl.values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == RECONCILE_HANDLER
    ]
    role_lid = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    sts: dict[str, Any] = {}
    for res in tpl.values():
        if res["Type"] == "AWS::IAM::Policy" and {"Ref": role_lid} in res["Properties"]["Roles"]:
            sts |= statements(res["Properties"]["PolicyDocument"])
    return tpl[role_lid]["Properties"]["RoleName"], sts


def _stack_account(synth: Any, stack: str) -> str:
    env = synth.manifest["artifacts"][stack]["environment"]  # aws://<account>/<region>
    return str(env.split("/")[2])


def _reconcile_role_arn(synth: Any) -> str:
    name, _ = _reconcile_role(synth)
    return f"arn:${{AWS::Partition}}:iam::{_stack_account(synth, DETECTION)}:role/{name}"


def _archive_statements(synth: Any) -> dict[str, dict[str, Any]]:
    lid, _ = archive_bucket(synth)
    return statements(bucket_policy(synth, lid))


def _trail_key_statements(synth: Any) -> dict[str, dict[str, Any]]:
    return statements(key_by_alias(synth, LOG_ARCHIVE, names.TRAIL_KEY_ALIAS)["KeyPolicy"])


# --------------------------------------------------------------------------- #
# organization mode: resource policies in the log-archive account
# --------------------------------------------------------------------------- #


def _verify_role_arn() -> str:
    return f"arn:${{AWS::Partition}}:iam::{SECURITY}:role/trailguard-verify"


def test_archive_bucket_lets_the_reconcile_role_get_log_files_only(organization: Any) -> None:
    st = _archive_statements(organization)["AllowTrailguardReadersGetLogFiles"]
    assert st["Effect"] == "Allow"
    assert st["Principal"] == {"AWS": "*"}
    assert st["Action"] == "s3:GetObject"  # no List, no Put, no Delete
    lid, _ = archive_bucket(organization)
    assert flat(st["Resource"]) == f"${{{lid}.Arn}}/AWSLogs/*"
    assert [flat(a) for a in st["Condition"]["ArnEquals"]["aws:PrincipalArn"]] == [
        _reconcile_role_arn(organization),
        _verify_role_arn(),  # issue 13: the digest verifier reads digests and log files the same way
    ]
    assert st["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": ORG_ID}


def test_reconcile_role_arn_names_the_security_account_and_the_deployed_role(organization: Any) -> None:
    assert _stack_account(organization, DETECTION) == SECURITY
    assert _reconcile_role_arn(organization) == f"arn:${{AWS::Partition}}:iam::{SECURITY}:role/trailguard-reconcile"


def test_trail_key_lets_the_reconcile_role_decrypt_only_through_s3(organization: Any) -> None:
    st = _trail_key_statements(organization)["AllowTrailguardReadersDecryptViaS3"]
    assert st["Effect"] == "Allow"
    assert st["Action"] == "kms:Decrypt"
    assert st["Principal"] == {"AWS": "*"}
    assert [flat(a) for a in st["Condition"]["ArnEquals"]["aws:PrincipalArn"]] == [
        _reconcile_role_arn(organization),
        _verify_role_arn(),
    ]
    assert st["Condition"]["StringEquals"] == {
        "kms:ViaService": "s3.us-east-1.amazonaws.com",
        "aws:PrincipalOrgID": ORG_ID,
    }


def test_no_deny_in_the_archive_policy_blocks_an_organization_reader(organization: Any) -> None:
    """Every Deny that covers s3:GetObject is one an in-organization, TLS caller passes."""
    for sid, st in _archive_statements(organization).items():
        if st["Effect"] != "Deny" or not {"s3:*", "s3:GetObject"} & set(as_list(st["Action"])):
            continue
        cond = st["Condition"]
        passes = cond in TRANSPORT_DENIES or cond.get("StringNotEquals") == {"aws:PrincipalOrgID": ORG_ID}
        assert passes, f"{sid} would deny the cross-account readers: {json.dumps(cond)}"


def test_reader_roles_keep_read_and_decrypt(organization: Any) -> None:
    """The Athena/SIEM reader roles (reader_role_arns) read the archive from the security account."""
    read = _archive_statements(organization)["AllowReaderRolesReadLogs"]
    assert {"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"} == set(read["Action"])
    decrypt = _trail_key_statements(organization)["AllowReaderRolesDecryptLogs"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"]["ArnLike"] == {"aws:PrincipalArn": [f"arn:aws:iam::{SECURITY}:role/siem-reader"]}


# --------------------------------------------------------------------------- #
# the reconcile role's own IAM policy (both modes)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("mode", ["standalone", "organization"])
def test_reconcile_iam_policy_reads_this_archive_and_decrypts_its_key_via_s3(
    request: pytest.FixtureRequest, mode: str
) -> None:
    synth = request.getfixturevalue(mode)
    name, sts = _reconcile_role(synth)
    assert name == "trailguard-reconcile"
    _, bucket = archive_bucket(synth)
    archive_name = flat(bucket["BucketName"])
    assert _arn(flat(sts["ReadLogFiles"]["Resource"])) == f"arn:aws:s3:::{archive_name}/AWSLogs/*"
    assert sts["ReadLogFiles"]["Action"] == "s3:GetObject"
    dec = sts["DecryptLogFiles"]
    assert dec["Action"] == "kms:Decrypt"
    key_account = LOG_ARCHIVE_ACCOUNT if mode == "organization" else "${AWS::AccountId}"
    assert _arn(flat(dec["Resource"])) == f"arn:aws:kms:us-east-1:{key_account}:key/*"
    assert dec["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    if mode == "organization":
        assert _stack_account(synth, LOG_ARCHIVE) == LOG_ARCHIVE_ACCOUNT  # the key really lives there


def test_standalone_needs_no_cross_account_statements(standalone: Any) -> None:
    assert "AllowTrailguardReadersGetLogFiles" not in _archive_statements(standalone)
    assert "AllowTrailguardReadersDecryptViaS3" not in _trail_key_statements(standalone)


def test_runtime_config_protects_the_trail_key_where_it_lives(organization: Any) -> None:
    """The engine's protected_key_arns name the trail key in the log-archive account (not the trail account)."""
    params = [
        r["Properties"]
        for r in organization.templates[DETECTION]["Resources"].values()
        if r["Type"] == "AWS::SSM::Parameter" and r["Properties"].get("Name") == names.RUNTIME_CONFIG_PARAMETER
    ]
    (param,) = params
    doc = json.loads(flat(param["Value"]))
    protected = [_arn(a) for a in doc["protected_key_arns"]]
    assert f"arn:aws:kms:us-east-1:{LOG_ARCHIVE_ACCOUNT}:{names.TRAIL_KEY_ALIAS}" in protected
