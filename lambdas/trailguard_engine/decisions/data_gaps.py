"""Decisions for data, storage and impact gaps: S3 objects deleted one by one, credential files read from
buckets, ransom notes written to them, RDS snapshots copied out of the region or to an outside key, and
dead-letter queues purged.

S3 object calls (GetObject, PutObject, DeleteObject) are CloudTrail *data* events: the trail records them only
with ``features.data_events.s3`` on (off by default), so the S3 rules here see nothing without it. Object keys
are judged as S3 stores them (case-sensitive names, but the file names that matter are compared
case-insensitively: a ``.AWS/Credentials`` copied from a case-insensitive disk is still a credential file).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlparse

from trailguard_engine.caller import classify
from trailguard_engine.decisions import decision
from trailguard_engine.events import CloudTrailEvent, as_list
from trailguard_engine.events import get_ci as _ci
from trailguard_engine.model import Assessment, Rule
from trailguard_engine.policy import known_accounts
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import ITEMS_PARAM

_ACCOUNT_ID = re.compile(r"^\d{12}$")
#: ``arn:aws:<service>:<region>:<account>:...``
_ARN = re.compile(r"^arn:aws[a-z-]*:([a-z0-9-]*):([a-z0-9-]*):([^:]*):")
KEY_MAX = 1024

#: File names (the key's last path segment, case-insensitive) that hold credentials.
CREDENTIAL_NAMES = frozenset(
    {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".env", ".netrc", ".pgpass", ".git-credentials", ".s3cfg"}
)
#: Suffixes of such names (``.env.production``, ``server.pem``, ``putty.ppk``).
CREDENTIAL_SUFFIXES = (".pem", ".ppk", ".pfx", ".p12")
#: Names that are credentials only in a known directory: ``.aws/credentials``, ``.docker/config.json``.
CREDENTIAL_PATHS = (".aws/credentials", ".aws/config", ".docker/config.json", ".kube/config")
#: ``*.key`` is a TLS/SSH private key (``server.key``) unless it is large: Keynote documents share the
#: extension. A private key is a few KB (RSA 4096 PEM about 3.3 KB); a read of more than this many bytes
#: (``additionalEventData.bytesTransferredOut``) is a document, not a key. An unknown size counts as a key.
KEY_FILE_MAX_BYTES = 65536
#: A name with "private key" in it (separators and case ignored: ``gcp-private_key.json``, ``PrivateKey.txt``),
#: except documentation and source code, which talk about keys without holding one.
PRIVATE_KEY_WORD = "privatekey"
NOT_KEY_SUFFIXES = (".md", ".rst", ".pdf", ".html", ".htm", ".doc", ".docx", ".py", ".js", ".ts", ".go", ".java", ".rb")
#: Ransom-note words: a key whose last segment holds one of these (case-insensitive) alone ...
RANSOM_WORDS = ("ransom", "yourfiles", "filesencrypted", "encryptedfiles", "recoverfiles", "restorefiles")
#: ... or a recovery verb together with a note word (``HOW_TO_DECRYPT.txt``, ``README-decrypt.html``).
RANSOM_VERBS = ("decrypt", "recover", "restore", "unlock")
RANSOM_NOTE_WORDS = ("how", "readme", "read_me", "instruction", "note", "files", "data", "help")
#: Notes that say what happened to the data (``ALL_FILES_HAVE_BEEN_ENCRYPTED.txt``, ``DATA_LOCKED.html``,
#: ``FILES-DELETED.txt``, Stratus Red Team's note): files or data, then encrypted, locked, deleted or stolen,
#: as whole words of the name (camelCase split). Only with a note's extension: ``data-encrypted.bin`` is encrypted data.
RANSOM_STATEMENT = re.compile(
    r"\b(?:files?|data) ?(?:(?:have|has|are|is|were|was) ?)?(?:been ?)?(?:encrypted|locked|deleted|stolen)\b"
)
NOTE_EXTENSIONS = (".txt", ".html", ".htm", ".hta", ".rtf")
DLQ_MARKERS = ("dlq", "deadletter", "dead-letter", "dead_letter")


def _who(event: CloudTrailEvent) -> str:
    return event.principal_arn or event.access_key_id or event.invoked_by or "unknown principal"


def _aws_itself(event: CloudTrailEvent) -> bool:
    """An AWS service acting with its own identity (lifecycle, replication): never a person's action."""
    return event.identity_type == "AWSService"


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _object(event: CloudTrailEvent) -> tuple[str, str]:
    """``(bucket, key)`` of an S3 object call; the key from the request, else from the per-object ARN."""
    bucket, key = _str(event.req("bucketName")), _str(event.req("key"))
    if not key:
        for r in as_list(event.detail.get("resources")):
            arn = r.get("ARN") if isinstance(r, dict) and r.get("type") == "AWS::S3::Object" else None
            if isinstance(arn, str) and arn.startswith("arn:aws") and ":::" in arn:
                b, _, k = arn.split(":::", 1)[1].partition("/")
                bucket, key = bucket or b, k
                break
    return bucket, key[:KEY_MAX]


def _basename(key: str) -> str:
    return key.rstrip("/").rsplit("/", 1)[-1]


def _letters(text: str) -> str:
    """Lower-case letters only: ``HOW_TO-DeCrYpt`` -> ``howtodecrypt`` (separators cannot hide a word)."""
    return "".join(c for c in text.lower() if c.isalpha())


def _words(text: str) -> str:
    """Lower-case words split at separators and camelCase: ``AllFilesHaveBeen-ENCRYPTED`` -> ``all files have been
    encrypted`` (so a word is matched whole: ``metadata`` does not hold ``data``)."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return " ".join(re.sub(r"[^A-Za-z]+", " ", spaced).lower().split())


# --------------------------------------------------------------------------- #
# S3 objects
# --------------------------------------------------------------------------- #
@decision("s3_objects_deleted")
def s3_objects_deleted(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Each DeleteObject qualifies and names its object (bucket, key, version) for ``params.threshold``.

    One delete is routine; many distinct objects deleted one by one in minutes is how a bucket is emptied
    without DeleteObjects (Stratus Red Team s3-ransomware-individual-deletion). A versionId deletes the
    version for good; without one only a delete marker is added (still counted: the data looks gone).
    """
    if _aws_itself(event):
        return Assessment(False, f"deleted by the AWS service {event.invoked_by or 'itself'}")
    bucket, key = _object(event)
    version = _str(event.req("versionId"))
    item = f"{bucket}/{key}" + (f"?versionId={version}" if version else "")
    if not key:
        item = f"unnamed:{event.event_id}"
    what = "version of " if version else ""
    return Assessment(
        True,
        f"DeleteObject removed {what}{bucket or '?'}/{key[:200] or '?'} by {_who(event)}",
        {"type": "AWS::S3::Bucket", "id": bucket},
        {ITEMS_PARAM: [item]},
        remediable=False,
    )


def credential_file(key: str, size: int | None = None) -> str | None:
    """Why ``key`` names a credential file, or None (case-insensitive; URL-encoded keys are decoded once).

    ``size`` is the number of bytes read, when known: it only decides ``*.key`` (see KEY_FILE_MAX_BYTES).
    """
    for candidate in dict.fromkeys((key, unquote(key))):
        low = candidate.lower().replace("\\", "/")
        name = _basename(low)
        if not name:
            continue
        if name in CREDENTIAL_NAMES:
            return f"file {name}"
        if name.startswith(".env.") and len(name) > 5:
            return f"environment file {name}"
        if name.endswith(CREDENTIAL_SUFFIXES):
            return f"key file {name}"
        if any(low == p or low.endswith("/" + p) for p in CREDENTIAL_PATHS):
            return f"credential file {name} under its tool's directory"
        public = "public" in name
        if name.endswith(".key") and len(name) > 4 and not public and (size is None or size <= KEY_FILE_MAX_BYTES):
            return f"key file {name}" + (f" ({size} bytes)" if size is not None else "")
        if PRIVATE_KEY_WORD in _letters(name) and not public and not name.endswith(NOT_KEY_SUFFIXES):
            return f"private key file {name}"
    return None


def _bytes_out(event: CloudTrailEvent) -> int | None:
    """``additionalEventData.bytesTransferredOut`` as a non-negative int, else None (unknown)."""
    value = event.additional.get("bytesTransferredOut")
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value) and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


@decision("s3_credential_file_read")
def s3_credential_file_read(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """GetObject of a file that holds credentials: SSH and TLS private keys, AWS/Docker/Kubernetes
    credentials, ``.env`` files. Terraform state is left out: every plan reads it."""
    if _aws_itself(event):
        return Assessment(False, f"read by the AWS service {event.invoked_by or 'itself'}")
    bucket, key = _object(event)
    why = credential_file(key, _bytes_out(event))
    if why is None:
        return Assessment(False, f"{key[:200] or 'no key'} is not a credential file")
    return Assessment(
        True,
        f"GetObject read {why} s3://{bucket or '?'}/{key[:200]} by {_who(event)}",
        {"type": "AWS::S3::Object", "id": f"{bucket}/{key}"},
        remediable=False,
    )


def ransom_note(key: str) -> str | None:
    """Why ``key``'s last segment looks like a ransom note, or None (separators and case ignored)."""
    name = _letters(_basename(unquote(key)))
    for word in RANSOM_WORDS:
        if word in name:
            return f"'{word}' in the name"
    verbs = [v for v in RANSOM_VERBS if v in name]
    notes = [w.replace("_", "") for w in RANSOM_NOTE_WORDS if w.replace("_", "") in name]
    if verbs and notes:
        return f"'{verbs[0]}' with '{notes[0]}' in the name"
    stem, dot, ext = _basename(unquote(key)).rstrip(". ").rpartition(".")
    ext = ext.lower()
    statement = RANSOM_STATEMENT.search(_words(stem)) if dot else None
    if statement and f".{ext}" in NOTE_EXTENSIONS:
        return f"'{statement.group(0)}' in a .{ext} note"
    return None


@decision("s3_ransom_note_upload")
def s3_ransom_note_upload(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutObject (or CopyObject) of a key named like a ransom note (``HOW_TO_DECRYPT.txt``, ``ransom.html``,
    ``README-recover-files.txt``): the last step of S3 ransomware, after the objects were deleted or re-keyed."""
    if _aws_itself(event):
        return Assessment(False, f"written by the AWS service {event.invoked_by or 'itself'}")
    bucket, key = _object(event)
    why = ransom_note(key)
    if why is None:
        return Assessment(False, f"{key[:200] or 'no key'} is not named like a ransom note")
    return Assessment(
        True,
        f"{event.event_name} wrote s3://{bucket or '?'}/{key[:200]} ({why}) by {_who(event)}",
        {"type": "AWS::S3::Object", "id": f"{bucket}/{key}"},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# RDS snapshot copies
# --------------------------------------------------------------------------- #
def _arn_parts(value: str) -> tuple[str, str, str] | None:
    """``(service, region, account)`` of an ARN, else None."""
    m = _ARN.match(value)
    return (m.group(1), m.group(2), m.group(3)) if m else None


def _field(req: Any, *names: str) -> str:
    """The first of ``names`` present in ``req``, compared case-insensitively (``dBSnapshot``/``DBSnapshot``)."""
    if not isinstance(req, dict):
        return ""
    lowered = {str(k).lower(): v for k, v in req.items()}
    for n in names:
        v = lowered.get(n.lower())
        if isinstance(v, str) and v:
            return v
    return ""


@decision("rds_snapshot_copied_out")
def rds_snapshot_copied_out(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """CopyDBSnapshot / CopyDBClusterSnapshot that takes a copy out of reach of the region's controls: to
    another region (the call is made in the target region and names the source by ARN, or ``sourceRegion``),
    or encrypted with a KMS key of an account outside the organization and trusted list (whoever owns the key
    can then read, or withhold, the copy). Same-region copies with our keys are routine; copying a snapshot
    shared by another account into ours brings data in, not out, and is left alone.
    """
    req = event.request
    cluster = event.event_name == "CopyDBClusterSnapshot"
    source = _field(req, "sourceDBClusterSnapshotIdentifier" if cluster else "sourceDBSnapshotIdentifier")
    target = _field(req, "targetDBClusterSnapshotIdentifier" if cluster else "targetDBSnapshotIdentifier")
    kms = _field(req, "kmsKeyId")
    region = event.region
    reasons: list[str] = []
    src = _arn_parts(source)
    src_region = src[1] if src else ""
    declared = _field(req, "sourceRegion")
    for r in dict.fromkeys(x for x in (src_region, declared) if x):
        if region and r.lower() != region.lower():
            reasons.append(f"copied from {r} to {region}")
    ours = known_accounts(cfg) | ({event.account} if event.account else set())
    key = _arn_parts(kms)
    if key and (not _ACCOUNT_ID.match(key[2]) or key[2] not in ours):
        reasons.append(f"encrypted with KMS key {kms[:200]} of account {key[2] or '?'} outside the organization")
    kind = "cluster snapshot" if cluster else "snapshot"
    if not reasons:
        return Assessment(False, f"{kind} {source[:200] or '?'} copied within {region or 'the region'} with our keys")
    return Assessment(
        True,
        f"RDS {kind} {source[:200] or '?'} copied to {target[:200] or '?'}: {'; '.join(reasons)} by {_who(event)}",
        {"type": "AWS::RDS::DBClusterSnapshot" if cluster else "AWS::RDS::DBSnapshot", "id": target or source},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# SQS dead-letter queues
# --------------------------------------------------------------------------- #
def queue_name(value: Any) -> str:
    """The queue name of a queue URL (``https://sqs.<region>.amazonaws.com/<account>/<name>``), ARN or name."""
    raw = _str(value).strip()
    if not raw:
        return ""
    if raw.startswith("arn:"):
        return raw.rsplit(":", 1)[-1]
    if "://" in raw:
        path = urlparse(raw).path
        return unquote(path.rstrip("/").rsplit("/", 1)[-1])
    return raw.rstrip("/").rsplit("/", 1)[-1]


def _markers(name: str, markers: Iterable[str]) -> str | None:
    low = name.lower()
    return next((m for m in markers if m in low), None)


@decision("sqs_dead_letter_queue_purged")
def sqs_dead_letter_queue_purged(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PurgeQueue of a dead-letter queue (name with dlq / dead-letter in any case) or of one of trailguard's
    queues: the failed messages (events trailguard could not handle, failed deliveries) are evidence, and
    purging them hides what failed. Purging a work queue is routine operations and stays quiet."""
    name = queue_name(event.req("queueUrl"))
    if not name:
        return Assessment(False, "no queue named")
    marker = _markers(name, DLQ_MARKERS)
    ours = name.lower().startswith("trailguard")
    if not (marker or ours):
        return Assessment(False, f"queue {name[:80]} is not a dead-letter queue")
    what = "trailguard's queue" if ours else f"dead-letter queue ('{marker}' in the name)"
    return Assessment(
        True,
        f"PurgeQueue emptied {what} {name[:80]} by {_who(event)}",
        {"type": "AWS::SQS::Queue", "id": _str(event.req("queueUrl"))[:300] or name},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# EBS snapshot recovery access
# --------------------------------------------------------------------------- #
def _entries(value: Any) -> list[Any]:
    """EC2 query-API lists render as ``{"items": [...]}``; accept a bare list or object too."""
    if isinstance(value, dict):
        return as_list(value.get("items")) if "items" in value else [value]
    return as_list(value)


def removed_accounts(event: CloudTrailEvent) -> list[str]:
    """Account IDs a ModifySnapshotAttribute removes from createVolumePermission (structured or flat form)."""
    out: list[str] = []
    for item in _entries(event.req("createVolumePermission", "remove")):
        uid = item.get("userId") if isinstance(item, dict) else None
        if isinstance(uid, (str, int)) and not isinstance(uid, bool):
            out.append(str(uid).strip())
    op = event.req("operationType")
    if isinstance(op, str) and op.strip().lower() == "remove":
        for u in _entries(event.req("userIds")) + _entries(event.req("userId")):
            uid = u.get("userId") if isinstance(u, dict) else u
            if isinstance(uid, (str, int)) and not isinstance(uid, bool):
                out.append(str(uid).strip())
    return list(dict.fromkeys(a for a in out if a))


@decision("ebs_snapshot_recovery_access_removed")
def ebs_snapshot_recovery_access_removed(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """ModifySnapshotAttribute removing createVolumePermission from an account of the organization (or a
    trusted one): a backup or recovery account can no longer create volumes from the snapshot (denial of
    recovery). Removing an outside account is hygiene and removing ``all`` makes the snapshot private: both
    quiet. The owner itself cannot be removed (it always keeps access), so naming the own account is a no-op.
    With no organization account list (``cfg.organization_accounts`` None) a removed account may be ours:
    every removal of another account alerts (unsure means alert, never silence)."""
    snap = _str(event.req("snapshotId"))
    removed = removed_accounts(event)
    if not removed:
        return Assessment(False, f"snapshot {snap or '?'}: no account removed")
    others = [a for a in removed if a != event.account]
    if not others:
        return Assessment(False, f"snapshot {snap or '?'}: the owner cannot lose access (no change)")
    unknown = cfg.organization_accounts is None
    ours = known_accounts(cfg)
    lost = [a for a in others if a in ours or unknown]
    if not lost:
        return Assessment(False, f"snapshot {snap or '?'}: removed accounts {others[:5]} are outside the organization")
    whose = (
        "account(s) that may be the organization's" if unknown and not set(lost) & ours else "organization account(s)"
    )
    return Assessment(
        True,
        f"EBS snapshot {snap or '?'}: volume creation removed from {whose} {', '.join(lost[:10])} by {_who(event)}",
        {"type": "AWS::EC2::Snapshot", "id": snap},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# SNS subscriptions to endpoints outside AWS
# --------------------------------------------------------------------------- #
#: Protocols that deliver a topic's messages outside AWS.
EXTERNAL_PROTOCOLS = frozenset({"email", "email-json", "http", "https", "sms"})


def topic_name(value: Any) -> str:
    raw = _str(value).strip()
    return raw.rsplit(":", 1)[-1] if raw.startswith("arn:") else raw


@decision("sns_external_subscription")
def sns_external_subscription(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """Subscribe with an email, email-json, http(s) or sms endpoint: the topic's messages leave AWS.

    Fires for trailguard's own topics whoever subscribes (an outsider reading the alerts learns what is
    detected), and for any topic unless the caller is an application (caller class ``unknown``: a role session
    with no sign of a person, such as a service registering its webhook). Queue, Lambda and Firehose endpoints stay inside AWS.
    """
    protocol = _str(event.req("protocol")).strip().lower()
    topic = topic_name(event.req("topicArn"))
    endpoint = _str(event.req("endpoint"))[:200]
    if protocol not in EXTERNAL_PROTOCOLS:
        return Assessment(False, f"protocol {protocol[:32] or '?'} delivers inside AWS")
    ours = "trailguard" in topic.lower()
    # "unknown" is a role session with no sign of a person (an application). Any other class is a person or
    # claims to be a pipeline: a user agent is forgeable, so caller_modes, not this decision, judges those.
    application = classify(event, cfg).kind == "unknown"
    if not ours and application:
        return Assessment(False, f"{protocol} endpoint subscribed to {topic[:80] or '?'} by an application")
    what = "trailguard's alert topic" if ours else "topic"
    return Assessment(
        True,
        f"{protocol} endpoint {endpoint or '?'} subscribed to {what} {topic[:80] or '?'} by {_who(event)}",
        {"type": "AWS::SNS::Topic", "id": _str(event.req("topicArn"))[:300]},
        remediable=False,
    )


# --------------------------------------------------------------------------- #
# S3 default encryption with a key of another account
# --------------------------------------------------------------------------- #


def default_encryption_keys(event: CloudTrailEvent) -> list[str]:
    """The KMS keys a PutBucketEncryption request makes the bucket's default (every rule of the body)."""
    config = _ci(event.request, "ServerSideEncryptionConfiguration")
    keys: list[str] = []
    for r in as_list(_ci(config, "Rule")):
        default = _ci(r, "ApplyServerSideEncryptionByDefault")
        key = _ci(default, "KMSMasterKeyID")
        if isinstance(key, str) and key.strip():
            keys.append(key.strip())
    return keys


@decision("s3_default_encryption_external_key")
def s3_default_encryption_external_key(event: CloudTrailEvent, rule: Rule, cfg: RuntimeConfig) -> Assessment:
    """PutBucketEncryption making a KMS key of an account outside the organization (and trusted list) the
    bucket's default: every new object is then encrypted under a key its owner can disable or delete, the
    ransomware form of the call. A key named by id or alias (no ARN) is the bucket owner's; a look-alike
    account in an ARN (13 digits, spaces) is outside."""
    bucket = _str(event.req("bucketName"))
    ours = known_accounts(cfg) | ({event.account} if event.account else set())
    outside = []
    for key in default_encryption_keys(event):
        parts = _arn_parts(key)
        if key.startswith("arn:") and (parts is None or not _ACCOUNT_ID.match(parts[2]) or parts[2] not in ours):
            outside.append(key[:200])
    if not outside:
        return Assessment(False, f"bucket {bucket or '?'}: default encryption uses our own keys (or S3's)")
    return Assessment(
        True,
        f"bucket {bucket or '?'}: default encryption set to KMS key(s) outside the organization "
        f"{', '.join(outside[:3])} by {_who(event)}",
        {"type": "AWS::S3::Bucket", "id": bucket},
        remediable=False,
    )
