"""Ranked lists by *tiers*: the best kind of match first, then nearest (or oldest id), paged by the
one keyset pager.

A search defines tiers ``0..n`` of decreasing quality, each a MongoDB filter on ``search_keys`` that
holds every document of that tier (and maybe some of better tiers, or false positives), and
``tier_of(doc)``, the document's true tier decided on its text. Tier ``t`` is read in its order and
keeps only the documents whose true tier is ``t``: every document appears once, in the first
tier that truly matches it.

The position is ``(score, id)``: without a point the score is the tier and the order ``(tier, _id)``;
with a point it is ``tier * TIER_SPAN + distance in millimetres``, so the order is (tier, distance,
id). Work is bounded: at most :data:`MAX_SCAN` candidates per request; a page cut short by that
bound still carries the cursor of the last candidate read, so the client goes on from there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from geo.geojson import geo_point
from solomo.core.errors import BadRequest
from solomo.core.pagination import Collection, Position, cut_page, lookahead

TIER_SPAN = 10**11
"""Millimetres: more than half the Earth's circumference (2 * 10**10 mm), so the tier dominates."""
BATCH = 100
MAX_SCAN = 2000
_MIN_SLACK_M = 0.002  # $geoNear's minDistance a little before the position's (rounded) distance

TierOf = Callable[[dict[str, Any]], int | None]
Result = tuple[list[dict[str, Any]], Position | None]


def _and(*filters: dict[str, Any]) -> dict[str, Any]:
    parts = [f for f in filters if f]
    return parts[0] if len(parts) == 1 else {"$and": parts}


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
    want, out, scanned = lookahead(limit), [], 0
    start, _ = _split(position, geo=False, tiers=len(tiers))
    for t in range(start, len(tiers)):
        keys = tiers[t]
        if keys is None:
            continue
        last = position.id if position is not None and t == start else None
        while True:
            filt = _and(keys, extra, {"_id": {"$gt": last}} if last is not None else {})
            batch = await collection.find(filt, projection).sort("_id", 1).limit(BATCH).to_list(None)
            for doc in batch:
                scanned += 1
                last = doc["_id"]
                if tier_of(doc) == t:
                    doc["_tier"] = t
                    out.append(doc)
                    if len(out) == want:
                        return cut_page(out, limit, lambda d: Position(float(d["_tier"]), d["_id"]))
            if len(batch) < BATCH:
                break
            if scanned >= MAX_SCAN and last is not None:
                return out, Position(float(t), last)
    return out, None


async def by_distance(collection: Collection, tiers: list[dict[str, Any] | None], tier_of: TierOf, *,
                      lat: float, lng: float, radius_m: float | None, extra: dict[str, Any],
                      position: Position | None, limit: int, projection: dict[str, Any] | None = None) -> Result:
    """A page in the order (tier, distance in mm, _id); each document gets ``distance_m``."""
    want, out, scanned = lookahead(limit), [], 0
    start, start_mm = _split(position, geo=True, tiers=len(tiers))
    for t in range(start, len(tiers)):
        keys = tiers[t]
        if keys is None:
            continue
        after = (start_mm, position.id) if position is not None and t == start else None
        lo_mm, count = (start_mm if after else 0), BATCH
        while True:
            stage: dict[str, Any] = {"near": geo_point(lat, lng), "distanceField": "distance_m", "key": "location",
                                     "spherical": True, "query": _and(keys, extra)}
            if radius_m is not None:
                stage["maxDistance"] = radius_m
            if lo_mm > 0:
                stage["minDistance"] = max(0.0, lo_mm / 1000 - _MIN_SLACK_M)
            pipeline: list[dict[str, Any]] = [{"$geoNear": stage}, {"$limit": count}]
            if projection:
                pipeline.append({"$project": projection})
            rows = await (await collection.aggregate(pipeline)).to_list(None)
            full = len(rows) == count
            cands = sorted(((round(r["distance_m"] * 1000), r["_id"], r) for r in rows
                            if round(r["distance_m"] * 1000) >= lo_mm), key=lambda c: (c[0], c[1]))
            if full:
                # the batch may have cut a group of equal (rounded) distances: that group is read again
                top = cands[-1][0] if cands else lo_mm
                if not cands or cands[0][0] == top:
                    count *= 2
                    if count > MAX_SCAN:
                        raise BadRequest("too many places at one distance", code="bad_request")
                    continue
                cands = [c for c in cands if c[0] < top]
            for mm, oid, row in cands:
                if after is not None and (mm, oid) <= after:
                    continue
                scanned += 1
                after = (mm, oid)
                if tier_of(row) == t:
                    row["_score"] = t * TIER_SPAN + mm
                    out.append(row)
                    if len(out) == want:
                        return cut_page(out, limit, lambda d: Position(float(d["_score"]), d["_id"]))
            if not full:
                break
            lo_mm = top
            if scanned >= MAX_SCAN and after is not None:
                return out, Position(float(t * TIER_SPAN + after[0]), after[1])
    return out, None
