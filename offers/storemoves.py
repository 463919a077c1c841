"""A store moved (its owner edited ``lat``/``lng``): its offers move with it.

An offer carries its store's point twice: ``offers.location`` (the nearby-offers listing, MongoDB's
2dsphere) and its member in the live-offer index (:mod:`offers.live`, what a follower's location
message is matched against). Both follow right after the store's own write: MongoDB in one
``update_many`` (bounded: a store has at most 20 offers a day), then every offer still live is
registered again at the new point (``GEOADD`` replaces the member's position). A Redis failure is
logged, not raised (the store's edit is committed): those entries stay at the old point until the
offer ends or expires, or until the owner saves the position again (every edit carrying ``lat``/``lng``
runs this again, so a retry repairs it).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bson import ObjectId
from redis.exceptions import RedisError

from geo.geojson import geo_point
from offers import live
from offers.audiences import followers_store
from offers.offers import expires_ms, live_query
from solomo.core.services import Services

log = logging.getLogger("offers.storemoves")


async def store_moved(services: Services, store_id: ObjectId, lat: float, lng: float) -> int:
    """Moves the store's offers to ``(lat, lng)``; returns how many live offers were re-registered."""
    await services.db.offers.update_many({"store_id": store_id}, {"$set": {"location": geo_point(lat, lng)}})
    cursor = services.db.offers.find({"store_id": store_id, **live_query(datetime.now(UTC))},
                                     {"radius_m": 1, "expires_at": 1, "targeting": 1, "store_id": 1, "audience": 1})
    n = 0
    try:
        async for offer in cursor:
            if offer.get("targeting") == "held":
                continue
            await live.register(services.redis, str(offer["_id"]), lat, lng, int(offer["radius_m"]),
                                expires_ms(offer), followers_store(offer))
            n += 1
    except RedisError as exc:
        log.warning("live offers of store %s not moved in Redis (saving the position again moves them): %s",
                    store_id, exc)
    return n
