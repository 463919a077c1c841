"""Local feeds: located posts near a point, newest first.

The fan-out writes each located post into one geo cell per level (:mod:`geo.cells`). A read
takes the cells of one level covering the circle, merges their timelines and keeps the posts
within the exact (great-circle) distance; past the trimmed end of a full cell the read continues
from MongoDB's 2dsphere index, the source of truth.

A read that finds a cell missing (never read, expired, or lost in a Redis flush) is served by
that exact circle query in MongoDB — the same answer — and the missing cells are rebuilt in the
background (``fanout.rebuild_cells``, once per cell at a time), so a cold area never waits for up
to :data:`MAX_CELLS` rebuilds. Cell keys come from client coordinates, so they expire:
:data:`CELL_TTL_S` after the last read, or :data:`EMPTY_TTL_S` after a rebuild that found
nothing and was not read again. Expiry is safe: the fan-out only writes keys that exist.
"""

from __future__ import annotations

import asyncio
from typing import Any

from geopy.distance import great_circle

from feed.fanout import CELL_CAP
from feed.paging import MongoSource, RedisSource, Source, collect
from feed.posts import VISIBLE
from feed.timeline import MARKER, READY, Timelines
from geo.cells import bounds, covering_cells, encode
from solomo.core import tasknames
from solomo.core.keys import cell_key, cell_rebuild_lock
from solomo.core.pagination import Position
from solomo.core.services import Services
from solomo.core.txn import send_task

EARTH_RADIUS_M = 6_371_008.8
CELL_TTL_S = 86400
EMPTY_TTL_S = 120
LOCK_TTL_S = 60
"""A cell's rebuild is queued at most once in this time (the lock expires if the task is lost)."""
REBUILD_CONCURRENCY = 4


MAX_CELLS = 64
"""Beyond this many covering cells (a huge circle near a pole) the read goes to MongoDB alone."""


def _cell_polygon(cell: str) -> dict[str, Any]:
    """The cell grown by a margin: 2dsphere edges are great circles, not parallels, so the exact
    membership test is done on the geohash of each result instead."""
    south, west, north, east = bounds(cell)
    margin = (north - south) * 0.05
    south, north = max(-90.0, south - margin), min(90.0, north + margin)
    west, east = max(-180.0, west - margin), min(180.0, east + margin)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


async def rebuild_cell(services: Services, cell: str) -> int:
    """Builds one cell's timeline from MongoDB; returns the number of posts found."""
    timelines = Timelines(services.redis)
    key = cell_key(cell)
    await timelines.begin_rebuild(key, EMPTY_TTL_S)
    entries = []
    cursor = services.db.posts.find(
        {"location": {"$geoWithin": {"$geometry": _cell_polygon(cell)}}, "status": VISIBLE},
        {"created_ms": 1, "location": 1}).sort([("created_ms", -1), ("_id", -1)])
    async for row in cursor:
        lng, lat = row["location"]["coordinates"]
        if encode(lat, lng, len(cell)) == cell:
            entries.append((float(row["created_ms"]), str(row["_id"])))
            if len(entries) >= CELL_CAP:
                break
    await timelines.finish_rebuild(key, entries, CELL_CAP, CELL_TTL_S if entries else EMPTY_TTL_S)
    return len(entries)


async def rebuild_cells(services: Services, cells: list[str]) -> int:
    """Rebuilds cells a few at a time and releases their locks; returns the posts found in all."""
    gate = asyncio.Semaphore(REBUILD_CONCURRENCY)

    async def one(cell: str) -> int:
        async with gate:
            try:
                return await rebuild_cell(services, cell)
            finally:
                await services.redis.delete(cell_rebuild_lock(cell))

    return sum(await asyncio.gather(*(one(c) for c in cells)))


async def request_rebuilds(services: Services, cells: list[str]) -> list[str]:
    """Queues one background rebuild for the cells not already queued; returns those queued."""
    async with services.redis.pipeline(transaction=False) as pipe:
        for cell in cells:
            pipe.set(cell_rebuild_lock(cell), "1", nx=True, ex=LOCK_TTL_S)
        taken = await pipe.execute()
    mine = [cell for cell, ok in zip(cells, taken, strict=True) if ok]
    if mine and not await send_task(services, tasknames.REBUILD_CELLS, mine):
        # the read is served anyway; the next one queues again
        await services.redis.delete(*(cell_rebuild_lock(c) for c in mine))
        return []
    return mine


def circle_query(lat: float, lng: float, radius_m: float) -> dict[str, Any]:
    return {"location": {"$geoWithin": {"$centerSphere": [[lng, lat], radius_m / EARTH_RADIUS_M]}},
            "status": VISIBLE}


async def read_local(services: Services, lat: float, lng: float, radius_m: float, before: Position | None,
                     limit: int) -> tuple[list[dict[str, Any]], Position | None]:
    timelines = Timelines(services.redis)
    cells = covering_cells(lat, lng, radius_m)
    exact = MongoSource(services.db, circle_query(lat, lng, radius_m))
    if len(cells) > MAX_CELLS:
        return await collect(services.db, [exact], before, limit, lambda d: _within(d, lat, lng, radius_m))
    keys = [cell_key(c) for c in cells]
    async with services.redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.zscore(key, MARKER)
            pipe.zcard(key)
            pipe.expire(key, CELL_TTL_S)  # a read keeps its cells (a missing key stays missing)
        rows = await pipe.execute()
    states, sizes = rows[0::3], rows[1::3]
    missing = [cell for cell, state in zip(cells, states, strict=True) if state is None or int(state) != READY]
    if missing:
        await request_rebuilds(services, missing)
        return await collect(services.db, [exact], before, limit, lambda d: _within(d, lat, lng, radius_m))
    sources: list[Source] = [RedisSource(timelines, key, exact if size - 1 >= CELL_CAP else None)
                             for key, size in zip(keys, sizes, strict=True)]
    return await collect(services.db, sources, before, limit, lambda d: _within(d, lat, lng, radius_m))


def _within(doc: dict[str, Any], lat: float, lng: float, radius_m: float) -> bool:
    loc = doc.get("location")
    if doc.get("status") != VISIBLE or not loc:
        return False
    plng, plat = loc["coordinates"]
    return bool(great_circle((lat, lng), (plat, plng)).meters <= radius_m)
