"""Pushing an offer to the store's followers who are near it, exactly once each.

Targeting (the Celery task ``offers.target``) intersects three sets: users with a fresh live
position within the radius (Redis GEOSEARCH), users online now (``rt:online:{b<n>}``) and the store's
followers (MongoDB ``follows``, queried for just those candidates). Each gets an ``offer`` event
(the Offer plus ``distance_m``) through :func:`solomo.core.eventtypes.publish_each_event` with the dedupe set
``offer:{id}:delivered``: a retried task, or a follower also reached by the arrival path
(:mod:`offers.arrival`), never sees the offer twice.

``pushed`` on the offer document follows the dedupe set's size (``$max``, so retries and
concurrent writers only ever move it forward).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from geo.positions import users_within
from offers import live
from offers.offers import expires_ms, is_live, offer_public, sold_out, stored_status
from solomo.core.eventtypes import OfferEvent, publish_each_event
from solomo.core.ids import maybe_id
from solomo.core.keys import BUCKETS, offer_delivered
from solomo.core.presence import is_online
from solomo.core.services import Services

FOLLOWER_CHUNK = 1000
DELIVERED_GRACE_S = 86400


def delivered_ttl_s(offer: dict[str, Any]) -> int:
    """Keep the dedupe set until a day after the offer expires (no delivery can happen later)."""
    return max(60, int(expires_ms(offer) / 1000 - time.time()) + DELIVERED_GRACE_S)


def offer_events(offer: dict[str, Any], store: dict[str, Any],
                 recipients: list[tuple[str, float]]) -> list[tuple[str, OfferEvent]]:
    """``(user id, offer event)`` for each recipient: the Offer is shaped once, only the distance varies."""
    shaped = OfferEvent(**offer_public(offer, store), distance_m=0.0)
    return [(uid, shaped.model_copy(update={"distance_m": round(dist, 1)})) for uid, dist in recipients]


async def followers_among(services: Services, store_id: ObjectId, user_ids: list[str]) -> set[str]:
    """Which of ``user_ids`` follow the store (queried in chunks, only for the candidates)."""
    out: set[str] = set()
    oids = [oid for oid in (maybe_id(u) for u in user_ids) if oid is not None]
    for start in range(0, len(oids), FOLLOWER_CHUNK):
        chunk = oids[start:start + FOLLOWER_CHUNK]
        cursor = services.db.follows.find(
            {"follower_id": {"$in": chunk}, "target_type": "store", "target_id": store_id},
            {"follower_id": 1, "_id": 0})
        out.update([str(d["follower_id"]) async for d in cursor])
    return out


async def send_offer(services: Services, offer: dict[str, Any], store: dict[str, Any],
                     recipients: list[tuple[str, float]]) -> int:
    """Publish the offer to each ``(user id, distance)`` not reached before; returns how many were new."""
    if not recipients:
        return 0
    items = offer_events(offer, store, recipients)
    offer_id = str(offer["_id"])
    sent = await publish_each_event(services, items, once_key=lambda bucket: offer_delivered(offer_id, bucket),
                                    once_ttl_s=delivered_ttl_s(offer))
    if sent:
        total = await delivered_count(services, offer_id)
        await services.db.offers.update_one({"_id": offer["_id"]}, {"$max": {"pushed": total}})
    return len(sent)


async def delivered_count(services: Services, offer_id: str) -> int:
    """Users the offer reached: the sizes of its per-bucket delivery sets (an exact count however
    often the task ran, hence ``$max`` above)."""
    async with services.redis.pipeline(transaction=False) as pipe:
        for bucket in range(BUCKETS):
            pipe.scard(offer_delivered(offer_id, bucket))
        return sum(int(n) for n in await pipe.execute())


async def target_offer(services: Services, offer_id: str) -> int:
    """The targeting task's body: idempotent; returns how many followers got the offer now.

    The push's latency is this function's critical path, so reads that do not depend on each
    other run concurrently: the store, with (re-)registering the offer in the live index and then
    finding the positions near it (the offer carries its store's location; registering first
    leaves no gap for a follower arriving meanwhile); then who of those is online, with who of
    them follows the store.
    """
    oid = maybe_id(offer_id)
    offer = await services.db.offers.find_one({"_id": oid}) if oid else None
    if offer is None:
        return 0
    if stored_status(offer) != "live":  # held for review (its approval sends this task again) or removed
        return 0
    if not is_live(offer) or sold_out(offer):
        await services.db.offers.update_one({"_id": offer["_id"]}, {"$set": {"targeting": "done"}})
        return 0
    lng, lat = offer["location"]["coordinates"]

    async def register_then_search() -> list[tuple[str, float]]:
        await live.register(services.redis, str(offer["_id"]), lat, lng, offer["radius_m"], expires_ms(offer))
        return await users_within(services.redis, lat, lng, offer["radius_m"], services.settings.position_ttl_s)

    store, near = await asyncio.gather(services.db.stores.find_one({"_id": offer["store_id"]}),
                                       register_then_search())
    if store is None:
        await services.db.offers.update_one({"_id": offer["_id"]}, {"$set": {"targeting": "done"}})
        return 0
    sent = 0
    if near:
        ids = [uid for uid, _ in near]
        online, followers = await asyncio.gather(is_online(services.redis, ids),
                                                 followers_among(services, store["_id"], ids))
        recipients = [(uid, d) for (uid, d), on in zip(near, online, strict=True) if on and uid in followers]
        sent = await send_offer(services, offer, store, recipients)
    await services.db.offers.update_one({"_id": offer["_id"]},
                                        {"$set": {"targeting": "done", "targeted_at": datetime.now(UTC)}})
    return sent
