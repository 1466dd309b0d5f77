"""Replay CloudTrail events through the catalog, offline and in dry-run.

The same code path as the engine: :class:`trailguard_engine.evaluate.Evaluator`
(pattern index + decision functions + generic safety policy), fed with the
patterns that are deployed. By default those are the catalog's
``event_pattern`` (the CDK app deploys exactly those); ``patterns_from_cdk_out``
reads them back from synthesized templates instead.

Input is streamed: one file is decompressed and parsed at a time, events are
judged one by one and nothing is accumulated but counters. Bad input never
stops a run; it is reported as ``file:line: reason`` and counted.

Accepted shapes, besides CloudTrail log files and JSON Lines of records or EventBridge envelopes: the output of
``aws cloudtrail lookup-events`` (``{"Events": [{"CloudTrailEvent": "<record as JSON>"}, ...]}``, Event
History), CloudTrail Lake query results (``GetQueryResults``' ``QueryResultRows``, a JSON array or JSON Lines
of result rows, or the CSV the console downloads) whose rows carry ``eventJson`` or the event data store's
lower-case columns (``eventname``, ``eventsource``, ``useridentity``...). CloudTrail Insights and digest files
in a synced tree are skipped by name (:func:`expand_paths` reports them), not read as malformed input.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import gc
import io
import itertools
import json
import os
import re
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from trailguard_engine.catalog import RECORD_SEVERITY, load_catalog
from trailguard_engine.evaluate import Evaluator
from trailguard_engine.events import CloudTrailEvent, detail_type_for, source_for, to_envelope
from trailguard_engine.events import _check_record as check_record
from trailguard_engine.exceptions import RejectedEvent
from trailguard_engine.matcher import matches
from trailguard_engine.model import EventResult, Rule
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import MemoryWindowStore, ThresholdGate, gated

from trailguard.exceptions import TrailguardError

STDIN = "-"
#: ``stacks.names.CENTRAL_BUS_NAME`` (not imported: it pulls in aws_cdk, seconds of start-up).
CENTRAL_BUS_NAME = "trailguard-central"
#: File names picked up when walking a directory (an ``AWSLogs/`` tree holds ``*.json.gz``).
INPUT_SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz", ".gz")
#: CSV files (CloudTrail Lake results downloaded from the console) are read when named, never picked up by a walk.
CSV_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz")
#: Path parts and file-name markers of the files CloudTrail writes beside the logs that are not API activity.
INSIGHT_MARKER = "CloudTrail-Insight"
DIGEST_MARKER = "CloudTrail-Digest"
_GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 1 << 20


class ReplayInputError(TrailguardError):
    """A path cannot be read at all (missing, a permission problem, not a file or directory)."""


class PatternSourceError(TrailguardError):
    """Patterns could not be loaded from synthesized templates."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One skipped input: where it was and why."""

    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


class _Bad:
    """Marker yielded by the readers in place of an object that could not be used."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


# --------------------------------------------------------------------------- #
# Reading
# --------------------------------------------------------------------------- #

#: (source label, line number, object or _Bad). Records of a ``{"Records": [...]}``
#: document carry the document's line and their index in the reason if bad.
Item = tuple[str, int, Any]


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file left out by its name: CloudTrail Insights events or a digest, not API activity."""

    path: str
    kind: str  # "insights" | "digest"

    def __str__(self) -> str:
        what = (
            "CloudTrail Insights file (unusual-activity summaries, not API calls)"
            if self.kind == "insights"
            else "CloudTrail digest file (integrity hashes, not events)"
        )
        return f"{self.path}: skipped, a {what}"


def skipped_kind(path: str) -> str | None:
    """``insights`` or ``digest`` when CloudTrail's naming says the file holds no API activity, else None."""
    parts = Path(path).parts
    name = parts[-1] if parts else path
    if INSIGHT_MARKER in parts or f"_{INSIGHT_MARKER}_" in name:
        return "insights"
    if DIGEST_MARKER in parts or f"_{DIGEST_MARKER}_" in name:
        return "digest"
    return None


def skipped_summary(skipped: Iterable[SkippedFile]) -> str | None:
    """One line for the user: how many files were left out by name, and why (None when there were none)."""
    counts = Counter(s.kind for s in skipped)
    if not counts:
        return None
    parts = []
    if counts["insights"]:
        parts.append(f"{counts['insights']} CloudTrail Insights file{'s' * (counts['insights'] != 1)}")
    if counts["digest"]:
        parts.append(f"{counts['digest']} digest file{'s' * (counts['digest'] != 1)}")
    return f"skipped {' and '.join(parts)} by name: they hold no API activity to judge"


def expand_paths(paths: Iterable[str], skipped: list[SkippedFile] | None = None) -> list[str]:
    """Check every path up front and expand directories (recursively, sorted).

    CloudTrail Insights and digest files (by CloudTrail's path and file naming) are left out, given by name or
    found in a directory, and appended to ``skipped`` so the caller can say so. Raises
    :class:`ReplayInputError` with a one-line message for the first path that cannot be read.
    """
    out: list[str] = []
    for raw in paths:
        if raw == STDIN:
            out.append(STDIN)
            continue
        p = Path(raw)
        if p.is_dir():
            if not os.access(p, os.R_OK | os.X_OK):
                raise ReplayInputError(f"{raw}: cannot read directory (permission denied)")
            out.extend(_walk(p, skipped))
        elif p.is_file():
            if not os.access(p, os.R_OK):
                raise ReplayInputError(f"{raw}: cannot read file (permission denied)")
            kind = skipped_kind(str(p))
            if kind is not None:
                if skipped is not None:
                    skipped.append(SkippedFile(str(p), kind))
                continue
            out.append(str(p))
        elif p.exists():
            raise ReplayInputError(f"{raw}: not a regular file or directory")
        else:
            raise ReplayInputError(f"{raw}: no such file or directory")
    return out


def _walk(root: Path, skipped: list[SkippedFile] | None = None) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=_walk_error):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or not name.endswith(INPUT_SUFFIXES):
                continue
            path = os.path.join(dirpath, name)
            kind = skipped_kind(path)
            if kind is not None:
                if skipped is not None:
                    skipped.append(SkippedFile(path, kind))
                continue
            found.append(path)
    return found


def _walk_error(exc: OSError) -> None:
    raise ReplayInputError(f"{exc.filename}: cannot read directory ({exc.strerror or exc})") from exc


def _gunzip(data: bytes) -> tuple[bytes, str | None]:
    """Decompress every gzip member of ``data``; on damage return what was read and why it stopped."""
    parts: list[bytes] = []
    while data:
        d = zlib.decompressobj(wbits=31)
        try:
            parts.append(d.decompress(data))
        except zlib.error as exc:
            parts.append(d.flush() if not d.eof else b"")
            return b"".join(parts), f"corrupt gzip data ({exc}); kept what was read before it"
        if not d.eof:
            parts.append(d.flush())
            return b"".join(parts), "truncated gzip file; kept what was read before the end"
        data = d.unused_data
        if data and not data.startswith(_GZIP_MAGIC):
            break  # trailing garbage after the last member: gzip(1) ignores it too
    return b"".join(parts), None


def iter_file(path: str) -> Iterator[Item]:
    """Objects in one file (plain or gzip; JSON Lines or one JSON document; CSV of Lake results by suffix)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            if path.lower().endswith(CSV_SUFFIXES):
                yield from _iter_csv(path, head + fh.read())
                return
            if head == _GZIP_MAGIC:
                yield from _iter_gzip(path, head + fh.read())
                return
            fh.seek(0)
            yield from _iter_lines(path, iter(fh))
    except OSError as exc:
        raise ReplayInputError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def iter_stdin(stream: IO[bytes] | None = None) -> Iterator[Item]:
    """Objects read from stdin (JSON Lines or a Records document, gzip accepted)."""
    fh = stream if stream is not None else sys.stdin.buffer
    head = fh.read(2)
    if head == _GZIP_MAGIC:
        yield from _iter_gzip("<stdin>", head + fh.read())
        return
    yield from _iter_lines("<stdin>", _chain_first(head + fh.readline(), fh))


def _chain_first(first: bytes, fh: IO[bytes]) -> Iterator[bytes]:
    yield first
    yield from fh


def _iter_gzip(label: str, raw: bytes) -> Iterator[Item]:
    data, damage = _gunzip(raw)
    if damage is None:
        yield from _iter_bytes(label, data)
        return
    body = data.rstrip()
    cut = body.rfind(b"\n")
    if cut < 0:
        # A one-line file (every CloudTrail log file): keep the complete records.
        if body:
            yield from _salvage_records(label, body, report=False)
        yield (label, 1, _Bad(damage))
        return
    complete = data[: cut + 1]  # the last, partial line is dropped
    yield from _iter_bytes(label, complete)
    yield (label, complete.count(b"\n") + 1, _Bad(damage))


def _iter_bytes(label: str, data: bytes) -> Iterator[Item]:
    # Fast path for CloudTrail log files: the whole (decompressed) file is one JSON document.
    if data[:1] == b"{":
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            yield from _expand(label, 1, doc)
            return
    yield from _iter_lines(label, iter(data.splitlines()))


def _iter_lines(label: str, lines: Iterator[bytes]) -> Iterator[Item]:
    """JSON Lines; a first line that is not JSON may open one multi-line (pretty-printed) document."""
    lineno = 0
    first = True
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    for raw in lines:
        lineno += 1
        line = raw.strip()
        if not line:
            continue
        try:
            obj = loads(line)
        except decode_error as exc:
            if first and line[:1] in (b"{", b"["):
                rest = b"\n".join([raw, *lines])
                yield from _parse_document(label, lineno, rest, exc)
                return
            yield (label, lineno, _Bad(f"not valid JSON ({_short(exc)})"))
            first = False
            continue
        first = False
        yield from _expand(label, lineno, obj)


def _parse_document(label: str, lineno: int, text: bytes, first_error: Exception) -> Iterator[Item]:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    else:
        yield from _expand(label, lineno, doc)
        return
    if text.lstrip()[:1] == b"{" and b'"Records"' in text[:4096]:
        yield from _salvage_records(label, text, lineno)
        return
    # Not one document either: treat it as JSON Lines whose first line is bad.
    yield (label, lineno, _Bad(f"not valid JSON ({_short(first_error)})"))
    for offset, raw in enumerate(text.splitlines()[1:], start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield (label, lineno + offset, _Bad(f"not valid JSON ({_short(exc)})"))
            continue
        yield from _expand(label, lineno + offset, obj)


_RECORDS_OPEN = re.compile(rb'"Records"\s*:\s*\[')


def _salvage_records(label: str, data: bytes, lineno: int = 1, *, report: bool = True) -> Iterator[Item]:
    """Complete records of a damaged ``{"Records": [...]}`` document, then (if ``report``) one problem."""
    text = data.decode("utf-8", errors="replace")
    m = _RECORDS_OPEN.search(data)
    if m is None:
        if report:
            yield (label, lineno, _Bad("not valid JSON and no Records array found"))
        return
    decoder = json.JSONDecoder()
    pos = len(data[: m.end()].decode("utf-8", errors="replace"))
    index = 0
    ws = " \t\r\n,"
    while True:
        while pos < len(text) and text[pos] in ws:
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            break
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            if report:
                yield (label, lineno, _Bad(f"Records[{index}]: incomplete JSON (damaged file); later records lost"))
            return
        yield (label, lineno, _record_or_bad(obj, index))
        index += 1
    if pos >= len(text) and report:
        yield (label, lineno, _Bad(f"Records document ends early after {index} records"))


def _record_or_bad(obj: Any, index: int) -> Any:
    if isinstance(obj, dict):
        return obj
    return _Bad(f"Records[{index}]: expected a JSON object, got {type(obj).__name__}")


def _expand(label: str, lineno: int, obj: Any) -> Iterator[Item]:
    if type(obj) is dict and "eventName" not in obj:
        if "Records" in obj:
            records = obj["Records"]
            if type(records) is not list:
                yield (label, lineno, _Bad("'Records' is not an array"))
                return
            for i, rec in enumerate(records):
                yield (label, lineno, rec if type(rec) is dict else _record_or_bad(rec, i))
            return
        if "Events" in obj and type(obj["Events"]) is list:  # aws cloudtrail lookup-events
            for i, ev in enumerate(obj["Events"]):
                yield (label, lineno, record_from_lookup_event(ev, f"Events[{i}]: "))
            return
        if "CloudTrailEvent" in obj:  # one Event of lookup-events (e.g. jq -c '.Events[]')
            yield (label, lineno, record_from_lookup_event(obj, ""))
            return
        if "QueryResultRows" in obj:  # CloudTrail Lake GetQueryResults
            rows = obj["QueryResultRows"]
            if type(rows) is not list:
                yield (label, lineno, _Bad("'QueryResultRows' is not an array"))
                return
            for i, row in enumerate(rows):
                yield (label, lineno, _from_lake_row(_merge_columns(row), f"QueryResultRows[{i}]: "))
            return
        if _is_lake_row(obj):
            yield (label, lineno, _from_lake_row(obj, ""))
            return
    elif type(obj) is list and obj and all(type(o) is dict for o in obj):  # a JSON array of rows or records
        for o in obj:
            yield from _expand(label, lineno, o)
        return
    yield (label, lineno, obj)


# --------------------------------------------------------------------------- #
# Event History (LookupEvents) and CloudTrail Lake results
# --------------------------------------------------------------------------- #


def record_from_lookup_event(event: Any, where: str) -> Any:
    """The record inside one LookupEvents ``Event`` (its ``CloudTrailEvent`` is the record as a JSON string)."""
    if type(event) is not dict:
        return _Bad(f"{where}expected an Event object, got {type(event).__name__}")
    raw = event.get("CloudTrailEvent")
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        return _Bad(f"{where}Event {event.get('EventId', '?')} has no CloudTrailEvent string")
    try:
        rec = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _Bad(f"{where}CloudTrailEvent is not valid JSON ({_short(exc)})")
    return rec if type(rec) is dict else _Bad(f"{where}CloudTrailEvent is not a JSON object")


def _camel_keys(*names: str) -> dict[str, str]:
    return {n.lower(): n for n in names}


#: Lake event data store columns (lower case) -> CloudTrail record keys.
LAKE_COLUMNS: dict[str, str] = _camel_keys(
    "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress",
    "userAgent", "errorCode", "errorMessage", "requestParameters", "responseElements", "additionalEventData",
    "requestID", "eventID", "readOnly", "resources", "eventType", "apiVersion", "managementEvent",
    "recipientAccountId", "sharedEventID", "annotation", "vpcEndpointId", "vpcEndpointAccountId",
    "serviceEventDetails", "addendum", "edgeDeviceDetails", "insightDetails", "eventCategory", "tlsDetails",
    "sessionCredentialFromConsole",
)  # fmt: skip
#: Struct fields of the Lake schema (lower case) -> CloudTrail keys; map columns keep their keys as written.
_LAKE_STRUCT_KEYS: dict[str, str] = _camel_keys(
    "type", "principalId", "arn", "accountId", "accessKeyId", "userName", "sessionContext", "attributes",
    "creationDate", "mfaAuthenticated", "sessionIssuer", "webIdFederationData", "federatedProvider",
    "sourceIdentity", "ec2RoleDelivery", "ec2IssuedInVPC", "onBehalfOf", "userId", "identityStoreArn",
    "inScopeOf", "sourceArn", "sourceAccount", "issuerType", "credentialsIssuedTo", "invokedBy",
    "identityProvider", "tlsVersion", "cipherSuite", "clientProvidedHostHeader", "arnPrefix",
)  # fmt: skip
_LAKE_STRUCTS = frozenset({"userIdentity", "resources", "tlsDetails"})
_LAKE_BOOLS = frozenset({"readOnly", "managementEvent", "sessionCredentialFromConsole"})
_LAKE_JSON_COLUMNS = ("eventjson",)


def _is_lake_row(obj: dict[str, Any]) -> bool:
    keys = {k.lower() for k in obj if isinstance(k, str)}
    return bool(keys & set(_LAKE_JSON_COLUMNS)) or {"eventname", "eventsource"} <= keys


def _merge_columns(row: Any) -> Any:
    """A ``QueryResultRow`` (a list of one-key column objects) as one dict."""
    if type(row) is not list:
        return row
    merged: dict[str, Any] = {}
    for col in row:
        if type(col) is dict:
            merged.update(col)
    return merged


def _from_lake_row(row: Any, where: str) -> Any:
    """Rebuild a CloudTrail record from one CloudTrail Lake result row.

    ``eventJson`` (the whole record) is used when the row has it. Otherwise the record is put together from the
    event data store's columns: lower-case names map back to CloudTrail's keys, JSON values are parsed,
    Trino-rendered structs (``{type=IAMUser, arn=...}``) are read, ``eventtime`` becomes ISO 8601 and the
    boolean columns booleans. A column value that cannot be read makes the row a skipped input, with the reason.
    """
    if type(row) is not dict:
        return _Bad(f"{where}expected a result row object, got {type(row).__name__}")
    lower = {str(k).lower(): v for k, v in row.items()}
    for col in _LAKE_JSON_COLUMNS:
        raw = lower.get(col)
        if isinstance(raw, dict):
            return raw
        if isinstance(raw, str) and raw.strip():
            try:
                whole = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                return _Bad(f"{where}eventJson is not valid JSON ({_short(exc)})")
            return whole if type(whole) is dict else _Bad(f"{where}eventJson is not a JSON object")
    rec: dict[str, Any] = {}
    for col, value in lower.items():
        key = LAKE_COLUMNS.get(col)
        if key is None or value is None or value == "":
            continue
        try:
            rec[key] = _lake_value(key, value)
        except ValueError as exc:
            return _Bad(f"{where}Lake column {col!r}: {exc}")
    return rec


def _lake_value(key: str, value: Any) -> Any:
    if key == "eventTime" and isinstance(value, str):
        return _iso_time(value)
    if key in _LAKE_BOOLS and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            parsed = _TrinoValue(value).parse()
        value = parsed
    if key in _LAKE_STRUCTS:
        return _camel_struct(value)
    if isinstance(value, dict):  # a map<string,string> column: nested values are JSON text
        return {k: maybe_json(v) for k, v in value.items()}
    return value


def maybe_json(value: Any) -> Any:
    """A CloudTrail Lake map value: JSON text of an object or array is parsed, anything else is kept."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _camel_struct(value: Any) -> Any:
    if isinstance(value, dict):
        return {_LAKE_STRUCT_KEYS.get(str(k).lower(), k): _camel_struct(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_camel_struct(v) for v in value]
    return value


_LAKE_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.\d+)?(?:Z|\+00:00| UTC)?$")


def _iso_time(value: str) -> str:
    """Lake's ``2024-05-01 10:00:00.000`` as CloudTrail's ``2024-05-01T10:00:00Z`` (other text unchanged)."""
    m = _LAKE_TIME.match(value.strip())
    return f"{m.group(1)}T{m.group(2)}Z" if m else value


class _TrinoValue:
    """A reader for the text Trino renders structs, maps and arrays as: ``{a=1, b={c=x}}``, ``[{...}, {...}]``.

    Scalars are strings (``null`` is None). The rendering is not an escaping format: a scalar that itself
    contains ``", "`` followed by ``name=`` cannot be told apart; ``SELECT eventJson`` avoids the question.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> Any:
        value = self._value()
        if self.pos != len(self.text):
            raise ValueError(f"cannot read {self.text[:60]!r} (not JSON, not a struct)")
        return value

    def _value(self) -> Any:
        ch = self.text[self.pos : self.pos + 1]
        if ch == "{":
            return self._struct()
        if ch == "[":
            return self._array()
        return self._scalar()

    def _struct(self) -> dict[str, Any]:
        self.pos += 1
        out: dict[str, Any] = {}
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return out
        while True:
            eq = self.text.find("=", self.pos)
            if eq < 0:
                raise ValueError(f"cannot read {self.text[:60]!r} (not JSON, not a struct)")
            name = self.text[self.pos : eq].strip()
            self.pos = eq + 1
            out[name] = self._value()
            if self.text.startswith(", ", self.pos):
                self.pos += 2
            elif self.text.startswith("}", self.pos):
                self.pos += 1
                return out
            else:
                raise ValueError(f"cannot read {self.text[:60]!r} (not JSON, not a struct)")

    def _array(self) -> list[Any]:
        self.pos += 1
        out: list[Any] = []
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return out
        while True:
            out.append(self._value())
            if self.text.startswith(", ", self.pos):
                self.pos += 2
            elif self.text.startswith("]", self.pos):
                self.pos += 1
                return out
            else:
                raise ValueError(f"cannot read {self.text[:60]!r} (not JSON, not an array)")

    def _scalar(self) -> Any:
        start = self.pos
        depth = 0
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if depth == 0 and (ch in "}]" or text.startswith(", ", self.pos)):
                break
            depth += (ch in "{[") - (ch in "}]")
            self.pos += 1
        raw = text[start : self.pos]
        return None if raw == "null" else raw


def _iter_csv(label: str, raw: bytes) -> Iterator[Item]:
    """CloudTrail Lake results saved as CSV: a header row, then one event per row."""
    if raw[:2] == _GZIP_MAGIC:
        raw, damage = _gunzip(raw)
        if damage is not None:
            yield (label, 1, _Bad(damage))
            return
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield (label, 1, _Bad(f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or not _is_lake_row(dict.fromkeys(reader.fieldnames, "")):
        yield (label, 1, _Bad("CSV without an eventJson column or eventName and eventSource columns"))
        return
    try:
        for row in reader:
            yield (label, reader.line_num, _from_lake_row(row, ""))
    except csv.Error as exc:
        yield (label, reader.line_num, _Bad(f"CSV: {exc}"))


def _short(exc: Exception) -> str:
    msg = str(exc)
    return msg if len(msg) <= 120 else msg[:117] + "..."


def iter_inputs(paths: Iterable[str], stdin: IO[bytes] | None = None) -> Iterator[Item]:
    """Every object of every path, in order. Paths must come from :func:`expand_paths`."""
    for p in paths:
        if p == STDIN:
            yield from iter_stdin(stdin)
        else:
            yield from iter_file(p)


# --------------------------------------------------------------------------- #
# Patterns
# --------------------------------------------------------------------------- #

_RULE_ID_IN_INPUT = re.compile(r'"?trailguard_rule"?\s*:\s*"([a-z0-9][a-z0-9-]{2,80})"')


@dataclass(frozen=True, slots=True)
class DeployedRule:
    """A central-bus EventBridge rule read from a synthesized template."""

    rule_id: str
    pattern: dict[str, Any]
    input_template: str | None
    input_paths: dict[str, str]
    state: str
    stack: str
    logical_id: str


def _bus_is_central(value: Any, resources: Mapping[str, Any], bus_name: str) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value == bus_name or value.endswith(f":event-bus/{bus_name}")
    if isinstance(value, Mapping):
        ref = value.get("Ref")
        if ref is None and "Fn::GetAtt" in value:
            ref = (value["Fn::GetAtt"] or [None])[0]
        if isinstance(ref, str):
            res = resources.get(ref, {})
            return bool(
                res.get("Type") == "AWS::Events::EventBus" and res.get("Properties", {}).get("Name") == bus_name
            )
        return bus_name in json.dumps(value)
    return False


def _flatten_token(value: Any) -> str | None:
    """A CloudFormation string, or a Fn::Join of literal parts, as plain text."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return str(sep).join(p if isinstance(p, str) else json.dumps(p) for p in parts)
    return None


def deployed_rules(cdk_out: Path, bus_name: str = CENTRAL_BUS_NAME) -> list[DeployedRule]:
    """The central-bus rules of every ``*.template.json`` under ``cdk_out``, in template order.

    The rule id comes from the target's input transformer (``{"trailguard_rule": "<id>", ...}``),
    else from the rule's Name or Description when it names exactly one catalog rule.
    """
    if not cdk_out.is_dir():
        raise PatternSourceError(f"{cdk_out}: not a directory (run `npx cdk synth` first)")
    catalog_ids = {r.id for r in load_catalog()}
    out: list[DeployedRule] = []
    for tpl_path in sorted(cdk_out.rglob("*.template.json")):
        try:
            tpl = json.loads(tpl_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PatternSourceError(f"{tpl_path}: cannot read template ({exc})") from exc
        resources = tpl.get("Resources", {}) if isinstance(tpl, Mapping) else {}
        for lid, res in resources.items():
            if not isinstance(res, Mapping) or res.get("Type") != "AWS::Events::Rule":
                continue
            props = res.get("Properties", {})
            if not _bus_is_central(props.get("EventBusName"), resources, bus_name):
                continue
            pattern = props.get("EventPattern")
            if not isinstance(pattern, Mapping):
                raise PatternSourceError(f"{tpl_path.name}: {lid}: EventPattern is not a literal object")
            rule_id, template, paths = rule_id_of(props, catalog_ids)
            if rule_id is None:
                raise PatternSourceError(
                    f"{tpl_path.name}: {lid}: cannot tell which catalog rule this is "
                    "(no trailguard_rule in the target input, no rule id in Name/Description)"
                )
            out.append(
                DeployedRule(
                    rule_id=rule_id,
                    pattern=dict(pattern),
                    input_template=template,
                    input_paths=paths,
                    state=str(props.get("State", "ENABLED")),
                    stack=tpl_path.name.removesuffix(".template.json"),
                    logical_id=lid,
                )
            )
    return out


def rule_id_of(props: Mapping[str, Any], catalog_ids: set[str]) -> tuple[str | None, str | None, dict[str, str]]:
    for target in props.get("Targets") or []:
        if not isinstance(target, Mapping):
            continue
        tr = target.get("InputTransformer")
        if isinstance(tr, Mapping):
            template = _flatten_token(tr.get("InputTemplate"))
            paths = tr.get("InputPathsMap") or {}
            if template:
                m = _RULE_ID_IN_INPUT.search(template)
                if m:
                    return m.group(1), template, {str(k): str(v) for k, v in paths.items()}
        literal = _flatten_token(target.get("Input"))
        if literal:
            m = _RULE_ID_IN_INPUT.search(literal)
            if m:
                return m.group(1), None, {}
    for key in ("Name", "Description"):
        text = props.get(key)
        if isinstance(text, str):
            hits = [rid for rid in catalog_ids if re.search(rf"(^|[^a-z0-9-]){re.escape(rid)}($|[^a-z0-9-])", text)]
            if len(hits) == 1:
                return hits[0], None, {}
    return None, None, {}


def rules_with_deployed_patterns(cdk_out: Path, rules: Iterable[Rule] | None = None) -> tuple[list[Rule], list[str]]:
    """Catalog rules with their patterns replaced by the deployed ones.

    Returns the rules and warnings (catalog rules that are not deployed). A
    deployed rule id that is not in the catalog is a :class:`PatternSourceError`.
    A rule whose pattern the stack split (several EventBridge rules of one stack send the same
    rule id) replays with the union of its parts (``{"$or": [part, ...]}``), which matches
    exactly what the deployed parts together match. Several stacks deploying one id (one per
    region) must deploy the same parts.
    """
    catalog = {r.id: r for r in (load_catalog() if rules is None else rules)}
    by_stack: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for dep in deployed_rules(cdk_out):
        if dep.rule_id not in catalog:
            raise PatternSourceError(f"{dep.stack}: {dep.logical_id}: rule {dep.rule_id!r} is not in the catalog")
        by_stack.setdefault(dep.rule_id, {}).setdefault(dep.stack, []).append(dep.pattern)
    found: dict[str, dict[str, Any]] = {}
    for rid, stacks in by_stack.items():
        variants = {json.dumps(sorted(json.dumps(p, sort_keys=True) for p in parts)) for parts in stacks.values()}
        if len(variants) > 1:
            raise PatternSourceError(f"{', '.join(sorted(stacks))}: two different deployed patterns for {rid}")
        parts = next(iter(stacks.values()))
        found[rid] = parts[0] if len(parts) == 1 else {"$or": parts}
    if not found:
        raise PatternSourceError(f"{cdk_out}: no trailguard rules on the central event bus in any template")
    out = [dataclasses.replace(catalog[rid], event_pattern=pat) for rid, pat in sorted(found.items())]
    warnings = [
        f"rule {rid} is in the catalog but not deployed; replay leaves it out"
        for rid in sorted(catalog)
        if rid not in found
    ]
    return out, warnings


# --------------------------------------------------------------------------- #
# Running
# --------------------------------------------------------------------------- #


_ABSENT = object()


def _literal_set(value: Any) -> frozenset[str] | None:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return frozenset(value)
    return None


def _name_filter(detail: Any) -> tuple[frozenset[str], tuple[str, ...]] | None:
    """Names and prefixes ``detail.eventName`` must match (top level, or every ``$or`` alternative), or None."""
    if not isinstance(detail, Mapping):
        return None

    def leaf(value: Any) -> tuple[frozenset[str], tuple[str, ...]] | None:
        if not isinstance(value, list) or not value:
            return None
        names: set[str] = set()
        prefixes: list[str] = []
        for f in value:
            if isinstance(f, str):
                names.add(f)
            elif isinstance(f, Mapping) and list(f) == ["prefix"] and isinstance(f["prefix"], str):
                prefixes.append(f["prefix"])
            else:
                return None
        return frozenset(names), tuple(prefixes)

    if "eventName" in detail:
        return leaf(detail["eventName"])
    alts = detail.get("$or")
    if not isinstance(alts, list) or not alts:
        return None
    names: set[str] = set()
    prefixes: list[str] = []
    for alt in alts:
        got = leaf(alt.get("eventName")) if isinstance(alt, Mapping) else None
        if got is None:
            return None
        names |= got[0]
        prefixes += got[1]
    return frozenset(names), tuple(prefixes)


def _leaf_paths(pattern: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
    """Every key path a pattern reads (``$or`` alternatives merged), shortest first, deduplicated."""
    found: set[tuple[str, ...]] = set()

    def walk(node: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
        for key, sub in node.items():
            if key == "$or" and isinstance(sub, list):
                for alt in sub:
                    if isinstance(alt, Mapping):
                        walk(alt, prefix)
            elif isinstance(sub, Mapping):
                walk(sub, (*prefix, key))
            else:
                found.add((*prefix, key))

    walk(pattern, ())
    return tuple(sorted(found, key=lambda p: (len(p), p)))


def _leaf(root: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` as a hashable token; raises LookupError when a list is crossed."""
    cur: Any = root
    for step in path:
        if type(cur) is not dict:
            if isinstance(cur, list):
                raise LookupError(step)
            return _ABSENT
        cur = cur.get(step, _ABSENT)
        if cur is _ABSENT:
            return _ABSENT
    t = type(cur)
    if t is str:
        return cur
    if cur is None or t in (int, float, bool):
        return (t.__name__, cur)
    return orjson.dumps(cur, option=orjson.OPT_SORT_KEYS)


#: Envelope keys fixed by a group's key (source, detail-type) or not read from the record.
_GROUP_KEYS = ("source", "detail-type")


@dataclass
class _Group:
    """The candidate patterns for one (source, detail-type, eventName), and a memo of the rules that match."""

    patterns: tuple[Mapping[str, Any], ...]
    detail_paths: tuple[tuple[str, ...], ...]
    top_paths: tuple[tuple[str, ...], ...]
    rules: tuple[Rule, ...] = ()  # the rule of each pattern
    memo: dict[tuple[Any, ...], tuple[Rule, ...]] = field(default_factory=dict)


class FastEvaluator:
    """``Evaluator.evaluate`` with a shortcut for bare records that match no rule.

    Most CloudTrail records match nothing. For a bare record, the candidate
    patterns come from the engine's pattern index, keyed by (source,
    detail-type, eventName); candidates whose literal ``source``,
    ``detail-type`` or ``eventName`` filters exclude the event are dropped
    once per key. The rest are tested on the values they read, memoized per
    key (user agents, identities and event names repeat), on the envelope
    EventBridge would deliver. When some candidate matches, and for anything
    that is not a plain bare record, the engine's own ``Evaluator.evaluate``
    runs. The verdict is the same by construction; tests/cli/test_replay.py
    compares both on every catalog example, generated traffic and the corpus.
    """

    MEMO_LIMIT = 100_000

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self.cfg = evaluator.cfg
        self._groups: dict[tuple[str, str, str], _Group] = {}
        self._sources: dict[str, str] = {}
        self.enabled = not any(_reads_top_key(r.event_pattern, "id") for r in evaluator.rules)
        #: The rules whose patterns matched the record :meth:`quick_none` last answered False for, in the pattern
        #: index's order (memoized with the verdict: issue 19), or None when it did not find them.
        self.matched: tuple[Rule, ...] | None = None

    def _group(self, env: Mapping[str, Any], name: str) -> _Group:
        key = (env["source"], env["detail-type"], name)
        patterns = []
        rules = []
        for pattern, rule in self.evaluator.index.candidates(env):
            names = _name_filter(pattern.get("detail"))
            sources = _literal_set(pattern.get("source"))
            dtypes = _literal_set(pattern.get("detail-type"))
            if (sources is not None and key[0] not in sources) or (dtypes is not None and key[1] not in dtypes):
                continue
            if names is not None and name not in names[0] and not name.startswith(names[1]):
                continue
            patterns.append(pattern)
            rules.append(rule)
        paths = sorted({p for pat in patterns for p in _leaf_paths(pat)})
        group = _Group(
            patterns=tuple(patterns),
            rules=tuple(rules),
            # eventName is part of the group key; every other path the candidates read is in the memo key
            detail_paths=tuple(p[1:] for p in paths if p[0] == "detail" and p != ("detail", "eventName")),
            top_paths=tuple(p for p in paths if p[0] not in ("detail", *_GROUP_KEYS)),
        )
        self._groups[key] = group
        return group

    def light_envelope(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """``trailguard_engine.events.wrap_record(record)`` without ``id`` and without copying ``detail``."""
        es = str(record.get("eventSource", ""))
        source = self._sources.get(es)
        if source is None:
            source = self._sources[es] = source_for(es)
        account = record.get("recipientAccountId")
        t = record.get("eventTime")
        region = record.get("awsRegion")
        return {
            "version": "0",
            "detail-type": detail_type_for(record),
            "source": source,
            "account": account if isinstance(account, str) else "",
            "time": t if isinstance(t, str) else "",
            "region": region if isinstance(region, str) else "",
            "resources": [],
            "detail": record,
        }

    def _no_match(self, record: dict[str, Any]) -> bool:
        es = record["eventSource"]
        source = self._sources.get(es)
        if source is None:
            source = self._sources[es] = source_for(es)
        name = record["eventName"]
        group = self._groups.get((source, detail_type_for(record), name))
        env: dict[str, Any] | None = None
        if group is None:
            env = self.light_envelope(record)
            group = self._group(env, name)
        if not group.patterns:
            return True
        try:
            key = tuple(
                [
                    v if type(v := record.get(p[0], _ABSENT)) is str and len(p) == 1 else _leaf(record, p)
                    for p in group.detail_paths
                ]
            )
            if group.top_paths:
                env = env or self.light_envelope(record)
                key += tuple(_leaf(env, p) for p in group.top_paths)
        except LookupError:
            env = env or self.light_envelope(record)
            return not any(matches(p, env) for p in group.patterns)
        hit = group.memo.get(key)
        if hit is None:
            if len(group.memo) >= self.MEMO_LIMIT:
                group.memo.clear()
            env = env or self.light_envelope(record)
            hit = group.memo[key] = tuple(
                r for p, r in zip(group.patterns, group.rules, strict=True) if matches(p, env)
            )
        self.matched = hit
        return not hit

    def quick_none(self, obj: Any) -> bool:
        """True when ``obj`` is a bare record that matches no rule (its verdict is ``none``).

        Raises :class:`RejectedEvent` exactly as ``Evaluator.evaluate`` would for a
        malformed bare record; False means "ask the Evaluator" (:meth:`judge`).
        """
        self.matched = None
        if not (
            self.enabled
            and type(obj) is dict
            and type(obj.get("eventName")) is str
            and type(obj.get("eventSource")) is str
            and not ("detail" in obj and "detail-type" in obj)
            and type(obj.get("eventTime")) is str
            and obj["eventTime"]
            and (type(obj.get("eventID")) is str or type(obj.get("requestID")) is str)
            and obj.get("eventType") != "AwsCloudTrailInsight"
            and "insightDetails" not in obj
        ):
            return False  # not a bare record (events.not_a_record): the Evaluator rejects it with the reason
        eid = obj.get("eventID")
        if (
            (eid is not None and (type(eid) is not str or len(eid) > _MAX_EVENT_ID))
            or _not_obj(obj.get("userIdentity"))
            or _not_obj(obj.get("requestParameters"))
            or _not_obj(obj.get("responseElements"))
        ):
            check_record(obj)  # the engine's own check: raises RejectedEvent with its reason
        return self._no_match(obj)

    def evaluate(self, obj: Any) -> EventResult:
        """Same result as ``Evaluator.evaluate(obj)``; raises RejectedEvent the same way."""
        if self.quick_none(obj):
            eid = obj.get("eventID")
            return EventResult(eid if isinstance(eid, str) else "", obj["eventName"], "none", ())
        return self.judge(obj)

    def judge(self, obj: Any) -> EventResult:
        """``Evaluator.evaluate(obj)`` right after :meth:`quick_none` answered False for ``obj``: the patterns it
        matched are not matched again."""
        return self.evaluator.evaluate(obj, matched=self.matched)


_MAX_EVENT_ID = 256


def _not_obj(value: Any) -> bool:
    return value is not None and type(value) is not dict


def _reads_top_key(pattern: Mapping[str, Any], key: str) -> bool:
    if key in pattern:
        return True
    alts = pattern.get("$or")
    return isinstance(alts, list) and any(isinstance(a, Mapping) and _reads_top_key(a, key) for a in alts)


#: What replay calls a change-record rule's finding that fires (severity INFO: recorded, never paged), and the
#: verdict of an event whose only firing findings are records.
RECORD = "record"


@dataclass
class ReplaySummary:
    """Counters of one replay run (nothing else is kept in memory)."""

    events: int = 0
    rejected: int = 0
    errors: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (rule, decision)
    severities: dict[str, str] = field(default_factory=dict)
    actions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (rule, action)
    callers: Counter[tuple[str, str]] = field(default_factory=Counter)  # (caller class, decision) of risky events

    def add(self, result: EventResult) -> None:
        """Count one event. A finding of a change-record rule (severity INFO) that fires is a ``record``, not an
        alert (the engine files it in Security Hub as INFORMATIONAL, never pages); so is the verdict of an event
        whose only firing findings are records (:func:`~trailguard_engine.model.overall_verdict`)."""
        self.events += 1
        self.verdicts[result.verdict] += 1
        for f in result.findings:
            decision = RECORD if f.decision == "alert" and f.severity == RECORD_SEVERITY else f.decision
            self.decisions[(f.rule, decision)] += 1
            self.severities[f.rule] = f.severity
            if f.action:
                self.actions[(f.rule, f.action)] += 1
            if f.caller is not None:
                self.callers[(f.caller.kind, decision)] += 1

    def to_json(self) -> dict[str, Any]:
        rules: dict[str, dict[str, Any]] = {}
        for (rule, decision), n in sorted(self.decisions.items()):
            entry = rules.setdefault(
                rule, {"severity": self.severities[rule], "remediate": 0, "alert": 0, RECORD: 0, "skip": 0}
            )
            entry[decision] += n
        return {
            "events": self.events,
            "rejected": self.rejected,
            "errors": self.errors,
            "verdicts": {k: self.verdicts.get(k, 0) for k in ("remediate", "alert", RECORD, "none")},
            "rules": rules,
        }


def build_evaluator(
    cfg: RuntimeConfig | None = None,
    *,
    mode_override: str | None = None,
    patterns_from: Path | None = None,
) -> tuple[Evaluator, list[str]]:
    """The evaluator replay uses, and warnings to show the user."""
    cfg = cfg or RuntimeConfig()
    if mode_override is not None:
        if mode_override not in ("remediate", "alert", "off"):
            raise TrailguardError(f"--mode-override: expected remediate, alert or off, got {mode_override!r}")
        cfg = cfg.with_override(mode_override)  # type: ignore[arg-type]
    if patterns_from is None:
        return Evaluator(None, cfg), []
    rules, warnings = rules_with_deployed_patterns(patterns_from)
    return Evaluator(rules, cfg), warnings


def replay(
    items: Iterable[Item],
    evaluator: Evaluator | FastEvaluator,
    *,
    on_result: Callable[[EventResult], None] | None = None,
    on_problem: Callable[[Problem], None] | None = None,
    summary: ReplaySummary | None = None,
    thresholds: ThresholdGate | None = None,
) -> ReplaySummary:
    """Judge every item; report results and problems through the callbacks as they come.

    Threshold rules (:mod:`trailguard_engine.window`) count in ``thresholds``, by default in memory with each
    record's own eventTime as the clock: the same verdicts as the engine on the same sequence of records.
    """
    with _collector_paused():
        return _replay(
            items, evaluator, on_result=on_result, on_problem=on_problem, summary=summary, thresholds=thresholds
        )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector off the hot loop (issue 19).

    The CLI's imports (boto3, pydantic, rich) leave tens of thousands of long-lived objects; every full
    collection walks them while the loop allocates. ``gc.freeze()`` moves them out of the collector's view and
    a higher generation-0 threshold makes collections rarer; both are restored afterwards.
    """
    caller_froze = gc.get_freeze_count() > 0  # then the caller owns the frozen set: leave it frozen
    gc.collect()
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(50_000, threshold[1], threshold[2])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if not caller_froze:
            gc.unfreeze()


def _replay(
    items: Iterable[Item],
    evaluator: Evaluator | FastEvaluator,
    *,
    on_result: Callable[[EventResult], None] | None,
    on_problem: Callable[[Problem], None] | None,
    summary: ReplaySummary | None,
    thresholds: ThresholdGate | None,
) -> ReplaySummary:
    summary = summary if summary is not None else ReplaySummary()
    fast = evaluator if isinstance(evaluator, FastEvaluator) else FastEvaluator(evaluator)
    evaluate = fast.judge
    gate = thresholds if thresholds is not None else ThresholdGate(MemoryWindowStore(), clock=None)
    by_id = fast.evaluator.by_id
    windowed = frozenset(r.id for r in fast.evaluator.rules if gated(r))
    quick_none = fast.quick_none
    add = summary.add
    none = 0
    for label, lineno, obj in items:
        if type(obj) is _Bad:
            _skipped(summary, on_problem, Problem(label, lineno, obj.reason), error=False)
            continue
        try:
            if quick_none(obj):
                none += 1
                if on_result:
                    eid = obj.get("eventID")
                    on_result(EventResult(eid if isinstance(eid, str) else "", obj["eventName"], "none", ()))
                continue
            result = evaluate(obj)
            if windowed and any(f.rule in windowed for f in result.findings):
                result = gate.apply_result(CloudTrailEvent(to_envelope(obj)), result, by_id)
        except RejectedEvent as exc:
            _skipped(summary, on_problem, Problem(label, lineno, str(exc)), error=False)
            continue
        except Exception as exc:  # a bug in a decision function: report it, never stop the run
            _skipped(summary, on_problem, Problem(label, lineno, _internal(exc)), error=True)
            continue
        add(result)
        if on_result:
            on_result(result)
    summary.events += none
    summary.verdicts["none"] += none
    return summary


# --------------------------------------------------------------------------- #
# Several processes (--jobs N): files judged in workers, merged in order
# --------------------------------------------------------------------------- #
#: Files in flight per worker: enough to keep the workers busy, few enough to bound the parent's memory.
_IN_FLIGHT_PER_JOB = 2


def default_jobs() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: Below this much JSON the workers cost more than they save: on 20k records (1.9 MB of gzip) ``--jobs 2``
#: was 0.25 s slower than one process, on 200k (18.9 MB) ~2 s faster; a line through the two put the
#: crossover near 4 MB of gzip, ~48 MiB of JSON (``bench/replay.py``, 2 cores, a shared machine).
PARALLEL_MIN_JSON_BYTES = 48 * 1024 * 1024
#: JSON bytes per gzip byte of CloudTrail log files: the bench's 200k corpus set is 18,894,774 bytes of gzip
#: for 237,860,833 of JSON (12.6).
GZIP_RATIO = 12


def auto_jobs(files: Sequence[str]) -> int:
    """``--jobs`` when not given: every core for inputs of at least :data:`PARALLEL_MIN_JSON_BYTES` of JSON
    (gzip counted :data:`GZIP_RATIO` times), else one process (small inputs are faster without workers)."""
    total = 0
    for f in files:
        with contextlib.suppress(OSError, ValueError):
            size = os.path.getsize(f)
            total += size * GZIP_RATIO if f.endswith(".gz") else size
    return default_jobs() if total >= PARALLEL_MIN_JSON_BYTES else 1


def can_fork() -> bool:
    """Workers are forked (they inherit the evaluator and callbacks); where fork is missing, replay stays serial."""
    import multiprocessing  # noqa: PLC0415 - only --jobs needs it

    return "fork" in multiprocessing.get_all_start_methods()


@dataclass(frozen=True)
class _Work:
    """What a forked worker inherits: the files, the evaluator, the item filter and the "none" line builder."""

    files: tuple[str, ...]
    fast: FastEvaluator
    keep: Callable[[Any], bool] | None
    none_line: Callable[[Any], bytes] | None


_WORK: _Work | None = None

#: A worker's report on one file, in input order. ``("none", n, data)``: n events without findings and their
#: output; ``("result", obj, result)``: an event the engine judged (threshold rules are counted by the parent, in
#: order); ``("rejected" | "error", problem)``; ``("fatal", message)``: the file could not be read.
_Entry = tuple[Any, ...]


def _worker_init() -> None:
    """Ctrl-C is the parent's to handle: a worker ignores it and is terminated (no traceback per worker)."""
    import signal  # noqa: PLC0415

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _judge_file(index: int) -> list[_Entry]:
    """Judge one file in a worker: the same steps as :func:`_replay`, up to the threshold gate."""
    work = _WORK
    assert work is not None
    quick_none = work.fast.quick_none
    evaluate = work.fast.judge
    keep, none_line = work.keep, work.none_line
    out: list[_Entry] = []
    block: list[bytes] = []
    none = 0

    def flush() -> None:
        nonlocal none
        if none:
            out.append(("none", none, b"".join(block)))
            block.clear()
            none = 0

    try:
        for label, lineno, obj in iter_file(work.files[index]):
            if keep is not None and not keep(obj):
                continue
            if type(obj) is _Bad:
                flush()
                out.append(("rejected", Problem(label, lineno, obj.reason)))
                continue
            try:
                if quick_none(obj):
                    none += 1
                    if none_line is not None:
                        block.append(none_line(obj))
                    continue
                result = evaluate(obj)
            except RejectedEvent as exc:
                flush()
                out.append(("rejected", Problem(label, lineno, str(exc))))
                continue
            except Exception as exc:  # a bug in a decision function: report it, never stop the run
                flush()
                out.append(("error", Problem(label, lineno, _internal(exc))))
                continue
            flush()
            out.append(("result", label, lineno, obj, result))
    except ReplayInputError as exc:
        flush()
        out.append(("fatal", str(exc)))
        return out
    flush()
    return out


def _internal(exc: Exception) -> str:
    return f"internal error judging the event: {type(exc).__name__}: {exc}"


def _skipped(
    summary: ReplaySummary, on_problem: Callable[[Problem], None] | None, problem: Problem, *, error: bool
) -> None:
    """Count an event that could not be judged (rejected input, or an internal error) and report it."""
    if error:
        summary.errors += 1
    else:
        summary.rejected += 1
    if on_problem:
        on_problem(problem)


def replay_files(
    files: Iterable[str],
    evaluator: Evaluator | FastEvaluator,
    *,
    jobs: int,
    keep: Callable[[Any], bool] | None = None,
    none_line: Callable[[Any], bytes] | None = None,
    on_output: Callable[[bytes], None] | None = None,
    on_object: Callable[[Any], None] | None = None,
    on_result: Callable[[EventResult], None] | None = None,
    on_problem: Callable[[Problem], None] | None = None,
    on_file: Callable[[str], None] | None = None,
    summary: ReplaySummary | None = None,
    thresholds: ThresholdGate | None = None,
) -> ReplaySummary:
    """:func:`replay` of ``files`` over ``jobs`` worker processes, with the same results in the same order.

    Workers parse and judge whole files; the parent takes their reports file by file, in input order, so the
    output and the summary are those of one process. Events that match no rule arrive as counts and, with
    ``none_line``, their output already built (``on_output``). Every other event reaches ``on_object`` (the
    object) then ``on_result``, after the parent has counted it for the threshold rules in input order, as
    :func:`replay` does. ``keep`` drops items before anything else (as a filter in front of :func:`replay`);
    ``on_file`` follows each finished file. Raises :class:`ReplayInputError` where :func:`replay` would.
    """
    global _WORK  # noqa: PLW0603 - the forked workers inherit it
    paths = tuple(files)
    summary = summary if summary is not None else ReplaySummary()
    fast = evaluator if isinstance(evaluator, FastEvaluator) else FastEvaluator(evaluator)
    gate = thresholds if thresholds is not None else ThresholdGate(MemoryWindowStore(), clock=None)
    by_id = fast.evaluator.by_id
    windowed = frozenset(r.id for r in fast.evaluator.rules if gated(r))
    import collections  # noqa: PLC0415
    import multiprocessing  # noqa: PLC0415

    with _collector_paused():
        _WORK = _Work(paths, fast, keep, none_line)
        pool = multiprocessing.get_context("fork").Pool(max(1, jobs), initializer=_worker_init)
        try:
            pending: collections.deque[Any] = collections.deque()
            following = iter(range(len(paths)))
            for index in itertools.islice(following, max(1, jobs) * _IN_FLIGHT_PER_JOB):
                pending.append((index, pool.apply_async(_judge_file, (index,))))
            while pending:
                index, future = pending.popleft()
                entries = future.get()
                nxt = next(following, None)
                if nxt is not None:
                    pending.append((nxt, pool.apply_async(_judge_file, (nxt,))))
                for entry in entries:
                    kind = entry[0]
                    if kind == "none":
                        summary.events += entry[1]
                        summary.verdicts["none"] += entry[1]
                        if on_output is not None and entry[2]:
                            on_output(entry[2])
                    elif kind == "result":
                        _, label, lineno, obj, result = entry
                        try:
                            if windowed and any(f.rule in windowed for f in result.findings):
                                result = gate.apply_result(CloudTrailEvent(to_envelope(obj)), result, by_id)
                        except RejectedEvent as exc:
                            _skipped(summary, on_problem, Problem(label, lineno, str(exc)), error=False)
                            continue
                        except Exception as exc:
                            _skipped(summary, on_problem, Problem(label, lineno, _internal(exc)), error=True)
                            continue
                        summary.add(result)
                        if on_object is not None:
                            on_object(obj)
                        if on_result is not None:
                            on_result(result)
                    elif kind in ("rejected", "error"):
                        _skipped(summary, on_problem, entry[1], error=kind == "error")
                    else:  # fatal
                        raise ReplayInputError(entry[1])
                if on_file is not None:
                    on_file(paths[index])
        finally:
            pool.terminate()
            pool.join()
            _WORK = None
    return summary
