"""The merchant's funnel for one store: visits, followers, and per offer pushed → claimed → redeemed.

Store counters (``checkins_count``, ``unique_visitors``, ``followers_count``) are kept on the
store document by their own packages, in the same transaction as the fact they count. Per offer,
``pushed`` is the offer's counter (see :mod:`offers.targeting`); claimed and redeemed are counted
from the vouchers in one aggregation.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from offers.stores import owned_store
from solomo.core.services import Services

MAX_OFFERS = 100


async def store_stats(services: Services, owner_id: ObjectId, store_id: ObjectId | str) -> dict[str, Any]:
    store = await owned_store(services, store_id, owner_id)
    offers = await services.db.offers.find({"store_id": store["_id"]}, {"pushed": 1}).sort(
        "_id", -1).limit(MAX_OFFERS).to_list(None)
    return {
        "checkins": int(store.get("checkins_count", 0)),
        "unique_visitors": int(store.get("unique_visitors", 0)),
        "followers": int(store.get("followers_count", 0)),
        "offers": await offer_funnels(services, offers),
    }


async def offer_funnels(services: Services, offers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``{offer_id, pushed, claimed, redeemed}`` for each offer document (which needs ``_id`` and
    ``pushed``), in their order: claimed counts every voucher handed out (redeemed ones too)."""
    counts: dict[tuple[ObjectId, str], int] = {}
    if offers:
        cursor = await services.db.vouchers.aggregate([
            {"$match": {"offer_id": {"$in": [o["_id"] for o in offers]}}},
            {"$group": {"_id": {"offer": "$offer_id", "status": "$status"}, "n": {"$sum": 1}}},
        ])
        async for row in cursor:
            counts[(row["_id"]["offer"], row["_id"]["status"])] = row["n"]
    return [
        {
            "offer_id": str(o["_id"]),
            "pushed": int(o.get("pushed", 0)),
            "claimed": counts.get((o["_id"], "claimed"), 0) + counts.get((o["_id"], "redeemed"), 0),
            "redeemed": counts.get((o["_id"], "redeemed"), 0),
        }
        for o in offers
    ]
