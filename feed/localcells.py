"""The local feed's cell timelines: one capped sorted set per grid cell, at every grid level.

Each located post is written into its cell at every level of :data:`geo.cells.GRID_LEVELS`
(:func:`add_post`), so a reader of any radius finds it in the few cells of the level that fits
(:mod:`feed.local`). An entry is ``<post id>|<lat>|<lng>`` scored by ``created_ms``: the post's
*public* position (the store's, or the fix snapped to the grid — what ``posts.location`` holds) rides
in the member, so a reader filters by exact distance without loading a document; the raw device
position is never stored anywhere.

A cell's marker member :data:`MARKER` tells its state (real scores are epoch milliseconds, so the
marker always has rank 0 and trimming keeps it):

* key missing — never read, expired, or lost in a Redis flush: readers go to MongoDB and queue a
  rebuild (:func:`request_rebuilds` → the ``fanout.rebuild_cells`` task → :func:`rebuild_cells`);
* :data:`BUILDING` — a rebuild is running; the fan-out already adds to it (never trims it);
* :data:`COMPLETE` — holds every visible post of the cell;
* :data:`TRIMMED` — holds every visible post of the cell down to its oldest entry only (the cap,
  :data:`CELL_CAP`, dropped older ones): a reader continues in MongoDB below that entry.

Writers only touch keys that exist (a cell nobody reads costs nothing), and a rebuild creates the
key *before* reading MongoDB, so a post is either written by the fan-out or found by the rebuild.
Keys are built from client coordinates, so they expire: :data:`CELL_TTL_S` after the last read,
:data:`EMPTY_TTL_S` after a rebuild that found nothing. Memory is bounded by the cap per cell.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from feed.nearquery import newest_in_area
from geo.cells import GridCell, grid_bounds, grid_cell, grid_cells_for_point, parse_grid_cell
from solomo.core import tasknames
from solomo.core.keys import local_cell_gen, local_cell_key, local_cell_rebuild_lock
from solomo.core.redistypes import RedisClient
from solomo.core.scripts import LuaScript
from solomo.core.services import Services
from solomo.core.timeutil import now_ms
from solomo.core.txn import send_task

CELL_CAP = 500
"""Entries kept per cell (the newest)."""
CELL_TTL_S = 86400
EMPTY_TTL_S = 120
LOCK_TTL_S = 60
"""A cell's rebuild is queued at most once in this time (the lock expires if the task is lost)."""
REBUILD_CONCURRENCY = 4

MARKER = "~"
BUILDING = 0
COMPLETE = 1
TRIMMED = 2
MIN_ENTRY_SCORE = "(2"
"""ZRANGEBYSCORE bound that excludes the marker."""

# Every change of a cell sets its generation key (:func:`~solomo.core.keys.local_cell_gen`) to a new
# random value after the change, in the same script or pipeline: a reader that holds a cell's rows
# (:mod:`feed.cellrows`) uses them only while the generation is the one it read them with.

# KEYS[1]: a cell, KEYS[2]: its generation. ARGV: score, member, cap, a new generation, its TTL.
# Adds the entry if the cell exists; a ready cell past its cap drops its oldest entries and becomes
# TRIMMED. Returns 1 when written.
_ADD = LuaScript("local_cell_add", """
local state = redis.call('ZSCORE', KEYS[1], '~')
if not state then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local cap = tonumber(ARGV[3])
if tonumber(state) > 0 and redis.call('ZCARD', KEYS[1]) > cap + 1 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(cap + 1))
  redis.call('ZADD', KEYS[1], 2, '~')
end
redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
return 1
""")

# KEYS[1]: a cell, KEYS[2]: its generation. ARGV: the member, a new generation, its TTL. Removes the
# entry; a new generation when there was one.
_REMOVE = LuaScript("local_cell_remove", """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1
""")

# KEYS[1]: a cell (BUILDING), KEYS[2]: its generation. ARGV: cap, 1 if MongoDB had more than the
# cap, ttl, a new generation, its TTL, then score, member pairs. Adds the rebuild's entries, trims to the cap
# and marks the cell COMPLETE or TRIMMED.
_FINISH = LuaScript("local_cell_finish", """
local cap = tonumber(ARGV[1])
for i = 6, #ARGV, 2 do redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1]) end
local state = ARGV[2] == '1' and 2 or 1
if tonumber(redis.call('ZSCORE', KEYS[1], '~') or 0) == 2 then state = 2 end
if redis.call('ZCARD', KEYS[1]) > cap + 1 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(cap + 1))
  state = 2
end
redis.call('ZADD', KEYS[1], state, '~')
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
return state
""")


def new_generation() -> str:
    """A cell generation no earlier life of the cell had (a reader compares them for equality)."""
    return secrets.token_hex(8)


_HEX_ID = re.compile("[0-9a-f]{24}")
"""A post id as a member writes it (``str(ObjectId)``: lower-case hex)."""


class Entry(NamedTuple):
    """One cell entry: the post's time and id, and its public position."""
    score: float
    post_id: str
    lat: float
    lng: float


def entry_member(post_id: str, lat: float, lng: float) -> str:
    """``<post id>|<lat>|<lng>``: read back by :func:`entries_in` and :func:`member_id`."""
    # repr: the shortest text that reads back as the same float, so a removal rebuilds the member
    return f"{post_id}|{lat!r}|{lng!r}"


def newest_first(sources: Sequence[Iterator[tuple[float, str]]]) -> Iterator[tuple[float, str]]:
    """The rows of ``sources`` (each ``(score, member)`` newest first) as one stream, newest first:
    ``heapq.merge(*sources, reverse=True)``, lazily, compiled (feed.localcells is in
    :data:`solomo.core.compiled.MODULES`). A page merges a handful of cells, so each row is chosen by
    one scan of the sources' heads, comparing their scores as C doubles; ``heapq.merge`` is Python
    and was ~6 % of a local page (docs/benchmarks.md, twenty-eighth round). The rows are handed on
    as the sources made them."""
    pending: list[Iterator[tuple[float, str]]] = []
    heads: list[Any] = []  # each pending source's next row
    scores: list[float] = []
    for source in sources:
        first = next(source, None)
        if first is not None:
            pending.append(source)
            heads.append(first)
            scores.append(first[0])
    while heads:
        best, best_score = 0, scores[0]
        for i in range(1, len(heads)):
            score = scores[i]
            if score > best_score or (score == best_score and heads[i] > heads[best]):
                best, best_score = i, score
        yield heads[best]
        following = next(pending[best], None)
        if following is None:
            del pending[best], heads[best], scores[best]
        else:
            heads[best] = following
            scores[best] = following[0]


def entries_in(rows: Iterator[tuple[float, str]], pos: tuple[float, str] | None, cut: tuple[float, str] | None,
               keep: Callable[[float, float], bool]) -> Iterator[Entry]:
    """The entries of ``rows`` (``(score, member)``, newest first) older than ``pos``, not older than
    ``cut``, whose position ``keep(lat, lng)`` accepts, parsed only as far as they are used; a member
    of any other shape is skipped (never trusted, never loaded).

    A local page's hot loop: one generator instead of a chain of four, and an :class:`Entry` made
    only for an entry kept (about a third of those read, on pages shaped like the benchmark's): a
    page's merge went from ~95 to ~71 µs (docs/benchmarks.md)."""
    # (score, member) bounds compared score first, as C doubles: a tuple comparison would box the row
    # again for each (mypyc keeps a typed tuple unboxed)
    cut_score, cut_member = cut if cut is not None else (-math.inf, "")
    pos_score, pos_member = pos if pos is not None else (math.inf, "")
    for row in rows:
        score = row[0]
        if score <= cut_score and (score < cut_score or row[1] < cut_member):
            return
        if score >= pos_score and (score > pos_score or row[1] >= pos_member) and pos is not None:
            continue
        parts = row[1].split("|")
        if len(parts) != 3 or len(parts[0]) != 24:
            continue
        try:
            lat, lng = float(parts[1]), float(parts[2])
        except ValueError:
            continue
        if keep(lat, lng) and _HEX_ID.fullmatch(parts[0]):  # the id's digits checked on kept entries only
            yield Entry(row[0], parts[0], lat, lng)


def member_id(member: str) -> str | None:
    """The post id a member of the entry shape starts with; None for anything else."""
    return member[:24] if member[24:25] == "|" and _HEX_ID.fullmatch(member, 0, 24) else None


def public_latlng(post: dict[str, Any]) -> tuple[float, float] | None:
    """The post's stored (public) position: ``posts.location`` never holds the raw fix."""
    loc = post.get("location")
    if not loc:
        return None
    lng, lat = loc["coordinates"]
    return float(lat), float(lng)


def post_cells(post: dict[str, Any]) -> tuple[list[str], str] | None:
    """(the cell keys of every level, the member) of a located post; None for an unlocated one."""
    point = public_latlng(post)
    if point is None:
        return None
    keys = [local_cell_key(c.name) for c in grid_cells_for_point(*point)]
    return keys, entry_member(str(post["_id"]), *point)


async def add_post(redis: RedisClient, post: dict[str, Any]) -> int:
    """Writes the post into its existing cells (one script call per cell, each its own slot, one
    pipeline); returns how many cells were written."""
    cells = post_cells(post)
    if cells is None:
        return 0
    keys, member = cells
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            _ADD.queue(pipe, [key, local_cell_gen(key)], [int(post["created_ms"]), member, CELL_CAP,
                                                           new_generation(), CELL_TTL_S])
        results = await pipe.execute()
    return sum(int(r) for r in results)


async def remove_post(redis: RedisClient, post: dict[str, Any]) -> None:
    """Removes the post from its cell at every level (one pipeline)."""
    cells = post_cells(post)
    if cells is None:
        return
    keys, member = cells
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            _REMOVE.queue(pipe, [key, local_cell_gen(key)], [member, new_generation(), CELL_TTL_S])
        await pipe.execute()


def _cell_polygon(cell: GridCell) -> dict[str, Any]:
    """The cell grown by a margin: 2dsphere edges are great circles, not parallels, so the exact
    membership test is done on each result's grid cell instead."""
    south, west, north, east = grid_bounds(cell)
    margin = (north - south) * 0.05
    south, north = max(-90.0, south - margin), min(90.0, north + margin)
    west, east = max(-180.0, west - margin), min(180.0, east + margin)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"$geoWithin": {"$geometry": {"type": "Polygon", "coordinates": [ring]}}}


async def rebuild_cell(services: Services, cell: GridCell) -> int:
    """Builds one cell's timeline from MongoDB (the newest :data:`CELL_CAP` posts, read by time
    windows); returns the number of posts found."""
    key = local_cell_key(cell.name)
    async with services.redis.pipeline(transaction=True) as pipe:
        pipe.zadd(key, {MARKER: BUILDING}, nx=True)
        pipe.expire(key, EMPTY_TTL_S)
        await pipe.execute()

    def inside(doc: dict[str, Any]) -> bool:
        point = public_latlng(doc)
        return point is not None and grid_cell(*point, cell.level) == cell

    # one more than the cap tells whether the cell is complete or trimmed
    docs = await newest_in_area(services.db, _cell_polygon(cell), None, CELL_CAP + 1, accept=inside,
                                projection={"created_ms": 1, "location": 1}, now_ms=now_ms())
    args: list[Any] = [CELL_CAP, 1 if len(docs) > CELL_CAP else 0, CELL_TTL_S if docs else EMPTY_TTL_S,
                       new_generation(), CELL_TTL_S]
    for doc in docs[:CELL_CAP]:
        point = public_latlng(doc)
        assert point is not None
        args += [int(doc["created_ms"]), entry_member(str(doc["_id"]), *point)]
    await _FINISH(services.redis, [key, local_cell_gen(key)], args)
    return min(len(docs), CELL_CAP)


async def rebuild_cells(services: Services, names: list[str]) -> int:
    """Rebuilds cells (by name) a few at a time and releases their locks; returns the posts found.
    Names that are not grid cells (a task queued by an older release) are skipped."""
    gate = asyncio.Semaphore(REBUILD_CONCURRENCY)

    async def one(name: str) -> int:
        cell = parse_grid_cell(name)
        if cell is None:
            return 0
        async with gate:
            try:
                return await rebuild_cell(services, cell)
            finally:
                await services.redis.delete(local_cell_rebuild_lock(name))

    return sum(await asyncio.gather(*(one(n) for n in names)))


async def request_rebuilds(services: Services, cells: list[GridCell]) -> list[str]:
    """Queues one background rebuild for the cells not already queued; returns the names queued."""
    names = [c.name for c in cells]
    async with services.redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.set(local_cell_rebuild_lock(name), "1", nx=True, ex=LOCK_TTL_S)
        taken = await pipe.execute()
    mine = [name for name, ok in zip(names, taken, strict=True) if ok]
    if mine and not await send_task(services, tasknames.REBUILD_CELLS, mine):
        # the read is served anyway; the next one queues again
        async with services.redis.pipeline(transaction=False) as pipe:
            for name in mine:
                pipe.delete(local_cell_rebuild_lock(name))
            await pipe.execute()
        return []
    return mine
