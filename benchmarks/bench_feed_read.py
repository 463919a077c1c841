"""Home-feed reads: a 20-item page at 64 concurrent clients, beside the bare endpoint.

Set-up (not timed): 40 authors with 50 posts each (2,000 posts, some with topics, mentions and
locations), 256 readers following 10 authors each, every reader's feed built (READY), some likes
so ``liked_by_me`` has work to do. Each request is ``GET /v1/feed/home?limit=20`` with a reader's
token (round robin): token check, the Redis page, one posts query, one batched hydration (authors,
stores, the reader's likes), JSON out.

The baseline is the harness's bare Starlette endpoint (``POST /echo``, a small JSON body parsed
and answered) under the same uvicorn flags and the same load generator: the ceiling a request
costs in framework, HTTP and JSON alone.
"""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

from bson import ObjectId

from benchmarks.common import BenchEnv, HttpRequest, LoadStats, Result, json_request, run_load

AUTHORS = 40
POSTS_EACH = 50
READERS = 256
FOLLOWS_EACH = 10
CONCURRENCY = 64
N = 4000
WARMUP = 400


async def _seed(services: Any) -> list[str]:
    from feed.home import rebuild_home
    from feed.posts import build_post
    from solomo.accounts import Principal

    rng = random.Random(7)
    authors = [await services.accounts.create_user(f"fa_{uuid.uuid4().hex[:12]}", "password123")
               for _ in range(AUTHORS)]
    docs = []
    for a in authors:
        who = Principal(a["_id"], a["username"], a["username"], "user")
        for i in range(POSTS_EACH):
            lat, lng = (rng.uniform(-60, 60), rng.uniform(-170, 170)) if i % 3 == 0 else (None, None)
            text = f"post {i} by {a['username']} #bench{i % 7} #话题{i % 5}#"
            doc = await build_post(services, who, text, lat=lat, lng=lng)
            doc["fanout"] = "done"
            docs.append(doc)
    await services.db.posts.insert_many(docs)
    tokens = []
    follows = []
    likes = []
    readers = []
    for _ in range(READERS):
        r = await services.accounts.create_user(f"fr_{uuid.uuid4().hex[:12]}", "password123")
        readers.append(r["_id"])
        tokens.append(await services.accounts.issue_token(r["_id"]))
        for a in rng.sample(authors, FOLLOWS_EACH):
            follows.append({"_id": ObjectId(), "follower_id": r["_id"], "target_type": "user", "target_id": a["_id"],
                            "created_at": None, "created_ms": 0})
        for d in rng.sample(docs, 20):
            likes.append({"_id": ObjectId(), "post_id": d["_id"], "user_id": r["_id"], "created_at": None})
    await services.db.follows.insert_many(follows)
    await services.db.likes.insert_many(likes)
    for r in readers:
        await rebuild_home(services, r)
    return tokens


def _extra(stats: LoadStats, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {f"{prefix}requests": stats.requests, f"{prefix}seconds": round(stats.seconds, 2),
                           f"{prefix}p50_ms": round(stats.percentile(50), 1)}
    out.update({f"{prefix}cpu%_{k}": v for k, v in stats.cpu_percent().items()})
    bad = {code: n for code, n in stats.statuses.items() if code not in (200, 201)}
    if bad:
        out[f"{prefix}errors"] = bad
    return out


async def run(env: BenchEnv) -> list[Result]:
    api = await env.api()
    services = await env.services()
    tokens = await _seed(services)
    reqs = [HttpRequest("GET", "/v1/feed/home?limit=20", headers=(("Authorization", f"Bearer {tokens[i % READERS]}"),))
            for i in range(N + WARMUP)]
    bodies: list[tuple[int, bytes]] = []
    await run_load(api.port, reqs[:WARMUP], concurrency=CONCURRENCY, bodies=bodies)
    full_pages = sum(1 for status, body in bodies if status == 200 and body.count(b'"author"') == 20)
    ours = await run_load(api.port, reqs[WARMUP:], concurrency=CONCURRENCY,
                          pids={"api": api.pid, "mongod": env.mongod_pid, "redis": env.redis_pid})

    baseline_app = await env.uvicorn("benchmarks.baseline_app:app", "baseline")
    echo = [json_request("POST", "/echo", {"limit": 20, "cursor": None}, tokens[i % READERS])
            for i in range(N + WARMUP)]
    await run_load(baseline_app.port, echo[:WARMUP], concurrency=CONCURRENCY)
    base = await run_load(baseline_app.port, echo[WARMUP:], concurrency=CONCURRENCY,
                          pids={"baseline": baseline_app.pid})
    extra = {"concurrency": CONCURRENCY, "page": 20, "warmup_full_pages": f"{full_pages}/{WARMUP}",
             "loadavg_1m_at_end": round(os.getloadavg()[0], 2), "client_bound": ours.client_bound,
             **_extra(ours, ""), **_extra(base, "baseline_")}
    return [
        Result.compare("feed.home_read_throughput", ours.rate, base.rate, "req/s", **extra),
        Result.compare("feed.home_read_latency_p99", ours.percentile(99), base.percentile(99), "ms"),
    ]
