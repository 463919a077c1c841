"""Drill: MongoDB elections under load — the primary of a three-member replica set is stepped down,
then the new primary is SIGKILLed, while clients keep checking in and claiming limited vouchers.

Its own replica set (:class:`solomo.embedded.EmbeddedMongoReplicaSet`) and an app of its own (in this
process, over ASGI) on it; Redis is the session's, in databases of its own. Each client checks in at
the next store (all in one spot) and claims the next offer (stock below the number of clients, so
claims race for the last vouchers), each in a loop of its own. The drill asserts:

- every answer is 2xx, 503 ``unavailable`` (JSON error body) or, for a claim, 409 ``sold_out`` —
  never a 500, never a hang;
- the same app recovers by itself after each fault (the time to the first success is printed);
- every acknowledged check-in and voucher is in MongoDB exactly once; what MongoDB holds beyond them
  is bounded by the writes refused with a 503 (an answer can be lost as the primary goes), and is
  whole: every check-in has its post, its store counts it, its guard counts it; every offer's
  ``claimed`` equals its vouchers, never above the stock.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from solomo.embedded import EmbeddedMongoReplicaSet
from tests.faults.drill import NOT_THE_ERROR_BODY, Outcome, call, report, stats, unlimited_settings
from tests.offers.helpers import in_minutes
from tests.support import random_point, seconds_until

CLIENTS = 8
STORES = 160  # a check-in each at a new store (the same store again would meet the one-hour cooldown)
OFFERS = 160
STOCK = 5  # fewer than CLIENTS: claims race for the last vouchers, and sold_out answers come too
DB = "solomo_election_drill"
REDIS_DB, BROKER_DB = 5, 6  # the session's Redis, databases no other test uses
STEADY_S = 1.5  # load before the first fault and after each recovery
RECOVERY_S = 20.0
MAX_ANSWER_S = 10.0  # server selection (3 s) + the transaction's outage budget (2 s) + a loaded machine
pytestmark = pytest.mark.slow


@dataclass
class Drill:
    phase: str = "before"
    outcomes: list[Outcome] = field(default_factory=list)
    checkins: dict[str, tuple[str, str]] = field(default_factory=dict)  # acknowledged id → (user, store)
    vouchers: dict[str, tuple[str, str]] = field(default_factory=dict)  # acknowledged id → (user, offer)
    stores: list[dict[str, Any]] = field(default_factory=list)
    offers: list[dict[str, Any]] = field(default_factory=list)
    stop: bool = False


@pytest.fixture
def replset() -> Iterator[EmbeddedMongoReplicaSet]:
    tmp = Path(tempfile.mkdtemp(prefix="solomo-rs-"))
    rs = EmbeddedMongoReplicaSet(tmp)
    try:
        rs.start()
        yield rs
    finally:
        rs.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _with_db(url: str, db: int) -> str:
    return f"{url.rpartition('/')[0]}/{db}"


@pytest.fixture
async def http(settings, replset: EmbeddedMongoReplicaSet) -> AsyncIterator[httpx2.AsyncClient]:
    from redis.asyncio import Redis

    from solomo.app import create_app

    redis_url = _with_db(settings.effective_redis_url, REDIS_DB)
    broker_url = _with_db(settings.effective_redis_url, BROKER_DB)
    drill_settings = settings.model_copy(update={
        "mongo_url": replset.url, "mongo_db": DB, "redis_url": redis_url, "broker_url": broker_url,
        **unlimited_settings(),
    })
    app = create_app(drill_settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://solomo.test", timeout=30.0) as client:
                yield client
    finally:
        for url in (redis_url, broker_url):  # nothing of the drill stays in the session's Redis
            redis = Redis.from_url(url)
            await redis.flushdb()
            await redis.aclose()


async def _setup(drill: Drill, http: httpx2.AsyncClient) -> list[tuple[str, dict[str, str]]]:
    """CLIENTS users and a merchant's stores and offers; (user id, auth headers) per client."""
    async def register(role: str) -> tuple[str, dict[str, str]]:
        resp = await http.post("/v1/auth/register", json={"username": f"e_{uuid.uuid4().hex[:12]}",
                                                          "password": "password123", "role": role})
        assert resp.status_code == 201, resp.text
        return resp.json()["user"]["id"], {"Authorization": f"Bearer {resp.json()['token']}"}

    users = [await register("user") for _ in range(CLIENTS)]
    _, merchant = await register("merchant")
    lat, lng = random_point()

    async def store(i: int) -> dict[str, Any]:
        resp = await http.post("/v1/stores", json={"name": f"Election Shop {i}", "lat": lat, "lng": lng},
                               headers=merchant)
        assert resp.status_code == 201, resp.text
        return {**resp.json(), "lat": lat, "lng": lng}

    async def offer(i: int) -> dict[str, Any]:
        resp = await http.post(f"/v1/stores/{drill.stores[i % len(drill.stores)]['id']}/offers", headers=merchant,
                               json={"title": f"Election offer {i}", "radius_m": 500,
                                     "expires_at": in_minutes(60), "stock": STOCK})
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    for first in range(0, STORES, 20):  # all in one spot (a mall): moving between them breaks no travel rule
        drill.stores += await asyncio.gather(*(store(i) for i in range(first, min(first + 20, STORES))))
    for first in range(0, OFFERS, 20):
        drill.offers += await asyncio.gather(*(offer(i) for i in range(first, min(first + 20, OFFERS))))
    return users


async def _client(drill: Drill, http: httpx2.AsyncClient, user_id: str, headers: dict[str, str]) -> None:
    """Checks in at the next store and claims the next offer, each in a loop of its own, so that
    writes of both kinds are in flight whenever a fault comes (in one loop, a quick election could
    pass while every client was inside a check-in). A refused request is not retried (the next one
    goes on with a fresh store or offer), so every write is either acknowledged or counted as refused."""
    started = asyncio.Semaphore(0)  # one per check-in sent: the claims keep pace (a sold-out claim is quick)
    await asyncio.gather(_checkins(drill, http, user_id, headers, started),
                         _claims(drill, http, user_id, headers, started))


async def _pace(drill: Drill, seen: int) -> None:
    refused = any(o.status == 503 for o in drill.outcomes[seen:])
    await asyncio.sleep(0.25 if refused else 0.05)  # quick 503s must not use up the stores and offers


async def _checkins(drill: Drill, http: httpx2.AsyncClient, user_id: str, headers: dict[str, str],
                    started: asyncio.Semaphore) -> None:
    try:
        await _checkins_paced(drill, http, user_id, headers, started)
    finally:
        for _ in drill.offers:  # the claims stop waiting (and see drill.stop)
            started.release()


async def _checkins_paced(drill: Drill, http: httpx2.AsyncClient, user_id: str, headers: dict[str, str],
                          started: asyncio.Semaphore) -> None:
    for store in drill.stores:
        if drill.stop:
            return
        seen = len(drill.outcomes)
        started.release()
        resp = await call(drill.outcomes, drill.phase, http, "checkin", "POST", "/v1/checkins", headers=headers,
                          json={"store_id": store["id"], "lat": store["lat"], "lng": store["lng"]})
        if resp is not None and resp.status_code == 201:
            drill.checkins[resp.json()["checkin"]["id"]] = (user_id, store["id"])
        await _pace(drill, seen)
    raise AssertionError("a client ran out of stores before the drill ended: raise STORES")


async def _claims(drill: Drill, http: httpx2.AsyncClient, user_id: str, headers: dict[str, str],
                  started: asyncio.Semaphore) -> None:
    for offer in drill.offers:
        await started.acquire()  # each claim goes with a check-in
        if drill.stop:
            return
        seen = len(drill.outcomes)
        resp = await call(drill.outcomes, drill.phase, http, "claim", "POST", f"/v1/offers/{offer['id']}/claim",
                          headers=headers)
        if resp is not None and resp.status_code in (200, 201):
            drill.vouchers[resp.json()["id"]] = (user_id, offer["id"])
        await _pace(drill, seen)
    raise AssertionError("a client ran out of offers before the drill ended: raise OFFERS")


def _allowed(o: Outcome) -> bool:
    return o.status is not None and (
        200 <= o.status < 300 or (o.status, o.code) == (503, "unavailable")
        or (o.op, o.status, o.code) == ("claim", 409, "sold_out"))


def _is_success(o: Outcome) -> bool:
    return o.status == 201  # a new check-in or a new voucher: a write went through


async def _fault(drill: Drill, phase: str, action: Any) -> tuple[float, float, float]:
    """Runs ``action`` (blocking, in a thread) as the fault; returns (fault time, seconds to a new
    primary, seconds to the first write that started after the fault and succeeded)."""
    drill.phase = phase
    at = time.monotonic()
    elected = await asyncio.to_thread(action)
    elected_after = elected - at

    def recovered() -> bool:
        return any(o.phase == phase and o.started >= at and _is_success(o) for o in drill.outcomes)

    waited = await seconds_until(recovered, RECOVERY_S, interval=0.02)
    assert waited is not None, f"no write succeeded within {RECOVERY_S}s of the {phase}"
    first = min(o.ended for o in drill.outcomes if o.phase == phase and o.started >= at and _is_success(o))
    return at, elected_after, first - at


async def test_mongo_election_answers_503_and_loses_nothing(replset: EmbeddedMongoReplicaSet, http):
    drill = Drill()
    users = await _setup(drill, http)
    tasks = [asyncio.create_task(_client(drill, http, uid, headers)) for uid, headers in users]
    try:  # the clients are under way (a first round of writes through), then some more load
        warm = await seconds_until(lambda: sum(map(_is_success, drill.outcomes)) >= 2 * CLIENTS, RECOVERY_S)
        assert warm is not None, stats(drill.outcomes)
        await asyncio.sleep(STEADY_S)

        def step_down() -> float:
            old = replset.step_down()
            replset.wait_primary(RECOVERY_S, other_than=old)
            return time.monotonic()

        down_at, down_elected, down_recovered = await _fault(drill, "stepdown", step_down)
        await asyncio.sleep(STEADY_S)
        victim = replset.primary_port()
        assert victim is not None

        def kill() -> float:
            replset.kill(victim)
            replset.wait_primary(RECOVERY_S)
            return time.monotonic()

        kill_at, kill_elected, kill_recovered = await _fault(drill, "sigkill", kill)
        await asyncio.sleep(STEADY_S)
        drill.phase = "steady"
        steady_from = time.monotonic()
        await asyncio.sleep(STEADY_S)
    finally:
        drill.stop = True
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        assert task.exception() is None, task.exception()
    restart_at = time.monotonic()
    await asyncio.to_thread(replset.restart, victim)  # the killed member rejoins on its data
    rejoined = time.monotonic() - restart_at

    by_phase: dict[str, list[Outcome]] = {}
    for o in drill.outcomes:
        by_phase.setdefault(o.phase, []).append(o)
    report(f"mongo election drill: stepdown: new primary {down_elected:.2f}s, first write {down_recovered:.2f}s; "
          f"SIGKILL of the new primary: new primary {kill_elected:.2f}s, first write {kill_recovered:.2f}s; "
          f"killed member rejoined {rejoined:.1f}s after restart; "
          f"answers by phase: { {p: stats(os_) for p, os_ in by_phase.items()} }; "
          f"acknowledged: {len(drill.checkins)} check-ins, {len(drill.vouchers)} vouchers")

    bad = [o for o in drill.outcomes if not _allowed(o)]
    assert not bad, [(o.phase, o.op, o.status, o.code, o.error) for o in bad][:5]
    assert not [o for o in drill.outcomes if o.code == NOT_THE_ERROR_BODY]
    slow = [o for o in drill.outcomes if o.seconds > MAX_ANSWER_S]
    assert not slow, [(o.phase, o.op, o.status, round(o.seconds, 1)) for o in slow][:5]
    calm = [o for o in drill.outcomes if o.ended < down_at]
    assert calm and all(o.status != 503 for o in calm), stats(calm)
    # each fault met writes of both kinds: in flight as it came, or sent before the set recovered
    for at, recovered in ((down_at, down_recovered), (kill_at, kill_recovered)):
        met = {o.op for o in drill.outcomes if o.started <= at + recovered and o.ended >= at}
        assert met == {"checkin", "claim"}, (at, met)
    steady = [o for o in drill.outcomes if o.started >= steady_from]
    assert steady and all(o.status != 503 for o in steady), stats(steady)

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(replset.url)
    try:
        await _check_records(drill, client[DB], [uid for uid, _ in users])
    finally:
        await client.close()


async def _check_records(drill: Drill, db: Any, user_ids: list[str]) -> None:
    refused = {op: sum(1 for o in drill.outcomes if o.op == op and o.status == 503) for op in ("checkin", "claim")}
    users = [ObjectId(u) for u in user_ids]

    checkins = await db.checkins.find({"user_id": {"$in": users}}).to_list(None)
    stored = {str(c["_id"]): (str(c["user_id"]), str(c["store_id"])) for c in checkins}
    lost = {k: v for k, v in drill.checkins.items() if stored.get(k) != v}
    assert not lost, f"acknowledged check-ins lost: {lost}"
    pairs = [(c["user_id"], c["store_id"]) for c in checkins]
    assert len(pairs) == len(set(pairs)), "a check-in was written twice"
    extra_checkins = len(stored) - len(drill.checkins)
    # whole, never half: each check-in has its post, its guard and its store count it
    posts = {p["checkin_id"]: p for p in await db.posts.find({"author_id": {"$in": users}, "kind": "checkin"})
             .to_list(None)}
    assert set(posts) == {c["_id"] for c in checkins}, "a check-in without its post, or a post without its check-in"
    for uid in users:
        guard = await db.checkin_guards.find_one({"_id": uid})
        mine = sum(1 for c in checkins if c["user_id"] == uid)
        assert (guard or {}).get("n", 0) == mine, (uid, guard, mine)
    for store in drill.stores:
        sid = ObjectId(store["id"])
        doc = await db.stores.find_one({"_id": sid}, {"checkins_count": 1, "unique_visitors": 1})
        here = sum(1 for c in checkins if c["store_id"] == sid)
        visitors = await db.store_visitors.count_documents({"store_id": sid})
        assert (doc.get("checkins_count", 0), doc.get("unique_visitors", 0)) == (here, visitors) == (here, here), \
            (store["id"], doc, here, visitors)

    vouchers = await db.vouchers.find({"offer_id": {"$in": [ObjectId(o["id"]) for o in drill.offers]}}).to_list(None)
    held = {str(v["_id"]): (str(v["user_id"]), str(v["offer_id"])) for v in vouchers}
    lost = {k: v for k, v in drill.vouchers.items() if held.get(k) != v}
    assert not lost, f"acknowledged vouchers lost: {lost}"
    pairs = [(v["user_id"], v["offer_id"]) for v in vouchers]
    assert len(pairs) == len(set(pairs)), "a user holds two vouchers of one offer"
    extra_vouchers = len(held) - len(set(drill.vouchers))
    for offer in drill.offers:
        oid = ObjectId(offer["id"])
        doc = await db.offers.find_one({"_id": oid}, {"claimed": 1})
        issued = sum(1 for v in vouchers if v["offer_id"] == oid)
        assert doc.get("claimed", 0) == issued <= STOCK, (offer["id"], doc, issued)
    report(f"mongo election drill: written although answered 503 (the answer lost with the primary): "
           f"{extra_checkins} check-ins, {extra_vouchers} vouchers; refused with 503: {refused}; lost: 0; "
           "duplicates: 0")
    assert 0 <= extra_checkins <= refused["checkin"] and 0 <= extra_vouchers <= refused["claim"], \
        (extra_checkins, extra_vouchers, refused)
