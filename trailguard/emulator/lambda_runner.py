"""Run a DEPLOYED Lambda function from its deployed code and layer zips, with its deployed environment.

moto stores Lambda functions but cannot run them without Docker. Issue 16 asks for more than running the
source tree anyway: the engine must run from the zip ``cdk deploy`` uploaded, with the environment the
stack gave it. So this module

1. reads the deployed template (``cloudformation.get_template``) to find where the function's code and
   its layers' content live in the emulator's S3 (:func:`locate_code`);
2. downloads those zips and refuses them unless ``base64(sha256(zip))`` equals the ``CodeSha256`` the
   Lambda service recorded for the function and each layer version: the proof they are the deployed
   bytes; extracts them refusing zip-slip entries (:func:`fetch_deployed_function`);
3. runs the handler in ONE long-lived child interpreter (:class:`EngineProcess`), a stdlib-only script
   (``_lambda_child.py``) that imports the deployed ``Handler`` from the extracted code and checks it
   did not come from the source tree.

The function is arm64 and the layer holds aarch64 builds of binary packages (cryptography, cffi) that
cannot load on an x86_64 host. Such a distribution is set aside and the host's installed copy is used
instead, only when the host has exactly the layer's version (:class:`Substitution` records each one);
otherwise fetching fails. Pure-Python packages always come from the layer.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.machinery
import importlib.metadata
import io
import itertools
import json
import os
import re
import selectors
import shutil
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, NamedTuple, NoReturn

from trailguard.exceptions import TrailguardError

CHILD_SCRIPT = Path(__file__).with_name("_lambda_child.py")
FUNCTION_TYPE = "AWS::Lambda::Function"
LAYER_TYPE = "AWS::Lambda::LayerVersion"
DEFAULT_INVOKE_TIMEOUT = 60.0
#: Extension-module file endings (CPython on Linux and macOS, and Windows' .pyd).
_EXTENSION_ENDINGS = (".so", ".pyd")
#: ELF header: magic, then e_machine (2 bytes) at offset 18; byte 5 says the byte order.
_ELF_MAGIC = b"\x7fELF"
_ELF_MACHINES = {3: "x86", 40: "arm", 62: "x86_64", 183: "aarch64", 243: "riscv"}
_SUB = re.compile(r"\$\{([^}]*)\}")
#: Numbers the child processes of this process (their log stream names: deterministic, unlike a pid).
_SANDBOXES = itertools.count(1)


class LambdaRunnerError(TrailguardError):
    """The deployed function cannot be fetched or run as deployed."""


class DeployedCodeError(LambdaRunnerError):
    """The deployed code or a layer is missing, is not the deployed bytes, or is unsafe to extract."""


class HandlerInitError(LambdaRunnerError):
    """The child could not import the deployed handler (Lambda's ``Runtime.ImportModuleError``)."""


class ChildDied(LambdaRunnerError):
    """The child interpreter exited; the message ends with the log tail."""


class InvokeTimeout(LambdaRunnerError):
    """An invocation ran past the timeout; the child was killed (as Lambda discards the sandbox)."""


class FunctionError(LambdaRunnerError):
    """The handler raised: ``payload`` is Lambda's error document (errorMessage, errorType, stackTrace)."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = dict(payload)
        super().__init__(f"{payload.get('errorType')}: {payload.get('errorMessage')}")


class S3Location(NamedTuple):
    bucket: str
    key: str


@dataclass(frozen=True)
class Substitution:
    """A layer distribution that cannot load here, set aside in favour of the host's same version."""

    name: str
    version: str
    #: The extension modules that cannot load on this host (paths relative to the layer's python dir).
    foreign_files: tuple[str, ...]
    #: Where the layer's copy was moved to (so the child cannot import it) and the host's copy.
    set_aside_dir: Path
    host_location: Path


@dataclass(frozen=True)
class DeployedLayer:
    arn: str
    code_sha256: str
    #: The extracted layer (Lambda's /opt); its ``python`` directory goes on the path.
    directory: Path


@dataclass(frozen=True)
class DeployedFunction:
    """A deployed function, fetched and verified: what the child needs to run it as Lambda would."""

    name: str
    arn: str
    handler: str
    environment: dict[str, str]
    runtime: str
    architectures: tuple[str, ...]
    memory_size: int
    timeout: int
    code_sha256: str
    log_group: str
    #: The extracted code zip (Lambda's /var/task).
    code_dir: Path
    layers: tuple[DeployedLayer, ...] = ()
    substituted: tuple[Substitution, ...] = ()
    log_format: str = "Text"

    @property
    def layer_dirs(self) -> tuple[Path, ...]:
        return tuple(layer.directory for layer in self.layers)

    def substitution_report(self) -> list[str]:
        """One line per layer distribution replaced by the host's copy (for the emulator's report)."""
        return [
            f"{s.name} {s.version}: the layer's build cannot load here ({', '.join(s.foreign_files)});"
            f" the host's {s.name} {s.version} from {s.host_location} is used"
            for s in self.substituted
        ]

    @property
    def python_path(self) -> tuple[Path, ...]:
        """The code, then each layer's Python directories (a later layer first: on Lambda it overwrites)."""
        paths = [self.code_dir]
        for layer in reversed(self.layers):
            paths.extend(d for d in _layer_python_dirs(layer.directory, self.runtime) if d.is_dir())
        return tuple(paths)


# ---------------------------------------------------------------------- #
# where the deployed code is
# ---------------------------------------------------------------------- #
def _pseudo_parameters(cfn: Any, stack_name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    stack_id = str(stack["StackId"])
    parts = stack_id.split(":")
    if len(parts) < 6:
        raise DeployedCodeError(f"stack {stack_name}: unexpected stack id {stack_id!r}")
    partition, region, account = parts[1], parts[3], parts[4]
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return {
        "AWS::AccountId": account,
        "AWS::Region": region,
        "AWS::Partition": partition,
        "AWS::URLSuffix": suffix,
        "AWS::StackName": str(stack["StackName"]),
        "AWS::StackId": stack_id,
    }


def _resolve(value: Any, pseudo: Mapping[str, str], where: str) -> str:
    """A template string value: plain, ``Ref`` of a pseudo parameter, ``Fn::Sub`` or ``Fn::Join`` of those."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref" and isinstance(arg, str) and arg in pseudo:
            return pseudo[arg]
        if fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            names = {k: _resolve(v, pseudo, where) for k, v in dict(variables).items()} | dict(pseudo)

            def sub(m: re.Match[str]) -> str:
                name = m.group(1)
                if name.startswith("!"):
                    return "${" + name[1:] + "}"
                if name not in names:
                    raise DeployedCodeError(f"{where}: cannot resolve ${{{name}}} in {text!r}")
                return names[name]

            return _SUB.sub(sub, str(text))
        if fn == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
            return str(arg[0]).join(_resolve(v, pseudo, where) for v in arg[1])
    raise DeployedCodeError(
        f"{where}: cannot resolve {json.dumps(value)} (only plain strings, pseudo parameters, Fn::Sub, Fn::Join)"
    )


def _template(cfn: Any, stack_name: str) -> dict[str, Any]:
    body = cfn.get_template(StackName=stack_name)["TemplateBody"]
    return dict(json.loads(body) if isinstance(body, str) else body)


def _stack_resources(cfn: Any, stack_name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        out.extend(page["StackResourceSummaries"])
    return out


def _logical_id(resources: Sequence[Mapping[str, Any]], template: Mapping[str, Any], ident: str) -> str:
    if ident in template.get("Resources", {}):
        return ident
    matches = [r["LogicalResourceId"] for r in resources if r.get("PhysicalResourceId") == ident]
    if len(matches) != 1:
        raise DeployedCodeError(f"no single resource of the stack has the logical or physical id {ident!r}")
    return str(matches[0])


def _locate(
    template: Mapping[str, Any], pseudo: Mapping[str, str], resources: Sequence[Mapping[str, Any]], ident: str
) -> S3Location:
    logical = _logical_id(resources, template, ident)
    resource = template["Resources"][logical]
    kind = resource.get("Type")
    prop = {FUNCTION_TYPE: "Code", LAYER_TYPE: "Content"}.get(kind)
    if prop is None:
        raise DeployedCodeError(f"{logical} is a {kind}, not a {FUNCTION_TYPE} or {LAYER_TYPE}")
    code = resource.get("Properties", {}).get(prop, {})
    if not isinstance(code, Mapping) or "S3Bucket" not in code or "S3Key" not in code:
        raise DeployedCodeError(f"{logical}: {prop} is not an S3 asset (inline ZipFile and images are not supported)")
    if "S3ObjectVersion" in code:
        raise DeployedCodeError(f"{logical}: {prop}.S3ObjectVersion is not supported")
    where = f"{logical}.{prop}"
    return S3Location(_resolve(code["S3Bucket"], pseudo, where), _resolve(code["S3Key"], pseudo, where))


def locate_code(cfn: Any, stack_name: str, logical_id_or_physical: str) -> S3Location:
    """The S3 bucket and key the DEPLOYED template gives a function's code or a layer version's content."""
    template = _template(cfn, stack_name)
    return _locate(
        template, _pseudo_parameters(cfn, stack_name), _stack_resources(cfn, stack_name), logical_id_or_physical
    )


# ---------------------------------------------------------------------- #
# fetching and verifying
# ---------------------------------------------------------------------- #
def code_sha256(data: bytes) -> str:
    """Lambda's ``CodeSha256``: base64 of the SHA-256 digest of the zip."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def _download_verified(s3: Any, where: S3Location, expected: str, what: str) -> bytes:
    try:
        data = bytes(s3.get_object(Bucket=where.bucket, Key=where.key)["Body"].read())
    except Exception as exc:
        raise DeployedCodeError(f"{what}: cannot read s3://{where.bucket}/{where.key}: {exc}") from exc
    actual = code_sha256(data)
    if not expected or actual != expected:
        raise DeployedCodeError(
            f"{what}: s3://{where.bucket}/{where.key} has CodeSha256 {actual}, the deployed one is {expected or '(none)'}:"
            " it is not the deployed code"
        )
    return data


def safe_extract(data: bytes, dest: Path, what: str) -> None:
    """Extract a zip into ``dest``, refusing absolute paths, ``..`` entries and symlinks (zip-slip)."""
    dest.mkdir(parents=True, exist_ok=False)
    root = dest.resolve()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        for info in infos:
            name = info.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if (
                not name
                or name.startswith(("/", "\\"))
                or re.match(r"^[A-Za-z]:", name)
                or ".." in parts
                or not (root / name).resolve().is_relative_to(root)
            ):
                raise DeployedCodeError(f"{what}: unsafe zip entry {name!r} (zip-slip)")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DeployedCodeError(f"{what}: zip entry {name!r} is a symbolic link")
        zf.extractall(root)


def _layer_python_dirs(layer_dir: Path, runtime: str) -> list[Path]:
    """Where Lambda puts a layer's Python packages on the path, in Lambda's order."""
    return [layer_dir / "python" / "lib" / runtime / "site-packages", layer_dir / "python"]


def _host_machine() -> str | None:
    return _elf_machine(Path(os.path.realpath(sys.executable)))


def _elf_machine(path: Path) -> str | None:
    """The ELF ``e_machine`` of a file as a name (``None``: not ELF)."""
    try:
        with path.open("rb") as f:
            head = f.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != _ELF_MAGIC:
        return None
    number = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return _ELF_MACHINES.get(number, f"elf-machine-{number}")


def _loadable_here(path: Path, host_machine: str | None) -> bool:
    """Whether this interpreter could load the extension module at ``path``.

    Its tag (``.cpython-312-aarch64-linux-gnu.so``) must be one this interpreter imports, and an ELF
    file must be built for this machine (``.abi3.so`` and ``.so`` carry no platform in the name).
    """
    name = path.name
    ending = name[name.index(".") :] if "." in name else ""
    if ending not in importlib.machinery.EXTENSION_SUFFIXES:
        return False
    machine = _elf_machine(path)
    if machine is None:
        return host_machine is None
    return machine == host_machine


def _top_level(relative: str) -> str:
    return relative.split("/", 1)[0]


def _owned_files(dists: Sequence[importlib.metadata.Distribution], what: str) -> dict[str, set[str]]:
    """Distribution name -> its files from RECORD (relative paths inside the directory)."""
    owned: dict[str, set[str]] = {}
    for dist in dists:
        files = dist.files
        if files is None:
            raise DeployedCodeError(f"{what}: {dist.metadata['Name']} has no RECORD: cannot tell its files")
        owned[dist.metadata["Name"]] = {str(PurePosixPath(*f.parts)) for f in files if ".." not in f.parts}
    return owned


def _foreign_files(python_dir: Path, owned: Mapping[str, set[str]], what: str) -> dict[str, tuple[str, ...]]:
    """Distribution name -> its extension modules this interpreter cannot load (only those that have some)."""
    host_machine = _host_machine()
    bad = sorted(
        path.relative_to(python_dir).as_posix()
        for path in python_dir.rglob("*")
        if path.is_file() and path.name.endswith(_EXTENSION_ENDINGS) and not _loadable_here(path, host_machine)
    )
    out: dict[str, tuple[str, ...]] = {}
    for rel in bad:
        owners = [name for name, files in owned.items() if rel in files]
        if not owners:
            raise DeployedCodeError(f"{what}: {rel} cannot load on this host and belongs to no distribution")
        for name in owners:
            out[name] = (*out.get(name, ()), rel)
    return out


def _host_twin(name: str, version: str, foreign: Sequence[str], what: str) -> importlib.metadata.Distribution:
    """The host's installed copy of ``name``, which must be exactly ``version``."""
    problem = f"{what}: {name} {version} has extension modules this host cannot load ({', '.join(foreign)})"
    try:
        host = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise DeployedCodeError(f"{problem}, and the host has no {name} to use instead") from None
    if host.version != version:
        raise DeployedCodeError(
            f"{problem}; the host has {name} {host.version}, not the same version: it cannot stand in"
        )
    return host


def _move_aside(python_dir: Path, set_aside: Path, mine: set[str], others: set[str]) -> None:
    """Move a distribution's files out of the path: whole top-level entries unless another distribution shares one."""
    shared_tops = {_top_level(r) for r in others}
    for top in sorted({_top_level(r) for r in mine}):
        moving = sorted(r for r in mine if _top_level(r) == top) if top in shared_tops else [top]
        for rel in moving:
            src = python_dir / rel
            if src.exists() or src.is_symlink():
                dst = set_aside / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(src), str(dst))


def _substitute_foreign(python_dir: Path, set_aside: Path, what: str) -> list[Substitution]:
    """Set aside the distributions of ``python_dir`` that cannot load here; the host must have each one's version."""
    # Read every name and version first: the metadata moves with the files.
    found = sorted(importlib.metadata.distributions(path=[str(python_dir)]), key=lambda d: str(d.metadata["Name"]))
    versions = {str(d.metadata["Name"]): str(d.version) for d in found}
    owned = _owned_files(found, what)
    foreign = _foreign_files(python_dir, owned, what)
    hosts = {name: _host_twin(name, versions[name], foreign[name], what) for name in sorted(foreign)}
    out: list[Substitution] = []
    for name, host in hosts.items():  # every check passed before the first move
        others: set[str] = set().union(*(files for other, files in owned.items() if other != name))
        _move_aside(python_dir, set_aside, owned[name], others)
        out.append(
            Substitution(
                name=name,
                version=versions[name],
                foreign_files=foreign[name],
                set_aside_dir=set_aside,
                host_location=Path(str(host.locate_file(""))),
            )
        )
    return out


def _layer_version(lambda_client: Any, arn: str) -> dict[str, Any]:
    """``get_layer_version`` by the parts of the ARN (moto 5.2.5 does not serve GetLayerVersionByArn)."""
    parts = arn.split(":")
    if len(parts) != 8 or parts[5] != "layer":
        raise DeployedCodeError(f"not a layer version ARN: {arn!r}")
    return dict(lambda_client.get_layer_version(LayerName=":".join(parts[:7]), VersionNumber=int(parts[7])))


def fetch_deployed_function(
    function_name: str,
    *,
    stack_name: str,
    cloudformation: Any,
    lambda_client: Any,
    s3: Any,
    workdir: Path,
) -> DeployedFunction:
    """Download, verify and extract a deployed function's code and layers into ``workdir``.

    ``function_name`` is the function's name or its logical id in ``stack_name``. Every zip must hash to
    the ``CodeSha256`` Lambda recorded, and every layer must be a layer version of the same stack.
    """
    template = _template(cloudformation, stack_name)
    pseudo = _pseudo_parameters(cloudformation, stack_name)
    resources = _stack_resources(cloudformation, stack_name)
    logical = _logical_id(resources, template, function_name)
    physical = next((r.get("PhysicalResourceId") for r in resources if r["LogicalResourceId"] == logical), None)
    if not physical:
        raise DeployedCodeError(f"{logical} has no physical id in stack {stack_name}")
    config = dict(lambda_client.get_function(FunctionName=physical)["Configuration"])
    name = str(config["FunctionName"])
    runtime = str(config.get("Runtime", ""))
    if not runtime.startswith("python3"):
        raise DeployedCodeError(f"{name}: runtime {runtime!r} is not a Python runtime")

    workdir = Path(workdir)
    code_dir = workdir / "code"
    if code_dir.exists() or (workdir / "layers").exists():
        raise DeployedCodeError(f"{workdir} already holds a fetched function: use an empty directory")
    code = _download_verified(
        s3, _locate(template, pseudo, resources, logical), str(config.get("CodeSha256", "")), name
    )
    safe_extract(code, code_dir, f"{name} code")

    layers: list[DeployedLayer] = []
    substituted: list[Substitution] = []
    for index, ref in enumerate(config.get("Layers") or []):
        arn = str(ref["Arn"])
        layer_logical = [r["LogicalResourceId"] for r in resources if r.get("PhysicalResourceId") == arn]
        if len(layer_logical) != 1 or template["Resources"][layer_logical[0]].get("Type") != LAYER_TYPE:
            raise DeployedCodeError(f"{name}: layer {arn} is not a layer version of stack {stack_name}")
        expected = str(_layer_version(lambda_client, arn)["Content"].get("CodeSha256", ""))
        data = _download_verified(
            s3, _locate(template, pseudo, resources, layer_logical[0]), expected, f"{name} layer {arn}"
        )
        layer_dir = workdir / "layers" / str(index)
        safe_extract(data, layer_dir, f"layer {arn}")
        for python_dir in _layer_python_dirs(layer_dir, runtime):
            if python_dir.is_dir():
                rel = python_dir.relative_to(layer_dir)
                set_aside = workdir / "layers" / f"{index}.set-aside" / rel
                substituted.extend(_substitute_foreign(python_dir, set_aside, f"layer {arn}"))
        layers.append(DeployedLayer(arn=arn, code_sha256=expected, directory=layer_dir))

    logging_config = config.get("LoggingConfig") or {}
    return DeployedFunction(
        name=name,
        arn=str(config["FunctionArn"]),
        handler=str(config["Handler"]),
        environment={str(k): str(v) for k, v in ((config.get("Environment") or {}).get("Variables") or {}).items()},
        runtime=runtime,
        architectures=tuple(config.get("Architectures") or ("x86_64",)),
        memory_size=int(config.get("MemorySize", 128)),
        timeout=int(config.get("Timeout", 3)),
        code_sha256=str(config["CodeSha256"]),
        log_group=str(logging_config.get("LogGroup") or f"/aws/lambda/{name}"),
        code_dir=code_dir,
        layers=tuple(layers),
        substituted=tuple(substituted),
        log_format=str(logging_config.get("LogFormat") or "Text"),
    )


# ---------------------------------------------------------------------- #
# running
# ---------------------------------------------------------------------- #
@dataclass(frozen=True)
class Invocation:
    """One invocation's outcome, as Lambda's Invoke reports it: ``function_error`` is set when the handler raised."""

    request_id: str
    payload: Any
    function_error: str | None = None


@dataclass
class EngineProcess:
    """One long-lived child interpreter running a :class:`DeployedFunction`'s handler (a warm sandbox).

    The environment is the deployed function's plus what Lambda sets (function name, region, memory,
    log group, ``_HANDLER``...), the emulator endpoint and the caller's fake credentials; nothing else
    of this process's environment leaks in. The handler's stdout and stderr go to ``log_path``.
    """

    function: DeployedFunction
    log_path: Path
    region: str
    endpoint_url: str
    aws_access_key_id: str
    aws_secret_access_key: str
    aws_session_token: str | None = None
    timeout: float = DEFAULT_INVOKE_TIMEOUT
    init_timeout: float = DEFAULT_INVOKE_TIMEOUT
    python: str = sys.executable
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _replies: int | None = field(default=None, init=False, repr=False)
    _buffer: bytearray = field(default_factory=bytearray, init=False, repr=False)
    _count: int = field(default=0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _sandbox: int = field(default_factory=lambda: next(_SANDBOXES), init=False, repr=False)
    ready: dict[str, Any] = field(default_factory=dict, init=False)

    # -- environment ----------------------------------------------------
    def environment(self) -> dict[str, str]:
        """The child's whole environment."""
        fn = self.function
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            **fn.environment,
            "PYTHONPATH": os.pathsep.join(str(p) for p in fn.python_path),
            "PYTHONDONTWRITEBYTECODE": "1",  # the extracted deployed code stays byte for byte as deployed
            "PYTHONUNBUFFERED": "1",
            "LAMBDA_TASK_ROOT": str(fn.code_dir),
            "_HANDLER": fn.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": fn.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": f"emulator/[$LATEST]{self._sandbox:032x}",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
            # No host AWS configuration: only what Lambda would give the function.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if fn.log_format.upper() == "JSON":
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        if self.aws_session_token:
            env["AWS_SESSION_TOKEN"] = self.aws_session_token
        return env

    # -- lifecycle ------------------------------------------------------
    def start(self) -> EngineProcess:
        """Start the child and wait until it imported the handler (raises :class:`HandlerInitError`)."""
        if self._proc is not None:
            raise LambdaRunnerError("the child is already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        read_fd, write_fd = os.pipe()
        try:
            with self.log_path.open("ab") as log:
                self._proc = subprocess.Popen(  # noqa: S603 - our interpreter and our script, no shell
                    [self.python, "-P", "-s", "-B", str(CHILD_SCRIPT), str(write_fd), str(self.function.code_dir)],
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    env=self.environment(),
                    cwd=self.function.code_dir,
                    close_fds=True,
                )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self._replies = read_fd
        ready = self._read_reply(self.init_timeout, "the handler's import")
        if not ready.get("ready"):
            error = ready.get("error") or {}
            self.close()
            raise HandlerInitError(
                f"{self.function.name}: {error.get('errorType')}: {error.get('errorMessage')}\n{self.log_tail()}"
            )
        self.ready = ready
        return self

    def __enter__(self) -> EngineProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child (end of input, then a kill if it lingers) and release the pipe."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._replies is not None:
            os.close(self._replies)
            self._replies = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the log file (what the child and the handler wrote)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "--- log tail ---\n" + "\n".join(text.splitlines()[-lines:])

    # -- protocol -------------------------------------------------------
    def _send(self, request: Mapping[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise LambdaRunnerError("the child is not running: start it first")
        try:
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._died("before the request was sent")

    def _died(self, when: str) -> NoReturn:
        proc = self._proc
        code = proc.wait() if proc is not None else None
        self.close()
        raise ChildDied(f"{self.function.name}: the child exited (status {code}) {when}\n{self.log_tail()}")

    def _read_reply(self, timeout: float, what: str) -> dict[str, Any]:
        fd = self._replies
        if fd is None:
            raise LambdaRunnerError("the child is not running: start it first")
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    proc = self._proc
                    if proc is not None:
                        proc.kill()
                    self.close()
                    raise InvokeTimeout(
                        f"{self.function.name}: {what} took longer than {timeout:g} s: child killed\n{self.log_tail()}"
                    )
                chunk = os.read(fd, 65536)
                if not chunk:
                    self._died(f"during {what}")
                self._buffer.extend(chunk)
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer[:] = rest
        return dict(json.loads(line))

    def _next_request_id(self) -> str:
        """A deterministic, UUID-shaped request id: the n-th invocation of this process."""
        self._count += 1
        return f"00000000-0000-4000-8000-{self._count:012d}"

    def invoke_raw(self, payload: Any) -> Invocation:
        """Invoke once; a handler exception comes back in ``function_error`` (``"Unhandled"``)."""
        with self._lock:
            request_id = self._next_request_id()
            self._send(
                {
                    "op": "invoke",
                    "event": payload,
                    "request_id": request_id,
                    "invoked_function_arn": self.function.arn,
                    "timeout_ms": self.function.timeout * 1000,
                }
            )
            reply = self._read_reply(self.timeout, f"invocation {request_id}")
        if reply.get("ok"):
            return Invocation(request_id=request_id, payload=reply.get("result"))
        return Invocation(request_id=request_id, payload=reply.get("error"), function_error="Unhandled")

    def invoke(self, payload: Any) -> Any:
        """The handler's return value; raises :class:`FunctionError` with Lambda's error document if it raised."""
        result = self.invoke_raw(payload)
        if result.function_error:
            raise FunctionError({**(result.payload or {}), "requestId": result.request_id})
        return result.payload

    def loaded_modules(self) -> dict[str, Path]:
        """Top-level modules loaded in the child so far -> the file each came from (where code really came from)."""
        with self._lock:
            self._send({"op": "modules"})
            reply = self._read_reply(self.timeout, "the module listing")
        return {name: Path(file) for name, file in reply.get("modules", {}).items()}

    def module_origin(self, name: str) -> Path | None:
        """The file the child would import ``name`` from (found, not imported; ``None``: not importable)."""
        with self._lock:
            self._send({"op": "find", "module": name})
            reply = self._read_reply(self.timeout, f"finding {name}")
        origin = reply.get("origin")
        return Path(origin) if origin else None
