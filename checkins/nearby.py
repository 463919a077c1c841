"""Stores near a point, nearest first, paged by ``(distance, id)``.

MongoDB's ``$geoNear`` streams stores in distance order but leaves the order of stores at exactly
the same distance (several shops at one address) unspecified. A page is therefore defined in the
total order ``(distance_m, _id)``:

* the next page starts at ``minDistance`` = the cursor's distance and drops the stores at that
  very distance whose id is not greater than the cursor's;
* when a group of equal distances straddles the page boundary, the group is re-read in id order
  (a thin ``$geoNear`` annulus around that distance) so no store is skipped or repeated.

Distances are MongoDB's spherical ones (what the ordering uses), so ``distance_m`` always grows
down the list; they are within about 0.5 % of the geodesic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bson import ObjectId

from geo.geojson import geo_point
from solomo.core.errors import BadRequest

if TYPE_CHECKING:
    from solomo.core.services import Services

RADIUS_DEFAULT_M = 1000.0
RADIUS_MAX_M = 50_000.0
_ANNULUS_M = 0.001  # distances of co-located stores are bit-identical; this only widens the index scan

Position = tuple[float, str]


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
    if position is None:
        return []
    dist, last = position
    try:
        last_id = ObjectId(last)
    except Exception:
        raise BadRequest("cursor is not valid", code="invalid_cursor") from None
    return [{"$match": {"$or": [{"distance_m": {"$gt": dist}}, {"distance_m": dist, "_id": {"$gt": last_id}}]}}]


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
    start = after[0] - _ANNULUS_M if after else 0.0
    pipeline = [_geo_near(lat, lng, min_m=start, max_m=radius_m, category=category), *_after(after),
                {"$limit": limit + 1}]
    rows = await (await services.db.stores.aggregate(pipeline)).to_list(None)
    if len(rows) <= limit:
        return sorted(rows, key=_order), None
    boundary = rows[limit - 1]["distance_m"]
    if rows[limit]["distance_m"] != boundary:
        page = sorted(rows[:limit], key=_order)
    else:
        page = sorted((r for r in rows[:limit] if r["distance_m"] < boundary), key=_order)
        ties = [
            _geo_near(lat, lng, min_m=boundary - _ANNULUS_M, max_m=min(radius_m, boundary + _ANNULUS_M),
                      category=category),
            {"$match": {"distance_m": boundary}},
            *_after(after),
            {"$sort": {"_id": 1}},
            {"$limit": limit - len(page)},
        ]
        page += await (await services.db.stores.aggregate(ties)).to_list(None)
    last = page[-1]
    return page, (last["distance_m"], str(last["_id"]))


def _order(row: dict[str, Any]) -> tuple[float, ObjectId]:
    return row["distance_m"], row["_id"]
