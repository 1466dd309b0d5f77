"""The environment of every measured subprocess: bytecode cached for trailguard as for its dependencies.

A user's installed trailguard imports from ``.pyc`` (pip compiles on install; Lambda assets ship them, see
stacks/constructs/pyc_asset.py). A parent shell with ``PYTHONDONTWRITEBYTECODE`` set (this workplace's) would
make every measured trailguard process compile its own modules while boto3, orjson and duckdb came compiled by
pip: the benches would charge trailguard for compiling. The children write and reuse their ``.pyc`` under one
temporary prefix (outside the source tree), the baselines' as well as trailguard's.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping
from functools import cache


def bytecode_env(parent: Mapping[str, str], pyc_dir: str) -> dict[str, str]:
    """``parent`` with bytecode written and read under ``pyc_dir``, and no import-time profiling."""
    env = {**parent, "PYTHONPYCACHEPREFIX": pyc_dir}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


@cache
def measured_env() -> dict[str, str]:
    """This process's environment for measured children (one bytecode prefix per bench run, removed at exit)."""
    pyc_dir = tempfile.mkdtemp(prefix="trailguard-bench-pyc-")
    atexit.register(shutil.rmtree, pyc_dir, True)
    return bytecode_env(os.environ, pyc_dir)
