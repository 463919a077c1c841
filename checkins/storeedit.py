"""The owner edits a store (``PATCH /v1/stores/{id}``): name, category, address, check-in radius,
position, time zone.

Values are checked as at creation (:func:`checkins.stores.create_store`); the name and address pass
the profile word filter (no review queue: names show at once). Everything that answers "where is
this store" or "what is it called" follows in the same request:

* the Redis GEO index of nearby stores (:mod:`checkins.geoindex`): the new members are added
  *before* the MongoDB update (the index stays a superset), the old ones dropped after it;
* the store's offers, in MongoDB and in the live-offer index (:func:`offers.storemoves.store_moved`);
* the posts at the store, which show the store's position (:func:`feed.storeposts.move_store_posts`):
  local feeds, topics near a point and the cached post views;
* the per-process summary caches of posts (``feed.hydrate.names_changed``), when the name or the
  position changed (a StoreSummary carries both);
* search: :func:`search.stores.reindex_store` (the name's keys).

Saving the same position again re-runs every "follow the move" step, so an edit whose Redis part
failed half-way is completed by saving again. A new time zone rebuilds the store's rollups in it
last; until they are, the store is marked (:data:`checkins.visitdays.PENDING`), so any later edit
of the store (saving again) rebuilds them, and so does the maintenance sweep.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import ReturnDocument

from checkins import geoindex, storeviews
from checkins.localtime import parse_timezone
from checkins.stores import ADDRESS_MAX, CATEGORIES, NAME_MAX, RADIUS_MAX_M, RADIUS_MIN_M, store_latlng
from checkins.visitdays import needs_rebuild, pending_on_zone_change, rebuild_store
from feed.hydrate import names_changed
from feed.storeposts import move_store_posts
from geo.geojson import geo_point
from moderation.screen import screen_profile_text
from offers.storemoves import store_moved
from offers.stores import owned_store
from search.stores import reindex_store
from solomo.core import ratelimit
from solomo.core.errors import Invalid, NotFound

if TYPE_CHECKING:
    from solomo.core.services import Services

UNSET: Any = object()
"""A field the edit does not touch (``None`` is a value: it clears the address)."""


async def update_store(services: Services, owner_id: ObjectId, store_id: str, *, name: Any = UNSET,
                       category: Any = UNSET, address: Any = UNSET, checkin_radius_m: Any = UNSET,
                       lat: Any = UNSET, lng: Any = UNSET, timezone: Any = UNSET) -> dict[str, Any]:
    """Applies the given fields to the owner's store; returns the updated document.
    404 unknown store, 403 someone else's, 422 a bad value or a blocked word."""
    store = await owned_store(services, store_id, owner_id)
    change: dict[str, Any] = {}
    if name is not UNSET:
        name = str(name).strip()
        if not 1 <= len(name) <= NAME_MAX:
            raise Invalid(f"name must be 1..{NAME_MAX} characters")
        change["name"] = name
    if category is not UNSET:
        if category not in CATEGORIES:
            raise Invalid(f"category must be one of {', '.join(CATEGORIES)}")
        change["category"] = category
    if address is not UNSET:
        address = (address or "").strip() or None
        if address is not None and len(address) > ADDRESS_MAX:
            raise Invalid(f"address must be at most {ADDRESS_MAX} characters")
        change["address"] = address
    if checkin_radius_m is not UNSET:
        if not RADIUS_MIN_M <= checkin_radius_m <= RADIUS_MAX_M:
            raise Invalid(f"checkin_radius_m must be {RADIUS_MIN_M}..{RADIUS_MAX_M}")
        change["checkin_radius_m"] = checkin_radius_m
    if timezone is not UNSET:  # insights' days and hours follow it: the rollups are rebuilt in it (see below)
        change["timezone"] = parse_timezone(timezone)
    moving = lat is not UNSET or lng is not UNSET
    if moving:
        old_lat, old_lng = store_latlng(store)
        lat = old_lat if lat is UNSET else lat
        lng = old_lng if lng is UNSET else lng
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            raise Invalid("lat must be in [-90, 90] and lng in [-180, 180]")
        change["location"] = geo_point(lat, lng)
    await screen_profile_text(services, change.get("name"), change.get("address"))
    if not change:
        return store
    if moving:  # a move rewrites the store's posts and offers: bounded per store (429 rate_limited)
        await ratelimit.enforce(services, "store_move", store["_id"])
    after = {**store, **change}
    if moving or "category" in change:
        await geoindex.add(services, after)  # before the write: the index stays a superset
    doc = await services.db.stores.find_one_and_update({"_id": store["_id"]}, _update(change),
                                                       return_document=ReturnDocument.AFTER)
    if doc is None:  # stores are never deleted; answer as a read would
        raise NotFound("store not found")
    await storeviews.invalidate(services, [doc["_id"]])
    await geoindex.moved(services, store, doc)
    if moving:
        await store_moved(services, doc["_id"], lat, lng)
        await move_store_posts(services, doc["_id"], lat, lng)
    if "name" in change or moving:
        await names_changed(services)
    await reindex_store(services, doc["_id"])  # searchable by its new name at once
    if needs_rebuild(doc):  # this edit's new zone, or an earlier one whose rebuild did not finish
        await rebuild_store(services, doc)  # the day rollups follow the store's new calendar
    return doc


def _update(change: dict[str, Any]) -> list[dict[str, Any]]:
    """The edit as an update pipeline (values as literals): a new time zone also marks the store's
    rollups pending, in the same write, so a failure before their rebuild leaves the mark for the
    edit's retry or the sweep (:func:`checkins.visitdays.rebuild_pending`)."""
    stages = [{"$set": {k: {"$literal": v} for k, v in change.items()}}]
    if "timezone" in change:
        stages.insert(0, pending_on_zone_change(change["timezone"], datetime.now(UTC)))
    return stages
