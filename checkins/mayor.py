"""The mayor of a store: the user with the most distinct check-in days there in the last 60 days.

Days are UTC calendar days (the check-in's ``day`` field). Ties keep the sitting mayor; when the
seat is open or the sitting mayor has fallen behind, the leader wins, and among leaders with the
same number of days the one whose first check-in in the window is oldest (who has been coming
longest), then the smaller id. The standings are recomputed inside each check-in's transaction,
so the seat always reflects the check-ins committed with it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bson import ObjectId

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession

    from solomo.core.services import Services

WINDOW = timedelta(days=60)


def decide_mayor(sitting_id: ObjectId | None, sitting_days: int,
                 leader_id: ObjectId | None, leader_days: int) -> ObjectId | None:
    """The new mayor given the sitting mayor's and the leader's day counts (ties keep the seat)."""
    if sitting_id is not None and sitting_days > 0 and sitting_days >= leader_days:
        return sitting_id
    return leader_id if leader_days > 0 else None


def _standings_pipeline(store_id: ObjectId, sitting_id: ObjectId | None, now: datetime) -> list[dict[str, Any]]:
    return [
        {"$match": {"store_id": store_id, "created_at": {"$gte": now - WINDOW}}},
        {"$group": {"_id": {"u": "$user_id", "d": "$day"}, "first": {"$min": "$created_at"}}},
        {"$group": {"_id": "$_id.u", "days": {"$sum": 1}, "first": {"$min": "$first"}}},
        {"$facet": {
            "leader": [{"$sort": {"days": -1, "first": 1, "_id": 1}}, {"$limit": 1}],
            "sitting": [{"$match": {"_id": sitting_id}}],
        }},
    ]


async def recompute_mayor(
    services: Services, store_id: ObjectId, sitting_id: ObjectId | None, now: datetime,
    session: AsyncClientSession | None = None,
) -> ObjectId | None:
    """Recount the standings and return who should hold the seat (does not write it)."""
    cursor = await services.db.checkins.aggregate(_standings_pipeline(store_id, sitting_id, now), session=session)
    result = (await cursor.to_list(1))[0]
    leader = result["leader"][0] if result["leader"] else None
    sitting = result["sitting"][0] if result["sitting"] else None
    return decide_mayor(
        sitting_id, sitting["days"] if sitting else 0,
        leader["_id"] if leader else None, leader["days"] if leader else 0,
    )


async def refresh_mayor(services: Services, store_id: ObjectId, now: datetime,
                        session: AsyncClientSession | None = None) -> ObjectId | None:
    """Recompute and store ``mayor_id`` (e.g. after check-ins age out of the window); returns it."""
    store = await services.db.stores.find_one({"_id": store_id}, {"mayor_id": 1}, session=session)
    if store is None:
        return None
    mayor = await recompute_mayor(services, store_id, store.get("mayor_id"), now, session=session)
    if mayor != store.get("mayor_id"):
        await services.db.stores.update_one({"_id": store_id}, {"$set": {"mayor_id": mayor}}, session=session)
    return mayor


async def refresh_mayors(services: Services, now: datetime) -> int:
    """Re-decide every seated mayor (beat runs this hourly): standings also change when
    check-ins age out of the window with nobody checking in. Returns how many seats changed."""
    changed = 0
    async for store in services.db.stores.find({"mayor_id": {"$ne": None}}, {"mayor_id": 1}):
        if await refresh_mayor(services, store["_id"], now) != store["mayor_id"]:
            changed += 1
    return changed
