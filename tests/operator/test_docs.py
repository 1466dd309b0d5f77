"""Issue 8 docs: they exist, README links them, and what they tell the user to deploy exists in the code.

The stack names in every ``npx cdk deploy`` of docs/deploy.md are resolved against the synthesized app of
the matching mode (glob patterns allowed, as the CDK CLI does), every stack of the mode must be deployed
by some step, and the steps must respect the stacks' declared dependencies. Every other stack name, CLI
command, SSM parameter and retained resource the docs mention is checked too, so the docs cannot go stale
silently.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from operator_helpers import ROOT

from stacks import names
from stacks.constructs.dashboard import DASHBOARD_NAME

DOCS = ROOT / "docs"
DEPLOY = DOCS / "deploy.md"
ARCHITECTURE = DOCS / "architecture.md"
README = ROOT / "README.md"
_STACK_TOKEN = re.compile(r"Trailguard[A-Za-z]+(?:-(?:<region>|\*|[a-z0-9-]+))?")
_FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)


def _section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section (up to the next ``## ``)."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _commands(text: str, verb: str) -> list[list[str]]:
    """Every ``npx cdk <verb>`` in the fenced code blocks of ``text``, as the stack patterns it names."""
    out = []
    for block in _FENCE.findall(text):
        joined = block.replace("\\\n", " ")
        for raw in joined.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line.startswith(f"npx cdk {verb}"):
                continue
            stacks = [t for t in shlex.split(line)[3:] if t.startswith("Trailguard")]
            assert stacks, f"`{line}` names no stack: say which ones (no implicit --all in the steps)"
            out.append(stacks)
    return out


def _stacks(synth: Any) -> dict[str, list[str]]:
    """Deployable stacks of a synthesized app and their stack dependencies (from manifest.json)."""
    arts = synth.manifest["artifacts"]
    return {
        name: [d for d in a.get("dependencies", []) if arts.get(d, {}).get("type") == "aws:cloudformation:stack"]
        for name, a in arts.items()
        if a["type"] == "aws:cloudformation:stack"
    }


def _resolve(pattern: str, stacks: dict[str, list[str]]) -> list[str]:
    return [s for s in stacks if fnmatch.fnmatchcase(s, pattern.replace("<region>", "*"))]


# --------------------------------------------------------------------------- #


def test_docs_exist_and_readme_links_them() -> None:
    readme = README.read_text()
    for doc in (DEPLOY, ARCHITECTURE):
        assert doc.is_file()
        assert len(doc.read_text()) > 2000, f"{doc.name} is too short to be a guide"
        assert f"](docs/{doc.name})" in readme, f"README.md does not link docs/{doc.name}"
    assert "](deploy.md)" in ARCHITECTURE.read_text()
    assert "](architecture.md)" in DEPLOY.read_text()


def test_architecture_draws_accounts_and_the_three_paths() -> None:
    text = ARCHITECTURE.read_text()
    diagrams = re.findall(r"```mermaid\n(.*?)```", text, re.S)
    assert len(diagrams) >= 4
    joined = "\n".join(diagrams)
    for must in (
        "management account",
        "log-archive account",
        "security-tooling account",
        "member account",
        names.CENTRAL_BUS_NAME,
        names.ENGINE_ROLE_NAME,
        names.REMEDIATION_ROLE_NAME,
        "trailguard-reconcile",
        "S3 notification",
        "Athena",
        "trailguard hunt",
        "StackSet",
    ):
        assert must in joined, f"the architecture diagrams do not show {must!r}"


@pytest.mark.parametrize(
    ("heading", "mode"), [("Standalone mode", "standalone"), ("Organization mode", "organization")]
)
def test_deploy_steps_name_real_stacks_cover_them_all_and_respect_dependencies(
    request: pytest.FixtureRequest, heading: str, mode: str
) -> None:
    stacks = _stacks(request.getfixturevalue(mode))
    steps = _commands(_section(DEPLOY.read_text(), heading), "deploy")
    assert steps, f"no npx cdk deploy in the {heading} section"
    step_of: dict[str, int] = {}
    for i, patterns in enumerate(steps):
        for pattern in patterns:
            matched = _resolve(pattern, stacks)
            assert matched, f"{heading}: `{pattern}` matches no stack of the {mode} app ({sorted(stacks)})"
            for stack in matched:
                step_of.setdefault(stack, i)
    assert set(step_of) == set(stacks), f"{heading}: stacks never deployed: {sorted(set(stacks) - set(step_of))}"
    for stack, deps in stacks.items():
        for dep in deps:
            assert step_of[dep] <= step_of[stack], f"{heading}: {stack} is deployed before its dependency {dep}"


def test_detection_is_deployed_before_the_log_archive_in_both_modes(standalone: Any, organization: Any) -> None:
    """The S3 notification to the reconcile queue: the dependency the guide explains must exist in the apps."""
    for synth in (standalone, organization):
        assert "TrailguardDetection" in _stacks(synth)["TrailguardLogArchive"]


def test_guardrails_are_the_last_organization_step(organization: Any) -> None:
    steps = _commands(_section(DEPLOY.read_text(), "Organization mode"), "deploy")
    assert steps[-1] == ["TrailguardGuardrails"]
    assert "TrailguardGuardrails" in _stacks(organization)


def test_every_stack_name_anywhere_in_the_docs_exists(standalone: Any, organization: Any) -> None:
    known = _stacks(standalone) | _stacks(organization)
    for doc in (DEPLOY, ARCHITECTURE):
        text = doc.read_text().replace("&lt;", "<").replace("&gt;", ">")  # mermaid labels are HTML
        for token in set(_STACK_TOKEN.findall(text)):
            assert _resolve(token, known), f"{doc.name} mentions {token}, which no app synthesizes"


def test_uninstall_destroys_every_organization_stack(organization: Any) -> None:
    stacks = _stacks(organization)
    destroyed = {
        s for patterns in _commands(DEPLOY.read_text(), "destroy") for p in patterns for s in _resolve(p, stacks)
    }
    assert destroyed == set(stacks)


def test_retained_resources_table_matches_the_templates(organization: Any) -> None:
    """Every stack with resources kept on delete has a row naming each retained resource type."""
    section = _section(DEPLOY.read_text(), "Rollback and uninstall")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(Trailguard\w+)` \|.*$", section, re.M)}
    for stack, tpl in organization.templates.items():
        if stack not in _stacks(organization):
            continue
        kept = {r["Type"] for r in tpl.get("Resources", {}).values() if r.get("DeletionPolicy") == "Retain"}
        if not kept:
            assert stack not in rows, f"{stack} retains nothing but the table lists it"
            continue
        assert stack in rows, f"{stack} retains {sorted(kept)}: add it to the table in deploy.md"
        for type_ in kept:
            assert f"`{type_}`" in rows[stack], f"{stack}: {type_} is retained but not in its row"


def test_cli_commands_runtime_parameter_and_dashboard_named_in_the_docs_exist() -> None:
    import typer.main

    from trailguard import cli

    cli._load_commands()
    registered = set(typer.main.get_command(cli.app).commands)  # type: ignore[attr-defined]
    text = DEPLOY.read_text() + ARCHITECTURE.read_text()
    commands = re.findall(r"\.venv/bin/trailguard ([a-z][a-z-]+)", text) + re.findall(r"`trailguard ([a-z-]+)", text)
    assert {"replay", "hunt", "validate-config", "rules", "cost"} <= set(commands)
    for command in commands:
        assert command in registered, f"the docs use `trailguard {command}`, which the CLI does not have"
    deploy = DEPLOY.read_text()
    assert f"--name {names.RUNTIME_CONFIG_PARAMETER}" in deploy
    assert "put-parameter" in deploy
    assert f"`{DASHBOARD_NAME}`" in deploy


def test_hunt_queries_named_in_the_docs_exist() -> None:
    from trailguard.sqlcatalog import load_queries  # the Athena/DuckDB query catalog

    available = set(load_queries())
    for query in re.findall(r"trailguard hunt ([a-z][a-z-]+) --logs", DEPLOY.read_text()):
        assert query in available, f"docs/deploy.md hunts with {query!r}, which is not a named query"


def test_docs_paths_exist() -> None:
    for path in re.findall(r"`((?:config|stacks|trailguard|docs)/[\w./-]+\.(?:py|yaml|md|sql))`", DEPLOY.read_text()):
        if "my" in Path(path).stem:  # the user's own config file
            continue
        assert (ROOT / path).exists(), f"docs/deploy.md names {path}, which does not exist"
