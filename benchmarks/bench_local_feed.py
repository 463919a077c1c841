"""Local-feed reads over 100,000 located posts: ``GET /v1/feed/local`` (2 km, 20 a page), 64 clients.

Set-up (not timed): 100,000 published posts by 500 authors, spread uniformly over a disc of
10 km around a random city centre and over the past week, bulk-inserted into MongoDB; then the
grid-cell timelines of every level are written in the state the fan-out leaves them in when the
cells existed before the posts (:mod:`feed.localcells`: each cell's newest ``CELL_CAP`` entries,
marked TRIMMED when it had more), pipelined (the fan-out's own script, once per post and level,
would take minutes for a million writes without measuring anything the reads depend on).

Each request is a reader at a random point within 8 km of the centre (so the 2 km circle lies in
the populated disc) asking for the newest 20 located posts within 2 km: token check, the covering
cells' newest entries in one pipeline, merge and exact-distance filter on the entries' public
positions, the page's documents in one query, hydration.
The baseline is the bare Starlette ``GET /echo`` with the same query string.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from benchmarks.common import BenchEnv, HttpRequest, Result, compare_reads
from benchmarks.seed import auth, bulk_users, point_near, random_center
from geo.geojson import geo_point
from geo.privacy import coarsen
from solomo.core.timeutil import ms_of

POSTS = 100_000
AUTHORS = 500
READERS = 256
AREA_M = 10_000
READ_WITHIN_M = 8_000
RADIUS_M = 2000
CONCURRENCY = 64
SECONDS = 8.0
INSERT_BATCH = 10_000
ADD_PIPELINE = 200


def post_doc(author_id: ObjectId, lat: float, lng: float, created: datetime, i: int) -> dict[str, Any]:
    """A published, already fanned-out located post in the shared ``posts`` shape (located at its
    public position, snapped to the grid, as ``feed.posts.build_post`` stores it)."""
    return {
        "_id": ObjectId(), "author_id": author_id, "text": f"local bench post {i}", "topics": [], "topic_keys": [],
        "mention_ids": [], "mentions": [], "store_id": None, "store_owner_post": False,
        "location": geo_point(*coarsen(lat, lng)), "kind": "post", "checkin_id": None,
        "status": "published", "flags": [], "fanout": "done", "like_count": 0, "comment_count": 0,
        "created_at": created, "created_ms": ms_of(created),
    }


async def seed(services: Any, n: int, rng: random.Random) -> tuple[float, float, dict[str, float]]:
    """Inserts ``n`` located posts around a random centre and builds their cells; returns the centre."""
    from feed.localcells import CELL_CAP, CELL_TTL_S, COMPLETE, MARKER, TRIMMED, new_generation, post_cells
    from solomo.core.keys import local_cell_gen

    lat0, lng0 = random_center(rng)
    authors = [uid for uid, _ in await bulk_users(services, AUTHORS)]
    now = datetime.now(UTC)
    docs = []
    for i in range(n):
        lat, lng = point_near(rng, lat0, lng0, AREA_M)
        docs.append(post_doc(rng.choice(authors), lat, lng, now - timedelta(seconds=rng.uniform(0, 7 * 86400)), i))
    t0 = time.perf_counter()
    for start in range(0, n, INSERT_BATCH):
        await services.db.posts.insert_many(docs[start:start + INSERT_BATCH], ordered=False)
    inserted = time.perf_counter() - t0

    t0 = time.perf_counter()
    cells: dict[str, list[tuple[str, int]]] = {}
    for doc in docs:
        found = post_cells(doc)
        assert found is not None
        keys, member = found
        for key in keys:
            cells.setdefault(key, []).append((member, int(doc["created_ms"])))
    items = list(cells.items())
    for start in range(0, len(items), ADD_PIPELINE):
        async with services.redis.pipeline(transaction=False) as pipe:
            for key, entries in items[start:start + ADD_PIPELINE]:
                entries.sort(key=lambda e: e[1], reverse=True)
                state = TRIMMED if len(entries) > CELL_CAP else COMPLETE
                pipe.zadd(key, {MARKER: state, **dict(entries[:CELL_CAP])})
                pipe.set(local_cell_gen(key), new_generation(), ex=CELL_TTL_S)  # as a rebuild leaves it
            await pipe.execute()
    return lat0, lng0, {"insert_s": round(inserted, 1), "cells_s": round(time.perf_counter() - t0, 1)}


async def cover_readers(services: Any, points: list[tuple[float, float]]) -> None:
    """The readers' covering cells that hold no post exist too (empty, COMPLETE: what a rebuild
    leaves), as in a city where people have read before: a missing cell would send its reads to
    MongoDB while a rebuild task (no worker runs here) is awaited."""
    from feed.localcells import CELL_TTL_S, COMPLETE, MARKER, new_generation
    from geo.cells import covering_grid
    from solomo.core.keys import local_cell_gen, local_cell_key

    keys = {local_cell_key(c.name) for lat, lng in points for c in covering_grid(lat, lng, RADIUS_M) or []}
    async with services.redis.pipeline(transaction=False) as pipe:
        for key in sorted(keys):
            pipe.zadd(key, {MARKER: COMPLETE}, nx=True)
            pipe.set(local_cell_gen(key), new_generation(), ex=CELL_TTL_S, nx=True)
        await pipe.execute()


def full_pages(bodies: list[tuple[int, bytes]]) -> dict[str, Any]:
    full = sum(1 for status, body in bodies if status == 200 and body.count(b'"author"') == 20)
    return {"warmup_full_pages": f"{full}/{len(bodies)}"}


async def run(env: BenchEnv) -> list[Result]:
    services = await env.services()
    rng = random.Random(11)
    n = env.size(POSTS, 200)
    lat0, lng0, timings = await seed(services, n, rng)
    readers = await bulk_users(services, env.size(READERS, 8))
    points = [point_near(rng, lat0, lng0, READ_WITHIN_M) for _ in range(len(readers))]
    await cover_readers(services, points)
    query = [f"lat={lat:.6f}&lng={lng:.6f}&radius_m={RADIUS_M}&limit=20" for lat, lng in points]
    ours = [HttpRequest("GET", f"/v1/feed/local?{q}", headers=auth(tok)) for q, (_, tok) in zip(query, readers,
                                                                                                strict=True)]
    base = [HttpRequest("GET", f"/echo?{q}", headers=auth(tok)) for q, (_, tok) in zip(query, readers, strict=True)]
    result = await compare_reads(env, f"local feed, {n:,} posts, 2 km, 20/page", ours, base,
                                 concurrency=CONCURRENCY, seconds=env.seconds(SECONDS), check=full_pages,
                                 posts=n, **{f"seed_{k}": v for k, v in timings.items()})
    return [result]
