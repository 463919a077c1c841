"""Drill: the redis-server is SIGKILLed while clients keep posting, liking, checking in and claiming
vouchers, stays down a few seconds, and is started again on the same port *empty* (no persistence:
feeds, rate limits, event history all gone, as after a crash of a cache-only Redis). The Celery broker
is a Redis of its own, as deployed, and stays up.

A separate mongod, data redis-server and broker redis-server (not the session's: other tests are unaffected), a separate
uvicorn process and a ``celery worker -B`` subprocess (with beat, whose sweeper is the fan-out
outbox) serve this drill. Before the outage a small social graph (everyone follows everyone), a
merchant's stores and limited offers, posts and check-ins are made. Every client loops over: read
the home feed, post, like, check in at its next store, claim the next offer, read ``/v1/me``. The
drill asserts:

- during the outage every error answer is 503 ``unavailable`` (never a 500, never a hang) except the
  business refusal a claim may get anyway (409 ``sold_out``); ``/readyz`` says 503;
- after Redis is back the same API process and worker recover by themselves;
- every acknowledged write (2xx) is in MongoDB: posts, likes, check-ins, vouchers;
- feeds regenerate: every acknowledged post is in each reader's home feed exactly once — through the
  API and in the Redis feed rebuilt from MongoDB — and every post reaches "fan-out done";
- counters are exact: each post's ``like_count`` = its like documents, each store's
  ``checkins_count`` = its check-ins, each offer's ``claimed`` = its vouchers ≤ its stock.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from feed.timeline import MARKER, READY
from solomo.core.keys import home_key
from solomo.core.ratelimit import default_specs
from solomo.embedded import EmbeddedServers, free_port
from tests.faults.drill import Outcome, call
from tests.offers.helpers import in_minutes
from tests.support import LiveServer, WorkerProcess, random_point, seconds_until

OUTAGE_S = float(os.environ.get("SOLOMO_DRILL_REDIS_OUTAGE_S", "5"))
USERS = 5
STORES = 80  # a check-in each at a new store (the same store again would meet the one-hour cooldown)
OFFERS = 80
STOCK = 3  # fewer than USERS: claims race for the last vouchers, and sold_out answers come too
MAX_ANSWER_S = 6.0
RECOVERY_S = 20.0
CONVERGE_S = 60.0  # beat's sweeper runs every 15 s; a lost fan-out is re-sent on its next run
DB = "solomo_redis_drill"
pytestmark = pytest.mark.slow


@dataclass
class User:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Drill:
    phase: str = "before"
    outcomes: list[Outcome] = field(default_factory=list)
    posts: dict[str, str] = field(default_factory=dict)  # acknowledged post id → author id
    posts_after_restart: set[str] = field(default_factory=set)
    likes: set[tuple[str, str]] = field(default_factory=set)  # acknowledged (post id, user id)
    checkins: dict[str, tuple[str, str]] = field(default_factory=dict)  # acknowledged id → (store, user)
    vouchers: dict[str, tuple[str, str]] = field(default_factory=dict)  # acknowledged id → (offer, user)
    stores: list[dict] = field(default_factory=list)
    offers: list[dict] = field(default_factory=list)
    stop: bool = False


@dataclass
class Stack:
    servers: EmbeddedServers
    api: LiveServer
    worker: WorkerProcess
    tmp: Path


@pytest.fixture
def stack() -> Iterator[Stack]:
    tmp = Path(tempfile.mkdtemp(prefix="solomo-rdrill-"))
    servers = EmbeddedServers(tmp, free_port(), free_port(), free_port(), persistent=False)  # Redis restarts empty
    api: LiveServer | None = None
    worker: WorkerProcess | None = None
    try:
        servers.start()
        assert servers.mongo and servers.redis and servers.broker
        unlimited = {action: "" for action in default_specs()}  # the drill is not about limits
        env = {
            "SOLOMO_MONGO_URL": servers.mongo.url, "SOLOMO_REDIS_URL": servers.redis.url,
            "SOLOMO_BROKER_URL": servers.broker.url,
            "SOLOMO_MONGO_DB": DB, "SOLOMO_DATA_DIR": str(tmp), "SOLOMO_LOG_LEVEL": "WARNING",
            "SOLOMO_FANOUT_SWEEP_AFTER_S": "2", "SOLOMO_RATE_LIMITS": json.dumps(unlimited),
            # nor about the abuse caps: one merchant opens a store per check-in and many offers
            "SOLOMO_MAX_STORES_PER_MERCHANT": "1000", "SOLOMO_MAX_LIVE_OFFERS_PER_STORE": "1000",
            "SOLOMO_MAX_OFFERS_PER_STORE_PER_DAY": "1000",
        }
        api = LiveServer(free_port(), extra_env=env)
        api.start()
        worker = WorkerProcess({**os.environ, **env}, tmp)
        worker.start()
        yield Stack(servers, api, worker, tmp)
    finally:
        if worker is not None:
            worker.stop()
        if api is not None:
            api.stop()
        servers.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def _call(drill: Drill, http: httpx2.AsyncClient, op: str, method: str, url: str, **kw) -> httpx2.Response | None:
    return await call(drill.outcomes, drill.phase, http, op, method, url, **kw)


def _sold_out(o: Outcome) -> bool:
    """The one refusal a claim may meet whatever Redis does: the offer's stock is gone."""
    return (o.op, o.status, o.code) == ("claim", 409, "sold_out")


async def _client(drill: Drill, http: httpx2.AsyncClient, me: User) -> None:
    n = 0
    stores, offers = iter(drill.stores), iter(drill.offers)
    while not drill.stop:
        n += 1
        seen = len(drill.outcomes)
        await _call(drill, http, "home", "GET", "/v1/feed/home?limit=50", headers=me.headers)
        if n % 3 == 0:
            phase = drill.phase
            resp = await _call(drill, http, "post", "POST", "/v1/posts", headers=me.headers,
                               json={"text": f"drill post {n} by {me.id[-6:]}"})
            if resp is not None and resp.status_code == 201:
                pid = resp.json()["id"]
                drill.posts[pid] = me.id
                if phase == "after":
                    drill.posts_after_restart.add(pid)
        others = [p for p, a in drill.posts.items() if a != me.id]
        if others:
            pid = random.choice(others)
            resp = await _call(drill, http, "like", "POST", f"/v1/posts/{pid}/like", headers=me.headers)
            if resp is not None and resp.status_code == 200:
                drill.likes.add((pid, me.id))
        store = next(stores, None) if n % 2 == 0 else None
        if store is not None:
            resp = await _call(drill, http, "checkin", "POST", "/v1/checkins", headers=me.headers,
                               json={"store_id": store["id"], "lat": store["lat"], "lng": store["lng"]})
            if resp is not None and resp.status_code == 201:
                drill.checkins[resp.json()["checkin"]["id"]] = (store["id"], me.id)
                drill.posts[resp.json()["post"]["id"]] = me.id  # a check-in is a post too
        offer = next(offers, None)
        if offer is not None:
            resp = await _call(drill, http, "claim", "POST", f"/v1/offers/{offer['id']}/claim", headers=me.headers)
            if resp is not None and resp.status_code in (200, 201):
                drill.vouchers[resp.json()["id"]] = (offer["id"], me.id)
        await _call(drill, http, "me", "GET", "/v1/me", headers=me.headers)
        refused = any(o.status == 503 for o in drill.outcomes[seen:])
        await asyncio.sleep(0.3 if refused else 0.05)  # quick 503s must not use up the stores and offers


async def _setup(http: httpx2.AsyncClient, drill: Drill) -> tuple[list[User], dict]:
    users = []
    for _ in range(USERS):
        resp = await http.post("/v1/auth/register", json={"username": f"r_{uuid.uuid4().hex[:12]}",
                                                          "password": "password123"})
        assert resp.status_code == 201, resp.text
        users.append(User(resp.json()["user"]["id"], resp.json()["token"]))
    for a in users:
        for b in users:
            if a is not b:
                assert (await http.post(f"/v1/users/{b.id}/follow", headers=a.headers)).status_code == 204
    resp = await http.post("/v1/auth/register", json={"username": f"m_{uuid.uuid4().hex[:12]}",
                                                      "password": "password123", "role": "merchant"})
    merchant = User(resp.json()["user"]["id"], resp.json()["token"])
    lat, lng = random_point()
    for i in range(STORES + 1):  # all in one spot (a mall): moving between them breaks no travel rule
        resp = await http.post("/v1/stores", json={"name": f"Drill Cafe {i}", "lat": lat, "lng": lng},
                               headers=merchant.headers)
        assert resp.status_code == 201, resp.text
        drill.stores.append({**resp.json(), "lat": lat, "lng": lng})
    store = drill.stores.pop()  # everyone checks in here before the outage
    for i in range(OFFERS):
        resp = await http.post(f"/v1/stores/{store['id']}/offers", headers=merchant.headers,
                               json={"title": f"Drill offer {i}", "radius_m": 500, "expires_at": in_minutes(60),
                                     "stock": STOCK})
        assert resp.status_code == 201, resp.text
        drill.offers.append(resp.json())
    for u in users:
        assert (await http.get("/v1/feed/home", headers=u.headers)).status_code == 200  # active readers
        resp = await http.post("/v1/posts", json={"text": "before the outage"}, headers=u.headers)
        assert resp.status_code == 201, resp.text
        drill.posts[resp.json()["id"]] = u.id
        resp = await http.post("/v1/checkins", json={"store_id": store["id"], "lat": store["lat"],
                                                      "lng": store["lng"]}, headers=u.headers)
        assert resp.status_code == 201, resp.text
        drill.checkins[resp.json()["checkin"]["id"]] = (store["id"], u.id)
        drill.posts[resp.json()["post"]["id"]] = u.id  # a check-in is a post too
    return users, store


async def _home_ids(http: httpx2.AsyncClient, user: User) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        resp = await http.get("/v1/feed/home", params=params, headers=user.headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        ids += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            return ids


async def test_redis_killed_and_restarted_empty_loses_nothing(stack: Stack):
    drill = Drill()
    redis_srv = stack.servers.redis
    assert redis_srv is not None and stack.servers.mongo is not None
    mongo = AsyncMongoClient(stack.servers.mongo.url)
    db = mongo[DB]
    async with httpx2.AsyncClient(base_url=stack.api.base_url, timeout=15.0) as http:
        users, store = await _setup(http, drill)
        tasks = [asyncio.create_task(_client(drill, http, u)) for u in users]
        try:
            await asyncio.sleep(3)
            sentinel = Redis.from_url(redis_srv.url)
            await sentinel.set("drill:sentinel", "1")  # gone after the restart: Redis came back empty
            await sentinel.aclose()
            drill.phase = "outage"
            down_at = time.monotonic()
            writes_before = len(drill.posts) + len(drill.likes) + len(drill.checkins) + len(drill.vouchers)
            assert redis_srv.proc.process is not None
            redis_srv.proc.process.kill()  # SIGKILL mid-traffic: no shutdown, nothing saved
            await asyncio.to_thread(redis_srv.proc.process.wait, 10)
            await asyncio.sleep(OUTAGE_S / 2)
            ready_during = (await http.get("/readyz")).status_code
            await asyncio.sleep(OUTAGE_S / 2)
            drill.phase = "restarting"
            up_began = time.monotonic()
            await asyncio.to_thread(redis_srv.start)
            sentinel = Redis.from_url(redis_srv.url)
            kept = await sentinel.exists("drill:sentinel")
            await sentinel.aclose()
            drill.phase = "after"
            seen = len(drill.outcomes)
            recovered_after = await seconds_until(
                lambda: any(o.op == "home" and o.status == 200 for o in drill.outcomes[seen:]), RECOVERY_S)
            assert recovered_after is not None, "the API did not recover by itself"
            steady_from = time.monotonic()
            await asyncio.sleep(4)
        finally:
            drill.stop = True
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            assert task.exception() is None, task.exception()
        assert stack.api.process is not None and stack.api.process.poll() is None, "the API process died"
        assert stack.worker.process is not None and stack.worker.process.poll() is None, "the worker died"

        summary: dict[str, dict[str, int]] = {}
        for o in drill.outcomes:
            by = summary.setdefault(o.phase, {})
            by[str(o.status)] = by.get(str(o.status), 0) + 1
        ops: dict[str, dict[str, int]] = {}
        for o in drill.outcomes:
            if down_at <= o.started < up_began:
                by = ops.setdefault(o.op, {})
                by[str(o.status)] = by.get(str(o.status), 0) + 1
        print(f"\nredis kill drill: {summary}; during the outage by operation: {ops}; readyz during outage "
              f"{ready_during}; Redis came back {'with its data' if kept else 'empty'}; API recovered "
              f"{recovered_after:.2f}s after redis-server was back; acknowledged: {len(drill.posts)} posts "
              f"({len(drill.posts_after_restart)} after the restart), {len(drill.likes)} likes, "
              f"{len(drill.checkins)} check-ins, {len(drill.vouchers)} vouchers")
        assert not kept, "redis-server came back with its data: the drill did not lose Redis"
        bad = [o for o in drill.outcomes if o.status is None or (o.status >= 400 and o.status != 503
                                                                 and not _sold_out(o))]
        assert not bad, bad[:5]
        assert all(o.code == "unavailable" for o in drill.outcomes if o.status == 503)
        outage = [o for o in drill.outcomes if down_at <= o.started < up_began]
        assert len(outage) >= USERS and any(o.status == 503 for o in outage), summary
        assert max(o.seconds for o in drill.outcomes) <= MAX_ANSWER_S, max(o.seconds for o in drill.outcomes)
        assert ready_during == 503
        steady = [o for o in drill.outcomes if o.started >= steady_from]
        unsteady = [o for o in steady if o.status is None or (o.status >= 400 and not _sold_out(o))]
        assert steady and not unsteady, unsteady[:5]
        assert drill.posts_after_restart, "no post was acknowledged after the restart"
        writes_after = len(drill.posts) + len(drill.likes) + len(drill.checkins) + len(drill.vouchers)
        assert writes_after > writes_before
        for op in ("post", "like", "checkin", "claim"):  # each kind of write was in flight when Redis died
            assert any(o.op == op for o in outage), (op, ops)

        # every acknowledged post reaches MongoDB's "fan-out done" (the task, or the sweeper's re-send)
        authored = {"author_id": {"$in": [ObjectId(u.id) for u in users]}}
        deadline = time.monotonic() + CONVERGE_S
        while await db.posts.count_documents({**authored, "fanout": {"$ne": "done"}}):
            assert time.monotonic() < deadline, "acknowledged posts were never fanned out"
            await asyncio.sleep(0.5)
        # MongoDB is the record: it has every acknowledged post (and maybe a few whose answer was lost
        # to the outage after the write — those must reach the feeds too, once each)
        expected = {str(d["_id"]) async for d in db.posts.find({**authored, "status": "published"}, {"_id": 1})}
        assert set(drill.posts) <= expected
        print(f"posts written but not acknowledged: {len(expected - set(drill.posts))}")

        # every reader's feed holds every post exactly once: through the API …
        for u in users:
            got = await _home_ids(http, u)
            assert len(got) == len(set(got)), "a post appears twice in a home feed"
            assert set(got) == expected, (len(expected - set(got)), len(set(got) - expected))
        # … and in Redis, once the feeds lost in the flush are rebuilt from MongoDB (reads queue the rebuild)
        data = Redis.from_url(redis_srv.url, decode_responses=True)
        try:
            deadline = time.monotonic() + CONVERGE_S
            for u in users:
                while True:
                    if await data.zscore(home_key(u.id), MARKER) == READY:
                        members = set(await data.zrange(home_key(u.id), 0, -1)) - {MARKER}
                        if members == expected:
                            break
                    assert time.monotonic() < deadline, f"the home feed of {u.id} was not rebuilt"
                    await _home_ids(http, u)
                    await asyncio.sleep(0.5)
        finally:
            await data.aclose()

        # likes and check-ins: each acknowledged one stored once, and the counters agree with the records
        for pid in drill.posts:
            post = await db.posts.find_one({"_id": ObjectId(pid)}, {"like_count": 1})
            likes = await db.likes.count_documents({"post_id": ObjectId(pid)})
            assert post["like_count"] == likes
        for pid, uid in drill.likes:
            assert await db.likes.count_documents({"post_id": ObjectId(pid), "user_id": ObjectId(uid)}) == 1
        for cid, (sid, uid) in drill.checkins.items():
            assert await db.checkins.count_documents(
                {"_id": ObjectId(cid), "store_id": ObjectId(sid), "user_id": ObjectId(uid)}) == 1, cid
        for s in [*drill.stores, store]:
            stored = await db.stores.find_one({"_id": ObjectId(s["id"])})
            checkins = await db.checkins.count_documents({"store_id": ObjectId(s["id"])})
            assert stored["checkins_count"] == checkins, (s["id"], stored["checkins_count"], checkins)
        assert (await db.stores.find_one({"_id": ObjectId(store["id"])}))["checkins_count"] == USERS
        # vouchers: each acknowledged claim stored once, each offer's counter = its vouchers, never oversold
        for vid, (oid, uid) in drill.vouchers.items():
            assert await db.vouchers.count_documents(
                {"_id": ObjectId(vid), "offer_id": ObjectId(oid), "user_id": ObjectId(uid)}) == 1, vid
        for offer in drill.offers:
            stored = await db.offers.find_one({"_id": ObjectId(offer["id"])}, {"claimed": 1})
            vouchers = await db.vouchers.count_documents({"offer_id": ObjectId(offer["id"])})
            assert stored["claimed"] == vouchers <= STOCK, (offer["id"], stored["claimed"], vouchers)
    await mongo.close()
