"""Local feeds: located posts within a radius of a point, newest first, with the contract's cursor.

A page is read from the few cells of the grid level that fits the radius (:func:`geo.cells.covering_grid`:
at most 12 cells in practice, 16 allowed) in one Redis pipeline: each cell's newest entries below the
cursor (``ZREVRANGEBYSCORE … LIMIT``), with its state. The entries are merged by time and filtered
by exact distance on the public position each entry carries (:mod:`feed.localcells`), then the
documents of the page's posts are loaded in one query, which also drops any post removed since the
fan-out wrote it. When the filters leave the page short, the next round reads deeper (twice as many
per cell, at most :data:`MAX_ROUNDS`); a short page after that still carries a cursor.

A merge is trusted only down to the *cut*: the newest of the last entries of the cells that
returned all they were asked for (older entries of another cell may still be unread), and the
oldest entry of any TRIMMED cell that ran out (older posts of that cell were dropped by its cap).
Past a TRIMMED cell's end the page continues from MongoDB (:func:`feed.nearquery.newest_in_area`:
the 2dsphere index bounded by the cursor and a time window, with a limit) — never a scan of the
whole circle. A cold area (a covering cell missing or being rebuilt) is served the same way, and
its cells are rebuilt in the background; so is a circle needing more than 16 cells (near a pole).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from typing import Any

from bson import ObjectId

from feed.blocks import Screen
from feed.cellrows import CELL_ROWS, HeldRows
from feed.localcells import (
    CELL_CAP,
    CELL_TTL_S,
    COMPLETE,
    MARKER,
    MIN_ENTRY_SCORE,
    TRIMMED,
    Entry,
    entries_in,
    member_id,
    newest_first,
    public_latlng,
    request_rebuilds,
)
from feed.nearquery import newest_in_area
from feed.paging import Loader, post_position
from feed.posts import VISIBLE
from geo.cells import covering_grid
from geo.distance import EARTH_MEAN_RADIUS_M, fast_m
from solomo.core.keys import local_cell_gen, local_cell_key
from solomo.core.pagination import Position, cut_page, lookahead
from solomo.core.services import Services
from solomo.core.timeutil import now_ms
from solomo.core.ttlrefresh import queue_expire

MAX_ROUNDS = 5
"""Cell rounds per page (a cell full of removed posts cannot make one request read forever)."""
FIRST_EXTRA = 0
"""Entries read per cell in the first round beyond the page. Measured on the benchmark's city
(100,000 posts, 2 km pages): with none, no page needed a second round, and a page read 142
entries instead of 214 with 12 extra, for ~7 % less CPU a page (docs/benchmarks.md)."""
MAX_BATCH = 200
"""The most entries one load of a page reads (loads after skips double up to it)."""
MONGO_SLACK = 1.001
"""MongoDB's circle is widened a little; the same exact test as the cells' then decides."""

M_PER_DEG = math.radians(EARTH_MEAN_RADIUS_M)
"""Metres per degree of a great circle on the haversine's sphere."""
M2_PER_DEG2 = M_PER_DEG * M_PER_DEG
Key = tuple[float, str]
"""(created_ms, post id hex): the feed's order (hex ids sort like the ids)."""


class Circle:
    def __init__(self, lat: float, lng: float, radius_m: float, screen: Screen | None = None) -> None:
        self.lat, self.lng, self.radius_m = lat, lng, radius_m
        self.screen = screen  # read (screen.ready()) before holds_post is asked
        # the flat estimate's bands (squared metres) and its bound on latitude (degrees): see holds
        self._inner2 = max(0.0, radius_m * 0.98 - 1.0) ** 2
        self._outer2 = (radius_m * 1.02 + 1.0) ** 2
        self._dlat_max = radius_m * 1.02 / M_PER_DEG

    def holds(self, lat: float, lng: float) -> bool:
        """Within the radius by the haversine distance; a flat estimate settles the clear cases
        first (it is within a percent of the haversine for the distances read from a cell)."""
        dlat = lat - self.lat
        if dlat > self._dlat_max or dlat < -self._dlat_max:
            return False
        dlng = (lng - self.lng + 180.0) % 360.0 - 180.0
        x = dlng * math.cos(math.radians((lat + self.lat) * 0.5))
        flat2 = (dlat * dlat + x * x) * M2_PER_DEG2
        if flat2 < self._inner2:
            return True
        if flat2 > self._outer2:
            return False
        return fast_m(self.lat, self.lng, lat, lng) <= self.radius_m

    def holds_post(self, doc: dict[str, Any]) -> bool:
        point = public_latlng(doc)
        return (doc.get("status") == VISIBLE and point is not None and self.holds(*point)
                and not (self.screen is not None and self.screen.hides(doc)))

    def area(self) -> dict[str, Any]:
        radians = self.radius_m * MONGO_SLACK / EARTH_MEAN_RADIUS_M + 1 / EARTH_MEAN_RADIUS_M
        return {"$geoWithin": {"$centerSphere": [[self.lng, self.lat], radians]}}


async def read_local(services: Services, lat: float, lng: float, radius_m: float, before: Position | None,
                     limit: int, load: Loader | None = None,
                     screen: Screen | None = None) -> tuple[list[dict[str, Any]], Position | None]:
    """(documents for the page, position for next_cursor or None). ``load`` loads the posts the cells
    name (a :class:`feed.hydrate.PageLoader`'s ``load``: the post cache); MongoDB by id without it.
    ``screen``: the viewer's blocked and muted authors, left out while collecting."""
    circle = Circle(lat, lng, radius_m, screen)
    want = lookahead(limit)
    cells = covering_grid(lat, lng, radius_m)
    if cells is None:
        return cut_page(await _from_mongo(services, circle, before, want), limit, post_position)
    keys = [local_cell_key(c.name) for c in cells]
    per_cell = min(CELL_CAP, want + FIRST_EXTRA)
    states, first_rows = await _first_rows(services, keys, before, per_cell)
    if any(s not in (COMPLETE, TRIMMED) for s in states):
        await request_rebuilds(services, [c for c, s in zip(cells, states, strict=True)
                                          if s not in (COMPLETE, TRIMMED)])
        return cut_page(await _from_mongo(services, circle, before, want), limit, post_position)
    trimmed = [s == TRIMMED for s in states]
    return await _merge_pages(services, circle, keys, trimmed, first_rows, before, per_cell, limit, load)


async def _first_rows(services: Services, keys: list[str], before: Position | None,
                      per_cell: int) -> tuple[list[int | None], list[Any]]:
    """Each cell's state and its newest ``per_cell`` rows below ``before``, in one pipeline. A first
    page's rows of a ready cell come from the process's memo while the cell's generation is the
    one they were read with (:mod:`feed.cellrows`); only their generations are read then."""
    now = time.monotonic()
    held = [None if before is not None else CELL_ROWS.get(key, now) for key in keys]
    held = [h if h is not None and h.count == per_cell else None for h in held]

    def queue(pipe: Any) -> None:
        for key, h in zip(keys, held, strict=True):
            pipe.zscore(key, MARKER)
            pipe.get(local_cell_gen(key))  # before the rows: a change between the two reads as a change
            if h is None:
                _queue_rows(pipe, key, before, per_cell)
        for key in keys:  # a read keeps its cells (a missing key stays missing)
            queue_expire(pipe, key, CELL_TTL_S)
            queue_expire(pipe, local_cell_gen(key), CELL_TTL_S)

    replies = await services.batch.run(queue)
    states: list[int | None] = []
    rows: list[Any] = []
    stale: list[int] = []
    at = 0
    for i, (key, h) in enumerate(zip(keys, held, strict=True)):
        state, generation = replies[at], replies[at + 1]
        states.append(None if state is None else int(state))
        at += 2
        if h is None:
            rows.append(replies[at])
            at += 1
            _keep(key, states[i], generation, before, per_cell, rows[i], now)
        elif generation is not None and generation == h.generation:
            rows.append(h.rows)
        else:  # the cell changed: its rows again (a second round trip, only after a change)
            CELL_ROWS.drop(key)
            rows.append(None)
            stale.append(i)
    if stale:
        def queue_stale(pipe: Any) -> None:
            for i in stale:
                pipe.get(local_cell_gen(keys[i]))
                _queue_rows(pipe, keys[i], before, per_cell)

        again = await services.batch.run(queue_stale)
        for j, i in enumerate(stale):
            rows[i] = again[2 * j + 1]
            _keep(keys[i], states[i], again[2 * j], before, per_cell, rows[i], now)
    return states, rows


def _keep(key: str, state: int | None, generation: Any, before: Position | None, count: int, rows: Any,
          now: float) -> None:
    """Holds a ready cell's rows read for a first page, under the generation read before them."""
    if before is None and generation is not None and state in (COMPLETE, TRIMMED):
        CELL_ROWS.put(key, HeldRows(str(generation), count, rows, now))


def _queue_rows(pipe: Any, key: str, before: Position | None, count: int) -> None:
    """Queues a cell's newest ``count`` entries below ``before``; the reply is flat text, member and
    score alternating (:func:`_rows`). Sent as a raw command: redis-py's ``withscores`` pairing and
    float conversion of a page's ~300 entries, converted again here, were 6 % of a page's CPU."""
    top = "+inf" if before is None else repr(before.score)  # inclusive: ties are sorted out by id
    pipe.execute_command("ZREVRANGEBYSCORE", key, top, MIN_ENTRY_SCORE, "WITHSCORES", "LIMIT", 0, count)


def _count(flat: list[Any]) -> int:
    """How many entries a :func:`_queue_rows` reply holds."""
    return len(flat) if flat and isinstance(flat[0], list) else len(flat) // 2


def _last(flat: list[Any]) -> Key:
    """The oldest entry of a non-empty :func:`_queue_rows` reply, as a :data:`Key`. A member not of
    the entry shape (never written by us: never trusted) is passed over for the one before it, a
    newer key, which trusts less of the merge, never more; :data:`TOP` when none is."""
    nested = isinstance(flat[0], list)  # a RESP3 client's pairs; ours (RESP2) alternate member and score
    for i in range(len(flat) - 1, -1, -1) if nested else range(len(flat) - 2, -1, -2):
        member, score = flat[i] if nested else (flat[i], flat[i + 1])
        post_id = member_id(_text(member))
        if post_id is not None:
            return float(score), post_id
    return TOP


def _rows(flat: list[Any]) -> Iterator[tuple[float, str]]:
    """A :func:`_queue_rows` reply's ``(score, member)`` pairs, newest first, each converted only when
    the merge reaches it (in C: ``zip`` and ``map``): a page uses a few dozen of the ~150 entries its
    cells return, and converting all of them (then sorting them) was 12 % of a page's CPU."""
    if flat and isinstance(flat[0], list):  # a RESP3 client's nested pairs (ours speak RESP2)
        return ((float(score), _text(member)) for member, score in flat)
    if flat and not isinstance(flat[0], str):  # a client that does not decode (ours do)
        return ((float(flat[i + 1]), _text(flat[i])) for i in range(0, len(flat), 2))
    return zip(map(float, flat[1::2]), flat[0::2], strict=True)


async def _merge_pages(services: Services, circle: Circle, keys: list[str], trimmed: list[bool],
                       first_rows: list[Any], before: Position | None, per_cell: int,
                       limit: int, load: Loader | None) -> tuple[list[dict[str, Any]], Position | None]:
    want = lookahead(limit)
    results: list[dict[str, Any]] = []
    pos: Key | None = None if before is None else (before.score, str(before.id))
    active = list(range(len(keys)))
    rows_of: dict[int, Any] = dict(enumerate(first_rows))
    for round_no in range(MAX_ROUNDS):
        if round_no:
            def queue_round(pipe: Any, cells: list[int] = active, at: Position | None = _position(pos),
                            count: int = per_cell) -> None:
                for i in cells:
                    _queue_rows(pipe, keys[i], at, count)

            rows_of = dict(zip(active, await services.batch.run(queue_round), strict=True))
        full_frontier: Key | None = None  # newest last entry of a cell that may hold more
        trimmed_floor: Key | None = None  # oldest entry of a trimmed cell that ran out
        oldest: dict[int, Key] = {}
        full: set[int] = set()
        for i in active:
            count = _count(rows_of[i])
            if count:
                oldest[i] = _last(rows_of[i])
            if count >= per_cell:
                full.add(i)
                full_frontier = max(oldest[i], full_frontier or oldest[i])
            elif trimmed[i]:
                # (a trimmed cell left empty by removals knows nothing: MongoDB from the top)
                last = oldest.get(i)
                floor = last if last is not None and (pos is None or last < pos) else (pos or TOP)
                trimmed_floor = max(floor, trimmed_floor or floor)
        cut = max((k for k in (full_frontier, trimmed_floor) if k is not None), default=None)
        # each cell's reply is newest first, and (score, member) sorts like (score, id): the member
        # starts with the 24-digit id; so the merge is lazy, and stops at the cut
        merged = newest_first([_rows(rows_of[i]) for i in active])
        near = entries_in(merged, pos, cut, circle.holds)
        size = 0
        while len(results) < want:
            # usually once: only posts removed since their fan-out wrote them, or hidden authors, make it
            # go again, and then with twice as many entries each time (bounded: a few round trips)
            size = max(want - len(results), min(size * 2, MAX_BATCH))
            batch = list(itertools.islice(near, size))
            if not batch:
                break
            results += await _load_visible(services, circle, batch, load)
        if len(results) >= want:
            break
        if cut is not None and cut == trimmed_floor:
            # below the oldest entry of a trimmed cell the cells are incomplete: MongoDB, one bounded query
            results += await _from_mongo(services, circle, _position(cut), want - len(results))
            break
        if cut is None:
            break  # every cell read to its end: the end of the feed
        # a cell stays in the next round if it may hold entries older than the cut; a trimmed cell
        # always does: below its floor only MongoDB knows its posts, and a cut above that floor
        # (a full cell whose entries all tie with the cursor's millisecond) must not forget it
        active = [i for i in active if i in full or trimmed[i] or (i in oldest and oldest[i] < cut)]
        pos = cut if pos is None else min(cut, pos)  # never back up (ties: the next round reads more)
        per_cell = min(CELL_CAP, per_cell * 2)
    else:
        # rounds exhausted with a short page: a cursor to carry on from where the scan stopped
        return results, _position(pos)
    return cut_page(results, limit, post_position)


def _text(member: Any) -> str:
    return member.decode() if isinstance(member, bytes) else str(member)


TOP: Key = (float("inf"), "")
"""Above every entry: a merge cut here trusts nothing of the cells."""


def _position(key: Key | None) -> Position | None:
    return None if key is None or key == TOP else Position(key[0], ObjectId(key[1]))


async def _load_visible(services: Services, circle: Circle, entries: list[Entry],
                        load: Loader | None) -> list[dict[str, Any]]:
    """The documents (or cached views) of ``entries`` in their order, keeping those still visible and
    within the circle (a post removed after its fan-out is dropped here: the post cache is invalidated
    by every committed change, MongoDB is read on a miss)."""
    if not entries:
        return []
    ids = [ObjectId(e.post_id) for e in entries]
    if load is not None:
        docs = await load(ids)
    else:
        docs = {d["_id"]: d async for d in services.db.posts.find({"_id": {"$in": ids}})}
    if circle.screen is not None:
        await circle.screen.ready()  # no round trip when the loader's pipeline read it already
    return [d for oid in ids if (d := docs.get(oid)) is not None and circle.holds_post(d)]


async def _from_mongo(services: Services, circle: Circle, before: Position | None,
                      count: int) -> list[dict[str, Any]]:
    if circle.screen is not None:
        await circle.screen.ready()
    return await newest_in_area(services.db, circle.area(), before, count, accept=circle.holds_post,
                                now_ms=now_ms())
