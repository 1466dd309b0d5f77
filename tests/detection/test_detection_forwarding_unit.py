"""Unit tests of the forwarding union and the catalog-derived permissions (no synth)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from detection_helpers import moto_matches
from trailguard_engine.model import RemediationSpec, Rule

from stacks.detection import central_rule_name, engine_input_template, layer_dir
from stacks.forwarding import (
    MAX_PATTERN_CHARS,
    PATTERN_SPLIT_CHARS,
    engine_remediation_actions,
    forwarding_patterns,
    pattern_size,
    remediation_actions,
    remediation_statements,
)


def _rule(
    base: Rule,
    rid: str,
    pattern: dict[str, Any],
    *,
    read_only: bool = False,
    perms: tuple[str, ...] = (),
    action: str = "make_bucket_acl_private",
) -> Rule:
    rem = RemediationSpec(action=action, permissions=perms, description="d") if perms else None
    return dataclasses.replace(base, id=rid, event_pattern=pattern, read_only_events=read_only, remediation=rem)


API = "AWS API Call via CloudTrail"


def _ev(source: str, name: str, **detail: Any) -> dict[str, Any]:
    return {"source": source, "detail-type": API, "detail": {"eventName": name, **detail}}


def test_union_merges_sources_and_names_and_is_a_superset(catalog: tuple[Rule, ...]) -> None:
    base = catalog[0]
    rules = [
        _rule(
            base,
            "a",
            {"source": ["aws.s3"], "detail-type": [API], "detail": {"eventName": ["PutBucketAcl"], "x": ["1"]}},
        ),
        _rule(
            base, "b", {"source": ["aws.ec2"], "detail-type": [API], "detail": {"eventName": [{"prefix": "Authorize"}]}}
        ),
        _rule(
            base,
            "c",
            {
                "source": ["aws.kms"],
                "detail-type": [API],
                "detail": {"$or": [{"eventName": ["DisableKey"]}, {"eventName": ["ScheduleKeyDeletion"], "y": ["z"]}]},
            },
        ),
        _rule(base, "d", {"detail": {"userAgent": [{"wildcard": "*kali*"}]}}, read_only=True),
        _rule(
            base,
            "e",
            {"source": ["aws.guardduty"], "detail-type": [API], "detail": {"requestParameters": {"enable": [False]}}},
        ),
    ]
    fps = forwarding_patterns(rules)
    by_name = [f for f in fps if "detail" in f.pattern and "eventName" in f.pattern["detail"]]
    assert len(by_name) == 1
    assert by_name[0].pattern["source"] == ["aws.ec2", "aws.kms", "aws.s3"]
    assert {"prefix": "Authorize"} in by_name[0].pattern["detail"]["eventName"]
    # "e" has no eventName: it is forwarded by source alone, without widening a/b/c to every name.
    assert any(f.pattern == {"source": ["aws.guardduty"], "detail-type": [API]} for f in fps)
    # "d" has no source: forwarded verbatim, in the read-only state.
    assert any(f.pattern == rules[3].event_pattern and f.read_only_events for f in fps)
    forwarded = [
        _ev("aws.s3", "PutBucketAcl", x="1"),
        _ev("aws.ec2", "AuthorizeSecurityGroupIngress"),
        _ev("aws.kms", "ScheduleKeyDeletion", y="z"),
        _ev("aws.guardduty", "UpdateDetector", requestParameters={"enable": False}),
        _ev("aws.sts", "GetCallerIdentity", userAgent="aws-cli kali"),
    ]
    for ev in forwarded:
        assert any(moto_matches(f.pattern, ev) for f in fps), ev
    assert not any(moto_matches(f.pattern, _ev("aws.s3", "GetObject")) for f in fps)
    assert not any(moto_matches(f.pattern, _ev("aws.iam", "CreateUser")) for f in fps)


def test_union_splits_to_respect_the_pattern_quota(catalog: tuple[Rule, ...]) -> None:
    base = catalog[0]
    names = [f"SomeRatherLongEventName{i:04d}" for i in range(300)]
    rules = [_rule(base, "big", {"source": ["aws.iam"], "detail-type": [API], "detail": {"eventName": names}})]
    fps = forwarding_patterns(rules)
    assert len(fps) > 1
    assert all(pattern_size(f.pattern) <= PATTERN_SPLIT_CHARS <= MAX_PATTERN_CHARS for f in fps)
    assert sorted(n for f in fps for n in f.pattern["detail"]["eventName"]) == sorted(names)


def test_oversized_verbatim_pattern_is_split_exactly(catalog: tuple[Rule, ...]) -> None:
    """A pattern the union cannot merge is split at its largest list, in the read-only state it needs."""
    tools = [{"wildcard": f"*tool{i:05d}*"} for i in range(200)]
    huge = {"detail": {"userAgent": tools, "readOnly": [True, False]}}
    fps = forwarding_patterns([_rule(catalog[0], "huge", huge, read_only=True)])
    assert len(fps) > 1
    assert all(f.read_only_events and f.size <= PATTERN_SPLIT_CHARS for f in fps)
    assert [t for f in fps for t in f.pattern["detail"]["userAgent"]] == tools
    assert all(f.pattern["detail"]["readOnly"] == [True, False] for f in fps)


def test_unsplittable_oversized_pattern_is_refused(catalog: tuple[Rule, ...]) -> None:
    one_filter = {"detail": {"userAgent": [{"wildcard": "*" + "x" * 2000 + "*"}]}}
    with pytest.raises(ValueError, match="cannot be split"):
        forwarding_patterns([_rule(catalog[0], "huge", one_filter)])


def test_remediation_statements_cover_exactly_and_reject_wildcards(catalog: tuple[Rule, ...]) -> None:
    base = catalog[0]
    rules = [
        _rule(base, "a", {}, perms=("s3:PutBucketAcl", "ec2:DescribeSecurityGroups")),
        _rule(base, "b", {}, perms=("s3:PutBucketAcl", "ec2:RevokeSecurityGroupIngress")),
    ]
    sts = remediation_statements(rules, partition="aws", account="111122223333")
    actions = [a for s in sts for a in s["Action"]]
    assert sorted(actions) == ["ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupIngress", "s3:PutBucketAcl"]
    by_action = {a: s["Resource"] for s in sts for a in s["Action"]}
    assert by_action["ec2:DescribeSecurityGroups"] == "*"
    assert "arn:aws:ec2:*:111122223333:security-group/*" in by_action["ec2:RevokeSecurityGroupIngress"]
    with pytest.raises(ValueError, match="exact"):
        remediation_statements([_rule(base, "c", {}, perms=("s3:*",))], partition="aws", account="1")


def test_engine_credential_remediations_never_reach_the_member_role(catalog: tuple[Rule, ...]) -> None:
    """The root-key remediation runs as the engine (sts:AssumeRoot): its permissions stay off the member role."""
    base = catalog[0]
    member = _rule(base, "m", {}, perms=("s3:PutBucketAcl",))
    root = _rule(base, "r", {}, perms=("sts:AssumeRoot", "iam:DeleteAccessKey"), action="deactivate_root_access_key")
    assert remediation_actions([member, root]) == ["s3:PutBucketAcl"]
    assert engine_remediation_actions([member, root]) == ["iam:DeleteAccessKey", "sts:AssumeRoot"]
    statements = remediation_statements([member, root], partition="aws", account="111122223333")
    assert [a for s in statements for a in s["Action"]] == ["s3:PutBucketAcl"]
    # The real catalog: the member role carries no AssumeRoot and no access-key grants.
    assert not {"sts:AssumeRoot", "iam:DeleteAccessKey", "iam:ListAccessKeys"} & set(remediation_actions(catalog))
    assert "sts:AssumeRoot" in engine_remediation_actions(catalog)
    with pytest.raises(ValueError, match="not registered"):
        remediation_actions([_rule(base, "u", {}, perms=("s3:PutBucketAcl",), action="no_such_remediation")])


def test_input_template_is_json_for_any_event() -> None:
    tpl = engine_input_template("s3-bucket-acl-public")
    ev = {"id": "1", "detail": {"eventName": "PutBucketAcl", "note": 'quote " and \\ backslash'}}
    assert json.loads(tpl.replace("<aws.events.event.json>", json.dumps(ev))) == {
        "trailguard_rule": "s3-bucket-acl-public",
        "event": ev,
    }


def test_rule_names_fit_eventbridge_limit() -> None:
    long_id = "x" * 80
    name = central_rule_name(long_id)
    assert len(name) == 64
    assert name.startswith("tg-xxx")
    assert central_rule_name("x" * 79) != name
    assert central_rule_name("cloudtrail-stop-logging") == "tg-cloudtrail-stop-logging"


def test_missing_layer_fails_with_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import stacks.detection as det

    monkeypatch.setattr(det, "LAYER_DIR", tmp_path / "build" / "lambda-layer")
    monkeypatch.setattr(det, "ROOT", tmp_path)
    with pytest.raises(SystemExit) as exc:
        layer_dir()
    msg = str(exc.value)
    assert "\n" not in msg
    assert "run make setup" in msg
    assert "build/lambda-layer" in msg


def test_a_forwarding_pattern_eventbridge_would_reject_fails_the_synth(catalog: tuple[Rule, ...]) -> None:
    """Patterns reach member accounts' buses: one EventBridge refuses would fail the StackSet, not the synth."""
    bad = _rule(catalog[0], "bad", {"source": ["aws.s3"], "account": [{"wildcard": "1**"}]})
    with pytest.raises(ValueError, match=r"forwarding pattern rejected as EventBridge would: account: wildcard"):
        forwarding_patterns([bad])
    for fp in forwarding_patterns(catalog):  # the real union is valid
        assert fp.pattern
