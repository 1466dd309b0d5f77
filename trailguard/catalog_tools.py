"""Maintenance of generated parts of the rule catalog.

``python -m trailguard.catalog_tools sync-failed-attempts`` rewrites the event
pattern of the ``failed-critical-action`` rule from the catalog: every action a
CRITICAL or HIGH rule watches, with an access-denied ``errorCode``. Run it after
adding or changing such a rule; ``tests/catalog`` fails while it is stale. Change-record rules
(severity INFO, decision ``change_record``) are never part of it: a refused change record is not
a failed attempt at a critical action.
``check-failed-attempts`` only reports (exit 1 when stale).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trailguard_engine.catalog import RULES_DIR, is_record_rule, load_rule_file
from trailguard_engine.decisions.failed import (
    ACCESS_DENIED_PREFIX,
    API_CALL,
    FAILED_RULE_ID,
    UNAUTHORIZED_SUFFIX,
    critical_actions,
)
from trailguard_engine.events import source_for
from trailguard_engine.model import Rule

#: EventBridge's default quota on the size of one event pattern (characters, compact JSON).
MAX_PATTERN_CHARS = 2048
#: CamelCase words of an API name, acronyms kept whole (``ModifyDBSnapshotAttribute``: Modify, DB, ...).
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*")


class CatalogToolError(Exception):
    """The catalog cannot be processed (missing rule file, bad JSON)."""


def failed_attempt_sources(rules: Iterable[Rule]) -> list[Rule]:
    """The rules whose calls the failed-attempt rule may watch: never a change record (severity INFO).

    A change record notes every selected call for the audit trail; the same call refused changed nothing
    and is no attempt at anything critical. (``critical_actions`` watches CRITICAL and HIGH rules only and the
    catalog refuses a ``change_record`` decision at any severity but INFO; this keeps the selection explicit
    should either change.)
    """
    return [r for r in rules if not is_record_rule(r)]


def failed_attempts_pattern(rules: Iterable[Rule]) -> dict[str, Any]:
    """The EventBridge pattern of the failed-attempt rule for ``rules`` (deterministic order).

    Kept compact to stay under EventBridge's 2048-character pattern quota: sources x
    names over-matches a little (a name watched in one service, refused in another),
    and the ``failed_critical`` decision re-checks the exact eventSource/eventName pair.
    When the exact names do not fit, names sharing their first two words become one
    prefix (``DeleteStack``, ``DeleteStackSet`` -> ``DeleteStack*``): more over-matching,
    the same re-check.
    """
    actions = critical_actions(failed_attempt_sources(rules))
    event_sources = sorted({a.event_source for a in actions})
    literals = sorted({a.name for a in actions if not a.is_prefix})
    prefixes = sorted({a.name for a in actions if a.is_prefix})
    pattern = _pattern(event_sources, literals, prefixes)
    if len(json.dumps(pattern, separators=(",", ":"))) > MAX_PATTERN_CHARS:
        pattern = _pattern(event_sources, *_merged(literals, prefixes))
    return pattern


def _pattern(event_sources: list[str], literals: list[str], prefixes: list[str]) -> dict[str, Any]:
    names: list[Any] = [*literals, *({"prefix": p} for p in prefixes)]
    return {
        "source": sorted({source_for(s) for s in event_sources}),
        "detail-type": [API_CALL],
        "detail": {
            "eventName": names,
            "errorCode": [{"prefix": ACCESS_DENIED_PREFIX}, {"suffix": UNAUTHORIZED_SUFFIX}],
        },
    }


def _merged(literals: list[str], prefixes: list[str]) -> tuple[list[str], list[str]]:
    """Literals sharing their first two words as one prefix; names and prefixes another prefix covers dropped."""
    groups: dict[str, list[str]] = {}
    for name in literals:
        groups.setdefault("".join(_WORD.findall(name)[:2]), []).append(name)
    merged = set(prefixes) | {p for p, names in groups.items() if len(names) > 1}
    merged = {p for p in merged if not any(q != p and p.startswith(q) for q in merged)}
    rest = [n for n in literals if not any(n.startswith(p) for p in merged)]
    return sorted(rest), sorted(merged)


def _all_rules(rules_dir: Path) -> list[Rule]:
    return [load_rule_file(p) for p in sorted(rules_dir.glob("*.json"))]


def failed_attempts_stale(rules_dir: Path = RULES_DIR) -> bool:
    """True when the failed-attempt rule's pattern differs from what the catalog implies."""
    path = rules_dir / f"{FAILED_RULE_ID}.json"
    if not path.is_file():
        raise CatalogToolError(f"{path}: missing")
    current = json.loads(path.read_text(encoding="utf-8")).get("event_pattern")
    return bool(current != failed_attempts_pattern(_all_rules(rules_dir)))


def sync_failed_attempts(rules_dir: Path = RULES_DIR) -> bool:
    """Rewrite the failed-attempt rule's ``event_pattern``; return True if the file changed."""
    path = rules_dir / f"{FAILED_RULE_ID}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogToolError(f"{path}: cannot load ({exc})") from exc
    wanted = failed_attempts_pattern(_all_rules(rules_dir))
    if doc.get("event_pattern") == wanted:
        return False
    doc["event_pattern"] = wanted
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["sync-failed-attempts"]:
        changed = sync_failed_attempts()
        print(f"{FAILED_RULE_ID}: {'updated' if changed else 'already up to date'}")
        return 0
    if args == ["check-failed-attempts"]:
        stale = failed_attempts_stale()
        print(f"{FAILED_RULE_ID}: {'STALE (run sync-failed-attempts)' if stale else 'up to date'}")
        return 1 if stale else 0
    print("usage: python -m trailguard.catalog_tools sync-failed-attempts|check-failed-attempts", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
