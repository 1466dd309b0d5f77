"""Root access key (botocore Stubber: moto has no sts:AssumeRoot) and unit tests of settings, notify, clients."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from botocore.stub import Stubber
from engine_world import MEMBER, World, ct_event, force_remediate, rule_for
from trailguard_engine import clients
from trailguard_engine.clients import BOTO_CONFIG, ClientFactory
from trailguard_engine.events import CloudTrailEvent
from trailguard_engine.exceptions import AssumeRoleError, RuntimeConfigError
from trailguard_engine.model import Finding
from trailguard_engine.notify import Outcome, subject
from trailguard_engine.remediations.iam import ROOT_TASK_POLICY
from trailguard_engine.settings import Runtime, RuntimeLoader

ROOT_KEY = "AKIAROOTKEY000000001"
ROOT_CREDS = {
    "AccessKeyId": "ASIAROOTSESSION00001",
    "SecretAccessKey": "s",
    "SessionToken": "t",
    "Expiration": dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
}


def _root_event() -> dict[str, Any]:
    return ct_event(
        "iam",
        "CreateAccessKey",
        {},
        {"accessKey": {"accessKeyId": ROOT_KEY, "status": "Active", "userName": MEMBER}},
        identity={"type": "Root", "arn": f"arn:aws:iam::{MEMBER}:root", "accountId": MEMBER, "principalId": MEMBER},
    )


def _stub_root(monkeypatch: pytest.MonkeyPatch, *, assume_error: str | None, keys: list[str]) -> list[Stubber]:
    stubs: list[Stubber] = []
    inner = clients.new_client

    def new_client(service: str, *, region: str, credentials: dict[str, str] | None = None) -> Any:
        c = inner(service, region=region, credentials=credentials)
        if service == "sts" and credentials is None:
            s = Stubber(c)
            expected = {
                "TargetPrincipal": MEMBER,
                "TaskPolicyArn": {"arn": f"arn:aws:{ROOT_TASK_POLICY}"},
                "DurationSeconds": 900,
            }
            if assume_error:
                s.add_client_error("assume_root", assume_error, "not allowed", 403, expected_params=expected)
            else:
                s.add_response("assume_root", {"Credentials": ROOT_CREDS}, expected)
            s.activate()
            stubs.append(s)
        if service == "iam" and credentials is not None and credentials["AccessKeyId"] == ROOT_CREDS["AccessKeyId"]:
            s = Stubber(c)
            s.add_response(
                "list_access_keys",
                {"AccessKeyMetadata": [{"AccessKeyId": k, "Status": "Active", "UserName": MEMBER} for k in keys]},
                {},
            )
            if ROOT_KEY in keys:
                s.add_response("delete_access_key", {}, {"AccessKeyId": ROOT_KEY})
            s.activate()
            stubs.append(s)
        return c

    monkeypatch.setattr(clients, "new_client", new_client)
    return stubs


def test_root_key_is_deleted_through_a_privileged_root_session(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    stubs = _stub_root(monkeypatch, assume_error=None, keys=[ROOT_KEY])
    event = _root_event()
    rule = rule_for("deactivate_root_access_key", event)
    force_remediate(world, rule)
    out = world.invoke(event, rule.id)
    f = out["findings"][0]
    assert f["status"] == "remediated"
    assert "deactivation is not available" in f["detail"]
    for s in stubs:
        s.assert_no_pending_responses()  # AssumeRoot, ListAccessKeys and DeleteAccessKey all happened
    assert rule.remediation is not None
    for action in ("sts:AssumeRoot", "iam:ListAccessKeys", "iam:DeleteAccessKey"):
        assert action in rule.remediation.permissions


def test_root_key_unsupported_here_fails_with_an_alert(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _stub_root(monkeypatch, assume_error="AccessDenied", keys=[ROOT_KEY])
    event = _root_event()
    rule = rule_for("deactivate_root_access_key", event)
    force_remediate(world, rule)
    out = world.invoke(event, rule.id)  # not raised: retrying cannot help, a human must act
    f = out["findings"][0]
    assert f["status"] == "failed"
    assert f["detail"].startswith("unsupported here")
    [(subject_line, body)] = world.messages()
    assert "ACTION FAILED" in subject_line
    assert ROOT_KEY in body["action"]["detail"]


def test_root_key_already_gone_is_already_safe(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _stub_root(monkeypatch, assume_error=None, keys=["AKIAOTHERKEY00000001"])
    event = _root_event()
    rule = rule_for("deactivate_root_access_key", event)
    force_remediate(world, rule)
    assert world.invoke(event, rule.id)["findings"][0]["status"] == "already_safe"


# --------------------------------------------------------------------------- #
# settings
# --------------------------------------------------------------------------- #


def test_runtime_loader_caches_then_refreshes_and_keeps_the_last_good_document() -> None:
    docs = [json.dumps({"dry_run": True}), "{not json", json.dumps({"dry_run": False})]
    calls: list[str] = []

    def fetch(name: str) -> str:
        calls.append(name)
        return docs[len(calls) - 1]

    loader = RuntimeLoader(fetch, ttl=0.0)
    assert loader.load("/p").cfg.dry_run is True
    assert loader.load("/p").cfg.dry_run is True
    assert loader.last_error
    assert loader.load("/p").cfg.dry_run is False
    assert loader.last_error is None
    cached = RuntimeLoader(lambda n: (calls.append(n), json.dumps({"dry_run": True}))[1], ttl=60)
    before = len(calls)
    cached.load("/p")
    cached.load("/p")
    assert len(calls) == before + 1


def test_runtime_loader_raises_without_a_good_document_and_runbook_urls() -> None:
    with pytest.raises(RuntimeConfigError, match="dry_run"):
        RuntimeLoader(lambda n: json.dumps({"dry_run": "yes"})).load("/p")
    assert Runtime().runbook_url("x") == "docs/runbooks/x.md"
    assert Runtime.from_document({"runbook_base_url": "https://h/r/"}).runbook_url("x") == "https://h/r/x.md"
    with pytest.raises(RuntimeConfigError, match="runbook_base_url"):
        Runtime.from_document({"runbook_base_url": 3})


# --------------------------------------------------------------------------- #
# notify, clients
# --------------------------------------------------------------------------- #


def test_subject_is_short_ascii_and_single_line() -> None:
    f = Finding("r", "CRITICAL", "alert", None, "why")
    ev = CloudTrailEvent(ct_event("s3", "PutBucketAcl", {}))
    s = subject(f, None, ev, Outcome("alerted"))
    assert s.startswith("trailguard ALERT CRITICAL: r")
    long_rule = Finding("règle\n" + "x" * 200, "LOW", "alert", None, "why")
    s2 = subject(long_rule, None, ev, Outcome("failed"))
    assert len(s2) <= 100
    assert s2.isascii()
    assert "\n" not in s2
    assert s2.endswith("...")


def test_client_config_retries_with_backoff_and_short_timeouts() -> None:
    assert BOTO_CONFIG.retries == {"mode": "standard", "total_max_attempts": clients.MAX_ATTEMPTS}
    assert BOTO_CONFIG.connect_timeout <= 5
    assert BOTO_CONFIG.read_timeout <= 15


def test_member_session_refuses_bad_account_ids() -> None:
    f = ClientFactory(engine_region="us-east-1", role_name="trailguard-remediation")
    with pytest.raises(AssumeRoleError, match="bad account id"):
        f.member("not-an-account", "us-east-1")
    assert f.role_arn(MEMBER) == f"arn:aws:iam::{MEMBER}:role/trailguard-remediation"
    assert ClientFactory(engine_region="cn-north-1", role_name="r").role_arn(MEMBER).startswith("arn:aws-cn:")
