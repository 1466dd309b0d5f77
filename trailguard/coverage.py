"""Coverage as data: the catalog against public CloudTrail rule sets (``python -m trailguard.coverage``).

``docs/coverage/sources/<source>.yaml`` holds facts taken from Sigma, Panther, Elastic and Stratus Red Team
(rule path or id, eventSource:eventName pairs, a condition written here, a value tag, optionally a synthetic
``request`` that carries the condition). For each item this module builds one minimal CloudTrail record per
event, in the EventBridge envelope, and asks the *current* catalog two questions through the same code the
engine runs (:class:`~trailguard_engine.evaluate.Evaluator`): which rule patterns select it, and which
decisions fire (alert or remediate) for it. From that an item is

* ``covered``: a rule fires for every event of the item;
* ``partial``: a rule selects or fires for some of it, not all (the reason names what is left);
* ``missing``: no rule pattern selects any of its events.

``docs/coverage/overrides.yaml`` records the human judgements a synthetic record cannot make: ``out of scope``
(not a CloudTrail management event, needs GuardDuty, a statistical baseline, informational only ...),
``partial`` with why, or ``covered`` naming the rules whose decision covers the source's condition (used where
the condition cannot be carried by one record, such as a threshold over many calls). Every override needs a
``why``. The output (``docs/coverage.md``) is sorted and carries no timestamp, so a test can check it is
fresh: regenerating must give the same text.

A change-record rule (severity INFO, :func:`~trailguard_engine.catalog.is_record_rule`) fires, so it covers
an item, but it only records the call (Security Hub INFORMATIONAL, audit log), it never alerts. The report
says so: such rules are marked ``(record)`` in the rules column, and the summary counts, per source, the
covered items that only change records cover (no alerting rule among the rules that cover them).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from trailguard_engine.catalog import is_record_rule, load_catalog
from trailguard_engine.evaluate import Evaluator, decide
from trailguard_engine.events import CloudTrailEvent, detail_type_for, source_for
from trailguard_engine.model import Rule
from trailguard_engine.runtime_config import RuntimeConfig
from trailguard_engine.window import ITEMS_PARAM

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "docs" / "coverage"
SOURCES_DIR = DATA_DIR / "sources"
OVERRIDES = DATA_DIR / "overrides.yaml"
OUTPUT = ROOT / "docs" / "coverage.md"

#: Source files in report order.
SOURCES: tuple[str, ...] = ("sigma", "panther", "elastic", "stratus")
STATUSES: tuple[str, ...] = ("covered", "partial", "missing", "out of scope")
VALUES: tuple[str, ...] = ("high", "medium", "low")
#: Marks a change-record rule (severity INFO) in the report's rules column.
RECORD_MARK = " (record)"
#: Statuses an override may set (``missing`` is only ever computed).
OVERRIDE_STATUSES = frozenset({"covered", "partial", "out of scope"})

ACCOUNT = "111122223333"
REGION = "us-east-1"
EVENT_TIME = "2026-10-01T12:00:00Z"
CLI_AGENT = "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.9"
_READ_PREFIXES = ("Get", "List", "Describe", "BatchGet", "Search", "Lookup", "Head")
#: Calls named like reads that CloudTrail records with ``readOnly: false`` (as in recorded samples); sign-in
#: events (ConsoleLogin, GetSigninToken) are recorded as writes too.
_WRITES_NAMED_LIKE_READS = frozenset({"GetFederationToken"})
_IDENTITIES: dict[str, dict[str, Any]] = {
    "iam-user": {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEALICE",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAEXAMPLEALICE001",
        "userName": "alice",
    },
    "root": {
        "type": "Root",
        "principalId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:root",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLEROOT0001",
    },
    "assumed-role": {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLEOPS:i-0abc1234def567890",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/i-0abc1234def567890",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLEOPS00001",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLEOPS",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/ops",
                "accountId": ACCOUNT,
                "userName": "ops",
            },
            "attributes": {"creationDate": EVENT_TIME, "mfaAuthenticated": "false"},
        },
    },
    "federated-user": {
        "type": "FederatedUser",
        "principalId": f"{ACCOUNT}:session",
        "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/session",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLEFED00001",
        "sessionContext": {
            "sessionIssuer": {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLEALICE",
                "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
                "accountId": ACCOUNT,
                "userName": "alice",
            },
            "attributes": {"creationDate": EVENT_TIME, "mfaAuthenticated": "false"},
        },
    },
    "external-role": {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLEEXT00001:x",
        "arn": "arn:aws:sts::999988887777:assumed-role/caller/x",
        "accountId": "999988887777",
        "accessKeyId": "ASIAEXAMPLEEXT00001",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLEEXT00001",
                "arn": "arn:aws:iam::999988887777:role/caller",
                "accountId": "999988887777",
                "userName": "caller",
            },
            "attributes": {"creationDate": EVENT_TIME, "mfaAuthenticated": "false"},
        },
    },
    # An unauthenticated S3 request (a public bucket or object): CloudTrail writes no principal, only this.
    "anonymous": {"type": "AWSAccount", "principalId": "", "accountId": "anonymous"},
    # The instance identity credentials every EC2 instance gets from IMDS (the AWS-reserved role name aws:*).
    "instance-identity": {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLEIDENT001:i-0abc1234def567890",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/aws:ec2-instance/i-0abc1234def567890",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLEIDENT001",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLEIDENT001",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/aws:ec2-instance",
                "accountId": ACCOUNT,
                "userName": "aws:ec2-instance",
            },
            "attributes": {"creationDate": EVENT_TIME, "mfaAuthenticated": "false"},
            "ec2RoleDelivery": "2.0",
        },
    },
}


class CoverageError(ValueError):
    """The coverage data is malformed (the message names the file and item)."""


@dataclass(frozen=True, slots=True)
class Item:
    """One rule or technique of a source, as facts."""

    source: str
    id: str
    events: tuple[tuple[str, str], ...]
    condition: str
    value: str
    path: str = ""
    request: Mapping[str, Any] = field(default_factory=dict)
    response: Mapping[str, Any] | None = None
    additional: Mapping[str, Any] | None = None
    identity: str = "iam-user"
    user_agent: str = CLI_AGENT
    error_code: str | None = None
    #: The record's ``resources`` list (S3 data events name buckets with their owning account there).
    resources: tuple[Mapping[str, Any], ...] = ()
    #: How many calls (on distinct resources) the source's condition takes: a threshold rule (``params.threshold``)
    #: covers the item only when this reaches its count.
    calls: int = 1
    #: For an item that selects on any call (``events`` empty, e.g. the root user or a user agent): calls
    #: chosen here to probe the catalog with. Ours, not the source's; shown as "(any call)".
    probe: tuple[tuple[str, str], ...] = ()

    @property
    def probed(self) -> tuple[tuple[str, str], ...]:
        """The calls the classifier builds records for: the item's own, else its probe calls."""
        return self.events or self.probe


@dataclass(frozen=True, slots=True)
class Result:
    """How the catalog covers one item."""

    item: Item
    status: str
    rules: tuple[str, ...]
    why: str
    overridden: bool = False


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    title: str
    repository: str
    commit: str
    items: tuple[Item, ...]


# --------------------------------------------------------------------------- #
# Loading
# --------------------------------------------------------------------------- #
def _event_pair(text: Any, where: str) -> tuple[str, str]:
    if not isinstance(text, str) or text.count(":") != 1:
        raise CoverageError(f"{where}: event {text!r} is not 'eventSource:eventName'")
    es, en = text.split(":")
    if not es.endswith(".amazonaws.com") or not en:
        raise CoverageError(f"{where}: event {text!r} is not 'eventSource:eventName'")
    return es, en


def _calls(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CoverageError(f"{where}: calls must be a positive integer")
    return value


def threshold_count(rule: Rule) -> int:
    """How many qualifying events a rule needs before it fires (1 unless it has ``params.threshold``)."""
    threshold = rule.params.get("threshold")
    count = threshold.get("count") if isinstance(threshold, Mapping) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 1 else 1


def _counted(params: Mapping[str, Any]) -> int:
    """What one record adds to a threshold window: its distinct items (secrets, parameters ...), at least 1.

    One synthetic record stands for each of the item's ``calls``, each on other resources, as the sources'
    conditions ("20 secrets read") mean.
    """
    items = params.get(ITEMS_PARAM)
    return max(1, len(items)) if isinstance(items, list) else 1


def parse_source(doc: Any, where: str) -> Source:
    """A :class:`Source` from one ``sources/<name>.yaml`` document."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("items"), list):
        raise CoverageError(f"{where}: expected a mapping with an 'items' list")
    items: list[Item] = []
    seen: set[str] = set()
    for raw in doc["items"]:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
            raise CoverageError(f"{where}: every item needs a string 'id'")
        iid = raw["id"]
        at = f"{where}: {iid}"
        if iid in seen:
            raise CoverageError(f"{at}: duplicate id")
        seen.add(iid)
        value = raw.get("value")
        if value not in VALUES:
            raise CoverageError(f"{at}: value must be one of {VALUES}")
        condition = raw.get("condition")
        if not isinstance(condition, str) or not condition.strip():
            raise CoverageError(f"{at}: condition is required")
        events = tuple(_event_pair(e, at) for e in raw.get("events") or ())
        probe = tuple(_event_pair(e, at) for e in raw.get("probe") or ())
        if events and probe:
            raise CoverageError(f"{at}: probe is only for items without events")
        identity = raw.get("identity", "iam-user")
        if identity not in _IDENTITIES:
            raise CoverageError(f"{at}: identity must be one of {sorted(_IDENTITIES)}")
        items.append(
            Item(
                source=str(doc.get("name", where)),
                id=iid,
                events=events,
                condition=condition.strip(),
                value=value,
                path=str(raw.get("path", "")),
                request=dict(raw.get("request") or {}),
                response=raw.get("response"),
                additional=raw.get("additional"),
                identity=identity,
                user_agent=str(raw.get("user_agent", CLI_AGENT)),
                error_code=raw.get("error_code"),
                probe=probe,
                calls=_calls(raw.get("calls", 1), at),
                resources=tuple(r for r in raw.get("resources") or () if isinstance(r, Mapping)),
            )
        )
    return Source(
        name=str(doc.get("name", where)),
        title=str(doc.get("title", doc.get("name", where))),
        repository=str(doc.get("repository", "")),
        commit=str(doc.get("commit", "")),
        items=tuple(sorted(items, key=lambda i: i.id)),
    )


def load_sources(sources_dir: Path = SOURCES_DIR) -> tuple[Source, ...]:
    out = []
    for name in SOURCES:
        path = sources_dir / f"{name}.yaml"
        src = parse_source(yaml.safe_load(path.read_text(encoding="utf-8")), path.name)
        if src.name != name:
            raise CoverageError(f"{path.name}: name {src.name!r} must be {name!r}")
        out.append(src)
    return tuple(out)


def load_overrides(path: Path = OVERRIDES) -> dict[str, dict[str, dict[str, Any]]]:
    """``{source: {item id: {status, why, rules?}}}``, validated for shape (names are checked by tests)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(doc, Mapping):
        raise CoverageError(f"{path.name}: expected a mapping of source -> item -> override")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for source, entries in doc.items():
        if source not in SOURCES or not isinstance(entries, Mapping):
            raise CoverageError(f"{path.name}: unknown source {source!r} or not a mapping")
        for iid, ov in entries.items():
            at = f"{path.name}: {source}/{iid}"
            if not isinstance(ov, Mapping) or ov.get("status") not in OVERRIDE_STATUSES:
                raise CoverageError(f"{at}: status must be one of {sorted(OVERRIDE_STATUSES)}")
            if not isinstance(ov.get("why"), str) or not ov["why"].strip():
                raise CoverageError(f"{at}: why is required")
            rules = ov.get("rules") or []
            if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
                raise CoverageError(f"{at}: rules must be a list of rule ids")
            if ov["status"] == "covered" and not rules:
                raise CoverageError(f"{at}: covered needs the rules that cover it")
            out.setdefault(str(source), {})[str(iid)] = {
                "status": ov["status"],
                "why": " ".join(ov["why"].split()),
                "rules": list(rules),
            }
    return out


# --------------------------------------------------------------------------- #
# Classification
# --------------------------------------------------------------------------- #
def synthetic_record(item: Item, event_source: str, event_name: str) -> dict[str, Any]:
    """A minimal CloudTrail record for one (eventSource, eventName) of ``item``, in the EventBridge envelope."""
    seed = f"{item.source}/{item.id}/{event_source}/{event_name}"
    event_id = str(uuid.UUID(hashlib.sha256(seed.encode()).hexdigest()[:32]))
    console = event_name in ("ConsoleLogin", "CheckMfa") or event_source == "signin.amazonaws.com"
    detail: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": _IDENTITIES[item.identity],
        "eventTime": EVENT_TIME,
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": item.user_agent,
        "requestParameters": dict(item.request) if item.request else None,
        "responseElements": item.response,
        "requestID": event_id,
        "eventID": event_id,
        "readOnly": not console
        and event_name.startswith(_READ_PREFIXES)
        and event_name not in _WRITES_NAMED_LIKE_READS,
        "eventType": "AwsConsoleSignIn" if console else "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    if item.additional is not None:
        detail["additionalEventData"] = item.additional
    if item.resources:
        detail["resources"] = [dict(r) for r in item.resources]
    if item.error_code:
        detail["errorCode"] = item.error_code
        detail["errorMessage"] = "synthetic failure"
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type_for(detail),
        "source": source_for(event_source),
        "account": ACCOUNT,
        "time": EVENT_TIME,
        "region": REGION,
        "resources": [],
        "detail": detail,
    }


class Classifier:
    """Classify items against one catalog (build once)."""

    def __init__(self, rules: Iterable[Rule] | None = None) -> None:
        self.rules = tuple(load_catalog() if rules is None else rules)
        self.cfg = RuntimeConfig()
        self.evaluator = Evaluator(self.rules, self.cfg)
        self.rule_ids = frozenset(r.id for r in self.rules)
        #: Ids of the change-record rules (severity INFO): they record, they do not alert.
        self.records = record_rule_ids(self.rules)

    def selecting(self, item: Item, event_source: str, event_name: str) -> list[Rule]:
        """Rules whose pattern selects the synthetic record (and that EventBridge would deliver it to)."""
        return self.evaluator.matching_rules(synthetic_record(item, event_source, event_name))

    def probe(self, item: Item) -> dict[str, dict[tuple[str, str], list[str]]]:
        """Per outcome (``fired``, ``held``, ``skipped``) and per call: the rules whose pattern selects it.

        ``held``: the decision fires but the rule's threshold needs more than the source's condition makes
        (``item.calls`` records, each adding its distinct items to the window).
        """
        out: dict[str, dict[tuple[str, str], list[str]]] = {"fired": {}, "held": {}, "skipped": {}}
        for es, en in item.probed:
            envelope = synthetic_record(item, es, en)
            event = CloudTrailEvent(envelope)
            for rule in self.evaluator.matching_rules(envelope):
                finding = decide(event, rule, self.cfg)
                if finding.decision not in ("alert", "remediate"):
                    outcome = "skipped"
                elif threshold_count(rule) > item.calls * _counted(finding.params):
                    outcome = "held"
                else:
                    outcome = "fired"
                out[outcome].setdefault((es, en), []).append(rule.id)
        return out

    def classify(self, item: Item, override: Mapping[str, Any] | None = None) -> Result:
        outcomes = self.probe(item)
        if override is not None:
            return Result(item, override["status"], tuple(sorted(override["rules"])), override["why"], True)
        if not item.probed:
            return Result(item, "missing", (), "no API call to select (needs a judgement in overrides.yaml)")

        def rules(outcome: str) -> set[str]:
            return {r for rs in outcomes[outcome].values() for r in rs}

        fired, held, skipped = rules("fired"), rules("held") - rules("fired"), rules("skipped")
        skipped -= fired | held
        unfired = [en for es, en in item.probed if (es, en) not in outcomes["fired"]]
        if not unfired:
            return Result(item, "covered", tuple(sorted(fired)), "")
        if not (fired or held or skipped):
            return Result(item, "missing", (), "")
        parts = [f"no decision fires for {', '.join(unfired)}"]
        if held:
            parts.append(f"{', '.join(sorted(held))} fire only past a threshold the source's {item.calls} call(s) miss")
        if skipped:
            parts.append(f"selected but judged benign by {', '.join(sorted(skipped))}")
        return Result(item, "partial", tuple(sorted(fired | held | skipped)), "; ".join(parts))


def classify_all(
    sources: Sequence[Source], overrides: Mapping[str, Mapping[str, Mapping[str, Any]]], classifier: Classifier
) -> dict[str, list[Result]]:
    return {s.name: [classifier.classify(i, (overrides.get(s.name) or {}).get(i.id)) for i in s.items] for s in sources}


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, slots=True)
class Summary:
    counts: dict[str, int]

    @property
    def in_scope(self) -> int:
        return self.counts["covered"] + self.counts["partial"] + self.counts["missing"]

    @property
    def percent(self) -> float:
        """Covered share of the in-scope items (partial counts as not covered)."""
        return 100.0 * self.counts["covered"] / self.in_scope if self.in_scope else 100.0

    @property
    def missing_high(self) -> int:
        return self.counts.get("missing-high", 0)

    @property
    def records_only(self) -> int:
        """Covered items that only change records (INFO rules) cover: counted as covered, they never alert."""
        return self.counts.get("records-only", 0)


def record_rule_ids(rules: Iterable[Rule] | None = None) -> frozenset[str]:
    """Ids of the change-record rules (severity INFO) of ``rules`` (default: the catalog)."""
    return frozenset(r.id for r in (load_catalog() if rules is None else rules) if is_record_rule(r))


def records_only(result: Result, records: frozenset[str]) -> bool:
    """True for a covered item whose covering rules are all change records (no alerting rule covers it)."""
    return result.status == "covered" and bool(result.rules) and set(result.rules) <= records


def summarize(results: Sequence[Result], records: frozenset[str] = frozenset()) -> Summary:
    """Counts per status; ``records``: the change-record rule ids, for the ``records-only`` count."""
    counts = dict.fromkeys(STATUSES, 0)
    counts["missing-high"] = 0
    counts["records-only"] = 0
    for r in results:
        counts[r.status] += 1
        if r.status == "missing" and r.item.value == "high":
            counts["missing-high"] += 1
        if records_only(r, records):
            counts["records-only"] += 1
    return Summary(counts)


def _rules_cell(rules: Iterable[str], records: frozenset[str]) -> str:
    return ", ".join(r + (RECORD_MARK if r in records else "") for r in rules)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _events(item: Item) -> str:
    if not item.events:
        probe = ", ".join(en for _, en in item.probe)
        return f"(any call; probed with {probe})" if probe else "(any call)"
    by_source: dict[str, list[str]] = {}
    for es, en in item.events:
        by_source.setdefault(es.removesuffix(".amazonaws.com"), []).append(en)
    return "; ".join(f"{s}: {', '.join(names)}" for s, names in by_source.items())


def render(
    sources: Sequence[Source], results: Mapping[str, Sequence[Result]], records: frozenset[str] = frozenset()
) -> str:
    """The Markdown report; ``records``: the change-record rule ids (marked, and counted in the summary)."""
    lines = [
        "# Coverage against public CloudTrail rule sets",
        "",
        "Generated by `python -m trailguard.coverage` from `docs/coverage/` (facts from the public rule sets,",
        "see `docs/coverage/README.md`) and the current catalog; `tests/catalog/test_coverage.py` fails when this",
        "file is stale. Do not edit by hand: change the data or `docs/coverage/overrides.yaml` and regenerate.",
        "",
        "An item is **covered** when a catalog rule's pattern selects each of its API calls and the rule's decision",
        "fires (alert or remediate) on a minimal record carrying the item's condition; **partial** when only some",
        "of it is selected or the decision judges the condition differently; **missing** when nothing selects it;",
        "**out of scope** with the reason. Coverage is covered / in scope (covered + partial + missing).",
        "A reason marked (judged) comes from `docs/coverage/overrides.yaml`.",
        "",
        "A rule marked (record) is a change record (severity INFO): it fires, so it covers, but it only records",
        "the call (a Security Hub INFORMATIONAL finding and the engine's audit log), it never alerts or acts.",
        "The summary's last column counts the covered items that only change records cover.",
        "",
        "## Summary",
        "",
        "| source | items | covered | partial | missing | out of scope | coverage of in-scope | missing high-value "
        "| covered by records only |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    total: list[Result] = []
    for s in sources:
        rs = results[s.name]
        total.extend(rs)
        sm = summarize(rs, records)
        c = sm.counts
        lines.append(
            f"| {s.title} | {len(rs)} | {c['covered']} | {c['partial']} | {c['missing']} | {c['out of scope']} "
            f"| {sm.percent:.1f}% | {sm.missing_high} | {sm.records_only} |"
        )
    sm = summarize(total, records)
    c = sm.counts
    lines.append(
        f"| **total** | {len(total)} | {c['covered']} | {c['partial']} | {c['missing']} | {c['out of scope']} "
        f"| {sm.percent:.1f}% | {sm.missing_high} | {sm.records_only} |"
    )
    for s in sources:
        lines += [
            "",
            f"## {s.title}",
            "",
            f"Facts from `{s.repository}` at commit `{s.commit}`.",
            "",
            "| item | events | condition | value | status | our rules | why |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in results[s.name]:
            why = r.why + (" (judged)" if r.overridden else "")
            lines.append(
                f"| `{_cell(r.item.id)}` | {_cell(_events(r.item))} | {_cell(r.item.condition)} | {r.item.value} "
                f"| {r.status} | {_rules_cell(r.rules, records)} | {_cell(why.strip())} |"
            )
    return "\n".join(lines) + "\n"


def generate() -> tuple[str, dict[str, list[Result]], tuple[Source, ...]]:
    sources = load_sources()
    classifier = Classifier()
    results = classify_all(sources, load_overrides(), classifier)
    return render(sources, results, classifier.records), results, sources


def missing_report(sources: Sequence[Source], results: Mapping[str, Sequence[Result]]) -> str:
    """In-scope items still missing or partial, grouped by service and ranked by value (for planning)."""
    rank = {v: i for i, v in enumerate(VALUES)}
    rows: dict[str, list[tuple[int, str, str, str, str]]] = {}
    for s in sources:
        for r in results[s.name]:
            if r.status not in ("missing", "partial"):
                continue
            services = sorted({es.removesuffix(".amazonaws.com") for es, _ in r.item.events}) or ["(any)"]
            for svc in services:
                rows.setdefault(svc, []).append(
                    (rank[r.item.value], r.status, f"{s.name}:{r.item.id}", _events(r.item), r.item.condition)
                )
    out = []
    for svc in sorted(rows):
        out.append(f"## {svc}")
        out.append("")
        for val, status, iid, events, cond in sorted(rows[svc]):
            out.append(f"- [{VALUES[val]}] {status}: `{iid}`: {events}: {cond}")
        out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trailguard.coverage", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if docs/coverage.md is stale")
    p.add_argument("--missing", action="store_true", help="print the missing and partial items by service")
    args = p.parse_args(argv)
    text, results, sources = generate()
    if args.missing:
        sys.stdout.write(missing_report(sources, results))
        return 0
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            sys.stderr.write("docs/coverage.md is stale: run python -m trailguard.coverage\n")
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    records = record_rule_ids()
    for s in sources:
        sm = summarize(results[s.name], records)
        sys.stdout.write(
            f"{s.name}: {sm.counts['covered']} covered ({sm.records_only} by change records only), "
            f"{sm.counts['partial']} partial, {sm.counts['missing']} missing, "
            f"{sm.counts['out of scope']} out of scope; {sm.percent:.1f}% of in-scope; "
            f"{sm.missing_high} missing high-value\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
