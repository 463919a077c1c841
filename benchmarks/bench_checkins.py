"""Check-ins per second over HTTP on loopback, beside a bare Starlette JSON endpoint.

Set-up (not timed): one merchant, ``N + WARMUP`` stores at random spots on the globe and as many
users, each standing ~11 m from their own store — so every check-in passes all three rules and
does the full work: auth, store lookup, geodesic range check, the transaction (guard, history
reads, check-in + post inserts, visitor and counter updates, mayor recount), the fan-out enqueue
(to the Redis broker; no worker consumes during the run) and the hydrated 201 answer.

Both servers run as one uvicorn process each with the same flags; the same load generator sends
the same number of concurrent keep-alive connections to each. The ratio ours / baseline is the
figure: the share of the bare framework's throughput a real check-in keeps.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from typing import Any

from benchmarks.common import BenchEnv, LoadStats, Result, json_request, run_load

N = 1500
WARMUP = 64
CONCURRENCY = 32
BASELINE_N = 6000
SEED_BATCH = 100


async def _seed(services: Any, count: int) -> list[tuple[str, dict[str, Any]]]:
    """(token, store) pairs: a fresh user next to their own fresh store."""
    from checkins.stores import create_store

    merchant = await services.accounts.create_user(f"bm_{uuid.uuid4().hex[:12]}", "password123", "merchant")
    rng = random.Random(1)

    async def one(i: int) -> tuple[str, dict[str, Any]]:
        store = await create_store(services, merchant["_id"], name=f"Bench store {i}", lat=rng.uniform(-60, 60),
                                   lng=rng.uniform(-170, 170), category="food")
        user = await services.accounts.create_user(f"bu_{uuid.uuid4().hex[:12]}", "password123")
        return await services.accounts.issue_token(user["_id"]), store

    pairs: list[tuple[str, dict[str, Any]]] = []
    for start in range(0, count, SEED_BATCH):
        pairs += await asyncio.gather(*(one(i) for i in range(start, min(count, start + SEED_BATCH))))
    return pairs


def _checkin_body(store: dict[str, Any]) -> dict[str, Any]:
    lng, lat = store["location"]["coordinates"]
    return {"store_id": str(store["_id"]), "lat": lat + 0.0001, "lng": lng, "accuracy_m": 15}


def _summary(stats: LoadStats, prefix: str) -> dict[str, Any]:
    cpu = stats.cpu_percent()
    out: dict[str, Any] = {f"{prefix}requests": stats.requests, f"{prefix}seconds": round(stats.seconds, 2)}
    out.update({f"{prefix}cpu%_{k}": v for k, v in cpu.items()})
    bad = {code: n for code, n in stats.statuses.items() if code != 201}
    if bad:
        out[f"{prefix}non_201"] = bad
    return out


async def run(env: BenchEnv) -> list[Result]:
    api = await env.api()
    services = await env.services()
    pairs = await _seed(services, N + WARMUP)
    requests = [json_request("POST", "/v1/checkins", _checkin_body(store), token) for token, store in pairs]
    before = await services.db.checkins.count_documents({})
    pids = {"api": api.pid, "mongod": env.mongod_pid, "redis": env.redis_pid}
    await run_load(api.port, requests[:WARMUP], concurrency=CONCURRENCY)
    ours = await run_load(api.port, requests[WARMUP:], concurrency=CONCURRENCY, pids=pids)
    written = await services.db.checkins.count_documents({}) - before

    baseline_app = await env.uvicorn("benchmarks.baseline_app:app", "baseline")
    echo = [json_request("POST", "/echo", _checkin_body(store), token) for token, store in pairs[:64]]
    baseline_requests = [echo[i % len(echo)] for i in range(BASELINE_N + 500)]
    await run_load(baseline_app.port, baseline_requests[:500], concurrency=CONCURRENCY)
    base = await run_load(baseline_app.port, baseline_requests[500:], concurrency=CONCURRENCY,
                          pids={"baseline": baseline_app.pid})

    extra = {
        "concurrency": CONCURRENCY,
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        "checkins_written": written,
        **_summary(ours, ""),
        **_summary(base, "baseline_"),
        "client_bound": ours.client_bound,
        "baseline_client_bound": base.client_bound,
        "fanout_worker": "none (tasks queued only)",
    }
    return [
        Result.compare("checkins.throughput", ours.rate, base.rate, "req/s", **extra),
        Result.compare("checkins.latency_p50", ours.percentile(50), base.percentile(50), "ms"),
        Result.compare("checkins.latency_p99", ours.percentile(99), base.percentile(99), "ms"),
    ]
