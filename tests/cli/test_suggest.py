from __future__ import annotations

from trailguard.suggest import did_you_mean


def test_close_names_are_suggested_and_far_ones_are_not() -> None:
    known = ["cloudtrail-stop-logging", "cloudtrail-delete-trail", "s3-bucket-acl-public"]
    assert did_you_mean("cloudtrail-stop-loging", known) == " (did you mean: cloudtrail-stop-logging?)"
    assert did_you_mean("something-else-entirely", known) == ""
