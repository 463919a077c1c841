"""``/healthz`` through the whole stack, as ``make run`` serves it, beside the bare endpoint.

What one request costs in everything that is not the endpoint: the middleware (request id, the
latency histogram and status counter, the in-progress gauge), routing, the error handlers and
the JSON access log line. The API process runs as ``solomo dev`` (``make run``) runs it: log level
INFO and JSON lines written to a log file — not as the other rows' API, which runs with
``SOLOMO_LOG_LEVEL=WARNING`` and so logs no access line. The row proves the log was on: it
counts the access lines the process wrote.

The baseline is the harness's bare Starlette app (``GET /readyz``: the same ``{"status":"ok"}``
answer from a plain endpoint, no middleware, no logging) under the same uvicorn flags and the
same load generator.
"""

from __future__ import annotations

from benchmarks.common import BenchEnv, Child, HttpRequest, Result, compare_reads, thread_cpu_seconds

CONCURRENCY = 64
SECONDS = 8.0
AS_MAKE_RUN = {"SOLOMO_LOG_LEVEL": "INFO", "SOLOMO_LOG_FORMAT": "json"}
"""The settings ``solomo dev`` leaves at their defaults (see ``solomo/core/settings.py``)."""


def access_lines(child: Child) -> int:
    """JSON access lines (``solomo.access``) the process has written to its log so far."""
    with open(child.log, "rb") as fh:
        return sum(1 for line in fh if b'"logger":"solomo.access"' in line)


def cpu_split(result: Result, before: tuple[float, float] | None, after: tuple[float, float] | None
              ) -> dict[str, float]:
    """The API's CPU a request (µs) over the whole comparison (its warm-up included; it is idle
    while the bare side runs): its event loop's, and its other threads' (the log writer among them).
    What another thread does, it does at the loop's expense: they take turns at the interpreter lock."""
    served = result.extra.get("requests", 0) + result.extra.get("warmup_requests", 0)
    if not served or before is None or after is None:
        return {}
    return {"api_loop_cpu_us_a_request": round((after[0] - before[0]) / served * 1e6, 1),
            "api_other_threads_cpu_us_a_request": round((after[1] - before[1]) / served * 1e6, 1)}


async def run(env: BenchEnv) -> list[Result]:
    api = await env.uvicorn("solomo.asgi:app", "api-logging", environ=AS_MAKE_RUN)
    ours = [HttpRequest("GET", "/healthz")]
    base = [HttpRequest("GET", "/readyz")]
    before = thread_cpu_seconds(api.pid)
    result = await compare_reads(env, "/healthz, full stack + JSON access log", ours, base,
                                 concurrency=CONCURRENCY, seconds=env.seconds(SECONDS), api=api)
    after = thread_cpu_seconds(api.pid)
    result.extra.update(cpu_split(result, before, after))
    api.stop()  # a clean exit writes every queued line (the log writer batches them)
    logged = access_lines(api)
    result.extra["access_log_lines"] = logged
    if logged < result.extra.get("requests", 0):
        result.failures.append(f"{logged} access lines for {result.extra.get('requests')} requests: "
                               "the access log was not on")
    return [result]
