"""Dev and Lambda runtime pins cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s#]+)")


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        m = PIN.match(line.strip())
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(3)
    return out


def test_root_requirements_include_the_lambda_pins_and_never_repin_them() -> None:
    root_text = (ROOT / "requirements.txt").read_text()
    assert "-r lambdas/requirements.txt" in root_text.splitlines()
    runtime = pins(ROOT / "lambdas" / "requirements.txt")
    assert runtime, "lambdas/requirements.txt pins nothing"
    dev = pins(ROOT / "requirements.txt")
    assert not set(runtime) & set(dev), (
        "a Lambda runtime package is pinned twice; pin it only in lambdas/requirements.txt"
    )


def test_every_requirement_is_pinned_exactly() -> None:
    for path in (ROOT / "requirements.txt", ROOT / "lambdas" / "requirements.txt"):
        for line in path.read_text().splitlines():
            s = line.split("#", 1)[0].strip()
            if not s or s.startswith("-r "):
                continue
            assert PIN.match(s), f"{path.name}: {s!r} is not pinned with =="


def test_installed_lambda_layer_matches_the_pins() -> None:
    layer = ROOT / "build" / "lambda-layer" / "python"
    if not layer.is_dir():
        import pytest

        pytest.skip("lambda layer not built (make setup builds it)")
    for name, version in pins(ROOT / "lambdas" / "requirements.txt").items():
        dist = name.replace("-", "_")
        assert list(layer.glob(f"{dist}-{version}.dist-info")), f"layer has no {name}=={version}"
