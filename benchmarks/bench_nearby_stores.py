"""Nearby stores over 100,000 stores: ``GET /v1/stores/nearby`` (1 km, 20 a page), 64 clients.

Set-up (not timed): 100,000 stores of one merchant spread uniformly over a disc of 20 km around
a random centre (about 80 within any 1 km circle), bulk-inserted into MongoDB in the shared
``stores`` shape; a tenth have a mayor, so the page's one batched mayor lookup has work to do.
Bulk inserts bypass ``create_store``, so the stores' Redis GEO index is then built from MongoDB
(:func:`checkins.geoindex.rebuild`, what a server does on its own when the index is missing).

Each request is a user at a random point within 15 km of the centre asking for the 20 nearest
stores within 1 km: token check, ``GEOSEARCH … COUNT`` on the Redis GEO index with the exact
``(distance, id)`` page order, the page's stores and mayors from MongoDB by id, the signed cursor. The baseline is
the bare ``GET /echo`` with the same query.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from benchmarks.common import BenchEnv, HttpRequest, Result, compare_reads
from benchmarks.seed import auth, bulk_users, point_near, random_center
from checkins import geoindex
from geo.geojson import geo_point

STORES = 100_000
READERS = 256
AREA_M = 20_000
READ_WITHIN_M = 15_000
RADIUS_M = 1000
CONCURRENCY = 64
SECONDS = 8.0
INSERT_BATCH = 10_000
CATEGORIES = ("food", "cafe", "bar", "shopping", "grocery", "services")


def store_doc(owner: ObjectId, lat: float, lng: float, i: int, mayor: ObjectId | None, now: datetime) -> dict[str, Any]:
    return {"_id": ObjectId(), "name": f"Bench store {i}", "category": CATEGORIES[i % len(CATEGORIES)],
            "address": f"{i} Bench Street", "owner_id": owner, "location": geo_point(lat, lng),
            "checkin_radius_m": 200, "checkins_count": 0, "unique_visitors": 0, "followers_count": 0,
            "mayor_id": mayor, "created_at": now}


async def seed(services: Any, n: int, rng: random.Random) -> tuple[float, float]:
    lat0, lng0 = random_center(rng)
    (owner, _), *_ = await bulk_users(services, 1, role="merchant")
    mayors = [uid for uid, _ in await bulk_users(services, 100)]
    now = datetime.now(UTC)
    for start in range(0, n, INSERT_BATCH):
        docs = []
        for i in range(start, min(n, start + INSERT_BATCH)):
            lat, lng = point_near(rng, lat0, lng0, AREA_M)
            docs.append(store_doc(owner, lat, lng, i, rng.choice(mayors) if i % 10 == 0 else None, now))
        await services.db.stores.insert_many(docs, ordered=False)
    await geoindex.rebuild(services)
    return lat0, lng0


def full_pages(bodies: list[tuple[int, bytes]]) -> dict[str, Any]:
    full = sum(1 for status, body in bodies if status == 200 and body.count(b'"distance_m"') == 20)
    return {"warmup_full_pages": f"{full}/{len(bodies)}"}


async def run(env: BenchEnv) -> list[Result]:
    services = await env.services()
    rng = random.Random(13)
    n = env.size(STORES, 2000)
    lat0, lng0 = await seed(services, n, rng)
    readers = await bulk_users(services, env.size(READERS, 8))
    points = [point_near(rng, lat0, lng0, READ_WITHIN_M) for _ in range(len(readers))]
    query = [f"lat={lat:.6f}&lng={lng:.6f}&radius_m={RADIUS_M}&limit=20" for lat, lng in points]
    pairs = list(zip(query, readers, strict=True))
    ours = [HttpRequest("GET", f"/v1/stores/nearby?{q}", headers=auth(tok)) for q, (_, tok) in pairs]
    base = [HttpRequest("GET", f"/echo?{q}", headers=auth(tok)) for q, (_, tok) in pairs]
    return [await compare_reads(env, f"nearby stores, {n:,} stores, 1 km, 20/page", ours, base,
                                concurrency=CONCURRENCY, seconds=env.seconds(SECONDS), check=full_pages, stores=n)]
