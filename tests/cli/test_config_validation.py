"""Config validation (issue 17): every mistake is rejected, or warned about, with the fix in the message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import ROOT
from typer.testing import CliRunner

from trailguard.cli import _load_commands, app
from trailguard.config import config_warnings, json_schema, load_config, parse_config
from trailguard.exceptions import ConfigError

_load_commands()
runner = CliRunner()
ORG = (
    "mode: organization\n"
    "organization:\n"
    "  org_id: o-a1b2c3d4e5\n"
    "  management_account_id: {mgmt}\n"
    '  log_archive_account_id: "222222222222"\n'
    '  security_tooling_account_id: "333333333333"\n'
    "  target_ous: [r-a1b2]\n"
)


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def validate(*args: str) -> Any:
    return runner.invoke(app, ["validate-config", *args])


def test_unknown_rule_id_in_rule_modes_suggests_the_catalog_id(tmp_path: Path) -> None:
    path = write(tmp_path, "rule_modes:\n  cloudtrail-stop-loging: remediate\n")
    [line] = problems_of(path)
    assert "rule_modes: 'cloudtrail-stop-loging' is not a catalog rule id" in line
    assert "did you mean: cloudtrail-stop-logging" in line
    assert "trailguard rules" in line


def test_known_rule_ids_in_rule_modes_are_accepted() -> None:
    assert parse_config({"rule_modes": {"cloudtrail-stop-logging": "alert"}}).rule_modes


def test_unknown_rule_id_in_caller_modes_suggests_too() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"callers": {"modes": {"cloudtrail-stop-loging": {"human": "alert"}}}})
    assert "did you mean: cloudtrail-stop-logging" in info.value.problems[0]


def test_duplicate_yaml_keys_are_rejected_with_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "dry_run: true\nhome_region: us-east-1\ndry_run: false\n")
    [line] = problems_of(path)
    assert line.startswith(f"{path}: line 3:")
    assert "duplicate key 'dry_run' (first on line 1)" in line


def test_duplicate_keys_in_a_nested_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "rule_modes:\n  cloudtrail-stop-logging: alert\n  cloudtrail-stop-logging: off\n")
    [line] = problems_of(path)
    assert "line 3" in line
    assert "duplicate key 'cloudtrail-stop-logging'" in line


def test_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    text = (
        "x-base: &base {cloudwatch_logs_days: 400, archive_days: 2557}\nretention:\n  <<: *base\n  archive_days: 3000\n"
    )
    with pytest.raises(ConfigError) as info:  # x-base is an unknown key: the merge itself must not be the error
        load_config(write(tmp_path, text))
    assert all("duplicate" not in p for p in info.value.problems)
    assert any("x-base" in p for p in info.value.problems)


def test_governed_regions_without_us_east_1_is_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "home_region: eu-west-1\ngoverned_regions: [eu-west-1, eu-central-1]\n")
    cfg = load_config(path)
    [warning] = config_warnings(cfg)
    assert "us-east-1" in warning
    assert "add us-east-1 to governed_regions" in warning
    res = validate(str(path))
    assert res.exit_code == 0
    assert f"warning: {path}: governed_regions: us-east-1 is not governed" in res.stderr
    assert f"ok: {path}" in res.stdout


def test_the_defaults_and_examples_have_no_warning() -> None:
    assert config_warnings(load_config(None)) == []
    for example in sorted((ROOT / "config").glob("example-*.yaml")):
        assert config_warnings(load_config(example)) == [], example


def test_management_account_as_delegated_admin_is_rejected(tmp_path: Path) -> None:
    text = ORG.format(mgmt='"111111111111"') + '  delegated_admin_account_id: "111111111111"\n'
    [line] = problems_of(write(tmp_path, text))
    assert "organization: delegated_admin_account_id: the management account cannot be" in line
    assert "name a member account" in line


def test_a_member_delegated_admin_is_accepted(tmp_path: Path) -> None:
    text = ORG.format(mgmt='"111111111111"') + '  delegated_admin_account_id: "333333333333"\n'
    assert load_config(write(tmp_path, text)).org.delegated_admin_account_id == "333333333333"


def test_object_lock_longer_than_the_archive_expiry_is_rejected(tmp_path: Path) -> None:
    text = "retention:\n  archive_days: 400\nfeatures:\n  object_lock:\n    enabled: true\n    days: 500\n"
    [line] = problems_of(write(tmp_path, text))
    assert "features.object_lock.days (500) is longer than retention.archive_days (400)" in line
    assert "lower object_lock.days or raise retention.archive_days" in line


def test_object_lock_within_the_expiry_or_disabled_is_accepted(tmp_path: Path) -> None:
    ok = "retention:\n  archive_days: 400\nfeatures:\n  object_lock:\n    enabled: true\n    days: 400\n"
    assert load_config(write(tmp_path, ok, "ok.yaml")).features.object_lock.days == 400
    off = "retention:\n  archive_days: 400\nfeatures:\n  object_lock:\n    enabled: false\n    days: 500\n"
    assert not load_config(write(tmp_path, off, "off.yaml")).features.object_lock.enabled


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("123456789012", 'quote it, "123456789012"'),  # read as an int
        ("012345678901", None),  # 8 and 9 are not octal digits: YAML keeps a string, which is valid
        ("011111111111", "read as the number 1227133513"),  # octal
        ("0111_1111_1111", "read as the number"),  # YAML 1.1 allows underscores in numbers
    ],
)
def test_unquoted_account_id_says_quote_it(tmp_path: Path, written: str, expected: str | None) -> None:
    path = write(tmp_path, ORG.format(mgmt=written))
    if expected is None:
        assert load_config(path).org.management_account_id == written
        return
    [line] = problems_of(path)
    assert "organization.management_account_id:" in line
    assert expected in line
    assert "quote" in line


def test_unquoted_account_id_as_a_mapping_key(tmp_path: Path) -> None:
    path = write(tmp_path, "intended_exposure:\n  public_ports_by_account:\n    123456789012: [51820/udp]\n")
    problems = problems_of(path)
    assert any('quote it, "123456789012"' in p for p in problems), problems


@pytest.mark.parametrize(
    ("region", "partition"),
    [("us-gov-west-1", "GovCloud"), ("cn-north-1", "China"), ("cn-northwest-1", "China")],
)
def test_other_partitions_are_not_supported_yet(region: str, partition: str) -> None:
    for doc in (
        {"governed_regions": ["us-east-1", region]},
        {"home_region": region, "governed_regions": [region]},
        {"exemptions": {"regions": [region]}},
    ):
        with pytest.raises(ConfigError) as info:
            parse_config(doc, "cfg.yaml")
        line = info.value.problems[0]
        assert f"'{region}' is in the" in line
        assert partition in line
        assert "partition not supported yet" in line


def test_a_misspelt_region_gets_a_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"governed_regions": ["us-east-1", "eu-west-01"]}, "cfg.yaml")
    assert "did you mean: eu-west-1" in info.value.problems[0]


def test_non_utf8_file_is_a_clear_error(tmp_path: Path) -> None:
    """Bug: validate-config on a Latin-1 file raised UnicodeDecodeError."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("dry_run: true\nnotifications:\n  emails: [s\u00e9curit\u00e9@example.com]\n".encode("latin-1"))
    [line] = problems_of(path)
    assert line == (
        f"{path}: line 3: not UTF-8 text (byte 0xe9); save the file as UTF-8 (for example: iconv -f latin1 -t utf-8)"
    )
    res = validate(str(path))
    assert res.exit_code == 1
    assert res.stderr == f"error: {line}\n"


def test_write_schema_into_a_missing_directory_exits_2(tmp_path: Path) -> None:
    """Bug: ``validate-config --write-schema /nonexistent/dir/x.json`` raised FileNotFoundError."""
    target = tmp_path / "nonexistent" / "x.json"
    res = validate("--write-schema", str(target))
    assert res.exit_code == 2
    assert res.stderr.startswith(f"error: cannot write the schema to {target}")
    assert "create the directory first" in res.stderr
    assert not target.exists()


def test_write_schema_still_writes(tmp_path: Path) -> None:
    target = tmp_path / "schema.json"
    res = validate("--write-schema", str(target))
    assert res.exit_code == 0
    assert json.loads(target.read_text(encoding="utf-8")) == json.loads(json.dumps(json_schema()))


def test_committed_schema_is_current() -> None:
    committed = json.loads((ROOT / "config" / "trailguard.schema.json").read_text(encoding="utf-8"))
    assert committed == json.loads(json.dumps(json_schema()))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dry_runn: true\n", "dry_runn: unknown key (did you mean: dry_run?)"),
        ("retention:\n  archive_day: 400\n", "retention.archive_day: unknown key (did you mean: archive_days?)"),
        (
            "features:\n  data_events:\n    lamda: true\n",
            "features.data_events.lamda: unknown key (did you mean: lambda?)",
        ),
        ("zzz: 1\n", "zzz: unknown key (check the spelling"),
    ],
)
def test_unknown_config_keys_suggest_the_known_key(tmp_path: Path, text: str, expected: str) -> None:
    [line] = problems_of(write(tmp_path, text))
    assert expected in line
