"""Store insights over a year: ``GET /v1/stores/{id}/insights?days=365`` on a store with 100,000
check-ins, beside the bare ``GET /echo``; goal p99 ≤ 200 ms.

Set-up (not timed): one merchant's store (``create_store``), 100,000 check-ins by 20,000 visitors
spread over the last 365 days (more in the evening and at weekends, a fifth of the visitors coming
back often), each with its check-in post (one in ten carries topics), bulk-inserted by
:func:`checkins.bulkvisits.load_visits` in exactly the documents :func:`checkins.checkin.check_in`
writes, the ``store_visitors`` rows and the day rollups through the start-up backfill path
(:func:`checkins.visitdays.rebuild_store`); and 200 points-ledger entries. Before the load, the
same figures computed straight from the ``checkins`` collection (the alternative to rollups: one
aggregation on the ``by_store_window`` index) are timed in-process, so the table carries both.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from benchmarks.common import BenchEnv, HttpRequest, Result, compare_reads
from benchmarks.seed import auth, bulk_users, random_center
from checkins.bulkvisits import load_visits
from checkins.localtime import local_day

CHECKINS = 100_000
VISITORS = 20_000
CONCURRENCY = 2  # merchants reading their insights at once; each answer is one request's latency
SECONDS = 8.0
HOUR_WEIGHTS = [1, 1, 0, 0, 0, 0, 1, 3, 6, 6, 5, 6, 9, 8, 5, 4, 5, 7, 10, 11, 9, 7, 4, 2]
ZONE = "Asia/Shanghai"
TOPICS = ["coffee", "brunch", "latte", "cake", "friends", "work", "rainy", "music"]


def _times(rng: random.Random, n: int, now: datetime) -> list[datetime]:
    out = []
    for _ in range(n):
        day = rng.randrange(365)
        hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
        at = (now - timedelta(days=day)).replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60),
                                                 microsecond=0) - timedelta(hours=8)  # Shanghai hours in UTC
        out.append(min(at, now - timedelta(minutes=1)))
    return sorted(out)


async def seed(services: Any, store: dict[str, Any], n: int, visitors: int, rng: random.Random) -> None:
    """``n`` check-ins (and posts) through :func:`checkins.bulkvisits.load_visits`, then the ledger."""
    users = [ObjectId() for _ in range(visitors)]
    regulars = users[: visitors // 5]
    now = datetime.now(UTC)
    visits = [(rng.choice(regulars) if rng.random() < 0.6 else rng.choice(users), at,
               rng.sample(TOPICS, 2) if rng.random() < 0.1 else []) for at in _times(rng, n, now)]
    await load_visits(services, store, visits)
    await services.db.points_ledger.insert_many([
        {"user_id": rng.choice(users), "store_id": store["_id"], "kind": "checkin" if i % 4 else "spend",
         "points": 10 if i % 4 else -25, "created_at": at, "day": local_day(store, at)}
        for i, at in enumerate(_times(rng, 200, now))], ordered=False)


async def from_checkins(services: Any, store: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternative measured beside the rollups: days, hours and unique visitors per day straight
    from the check-ins (the visitor-day groups are the minimum such a read must build)."""
    start = datetime.now(UTC) - timedelta(days=365)
    cursor = await services.db.checkins.aggregate([
        {"$match": {"store_id": store["_id"], "created_at": {"$gte": start}}},
        {"$project": {"_id": 0, "user_id": 1, "h": {"$hour": {"date": "$created_at", "timezone": ZONE}},
                      "d": {"$dateToString": {"date": "$created_at", "format": "%Y-%m-%d", "timezone": ZONE}}}},
        {"$group": {"_id": {"d": "$d", "u": "$user_id"}, "n": {"$sum": 1}}},
        {"$group": {"_id": "$_id.d", "checkins": {"$sum": "$n"}, "unique": {"$sum": 1}}},
    ], hint="by_store_window")
    return await cursor.to_list(None)


async def run(env: BenchEnv) -> list[Result]:
    from checkins.stores import create_store

    services = await env.services()
    rng = random.Random(365)
    n, visitors = env.size(CHECKINS, 1000), env.size(VISITORS, 200)
    (merchant, token), = await bulk_users(services, 1, role="merchant")
    lat, lng = random_center(rng)
    store = await create_store(services, merchant, name="Bench insights cafe", lat=lat, lng=lng)
    started = time.perf_counter()
    await seed(services, store, n, visitors, rng)
    seeded_s = time.perf_counter() - started
    timings = []
    for _ in range(10):
        t0 = time.perf_counter()
        await from_checkins(services, store)
        timings.append((time.perf_counter() - t0) * 1000)
    aggregation_ms = round(statistics.median(timings), 1)
    print(f"  insights: seeded {n:,} check-ins in {seeded_s:.1f} s; the same days straight from the check-ins: "
          f"median {aggregation_ms} ms per read (in-process)", flush=True)
    url = f"/v1/stores/{store['_id']}/insights?days=365"
    ours = [HttpRequest("GET", url, headers=auth(token))]
    base = [HttpRequest("GET", "/echo?days=365", headers=auth(token))]

    def year(bodies: list[tuple[int, bytes]]) -> dict[str, Any]:
        ok = sum(1 for status, body in bodies if status == 200 and body.count(b'"date"') == 365)
        return {"warmup_full_years": f"{ok}/{len(bodies)}"}

    return [await compare_reads(env, f"store insights, 365 days, {n:,} check-ins", ours, base,
                                concurrency=CONCURRENCY, seconds=env.seconds(SECONDS), check=year, checkins=n,
                                seed_s=round(seeded_s, 1), aggregation_from_checkins_p50_ms=aggregation_ms)]
