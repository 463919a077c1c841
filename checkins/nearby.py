"""Stores near a point, nearest first, paged by ``(distance, id)``.

MongoDB's ``$geoNear`` streams stores in distance order but leaves the order of stores at exactly
the same distance (several shops at one address) unspecified. A page is therefore defined in the
total order ``(distance_m, _id)``:

* the next page starts at ``minDistance`` = the cursor's distance and drops the stores at that
  very distance whose id is not greater than the cursor's;
* when a group of equal distances straddles the page boundary, the group is re-read in id order
  (a thin ``$geoNear`` annulus around that distance) so no store is skipped or repeated.

The rows read are then cut like every list's (:func:`solomo.core.pagination.cut_page`).

Distances are MongoDB's spherical ones (what the ordering uses), so ``distance_m`` always grows
down the list; they are within about 0.5 % of the geodesic.

Radii up to :data:`INDEX_MAX_RADIUS_M` are answered from the Redis GEO index
(:mod:`checkins.geoindex`) when it is ready: ``GEOSEARCH … ASC COUNT c`` gives the ``c`` nearest
members by Redis's own distance, which differs from the exact spherical one (computed here from the
member's exact position, with MongoDB's Earth radius) by the ratio of the two radii ``K`` and at most
``SLACK_M`` of geohash rounding (:mod:`geo.reach`). So when the reply was cut at ``c`` members and its
last one is at Redis distance ``D``, every store left out is at least ``(D - SLACK_M) / K`` away exactly: the
candidates nearer than that are complete and are ordered, cut at the cursor and paged exactly like
MongoDB's rows; if fewer than a page remain, ``c`` doubles. The first search asks for a circle a
little wider than the last first page of the set reached (:mod:`geo.reach`: Redis's cost is the
members within the circle, not the ``c`` it returns), which a reply not cut by ``COUNT`` covers
completely; a page short of it searches twice the circle. The page's stores then come from the
store cache (:mod:`checkins.storeviews`: MongoDB's documents, dropped at every change), which also
drops members whose store does not exist. Larger radii (``GEOSEARCH`` scans every member in the circle) stay on MongoDB.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

from bson import ObjectId

from checkins import geoindex, storeviews
from geo import reach
from geo.geojson import geo_point
from solomo.core.pagination import Position, after_filter, cut_page, lookahead

if TYPE_CHECKING:
    from solomo.core.services import Services

RADIUS_DEFAULT_M = 1000.0
RADIUS_MAX_M = 50_000.0
_ANNULUS_M = 0.001  # distances of co-located stores are bit-identical; this only widens the index scan
INDEX_MAX_RADIUS_M = 5000.0
SPARE_HITS = 8
"""Members asked for beyond a page's rows: the nearest ones within Redis's rounding of the last are
not surely complete (see the module), and a moved store's old member is dropped. Was twice the
page: parsing and measuring the extra members was a tenth of a page's CPU, and doubling ``COUNT``
still covers a short reply."""


MAX_COUNT = 4096
"""A page whose stores the index keeps missing (members of stores gone) past this ``COUNT`` is read
from MongoDB."""
REACH = reach.Reach()
"""How far the last first page of each index set reached (:mod:`geo.reach`): the first circle."""


class StorePage(NamedTuple):
    docs: list[dict[str, Any]]
    """Store views (:mod:`checkins.storeviews`), each with ``distance_m``."""
    after: Position | None
    """The position after them, or None."""
    names_generation: Any = storeviews.NAMES_NOT_READ
    """The summaries' generation read with the views, for :func:`checkins.stores.hydrate_stores`."""


def _geo_near(lat: float, lng: float, *, min_m: float, max_m: float, category: str | None) -> dict[str, Any]:
    stage: dict[str, Any] = {
        "near": geo_point(lat, lng),
        "distanceField": "distance_m",
        "key": "location",
        "spherical": True,
        "maxDistance": max_m,
    }
    if min_m > 0:
        stage["minDistance"] = max(0.0, min_m)
    if category is not None:
        stage["query"] = {"category": category}
    return {"$geoNear": stage}


def _after(position: Position | None) -> list[dict[str, Any]]:
    after = after_filter("distance_m", position, descending=False)
    return [{"$match": after}] if after else []


async def nearby_stores(
    services: Services,
    lat: float,
    lng: float,
    *,
    radius_m: float = RADIUS_DEFAULT_M,
    category: str | None = None,
    limit: int = 20,
    after: Position | None = None,
) -> StorePage:
    """One page of store views (:mod:`checkins.storeviews`: ids as text; each with ``distance_m``),
    the position after it (or None), and the summaries' generation read with the views."""
    radius_m = min(float(radius_m), RADIUS_MAX_M)
    if radius_m <= INDEX_MAX_RADIUS_M and geoindex.covers(lat, reach.redis_m(radius_m)):
        count = lookahead(limit) + SPARE_HITS
        searched_m = REACH.first(_reach_key(category), radius_m, after.score if after is not None else 0.0)
        hits = await geoindex.search_if_usable(services, category, lat, lng, reach.redis_m(searched_m), count)
        if hits is not None:
            return await _from_index(services, lat, lng, radius_m=radius_m, category=category, limit=limit,
                                     after=after, first=(count, searched_m, hits))
    return await _from_mongo(services, lat, lng, radius_m=radius_m, category=category, limit=limit, after=after)


async def _from_index(services: Services, lat: float, lng: float, *, radius_m: float, category: str | None,
                      limit: int, after: Position | None,
                      first: tuple[int, float, list[geoindex.Hit]] | None = None) -> StorePage:
    """The page from the index; ``first`` is a search already made (its ``COUNT``, the exact radius
    it searched, its reply)."""
    key = _reach_key(category)
    count, searched_m, hits = first or (lookahead(limit) + SPARE_HITS,
                                        REACH.first(key, radius_m, after.score if after is not None else 0.0), None)
    while True:
        if hits is None:
            hits = await geoindex.search(services, category, lat, lng, reach.redis_m(searched_m), count)
        # only the candidates nearer than this are surely all there (cut by COUNT, or by the circle)
        complete_below = reach.complete_below(len(hits), count, hits[-1][1] if hits else None, searched_m,
                                              radius_m)
        # ids stay text until a row is kept: hex order is ObjectId order
        after_key = (after.score, str(after.id)) if after is not None else None
        rows = [row for row in geoindex.measured(lat, lng, hits)
                if row[0] <= radius_m and row[0] < complete_below and (after_key is None or row[:2] > after_key)]
        rows.sort()
        page, generation = await _documents(services, rows, lookahead(limit), category)
        if len(page) == lookahead(limit) or complete_below == math.inf:
            if after is None:  # how far a first page reaches: where the next one looks first
                REACH.learn(key, page[-1]["distance_m"] if len(page) == lookahead(limit) else radius_m)
            return StorePage(*cut_page(page, limit, _position), generation)
        wider = reach.widen(len(hits), count, searched_m, radius_m, MAX_COUNT)
        if wider is None:
            return await _from_mongo(services, lat, lng, radius_m=radius_m, category=category, limit=limit,
                                     after=after)
        (count, searched_m), hits = wider, None


def _reach_key(category: str | None) -> str:
    return category or ""


async def _documents(services: Services, rows: list[tuple[float, str, float, float]],
                     want: int, category: str | None) -> tuple[list[dict[str, Any]], Any]:
    """The cached views (:mod:`checkins.storeviews`) of the first ``want`` rows whose store exists
    *at the member's position* (and in ``category``), in row order, with ``distance_m``: an edited
    store's old member (left until its edit has committed, :func:`checkins.geoindex.moved`) is not
    the store any more. Also the summaries' generation, read with the first views."""
    out: list[dict[str, Any]] = []
    generation: Any = storeviews.NAMES_NOT_READ
    start = 0
    while len(out) < want and start < len(rows):
        chunk = rows[start:start + want - len(out)]
        start += len(chunk)
        ids = [ObjectId(row[1]) for row in chunk]
        if generation is storeviews.NAMES_NOT_READ:
            views, generation = await storeviews.load_with_names(services, ids)
        else:
            views = await storeviews.load(services, ids)
        out += [{**views[oid], "distance_m": d} for oid, (d, _, slat, slng) in zip(ids, chunk, strict=True)
                if oid in views and storeviews.position_of(views[oid]) == (slat, slng)
                and (category is None or views[oid]["category"] == category)]
    return out, generation


async def _from_mongo(services: Services, lat: float, lng: float, *, radius_m: float, category: str | None,
                      limit: int, after: Position | None) -> StorePage:
    start = after.score - _ANNULUS_M if after else 0.0
    pipeline = [_geo_near(lat, lng, min_m=start, max_m=radius_m, category=category), *_after(after),
                {"$limit": lookahead(limit)}, {"$project": storeviews.PAGE_PROJECTION}]
    rows = sorted(await (await services.db.stores.aggregate(pipeline)).to_list(None), key=_order)
    if len(rows) > limit and rows[limit]["distance_m"] == rows[limit - 1]["distance_m"]:
        # equal distances straddle the page boundary: $geoNear may have cut that group anywhere, so
        # it is re-read in id order (sorting only permutes equal distances: the boundary is the same)
        boundary = rows[limit]["distance_m"]
        rows = [r for r in rows if r["distance_m"] < boundary]
        ties = [
            _geo_near(lat, lng, min_m=boundary - _ANNULUS_M, max_m=min(radius_m, boundary + _ANNULUS_M),
                      category=category),
            {"$match": {"distance_m": boundary}},
            *_after(after),
            {"$sort": {"_id": 1}},
            {"$limit": lookahead(limit) - len(rows)},
            {"$project": storeviews.PAGE_PROJECTION},
        ]
        rows += await (await services.db.stores.aggregate(ties)).to_list(None)
    page, after_page = cut_page(rows, limit, _position)
    return StorePage([{**storeviews.to_view(row), "distance_m": row["distance_m"]} for row in page], after_page)


def _order(row: dict[str, Any]) -> tuple[float, ObjectId]:
    return row["distance_m"], row["_id"]


def _position(row: dict[str, Any]) -> Position:
    return Position(float(row["distance_m"]), ObjectId(row["_id"]))  # a document's id, or a view's text
