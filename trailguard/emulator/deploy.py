"""Bootstrap, deploy and destroy a synthesized cloud assembly with the real CDK CLI, against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from trailguard.exceptions import TrailguardError

ROOT = Path(__file__).resolve().parents[2]
_CLI_ENV = {
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "JSII_DEPRECATED": "quiet",
    "CDK_DISABLE_VERSION_CHECK": "1",
    "CDK_DISABLE_CLI_TELEMETRY": "true",
    "FORCE_COLOR": "0",
    "CI": "true",
}


class DeployError(TrailguardError):
    """The CDK CLI failed against the emulator."""


@dataclass(frozen=True)
class StackInfo:
    name: str
    region: str
    template: str  # file name inside the assembly


def stacks(assembly: Path) -> list[StackInfo]:
    """The assembly's stacks, in manifest order, with their regions."""
    try:
        manifest = json.loads((assembly / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DeployError(f"{assembly}: no readable manifest.json ({exc}); synthesize first") from exc
    out = []
    for name, art in manifest.get("artifacts", {}).items():
        if art.get("type") != "aws:cloudformation:stack":
            continue
        region = str(art.get("environment", "")).rsplit("/", 1)[-1]
        out.append(StackInfo(name, region, str(art.get("properties", {}).get("templateFile", f"{name}.template.json"))))
    if not out:
        raise DeployError(f"{assembly}: the manifest lists no stacks")
    return out


def _cdk(args: list[str], *, env: dict[str, str], root: Path, timeout: float) -> str:
    cmd = ["npx", "--no-install", "cdk", *args]
    try:
        proc = subprocess.run(  # noqa: S603 - fixed command, our own arguments
            cmd, cwd=root, env=os.environ | _CLI_ENV | env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise DeployError("npx not found: install Node.js 20+ and run make setup") from exc
    except subprocess.TimeoutExpired as exc:
        raise DeployError(f"npx cdk {args[0]} did not finish within {timeout:.0f} s") from exc
    out = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0:
        tail = "\n".join(out.strip().splitlines()[-20:])
        raise DeployError(f"npx cdk {' '.join(args[:2])} failed (exit {proc.returncode}):\n{tail}")
    return out


def bootstrap(assembly: Path, account: str, env: dict[str, str], *, root: Path = ROOT) -> list[str]:
    """``cdk bootstrap`` every environment the assembly deploys to; the environments, as aws://account/region."""
    targets = sorted({f"aws://{account}/{s.region}" for s in stacks(assembly)})
    _cdk(["bootstrap", "--app", str(assembly), *targets], env=env, root=root, timeout=600)
    return targets


def deploy(assembly: Path, env: dict[str, str], *, root: Path = ROOT) -> str:
    """``cdk deploy --all`` from the already synthesized assembly (no second synth); the CLI's output."""
    return _cdk(
        [
            "deploy",
            "--all",
            "--app",
            str(assembly),
            "--require-approval",
            "never",
            "--concurrency",
            "1",
            "--progress",
            "events",
        ],
        env=env,
        root=root,
        timeout=1200,
    )


def destroy(assembly: Path, env: dict[str, str], *, root: Path = ROOT) -> str:
    """``cdk destroy --all --force``; the CLI's output."""
    return _cdk(["destroy", "--all", "--app", str(assembly), "--force"], env=env, root=root, timeout=1200)
