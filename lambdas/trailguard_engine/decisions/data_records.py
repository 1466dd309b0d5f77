"""Change records (severity INFO) for data services whose public rules flag a call on any occurrence, where
the generic ``change_record`` would record too much: each decision here keeps the record to one per action a
person would look at, never one per page or per object.

RDS log files are read in portions (``DownloadDBLogFilePortion``, up to 1 MB a call, paged with a ``marker``),
and log shippers (database monitoring agents) page through every log continuously. A download is recorded
once, at its first portion (no marker, or the documented start marker ``0``); later portions are recorded
only when a person (an IAM user, root, a console, MFA or Identity Center session) reads them, so a person
who starts mid-file is still recorded, and an application's paging is not a flood of records.
"""

from __future__ import annotations

from typing import Any

from trailguard_engine.caller import classify
from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, get_ci
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig

#: Caller classes that are people (their every read is recorded).
PERSON_KINDS = frozenset({"human", "identity-center"})
NAME_MAX = 200


def _who(event: CloudTrailEvent) -> str:
    return event.principal_arn or event.access_key_id or event.invoked_by or "unknown principal"


def _text(value: Any) -> str:
    return value.strip()[:NAME_MAX] if isinstance(value, str) else ""


def first_portion(marker: Any) -> bool:
    """True when ``marker`` starts a log download: absent, empty, or the start marker ``0`` (text or number).

    A marker of any other shape is treated as a start too (unsure means record, never silence); only a
    well-formed later-page marker (non-empty text other than ``0``, or a positive number) is a later portion.
    """
    if marker is None or isinstance(marker, bool):
        return True
    if isinstance(marker, (int, float)):
        return marker <= 0
    if isinstance(marker, str):
        return marker.strip() in ("", "0")
    return True


@decision("rds_log_download_record")
def rds_log_download_record(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """A record of a database log file being read (database logs can hold query text, user names and
    connection details). One record per download (its first portion) and one per portion a person reads;
    an application paging through a log it already started is not recorded again."""
    if event.identity_type == "AWSService":
        return Assessment(False, "read by an AWS service with its own identity: not a change record")
    db = _text(get_ci(event.request, "dBInstanceIdentifier"))
    log = _text(get_ci(event.request, "logFileName"))
    marker = get_ci(event.request, "marker")
    caller = classify(event, cfg)
    start = first_portion(marker)
    if not start and caller.kind not in PERSON_KINDS:
        return Assessment(
            False,
            f"later portion of {log or '?'} on {db or '?'} read by an application ({caller.kind}): "
            "the download was recorded at its first portion",
        )
    how = "download started" if start else "portion read by a person"
    return Assessment(
        True,
        f"RDS log {log or '?'} of {db or '?'}: {how} by {_who(event)}: change record",
        {"type": "AWS::RDS::DBInstance", "id": db} if db else {},
        remediable=False,
    )
