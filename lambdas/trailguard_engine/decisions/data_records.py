"""Change records (severity INFO) for data services whose public rules flag a call on any occurrence, where
the generic ``change_record`` would record too much: each decision here keeps the record to one per action a
person would look at, never one per page or per object.

RDS log files are read in portions (``DownloadDBLogFilePortion``, up to 1 MB a call, paged with a ``marker``),
and log shippers (database monitoring agents) page through every log continuously. A download is recorded
once, at its first portion (no marker, or the documented start marker ``0``); later portions are recorded
only when a person (an IAM user, root, a console, MFA or Identity Center session) reads them, so a person
who starts mid-file is still recorded, and an application's paging is not a flood of records.

It also holds the first-seen decision for S3 desktop clients (S3 Browser, Cyberduck): graphical bulk
download tools rarely used in an enterprise and used by intruders to take data out. The rule's pattern
selects only S3 calls whose user agent names one (every other object call never reaches the engine), and
the first-seen gate (``params.first_seen``) alerts once per principal and client in its history window, not
per object.

And the first-seen decision for JavaScript written into a static site's ``static/js/`` folder (the Bybit
compromise: a developer's session replaced a site's script in its bucket). Every front-end deployment writes
these files, so the term is the bucket (the gate adds the principal): the pipeline that deploys the site is
learned, and a principal writing a site's scripts for the first time in the history window alerts once.
"""

from __future__ import annotations

import re
from typing import Any

from trailguard_engine.caller import classify, service_linked_session
from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, get_ci
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import FIRST_SEEN_ITEMS_PARAM

#: Caller classes that are people (their every read is recorded).
PERSON_KINDS = frozenset({"human", "identity-center"})
NAME_MAX = 200


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
    if event.identity_type == "AWSService" or service_linked_session(event):
        return Assessment(False, "read by an AWS service (its own identity or service-linked role): not a record")
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
        f"RDS log {log or '?'} of {db or '?'}: {how} by {event.actor}: change record",
        {"type": "AWS::RDS::DBInstance", "id": db} if db else {},
        remediable=False,
    )


#: S3 desktop clients by user agent (``S3 Browser 11.5.7 https://s3browser.com``,
#: ``Cyberduck/8.7.1.40770 (Mac OS X/14.0) (x86_64)``), any casing and spacing: the term names the client.
S3_GUI_CLIENTS = (
    ("s3-browser", re.compile(r"s3[\s_-]*browser", re.IGNORECASE)),
    ("cyberduck", re.compile(r"cyberduck", re.IGNORECASE)),
)


def s3_gui_client(user_agent: str) -> str | None:
    """The S3 desktop client a user agent names (``s3-browser``, ``cyberduck``), else None."""
    return next((name for name, rx in S3_GUI_CLIENTS if rx.search(user_agent or "")), None)


@decision("s3_gui_client_first_seen")
def s3_gui_client_first_seen(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """An S3 call made from S3 Browser or Cyberduck; the term is the client (the gate adds the principal), so a
    principal alerts the first time it uses a client in the history window, not once per object it downloads."""
    client = s3_gui_client(event.user_agent)
    if client is None:
        return Assessment(False, f"{event.event_name} not from an S3 desktop client")
    caller = classify(event, cfg)
    if caller.kind == "service":
        return Assessment(False, f"made by an AWS service ({caller.why})")
    bucket = _text(get_ci(event.request, "bucketName"))
    where = f" on bucket {bucket}" if bucket else ""
    return Assessment(
        True,
        f"{event.event_name}{where} from the S3 desktop client {client} ({event.user_agent[:80]}) by {event.actor}",
        {"type": "AWS::S3::Bucket", "id": bucket} if bucket else {},
        {FIRST_SEEN_ITEMS_PARAM: [f"client:{client}"]},
        remediable=False,
    )


#: The static-site bundle folder Elastic's rule watches (Create React App and similar builds).
STATIC_JS_DIR = "static/js/"
JS_SUFFIXES = (".js", ".mjs")


def _object_key(event: CloudTrailEvent) -> tuple[str, str]:
    """``(bucket, key)`` of an object write, from the request, else from the per-object ARN."""
    bucket = _text(get_ci(event.request, "bucketName"))
    key = get_ci(event.request, "key")
    key = key[:1024] if isinstance(key, str) else ""
    if not key:
        for r in event.detail.get("resources") or ():
            arn = r.get("ARN") if isinstance(r, dict) and r.get("type") == "AWS::S3::Object" else None
            if isinstance(arn, str) and ":::" in arn:
                b, _, key = arn.split(":::", 1)[1].partition("/")
                bucket = bucket or b[:NAME_MAX]
                key = key[:1024]
                break
    return bucket, key


@decision("s3_static_site_js_first_upload")
def s3_static_site_js_first_upload(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutObject or CopyObject of a ``.js`` file under a ``static/js/`` folder; the term is the bucket, so the
    first principal new to writing that site's scripts alerts, and the pipeline that always deploys it does not."""
    bucket, key = _object_key(event)
    low = key.lower()
    if STATIC_JS_DIR not in low or not low.endswith(JS_SUFFIXES):
        return Assessment(False, f"{key[:200] or 'no key'} is not a script of a static site (static/js/*.js)")
    caller = classify(event, cfg)
    if caller.kind == "service":
        return Assessment(False, f"written by an AWS service ({caller.why})")
    return Assessment(
        True,
        f"{event.event_name} wrote the site script s3://{bucket or '?'}/{key[:200]} by {event.actor}",
        {"type": "AWS::S3::Object", "id": f"{bucket}/{key[:300]}"},
        # A bucket that cannot be read is a term of its own (never "already seen" by a spelling).
        {FIRST_SEEN_ITEMS_PARAM: [f"bucket:{bucket.lower()}" if bucket else f"bucket-unread:{event.event_id}"]},
        remediable=False,
    )
