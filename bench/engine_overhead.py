"""Engine overhead against a real moto HTTP server.

For one remediation (StopLogging -> start_logging) it measures, side by side
in one run against the same server:

* the time ``trailguard_engine.handler.handler`` takes for the event (decide,
  idempotency, rate limit, assume role, re-read, act, notify, Security Hub);
* the time of the bare boto3 call the remediation minimally needs
  (``cloudtrail.start_logging``);

and the number of AWS API calls the handler makes, against that minimum of 1.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from trailguard_engine.catalog import load_catalog

from trailguard.config import TrailguardConfig
from trailguard.demo.records import cloudtrail_record
from trailguard.demo.routing import eventbridge_event
from trailguard.demo.sandbox import client, moto_server, scoped_env, seed

RULE = "cloudtrail-stop-logging"


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object the engine and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/trailguard-engine"
    log_stream_name: str = "bench"
    deadline: float = field(default_factory=lambda: time.monotonic() + 60)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def run(iterations: int = 30, *, own_trail: bool = False) -> dict[str, Any]:
    """``own_trail``: the trail is trailguard's own (``trailguard_trail`` in the runtime document), whose
    remediation reads no exemption tags (no tag exempts trailguard's own resources); else any member trail."""
    import trailguard_engine.handler as handler_module
    from trailguard_engine import clients

    doc = TrailguardConfig(dry_run=False).runtime_document()  # the benchmark measures remediations, not dry runs
    doc["max_actions_per_resource_per_hour"] = 100  # the benchmark remediates one trail many times
    permissions = sorted({p for r in load_catalog() if r.remediation for p in r.remediation.permissions})
    calls: Counter[str] = Counter()
    real_new_client = clients.new_client

    def counting_new_client(service: str, *, region: str, credentials: dict[str, str] | None = None) -> Any:
        c = real_new_client(service, region=region, credentials=credentials)
        c.meta.events.register("before-call", lambda model, **_: calls.update([f"{service}:{model.name}"]))
        return c

    clients.new_client = counting_new_client  # the engine's one client seam
    try:
        with moto_server() as _url:
            sb = seed(runtime_document=json.dumps(doc), remediation_permissions=permissions)
            if own_trail:
                doc["trailguard_trail"] = {"arn": sb.trail_arn}
                client("ssm", region=sb.region).put_parameter(
                    Name=sb.config_parameter, Value=json.dumps(doc), Type="String", Overwrite=True
                )
            ct = client("cloudtrail", region=sb.region)
            env = {
                "TRAILGUARD_CONFIG_PARAMETER": sb.config_parameter,
                "TRAILGUARD_STATE_TABLE": sb.table_name,
                "TRAILGUARD_ALERT_TOPIC_ARN": sb.topic_arn,
                "TRAILGUARD_REMEDIATION_ROLE_NAME": "trailguard-remediation",
                "POWERTOOLS_SERVICE_NAME": "trailguard-engine",
                "POWERTOOLS_METRICS_NAMESPACE": "Trailguard",
                "TRAILGUARD_TRACING": "false",
                "AWS_LAMBDA_FUNCTION_NAME": "trailguard-engine",
            }
            ctx = LambdaContext(
                "trailguard-engine", f"arn:aws:lambda:{sb.region}:{sb.account}:function:trailguard-engine"
            )
            engine_times, bare_times, per_event_calls = [], [], []
            with scoped_env(dict(env)):
                handler_module.reset()
                # The engine stops remediating a resource reverted twice within the hour; lift that here too.
                handler_module.get_engine(ctx).reverts_before_stop = iterations + 2
                for i in range(iterations + 1):  # the first is a warm-up (cold clients, SSM read)
                    ct.stop_logging(Name=sb.trail_name)
                    record = cloudtrail_record(
                        service="cloudtrail",
                        event_name="StopLogging",
                        region=sb.region,
                        caller=sb.attacker,
                        request={"name": sb.trail_name},
                        response=None,
                    )
                    payload = {
                        "trailguard_rule": RULE,
                        "event": eventbridge_event(record, account=sb.account, region=sb.region),
                    }
                    calls.clear()
                    with contextlib.redirect_stdout(io.StringIO()):
                        t0 = time.perf_counter()
                        result = handler_module.handler(payload, ctx)
                        elapsed = time.perf_counter() - t0
                    if not ct.get_trail_status(Name=sb.trail_name)["IsLogging"]:
                        raise RuntimeError(f"the engine did not restart logging: {result}")
                    if i:
                        engine_times.append(elapsed)
                        per_event_calls.append(dict(calls))
                    ct.stop_logging(Name=sb.trail_name)
                    t0 = time.perf_counter()
                    ct.start_logging(Name=sb.trail_name)
                    if i:
                        bare_times.append(time.perf_counter() - t0)
    finally:
        clients.new_client = real_new_client
    engine_ms = statistics.median(engine_times) * 1000
    bare_ms = statistics.median(bare_times) * 1000
    api_calls = statistics.median(sum(c.values()) for c in per_event_calls)
    return {
        "engine_overhead": {
            "remediation": f"{RULE} -> start_logging",
            "trail": "trailguard's own trail" if own_trail else "a member's trail",
            "iterations": iterations,
            "engine_ms_median": engine_ms,
            "bare_boto3_ms_median": bare_ms,
            "ratio": engine_ms / bare_ms,
            "api_calls_per_remediation": api_calls,
            "api_calls_minimum": 1,
            "calls_breakdown": per_event_calls[-1],
        }
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    print(json.dumps({"member_trail": run(n), "own_trail": run(n, own_trail=True)}, indent=2))
