"""Local feeds: located posts near a point, newest first.

The fan-out writes each located post into one geo cell per level (:mod:`geo.cells`). A read
takes the cells of one level covering the circle, merges their timelines and keeps the posts
within the exact (great-circle) distance. A cell that is missing (never read, or lost in a Redis
flush) is rebuilt from MongoDB before the read; past the trimmed end of a full cell the read
continues from MongoDB's 2dsphere index, the source of truth.
"""

from __future__ import annotations

from typing import Any

from geopy.distance import great_circle

from feed.fanout import CELL_CAP
from feed.paging import MongoSource, RedisSource, Source, collect
from feed.posts import VISIBLE
from feed.timeline import READY, Position, Timelines
from geo.cells import bounds, cell_key, covering_cells, encode

EARTH_RADIUS_M = 6_371_008.8


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


async def rebuild_cell(services: Any, cell: str) -> None:
    timelines = Timelines(services.redis)
    key = cell_key(cell)
    await timelines.begin_rebuild(key)
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
    await timelines.finish_rebuild(key, entries, CELL_CAP)


def circle_query(lat: float, lng: float, radius_m: float) -> dict[str, Any]:
    return {"location": {"$geoWithin": {"$centerSphere": [[lng, lat], radius_m / EARTH_RADIUS_M]}},
            "status": VISIBLE}


async def read_local(services: Any, lat: float, lng: float, radius_m: float, before: Position | None,
                     limit: int) -> tuple[list[dict[str, Any]], Position | None]:
    timelines = Timelines(services.redis)
    cells = covering_cells(lat, lng, radius_m)
    exact = MongoSource(services.db, circle_query(lat, lng, radius_m))
    if len(cells) > MAX_CELLS:
        return await collect(services.db, [exact], before, limit, lambda d: _within(d, lat, lng, radius_m))
    keys = [cell_key(c) for c in cells]
    states = await timelines.states(keys)
    for cell, state in zip(cells, states, strict=True):
        if state != READY:
            await rebuild_cell(services, cell)
    async with services.redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.zcard(key)
        sizes = await pipe.execute()
    sources: list[Source] = [RedisSource(timelines, key, exact if size - 1 >= CELL_CAP else None)
                             for key, size in zip(keys, sizes, strict=True)]
    return await collect(services.db, sources, before, limit, lambda d: _within(d, lat, lng, radius_m))


def _within(doc: dict[str, Any], lat: float, lng: float, radius_m: float) -> bool:
    loc = doc.get("location")
    if doc.get("status") != VISIBLE or not loc:
        return False
    plng, plat = loc["coordinates"]
    return great_circle((lat, lng), (plat, plng)).meters <= radius_m
