"""Start-up migration: posts stored before public positions existed get theirs.

Posts used to keep the device's exact fix in ``location``. Now ``location`` holds only the public
position (:mod:`geo.privacy`: the store's location, else the fix snapped to the grid), so every
query and answer built on it — local feeds, geo cells, hot topics and search near a point — sees
nothing finer. Older documents are rewritten once at start-up (:func:`migrate_public_locations`,
run by the composition root); until then the read path snaps them on the way out (``feed.hydrate``).

The rewrite is idempotent (snapping a grid point gives the same point; a store's location is
already itself), so API processes starting together may all run it; a marker document in
``migrations`` makes later start-ups skip the scan.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne

from feed import localcells, postcache
from feed.posts import VISIBLE
from geo.geojson import geo_point
from geo.privacy import public_point
from solomo.core.services import Services

MIGRATION_ID = "posts.public_location"
BATCH = 500


async def migrate_public_locations(services: Services, *, force: bool = False) -> int:
    """Rewrites every located post's ``location`` to its public position; returns posts changed.

    Published posts move to their new cell entries (only cells that exist are written, as the
    fan-out does). ``force`` runs it even if the marker says done."""
    db = services.db
    if not force and await db.migrations.find_one({"_id": MIGRATION_ID}) is not None:
        return 0
    store_points: dict[Any, tuple[float, float] | None] = {}
    changed = 0
    batch: list[tuple[dict[str, Any], dict[str, Any]]] = []
    cursor = db.posts.find({"location": {"$ne": None}},
                           {"location": 1, "store_id": 1, "status": 1, "created_ms": 1})
    async for doc in cursor:
        store_id = doc.get("store_id")
        if store_id is not None and store_id not in store_points:
            store = await db.stores.find_one({"_id": store_id}, {"location": 1})
            store_points[store_id] = _latlng(store["location"]) if store else None
        lat, lng = public_point(_latlng(doc["location"]), store_points.get(store_id))
        public = geo_point(lat, lng)
        if public["coordinates"] != doc["location"]["coordinates"]:
            batch.append((doc, public))
        if len(batch) >= BATCH:
            changed += await _rewrite(services, batch)
            batch = []
    if batch:
        changed += await _rewrite(services, batch)
    await db.migrations.update_one({"_id": MIGRATION_ID}, {"$set": {"done_at": datetime.now(UTC)}}, upsert=True)
    return changed


def _latlng(location: dict[str, Any]) -> tuple[float, float]:
    lng, lat = location["coordinates"]
    return lat, lng


async def _rewrite(services: Services, batch: list[tuple[dict[str, Any], dict[str, Any]]]) -> int:
    # guarded by the old value: a post moved meanwhile is left to whoever moved it
    result = await services.db.posts.bulk_write(
        [UpdateOne({"_id": doc["_id"], "location": doc["location"]}, {"$set": {"location": public}})
         for doc, public in batch], ordered=False)
    await postcache.invalidate(services, [doc["_id"] for doc, _ in batch])  # cached views hold the location
    for doc, public in batch:
        if doc.get("status") != VISIBLE:
            continue
        # the cell entries carry the position: every level's entry moves (only cells that exist are written)
        await localcells.remove_post(services.redis, doc)
        await localcells.add_post(services.redis, {**doc, "location": public})
    return int(result.modified_count)
