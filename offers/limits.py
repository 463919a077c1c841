"""The abuse limits on offers (contract, "Stores and offers, continued"), checked inside the
transaction that inserts the offer.

* at most :data:`MAX_LIVE_PER_STORE` live offers per store (``pending_review`` ones count: holding
  an offer for review must not be a way round the limit) → 409 ``too_many_live_offers``;
* at most :data:`MAX_PER_STORE_PER_DAY` offers per store in any 24 hours → 429 ``rate_limited``
  with ``Retry-After`` until the oldest of them leaves the window.

Concurrency: the transaction first bumps ``offers_created`` on the store document, so two
concurrent creates for one store write the same document and MongoDB lets only one commit at a
time (the other is retried by the driver and then counts the first one's offer).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from solomo.core.errors import Conflict, RateLimited
from solomo.core.mongo import Session
from solomo.core.services import Services

MAX_LIVE_PER_STORE = 5
MAX_PER_STORE_PER_DAY = 20
DAY = timedelta(hours=24)


def counted_live_query(now: datetime) -> dict[str, Any]:
    """Offers that occupy one of the store's live places: not expired, not sold out, not removed
    or ended (``pending_review`` included)."""
    return {"expires_at": {"$gt": now}, "status": {"$nin": ["removed", "ended"]},
            "$expr": {"$or": [{"$eq": ["$stock", None]}, {"$lt": ["$claimed", "$stock"]}]}}


async def claim_offer_place(services: Services, session: Session, store_id: ObjectId, now: datetime) -> None:
    """Raises when the store may not add an offer now; call inside the inserting transaction."""
    offers = services.db.offers
    await services.db.stores.update_one({"_id": store_id}, {"$inc": {"offers_created": 1}}, session=session)
    # ids carry their creation second, so the day's offers are read through the (store_id, _id) index
    window_start = ObjectId.from_datetime(now - DAY)
    today = await offers.find({"store_id": store_id, "_id": {"$gte": window_start}}, {"_id": 1},
                              session=session).sort("_id", -1).limit(MAX_PER_STORE_PER_DAY).to_list(None)
    if len(today) >= MAX_PER_STORE_PER_DAY:
        frees_at = today[-1]["_id"].generation_time + DAY
        raise RateLimited(f"a store may publish at most {MAX_PER_STORE_PER_DAY} offers a day",
                          retry_after=int((frees_at - now).total_seconds()) + 1)
    live = await offers.count_documents({"store_id": store_id, **counted_live_query(now)}, session=session)
    if live >= MAX_LIVE_PER_STORE:
        raise Conflict(f"a store may have at most {MAX_LIVE_PER_STORE} live offers; end one first",
                       code="too_many_live_offers")
