"""The child side of :mod:`trailguard.emulator.lambda_runner`: one Lambda sandbox, stdlib only.

Executed by path (``python -P -s -B _lambda_child.py RESULT_FD CODE_DIR``), never imported: it must not
import trailguard, so nothing from the source tree can stand in for the deployed code. It imports the
handler named by ``_HANDLER`` (Lambda's variable) the way Lambda's Python runtime does, checks the
handler module and its top-level package were loaded from ``CODE_DIR`` (the extracted deployed zip, not
the editable install of the source tree), then serves invocations:

* requests: one JSON line each on stdin (the parent's pipe; fd 0 is then pointed at /dev/null so a
  handler cannot read the protocol), ``{"op": "invoke", "event": ..., "request_id": ..., "timeout_ms": ...}``
  ``{"op": "modules"}`` (the top-level modules loaded so far) or ``{"op": "find", "module": ...}`` (where a
  module would be imported from);
* replies: one JSON line each on ``RESULT_FD``, never on stdout, which (with stderr) is the log file the
  handler's own output goes to, as in CloudWatch Logs.

The first reply is ``{"ready": true, ...}`` or ``{"ready": false, "error": {...}}`` (an init error).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The attributes and method of the Python runtime's context object that handlers use."""

    def __init__(self, request_id: str, invoked_function_arn: str, timeout_ms: int) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        # A string, as in the real runtime (it copies AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.client_context = None
        self.identity = None
        self._deadline_ms = int(time.time() * 1000) + timeout_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """Lambda's error payload: errorMessage, errorType, stackTrace."""
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_exception(exc),
    }


def _under(path: str | None, root: str) -> bool:
    if not path:
        return False
    real = os.path.realpath(path)
    return os.path.commonpath([real, root]) == root


def _module_origins() -> dict[str, str]:
    """Top-level module name -> the file it was loaded from (packages: their ``__init__``)."""
    out: dict[str, str] = {}
    for name, module in sorted(sys.modules.items()):
        if "." in name or module is None:
            continue
        file = getattr(module, "__file__", None)
        if isinstance(file, str):
            out[name] = os.path.realpath(file)
    return out


def _find(name: str) -> str | None:
    """Where ``name`` would be imported from, without importing it (``None``: nowhere)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec is not None else None
    return os.path.realpath(origin) if origin and os.path.isabs(origin) else None


def _load_handler(code_dir: str) -> tuple[Any, dict[str, Any]]:
    """Import the ``_HANDLER`` function; raise if it (or its package) is not the deployed code."""
    spec = os.environ["_HANDLER"]
    module_name, _, function_name = spec.rpartition(".")
    if not module_name or not function_name:
        raise ValueError(f"bad handler {spec!r}: expected module.function")
    module_name = module_name.replace("/", ".")
    module = importlib.import_module(module_name)
    module_file = getattr(module, "__file__", None)
    if not _under(module_file, code_dir):
        raise ImportError(
            f"handler module {module_name} was loaded from {module_file}, not the deployed code {code_dir}"
        )
    top = module_name.partition(".")[0]
    package_file = getattr(sys.modules[top], "__file__", None)
    if not _under(package_file, code_dir):
        raise ImportError(f"package {top} was loaded from {package_file}, not the deployed code {code_dir}")
    function = getattr(module, function_name, None)
    if not callable(function):
        raise AttributeError(f"handler {spec!r}: {module_name} has no function {function_name!r}")
    facts = {
        "module_file": os.path.realpath(str(module_file)),
        "package_file": os.path.realpath(str(package_file)),
    }
    return function, facts


def _invoke(function: Any, request: dict[str, Any]) -> dict[str, Any]:
    request_id = str(request["request_id"])
    context = LambdaContext(request_id, str(request["invoked_function_arn"]), int(request["timeout_ms"]))
    try:
        result = function(request["event"], context)
    except Exception as exc:
        return {"ok": False, "request_id": request_id, "error": _error(exc)}
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return {"ok": False, "request_id": request_id, "error": _error(exc, "Runtime.MarshalError")}
    return {"ok": True, "request_id": request_id, "result": result}


def main() -> int:
    result_fd, code_dir = int(sys.argv[1]), os.path.realpath(sys.argv[2])
    replies = os.fdopen(result_fd, "w", encoding="utf-8", buffering=1)
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)

    def reply(obj: dict[str, Any]) -> None:
        replies.write(json.dumps(obj) + "\n")
        replies.flush()

    try:
        function, facts = _load_handler(code_dir)
    except Exception as exc:
        traceback.print_exc()
        reply({"ready": False, "error": _error(exc, "Runtime.ImportModuleError")})
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    reply({"ready": True, **facts, "python": sys.version.split()[0]})
    for line in requests:
        request = json.loads(line)
        if request.get("op") == "modules":
            reply({"ok": True, "modules": _module_origins()})
        elif request.get("op") == "find":
            reply({"ok": True, "origin": _find(str(request["module"]))})
        else:
            reply(_invoke(function, request))
    return 0


if __name__ == "__main__":
    sys.exit(main())
