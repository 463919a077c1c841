"""Drill (issue 13): two API processes (real uvicorn, A and B) and two ``celery worker`` processes, all
on a real six-node Redis Cluster started here, with the session's MongoDB. The broker is a database of
the session's broker Redis reserved for this drill (never the cluster).

Followers (at least 20) are spread over reader buckets served by all three masters, and every master's
share is split between sockets on A and on B. The drill proves, counting every frame each socket gets:

- a check-in made through A reaches every follower, whichever process holds their socket (``feed.new``);
- an offer created through B reaches every nearby follower of the store (their ``location`` was sent
  over the socket), on A as on B (``offer``);
- presence spans processes: a user is online while connected to either; when A is SIGKILLed, B's
  heartbeat sweeps it and A's users leave the online sets; a check-in made in between (A dead, its
  users not yet swept) is recorded for them, and when they reconnect to B with ``last_event_id`` it is
  replayed: every follower's frames are exactly their event history, each event once, in order;
- a check-in after the resume reaches everyone live on B.

The API processes run with a short heartbeat (``SOLOMO_WS_HEARTBEAT_S``) and staleness
(``SOLOMO_WS_PROCESS_STALE_S``) so the sweep comes within seconds.

Two shorter tests share the cluster: a fresh process's first burst of rate-limited requests (the
limiter's own cluster client once failed them with a 500), and the hub subscribing again by itself
after the master of its channel's slot is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2
import pytest
from bson import ObjectId
from redis.asyncio import Redis

from solomo.core import ratelimit
from solomo.core.keys import EVENTS_CHANNEL, PROCS, bucket_of, event_history, online_key
from solomo.core.presence import is_online
from solomo.core.redistypes import RedisClient
from solomo.core.settings import load_settings
from solomo.embedded import EmbeddedRedisCluster, free_port
from solomo.realtime.hub import Hub
from solomo.services import open_services, redis_client
from tests.faults.drill import report
from tests.faults.fanout_drill import clear_broker, drill_broker
from tests.offers.helpers import create_offer, follow_store, merchant_with_store
from tests.realtime.wsclient import open_ws
from tests.support import Account, LiveServer, WorkerProcess, offset, register, wait_until

FOLLOWERS = 24
PER_MASTER_SIDE = 2  # each master's buckets: at least this many followers on A and on B
HEARTBEAT_S, STALE_S = 0.5, 5.0  # A's users are swept 5 to 6 s after the kill
BROKER_DB = 7  # of the session's broker Redis, this drill's own (the other drills use 2 to 4)
WAIT_S = 15.0


@pytest.fixture(scope="module")
def cluster(redis_cluster: EmbeddedRedisCluster) -> EmbeddedRedisCluster:
    """This module's own cluster (tests/faults/conftest.py)."""
    return redis_cluster


@pytest.fixture
async def data(cluster: EmbeddedRedisCluster) -> AsyncIterator[RedisClient]:
    client = redis_client(load_settings(redis_url=cluster.url, redis_cluster=True))
    try:
        yield client
    finally:
        await client.aclose()


class Socket:
    """One follower's sockets over time (A, then maybe B); every frame with an event id, in order."""

    def __init__(self, acct: Account, side: str) -> None:
        self.acct, self.side = acct, side
        self.events: list[dict[str, Any]] = []
        self.other: list[dict[str, Any]] = []
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None

    async def open(self, base_url: str, lat: float, lng: float, last_event_id: str | None = None) -> None:
        self.ws = await open_ws(base_url, self.acct.token, last_event_id)
        pong = asyncio.Event()
        self.reader = asyncio.create_task(self._read(self.ws, pong))  # replayed frames may come first
        await self.ws.send(json.dumps({"type": "location", "lat": lat, "lng": lng}))
        await self.ws.send(json.dumps({"type": "ping"}))
        async with asyncio.timeout(WAIT_S):
            await pong.wait()  # joined its process's hub, position stored

    async def _read(self, ws: Any, pong: asyncio.Event) -> None:
        with contextlib.suppress(Exception):  # the process was killed: the socket just ends
            async for raw in ws:
                msg = json.loads(raw)
                if "id" in msg:
                    self.events.append(msg)
                elif msg.get("type") == "pong":
                    pong.set()
                else:  # errors, say: the test asserts there are none
                    self.other.append(msg)

    def count(self, type: str, key: str, value: str) -> int:
        return sum(1 for e in self.events if e["type"] == type and e["data"].get(key) == value)

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)


def _kill(server: LiveServer) -> None:
    """SIGKILL the uvicorn process (it leads its own group): no shutdown, no presence.leave()."""
    assert server.process is not None
    os.killpg(server.process.pid, 9)
    server.process.wait(10)


async def _split(http: Any, cluster: EmbeddedRedisCluster) -> tuple[list[Account], list[Account]]:
    """Followers for A and for B; every master serves buckets of followers on both sides."""
    by_master: dict[int, list[Account]] = {port: [] for port in cluster.masters()}
    master_of: dict[int, int] = {}
    fresh = list(await asyncio.gather(*(register(http) for _ in range(FOLLOWERS))))
    for _ in range(3 * FOLLOWERS):
        for acct in fresh:
            bucket = bucket_of(acct.id)
            if bucket not in master_of:
                master_of[bucket] = cluster.master_port_for_key(online_key(bucket))
            by_master[master_of[bucket]].append(acct)
        if min(len(group) for group in by_master.values()) >= 2 * PER_MASTER_SIDE:
            break
        fresh = [await register(http)]  # rare: a master with too few; one more at a time
    else:
        raise AssertionError("could not spread followers over the masters")
    side_a = [a for group in by_master.values() for a in group[0::2]]
    side_b = [a for group in by_master.values() for a in group[1::2]]
    return side_a, side_b


async def _checkin(http: Any, author: Account, store: dict[str, Any]) -> str:
    resp = await http.post("/v1/checkins", json={"store_id": store["id"], "lat": store["lat"], "lng": store["lng"]},
                           headers=author.headers)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["post"]["id"])


async def _procs(data: RedisClient) -> list[str]:
    return [str(p) for p in await data.zrange(PROCS, 0, -1)]


async def test_first_burst_of_rate_limited_calls_on_a_cluster(cluster):
    """A fresh process's first requests arrive together: none may fail while its cluster client
    makes its first contact (redis-py recycled the connections they were opening, when the limiter
    had a client of its own), and each is counted once, in every window of its action."""
    settings = load_settings(redis_url=cluster.url, redis_cluster=True)
    for round in range(10):  # the race was lost in about half of the fresh starts
        client = redis_client(settings)  # a fresh process: a new client
        try:
            services = SimpleNamespace(settings=settings, extras={}, redis=client)
            results = await asyncio.gather(
                *(ratelimit.enforce(services, "register", f"10.0.{round}.{n % 3}") for n in range(48)),
                return_exceptions=True)
            assert [r for r in results if r is not None] == [], round
            for n in range(3):
                found = ratelimit.windows(services, "register", f"10.0.{round}.{n}")
                assert found and min(item.amount for item, _ in found) >= 16
                assert [await client.llen(key) for _, key in found] == [16] * len(found), (round, n)
                await client.delete(*(key for _, key in found))
        finally:
            await client.aclose()


@pytest.mark.slow
async def test_two_api_processes_and_two_workers_on_a_cluster(cluster, data, services, settings, tmp_path: Path):
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    broker = drill_broker(settings, BROKER_DB)
    await clear_broker(broker)
    env = {"SOLOMO_REDIS_URL": cluster.url, "SOLOMO_REDIS_CLUSTER": "true", "SOLOMO_BROKER_URL": broker,
           "SOLOMO_WS_HEARTBEAT_S": str(HEARTBEAT_S), "SOLOMO_WS_PROCESS_STALE_S": str(STALE_S)}
    api_a, api_b = LiveServer(free_port(), extra_env=env), LiveServer(free_port(), extra_env=env)
    workers = []
    for n in (1, 2):
        (tmp_path / f"w{n}").mkdir()
        # beat runs once, in the first (as in compose)
        workers.append(WorkerProcess({**os.environ, **env}, tmp_path / f"w{n}", f"worker{n}.log", beat=n == 1))
    sockets: list[Socket] = []
    try:
        # uvicorn's own bounded wait for /readyz; 60 s covers a start on a busy 2-core machine
        await asyncio.gather(asyncio.to_thread(api_a.start, 60), asyncio.to_thread(api_b.start, 60))
        timings["started"] = time.monotonic() - t0
        for worker in workers:  # they start while the accounts are made; tasks wait in the broker
            worker.start()
        # idle connections are dropped before uvicorn's 5 s keep-alive closes them under our feet
        limits = httpx2.Limits(keepalive_expiry=1.0)
        async with (httpx2.AsyncClient(base_url=api_a.base_url, timeout=15.0, limits=limits) as http_a,
                    httpx2.AsyncClient(base_url=api_b.base_url, timeout=15.0, limits=limits) as http_b):
            side_a, side_b = await _split(http_a, cluster)
            followers = side_a + side_b
            assert len({bucket_of(f.id) for f in followers}) >= 8
            authors = [await register(http_b) for _ in range(4)]
            merchant, store = await merchant_with_store(http_b)
            timings["accounts"] = time.monotonic() - t0
            lat, lng = store["lat"], store["lng"]

            async def follow_all(f: Account) -> None:
                for author in authors:
                    resp = await (http_a if f in side_a else http_b).post(f"/v1/users/{author.id}/follow",
                                                                          headers=f.headers)
                    assert resp.status_code == 204, resp.text
                await follow_store(http_b, f, store["id"])

            await asyncio.gather(*(follow_all(f) for f in followers))
            timings["follows"] = time.monotonic() - t0

            # presence across processes: one user online through A, then (A closed) through B
            probe = Socket(side_a[0], "A")
            await probe.open(api_a.base_url, lat, lng)
            await wait_until(lambda: _all(data, [probe.acct.id]), WAIT_S)
            await probe.close()
            await wait_until(lambda: _none(data, [probe.acct.id]), WAIT_S)
            await probe.open(api_b.base_url, lat, lng)
            await wait_until(lambda: _all(data, [probe.acct.id]), WAIT_S)
            await probe.close()
            await wait_until(lambda: _none(data, [probe.acct.id]), WAIT_S)

            timings["probe"] = time.monotonic() - t0
            sockets.extend(Socket(f, "A" if f in side_a else "B") for f in followers)
            await asyncio.gather(*(s.open(api_a.base_url if s.side == "A" else api_b.base_url,
                                          *offset(lat, lng, north_m=50 + 5 * n)) for n, s in enumerate(sockets)))
            on_a = [s for s in sockets if s.side == "A"]
            await wait_until(lambda: _all(data, [f.id for f in followers]), WAIT_S)
            assert len(await _procs(data)) == 2
            timings["ready"] = time.monotonic() - t0

            async def everyone(socks: list[Socket], type: str, key: str, value: str) -> None:
                await wait_until(lambda: _each(socks, type, key, value), WAIT_S)

            # (a) a check-in through A reaches followers on both processes
            mark = time.monotonic()
            post1 = await _checkin(http_a, authors[0], store)
            await everyone(sockets, "feed.new", "post_id", post1)
            timings["checkin via A → all"] = time.monotonic() - mark
            post2 = await _checkin(http_b, authors[1], store)
            await everyone(sockets, "feed.new", "post_id", post2)

            # (b) an offer created through B reaches the nearby followers on both processes
            mark = time.monotonic()
            offer = await create_offer(http_b, merchant, store["id"], radius_m=1000)
            await everyone(sockets, "offer", "id", offer["id"])
            timings["offer via B → all"] = time.monotonic() - mark

            # (c) A dies; a check-in before the sweep is recorded for A's users, who resume on B
            last = {s.acct.id: s.events[-1]["id"] for s in on_a}
            mark = time.monotonic()
            _kill(api_a)
            post3 = await _checkin(http_b, authors[2], store)
            await wait_until(lambda: _fanned_out(services, post3), WAIT_S)
            assert len(await _procs(data)) == 2, "A was swept before the fan-out: nothing to resume (raise STALE_S)"
            await everyone([s for s in sockets if s.side == "B"], "feed.new", "post_id", post3)
            await wait_until(lambda: _none(data, [s.acct.id for s in on_a]), STALE_S + WAIT_S)
            timings["kill A → its users offline"] = time.monotonic() - mark
            assert len(await _procs(data)) == 1
            assert all(await is_online(data, [s.acct.id for s in sockets if s.side == "B"]))
            for s in on_a:
                await s.close()
                s.side = "A→B"
                await s.open(api_b.base_url, lat, lng, last_event_id=last[s.acct.id])
            await everyone(on_a, "feed.new", "post_id", post3)  # replayed: recorded while A lay dead
            await wait_until(lambda: _all(data, [f.id for f in followers]), WAIT_S)

            post4 = await _checkin(http_b, authors[3], store)
            await everyone(sockets, "feed.new", "post_id", post4)

            # exactly once, nothing missed: each follower's frames are their history, in order
            for s in sockets:
                counts = Counter((e["type"], e["data"].get("post_id") or e["data"].get("id")) for e in s.events)
                expected = {("feed.new", p): 1 for p in (post1, post2, post3, post4)} | {("offer", offer["id"]): 1}
                assert counts == expected, (s.side, s.acct.id, counts)
                assert s.other == [], (s.side, s.acct.id, s.other)
                history = [str(eid) for eid, _ in await data.xrange(event_history(s.acct.id))]
                assert [e["id"] for e in s.events] == history, (s.side, s.acct.id)
            assert all(w.process is not None and w.process.poll() is None for w in workers)
    except BaseException:
        for name, log in (("A", api_a.log), ("B", api_b.log), *((w.log.name, w.log) for w in workers)):
            if log.exists():  # the session's data folder goes with the session: keep the clue here
                print(f"--- {name} {log}\n{log.read_text()[-4000:]}")
        raise
    finally:
        for sock in sockets:
            await sock.close()
        api_a.stop()
        api_b.stop()
        for worker in workers:
            worker.stop()
    timings["total"] = time.monotonic() - t0
    report(f"two API processes on the cluster: {len(sockets)} followers (A {len(on_a)}, B {len(sockets) - len(on_a)}), "
           "each event once, none missed; seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))


async def _all(data: RedisClient, uids: list[str]) -> bool:
    return all(await is_online(data, uids))


async def _none(data: RedisClient, uids: list[str]) -> bool:
    return not any(await is_online(data, uids))


async def _each(socks: list[Socket], type: str, key: str, value: str) -> bool:
    return all(s.count(type, key, value) >= 1 for s in socks)


async def _fanned_out(services: Any, post_id: str) -> bool:
    doc = await services.db.posts.find_one({"_id": ObjectId(post_id)}, {"fanout": 1})
    return bool(doc and doc.get("fanout") == "done")


class RecordingHub(Hub):
    """The real hub; it also keeps every ``rt:events`` payload it routes."""

    def __init__(self, services: Any) -> None:
        super().__init__(services)
        self.seen: list[str] = []

    def route(self, payload: str) -> int:
        self.seen.append(payload)
        return super().route(payload)


async def test_hub_resubscribes_after_the_master_of_its_channel_dies(cluster):
    """Last in the module (it kills a master; the node rejoins at the end). The hub's subscription
    lives on the master of the channel's slot; after that master is SIGKILLed the hub subscribes on
    the promoted replica by itself — no other command on its client (heartbeat every 60 s here) has
    to refresh the client's view of the cluster first."""
    own = load_settings(redis_url=cluster.url, redis_cluster=True, ws_heartbeat_s=60, ws_process_stale_s=180)
    services = await open_services(own, create_indexes=False)
    hub = RecordingHub(services)
    await hub.start()
    dead = cluster.master_port_for_key(EVENTS_CHANNEL)
    try:
        cluster.kill(dead)
        await asyncio.to_thread(cluster.wait_ok, 30)
        new = cluster.master_port_for_key(EVENTS_CHANNEL)
        assert new != dead

        async def subscribed() -> bool:
            async with Redis(port=new, decode_responses=True) as node:
                return dict(await node.pubsub_numsub(EVENTS_CHANNEL)).get(EVENTS_CHANNEL, 0) >= 1

        await wait_until(subscribed, 20)
        uid = str(ObjectId())

        async def delivered() -> bool:
            with contextlib.suppress(Exception):  # the publisher's client may still be catching up
                await services.events.publish([uid], "feed.new", {"post_id": "p"})
            return any(line.startswith(uid + " ") for p in hub.seen for line in p.split("\n"))

        await wait_until(delivered, 10, interval=0.5)
    finally:
        await hub.stop()
        await services.close()
        cluster.restart(dead)
        await asyncio.to_thread(cluster.wait_ok, 30)
