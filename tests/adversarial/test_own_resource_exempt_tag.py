"""No exemption tag switches trailguard's self-protection off.

Attacker: anyone who can tag trailguard's own trail (an admin of the trail's account, or a principal granted
``cloudtrail:AddTags`` and ``cloudtrail:StopLogging`` there) who tags it ``trailguard:exempt=true`` and then stops
it. The tag exemption is the operator's way to keep trailguard off *their* resources; on trailguard's own trail it
would turn "always restarted" into "skipped". The engine never reads exemption tags for an own resource (which also
saves the ListTags call); other resources keep the exemption.
"""

from __future__ import annotations

from reliability_world import TRAIL_ARN, FakeContext, World, envelope, is_logging, make_trail, stop_logging_record
from trailguard_engine import handler

RULE = "cloudtrail-stop-logging"
EXEMPT = [{"Key": "trailguard:exempt", "Value": "true"}]


def _tagged_and_stopped(world: World) -> None:
    make_trail(world)
    ct = world.client("cloudtrail")
    ct.add_tags(ResourceId=TRAIL_ARN, TagsList=EXEMPT)
    ct.stop_logging(Name=TRAIL_ARN)


def test_an_exempt_tag_on_trailguards_own_trail_does_not_stop_the_restart(world: World) -> None:
    world.set_runtime(trailguard_trail={"arn": TRAIL_ARN})
    _tagged_and_stopped(world)
    out = handler.handler({"trailguard_rule": RULE, "event": envelope(stop_logging_record())}, FakeContext())
    finding = out["findings"][0]
    assert finding["status"] == "remediated", finding
    assert is_logging(world)
    assert world.ops("cloudtrail", "ListTags") == 0  # the tags are not even read


def test_the_same_tag_on_another_trail_is_still_honoured(world: World) -> None:
    # Control: the exemption itself works; only trailguard's own resources are out of its reach.
    _tagged_and_stopped(world)
    out = handler.handler({"trailguard_rule": RULE, "event": envelope(stop_logging_record())}, FakeContext())
    finding = out["findings"][0]
    assert finding["status"] == "skipped", finding
    assert "trailguard:exempt=true" in finding["detail"]
    assert not is_logging(world)
    assert world.ops("cloudtrail", "StartLogging") == 0
