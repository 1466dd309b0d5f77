"""The defense-evasion variants in moto, end to end through the handler (issue 14).

A variant that reaches a remediating rule must remediate the right resource, and a sibling call the
remediation cannot reverse (a member-wide GuardDuty stop, a narrowed Config recorder, a key the record
cannot own) must leave every resource exactly as it was, with an alert.
"""

from __future__ import annotations

from engine_world import MEMBER, REGION, World, ct_event, force_remediate
from trailguard_engine.catalog import rules_by_id

RULES = rules_by_id()


def _invoke(world: World, rule_id: str, envelope: dict[str, object]) -> dict[str, object]:
    force_remediate(world, RULES[rule_id])
    out = world.invoke(envelope, rule_id)
    [finding] = out["findings"]
    return finding


def test_detector_suspended_with_a_string_flag_is_enabled_again(world: World) -> None:
    gd = world.member("guardduty")
    det = gd.create_detector(Enable=True, FindingPublishingFrequency="ONE_HOUR")["DetectorId"]
    gd.update_detector(DetectorId=det, Enable=False)
    finding = _invoke(
        world,
        "guardduty-detector-disabled",
        ct_event("guardduty", "UpdateDetector", {"detectorId": det, "enable": "false"}),
    )
    assert finding["status"] == "remediated", finding
    after = gd.get_detector(DetectorId=det)
    assert after["Status"] == "ENABLED" and after["FindingPublishingFrequency"] == "ONE_HOUR"


def test_stop_monitoring_members_touches_no_detector(world: World) -> None:
    gd = world.member("guardduty")
    det = gd.create_detector(Enable=True)["DetectorId"]
    event = ct_event("guardduty", "StopMonitoringMembers", {"detectorId": det, "accountIds": ["444455556666"]})
    finding = _invoke(world, "guardduty-detector-disabled", event)
    assert finding["decision"] == "alert", finding
    assert not [c for c in world.member_calls() if c[0] == "guardduty"]
    assert gd.get_detector(DetectorId=det)["Status"] == "ENABLED"


def test_narrowed_recorder_is_left_alone(world: World) -> None:
    cfg = world.member("config")
    narrowed = {
        "name": "default",
        "roleARN": f"arn:aws:iam::{MEMBER}:role/config",
        "recordingGroup": {
            "allSupported": False,
            "includeGlobalResourceTypes": False,
            "resourceTypes": ["AWS::S3::Bucket"],
        },
    }
    cfg.put_configuration_recorder(ConfigurationRecorder=narrowed)
    before = cfg.describe_configuration_recorders()["ConfigurationRecorders"]
    event = ct_event("config", "PutConfigurationRecorder", {"configurationRecorder": narrowed})
    finding = _invoke(world, "config-recorder-stopped", event)
    assert finding["decision"] == "alert", finding
    assert not [c for c in world.member_calls() if c[0] == "config"]
    assert cfg.describe_configuration_recorders()["ConfigurationRecorders"] == before


def test_key_named_in_another_region_is_not_touched(world: World) -> None:
    """The same key id exists here, but the record names it in another region: no call, no change."""
    kms = world.member("kms")
    kid = kms.create_key(Description="k")["KeyMetadata"]["KeyId"]
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "trailguard:protected", "TagValue": "true"}])
    kms.disable_key(KeyId=kid)
    other_region = "eu-west-1" if REGION != "eu-west-1" else "us-west-2"
    arn = f"arn:aws:kms:{other_region}:{MEMBER}:key/{kid}"
    finding = _invoke(world, "kms-key-disabled", ct_event("kms", "DisableKey", {"keyId": arn}))
    assert finding["decision"] == "alert", finding
    assert not [c for c in world.member_calls() if c[0] == "kms"]
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Disabled"


def test_key_by_arn_is_enabled_again(world: World) -> None:
    kms = world.member("kms")
    kid = kms.create_key(Description="k")["KeyMetadata"]["KeyId"]
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "trailguard:protected", "TagValue": "true"}])
    kms.disable_key(KeyId=kid)
    arn = f"arn:aws:kms:{REGION}:{MEMBER}:key/{kid}"
    finding = _invoke(world, "kms-key-disabled", ct_event("kms", "DisableKey", {"keyId": arn}))
    assert finding["status"] == "remediated", finding
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
