"""Fan-out: one post by an author with 10,000 and 100,000 followers, from the 201 until every
follower's home feed holds it, in follower-feed inserts per second.

Beside it, measured in the same run against the same Redis: a raw redis-py pipelined ``ZADD`` of
the same number of entries to the same number of (fresh) keys, 1,000 commands per round trip —
the ceiling of "just write them". The ratio ours / raw is the figure (goal ≥ 1.0; one round trip
per follower reaches about 0.07).

Set-up (not timed): the followers are inserted in bulk into ``follows`` and each gets an existing
(active) home feed. The API and the Celery worker are processes of their own with the hybrid
threshold lifted (else a 100,000-follower author would be merged at read time, not fanned out) and
their own broker database, so no other benchmark's worker takes the task. The clock starts when
the 201 arrives; the post is done when the last follower in fan-out order holds it (polled every
millisecond in Redis), and every follower's feed is then checked.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.request
import uuid
from typing import Any

import redis as sync_redis
from bson import ObjectId

from benchmarks.common import BenchEnv, Child, Result, _wait_http, free_port
from solomo.core import tasknames
from solomo.embedded import _die_with_parent

SIZES = (10_000, 100_000)
RAW_BATCH = 1000
OVERRIDES = {"SOLOMO_FANOUT_MAX_FOLLOWERS": str(10**9), "SOLOMO_LOG_LEVEL": "WARNING"}


def _db_url(redis_url: str, db: int) -> str:
    head, _, _ = redis_url.rpartition("/")
    return f"{head}/{db}"


def _spawn(env: BenchEnv, name: str, args: list[str], environ: dict[str, str], port: int | None = None) -> Child:
    import subprocess

    from benchmarks.common import ROOT

    log = env.tmp / f"{name}.log"
    with open(log, "ab") as fh:
        process = subprocess.Popen(args, cwd=ROOT, env=environ, stdout=fh, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    child = Child(name, process, log, port)
    env.children.append(child)  # stopped with the harness's other processes
    return child


async def _processes(env: BenchEnv) -> tuple[Child, Any]:
    """Our own API and worker on broker db 3; returns (api, a TaskQueue on that broker)."""
    from solomo.core.queue import TaskQueue
    from workers.app import make_celery

    settings = env.settings()
    broker = _db_url(settings.effective_redis_url, 3)
    environ = {**env.environ, **OVERRIDES, "SOLOMO_BROKER_URL": broker}
    port = free_port()
    api = _spawn(env, "fanout-api", [sys.executable, "-m", "uvicorn", "solomo.asgi:app", "--host", "127.0.0.1",
                                     "--port", str(port), "--no-access-log", "--log-level", "warning"], environ, port)
    worker = _spawn(env, "fanout-worker", [sys.executable, "-m", "celery", "-A", "workers.app", "worker",
                                           "-Q", "fanout,maintenance", "--concurrency", "1", "--loglevel", "WARNING",
                                           "--without-gossip", "--without-mingle"], environ)
    await asyncio.to_thread(_wait_http, api, "/readyz", 60.0)
    queue = TaskQueue(make_celery(settings.model_copy(update={"broker_url": broker})))
    services = await env.services()
    key = f"bench:fanout:ping:{uuid.uuid4().hex}"
    await queue.send(tasknames.PING, key)
    for _ in range(600):
        if await services.redis.get(key) == "pong":
            return api, queue
        if worker.process.poll() is not None:
            break
        await asyncio.sleep(0.1)
    raise RuntimeError(f"fan-out worker did not start: {worker.log.read_text()[-2000:]}")


async def _seed(services: Any, n: int) -> tuple[str, list[ObjectId]]:
    from feed.timeline import MARKER, READY
    from solomo.core.keys import home_key

    author = await services.accounts.create_user(f"fo_{uuid.uuid4().hex[:12]}", "password123")
    token = await services.accounts.issue_token(author["_id"])
    followers = [ObjectId() for _ in range(n)]
    for start in range(0, n, 10_000):
        await services.db.follows.insert_many(
            [{"follower_id": f, "target_type": "user", "target_id": author["_id"], "created_ms": 0}
             for f in followers[start:start + 10_000]], ordered=False)
    await services.db.users.update_one({"_id": author["_id"]}, {"$set": {"followers_count": n}})
    for start in range(0, n, 5000):
        async with services.redis.pipeline(transaction=False) as pipe:
            for f in followers[start:start + 5000]:
                pipe.zadd(home_key(f), {MARKER: READY})
            await pipe.execute()
    return token, followers


def _post(port: int, token: str, text: str) -> tuple[float, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/posts", data=json.dumps({"text": text}).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = json.loads(resp.read())
        assert resp.status == 201
        return time.perf_counter(), body["id"]


def _raw_zadd(url: str, n: int) -> float:
    """Seconds for a pipelined ZADD of n entries into n fresh keys (1,000 per round trip)."""
    client = sync_redis.Redis.from_url(url)
    keys = [f"bench:raw:{uuid.uuid4().hex[:8]}:{i}" for i in range(n)]
    member, score = ObjectId().__str__(), time.time() * 1000
    t0 = time.perf_counter()
    for start in range(0, n, RAW_BATCH):
        pipe = client.pipeline(transaction=False)
        for key in keys[start:start + RAW_BATCH]:
            pipe.zadd(key, {member: score})
        pipe.execute()
    seconds = time.perf_counter() - t0
    for start in range(0, n, 10_000):
        client.unlink(*keys[start:start + 10_000])
    client.close()
    return seconds


async def _measure(env: BenchEnv, api: Child, n: int) -> Result:
    from solomo.core.keys import home_key

    services = await env.services()
    token, followers = await _seed(services, n)
    last_key = home_key(followers[-1])
    assert api.port is not None
    t_201, post_id = await asyncio.to_thread(_post, api.port, token, f"hello {n} followers #bench")
    for _ in range(60_000):  # polled every 2 ms, at most two minutes
        if await services.redis.zscore(last_key, post_id) is not None:
            break
        await asyncio.sleep(0.002)
    seconds = time.perf_counter() - t_201
    for _ in range(5000):
        doc = await services.db.posts.find_one({"_id": ObjectId(post_id)}, {"fanout": 1})
        if doc["fanout"] == "done":
            break
        await asyncio.sleep(0.01)
    async with services.redis.pipeline(transaction=False) as pipe:
        for f in followers:
            pipe.zscore(home_key(f), post_id)
        holding = sum(s is not None for s in await pipe.execute())
    raw_seconds = await asyncio.to_thread(_raw_zadd, env.settings().effective_redis_url, n)
    for start in range(0, n, 10_000):
        await services.redis.unlink(*[home_key(f) for f in followers[start:start + 10_000]])
    return Result.compare(f"fan-out to {n:,} followers (vs raw pipelined ZADD)", n / seconds, n / raw_seconds,
                          "inserts/s",
                          seconds=round(seconds, 3), raw_seconds=round(raw_seconds, 3), feeds_holding=holding,
                          followers=n, fanout_done=doc["fanout"] == "done")


async def run(env: BenchEnv) -> list[Result]:
    api, _queue = await _processes(env)
    return [await _measure(env, api, env.size(n, 100)) for n in SIZES]
