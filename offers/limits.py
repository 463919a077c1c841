"""The abuse limits on offers (contract, "Stores and offers, continued"), checked inside the
transaction that inserts the offer.

* at most ``settings.max_live_offers_per_store`` (5) live offers per store (``pending_review`` ones count: holding
  an offer for review must not be a way round the limit) → 409 ``too_many_live_offers``;
* at most ``settings.max_offers_per_store_per_day`` (20) offers per store in any 24 hours → 429 ``rate_limited``
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

DAY = timedelta(hours=24)


def counted_live_query(now: datetime) -> dict[str, Any]:
    """Offers that occupy one of the store's live places: not expired, not sold out, not removed
    or ended (``pending_review`` included)."""
    return {"expires_at": {"$gt": now}, "status": {"$nin": ["removed", "ended"]},
            "$expr": {"$or": [{"$eq": ["$stock", None]}, {"$lt": ["$claimed", "$stock"]}]}}


async def claim_offer_place(services: Services, session: Session, store_id: ObjectId, now: datetime) -> None:
    """Raises when the store may not add an offer now; call inside the inserting transaction."""
    offers = services.db.offers
    per_day, live_cap = services.settings.max_offers_per_store_per_day, services.settings.max_live_offers_per_store
    await services.db.stores.update_one({"_id": store_id}, {"$inc": {"offers_created": 1}}, session=session)
    # ids carry their creation second, so the day's offers are read through the (store_id, _id) index
    window_start = ObjectId.from_datetime(now - DAY)
    today = await offers.find({"store_id": store_id, "_id": {"$gte": window_start}}, {"_id": 1},
                              session=session).sort("_id", -1).limit(per_day).to_list(None)
    if len(today) >= per_day:
        frees_at = today[-1]["_id"].generation_time + DAY
        raise RateLimited(f"a store may publish at most {per_day} offers a day",
                          retry_after=int((frees_at - now).total_seconds()) + 1)
    live = await offers.count_documents({"store_id": store_id, **counted_live_query(now)}, session=session)
    if live >= live_cap:
        raise Conflict(f"a store may have at most {live_cap} live offers; end one first",
                       code="too_many_live_offers")
