"""Issue 20: a new account is queryable in Athena without ``cdk deploy``.

``trailguard-athena-accounts`` (stacks/constructs/query_layer.AccountProjectionSync, code in
trailguard_engine.athena_accounts) adds the organization's accounts to the ``account`` enum of the
Glue tables. The moto test creates the tables exactly as the synthesized template defines them,
adds an account to the (moto) organization, runs the handler and compares the tables.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.events.models import EventPattern
from tooling_synth import Tooling
from trailguard_engine import athena_accounts

from stacks.constructs.query_layer import ACCOUNT_SYNC_HANDLER, ACCOUNT_SYNC_ROLE_NAME, PROJECTION_START

REGION = "us-east-1"
ORG = "Organization"


def _resolve(value: Any, params: dict[str, Any]) -> Any:
    """Resolve the template's Fn::Join / Ref (parameters by their defaults) into plain values."""
    if isinstance(value, list):
        return [_resolve(v, params) for v in value]
    if isinstance(value, dict):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            flat: list[str] = []
            parts = _resolve(parts, params)  # a list, or a list-valued Ref (CommaDelimitedList)
            for p in parts:
                r = _resolve(p, params)
                flat.extend(r if isinstance(r, list) else [r])
            return sep.join(flat)
        if "Ref" in value:
            p = params[value["Ref"]]
            return p["Default"].split(",") if p["Type"] == "CommaDelimitedList" else p["Default"]
        return {k: _resolve(v, params) for k, v in value.items()}
    return value


def _template_tables(tooling: Tooling) -> dict[str, dict[str, Any]]:
    template = tooling.templates[ORG]
    params = template.get("Parameters", {})
    return {
        r["Properties"]["TableInput"]["Name"]: _resolve(r["Properties"], params)
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Glue::Table"
    }


def _sync_function(tooling: Tooling) -> dict[str, Any]:
    (fn,) = [
        r["Properties"]
        for r in tooling.resources(ORG, "AWS::Lambda::Function")
        if r["Properties"]["Handler"] == ACCOUNT_SYNC_HANDLER
    ]
    return fn


@pytest.fixture
def deployed(tooling: Tooling, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto Glue + Organizations with the tables as the template creates them, and the function's env."""
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for k, v in _sync_function(tooling)["Environment"]["Variables"].items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        glue = boto3.client("glue", region_name=REGION)
        org = boto3.client("organizations", region_name=REGION)
        org.create_organization(FeatureSet="ALL")
        tables = _template_tables(tooling)
        database = next(iter(tables.values()))["DatabaseName"]
        glue.create_database(DatabaseInput={"Name": database})
        for props in tables.values():
            glue.create_table(DatabaseName=props["DatabaseName"], TableInput=props["TableInput"])
        yield {"glue": glue, "org": org, "database": database, "tables": tables}


def _table(glue: Any, database: str, name: str) -> dict[str, Any]:
    return glue.get_table(DatabaseName=database, Name=name)["Table"]


def _values(table: dict[str, Any]) -> list[str]:
    return table["Parameters"]["projection.account.values"].split(",")


def test_new_account_reaches_every_table_without_a_deploy(deployed: dict[str, Any]) -> None:
    glue, org, database = deployed["glue"], deployed["org"], deployed["database"]
    before = {name: _table(glue, database, name) for name in deployed["tables"]}
    seeded = {name: _values(t) for name, t in before.items()}
    assert all(seeded.values())  # the deployed seed (QueryAccountIds' default)

    status = org.create_account(Email="new@example.com", AccountName="joined-today")["CreateAccountStatus"]
    new_account = org.describe_create_account_status(CreateAccountRequestId=status["Id"])["CreateAccountStatus"][
        "AccountId"
    ]
    every_org_account = {a["Id"] for a in org.list_accounts()["Accounts"]}
    assert new_account not in set().union(*seeded.values())

    result = athena_accounts.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)

    assert set(result["tables"]) == set(deployed["tables"])
    for name, old in before.items():
        new = _table(glue, database, name)
        values = _values(new)
        assert new_account in values
        assert set(seeded[name]) <= set(values), "an account that was there must stay (closed accounts' logs)"
        assert set(values) == set(seeded[name]) | every_org_account
        assert values == sorted(values) and len(values) == len(set(values))
        # Nothing else in the table changed.
        strip = ("UpdateTime", "VersionId")
        old_rest, new_rest = copy.deepcopy(old), copy.deepcopy(new)
        for t in (old_rest, new_rest):
            t["Parameters"].pop("projection.account.values")
            for k in strip:
                t.pop(k, None)
        assert new_rest == old_rest
        # ... and the template's other parameters are still exactly the template's.
        template_params = dict(deployed["tables"][name]["TableInput"]["Parameters"])
        template_params.pop("projection.account.values")
        assert {k: v for k, v in new["Parameters"].items() if k != "projection.account.values"} == template_params


def test_second_run_is_a_no_op(deployed: dict[str, Any]) -> None:
    glue, database = deployed["glue"], deployed["database"]
    athena_accounts.handler({}, None)
    versions = {name: _table(glue, database, name).get("VersionId") for name in deployed["tables"]}
    result = athena_accounts.handler({}, None)
    assert all(not r["updated"] and r["added"] == [] for r in result["tables"].values())
    assert {name: _table(glue, database, name).get("VersionId") for name in deployed["tables"]} == versions


def test_accounts_gone_from_the_organization_stay_queryable(deployed: dict[str, Any]) -> None:
    """A closed or departed account is not in ListAccounts any more; its logs still are in the archive."""
    glue, org, database = deployed["glue"], deployed["org"], deployed["database"]
    status = org.create_account(Email="leaver@example.com", AccountName="leaver")["CreateAccountStatus"]
    leaver = org.describe_create_account_status(CreateAccountRequestId=status["Id"])["CreateAccountStatus"]["AccountId"]
    athena_accounts.handler({}, None)
    org.remove_account_from_organization(AccountId=leaver)
    assert leaver not in {a["Id"] for a in org.list_accounts()["Accounts"]}
    athena_accounts.handler({}, None)
    for name in deployed["tables"]:
        assert leaver in _values(_table(glue, database, name))


def test_a_table_switched_away_from_enum_is_left_alone(deployed: dict[str, Any]) -> None:
    glue, database = deployed["glue"], deployed["database"]
    name = next(iter(deployed["tables"]))
    table = _table(glue, database, name)
    params = dict(table["Parameters"], **{"projection.account.type": "injected"})
    params.pop("projection.account.values")
    glue.update_table(
        DatabaseName=database,
        TableInput={k: table[k] for k in ("Name", "Parameters", "PartitionKeys", "StorageDescriptor")}
        | {"Parameters": params},
    )
    with pytest.raises(athena_accounts.AccountSyncError, match="not 'enum'"):
        athena_accounts.handler({}, None)
    assert "projection.account.values" not in _table(glue, database, name)["Parameters"]
    # ... and the other table was still brought up to date before the run failed.
    org_accounts = {a["Id"] for a in deployed["org"].list_accounts()["Accounts"]}
    for other in set(deployed["tables"]) - {name}:
        assert org_accounts <= set(_values(_table(glue, database, other)))


# --------------------------------------------------------------------------- #
# template: the function, its permissions, triggers, DLQ and alarms
# --------------------------------------------------------------------------- #


def _flat(value: Any) -> str:
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return str(sep).join(_flat(p) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    return value if isinstance(value, str) else json.dumps(value)


def _resources(tooling: Tooling, stack: str) -> dict[str, dict[str, Any]]:
    return dict(tooling.templates[stack]["Resources"])


def test_standalone_has_no_account_sync(tooling: Tooling) -> None:
    assert not [
        r
        for r in tooling.resources("Standalone", "AWS::Lambda::Function")
        if r["Properties"]["Handler"] == ACCOUNT_SYNC_HANDLER
    ]


def test_date_projection_is_open_ended(tooling: Tooling) -> None:
    for stack in ("Standalone", ORG):
        params = tooling.templates[stack]["Parameters"]
        start = params["QueryProjectionStart"]
        assert start["Default"] == PROJECTION_START <= "2013/11/13"  # CloudTrail's launch: no log can be older
        for t in tooling.resources(stack, "AWS::Glue::Table"):
            rng = t["Properties"]["TableInput"]["Parameters"]["projection.date.range"]
            assert rng == {"Fn::Join": ["", [{"Ref": "QueryProjectionStart"}, ",NOW"]]}


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2013/11/01", True),
        ("2024/02/29", True),
        ("2013-11-01", False),  # not the projection's yyyy/MM/dd
        ("2013/13/01", False),
        ("2013/11/01,NOW", False),  # would smuggle a second bound into the range
        ("NOW-3YEARS", False),
        ("1999/12/31", False),
    ],
)
def test_projection_start_parameter_is_validated(tooling: Tooling, value: str, ok: bool) -> None:
    import re

    pattern = tooling.templates[ORG]["Parameters"]["QueryProjectionStart"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is ok


def test_sync_role_is_least_privilege(tooling: Tooling) -> None:
    resources = _resources(tooling, ORG)
    fn = _sync_function(tooling)
    role_id = fn["Role"]["Fn::GetAtt"][0]
    role = resources[role_id]["Properties"]
    assert role["RoleName"] == ACCOUNT_SYNC_ROLE_NAME
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    policies = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
    ]
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    by_sid = {s.get("Sid"): s for s in statements}
    glue = by_sid["ReadAndUpdateQueryTables"]
    assert sorted(glue["Action"]) == ["glue:GetTable", "glue:UpdateTable"]
    prefix = "arn:aws:glue:us-east-1:333333333333"
    assert sorted(_flat(r) for r in glue["Resource"]) == [
        f"{prefix}:catalog",
        f"{prefix}:database/trailguard",
        f"{prefix}:table/trailguard/cloudtrail",
        f"{prefix}:table/trailguard/cloudtrail_account_trails",
    ]
    org = by_sid["ListOrganizationAccounts"]
    assert org["Action"] == "organizations:ListAccounts" and org["Resource"] == "*"
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    # Nothing on the archive (s3), no identity changes, no other Glue or Organizations call.
    allowed = {"glue:GetTable", "glue:UpdateTable", "organizations:ListAccounts", "logs:CreateLogStream",
               "logs:PutLogEvents", "sqs:SendMessage"}  # fmt: skip
    assert {a for a in actions if not a.startswith("kms:")} == allowed
    kms = [s for s in statements if any(a.startswith("kms:") for a in s["Action"])]
    key_ids = {k for k, r in resources.items() if r["Type"] == "AWS::KMS::Key"}
    assert all(s["Resource"]["Fn::GetAtt"][0] in key_ids for s in kms)  # the stack's own key, never *
    assert all(s["Effect"] == "Allow" for s in statements)


def test_sync_function_settings_dlq_and_alarms(tooling: Tooling) -> None:
    resources = _resources(tooling, ORG)
    fn = _sync_function(tooling)
    assert fn["ReservedConcurrentExecutions"] == 1
    assert fn["Timeout"] == 300  # a large organization's ListAccounts pages (20 accounts each), throttled
    assert fn["Runtime"] == "python3.12"
    dlq_id = fn["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
    assert resources[dlq_id]["Type"] == "AWS::SQS::Queue"
    assert "KmsMasterKeyId" in resources[dlq_id]["Properties"]
    (invoke_config,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert invoke_config["MaximumRetryAttempts"] == 2
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    dlq_alarms = [
        a for a in alarms
        if a.get("Namespace") == "AWS/SQS" and {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}
        in a["Dimensions"]
    ]  # fmt: skip
    assert len(dlq_alarms) == 1 and dlq_alarms[0]["Threshold"] == 1
    fn_id = next(k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function" and r["Properties"] is fn)
    error_alarms = [
        a
        for a in alarms
        if a.get("MetricName") == "Errors" and {"Name": "FunctionName", "Value": {"Ref": fn_id}} in a["Dimensions"]
    ]
    assert len(error_alarms) == 1
    topics = {k for k, r in resources.items() if r["Type"] == "AWS::SNS::Topic"}
    for alarm in (*dlq_alarms, *error_alarms):
        assert [a["Ref"] for a in alarm["AlarmActions"]] and {a["Ref"] for a in alarm["AlarmActions"]} <= topics


def test_sync_triggers_schedule_and_own_deploys(tooling: Tooling) -> None:
    resources = _resources(tooling, ORG)
    fn_id = next(
        k for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == ACCOUNT_SYNC_HANDLER
    )  # fmt: skip
    rules = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule"
        and any(t["Arn"] == {"Fn::GetAtt": [fn_id, "Arn"]} for t in r["Properties"]["Targets"])
    ]
    schedules = [r for r in rules if "ScheduleExpression" in r]
    patterns = [r["EventPattern"] for r in rules if "EventPattern" in r]
    assert [s["ScheduleExpression"] for s in schedules] == ["rate(1 hour)"]
    assert patterns == [
        {
            "source": ["aws.cloudformation"],
            "detail-type": ["CloudFormation Stack Status Change"],
            "detail": {
                "stack-id": [{"Ref": "AWS::StackId"}],
                "status-details": {"status": ["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"]},
            },
        }
    ]
    assert all("EventBusName" not in r for r in rules)  # the account's default bus, not the central bus
    # The documented event shape (CloudFormation User Guide, "Stack Status Change event detail").
    own = "arn:aws:cloudformation:us-east-1:333333333333:stack/TrailguardSecurityTooling/1a2b"
    pattern = EventPattern.load(json.dumps(patterns[0]).replace('{"Ref": "AWS::StackId"}', json.dumps(own)))

    def event(stack_id: str, status: str) -> dict[str, Any]:
        return {
            "source": "aws.cloudformation",
            "detail-type": "CloudFormation Stack Status Change",
            "account": "333333333333",
            "region": REGION,
            "resources": [stack_id],
            "detail": {"stack-id": stack_id, "status-details": {"status": status, "status-reason": ""}},
        }

    assert pattern.matches_event(event(own, "UPDATE_COMPLETE"))
    assert pattern.matches_event(event(own, "UPDATE_ROLLBACK_COMPLETE"))
    assert not pattern.matches_event(event(own, "UPDATE_IN_PROGRESS"))
    assert not pattern.matches_event(event(own.replace("TrailguardSecurityTooling", "Other"), "UPDATE_COMPLETE"))


def test_handler_runs_without_the_dependency_layer() -> None:
    """The function is deployed without the detection stack's layer: boto3 (in the runtime) and stdlib only."""
    import subprocess
    import sys
    from pathlib import Path

    lambdas = Path(__file__).resolve().parents[2] / "lambdas"
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(lambdas)!r})\n"
        "for blocked in ('aws_lambda_powertools', 'pydantic', 'yaml', 'trailguard'):\n"
        "    sys.modules[blocked] = None\n"
        "import trailguard_engine.athena_accounts\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_nothing_reserved_when_the_engine_reserves_nothing(tmp_path: Path) -> None:
    """engine.reserved_concurrency null (a low Lambda quota): the sync function reserves nothing either, and
    cdk-nag's concurrency finding is acknowledged with the reason (the synth raises on an unacknowledged one)."""
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

    from stacks import names
    from stacks.security_tooling import SecurityToolingStack
    from trailguard.config import load_config, parse_config

    root = Path(__file__).resolve().parents[2]
    base = load_config(root / "config" / "example-organization.yaml")
    cfg = parse_config({**base.model_dump(mode="json", exclude_unset=True), "engine": {"reserved_concurrency": None}})
    app = cdk.App(outdir=str(tmp_path), context=json.loads((root / "cdk.json").read_text())["context"])
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))
    accounts = names.Accounts.for_config(cfg)
    env = cdk.Environment(account=accounts.security, region=cfg.home_region)
    stack = SecurityToolingStack(app, "OrganizationUnreserved", cfg=cfg, accounts=accounts, env=env)
    template = app.synth().get_stack_artifact(stack.artifact_id).template
    (fn,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == ACCOUNT_SYNC_HANDLER
    ]
    assert "ReservedConcurrentExecutions" not in fn
