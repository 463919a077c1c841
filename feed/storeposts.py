"""A store moved: the posts at it move with it.

A post with a store shows the store's position (contract: Privacy; ``geo.privacy.public_point``), and
``posts.location`` holds exactly that, so when the owner moves the store (``PATCH /v1/stores/{id}``)
every post at the store gets the new point: MongoDB (local feeds read from MongoDB below a cell's
entries, topics near a point, hot topics near a point), the cached post views (they hold the
location, and local reads keep an entry only if the view is inside the circle), and the entries of
the local-feed cells that exist (the entry carries the position: removed at the old point, written
at the new one, as the fan-out writes them).

Bounded per batch (:data:`BATCH` posts, along the ``(store_id, created_ms, _id)`` index); moves are limited per
store (``store_move``), so one merchant cannot make this run without end.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import UpdateOne

from feed import localcells, postcache
from feed.posts import VISIBLE
from geo.geojson import geo_point
from solomo.core.services import Services

BATCH = 500


async def move_store_posts(services: Services, store_id: ObjectId, lat: float, lng: float) -> int:
    """Moves every post at the store to ``(lat, lng)``; returns how many were moved."""
    point = geo_point(lat, lng)
    moved = 0
    last: dict[str, Any] | None = None
    while True:  # newest first along the (store_id, created_ms, _id) index, a batch at a time
        query: dict[str, Any] = {"store_id": store_id}
        if last is not None:
            query["$or"] = [{"created_ms": {"$lt": last["created_ms"]}},
                            {"created_ms": last["created_ms"], "_id": {"$lt": last["_id"]}}]
        docs = await services.db.posts.find(query, {"location": 1, "status": 1, "created_ms": 1}).sort(
            [("created_ms", -1), ("_id", -1)]).limit(BATCH).to_list(None)
        if not docs:
            return moved
        last = docs[-1]
        stale = [d for d in docs if d.get("location") != point]
        if not stale:
            continue
        # the cells first: a move cut short after them leaves MongoDB at the old point, so saving the
        # store again finds these posts stale and redoes both (the other order left cells that no
        # retry would mend); meanwhile a reader's exact test on the post's stored point decides
        for doc in stale:
            if doc.get("status") == VISIBLE:
                await localcells.remove_post(services.redis, doc)
                await localcells.add_post(services.redis, {**doc, "location": point})
        # guarded by the old value: a post changed meanwhile is left as it now is
        result = await services.db.posts.bulk_write(
            [UpdateOne({"_id": d["_id"], "location": d.get("location")}, {"$set": {"location": point}})
             for d in stale], ordered=False)
        moved += int(result.modified_count)
        await postcache.invalidate(services, [d["_id"] for d in stale])
