"""Output of the commands that print results: formats, destinations, findings rows, and pipe-safe writing.

One ``-o/--output`` vocabulary for every command (:class:`Format`); ``--out FILE`` sends it to a file. Findings
(``replay``) render as a table, JSON, JSON Lines, CSV, SARIF 2.1.0 (code-scanning tools), OCSF 1.1 Detection
Findings (security lakes) or ASFF (Security Hub, built by the engine's own :func:`trailguard_engine.notify.asff`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, cast

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text
from trailguard_engine.events import CloudTrailEvent, to_envelope
from trailguard_engine.model import EventResult, Finding, Rule

from trailguard import __version__
from trailguard.filters import severity_rank

#: Shown at the end of each results command's --help (typer keeps ``\b`` blocks as written).
EXIT_CODES_HELP = (
    "\b\nExit codes: 0 clean; 1 input problems with --strict (or internal errors); 2 usage or config error; "
    "3 findings at or above --fail-on."
)
SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
OCSF_VERSION = "1.1.0"
EXIT_BROKEN_PIPE = 0  # like trailguard.cli.main: a reader that went away (| head) is not a failure


class Format(StrEnum):
    """Every output format; a command refuses the ones that do not apply to what it prints."""

    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    sarif = "sarif"
    ocsf = "ocsf"
    asff = "asff"


#: Formats that describe findings (not log rows).
FINDING_FORMATS = frozenset({Format.sarif, Format.ocsf, Format.asff})

SEVERITY_STYLES: dict[str, str] = {
    "CRITICAL": "bold red",
    "HIGH": "dark_orange",
    "MEDIUM": "yellow",
    "LOW": "dim",
    "INFO": "dim",
}
_SARIF_LEVEL = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note", "INFO": "note"}
#: GitHub code scanning reads ``security-severity`` (0.1-10) to rank security results.
_SARIF_SECURITY_SEVERITY = {"CRITICAL": "9.5", "HIGH": "8.0", "MEDIUM": "5.5", "LOW": "3.0", "INFO": "0.1"}
_OCSF_SEVERITY = {"INFO": (1, "Informational"), "LOW": (2, "Low"), "MEDIUM": (3, "Medium"), "HIGH": (4, "High"),
                  "CRITICAL": (5, "Critical")}  # fmt: skip


class PipeClosed(BaseException):
    """The reader of stdout went away (``| head``). A BaseException so no ``except Exception`` counts it as an
    error of the event being judged."""


def quiet_broken_pipe() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not print a BrokenPipeError."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


@dataclass
class Sink:
    """Where results go: stdout or ``--out FILE``; bytes written through :meth:`write` (batched, pipe-safe)."""

    stream: IO[bytes]
    path: Path | None = None
    is_terminal: bool = False

    def write(self, data: bytes) -> None:
        try:
            self.stream.write(data)
        except BrokenPipeError:
            raise PipeClosed from None

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise PipeClosed from None

    def text(self, s: str) -> None:
        self.write(s.encode("utf-8"))

    def close(self) -> None:
        self.flush()
        if self.path is not None:
            self.stream.close()


class OutputError(ValueError):
    """``--out`` cannot be written; the message says why and what to do."""


def open_sink(out: Path | None) -> Sink:
    """stdout, or ``out`` (its directory must exist: no surprise directory trees)."""
    if out is None:
        buf = getattr(sys.stdout, "buffer", None)
        stream: IO[bytes] = buf if buf is not None else cast(IO[bytes], _TextBytes(sys.stdout))
        return Sink(stream, None, sys.stdout.isatty())
    parent = out.expanduser().resolve().parent
    if not parent.is_dir():
        raise OutputError(f"--out {out}: directory {parent} does not exist (create it first, or choose another path)")
    if out.is_dir():
        raise OutputError(f"--out {out}: is a directory (give a file name)")
    try:
        return Sink(open(out, "wb"), out, False)
    except OSError as exc:
        raise OutputError(f"--out {out}: cannot write ({exc.strerror or exc})") from exc


class _TextBytes(io.RawIOBase):
    """A bytes writer over a text stream (stdout replaced by a test runner)."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._text.write(bytes(b).decode("utf-8"))
        return len(b)

    def flush(self) -> None:
        self._text.flush()


def console_for(sink: Sink) -> Console:
    """A rich console over the sink: terminal width on a TTY, unlimited (never truncated) otherwise."""
    file = io.TextIOWrapper(cast(IO[bytes], _SinkRaw(sink)), encoding="utf-8", write_through=True)
    if sink.is_terminal:
        return Console(file=file, highlight=False, force_terminal=True, width=Console().width)
    return Console(file=file, highlight=False, width=100_000, no_color=True, force_terminal=False)


class _SinkRaw(io.RawIOBase):
    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._sink.write(bytes(b))
        return len(b)


# --------------------------------------------------------------------------- #
# Findings
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class FindingRow:
    """One finding with the event it came from, flattened for every format."""

    finding: Finding
    event: CloudTrailEvent
    rule: Rule | None
    runbook: str

    @property
    def verdict(self) -> str:
        return (
            "record" if self.finding.decision == "alert" and self.finding.severity == "INFO" else self.finding.decision
        )

    @property
    def caller(self) -> str:
        return self.finding.caller.kind if self.finding.caller is not None else ""

    def to_json(self) -> dict[str, Any]:
        e = self.event
        return {
            "eventTime": e.event_time,
            "account": e.account,
            "region": e.region,
            "principal": e.principal_arn,
            "caller": self.caller or None,
            "rule": self.finding.rule,
            "title": self.rule.title if self.rule else self.finding.rule,
            "severity": self.finding.severity,
            "verdict": self.verdict,
            "action": self.finding.action,
            "reason": self.finding.reason,
            "runbook": self.runbook,
            "eventID": e.event_id,
            "eventName": e.event_name,
            "eventSource": e.event_source,
            "sourceIPAddress": e.source_ip,
        }


def finding_rows(
    obj: Any, result: EventResult, by_id: Mapping[str, Rule], runbook: Callable[[str], str]
) -> list[FindingRow]:
    """The findings of one event that fired (remediate, alert or record; silenced ``skip`` ones are counted in
    the summary instead)."""
    fired = [f for f in result.findings if f.decision != "skip"]
    if not fired:
        return []
    event = CloudTrailEvent(to_envelope(obj))
    return [FindingRow(f, event, by_id.get(f.rule), runbook(f.rule)) for f in fired]


def event_json(obj: Any, result: EventResult, runbook: Callable[[str], str]) -> dict[str, Any]:
    """One ``--json`` line: today's keys plus where, when, who, the top severity and its runbook (cheap: no
    envelope is built)."""
    out = result.to_json()
    rec: Any = obj.get("detail") if "detail-type" in obj and type(obj.get("detail")) is dict else obj
    ident = rec.get("userIdentity")
    out["eventTime"] = rec.get("eventTime")
    out["account"] = rec.get("recipientAccountId") or obj.get("account")
    out["region"] = rec.get("awsRegion") or obj.get("region")
    out["principal"] = ident.get("arn") if type(ident) is dict else None
    fired = [f for f in result.findings if f.decision != "skip"]
    top = max(fired, key=lambda f: severity_rank(f.severity)) if fired else None
    out["severity"] = top.severity if top else None
    out["runbook"] = runbook(top.rule) if top else None
    return out


def sort_rows(rows: Sequence[FindingRow]) -> list[FindingRow]:
    """Most severe first, then by time."""
    return sorted(rows, key=lambda r: (-severity_rank(r.finding.severity), r.event.event_time, r.finding.rule))


def findings_table(rows: Sequence[FindingRow]) -> Table:
    """Identifiers never wrap (a split ARN cannot be copied); the reason and runbook wrap."""
    table = Table(title=f"{len(rows)} findings", show_lines=True)
    table.add_column("time", no_wrap=True)
    table.add_column("account / region", no_wrap=True)
    table.add_column("principal (caller)", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("reason / runbook", ratio=1, min_width=24)
    for r in rows:
        e = r.event
        who = Text(e.principal_arn or "-")
        if r.caller:
            who.append(f"\n({r.caller})", style="dim")
        # Text, never markup: every field here but the rule id comes from the event, i.e. from whoever made the call.
        table.add_row(
            Text(e.event_time),
            Text(f"{e.account or '-'}\n{e.region or '-'}"),
            who,
            Text(r.finding.rule),
            Text(r.finding.severity, style=SEVERITY_STYLES.get(r.finding.severity, "")),
            Text(r.verdict + (f"\n{r.finding.action}" if r.finding.action and r.verdict == "remediate" else "")),
            Text(r.finding.reason) + Text(f"\n{r.runbook}", style="cyan"),
        )
    return table


CSV_COLUMNS: tuple[str, ...] = (
    "eventTime", "account", "region", "principal", "caller", "rule", "severity", "verdict", "action", "reason",
    "runbook", "eventID", "eventName", "eventSource", "sourceIPAddress",
)  # fmt: skip


_FORMULA_START = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?")


def spreadsheet_safe(value: Any) -> Any:
    """A cell a spreadsheet will not run: text starting like a formula gets a leading apostrophe (OWASP).

    Event fields (names, tags, user agents, ARNs) are written by whoever made the call; ``=HYPERLINK(...)`` in a
    role name must stay text when an analyst opens the CSV. Numbers, including negative ones, are left alone.
    """
    if isinstance(value, str) and len(value) > 1 and value[0] in _FORMULA_START and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def findings_csv(rows: Sequence[FindingRow]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else spreadsheet_safe(v) for k, v in r.to_json().items()})
    return buf.getvalue()


def sarif(rows: Sequence[FindingRow], catalog: Mapping[str, Rule], runbook: Callable[[str], str]) -> dict[str, Any]:
    """SARIF 2.1.0: one ``tool.driver.rules`` entry per rule that fired, one result per finding.

    CloudTrail findings have no source file, so each result's location is logical: the principal, qualified by
    account and region. ``helpUri`` must be an absolute URI: it is set when ``runbook_base_url`` is configured;
    the runbook path is always in ``help.text`` and the rule's properties.
    """
    fired = sorted({r.finding.rule for r in rows})
    index = {rid: i for i, rid in enumerate(fired)}
    rules = []
    for rid in fired:
        rule = catalog.get(rid)
        sev = rule.severity if rule else next(r.finding.severity for r in rows if r.finding.rule == rid)
        link = runbook(rid)
        entry: dict[str, Any] = {
            "id": rid,
            "name": _pascal(rid),
            "shortDescription": {"text": rule.title if rule else rid},
            "fullDescription": {"text": rule.description if rule else rid},
            "help": {"text": f"Runbook: {link}"},
            "defaultConfiguration": {"level": _SARIF_LEVEL.get(sev, "note")},
            "properties": {
                "security-severity": _SARIF_SECURITY_SEVERITY.get(sev, "0.1"),
                "severity": sev,
                "runbook": link,
                "tags": ["security", "cloudtrail", *(rule.mitre if rule else ())],
            },
        }
        if link.startswith("https://"):
            entry["helpUri"] = link
        rules.append(entry)
    results = []
    for r in rows:
        e = r.event
        principal = e.principal_arn or "unknown principal"
        results.append(
            {
                "ruleId": r.finding.rule,
                "ruleIndex": index[r.finding.rule],
                "level": _SARIF_LEVEL.get(r.finding.severity, "note"),
                "message": {"text": f"{r.finding.reason} ({e.event_name} by {principal} in {e.account} {e.region})"},
                "locations": [
                    {
                        "logicalLocations": [
                            {
                                "name": principal,
                                "fullyQualifiedName": f"{e.account or '-'}/{e.region or '-'}/{principal}",
                                "kind": "principal",
                            }
                        ]
                    }
                ],
                "partialFingerprints": {"eventID/rule": f"{e.event_id}/{r.finding.rule}"},
                "properties": {
                    "eventTime": e.event_time,
                    "eventID": e.event_id,
                    "eventName": e.event_name,
                    "account": e.account,
                    "region": e.region,
                    "caller": r.caller or None,
                    "verdict": r.verdict,
                    "action": r.finding.action,
                },
            }
        )
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "trailguard", "version": __version__, "rules": rules}},
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def _pascal(rule_id: str) -> str:
    return "".join(part.capitalize() for part in rule_id.split("-"))


def _epoch_ms(event_time: str) -> int:
    try:
        return int(datetime.fromisoformat(event_time).timestamp() * 1000)
    except ValueError:
        return 0


_ACTIVITY = (("Delete", 4), ("Remove", 4), ("Detach", 4), ("Create", 1), ("Run", 1), ("Get", 2), ("List", 2),
             ("Describe", 2), ("Lookup", 2))  # fmt: skip


def api_activity(event: CloudTrailEvent) -> dict[str, Any]:
    """The event as an OCSF API Activity (class_uid 6003)."""
    activity_id = next((n for prefix, n in _ACTIVITY if event.event_name.startswith(prefix)), 0)
    if activity_id == 0:
        activity_id = 2 if event.read_only else 3
    names = {1: "Create", 2: "Read", 3: "Update", 4: "Delete"}
    ident = event.identity
    user: dict[str, Any] = {"uid": event.principal_arn, "type": event.identity_type}
    if isinstance(ident.get("accountId"), str):
        user["account"] = {"uid": ident["accountId"], "type_id": 10, "type": "AWS Account"}
    out: dict[str, Any] = {
        "class_uid": 6003,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": names[activity_id],
        "type_uid": 6003 * 100 + activity_id,
        "severity_id": 1,
        "time": _epoch_ms(event.event_time),
        "status_id": 2 if event.failed else 1,
        "status": "Failure" if event.failed else "Success",
        "metadata": {
            "version": OCSF_VERSION,
            "uid": event.event_id,
            "product": {"name": "CloudTrail", "vendor_name": "AWS"},
        },
        "cloud": {
            "provider": "AWS",
            "account": {"uid": event.account, "type_id": 10, "type": "AWS Account"},
            "region": event.region,
        },
        "actor": {"user": user, **({"invoked_by": event.invoked_by} if event.invoked_by else {})},
        "api": {
            "operation": event.event_name,
            "service": {"name": event.event_source},
            "request": {"uid": str(event.detail.get("requestID") or "")},
        },
        "src_endpoint": {"ip": event.source_ip} if event.source_ip else {},
    }
    if event.user_agent:
        out["http_request"] = {"user_agent": event.user_agent}
    return out


def ocsf(row: FindingRow) -> dict[str, Any]:
    """The finding as an OCSF Detection Finding (class_uid 2004), with the API Activity it is about."""
    e = row.event
    sev_id, sev = _OCSF_SEVERITY.get(row.finding.severity, (0, "Unknown"))
    activity = api_activity(e)
    title = row.rule.title if row.rule else row.finding.rule
    return {
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "time": activity["time"],
        "severity_id": sev_id,
        "severity": sev,
        "status_id": 1,
        "status": "New",
        "message": row.finding.reason,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "trailguard", "vendor_name": "trailguard", "version": __version__},
        },
        "finding_info": {
            "uid": f"trailguard/{row.finding.rule}/{e.event_id}",
            "title": title,
            "desc": row.finding.reason,
            "types": [row.rule.category] if row.rule else [],
            "analytic": {"uid": row.finding.rule, "name": row.finding.rule, "type_id": 1, "type": "Rule"},
            "src_url": row.runbook,
            "related_events": [{"uid": e.event_id, "type_uid": activity["type_uid"], "product_uid": "CloudTrail"}],
            **({"attacks": [{"technique": {"uid": t}} for t in row.rule.mitre]} if row.rule and row.rule.mitre else {}),
        },
        "cloud": activity["cloud"],
        "actor": activity["actor"],
        "api": activity["api"],
        "src_endpoint": activity["src_endpoint"],
        "evidences": [
            {
                "actor": activity["actor"],
                "api": activity["api"],
                "src_endpoint": activity["src_endpoint"],
                "data": activity,
            }
        ],
        "remediation": {"desc": f"See the runbook {row.runbook}", "references": [row.runbook]},
        "unmapped": {
            "trailguard": {"verdict": row.verdict, "action": row.finding.action, "caller": row.caller or None}
        },
    }


def asff_doc(row: FindingRow) -> dict[str, Any]:
    """The finding in ASFF, from the engine's own builder (what it would import), as a dry-run outcome.

    Replay runs nowhere: the event's account and region stand in for the engine's, and the event time for "now",
    so the same input gives the same output.
    """
    # Imported here: the engine's notifier pulls in boto3, which every other format (and replay) does without.
    from trailguard_engine.notify import Outcome, asff  # noqa: PLC0415

    e = row.event
    now = datetime.fromisoformat(e.event_time) if e.event_time else datetime(1970, 1, 1, tzinfo=UTC)
    return asff(
        row.finding,
        row.rule,
        e,
        Outcome("dry_run", "replay: judged offline, nothing changed"),
        engine_account=e.account or "000000000000",
        engine_region=e.region or "us-east-1",
        runbook=row.runbook,
        now=now if now.tzinfo else now.replace(tzinfo=UTC),
    )


def write_json(sink: Sink, doc: Any) -> None:
    sink.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")


def iter_jsonl(docs: Iterator[Any] | Sequence[Any]) -> Iterator[bytes]:
    dumps = orjson.dumps
    for d in docs:
        yield dumps(d) + b"\n"


class TableOrJson(StrEnum):
    """``-o`` for the commands whose results are a report, not findings or rows (rules, cost, verify, redrive)."""

    table = "table"
    json = "json"


#: The shared ``-o/--output`` option of those commands; ``--json`` stays as its alias.
OUTPUT_TABLE_OR_JSON_HELP = "table (default) or json; --json is -o json."


def wants_json(as_json: bool, output: TableOrJson | None) -> bool:
    """True for ``--json`` or ``-o json``; ``--json`` with ``-o table`` is a usage error (exit 2)."""
    if as_json and output is TableOrJson.table:
        import typer  # noqa: PLC0415 - only the CLI layer raises typer errors

        raise typer.BadParameter("--json is -o json; it cannot be combined with -o table", param_hint="-o")
    return as_json or output is TableOrJson.json
