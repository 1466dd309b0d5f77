"""Per-rule firing counts on the shared corpus, and the baseline they are held to (issue 14).

``python tests/precision/corpus_firing.py`` rewrites ``corpus_firing_baseline.json`` from the current catalog.
The baseline was recorded before the issue-14 catalog growth: a rule that now fires more than twice as often
as its baseline (and more than twice at all) must say why in its file (``noise_note``). Records labelled
``negative`` (benign activity: Terraform set-up and clean-up, console browsing, real exfiltration-free use)
must never lead to a remediation.

Firing means an alert or a remediation under the default configuration (skips and notices do not count).
Change records (findings of severity INFO: a Security Hub INFORMATIONAL finding and an audit-log line, never a
page) are counted apart, in ``records``: they are reported, not held to the baseline, and never written to it.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "corpus_firing_baseline.json"
CORPUS = HERE.parents[2] / "shared" / "corpus"


def labelled_records(corpus: Path) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(file name, record, label) for every record with a label line beside it."""
    for path in sorted(corpus.rglob("*.jsonl")):
        if path.name.endswith(".labels.jsonl"):
            continue
        labels_path = path.with_name(path.name[: -len(".jsonl")] + ".labels.jsonl")
        records = path.read_text(encoding="utf-8").splitlines()
        labels = labels_path.read_text(encoding="utf-8").splitlines() if labels_path.exists() else []
        for i, line in enumerate(records):
            if not line.strip():
                continue
            label = json.loads(labels[i]) if i < len(labels) and labels[i].strip() else {}
            yield path.relative_to(corpus).as_posix(), json.loads(line), label


@dataclass
class Measured:
    """What the catalog does with the corpus."""

    #: Alerts and remediations per alerting rule (what the baseline holds).
    fired: Counter[str] = field(default_factory=Counter)
    #: Remediations on records labelled negative, as (file, rule, eventName); change records included.
    benign_remediations: list[tuple[str, str, str]] = field(default_factory=list)
    #: Change records (severity INFO findings that fired) per rule: never a page, so not noise.
    records: Counter[str] = field(default_factory=Counter)
    #: Change records on records labelled negative, per rule (reported: what routine work leaves on record).
    benign_records: Counter[str] = field(default_factory=Counter)


def measure(corpus: Path, rules: Iterable[Any] | None = None) -> Measured:
    """Firings per alerting rule, change records per INFO rule, and remediations on records labelled negative.

    ``rules``: the catalog to measure (default: the current one).
    """
    from trailguard_engine.catalog import RECORD_SEVERITY, load_catalog
    from trailguard_engine.evaluate import Evaluator
    from trailguard_engine.events import CloudTrailEvent, to_envelope
    from trailguard_engine.exceptions import RejectedEvent
    from trailguard_engine.runtime_config import RuntimeConfig
    from trailguard_engine.window import MemoryWindowStore, ThresholdGate

    ev = Evaluator(load_catalog() if rules is None else tuple(rules), RuntimeConfig())
    # Threshold rules fire once per principal and window, as in the engine and replay (not once per read).
    gate = ThresholdGate(MemoryWindowStore(), clock=None)
    out = Measured()
    for name, record, label in labelled_records(corpus):
        try:
            result = ev.evaluate(record)
        except RejectedEvent:
            continue
        result = gate.apply_result(CloudTrailEvent(to_envelope(record)), result, ev.by_id)
        negative = label.get("label") == "negative"
        for f in result.findings:
            if f.decision not in ("alert", "remediate"):
                continue
            if f.decision == "remediate" and negative:
                out.benign_remediations.append((name, f.rule, str(record.get("eventName"))))
            if f.severity == RECORD_SEVERITY:
                out.records[f.rule] += 1
                if negative:
                    out.benign_records[f.rule] += 1
            else:
                out.fired[f.rule] += 1
    return out


def main() -> int:
    if not CORPUS.is_dir():
        print(f"no corpus at {CORPUS}", file=sys.stderr)
        return 1
    fired = measure(CORPUS).fired  # alerting rules only: change records are never part of the baseline
    BASELINE.write_text(json.dumps(dict(sorted(fired.items())), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {BASELINE}: {sum(fired.values())} firings over {len(fired)} rules", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path[:0] = [str(HERE.parents[1]), str(HERE.parents[1] / "lambdas")]
    raise SystemExit(main())
