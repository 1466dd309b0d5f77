"""The deployed-Lambda runner: code and layers fetched from the emulator, verified, and run in a child.

Each world is built the way ``cdk deploy`` builds it: the asset zips are objects in the bootstrap
bucket and a CloudFormation stack creates the layer version and the function from them, so the runner
reads everything it needs from the deployed template and the Lambda service, as it will against the
emulator. Everything runs against moto in this process (the child never calls AWS, except in the
real-engine test, which gets a moto server).
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import stat
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from trailguard.emulator.fixes import apply_all
from trailguard.emulator.lambda_runner import (
    ChildDied,
    DeployedCodeError,
    DeployedFunction,
    EngineProcess,
    FunctionError,
    HandlerInitError,
    InvokeTimeout,
    S3Location,
    _elf_machine,
    _host_machine,
    _loadable_here,
    _resolve,
    code_sha256,
    fetch_deployed_function,
    locate_code,
)

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"
ASSETS = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
STACK = "TrailguardDetection"
ENDPOINT = "http://127.0.0.1:9"  # nothing listens: the tiny handler never calls AWS

HANDLER_PY = """
import os
import sys
import threading

import helperlib


def handler(event, context):
    print("log line from the handler", context.aws_request_id)
    if "raise" in event:
        raise ValueError("boom " + event["raise"])
    if "exit" in event:
        sys.stdout.flush()
        os._exit(event["exit"])
    if "block" in event:
        threading.Event().wait()
    if "import" in event:
        module = __import__(event["import"])
        return {"file": module.__file__}
    return {
        "event": event,
        "env": {k: os.environ.get(k) for k in ("GREETING", "AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_ENDPOINT_URL")},
        "helper": helperlib.VALUE,
        "helper_file": helperlib.__file__,
        "module_file": __file__,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "log_group": context.log_group_name,
        "remaining_ms_positive": context.get_remaining_time_in_millis() > 0,
    }
"""


# ---------------------------------------------------------------------- #
# building a deployed world
# ---------------------------------------------------------------------- #
def make_zip(files: Mapping[str, str | bytes], *, symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(zipfile.ZipInfo(name), content)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def tiny_code() -> bytes:
    return make_zip({"app/__init__.py": "", "app/main.py": HANDLER_PY})


def tiny_layer(extra: Mapping[str, str | bytes] | None = None) -> bytes:
    return make_zip({"python/helperlib/__init__.py": 'VALUE = "from the layer"\n', **(extra or {})})


def fake_elf(machine: str) -> bytes:
    """A file that starts like an ELF shared object for ``machine`` (only the header is read)."""
    number = {"x86_64": 62, "aarch64": 183}[machine]
    return b"\x7fELF\x02\x01\x01" + b"\x00" * 11 + number.to_bytes(2, "little") + b"\x00" * 44


def other_machine() -> str:
    """An ELF machine that is not this host's (the layer's aarch64 on the x86_64 CI host)."""
    return "x86_64" if _host_machine() == "aarch64" else "aarch64"


def fake_binary_layer(name: str, version: str) -> dict[str, str | bytes]:
    """A layer distribution ``name`` at ``version`` whose extension module is built for another machine."""
    so = f"_{name}_backend.cpython-312-{other_machine()}-linux-gnu.so"
    dist = f"{name}-{version}.dist-info"
    files: dict[str, str | bytes] = {
        f"python/{name}/__init__.py": "raise ImportError('the layer copy cannot load here')\n",
        f"python/{so}": fake_elf(other_machine()),
        f"python/{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    }
    record = [f"{n.removeprefix('python/')},," for n in files] + [f"{dist}/RECORD,,"]
    files[f"python/{dist}/RECORD"] = "\n".join(record) + "\n"
    return files


def template(handler: str, environment: Mapping[str, str]) -> dict[str, Any]:
    """The shape CDK synthesizes: assets in the bootstrap bucket through Fn::Sub, the layer by Ref."""
    bucket = {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-" + REGION}
    return {
        "Resources": {
            "EngineRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}},
            },
            "Dependencies1A2B3C4D": {
                "Type": "AWS::Lambda::LayerVersion",
                "Properties": {
                    "Content": {"S3Bucket": bucket, "S3Key": "layer.zip"},
                    "CompatibleRuntimes": ["python3.12"],
                },
            },
            "Engine5E6F7A8B": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Code": {"S3Bucket": bucket, "S3Key": "code.zip"},
                    "Handler": handler,
                    "Runtime": "python3.12",
                    "Architectures": ["arm64"],
                    "MemorySize": 512,
                    "Timeout": 60,
                    "Role": {"Fn::GetAtt": ["EngineRole", "Arn"]},
                    "Layers": [{"Ref": "Dependencies1A2B3C4D"}],
                    "Environment": {"Variables": dict(environment)},
                },
            },
        }
    }


@pytest.fixture
def moto_keeps_layers() -> None:
    """moto 5.2.5 drops a CloudFormation function's Layers/Architectures and has no layer-version physical id.

    The emulator's fixes correct both (``lambda-function-properties``); they stay applied in this process,
    as they do while the emulator runs.
    """
    apply_all()


class World:
    """Clients on the emulated account and a way to deploy a code zip and a layer zip as CDK does."""

    def __init__(self, client: Callable[[str], Any]) -> None:
        self.s3, self.cfn, self.lam = client("s3"), client("cloudformation"), client("lambda")
        self.s3.create_bucket(Bucket=ASSETS)

    def deploy(
        self,
        code: bytes,
        layer: bytes,
        *,
        handler: str = "app.main.handler",
        environment: Mapping[str, str] | None = None,
        stack: str = STACK,
    ) -> str:
        """Publish the assets, create the stack; the function's name."""
        self.s3.put_object(Bucket=ASSETS, Key="code.zip", Body=code)
        self.s3.put_object(Bucket=ASSETS, Key="layer.zip", Body=layer)
        env = {"GREETING": "hello from the deployed environment"} if environment is None else environment
        self.cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template(handler, env)))
        return self.physical(stack, "Engine5E6F7A8B")

    def physical(self, stack: str, logical: str) -> str:
        resources = self.cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
        return next(str(r["PhysicalResourceId"]) for r in resources if r["LogicalResourceId"] == logical)

    def fetch(self, name: str, workdir: Path, stack: str = STACK) -> DeployedFunction:
        return fetch_deployed_function(
            name, stack_name=stack, cloudformation=self.cfn, lambda_client=self.lam, s3=self.s3, workdir=workdir
        )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, moto_keeps_layers: None) -> Iterator[World]:
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield World(lambda service: boto3.client(service, region_name=REGION))  # type: ignore[call-overload]


def engine(fn: DeployedFunction, tmp_path: Path, **kwargs: Any) -> EngineProcess:
    settings: dict[str, Any] = {"endpoint_url": ENDPOINT, **kwargs}
    return EngineProcess(
        fn,
        log_path=tmp_path / "engine.log",
        region=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        **settings,
    )


# ---------------------------------------------------------------------- #
# tests
# ---------------------------------------------------------------------- #
def test_locate_code_resolves_the_deployed_template(world: World) -> None:
    name = world.deploy(tiny_code(), tiny_layer())
    layer_arn = world.physical(STACK, "Dependencies1A2B3C4D")
    assert locate_code(world.cfn, STACK, name) == S3Location(ASSETS, "code.zip")
    assert locate_code(world.cfn, STACK, "Engine5E6F7A8B") == S3Location(ASSETS, "code.zip")
    assert locate_code(world.cfn, STACK, layer_arn) == S3Location(ASSETS, "layer.zip")
    with pytest.raises(DeployedCodeError, match="EngineRole is a AWS::IAM::Role"):
        locate_code(world.cfn, STACK, "EngineRole")


PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws"}


@pytest.mark.parametrize(
    ("value", "resolved"),
    [
        ("plain.zip", "plain.zip"),
        ({"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"}, ASSETS),
        ({"Fn::Sub": ["${Prefix}-${AWS::Partition}-${!Literal}", {"Prefix": "p"}]}, "p-aws-${Literal}"),
        ({"Fn::Join": ["-", ["a", {"Ref": "AWS::AccountId"}]]}, f"a-{ACCOUNT}"),
    ],
)
def test_template_values_resolve(value: Any, resolved: str) -> None:
    assert _resolve(value, PSEUDO, "here") == resolved


@pytest.mark.parametrize(
    "value", [{"Fn::Sub": "${SomeParameter}-x"}, {"Ref": "SomeParameter"}, {"Fn::GetAtt": ["Bucket", "Arn"]}, 3]
)
def test_unresolvable_template_values_are_refused(value: Any) -> None:
    with pytest.raises(DeployedCodeError, match="here: cannot resolve"):
        _resolve(value, PSEUDO, "here")


def test_the_deployed_code_runs_with_the_deployed_environment(world: World, tmp_path: Path) -> None:
    name = world.deploy(tiny_code(), tiny_layer())
    fn = world.fetch(name, tmp_path / "fn")
    assert (fn.handler, fn.runtime, fn.architectures, fn.memory_size) == (
        "app.main.handler",
        "python3.12",
        ("arm64",),
        512,
    )
    assert fn.code_sha256 == code_sha256(tiny_code())
    assert [layer.code_sha256 for layer in fn.layers] == [code_sha256(tiny_layer())]
    assert fn.substituted == ()
    with engine(fn, tmp_path) as proc:
        out = proc.invoke({"hello": "world"})
        again = proc.invoke({"hello": "again"})
        modules = proc.loaded_modules()
    assert out["event"] == {"hello": "world"}
    assert out["env"] == {
        "GREETING": "hello from the deployed environment",
        "AWS_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_ENDPOINT_URL": ENDPOINT,
    }
    code_dir = fn.code_dir.resolve()
    assert Path(out["module_file"]).resolve().is_relative_to(code_dir)
    assert Path(proc.ready["module_file"]).is_relative_to(code_dir)
    assert out["helper"] == "from the layer"
    assert Path(out["helper_file"]).resolve().is_relative_to(fn.layer_dirs[0].resolve())
    assert (out["function_name"], out["memory"], out["arn"]) == (name, "512", fn.arn)
    assert out["log_group"] == f"/aws/lambda/{name}"
    assert out["remaining_ms_positive"] is True
    assert (out["request_id"], again["request_id"]) == (
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
    )
    assert "trailguard" not in modules  # the child script is stdlib only
    log = (tmp_path / "engine.log").read_text()
    assert "log line from the handler 00000000-0000-4000-8000-000000000002" in log


def test_a_handler_exception_is_a_function_error_and_the_sandbox_stays_warm(world: World, tmp_path: Path) -> None:
    fn = world.fetch(world.deploy(tiny_code(), tiny_layer()), tmp_path / "fn")
    with engine(fn, tmp_path) as proc:
        raw = proc.invoke_raw({"raise": "first"})
        with pytest.raises(FunctionError) as caught:
            proc.invoke({"raise": "second"})
        ok = proc.invoke({"after": "errors"})
        assert proc.running
    assert raw.function_error == "Unhandled"
    assert raw.payload["errorType"] == "ValueError"
    assert raw.payload["errorMessage"] == "boom first"
    assert any("boom" in line for line in raw.payload["stackTrace"])
    assert caught.value.payload["errorMessage"] == "boom second"
    assert caught.value.payload["requestId"] == "00000000-0000-4000-8000-000000000002"
    assert ok["event"] == {"after": "errors"}


def test_a_dead_child_is_a_clear_error_with_the_log_tail(world: World, tmp_path: Path) -> None:
    fn = world.fetch(world.deploy(tiny_code(), tiny_layer()), tmp_path / "fn")
    with engine(fn, tmp_path) as proc:
        with pytest.raises(ChildDied, match=r"status 3\)[\s\S]*log line from the handler"):
            proc.invoke({"exit": 3})
        assert not proc.running


def test_an_invocation_past_the_timeout_kills_the_child(world: World, tmp_path: Path) -> None:
    fn = world.fetch(world.deploy(tiny_code(), tiny_layer()), tmp_path / "fn")
    with engine(fn, tmp_path, timeout=1.0) as proc:
        with pytest.raises(InvokeTimeout, match="longer than 1 s"):
            proc.invoke({"block": True})
        assert not proc.running


@pytest.mark.parametrize("asset", ["code.zip", "layer.zip"])
def test_an_object_that_is_not_the_deployed_zip_is_refused(world: World, tmp_path: Path, asset: str) -> None:
    name = world.deploy(tiny_code(), tiny_layer())
    replaced = make_zip({"app/__init__.py": "", "app/main.py": "def handler(e, c):\n    return 'not deployed'\n"})
    world.s3.put_object(Bucket=ASSETS, Key=asset, Body=replaced)
    with pytest.raises(DeployedCodeError, match="it is not the deployed code"):
        world.fetch(name, tmp_path / "fn")


@pytest.mark.parametrize(
    ("entries", "symlink", "message"),
    [
        ({"../evil.py": "x = 1\n"}, None, "unsafe zip entry '../evil.py'"),
        ({"app/../../evil.py": "x = 1\n"}, None, "unsafe zip entry 'app/../../evil.py'"),
        ({"/tmp/evil.py": "x = 1\n"}, None, "unsafe zip entry '/tmp/evil.py'"),
        ({}, "app/link", "is a symbolic link"),
    ],
)
def test_zip_slip_entries_are_refused(
    world: World, tmp_path: Path, entries: dict[str, str], symlink: str | None, message: str
) -> None:
    code = make_zip({"app/__init__.py": "", "app/main.py": HANDLER_PY, **entries}, symlink=symlink)
    name = world.deploy(code, tiny_layer())
    with pytest.raises(DeployedCodeError, match=message):
        world.fetch(name, tmp_path / "fn")
    assert not (tmp_path / "evil.py").exists()
    assert not list((tmp_path / "fn" / "code").rglob("*"))  # nothing extracted before the check


def test_a_handler_resolved_from_the_source_tree_is_refused(world: World, tmp_path: Path) -> None:
    """A zip without trailguard_engine: the import would find the editable install; the child refuses it."""
    name = world.deploy(tiny_code(), tiny_layer(), handler="trailguard_engine.handler.handler")
    fn = world.fetch(name, tmp_path / "fn")
    with pytest.raises(HandlerInitError, match="not the deployed code"):
        engine(fn, tmp_path).start()


def test_a_foreign_binary_package_is_replaced_by_the_hosts_same_version(world: World, tmp_path: Path) -> None:
    version = importlib.metadata.version("cffi")
    name = world.deploy(tiny_code(), tiny_layer(fake_binary_layer("cffi", version)))
    fn = world.fetch(name, tmp_path / "fn")
    (sub,) = fn.substituted
    assert fn.substitution_report() == [
        f"cffi {version}: the layer's build cannot load here ({sub.foreign_files[0]}); the host's cffi {version}"
        f" from {sub.host_location} is used"
    ]
    assert (sub.name, sub.version) == ("cffi", version)
    assert sub.foreign_files == (f"_cffi_backend.cpython-312-{other_machine()}-linux-gnu.so",)
    python_dir = fn.layer_dirs[0] / "python"
    assert not (python_dir / "cffi").exists()
    assert not (python_dir / f"cffi-{version}.dist-info").exists()
    assert (sub.set_aside_dir / "cffi" / "__init__.py").is_file()
    assert (python_dir / "helperlib").is_dir()  # the pure-Python package stays
    with engine(fn, tmp_path) as proc:
        out = proc.invoke({"import": "cffi"})
    assert Path(out["file"]).resolve().is_relative_to(sub.host_location.resolve())


def test_a_foreign_binary_package_without_the_same_host_version_is_an_error(world: World, tmp_path: Path) -> None:
    host = importlib.metadata.version("cffi")
    name = world.deploy(tiny_code(), tiny_layer(fake_binary_layer("cffi", "0.0.1")))
    with pytest.raises(DeployedCodeError, match=rf"cffi 0\.0\.1 has extension modules .* the host has cffi {host}"):
        world.fetch(name, tmp_path / "fn")


def test_a_foreign_binary_package_the_host_lacks_is_an_error(world: World, tmp_path: Path) -> None:
    name = world.deploy(tiny_code(), tiny_layer(fake_binary_layer("nosuchbinarypkg", "1.0")))
    with pytest.raises(DeployedCodeError, match="the host has no nosuchbinarypkg"):
        world.fetch(name, tmp_path / "fn")


@pytest.mark.parametrize(
    ("file_name", "machine", "loadable"),
    [
        ("_rust.abi3.so", "host", True),
        ("_rust.abi3.so", "other", False),  # cryptography's aarch64 build: no platform in the name
        ("plain.so", "other", False),
        (f"_x.cpython-312-{other_machine()}-linux-gnu.so", "other", False),
    ],
)
def test_extension_modules_are_judged_by_tag_and_machine(
    tmp_path: Path, file_name: str, machine: str, loadable: bool
) -> None:
    host = _host_machine()
    if host not in ("x86_64", "aarch64"):
        pytest.fail(f"unexpected host machine {host}")
    path = tmp_path / file_name
    path.write_bytes(fake_elf(host if machine == "host" else other_machine()))
    assert _elf_machine(path) == (host if machine == "host" else other_machine())
    assert _loadable_here(path, host) is loadable


# ---------------------------------------------------------------------- #
# the real engine, from zips made as CDK makes its assets
# ---------------------------------------------------------------------- #
def cdk_asset_zip(directory: Path, excludes: list[str]) -> bytes:
    """The directory's contents at the zip root, minus CDK's glob excludes (a pattern also matches any ancestor)."""
    from fnmatch import fnmatch

    def excluded(rel: str) -> bool:
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            prefix, base = "/".join(parts[:i]), parts[i - 1]
            for pattern in excludes:
                if pattern.startswith("**/"):
                    if fnmatch(base, pattern[3:]):
                        return True
                elif fnmatch(prefix, pattern):
                    return True
        return False

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for path in sorted(directory.rglob("*")):
            rel = path.relative_to(directory).as_posix()
            if path.is_file() and not excluded(rel):
                zf.write(path, rel)
    return buf.getvalue()


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_the_real_engine_runs_from_its_zip_with_the_layer(
    moto_server: str, moto_keeps_layers: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stacks import names
    from stacks.detection import ASSET_EXCLUDES, ENGINE_HANDLER, LAMBDA_ROOT, LAYER_DIR

    assert (LAYER_DIR / "python").is_dir(), "build/lambda-layer is missing: run make setup"
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    w = World(lambda service: session.client(service, endpoint_url=moto_server))  # type: ignore[call-overload]
    config = names.RUNTIME_CONFIG_PARAMETER
    session.client("ssm", endpoint_url=moto_server).put_parameter(Name=config, Value="{}", Type="String")
    environment = {
        "TRAILGUARD_CONFIG_PARAMETER": config,
        "TRAILGUARD_ALERT_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:trailguard-alerts",
        "TRAILGUARD_REMEDIATION_ROLE_NAME": names.REMEDIATION_ROLE_NAME,
        "TRAILGUARD_STATE_TABLE": "trailguard-state",
        "POWERTOOLS_SERVICE_NAME": "trailguard-engine",
        "POWERTOOLS_METRICS_NAMESPACE": "Trailguard",
        "TRAILGUARD_TRACING": "false",
    }
    stack = "RealEngine"
    name = w.deploy(
        cdk_asset_zip(LAMBDA_ROOT, ASSET_EXCLUDES),
        cdk_asset_zip(LAYER_DIR, []),
        handler=ENGINE_HANDLER,
        environment=environment,
        stack=stack,
    )
    fn = w.fetch(name, tmp_path / "fn", stack=stack)
    assert not (fn.code_dir / "requirements.txt").exists()
    assert not list(fn.code_dir.rglob("__pycache__"))
    if _host_machine() != "aarch64":
        assert {s.name for s in fn.substituted} == {"cffi", "cryptography"}
    proc = engine(fn, tmp_path, endpoint_url=moto_server)
    with proc:
        rejected = proc.invoke({"trailguard_rule": "no-such-rule", "event": {"detail": {}}})
        modules = proc.loaded_modules()
        origins = {m: proc.module_origin(m) for m in ("policyuniverse", "cryptography", "_cffi_backend", "boto3")}
    assert rejected == {"rejected": True, "reason": "unknown rule id 'no-such-rule'", "findings": []}
    code, layer = fn.code_dir.resolve(), fn.layer_dirs[0].resolve()
    assert modules["trailguard_engine"].is_relative_to(code)
    assert modules["aws_lambda_powertools"].is_relative_to(layer)
    assert modules["jmespath"].is_relative_to(layer)
    policyuniverse = origins["policyuniverse"]
    assert policyuniverse is not None
    assert policyuniverse.is_relative_to(layer)
    for sub in fn.substituted:  # the aarch64 builds are set aside: the host's same versions load instead
        top = {"cffi": "_cffi_backend", "cryptography": "cryptography"}[sub.name]
        origin = origins[top]
        assert origin is not None
        assert origin.is_relative_to(sub.host_location.resolve()), top
    boto3_origin = origins["boto3"]  # the runtime's SDK (not in the layer): the host's, as /var/runtime's on Lambda
    assert boto3_origin is not None
    assert not boto3_origin.is_relative_to(layer)
    assert "trailguard" not in modules
    records = [json.loads(line) for line in (tmp_path / "engine.log").read_text().splitlines() if line.startswith("{")]
    assert any(r.get("message") == "rejected input: unknown rule id 'no-such-rule'" for r in records)
    assert any("RejectedEvents" in r and "_aws" in r for r in records)  # the engine's EMF metrics
