"""The attack examples that remediated before issue 15 still remediate through the engine, against live state.

Issue 15 moved checks into the remediations (a bucket must be public *now*, a security-group rule must not
be intended exposure, ...). Those checks must spare benign changes, not attacks: every positive example of
a remediating rule whose pre-#15 decision was ``remediate`` (``attack_baseline.json``) is replayed, as
written in the catalog, against a moto world where what the attacker did is really there. The engine must
decide ``remediate`` and change something in the member account.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from engine_world import REGION, FakeContext, World
from precision_helpers import LiveWorld, is_write, replace_literals
from trailguard_engine import handler
from trailguard_engine.catalog import load_catalog

BASELINE = json.loads((Path(__file__).resolve().parent / "attack_baseline.json").read_text())["rules"]
RULES = {r.id: r for r in load_catalog()}
PUBLIC_READ = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::acme-reports/*"}
    ],
}


def _sg(*rules: tuple[str, int, int, str]) -> list[dict[str, Any]]:
    return [
        {"kind": "vpc", "ref": "v", "cidr": "10.9.0.0/16"},
        {
            "kind": "security_group",
            "ref": "g",
            "vpc": "v",
            "name": "app",
            "ingress": [{"proto": p, "from": lo, "to": hi, "cidr": c} for p, lo, hi, c in rules],
        },
    ]


#: (rule id, example index) -> the live state the attack left, and the example's literal IDs -> setup refs.
LIVE: dict[tuple[str, int], tuple[list[dict[str, Any]], dict[str, str]]] = {
    ("ec2-security-group-ingress-public", 0): (
        _sg(("tcp", 443, 443, "0.0.0.0/0"), ("tcp", 22, 22, "0.0.0.0/0")),
        # the response names the rules AWS created: the engine revokes those (by ID and by spec)
        {
            "sg-0a1b2c3d4e5f60718": "sg:g",
            "sgr-0443aaaaaaaaaaaaa": "sgr:g:tcp:443:0.0.0.0/0",
            "sgr-0022bbbbbbbbbbbbb": "sgr:g:tcp:22:0.0.0.0/0",
        },
    ),
    ("ec2-security-group-ingress-public", 1): (
        _sg(("-1", -1, -1, "::/0")),
        {"sg-0a1b2c3d4e5f60718": "sg:g", "sgr-0allcccccccccccc": "sgr:g:-1:*:::/0"},
    ),
    ("ec2-security-group-ingress-public", 2): (
        _sg(("tcp", 3306, 3306, "0.0.0.0/0")),
        {"sg-0a1b2c3d4e5f60718": "sg:g", "sgr-0dbdddddddddddddd": "sgr:g:tcp:3306:0.0.0.0/0"},
    ),
    ("s3-block-public-access-removed", 0): (
        [
            {
                "kind": "bucket",
                "ref": "r",
                "name": "acme-reports",
                "public_access_block": [True, True, False, False],
                "policy": PUBLIC_READ,
            }
        ],
        {},
    ),
    ("s3-block-public-access-removed", 1): (
        [{"kind": "bucket", "ref": "r", "name": "acme-reports", "public_access_block": None, "policy": PUBLIC_READ}],
        {},
    ),
    ("s3-bucket-acl-public", 0): ([{"kind": "bucket", "ref": "m", "name": "acme-media", "acl": "public-read"}], {}),
    ("s3-bucket-acl-public", 1): (
        [{"kind": "bucket", "ref": "m", "name": "acme-media", "acl": "authenticated-read"}],
        {},
    ),
    ("s3-bucket-acl-public", 2): (
        [{"kind": "bucket", "ref": "d", "name": "acme-drop", "acl": "public-read-write"}],
        {},
    ),
    ("ami-public", 0): (
        [{"kind": "image", "ref": "a", "name": "app", "launch_permission": {"Group": "all"}}],
        {"ami-0a1b2c3d4e5f60718": "ami:a"},
    ),
    ("ebs-snapshot-public", 0): (
        [{"kind": "snapshot", "ref": "s", "size": 8, "public": True}],
        {"snap-0a1b2c3d4e5f60718": "snap:s"},
    ),
    ("rds-snapshot-public", 0): (
        [
            {
                "kind": "db_snapshot",
                "ref": "o",
                "instance": "orders",
                "snapshot": "orders-2026-10-01",
                "share_with": ["all"],
            }
        ],
        {},
    ),
    ("rds-cluster-snapshot-public", 0): (
        [
            {
                "kind": "db_cluster_snapshot",
                "ref": "o",
                "cluster": "orders",
                "snapshot": "orders-2026-10-01",
                "share_with": ["all"],
            }
        ],
        {},
    ),
    ("cloudtrail-stop-logging", 0): (
        [
            {"kind": "bucket", "ref": "t", "name": "org-trail-logs", "trail_bucket": True},
            {"kind": "trail", "ref": "o", "name": "org-trail", "bucket": "org-trail-logs", "logging": False},
        ],
        {},
    ),
}


def _attacks() -> list[Any]:
    out = []
    for rule_id, rows in sorted(BASELINE.items()):
        rule = RULES.get(rule_id)
        if rule is None or rule.default_mode != "remediate":
            continue
        by_id = {ex["detail"]["eventID"]: (i, ex) for i, ex in enumerate(rule.examples_positive)}
        for row in rows:
            if row["decision"] == "remediate" and row["eventID"] in by_id:
                i, ex = by_id[row["eventID"]]
                out.append(pytest.param(rule_id, i, ex, id=f"{rule_id}[{i}]"))
    return out


ATTACKS = _attacks()


def test_every_remediating_attack_example_has_a_live_state() -> None:
    assert len(ATTACKS) >= 13
    missing = [p.id for p in ATTACKS if (p.values[0], p.values[1]) not in LIVE]
    assert not missing, f"add the live state these attacks leave behind: {missing}"


@pytest.mark.parametrize(("rule_id", "index", "example"), ATTACKS)
def test_attack_example_still_remediates_through_the_engine(
    world: World, rule_id: str, index: int, example: dict[str, Any]
) -> None:
    handler.get_engine(FakeContext()).rules = tuple(RULES.values())  # the catalog only, no test rules
    setup, literals = LIVE[(rule_id, index)]
    live = LiveWorld(lambda service: world.member(service, REGION))
    live.setup([_scenario(setup)])
    event = replace_literals(example, {lit: _id(live.ids, ref) for lit, ref in literals.items()})
    before = live.state()
    world.calls.clear()
    # Catalog examples happen between 12:00 and 12:40; the engine acts on events of the last hour only.
    at = datetime.fromisoformat(event["detail"]["eventTime"].replace("Z", "+00:00")).timestamp()
    handler.clock.now = at + 300  # type: ignore[attr-defined]

    out = world.invoke({"trailguard_rule": rule_id, "event": event})

    mine = [f for f in out["findings"] if f["rule"] == rule_id]
    assert len(mine) == 1, out
    f = mine[0]
    assert f["decision"] == "remediate", f
    assert f["status"] == "remediated", f
    writes = [op for kind, _, op in world.calls if kind == "member" and is_write(op)]
    assert writes, "no write call in the member account"
    assert live.state() != before, "the live state did not change"


def _id(ids: dict[str, str], ref: str) -> str:
    """The real ID of a setup ref; ``*`` in a rule ref stands for whatever port moto reports (protocol -1)."""
    if "*" not in ref:
        return ids[ref]
    import fnmatch

    (hit,) = [v for k, v in ids.items() if fnmatch.fnmatchcase(k, ref)]
    return hit


def _scenario(setup: list[dict[str, Any]]) -> Any:
    from precision_helpers import Scenario

    return Scenario("attack", "human", "", True, "", tuple(setup), ())
