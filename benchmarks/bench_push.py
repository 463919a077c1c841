"""Push: offers to 1,000 and 10,000 connected followers near a store, until every socket has each.

Ours: the followers (bulk-inserted users, tokens, follows and live positions) hold real WebSocket
connections to the API process (uvicorn + Starlette). For each of ``ROUNDS`` offers the clock
starts when the offer's POST is sent. Targeting (GEOSEARCH, online and follower filters, one Lua
script per reader bucket recording the histories and publishing one message that carries the
offer once and each user's distance) runs in the request itself for a store of at most
``offers.targeting.INLINE_MAX_FOLLOWERS`` followers (the 1,000 row), in the Celery worker for a
bigger one (the 10,000 row); then Redis pub/sub, the API process's hub (which builds each held
user's frame) and each socket's queue. A delivery's latency is when its socket got the ``offer`` frame; p50/p99
are over every delivery of every round, deliveries per second = all deliveries / the rounds' time
(each round's time: until its last delivery).

The sockets are held by several client processes (:mod:`benchmarks.push_clients`; 2 for 1,000
sockets, 4 for 10,000), each process's CPU recorded, so a client-bound run shows. The row FAILS
(``Result.failures``, and ``python -m benchmarks`` exits 1) when any socket misses any offer.

Baseline, same run, same client processes holding the same number of sockets: a bare
``websockets`` server process on uvloop like the API (this module run with ``--baseline PORT
SIZE``) that ``broadcast()``s a message of the same size to every client when one of them sends
``go:<round>``, as many rounds.
Goal (issue 14): at least 0.70 of the bare server's deliveries per second at 1,000 sockets, 0.90 at
10,000 (and p99 under 1 s there).
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from benchmarks.common import ROOT, BenchEnv, Result, cpu_seconds, is_client_bound, percentile, profiled
from solomo.core.timeutil import ms_of
from solomo.embedded import _die_with_parent, free_port

SIZES = (1_000, 10_000)
GOALS = {1_000: 0.7, 10_000: 0.9}
"""The goal ratio per full-scale size (issue 14)."""
ROUNDS = 5
TIMEOUT_S = 60.0


def client_processes(n: int) -> int:
    """Socket-holding processes for n sockets: 2 up to a few thousand, then 4."""
    return 4 if n > 2000 else 2


# --- the client processes ----------------------------------------------------------------------


class ClientPool:
    """``count`` :mod:`benchmarks.push_clients` processes; commands go to all of them at once."""

    def __init__(self, procs: list[asyncio.subprocess.Process]) -> None:
        self.procs = procs

    @classmethod
    async def start(cls, env: BenchEnv, count: int) -> ClientPool:
        procs = []
        for i in range(count):
            log = open(env.tmp / f"push-clients-{i}.log", "ab")
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.push_clients", cwd=ROOT, env=env.environ,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log, limit=2**26,
                preexec_fn=_die_with_parent))
            log.close()
        return cls(procs)

    @property
    def pids(self) -> dict[str, int]:
        return {f"client{i + 1}": p.pid for i, p in enumerate(self.procs)}

    async def ask(self, proc: asyncio.subprocess.Process, cmd: dict[str, Any]) -> dict[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await proc.stdin.drain()
        line = await proc.stdout.readline()
        if not line:
            raise RuntimeError(f"push client {proc.pid} exited (see push-clients-*.log)")
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def all(self, cmd: dict[str, Any]) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self.ask(p, cmd) for p in self.procs)))

    async def open(self, urls: list[str]) -> None:
        shares = [urls[i::len(self.procs)] for i in range(len(self.procs))]
        replies = await asyncio.gather(*(self.ask(p, {"op": "open", "urls": share})
                                         for p, share in zip(self.procs, shares, strict=True)))
        opened = sum(r["opened"] for r in replies)
        if opened != len(urls):
            raise RuntimeError(f"opened {opened} of {len(urls)} sockets")

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@dataclass
class Rounds:
    """Deliveries of one side over its rounds: latency (s) per delivery, misses, CPU per process."""

    expected: int
    latencies: list[float] = field(default_factory=list)
    round_seconds: list[float] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    frame_bytes: int = 0

    def add(self, started: float, replies: list[dict[str, Any]], cpu: dict[str, float], wall: float) -> None:
        arrived = [t - started for r in replies for t in r["arrived"]]
        self.latencies += arrived
        self.round_seconds.append(max(arrived, default=0.0))
        self.missing.append(sum(r["missing"] for r in replies))
        self.frame_bytes = max([self.frame_bytes, *(r["frame_bytes"] for r in replies)])
        for name, value in cpu.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + value
        self.wall += wall

    @property
    def rate(self) -> float:
        total = sum(self.round_seconds)
        return len(self.latencies) / total if total else 0.0

    def cpu_percent(self) -> dict[str, float]:
        return {name: round(100 * s / self.wall, 1) for name, s in self.cpu.items()} if self.wall else {}

    def failures(self, side: str) -> list[str]:
        return [f"{side}: round {i + 1}: {m} of {self.expected:,} sockets missed the offer"
                for i, m in enumerate(self.missing) if m]

    def notes(self, prefix: str) -> dict[str, Any]:
        cpu = self.cpu_percent()
        clients = {k: v for k, v in cpu.items() if k.startswith("client")}
        busiest = max(clients.values(), default=0.0)
        out: dict[str, Any] = {f"{prefix}delivered": f"{len(self.latencies)}/{self.expected * len(self.missing)}",
                               f"{prefix}rounds": len(self.missing),
                               f"{prefix}round_ms": [round(s * 1000, 1) for s in self.round_seconds]}
        out.update({f"{prefix}cpu%_{k}": v for k, v in cpu.items()})
        out[f"{prefix}client_limit"] = (f"YES: a client process used {busiest:.0f}% of a core"
                                        if is_client_bound(busiest) else f"no (busiest client {busiest:.0f}%)")
        out.update(self.cpu_budget(prefix))
        return out

    def cpu_budget(self, prefix: str) -> dict[str, Any]:
        """Where the machine's CPU went, per delivery (µs): the serving side (ours: API, worker, Redis,
        mongod; bare: its server) and the client processes, and the cores busy on average. When both
        sides keep the cores busy, the ratio is about the bare side's CPU a delivery over ours: the
        figure that tells a goal out of reach of the cores from one a profile can still find."""
        deliveries = len(self.latencies)
        if not deliveries or not self.wall:
            return {}
        clients = sum(v for k, v in self.cpu.items() if k.startswith("client"))
        serving = sum(self.cpu.values()) - clients
        return {f"{prefix}cpu_us_a_delivery_serving": round(1e6 * serving / deliveries, 1),
                f"{prefix}cpu_us_a_delivery_clients": round(1e6 * clients / deliveries, 1),
                f"{prefix}cores_busy": round((serving + clients) / self.wall, 2)}


def _cpu(pids: Mapping[str, int | None]) -> dict[str, float]:
    return {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items() if pid}


async def measure_round(pool: ClientPool, match: str, trigger: Any, pids: Mapping[str, int | None],
                        side: Rounds) -> None:
    """Arms every socket for ``match``, fires ``trigger()``, collects the arrivals and the CPU."""
    await pool.all({"op": "arm", "match": match})
    before = _cpu(pids)
    started = time.perf_counter()
    await trigger()
    replies = await pool.all({"op": "collect", "timeout": TIMEOUT_S})
    wall = time.perf_counter() - started
    after = _cpu(pids)
    side.add(started, replies, {k: after[k] - before[k] for k in before if k in after}, wall)


def push_row(n: int, ours: Rounds, base: Rounds, processes: int) -> Result:
    """The row: ours beside the bare broadcast; failed when any socket missed any offer on either side."""
    return Result.compare(
        f"offer push to {n:,} sockets (vs bare websockets broadcast)", ours.rate, base.rate or None, "deliveries/s",
        latency=(percentile(ours.latencies, 50) * 1000, percentile(ours.latencies, 99) * 1000),
        baseline_latency=(percentile(base.latencies, 50) * 1000, percentile(base.latencies, 99) * 1000)
        if base.latencies else (None, None),
        failures=ours.failures("ours") + base.failures("bare broadcast"),
        generator=f"{processes} push_clients processes (websockets), {n:,} sockets, {len(ours.missing)} rounds",
        client_processes=processes, frame_bytes=ours.frame_bytes, **ours.notes(""), **base.notes("bare_"),
        goal=f"ratio >= {GOALS.get(n, 0.7)}" + (", p99 < 1000 ms" if n >= 10_000 else ""))


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


def post_offer(base_url: str, token: str, store_id: str, title: str) -> int:
    body = json.dumps({"title": title, "description": "Show this at the counter",
                       "radius_m": 1000, "stock": None,
                       "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}).encode()
    req = urllib.request.Request(base_url + f"/v1/stores/{store_id}/offers", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status


# --- ours and the baseline ---------------------------------------------------------------------


async def measure_ours(env: BenchEnv, pool: ClientPool, n: int, rounds: int) -> Rounds:
    from solomo.core.presence import is_online

    api = await env.api()
    worker = await env.worker()
    await env.drain_queues()
    services = await env.services()
    merchant_token, store_id, user_ids, tokens = await seed(env, n)
    ws_base = api.base_url.replace("http://", "ws://")
    await pool.open([f"{ws_base}/v1/ws?token={t}" for t in tokens])
    side = Rounds(n)
    try:
        deadline = time.monotonic() + 60
        while not all(await is_online(services.redis, user_ids)):
            if time.monotonic() > deadline:
                raise RuntimeError("clients did not all come online")
            await asyncio.sleep(0.1)
        pids = {"api": api.pid, "worker": worker.pid, "redis": env.redis_pid, "mongod": env.mongod_pid,
                **pool.pids}
        with profiled(f"push-{n}-api", api.pid), profiled(f"push-{n}-worker", worker.pid):
            for _ in range(rounds):
                title = f"Half-price tea, today only {secrets.token_hex(6)}"

                async def trigger(title: str = title) -> None:
                    status = await asyncio.to_thread(post_offer, api.base_url, merchant_token, store_id, title)
                    assert status == 201, status

                await measure_round(pool, title, trigger, pids, side)
    finally:
        await pool.all({"op": "close"})
    return side


async def measure_baseline(env: BenchEnv, pool: ClientPool, n: int, rounds: int, size: int) -> Rounds:
    port = free_port()
    server = env._spawn("push-baseline", [sys.executable, "-m", "benchmarks.bench_push", "--baseline", str(port),
                                          str(size)], port)
    side = Rounds(n)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if time.monotonic() > deadline or server.process.poll() is not None:
                    raise RuntimeError("baseline server did not start") from None
                await asyncio.sleep(0.1)
        await pool.open([f"ws://127.0.0.1:{port}/"] * n)
        try:
            await asyncio.sleep(0.5)
            pids = {"server": server.pid, **pool.pids}
            for r in range(rounds):
                proc = pool.procs[0]

                async def trigger(r: int = r, proc: Any = proc) -> None:
                    await pool.ask(proc, {"op": "send", "text": f"go:{r}"})

                await measure_round(pool, f'"round":{r},', trigger, pids, side)
        finally:
            await pool.all({"op": "close"})
    finally:
        server.stop()
        env.children.remove(server)
    return side


async def run(env: BenchEnv) -> list[Result]:
    results: list[Result] = []
    rounds = ROUNDS if env.scale >= 0.05 else 2
    for n in (env.size(size, 20) for size in SIZES):
        processes = client_processes(n)
        pool = await ClientPool.start(env, processes)
        try:
            ours = await measure_ours(env, pool, n, rounds)
            base = await measure_baseline(env, pool, n, rounds, ours.frame_bytes or 400)
        finally:
            await pool.stop()
        results.append(push_row(n, ours, base, processes))
    return results


# --- the bare websockets server (a child process) ----------------------------------------------


async def _serve_baseline(port: int, size: int) -> None:
    from websockets.asyncio.server import broadcast, serve

    clients: set[Any] = set()

    def message(round_: str) -> str:
        head = '{"id":"1-0","type":"offer","round":' + round_ + ',"data":{"pad":"'
        return head + "x" * max(0, size - len(head) - 3) + '"}}'

    async def handler(ws: Any) -> None:
        clients.add(ws)
        try:
            async for frame in ws:
                if isinstance(frame, str) and frame.startswith("go:"):
                    broadcast(clients, message(frame[3:]))
        finally:
            clients.discard(ws)

    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, backlog=4096):
        await asyncio.Future()


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--baseline":
    import uvloop  # the API's loop (solomo.core.serving.UVICORN_FLAGS): the same for the yardstick

    uvloop.run(_serve_baseline(int(sys.argv[2]), int(sys.argv[3])))
