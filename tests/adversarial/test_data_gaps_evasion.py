"""The data, storage and impact gap rules (decisions/data_gaps.py, s3-bulk-delete-objects) against evasion.

All are alert-only: no record can make trailguard act in any account. What an attacker can try is to stay
under the radar: spread deletes over many role sessions, replay or pad records, hide a credential file or a
ransom note behind case or separators, name a queue or key in another form, or pass a look-alike account.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from trailguard_engine.catalog import rules_by_id
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.matcher import matches
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import ITEMS_PARAM, MAX_ITEMS_PER_EVENT, MemoryWindowStore, ThresholdGate

ACCOUNT = "111122223333"
RULES = rules_by_id()
MINE = (
    "s3-objects-deleted-in-bulk",
    "s3-bulk-delete-objects",
    "s3-credential-file-read",
    "s3-ransom-note-uploaded",
    "rds-snapshot-copied-out",
    "sqs-dead-letter-queue-purged",
    "ebs-snapshot-recovery-access-removed",
    "sns-external-subscription",
    "s3-default-encryption-external-kms-key",
)
EV = Evaluator(list(RULES.values()), RuntimeConfig())


def _role(session: str) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROA3EXAMPLEROLE0001:{session}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/DevOps/{session}",
        "accountId": ACCOUNT,
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/DevOps", "userName": "DevOps"}
        },
    }


def _copy(rule_id: str, i: int, *, request: dict[str, Any] | None = None, session: str = "s", sec: int = 0) -> dict:
    env = copy.deepcopy(RULES[rule_id].examples_positive[0])
    d = env["detail"]
    if request is not None:
        d["requestParameters"] = request
    d["userIdentity"] = _role(session)
    d["eventID"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rule_id}/{i}/{session}"))
    d["eventTime"] = env["time"] = f"2026-10-01T12:{sec // 60:02d}:{sec % 60:02d}Z"
    return env


def _gated(gate: ThresholdGate, env: dict, rule_id: str) -> str:
    result = EV.evaluate(env)
    gated = gate.apply_result(CloudTrailEvent(to_envelope(env)), result, EV.by_id)
    (f,) = [f for f in gated.findings if f.rule == rule_id]
    return f.decision


@pytest.mark.parametrize("rule_id", MINE)
def test_alert_only(rule_id: str) -> None:
    rule = RULES[rule_id]
    assert rule.remediation is None and rule.default_mode == "alert"


def test_deletes_spread_over_sessions_count_together() -> None:
    """Session names are the caller's choice: 50 objects deleted from 50 sessions of one role still fire."""
    gate = ThresholdGate(MemoryWindowStore(), clock=None)
    rid = "s3-objects-deleted-in-bulk"
    got = [
        _gated(gate, _copy(rid, i, request={"bucketName": "b", "key": f"k/{i}"}, session=f"s{i}", sec=i * 10), rid)
        for i in range(50)
    ]
    assert got.index("alert") == 49 and got.count("alert") == 1


def test_replayed_or_repeated_deletes_do_not_reach_the_threshold() -> None:
    """The same object deleted again (or the same record redelivered) is one item, not many."""
    gate = ThresholdGate(MemoryWindowStore(), clock=None)
    rid = "s3-objects-deleted-in-bulk"
    same = [_copy(rid, i, request={"bucketName": "b", "key": "k/same"}, sec=i) for i in range(80)]
    assert {_gated(gate, e, rid) for e in same} == {"skip"}
    again = _copy(rid, 999, request={"bucketName": "b", "key": "k/x"})
    assert {_gated(gate, again, rid) for _ in range(80)} == {"skip"}


def test_keyless_delete_objects_calls_fire_across_sessions() -> None:
    """Ten DeleteObjects calls (each up to 1,000 keys, none listed) by one role, from ten sessions."""
    gate = ThresholdGate(MemoryWindowStore(), clock=None)
    rid = "s3-bulk-delete-objects"
    req = {"bucketName": "orders", "delete": ""}
    got = [_gated(gate, _copy(rid, i, request=req, session=f"x{i}", sec=i * 30), rid) for i in range(10)]
    assert got == ["skip"] * 9 + ["alert"]


def test_a_padded_delete_objects_record_is_bounded() -> None:
    """A record naming 100,000 keys adds at most MAX_ITEMS_PER_EVENT items (the window item stays small)."""
    rid = "s3-bulk-delete-objects"
    keys = [{"Key": f"k{i}"} for i in range(100_000)]
    env = _copy(rid, 1, request={"bucketName": "b", "Delete": {"Object": keys}})
    (f,) = [f for f in EV.evaluate(env).findings if f.rule == rid]
    assert f.decision == "alert" and len(f.params[ITEMS_PARAM]) == MAX_ITEMS_PER_EVENT


@pytest.mark.parametrize(
    "key",
    ["home/alice/.aws/credentials", "HOME/ALICE/.AWS/CREDENTIALS", "x/Id_Rsa", "x/ID_ED25519", "app/.ENV",
     "app/.env.production", ".env.local", "certs/TLS.PEM", "k/a.P12", "x/.Kube/Config", "x/.DOCKER/config.json"],
)  # fmt: skip
def test_credential_file_spellings_reach_the_decision_and_fire(key: str) -> None:
    rid = "s3-credential-file-read"
    env = _copy(rid, 1, request={"bucketName": "b", "key": key})
    assert matches(RULES[rid].event_pattern, env), "the pattern must select this spelling"
    (f,) = [f for f in EV.evaluate(env).findings if f.rule == rid]
    assert f.decision == "alert", f.reason


@pytest.mark.parametrize(
    "key",
    ["HOW_TO_DECRYPT.txt", "how-to-decrypt.TXT", "H.O.W T.O D.E.C.R.Y.P.T.txt", "dir/RaNsOm.html",
     "READ_ME_TO_RECOVER_FILES.txt", "Your-Files.Are.Encrypted.txt"],
)  # fmt: skip
def test_ransom_note_separators_and_case_do_not_hide_it(key: str) -> None:
    rid = "s3-ransom-note-uploaded"
    env = _copy(rid, 1, request={"bucketName": "b", "key": key})
    (f,) = [f for f in EV.evaluate(env).findings if f.rule == rid]
    assert f.decision == "alert", f.reason


@pytest.mark.parametrize(
    "kms",
    ["arn:aws:kms:us-east-1:1111222233334:key/x", "arn:aws:kms:us-east-1:111122223333 :key/x",
     "arn:aws:kms:us-east-1:999988887777:alias/ours", "arn:aws-us-gov:kms:us-east-1:999988887777:key/x"],
)  # fmt: skip
def test_look_alike_key_accounts_are_outside(kms: str) -> None:
    """A 13-digit, padded or foreign account in the key ARN is not ours: the copy alerts."""
    rid = "rds-snapshot-copied-out"
    env = _copy(rid, 1, request={"sourceDBSnapshotIdentifier": "orders", "kmsKeyId": kms})
    env["region"] = env["detail"]["awsRegion"] = "us-east-1"
    (f,) = [f for f in EV.evaluate(env).findings if f.rule == rid]
    assert f.decision == "alert", f.reason


def test_region_case_does_not_hide_a_cross_region_copy() -> None:
    rid = "rds-snapshot-copied-out"
    env = _copy(rid, 1, request={"sourceDBSnapshotIdentifier": "orders", "SourceRegion": "US-WEST-2"})
    env["region"] = env["detail"]["awsRegion"] = "us-east-1"
    (f,) = [f for f in EV.evaluate(env).findings if f.rule == rid]
    assert f.decision == "alert", f.reason


@pytest.mark.parametrize(
    "queue",
    [f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/Orders-DLQ", f"https://queue.amazonaws.com/{ACCOUNT}/x-dead-letter",
     f"arn:aws:sqs:us-east-1:{ACCOUNT}:TRAILGUARD-forward-dlq", f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/q%2Ddlq"],
)  # fmt: skip
def test_queue_forms(queue: str) -> None:
    rid = "sqs-dead-letter-queue-purged"
    env = _copy(rid, 1, request={"queueUrl": queue})
    (f,) = [f for f in EV.evaluate(env).findings if f.rule == rid]
    assert f.decision == "alert", f.reason


def test_forged_terraform_agent_does_not_silence_a_person() -> None:
    """A Terraform user agent is forgeable: an IAM user subscribing an outside address still alerts."""
    rid = "sns-external-subscription"
    env = copy.deepcopy(RULES[rid].examples_positive[0])
    env["detail"]["userAgent"] = "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io)"
    (f,) = [f for f in EV.evaluate(env).findings if f.rule == rid]
    assert f.decision == "alert", f.reason


@pytest.mark.parametrize("rule_id", MINE)
def test_odd_field_types_never_break_a_decision(rule_id: str) -> None:
    """Crafted types in the request (lists, numbers, nulls) give a verdict, never an exception."""
    for odd in (None, 7, "x", [], {}, [None, 1], {"items": "x"}, "9" * 5000):
        env = copy.deepcopy(RULES[rule_id].examples_positive[0])
        req = env["detail"]["requestParameters"]
        for k in list(req):
            env2 = copy.deepcopy(env)
            env2["detail"]["requestParameters"][k] = odd
            for f in EV.evaluate(env2).findings:
                assert f.decision in ("alert", "skip", "notice")
                assert f.action is None if f.rule in MINE else True


@pytest.mark.parametrize(
    "config",
    [{"rule": {"applyServerSideEncryptionByDefault": {"kmsMasterKeyId": "arn:aws:kms:us-east-1:999988887777:key/k"}}},
     {"RULE": [{"APPLYSERVERSIDEENCRYPTIONBYDEFAULT": {"KMSMASTERKEYID": "arn:aws:kms:us-east-1:999988887777:key/k"}}]},
     {"Rule": [{"ApplyServerSideEncryptionByDefault": {"KMSMasterKeyID": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"}},
               {"ApplyServerSideEncryptionByDefault": {"KMSMasterKeyID": " arn:aws:kms:us-east-1:999988887777:key/k "}}]}],
)  # fmt: skip
def test_encryption_body_case_and_extra_rules_do_not_hide_an_outside_key(config: dict) -> None:
    rid = "s3-default-encryption-external-kms-key"
    env = _copy(rid, 1, request={"bucketName": "b", "ServerSideEncryptionConfiguration": config})
    (f,) = [f for f in EV.evaluate(env).findings if f.rule == rid]
    assert f.decision == "alert", f.reason
