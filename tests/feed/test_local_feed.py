"""The local feed from grid cells: exact radius on the public position at every level, full ordered
pages without duplicates, paging past a trimmed cell's cap, removal from every level, flush and rebuild.

Cells are built here with ``localcells.rebuild_cells`` (what the background task runs), so each
assertion knows whether the page came from the cells or from MongoDB; both must give the same list.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from feed import localcells
from feed.fanout import fanout_post
from feed.posts import build_post, insert_post
from geo.cells import GRID_LEVELS, covering_grid
from geo.distance import fast_m
from geo.geojson import geo_point
from geo.privacy import coarsen
from solomo.core.keys import local_cell_key
from tests.feed.helpers import fanned_out, page, post, principal
from tests.support import Account, offset, random_point, register


async def _located(services: Any, author: Account, lat: float, lng: float, text: str = "here",
                   minutes_ago: float = 0.0, exact: bool = True) -> dict[str, Any]:
    """A published post, fanned out. ``exact``: located at a store's (exact) position, else at a
    device fix (stored snapped to the public grid)."""
    created = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    store = {"_id": ObjectId(), "location": geo_point(lat, lng)} if exact else None
    doc = await build_post(services, principal(author), text, store=store,
                           lat=None if exact else lat, lng=None if exact else lng, created_at=created)
    await insert_post(services, doc)
    await fanout_post(services, doc["_id"])
    return doc


async def _warm(services: Any, lat: float, lng: float, radius_m: float) -> list[str]:
    """Builds the cells a read of this circle uses; returns their keys."""
    cells = covering_grid(lat, lng, radius_m)
    assert cells is not None
    await localcells.rebuild_cells(services, [c.name for c in cells])
    keys = [local_cell_key(c.name) for c in cells]
    states = [await services.redis.zscore(k, localcells.MARKER) for k in keys]
    assert all(s in (localcells.COMPLETE, localcells.TRIMMED) for s in states)
    return keys


async def _pages(client: Any, reader: Account, lat: float, lng: float, radius_m: float,
                 limit: int) -> list[list[str]]:
    """Every page of the local feed, following next_cursor."""
    out: list[list[str]] = []
    cursor = None
    for _ in range(100):
        params: dict[str, Any] = {"lat": lat, "lng": lng, "radius_m": radius_m, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        body = await page(client, reader, "/v1/feed/local", **params)
        out.append([p["id"] for p in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("too many pages")


def _flat(pages: list[list[str]]) -> list[str]:
    return [pid for p in pages for pid in p]


async def test_radius_boundary_at_every_level_same_from_cells_and_from_mongodb(client, services):
    author, reader = await register(client), await register(client)
    for radius in (120, 900, 2000, 5000, 20000, 50000):
        lat, lng = random_point()
        expected: list[tuple[int, str]] = []
        for k, bearing in enumerate(range(0, 360, 45)):
            scale = 0.995 if k % 2 == 0 else 1.005  # just inside, just outside, all around the circle
            north = radius * scale * math.cos(math.radians(bearing))
            east = radius * scale * math.sin(math.radians(bearing))
            plat, plng = offset(lat, lng, north, east)
            doc = await _located(services, author, plat, plng, f"r{radius} b{bearing}", minutes_ago=k)
            if fast_m(lat, lng, plat, plng) <= radius:
                expected.append((k, str(doc["_id"])))
        want = [pid for _, pid in sorted(expected)]
        assert len(want) == 4
        cold = _flat(await _pages(client, reader, lat, lng, radius, limit=3))  # cells missing: MongoDB
        await _warm(services, lat, lng, radius)
        warm = _flat(await _pages(client, reader, lat, lng, radius, limit=3))
        assert cold == warm == want, radius


async def test_pages_are_full_ordered_without_duplicates_past_the_cap(client, services, monkeypatch):
    monkeypatch.setattr(localcells, "CELL_CAP", 6)
    author, reader = await register(client), await register(client)
    lat, lng = random_point()
    radius = 2000
    inside: list[str] = []
    for i in range(45):
        # every third post lies outside the circle but inside its covering cells: filtered out
        distance = 2600 if i % 3 == 2 else 150 + 40 * i
        plat, plng = offset(lat, lng, distance * math.cos(i), distance * math.sin(i))
        doc = await _located(services, author, plat, plng, f"p{i}", minutes_ago=i)
        if fast_m(lat, lng, plat, plng) <= radius:
            inside.append(str(doc["_id"]))
    keys = await _warm(services, lat, lng, radius)
    states = [await services.redis.zscore(k, localcells.MARKER) for k in keys]
    assert localcells.TRIMMED in states  # the read goes past a capped cell's oldest entry
    assert all(n <= localcells.CELL_CAP + 1 for n in [await services.redis.zcard(k) for k in keys])
    pages = await _pages(client, reader, lat, lng, radius, limit=4)
    assert _flat(pages) == inside  # newest first, each once, none lost below the cap
    assert all(len(p) == 4 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 4
    # the cells answer the first pages by themselves: still the same list with a large cap
    monkeypatch.setattr(localcells, "CELL_CAP", 500)
    for key in keys:
        await services.redis.delete(key)
    await _warm(services, lat, lng, radius)
    assert _flat(await _pages(client, reader, lat, lng, radius, limit=7)) == inside


async def test_posts_of_one_millisecond_in_many_cells_page_in_id_order(client, services, monkeypatch):
    """The page merges the cells' replies lazily: entries of the same time in different cells are
    still ordered by id (newest first), across pages and past a capped cell."""
    monkeypatch.setattr(localcells, "CELL_CAP", 5)
    author, reader = await register(client), await register(client)
    lat, lng = random_point()
    radius = 2000
    moments = [datetime.now(UTC) - timedelta(minutes=m) for m in (1, 2, 3)]
    expected: list[tuple[int, str]] = []
    for i in range(30):
        distance = 100 + 60 * i  # spread over the circle: many cells, at several levels' edges
        plat, plng = offset(lat, lng, distance * math.cos(i * 2.1), distance * math.sin(i * 2.1))
        store = {"_id": ObjectId(), "location": geo_point(plat, plng)}
        doc = await build_post(services, principal(author), f"tie {i}", store=store, created_at=moments[i % 3])
        await insert_post(services, doc)
        await fanout_post(services, doc["_id"])
        if fast_m(lat, lng, plat, plng) <= radius:
            expected.append((doc["created_ms"], str(doc["_id"])))
    want = [pid for _, pid in sorted(expected, reverse=True)]
    assert len(want) >= 20
    cold = _flat(await _pages(client, reader, lat, lng, radius, limit=4))  # MongoDB
    await _warm(services, lat, lng, radius)
    warm = _flat(await _pages(client, reader, lat, lng, radius, limit=4))
    assert cold == warm == want


async def test_membership_uses_the_public_position_never_the_device_fix(client, services, celery_worker):
    author, reader = await register(client), await register(client)
    lat, lng = random_point()
    fix = (round(lat, 3) + 0.0004, round(lng, 3))  # 44 m north of its public grid point
    public = coarsen(*fix)
    made = await post(client, author, "where am I", lat=fix[0], lng=fix[1])
    await fanned_out(services, made["id"])
    reader_at = offset(*fix, north_m=111)  # 111 m from the fix, 155 m from the public point
    d_public = fast_m(*reader_at, *public)
    assert fast_m(*reader_at, *fix) < 133 < d_public
    for radius in (133, d_public + 5):
        keys = await _warm(services, *reader_at, radius)
        members = [m for k in keys for m in await services.redis.zrange(k, 0, -1) if m.startswith(made["id"])]
        # the entry carries the public point (the 133 m read's cells may not even hold it)
        assert members == ([] if radius == 133 and not members else [localcells.entry_member(made["id"], *public)])
        got = _flat(await _pages(client, reader, *reader_at, radius, limit=5))
        assert got == ([] if radius == 133 else [made["id"]])
    body = await page(client, reader, "/v1/feed/local", lat=reader_at[0], lng=reader_at[1], radius_m=200)
    assert [(p["lat"], p["lng"]) for p in body["items"]] == [public]


async def test_removed_posts_leave_every_level_and_are_dropped_at_read(client, services, celery_worker):
    author, reader = await register(client), await register(client)
    lat, lng = random_point()
    keep = await _located(services, author, lat, lng, "kept", minutes_ago=2)
    gone = await _located(services, author, lat, lng, "gone", minutes_ago=1)
    stale = await _located(services, author, lat, lng, "stale")
    radii = (100, 2000, 50000)
    member = localcells.entry_member(str(gone["_id"]), lat, lng)
    for r in radii:  # each radius reads another level, and finds the post in one of its cells
        keys = await _warm(services, lat, lng, r)
        assert [await services.redis.zscore(k, member) is not None for k in keys].count(True) == 1
    resp = await client.delete(f"/v1/posts/{gone['_id']}", headers=author.headers)
    assert resp.status_code == 204
    await fanned_out(services, str(gone["_id"]))
    every_level = [local_cell_key(c.name) for c in
                   (covering_grid(lat, lng, 1) or []) + [c for r in radii for c in covering_grid(lat, lng, r) or []]]
    for key in every_level:
        assert await services.redis.zscore(key, member) is None
    # removed in MongoDB, its retraction not run yet: the read drops it all the same
    await services.db.posts.update_one({"_id": stale["_id"]}, {"$set": {"status": "removed"}})
    for r in radii:
        assert _flat(await _pages(client, reader, lat, lng, r, limit=1)) == [str(keep["_id"])]


async def test_flush_then_rebuild_fills_each_level_read(client, services):
    author, reader = await register(client), await register(client)
    lat, lng = random_point()
    made = [await _located(services, author, *offset(lat, lng, 300 * i, -200 * i), f"f{i}", minutes_ago=i)
            for i in range(5)]
    want = [str(d["_id"]) for d in made]
    radii = (300, 2000, 20000)
    before = {r: _flat(await _pages(client, reader, lat, lng, r, limit=2)) for r in radii}
    assert before[20000] == want
    await services.redis.flushdb()
    for r in radii:  # cold: MongoDB answers, the same
        assert _flat(await _pages(client, reader, lat, lng, r, limit=2)) == before[r]
    levels = set()
    for r in radii:
        keys = await _warm(services, lat, lng, r)
        levels |= {k.split(":")[2] for k in keys}
        assert _flat(await _pages(client, reader, lat, lng, r, limit=2)) == before[r]
    assert len(levels) == len(radii) and levels <= {str(level) for level in GRID_LEVELS}


async def test_a_trimmed_cell_is_not_forgotten_when_a_full_cell_ties_with_the_cursor(client, services, monkeypatch):
    """Regression: a trimmed cell T whose kept entries are all newer than the cursor, beside a
    complete cell F full of entries at the cursor's very millisecond (all after it in page order).
    The first round cannot go below F's tied entries; the next rounds must still reach T's posts
    that only MongoDB holds (they were dropped with T from the later rounds, and the page ended
    empty)."""
    from feed.local import FIRST_EXTRA, read_local
    from geo.cells import grid_bounds, grid_cell, grid_level_for
    from solomo.core.pagination import Position, lookahead
    from solomo.core.timeutil import ms_of

    limit = 4
    tied = lookahead(limit) + FIRST_EXTRA  # exactly a first round's read per cell: F reads "full"
    monkeypatch.setattr(localcells, "CELL_CAP", tied)
    author = await register(client)
    lat0, lng0 = random_point()
    radius = 2000
    _, _, north, east = grid_bounds(grid_cell(lat0, lng0, grid_level_for(lat0, radius)))
    lat, lng = offset(north, east, -10, -10)  # the reader, just inside T, near its north-east corner
    in_t, in_f = offset(north, east, -300, -300), offset(north, east, 300, 300)
    newer = datetime.now(UTC) - timedelta(minutes=1)
    moment = newer - timedelta(minutes=1)

    async def located(point: tuple[float, float], created: datetime, text: str) -> str:
        store = {"_id": ObjectId(), "location": geo_point(*point)}
        doc = await build_post(services, principal(author), text, store=store, created_at=created)
        await insert_post(services, doc)
        return str(doc["_id"])

    hidden = [await located(in_t, moment, f"T at the moment {i}") for i in range(3)]  # ids below the cursor
    cursor_id = ObjectId()
    for i in range(tied):  # ids above the cursor, same millisecond
        await located(in_f, moment, f"F at the moment {i}")
    for i in range(tied):  # T's newest: they fill its cap, so its older posts are MongoDB's only
        await located(in_t, newer, f"T newer {i}")
    keys = await _warm(services, lat, lng, radius)
    states = {k: await services.redis.zscore(k, localcells.MARKER) for k in keys}
    assert localcells.TRIMMED in states.values()
    assert grid_cell(*in_t, grid_level_for(lat0, radius)) != grid_cell(*in_f, grid_level_for(lat0, radius))

    docs, _ = await read_local(services, lat, lng, radius, Position(ms_of(moment), cursor_id), limit)
    assert [str(d["_id"]) for d in docs] == sorted(hidden, reverse=True)


async def test_a_cell_member_not_of_the_entry_shape_is_skipped_not_loaded(client, services):
    author, reader = await register(client), await register(client)
    lat, lng = random_point()
    doc = await _located(services, author, lat, lng, "the one real post", minutes_ago=1)
    keys = await _warm(services, lat, lng, 500)
    newest = time.time() * 1000
    foreign = [f"{'a' * 23}|{lat!r}|{lng!r}",  # an id of the wrong length
               f"{'g' * 24}|{lat!r}|{lng!r}",  # an id of the right length, not hex
               f"{ObjectId()}|north|{lng!r}",  # a position that is not a number
               f"{ObjectId()}|{lat!r}",  # a field missing
               f"{ObjectId()}|{lat!r}|{lng!r}|more"]  # a field too many
    for key in keys:  # newer than the real post, in every covering cell
        await services.redis.zadd(key, {member: newest + i for i, member in enumerate(foreign)})
    assert _flat(await _pages(client, reader, lat, lng, 500, limit=3)) == [str(doc["_id"])]
