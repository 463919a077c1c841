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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bson import ObjectId

from geo.geojson import geo_point
from solomo.core.pagination import Position, after_filter, cut_page, lookahead

if TYPE_CHECKING:
    from solomo.core.services import Services

RADIUS_DEFAULT_M = 1000.0
RADIUS_MAX_M = 50_000.0
_ANNULUS_M = 0.001  # distances of co-located stores are bit-identical; this only widens the index scan


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
) -> tuple[list[dict[str, Any]], Position | None]:
    """One page of store documents (each with ``distance_m``) and the position after it, or None."""
    radius_m = min(float(radius_m), RADIUS_MAX_M)
    start = after.score - _ANNULUS_M if after else 0.0
    pipeline = [_geo_near(lat, lng, min_m=start, max_m=radius_m, category=category), *_after(after),
                {"$limit": lookahead(limit)}]
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
        ]
        rows += await (await services.db.stores.aggregate(ties)).to_list(None)
    return cut_page(rows, limit, _position)


def _order(row: dict[str, Any]) -> tuple[float, ObjectId]:
    return row["distance_m"], row["_id"]


def _position(row: dict[str, Any]) -> Position:
    return Position(float(row["distance_m"]), row["_id"])
