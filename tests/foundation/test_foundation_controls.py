"""One test per control: Security Hub CloudTrail.x and CIS AWS Foundations v5 section 3.

``synth`` runs each test in both modes (bare standalone default, every-feature organization example).
"""

from __future__ import annotations

from typing import Any

from foundation_helpers import (
    LOG_ARCHIVE,
    TRAIL,
    Case,
    archive_bucket,
    as_list,
    bucket_policy,
    flat,
    key_by_alias,
    only,
    the_trail,
)

from stacks import names

FOUNDATION_STACKS = (LOG_ARCHIVE, TRAIL)


def _selectors(trail: dict[str, Any], category: str) -> list[list[dict[str, Any]]]:
    out = []
    for sel in trail["AdvancedEventSelectors"]:
        fields = sel["FieldSelectors"]
        if {"Field": "eventCategory", "Equals": [category]} in fields:
            out.append(fields)
    return out


def _s3_data_selectors(trail: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return [f for f in _selectors(trail, "Data") if {"Field": "resources.type", "Equals": ["AWS::S3::Object"]} in f]


# --------------------------------------------------------------------------- #
# Security Hub
# --------------------------------------------------------------------------- #


def test_cloudtrail_1_multi_region_trail_logs_read_and_write_management_events(case: Case) -> None:
    trail = the_trail(case.s)
    assert trail["IsMultiRegionTrail"] is True
    assert trail["IsLogging"] is True
    assert trail["IncludeGlobalServiceEvents"] is True
    management = _selectors(trail, "Management")
    # One management selector with no readOnly filter = read AND write events.
    assert management == [[{"Field": "eventCategory", "Equals": ["Management"]}]]
    assert "EventSelectors" not in trail  # advanced selectors only (the two cannot be mixed)


def test_cloudtrail_2_trail_encrypted_with_the_customer_managed_trail_key(case: Case) -> None:
    trail = the_trail(case.s)
    assert (
        flat(trail["KMSKeyId"])
        == f"arn:${{AWS::Partition}}:kms:us-east-1:{case.archive_account}:alias/trailguard-trail"
    )
    # ...and that alias names a real CMK in the log-archive stack.
    key = key_by_alias(case.s, LOG_ARCHIVE, names.TRAIL_KEY_ALIAS)
    assert key["EnableKeyRotation"] is True


def test_cloudtrail_4_log_file_validation_enabled(case: Case) -> None:
    assert the_trail(case.s)["EnableLogFileValidation"] is True


def test_cloudtrail_5_integrated_with_cloudwatch_logs(case: Case) -> None:
    trail = the_trail(case.s)
    group_lid = trail["CloudWatchLogsLogGroupArn"]["Fn::GetAtt"][0]
    role_lid = trail["CloudWatchLogsRoleArn"]["Fn::GetAtt"][0]
    resources = case.s.templates[TRAIL]["Resources"]
    group = resources[group_lid]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == 400  # config default and example value
    assert group["DeletionPolicy"] == "Retain"
    # Encrypted with its own key (the logs key), not the trail key.
    key_lid = group["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]
    alias = only(
        {
            k: v
            for k, v in case.s.resources(TRAIL, "AWS::KMS::Alias").items()
            if v["Properties"]["TargetKeyId"] == {"Fn::GetAtt": [key_lid, "Arn"]}
        }
    )
    assert alias["Properties"]["AliasName"] == names.LOGS_KEY_ALIAS
    assert resources[role_lid]["Type"] == "AWS::IAM::Role"


def test_cloudtrail_6_archive_bucket_is_not_publicly_accessible(case: Case) -> None:
    from policyuniverse.policy import Policy

    lid, bucket = archive_bucket(case.s)
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    doc = bucket_policy(case.s, lid)
    text_doc = {"Version": doc["Version"], "Statement": [_textual(s) for s in doc["Statement"]]}
    assert not Policy(text_doc).is_internet_accessible()


def test_cloudtrail_7_archive_bucket_has_server_access_logging(case: Case) -> None:
    _, bucket = archive_bucket(case.s)
    target_lid = bucket["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    target = case.s.templates[LOG_ARCHIVE]["Resources"][target_lid]
    assert target["Type"] == "AWS::S3::Bucket"
    assert flat(target["Properties"]["BucketName"]) == f"trailguard-access-logs-{case.archive_account}-us-east-1"
    assert target_lid != archive_bucket(case.s)[0]


def test_cloudtrail_9_trail_is_tagged(case: Case) -> None:
    tags = {t["Key"]: t["Value"] for t in the_trail(case.s)["Tags"]}
    assert tags["trailguard:managed-by"] == "trailguard"
    assert tags["trailguard:component"] == "trail"


def test_cloudtrail_10_lake_event_data_store_uses_a_rotating_cmk(organization: Any) -> None:
    store = only(organization.resources(TRAIL, "AWS::CloudTrail::EventDataStore"))
    props = store["Properties"]
    key_lid = props["KmsKeyId"]["Fn::GetAtt"][0]
    key = organization.templates[TRAIL]["Resources"][key_lid]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert props["OrganizationEnabled"] is True
    assert props["MultiRegionEnabled"] is True
    assert props["TerminationProtectionEnabled"] is True
    assert props["RetentionPeriod"] == 2557
    assert store["DeletionPolicy"] == "Retain"


def test_lake_is_absent_by_default(standalone: Any) -> None:
    assert standalone.resources(TRAIL, "AWS::CloudTrail::EventDataStore") == {}


# --------------------------------------------------------------------------- #
# CIS AWS Foundations Benchmark v5, section 3
# --------------------------------------------------------------------------- #


def test_cis_3_1_cloudtrail_enabled_in_all_regions(case: Case) -> None:
    trail = the_trail(case.s)
    assert trail["IsMultiRegionTrail"] is True
    assert trail["IsLogging"] is True
    assert _selectors(trail, "Management") == [[{"Field": "eventCategory", "Equals": ["Management"]}]]
    assert trail["IsOrganizationTrail"] is case.org


def test_cis_3_2_log_file_validation(case: Case) -> None:
    assert the_trail(case.s)["EnableLogFileValidation"] is True


def test_cis_3_4_server_access_logging_on_the_cloudtrail_bucket(case: Case) -> None:
    trail = the_trail(case.s)
    _, bucket = archive_bucket(case.s)
    assert bucket["BucketName"] == trail["S3BucketName"]  # the logging bucket IS the trail's bucket
    assert "DestinationBucketName" in bucket["LoggingConfiguration"]
    assert bucket["LoggingConfiguration"]["LogFilePrefix"] == "archive/"


def test_cis_3_5_trail_logs_encrypted_at_rest_with_kms_cmk(case: Case) -> None:
    _, bucket = archive_bucket(case.s)
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["BucketKeyEnabled"] is True
    default = rule["ServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms"
    key_lid = default["KMSMasterKeyID"]["Fn::GetAtt"][0]
    assert case.s.templates[LOG_ARCHIVE]["Resources"][key_lid]["Type"] == "AWS::KMS::Key"
    assert "alias/trailguard-trail" in flat(the_trail(case.s)["KMSKeyId"])


def test_cis_3_6_rotation_on_every_customer_managed_key(case: Case) -> None:
    keys = [res for stack in FOUNDATION_STACKS for res in case.s.resources(stack, "AWS::KMS::Key").values()]
    assert len(keys) >= 3  # trail, logs, notifications (+ Lake when enabled)
    for key in keys:
        assert key["Properties"]["EnableKeyRotation"] is True
        assert key["Properties"].get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
        assert key["DeletionPolicy"] == "Retain"


def test_cis_3_8_s3_object_level_write_events(organization: Any) -> None:
    s3 = _s3_data_selectors(the_trail(organization))
    assert len(s3) == 1
    assert not any(f["Field"] == "readOnly" for f in s3[0])  # write events included


def test_cis_3_9_s3_object_level_read_events(organization: Any) -> None:
    s3 = _s3_data_selectors(the_trail(organization))
    assert len(s3) == 1
    assert not any(f["Field"] == "readOnly" for f in s3[0])  # read events included
    # ...every bucket except the archive itself (which would log its own deliveries forever).
    excl = [f for f in s3[0] if f["Field"] == "resources.ARN"]
    assert excl == [
        {"Field": "resources.ARN", "NotStartsWith": ["arn:aws:s3:::trailguard-archive-222222222222-us-east-1/"]}
    ]


def test_data_events_are_off_by_default(standalone: Any) -> None:
    trail = the_trail(standalone)
    assert _selectors(trail, "Data") == []
    assert _selectors(trail, "NetworkActivity") == []
    assert "InsightSelectors" not in trail


def test_lambda_data_events_and_insights_when_enabled(organization: Any) -> None:
    trail = the_trail(organization)
    lam = [
        f for f in _selectors(trail, "Data") if {"Field": "resources.type", "Equals": ["AWS::Lambda::Function"]} in f
    ]
    assert len(lam) == 1
    assert trail["InsightSelectors"] == [{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}]


def _textual(statement: dict[str, Any]) -> dict[str, Any]:
    """A statement with intrinsics flattened to strings (policyuniverse reads strings)."""
    out = dict(statement)
    out["Resource"] = [flat(r) for r in as_list(statement["Resource"])]
    if "Condition" in statement:
        out["Condition"] = {
            op: {k: [flat(x) for x in as_list(v)] for k, v in body.items()}
            for op, body in statement["Condition"].items()
        }
    return out
