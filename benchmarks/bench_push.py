"""Push: one offer to 1,000 and 10,000 connected followers near a store, until every socket has it.

Ours: the followers (bulk-inserted users, tokens, follows and live positions) hold real WebSocket
connections to the API process (uvicorn + Starlette). The clock starts when the offer's POST is
sent; it goes through the Celery worker (targeting: GEOSEARCH, online and follower filters, one
Lua publish per 500 users), Redis pub/sub, the API process's hub and each socket's queue. Per
client the latency is when its ``offer`` frame arrived; deliveries per second = N / (last − start).

Baseline, same run, same client code: a bare ``websockets`` server process (this module run with
``--baseline PORT``) that ``broadcast()``s a message of the same size to the same number of
clients when one of them sends ``go``. Goal: p99 under 1 s at 10,000 and at least half the bare
server's deliveries per second.

The client is one asyncio process holding all sockets (``websockets`` client, no compression);
on a 2-core machine it competes with the servers for CPU, for ours and the baseline alike.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import secrets
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from benchmarks.common import BenchEnv, Result, free_port, percentile
from solomo.core.timeutil import ms_of

SIZES = (1_000, 10_000)
CONNECT_PARALLEL = 200
TIMEOUT_S = 60.0


async def open_clients(url_for: Any, n: int) -> list[Any]:
    from websockets.asyncio.client import connect

    sem = asyncio.Semaphore(CONNECT_PARALLEL)

    async def one(i: int) -> Any:
        async with sem:
            return await connect(url_for(i), proxy=None, compression=None, open_timeout=60, ping_interval=None,
                                 max_queue=64)

    return await asyncio.gather(*(one(i) for i in range(n)))


async def close_clients(clients: list[Any]) -> None:
    for ws in clients:
        ws.transport.abort()
    await asyncio.sleep(0.2)


async def wait_first(clients: list[Any], accept: Any, started: float) -> tuple[list[float], int]:
    """Per client, seconds from ``started`` until its first frame that ``accept`` takes; and the frame size."""
    arrived: list[float] = []
    size = 0

    async def one(ws: Any) -> None:
        nonlocal size
        while True:
            frame = await ws.recv()
            if accept(frame):
                arrived.append(time.perf_counter() - started)
                size = len(frame)
                return

    tasks = [asyncio.create_task(one(ws)) for ws in clients]
    _, pending = await asyncio.wait(tasks, timeout=TIMEOUT_S)
    for task in pending:
        task.cancel()
    return arrived, size


# --- set-up ------------------------------------------------------------------------------------


async def seed(env: BenchEnv, n: int) -> tuple[str, str, list[str], list[str]]:
    """A merchant, a store, n followers with tokens and fresh positions within 400 m; returns
    (merchant token, store id, user ids, tokens)."""
    from checkins.stores import create_store
    from solomo.core.keys import POSITIONS, POSITIONS_SEEN

    services = await env.services()
    now = datetime.now(UTC)
    lat, lng = random.uniform(-60, 60), random.uniform(-170, 170)
    merchant = await services.accounts.create_user(f"m_{secrets.token_hex(6)}", "password123", "merchant")
    merchant_token = await services.accounts.issue_token(merchant["_id"])
    store = await create_store(services, merchant["_id"], name="Bench Tea", lat=lat, lng=lng)
    ids = [ObjectId() for _ in range(n)]
    tokens = [secrets.token_urlsafe(24) for _ in range(n)]
    tag = secrets.token_hex(4)
    await services.db.users.insert_many([
        {"_id": oid, "username": f"b{tag}_{i}", "username_lower": f"b{tag}_{i}", "display_name": f"b{i}",
         "role": "user", "password_hash": "x", "status": "active", "followers_count": 0, "following_count": 1,
         "created_at": now} for i, oid in enumerate(ids)], ordered=False)
    await services.db.tokens.insert_many([
        {"_id": hashlib.sha256(t.encode()).hexdigest(), "user_id": oid, "created_at": now,
         "expires_at": now + timedelta(days=1)} for oid, t in zip(ids, tokens, strict=True)], ordered=False)
    await services.db.follows.insert_many([
        {"_id": ObjectId(), "follower_id": oid, "target_type": "store", "target_id": store["_id"], "created_at": now,
         "created_ms": ms_of(now)} for oid in ids], ordered=False)
    await services.db.stores.update_one({"_id": store["_id"]}, {"$inc": {"followers_count": n}})
    async with services.redis.pipeline(transaction=False) as pipe:
        for i, oid in enumerate(ids):
            north, east = (i % 40) * 10 - 200, (i // 40 % 40) * 10 - 200
            plat = lat + north / 111_320.0
            plng = lng + east / (111_320.0 * math.cos(math.radians(lat)))
            pipe.geoadd(POSITIONS, (plng, plat, str(oid)))
            pipe.zadd(POSITIONS_SEEN, {str(oid): time.time()})
        await pipe.execute()
    return merchant_token, str(store["_id"]), [str(o) for o in ids], tokens


def post_offer(base_url: str, token: str, store_id: str) -> int:
    body = json.dumps({"title": "Half-price tea, today only", "description": "Show this at the counter",
                       "radius_m": 1000, "stock": None,
                       "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}).encode()
    req = urllib.request.Request(base_url + f"/v1/stores/{store_id}/offers", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status


# --- ours and the baseline ---------------------------------------------------------------------


async def measure_ours(env: BenchEnv, n: int) -> tuple[list[float], int]:
    from solomo.core.keys import ONLINE

    api = await env.api()
    await env.worker()
    await env.drain_queues()
    services = await env.services()
    merchant_token, store_id, user_ids, tokens = await seed(env, n)
    ws_base = api.base_url.replace("http://", "ws://")
    clients = await open_clients(lambda i: f"{ws_base}/v1/ws?token={tokens[i]}", n)
    try:
        deadline = time.monotonic() + 60
        while not all(await services.redis.smismember(ONLINE, user_ids)):
            if time.monotonic() > deadline:
                raise RuntimeError("clients did not all come online")
            await asyncio.sleep(0.1)
        started = time.perf_counter()
        waiter = asyncio.create_task(wait_first(clients, lambda f: '"type":"offer"' in f, started))
        status = await asyncio.to_thread(post_offer, api.base_url, merchant_token, store_id)
        assert status == 201, status
        arrived, size = await waiter
    finally:
        await close_clients(clients)
    return arrived, size


async def measure_baseline(env: BenchEnv, n: int, size: int) -> list[float]:
    port = free_port()
    child = env._spawn("push-baseline", [sys.executable, "-m", "benchmarks.bench_push", "--baseline", str(port),
                                         str(size)], port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if time.monotonic() > deadline or child.process.poll() is not None:
                    raise RuntimeError("baseline server did not start") from None
                await asyncio.sleep(0.1)
        clients = await open_clients(lambda i: f"ws://127.0.0.1:{port}/", n)
        try:
            await asyncio.sleep(0.5)
            started = time.perf_counter()
            waiter = asyncio.create_task(wait_first(clients, lambda f: f.startswith('{"id"'), started))
            await clients[0].send("go")
            arrived, _ = await waiter
        finally:
            await close_clients(clients)
    finally:
        child.stop()
    return arrived


async def run(env: BenchEnv) -> list[Result]:
    results: list[Result] = []
    for n in (env.size(size, 20) for size in SIZES):
        ours, size = await measure_ours(env, n)
        base = await measure_baseline(env, n, size or 400)
        ours_rate = len(ours) / max(ours) if ours else 0.0
        base_rate = len(base) / max(base) if base else 0.0
        results.append(Result.compare(
            f"offer push to {n:,} sockets (vs bare websockets broadcast)", ours_rate, base_rate or None,
            "deliveries/s", latency=(percentile(ours, 50) * 1000, percentile(ours, 99) * 1000),
            baseline_latency=(percentile(base, 50) * 1000, percentile(base, 99) * 1000) if base else (None, None),
            delivered=f"{len(ours)}/{n}", bare_delivered=f"{len(base)}/{n}",
            max_ms=round(max(ours, default=0) * 1000, 1),
            bare_max_ms=round(max(base, default=0) * 1000, 1), frame_bytes=size,
            goal="ratio >= 0.5, p99 < 1000 ms"))
    return results


# --- the bare websockets server (a child process) ----------------------------------------------


async def _serve_baseline(port: int, size: int) -> None:
    from websockets.asyncio.server import broadcast, serve

    clients: set[Any] = set()
    message = '{"id":"1-0","type":"offer","data":{"pad":"' + "x" * max(0, size - 45) + '"}}'

    async def handler(ws: Any) -> None:
        clients.add(ws)
        try:
            async for frame in ws:
                if frame == "go":
                    broadcast(clients, message)
        finally:
            clients.discard(ws)

    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, backlog=4096):
        await asyncio.Future()


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--baseline":
    asyncio.run(_serve_baseline(int(sys.argv[2]), int(sys.argv[3])))
