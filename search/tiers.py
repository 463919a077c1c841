"""Ranked lists by *tiers*: the best kind of match first, then nearest (or oldest id), paged by the
one keyset pager.

A search defines tiers ``0..n`` of decreasing quality, each a MongoDB filter on ``search_keys`` that
holds every document of that tier (and maybe some of better tiers, or false positives), and
``tier_of(doc)``, the document's true tier decided on its text. Tier ``t`` is read in its order and
keeps only the documents whose true tier is ``t``: every document appears once, in the first
tier that truly matches it. When the filters are exact (each holds just its tier's documents)
``tier_of`` is None: nothing is checked, and each tier is asked for only the rows the page still
needs (plus one, see :meth:`_Near.candidates`), not a :data:`BATCH`.

The position is ``(score, id)``: without a point the score is the tier and the order ``(tier, _id)``;
with a point it is ``tier * TIER_SPAN + distance in millimetres``, so the order is (tier, distance,
id). Work is bounded: at most :data:`MAX_SCAN` candidates per request; a page cut short by that
bound still carries the cursor of the last candidate read, so the client goes on from there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from geo.geojson import geo_point
from solomo.core.errors import BadRequest
from solomo.core.pagination import Collection, Position, cut_page, lookahead

TIER_SPAN = 10**11
"""Millimetres: more than half the Earth's circumference (2 * 10**10 mm), so the tier dominates."""
BATCH = 100
MAX_SCAN = 2000
_GROUP_M = 0.0006  # the annulus holding every distance that rounds to one millimetre

TierOf = Callable[[dict[str, Any]], int | None] | None
Result = tuple[list[dict[str, Any]], Position | None]


def and_(*filters: dict[str, Any]) -> dict[str, Any]:
    parts = [f for f in filters if f]
    return parts[0] if len(parts) == 1 else {"$and": parts}


def geo_score(tier: int, mm: int) -> int:
    """A nearest-first row's score: its tier, then its distance in millimetres."""
    return tier * TIER_SPAN + mm


def position_of(row: dict[str, Any]) -> Position:
    return Position(float(row["_score"]), row["_id"])


def _split(position: Position | None, *, geo: bool, tiers: int) -> tuple[int, int]:
    """(tier, millimetres) of a position; 400 ``invalid_cursor`` for one this list never issued."""
    if position is None:
        return 0, 0
    score = int(position.score)
    tier, mm = divmod(score, TIER_SPAN) if geo else (score, 0)
    if score != position.score or not 0 <= tier < tiers:
        raise BadRequest("cursor is not valid", code="invalid_cursor")
    return tier, mm


async def by_id(collection: Collection, tiers: list[dict[str, Any] | None], tier_of: TierOf, *,
                extra: dict[str, Any], position: Position | None, limit: int,
                projection: dict[str, Any] | None = None) -> Result:
    """A page in the order (tier, _id)."""
    want, scanned = lookahead(limit), 0
    out: list[dict[str, Any]] = []
    start, _ = _split(position, geo=False, tiers=len(tiers))
    for t in range(start, len(tiers)):
        keys = tiers[t]
        if keys is None:
            continue
        last = position.id if position is not None and t == start else None
        while True:
            filt = and_(keys, extra, {"_id": {"$gt": last}} if last is not None else {})
            size = BATCH if tier_of is not None else want - len(out)
            batch = await collection.find(filt, projection).sort("_id", 1).limit(size).to_list(None)
            for doc in batch:
                scanned += 1
                last = doc["_id"]
                if tier_of is None or tier_of(doc) == t:
                    doc["_tier"] = t
                    out.append(doc)
                    if len(out) == want:
                        return cut_page(out, limit, lambda d: Position(float(d["_tier"]), d["_id"]))
            if len(batch) < size:
                break
            if scanned >= MAX_SCAN and last is not None:
                return out, Position(float(t), last)
    return out, None


async def by_distance(collection: Collection, tiers: list[dict[str, Any] | None], tier_of: TierOf, *,
                      lat: float, lng: float, radius_m: float | None, extra: dict[str, Any],
                      position: Position | None, limit: int, projection: dict[str, Any] | None = None) -> Result:
    """A page in the order (tier, distance in mm, _id); each document gets ``distance_m``."""
    want, scanned = lookahead(limit), 0
    out: list[dict[str, Any]] = []
    if tier_of is None and position is None:
        page = await _first_page(collection, tiers, lat=lat, lng=lng, radius_m=radius_m, extra=extra,
                                  want=want, projection=projection)
        if page is not None:
            return cut_page(page, limit, position_of)
    start, start_mm = _split(position, geo=True, tiers=len(tiers))
    for t in range(start, len(tiers)):
        keys = tiers[t]
        if keys is None:
            continue
        near = _Near(collection, and_(keys, extra), lat, lng, radius_m, projection)
        after = (start_mm, position.id) if position is not None and t == start else None
        first = BATCH if tier_of is not None else want - len(out) + 1
        async for mm, oid, row in near.candidates(after, first):
            scanned += 1
            if tier_of is None or tier_of(row) == t:
                row["_score"] = geo_score(t, mm)
                out.append(row)
                if len(out) == want:
                    return cut_page(out, limit, position_of)
            if scanned >= MAX_SCAN:
                return out, Position(float(t * TIER_SPAN + mm), oid)
    return out, None


NEAR_INDEX = "search_keys_location"
"""The ``(search_keys, location 2dsphere)`` index (:mod:`search.indexes`) every nearest-first read walks."""


def near_find(query: dict[str, Any], lat: float, lng: float, *, min_m: float = 0.0,
              max_m: float | None = None, projection: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``find`` arguments of a nearest-first read: ``filter`` (``query`` and a ``$nearSphere``
    on ``location``), ``projection`` (with ``distance_m``, MongoDB's own distance in metres: the same
    value ``$geoNear`` gives) and the ``hint``.

    ``find`` rather than an aggregation's ``$geoNear``: a ``find`` limit stops the search once it
    has that many rows, while ``$geoNear`` followed by ``$limit`` went on filling its batch — on
    100,000 stores a 22-row page examined 98-167 documents as a ``find`` against 516-720 with
    ``$geoNear`` (explain), 1.0 against 2.6 ms of mongod CPU (docs/benchmarks.md)."""
    near: dict[str, Any] = {"$geometry": geo_point(lat, lng)}
    if max_m is not None:
        near["$maxDistance"] = max_m
    if min_m > 0:
        near["$minDistance"] = min_m
    return {"filter": {**query, "location": {"$nearSphere": near}},
            "projection": {**(projection or {}), "distance_m": {"$meta": "geoNearDistance"}},
            "hint": NEAR_INDEX}


async def _nearest(collection: Collection, query: dict[str, Any], lat: float, lng: float, *, limit: int,
                   min_m: float = 0.0, max_m: float | None = None, projection: dict[str, Any] | None = None,
                   by_id: bool = False) -> list[dict[str, Any]]:
    args = near_find(query, lat, lng, min_m=min_m, max_m=max_m, projection=projection)
    cursor = collection.find(args["filter"], args["projection"], hint=args["hint"])
    if by_id:  # a thin annulus: only the stores at one distance (give or take a millimetre)
        cursor = cursor.sort("_id", 1)
    return await cursor.limit(limit).to_list(None)


async def _first_page(collection: Collection, tiers: list[dict[str, Any] | None], *, lat: float, lng: float,
                      radius_m: float | None, extra: dict[str, Any], want: int,
                      projection: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The first ``want`` rows of exact tiers, or None when a tie of distances makes them uncertain
    (then the general walk decides).

    Tier after tier, each read nearest first for the rows still missing plus one, until ``want + 1``
    rows are in: the tiers after them are never searched (a query's tier 0, the name prefix, is
    usually empty and costs one index key). MongoDB orders by exact distance, the page by
    (millimetres, id): the rows are final unless the row after the page is in the page's last tier
    at the same millimetre (its group may go on unread)."""
    rows: list[dict[str, Any]] = []
    for t, keys in enumerate(tiers):
        if keys is None:
            continue
        found = await _nearest(collection, and_(keys, extra), lat, lng, limit=want + 1 - len(rows),
                               max_m=radius_m, projection=projection)
        for row in found:
            row["_score"] = geo_score(t, _mm(row))
        rows += found
        if len(rows) > want:
            break
    if len(rows) > want and rows[want]["_score"] == rows[want - 1]["_score"]:
        return None
    return sorted(rows, key=lambda r: (r["_score"], r["_id"]))


def _mm(row: dict[str, Any]) -> int:
    return round(float(row["distance_m"]) * 1000)


class _Near:
    """One tier's documents nearest first, in the exact order (mm, _id), from ``$nearSphere``."""

    def __init__(self, collection: Collection, query: dict[str, Any], lat: float, lng: float,
                 radius_m: float | None, projection: dict[str, Any] | None) -> None:
        self.collection, self.query, self.lat, self.lng = collection, query, lat, lng
        self.radius_m, self.projection = radius_m, projection

    async def _read(self, min_m: float, max_m: float | None, *, after_id: Any = None, by_id: bool = False,
                    limit: int | None = None) -> list[dict[str, Any]]:
        query = and_(self.query, {"_id": {"$gt": after_id}} if after_id is not None else {})
        return await _nearest(self.collection, query, self.lat, self.lng, limit=limit or BATCH, min_m=min_m,
                              max_m=max_m, projection=self.projection, by_id=by_id)

    async def candidates(self, after: tuple[int, Any] | None,
                         first: int = BATCH) -> AsyncIterator[tuple[int, Any, dict[str, Any]]]:
        """(mm, id, document) strictly after ``after``, in order; the first read asks for ``first`` rows.

        ``$nearSphere`` orders by exact distance and its limit may cut a group of equal (rounded)
        distances anywhere: a full batch yields only the distances below its last one, and that
        last distance's group is then read whole, in id order, through a thin annulus. A caller
        needing ``n`` rows passes ``first = n + 1``: unless the last two rows share a millimetre
        (or the cursor's own group is skipped), the ``n`` come from one read and the annulus is
        never read, since a caller stops once served."""
        lo_mm, count = (after[0] if after else 0), max(2, first)
        while True:
            # from just below the distances that round to lo_mm (the float error is far below a mm)
            rows = await self._read(max(0.0, (lo_mm - 0.5) / 1000 - 1e-9), self.radius_m, limit=count)
            cands = sorted((c for c in ((_mm(r), r["_id"], r) for r in rows) if c[0] >= lo_mm),
                           key=lambda c: (c[0], c[1]))
            full = len(rows) == count
            if full and not cands:  # only a group sitting exactly on the half millimetre below lo_mm
                if count >= MAX_SCAN:
                    return
                count *= 2
                continue
            count = BATCH
            top = cands[-1][0] if full and cands else None
            for c in cands:
                if (top is None or c[0] < top) and (after is None or (c[0], c[1]) > after):
                    yield c
            if top is None:
                return
            last_id = after[1] if after is not None and after[0] == top else None
            while True:
                max_m = top / 1000 + _GROUP_M
                group = await self._read(max(0.0, top / 1000 - _GROUP_M),
                                         max_m if self.radius_m is None else min(self.radius_m, max_m),
                                         after_id=last_id, by_id=True)
                for row in group:
                    if _mm(row) == top:
                        yield top, row["_id"], row
                if len(group) < BATCH:
                    break
                last_id = group[-1]["_id"]
            lo_mm, after = top + 1, None
