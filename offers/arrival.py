"""Followers who come within a live offer's radius later get it once, when their location arrives.

Called by the WebSocket session for every ``location`` message (a hub location listener). The
common case — no live offer around — costs one GEOSEARCH; MongoDB is asked only about candidate
offers this user has not received yet.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bson import ObjectId

from offers import live
from offers.offers import live_query
from offers.targeting import send_offer
from solomo.core.keys import offer_delivered
from solomo.core.services import Services


async def deliver_on_arrival(services: Services, user_id: str, lat: float, lng: float) -> int:
    """Push every live offer covering (lat, lng) from a store the user follows and not yet sent."""
    candidates = await live.covering(services.redis, lat, lng)
    if not candidates:
        return 0
    async with services.redis.pipeline(transaction=False) as pipe:
        for offer_id, _ in candidates:
            pipe.sismember(offer_delivered(offer_id), user_id)
        already = await pipe.execute()
    fresh = {offer_id: dist for (offer_id, dist), got in zip(candidates, already, strict=True) if not got}
    if not fresh:
        return 0
    offers = await services.db.offers.find(
        {"_id": {"$in": [ObjectId(o) for o in fresh]}, **live_query(datetime.now(UTC))}).to_list(None)
    if not offers:
        return 0
    store_ids = list({o["store_id"] for o in offers})
    followed = {d["target_id"] async for d in services.db.follows.find(
        {"follower_id": ObjectId(user_id), "target_type": "store", "target_id": {"$in": store_ids}},
        {"target_id": 1, "_id": 0})}
    if not followed:
        return 0
    stores = {s["_id"]: s async for s in services.db.stores.find({"_id": {"$in": list(followed)}})}
    sent = 0
    for offer in offers:
        store = stores.get(offer["store_id"])
        if store is not None:
            sent += await send_offer(services, offer, store, [(user_id, fresh[str(offer["_id"])])])
    return sent
