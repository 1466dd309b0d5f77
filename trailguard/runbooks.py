"""Generate the runbooks (``docs/runbooks/<rule-id>.md`` and an index) from the catalog.

Output is deterministic (sorted, no dates) so a test can tell when the
committed runbooks are stale: ``trailguard docs --check``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from trailguard_engine.catalog import load_catalog
from trailguard_engine.model import SEVERITIES, Rule

from trailguard.sqlcatalog import Query, load_queries

INDEX = "README.md"
#: Hand-written pages that live beside the generated ones: the generator links them from the index and
#: otherwise leaves them alone (never rewritten, never reported stale, never deleted).
HAND_WRITTEN: dict[str, str] = {
    "integrity-failure.md": "CloudTrail log file integrity failure: modified, deleted or unlisted log files, "
    "invalid or missing digests",
}
#: ``stacks/constructs/query_layer.py`` names each Athena named query ``trailguard: <title>`` (128 chars max).
ATHENA_PREFIX = "trailguard: "
#: Placeholder values shown in hunt commands for parameters without a default.
_PLACEHOLDERS = {
    "principal": "<userIdentity.arn from the alert>",
    "access_key_id": "<userIdentity.accessKeyId from the alert>",
    "source_ip": "<sourceIPAddress from the alert>",
    "ip": "<sourceIPAddress from the alert>",
    "account": "<account id>",
}
_MITRE_URL = "https://attack.mitre.org/techniques/{}/"
#: What each caller class covers (``trailguard_engine.caller``), for the runbooks' caller section.
CALLER_CLASSES: dict[str, str] = {
    "human": "root user, IAM users, federated users, console, Identity Center user and MFA sessions",
    "unknown": "any other role session (a script or tool with no sign of a person or a pipeline)",
    "iac": "CloudFormation (`invokedBy cloudformation.amazonaws.com`), Terraform, CDK and Pulumi user agents, "
    "config `callers.iac_principals`",
    "service": "AWS services: `AWSService` identities and service-linked role sessions (a customer-managed "
    "service role is `unknown`)",
    "identity-center": "IAM Identity Center provisioning (its `AWSServiceRoleForSSO` service-linked role)",
    "trailguard": "trailguard's own roles (the loop guard)",
}
_CALLER_ORDER = ("human", "unknown", "iac", "service", "identity-center", "trailguard")
#: How readers find the config they deploy with: there is no fixed file name (``app.py`` reads ``-c config=<file>``).
CONFIG_FILE = "your config file (the one you pass with `-c config=...`)"
#: Principal types (CloudTrail ``userIdentity.type``) the containment section covers, in the order shown. A rule
#: whose pattern names no type can be triggered by any of them; ``anonymous`` is an unsigned request and
#: ``InstanceIdentity`` an EC2 instance identity session (``assumed-role/aws:ec2-instance/...``: no IAM role).
PRINCIPAL_ORDER = ("AssumedRole", "InstanceIdentity", "IAMUser", "FederatedUser", "Root", "anonymous")
_PRINCIPAL_DEFAULT = ("AssumedRole", "IAMUser", "FederatedUser", "Root")
#: Decision outputs some rule texts name as ``params.<key>``: readers never see those keys, so the runbooks say
#: what the value is instead. A ``params.<key>`` left after these and the rule's own settings is a problem.
_DECISION_PARAM_WORDS: tuple[tuple[str, str], ...] = (
    ("the key in params.access_key_id", "the access key the event created"),
    ("the policy in params.policy_arn", "the policy the event attached"),
    ("params.principal_type/principal_name", "the same user, group or role"),
    ("securityGroupRuleIds in params.rule_ids", "securityGroupRuleIds the event returned"),
    ("matching params.offending", "matching the rules the request asked for"),
    (
        "params.public_statements lists the index and Sid of each public statement in the event's policy.",
        "The statements to remove are found by their index and Sid in the event's policy.",
    ),
)
_PARAM_REF = re.compile(r"\bparams\.([A-Za-z_][A-Za-z0-9_]*)")
_SNAKE_WORD = re.compile(r"(?<![\w.-])[a-z0-9]+(?:_[a-z0-9]+)+(?![\w-])")
#: Remediation actions whose name says less than they do: the runbook states the effect first.
ACTION_WARNINGS: dict[str, tuple[str, str]] = {
    "deactivate_root_access_key": (
        "deletes the key",
        "**This action deletes the root access key; it does not deactivate it** (despite its name). AWS lets a "
        "role delete a member account's root access key but not deactivate it, so whoever used the key loses it "
        "at once and it cannot be restored.",
    ),
}
#: Who to involve and how fast, by severity: defaults to adapt to your incident-response policy.
ESCALATION: dict[str, tuple[str, str]] = {
    "CRITICAL": (
        "page the security on-call now, at any hour, and open an incident; tell the account owner.",
        "within 15 minutes of the alert",
    ),
    "HIGH": (
        "page the security on-call and tell the account owner.",
        "within 1 hour of the alert",
    ),
    "MEDIUM": (
        "open a ticket for the security team and ask the account owner to confirm the change.",
        "the same business day",
    ),
    "LOW": (
        "review it in the security team's queue; no page.",
        "within 3 business days",
    ),
    "INFO": (
        "no escalation on its own: review it with the principal's other alerts.",
        "at the weekly review",
    ),
}
_RANK = {"notice": 0, "off": 0, "alert": 1, "remediate": 2}


@dataclass(frozen=True, slots=True)
class Generated:
    """The runbook files by name, and problems found while writing them (unknown queries)."""

    files: dict[str, str]
    problems: tuple[str, ...]


def query_name(ref: str) -> str:
    """The ``.sql`` query a runbook reference names (``principal_activity`` -> ``principal-activity``)."""
    return ref.strip().replace("_", "-")


def athena_name(query: Query) -> str:
    """The Athena named-query name the query layer gives ``query``."""
    return f"{ATHENA_PREFIX}{query.title}"[:128]


def user_text(text: str, rule: Rule, queries: dict[str, Query]) -> tuple[str, list[str]]:
    """``text`` from a rule file as a reader needs it: real query names, no internal parameter names.

    Returns the text and the problems left (``params.<key>`` that is neither a known decision output nor one of
    the rule's settings), so a new rule text cannot reintroduce them unnoticed.
    """
    for old, new in _DECISION_PARAM_WORDS:
        text = text.replace(old, new)
    problems = [
        f"{rule.id}: internal name params.{m.group(1)} in the rule text (say what it is instead)"
        for m in _PARAM_REF.finditer(text)
        if m.group(1) not in rule.params
    ]
    text = _PARAM_REF.sub(lambda m: f"`{m.group(1)}`", text)
    return _SNAKE_WORD.sub(
        lambda m: query_name(m.group(0)) if query_name(m.group(0)) in queries else m.group(0), text
    ), (problems)


def settings_named(rule: Rule) -> list[str]:
    """The rule's own settings (``params`` in its rule file) that its texts name, in order of first mention."""
    names: list[str] = []
    for text in _rule_texts(rule):
        for m in _PARAM_REF.finditer(text):
            if m.group(1) in rule.params and m.group(1) not in names:
                names.append(m.group(1))
    return names


def _rule_texts(rule: Rule) -> list[str]:
    texts = [rule.description, *rule.runbook.triage, rule.runbook.undo]
    return texts + ([rule.remediation.description] if rule.remediation else [])


def principal_types(rule: Rule) -> tuple[str, ...]:
    """The ``userIdentity.type`` values that can trigger ``rule`` (from its pattern; every type if it names none)."""
    ui = rule.event_pattern.get("detail", {}).get("userIdentity", {})
    if not isinstance(ui, dict):
        return _PRINCIPAL_DEFAULT
    if ui.get("accountId") == ["anonymous"]:
        return ("anonymous",)
    types = {t for t in ui.get("type", []) if isinstance(t, str)}
    wildcards = [str(a.get("wildcard", "")) for a in ui.get("arn", []) if isinstance(a, dict)]
    if not types and wildcards and all(":assumed-role/aws:" in a for a in wildcards):
        types = {"InstanceIdentity"}
    elif not types and wildcards and all(":assumed-role/" in a for a in wildcards):
        types = {"AssumedRole"}
    return tuple(t for t in PRINCIPAL_ORDER if t in types) or _PRINCIPAL_DEFAULT


def hunt_command(q: Query) -> str:
    parts = ["trailguard", "hunt", q.name, "--logs", "./AWSLogs"]
    for p in q.params:
        if p.default is None:
            parts += ["--param", f"{p.name}={_PLACEHOLDERS.get(p.name, f'<{p.name}>')}"]
    return " ".join(f"'{x}'" if any(c in x for c in " <>") else x for x in parts)


def _mitre(ids: Iterable[str]) -> str:
    return ", ".join(f"[{t}]({_MITRE_URL.format(t.replace('.', '/'))})" for t in ids) or "none"


def render_rule(rule: Rule, queries: dict[str, Query]) -> tuple[str, list[str]]:
    """One runbook page, and the problems found (query references that do not exist)."""
    problems: list[str] = []
    out: list[str] = []
    w = out.append

    def plain(text: str) -> str:
        fixed, probs = user_text(text, rule, queries)
        problems.extend(probs)
        return fixed

    w(f"# {rule.title}")
    w("")
    w("<!-- Generated by `trailguard docs` from the rule catalog. Do not edit: edit the rule and regenerate. -->")
    w("")
    w("| | |")
    w("|---|---|")
    w(f"| Rule | `{rule.id}` |")
    w(f"| Severity | **{rule.severity}** |")
    w(f"| Category | {rule.category} |")
    w(f"| Default mode | `{rule.default_mode}` |")
    w(f"| MITRE ATT&CK | {_mitre(rule.mitre)} |")
    for framework, controls in sorted(rule.references.items()):
        w(f"| {framework} | {', '.join(controls)} |")
    w("")
    w("## What happened")
    w("")
    w(plain(rule.description))
    w("")
    w("The engine received a CloudTrail event matching this EventBridge pattern:")
    w("")
    w("```json")
    w(json.dumps(rule.event_pattern, indent=2, sort_keys=True))
    w("```")
    w("")
    failed = "including failed calls" if rule.matches_failed_calls else "failed calls (with an errorCode) are ignored"
    w(f"Decision function `{rule.decision}` judged it risky ({failed}).")
    w("")
    w("## Why it matters")
    w("")
    techniques = ", ".join(rule.mitre) or "no mapped technique"
    w(
        f"Severity {rule.severity} in the {rule.category} category; MITRE ATT&CK {techniques}. "
        "Attackers make this kind of change to widen access, hide activity or remove a control; "
        "until it is reverted the account is exposed."
    )
    w("")
    w("## Triage")
    w("")
    for i, step in enumerate(rule.runbook.triage, start=1):
        w(f"{i}. {plain(step)}")
    w("")
    if rule.runbook.queries:
        w("### Queries")
        w("")
        w("Run them locally on synced log files (`aws s3 sync s3://<archive>/AWSLogs ./AWSLogs`) with DuckDB,")
        w("or in Athena (workgroup `trailguard`) where the same SQL is saved as a named query.")
        w("")
        for ref in rule.runbook.queries:
            name = query_name(ref)
            q = queries.get(name)
            if q is None:
                problems.append(f"{rule.id}: runbook query {ref!r} is not in trailguard/queries")
                w(f"- `{ref}`: **missing query** (no `trailguard/queries/{name}.sql`)")
                continue
            w(f"- **{q.title}** ({q.name}): {q.description}")
            w("")
            w("  ```sh")
            w(f"  {hunt_command(q)}")
            w("  ```")
            w("")
            w(f"  Athena named query: `{athena_name(q)}`")
        w("")
    w("## Remediation")
    w("")
    rem = rule.remediation
    if rem is None:
        w("This rule only alerts: there is no automatic remediation.")
    else:
        w(f"Action `{rem.action}` (runs when the rule's mode is `remediate`; default `{rule.default_mode}`).")
        w("")
        if rem.action in ACTION_WARNINGS:
            w(ACTION_WARNINGS[rem.action][1])
            w("")
        w(plain(rem.description))
        w("")
        w(
            "The engine first re-reads the live state, skips resources tagged `trailguard:exempt=true` and "
            "rate-limits actions per resource. It acts through the `trailguard-remediation` role in the "
            "event's account, which holds exactly these permissions:"
        )
        w("")
        for p in sorted(rem.permissions):
            w(f"- `{p}`")
    w("")
    w("To change the mode without redeploying, edit `rule_modes` in the runtime config parameter")
    w(f'`/trailguard/runtime-config` (for example `"{rule.id}": "alert"`), or set `rule_modes` in {CONFIG_FILE}')
    w("and redeploy.")
    w("")
    _render_settings(rule, w)
    _render_containment(rule, w)
    _render_escalation(rule, queries, w)
    _render_callers(rule, w)
    w("## Undo")
    w("")
    w(plain(rule.runbook.undo))
    w("")
    return "\n".join(out), problems


def _render_settings(rule: Rule, w: Callable[[str], None]) -> None:
    names = settings_named(rule)
    if not names:
        return
    w("### Tuning")
    w("")
    w(
        f"The settings named above are in `params` of the rule file `lambdas/trailguard_engine/rules/{rule.id}.json`; "
        "change them there and redeploy. Current values:"
    )
    w("")
    for name in names:
        w(f"- `{name}`: `{json.dumps(rule.params[name], sort_keys=True)}`")
    w("")


_NOW = "NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
_DENY_OLDER = (
    '\'{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*",'
    '"Condition":{"DateLessThan":{"aws:TokenIssueTime":"\'"$NOW"\'"}}}]}\''
)
_DENY_ALL = "arn:aws:iam::aws:policy/AWSDenyAll"
_ROLE = "'<role name: the part after role/ in who.session_issuer>'"
_USER = "'<user name: the part after user/ in who.principal>'"


def _sh(w: Callable[[str], None], *lines: str) -> None:
    w("   ```sh")
    for line in lines:
        w(f"   {line}")
    w("   ```")


def _render_containment(rule: Rule, w: Callable[[str], None]) -> None:
    """Containment by principal type: what takes the credentials away (no remediation does)."""
    types = principal_types(rule)
    w("## Containment")
    w("")
    reverts = "reverts the change at most" if rule.remediation else "changes nothing"
    w(
        f"trailguard {reverts}; it never takes credentials away. When triage does not explain the event (the "
        "principal's owner did not make this call), contain the principal in the alert's `who` block before "
        "anything else, from an administrator session in the event's account (`where.account`), and record each "
        "step in the incident."
    )
    w("")
    if "AssumedRole" in types:
        w("### A role session (`who.principal_type` AssumedRole)")
        w("")
        w(
            "1. Revoke the role's active sessions: AWS's documented \"Revoke active sessions\" is an inline policy "
            "that denies everything to credentials issued before now (sessions started later still work):"
        )
        w("")
        _sh(
            w,
            _NOW,
            f"aws iam put-role-policy --role-name {_ROLE} --policy-name AWSRevokeOlderSessions \\",
            f"  --policy-document {_DENY_OLDER}",
        )
        w("")
        w(
            "   It cannot be done for a service-linked role; for an Identity Center role (`AWSReservedSSO_...`) "
            "remove the user's assignment or disable the user in IAM Identity Center instead."
        )
        w(
            "2. Quarantine the role if whoever can assume it may be the attacker (new sessions are denied too, so "
            "every workload using the role stops):"
        )
        w("")
        _sh(w, f"aws iam attach-role-policy --role-name {_ROLE} --policy-arn {_DENY_ALL}")
        w("")
        w(
            "3. Find the credentials that assumed the role (the `AssumeRole` record before the alert, with the "
            "principal-activity query) and contain them too."
        )
        w("")
    if "InstanceIdentity" in types:
        w("### EC2 instance identity credentials (`who.principal` assumed-role/aws:ec2-instance/<instance id>)")
        w("")
        w(
            "These credentials belong to no IAM role: no policy can be attached to them and their sessions cannot "
            "be revoked. Contain the instance named in the session: snapshot its volumes for evidence, then "
            "isolate it (replace its security groups with one that has no rules) or stop it, and require IMDSv2. "
            "Whoever read these from the metadata service likely took the instance profile's credentials too: "
            "revoke that role's active sessions (AWS's \"Revoke active sessions\", an inline `AWSRevokeOlderSessions` "
            "deny on `aws:TokenIssueTime` before now, in the role's console page)."
        )
        w("")
        _sh(
            w,
            "aws ec2 modify-instance-attribute --instance-id '<instance id from who.principal>' "
            "--groups '<security group with no rules>'",
            "aws ec2 modify-instance-metadata-options --instance-id '<instance id from who.principal>' "
            "--http-tokens required --http-put-response-hop-limit 1",
        )
        w("")
    if "IAMUser" in types or "FederatedUser" in types:
        heading = "An IAM user (`who.principal_type` IAMUser)"
        if "FederatedUser" in types:
            heading += " or a federated user (FederatedUser: its IAM user called GetFederationToken)"
        w(f"### {heading}")
        w("")
        if "FederatedUser" in types:
            w(
                "For a federated user, the user below is the IAM user that called GetFederationToken: the part "
                "after user/ in `who.session_issuer`."
            )
            w("")
        w(
            "1. Deactivate the user's access keys (the alert's `who.access_key_id` first; list the others). "
            "Deactivate rather than delete: the key stays as evidence and can be turned back on."
        )
        w("")
        _sh(
            w,
            f"aws iam list-access-keys --user-name {_USER}",
            f"aws iam update-access-key --user-name {_USER} --access-key-id '<key id>' --status Inactive",
        )
        w("")
        w("2. Delete the login profile (the console password), so nobody can sign in as the user:")
        w("")
        _sh(w, f"aws iam delete-login-profile --user-name {_USER}")
        w("")
        w(
            "3. Quarantine the user: neither step ends credentials already issued (console sessions, GetSessionToken "
            "and GetFederationToken sessions), which take their permissions from the user, so attach a deny-all "
            "policy:"
        )
        w("")
        _sh(w, f"aws iam attach-user-policy --user-name {_USER} --policy-arn {_DENY_ALL}")
        w("")
    if "Root" in types:
        w("### The root user (`who.principal_type` Root)")
        w("")
        w(
            "No IAM policy in the account limits the root user and its sessions cannot be revoked. Sign in as root "
            "and change the password, delete its access keys (`aws iam list-access-keys` then "
            "`aws iam delete-access-key` with root's credentials) and check its MFA devices. In an organization, "
            "the management account can delete a member's root credentials with centralized root access "
            "(`sts:AssumeRoot` with the `IAMDeleteRootUserCredentials` task policy), and a service control policy "
            "denying the member account's root user stops it meanwhile. Treat a root event you cannot explain as "
            "CRITICAL."
        )
        w("")
    if "anonymous" in types:
        w("### An anonymous caller (`userIdentity.accountId` anonymous)")
        w("")
        w(
            "There are no credentials to revoke: the bucket lets anyone in. Block public access on the bucket named "
            "in the alert (`where.resource`), then review its policy and ACL:"
        )
        w("")
        _sh(
            w,
            "aws s3api put-public-access-block --bucket '<bucket from the alert>' \\",
            "  --public-access-block-configuration "
            "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
        )
        w("")
    undo = []
    if "AssumedRole" in types:
        undo.append("delete the role's `AWSRevokeOlderSessions` inline policy and detach `AWSDenyAll` from it")
    if "IAMUser" in types or "FederatedUser" in types:
        undo.append("detach `AWSDenyAll` from the user, reactivate its keys and recreate its login profile")
    if undo:
        w(f"Once the principal is cleared, undo the containment: {'; '.join(undo)}.")
        w("")


def _render_escalation(rule: Rule, queries: dict[str, Query], w: Callable[[str], None]) -> None:
    who, when = ESCALATION[rule.severity]
    w("## Escalation")
    w("")
    w(f"This rule is **{rule.severity}**: {who} Do it {when}.")
    w("")
    if rule.severity == "CRITICAL":
        w("Widen the incident (the account owner's management, and legal or privacy if data may have left) when:")
    else:
        w("Escalate one level higher (up to paging the on-call and opening an incident) when:")
    w("")
    w("- the principal's owner cannot explain the call, or the principal is not known;")
    principal_query = queries.get("principal-activity")
    if principal_query is not None:
        w(f"- the same principal did more you cannot explain (`{hunt_command(principal_query)}`);")
    if "Root" in principal_types(rule):
        w("- the root user made the call (always CRITICAL);")
    if rule.remediation:
        w("- the alert's `action.status` is `failed` or `skipped`: the change is still in place;")
    w("- containment would stop a production workload: the incident lead decides, not the responder alone.")
    w("")
    w("Who and how fast are defaults: adapt them to your incident-response policy.")
    w("")


def _render_callers(rule: Rule, w: Callable[[str], None]) -> None:
    w("## Who triggers this rule and what trailguard does per caller class")
    w("")
    w("trailguard does the least of the rule's mode and the caller class's mode (`caller_modes` in the rule file).")
    w("")
    w("| Caller class | Who | Class mode | By default trailguard |")
    w("|---|---|---|---|")
    acts = rule.remediation is not None and rule.default_mode == "remediate"
    for kind in _CALLER_ORDER:
        mode = rule.caller_modes.get(kind, "alert")
        if rule.default_mode == "off":
            does = "nothing (the rule is off)"
        elif mode == "notice":
            does = "sends a low-severity notice only"
        elif acts and _RANK[mode] >= _RANK["remediate"]:
            does = "remediates"
        else:
            does = "alerts"
        w(f"| {kind} | {CALLER_CLASSES[kind]} | `{mode}` | {does} |")
    w("")
    w(
        "A user agent or `invokedBy cloudformation.amazonaws.com` can be produced by any account admin, so they "
        "lower an action to an alert at most, never to a notice. Change a class per rule (or `*`) with "
        f'`callers.modes` (for example `"{rule.id}": {{"iac": "notice"}}`, which silences only the principals '
        f"listed in `callers.iac_principals`) in {CONFIG_FILE}."
    )
    w("")


def render_index(rules: Iterable[Rule]) -> str:
    order = {s: i for i, s in enumerate(SEVERITIES)}
    rows = sorted(rules, key=lambda r: (order[r.severity], r.id))
    out = [
        "# Runbooks",
        "",
        "<!-- Generated by `trailguard docs` from the rule catalog. Do not edit. -->",
        "",
        f"One page per detection rule ({len(rows)} rules), most severe first.",
        "",
        "| Rule | Severity | Default mode | Remediation | MITRE ATT&CK |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        action = f"`{r.remediation.action}`" if r.remediation else "alert only"
        if r.remediation and r.remediation.action in ACTION_WARNINGS:
            action += f" ({ACTION_WARNINGS[r.remediation.action][0]})"
        out.append(
            f"| [{r.title}]({r.id}.md) (`{r.id}`) | {r.severity} | `{r.default_mode}` | {action} | "
            f"{', '.join(r.mitre) or '-'} |"
        )
    out += ["", "## Other runbooks", "", "Hand-written, for alerts that no catalog rule raises.", ""]
    out += [f"- [{title}]({name})" for name, title in sorted(HAND_WRITTEN.items())]
    out.append("")
    return "\n".join(out)


def generate(rules: Iterable[Rule] | None = None, queries: dict[str, Query] | None = None) -> Generated:
    """Every runbook file (name -> content)."""
    rule_list = list(load_catalog() if rules is None else rules)
    qs = load_queries() if queries is None else queries
    files: dict[str, str] = {}
    problems: list[str] = []
    for r in rule_list:
        text, probs = render_rule(r, qs)
        files[f"{r.id}.md"] = text
        problems += probs
    files[INDEX] = render_index(rule_list)
    return Generated(files=dict(sorted(files.items())), problems=tuple(problems))


def stale_files(generated: Generated, out_dir: Path) -> list[str]:
    """Files under ``out_dir`` that differ from, are missing from, or are not in ``generated``."""
    stale = []
    for name, text in generated.files.items():
        p = out_dir / name
        if not p.is_file() or p.read_text(encoding="utf-8") != text:
            stale.append(str(p))
    if out_dir.is_dir():
        for p in sorted(out_dir.glob("*.md")):
            if p.name not in generated.files and p.name not in HAND_WRITTEN:
                stale.append(f"{p} (no such rule)")
    return stale


def write(generated: Generated, out_dir: Path) -> list[Path]:
    """Write every file (and remove runbooks of rules that no longer exist); return what changed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in generated.files.items():
        p = out_dir / name
        if not p.is_file() or p.read_text(encoding="utf-8") != text:
            p.write_text(text, encoding="utf-8")
            changed.append(p)
    for p in sorted(out_dir.glob("*.md")):
        if p.name not in generated.files and p.name not in HAND_WRITTEN:
            p.unlink()
            changed.append(p)
    return changed
