"""Lambda assets with bytecode compiled by the Lambda runtime's Python (issue 19, cold start).

``/var/task`` and ``/opt`` are read-only in Lambda: a module without a usable ``__pycache__/*.cpython-312.pyc``
is compiled from source on every cold start, and never cached. Bytecode is specific to the interpreter's minor
version, so it must be compiled by Python 3.12 (:data:`LAMBDA_PYTHON`), whatever Python runs ``cdk synth``.

The pyc files are **checked-hash** (PEP 552): each holds the SipHash of its source, and Python 3.12 compares it
with the shipped source on import (reading and hashing a source file costs microseconds, far less than compiling
it). An *unchecked*-hash pyc would be used whatever the source says: a source edited after compilation (a hot
fix in the console, a stale build directory, a bad merge of two staging trees) would run the old bytecode
silently. A timestamp pyc would make the asset hash depend on file times, not only on content. A checked-hash
pyc depends only on the source and the interpreter: two synths of the same tree give the same bytes, and so the
same asset hash.

When no Python 3.12 is found at synth time the asset is staged without pyc files and a synth-time warning says
so: bytecode is an optimisation (Lambda still runs the source, only its cold start is slower), and ``cdk synth``
must keep working on a developer's machine and in tests. Set ``TRAILGUARD_REQUIRE_PYC=1`` (release pipelines)
to make a missing interpreter, or a file that does not compile, fail the synth instead.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: The Lambda runtime's Python (``lambda_.Runtime.PYTHON_3_12``): pyc files are specific to this minor version.
LAMBDA_PYTHON = (3, 12)
#: Overrides the interpreter search (a path to a Python 3.12 executable).
PYTHON_ENV = "TRAILGUARD_LAMBDA_PYTHON"
#: "1": fail the synth when pyc files cannot be produced, instead of warning.
REQUIRE_ENV = "TRAILGUARD_REQUIRE_PYC"
#: Never staged, whatever the caller excludes: bytecode of other interpreters (the synth's own) and tool caches.
STAGE_EXCLUDES = ("**/__pycache__", "**/*.pyc", "**/.mypy_cache", "**/.pytest_cache", "**/.ruff_cache")


class PycError(RuntimeError):
    """Bytecode could not be produced and ``TRAILGUARD_REQUIRE_PYC=1`` asks for it."""


@dataclass(frozen=True, slots=True)
class StagedAsset:
    """A staged asset directory and, when it has no pyc files, why (for the synth-time warning)."""

    path: Path
    warning: str = ""


def _version_of(exe: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(  # noqa: S603 - a Python interpreter found on this machine, fixed arguments
            [exe, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        ).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def find_lambda_python() -> str | None:
    """A Python 3.12 executable: ``$TRAILGUARD_LAMBDA_PYTHON``, ``python3.12`` on PATH, or pyenv's 3.12."""
    candidates: list[str] = []
    if os.environ.get(PYTHON_ENV):
        candidates.append(os.environ[PYTHON_ENV])
    name = "python{}.{}".format(*LAMBDA_PYTHON)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv_root.is_dir():
        prefix = "{}.{}.".format(*LAMBDA_PYTHON)
        for version in sorted((p for p in pyenv_root.iterdir() if p.name.startswith(prefix)), reverse=True):
            candidates.append(str(version / "bin" / name))
    for exe in candidates:
        if _version_of(exe) == LAMBDA_PYTHON:
            return exe
    return None


def _excluded(rel: str, patterns: Sequence[str]) -> bool:
    """CDK's glob excludes: ``**/x`` matches a path component anywhere, ``x`` the path or one of its ancestors."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        prefix, base = "/".join(parts[:i]), parts[i - 1]
        for pat in patterns:
            if fnmatch.fnmatch(base, pat[3:]) if pat.startswith("**/") else fnmatch.fnmatch(prefix, pat):
                return True
    return False


def _source_files(src: Path, excludes: Sequence[str]) -> list[str]:
    out = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if path.is_file() and not path.is_symlink() and not _excluded(rel, (*STAGE_EXCLUDES, *excludes)):
            out.append(rel)
    return out


def _fingerprint(src: Path, files: list[str], interpreter: str | None, runtime_dir: str) -> str:
    h = hashlib.sha256(f"v1\0{interpreter is not None}\0{runtime_dir}\0".encode())
    for rel in files:
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256((src / rel).read_bytes()).digest())
    return h.hexdigest()[:24]


def stage_with_pyc(
    src: Path, *, name: str, runtime_dir: str, staging_root: Path, excludes: Sequence[str] = ()
) -> StagedAsset:
    """Copy ``src`` (minus ``excludes`` and any bytecode) to a content-addressed directory and compile it with 3.12.

    ``runtime_dir`` is where the tree lives in Lambda (``/var/task`` for function code, ``/opt/python`` for a
    layer): tracebacks name files there, and no build path ends up in the bytecode (so in the asset hash).
    The staging directory is named by a digest of the sources, written under a temporary name and renamed:
    a repeated or concurrent synth of the same tree reuses it.
    """
    required = os.environ.get(REQUIRE_ENV) == "1"
    interpreter = find_lambda_python()
    version = "{}.{}".format(*LAMBDA_PYTHON)
    if interpreter is None and required:
        raise PycError(f"no Python {version} found ({PYTHON_ENV}, PATH or pyenv) and {REQUIRE_ENV}=1")
    files = _source_files(src, excludes)
    dest = staging_root / f"{name}-{_fingerprint(src, files, interpreter, runtime_dir)}"
    warning = (
        ""
        if interpreter
        else (
            f"{name}: no Python {version} found at synth time ({PYTHON_ENV}, PATH or pyenv): the asset ships without "
            "bytecode and every cold start compiles its modules"
        )
    )
    if dest.is_dir():
        return StagedAsset(dest, warning)
    staging_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=staging_root))
    try:
        for rel in files:
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, target)
        if interpreter is not None:
            command = [interpreter, "-m", "compileall", "-q", "-j", "1", "--invalidation-mode", "checked-hash"]
            proc = subprocess.run(  # noqa: S603 - the Python 3.12 found above, fixed arguments
                [*command, "-s", str(tmp), "-p", runtime_dir, str(tmp)],
                check=False,
                capture_output=True,
                text=True,
                env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
            )
            if proc.returncode != 0:
                failed = (proc.stdout + proc.stderr).strip()[-2000:]
                if required:
                    raise PycError(f"{name}: compileall with Python {version} failed: {failed}")
                warning = f"{name}: some modules did not compile with Python {version} (they ship as source): {failed}"
        try:
            tmp.rename(dest)
        except OSError:  # a concurrent synth staged the same content first
            if not dest.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return StagedAsset(dest, warning)
