"""What the programme settles with a store: points it issued (the store pays for them) and points
spent there (the store is paid for them), per store-local day.

Both read ``points_ledger`` by ``(store_id, created_at)`` (index ``by_store_time``); each entry
carries its store-local ``day`` from the moment it was written, which groups the days.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from bson import ObjectId

from checkins.localtime import day_range_utc
from offers.stores import owned_store
from solomo.core.errors import Invalid
from solomo.core.services import Services

MAX_DAYS = 366


def _sums(group_id: Any) -> list[dict[str, Any]]:
    return [{"$group": {
        "_id": group_id,
        "issued": {"$sum": {"$cond": [{"$gt": ["$points", 0]}, "$points", 0]}},
        "spent": {"$sum": {"$cond": [{"$lt": ["$points", 0]}, {"$subtract": [0, "$points"]}, 0]}},
    }}]


def _match(store_id: ObjectId, start_utc: datetime, end_utc: datetime) -> dict[str, Any]:
    return {"$match": {"store_id": store_id, "created_at": {"$gte": start_utc, "$lt": end_utc}}}


async def points_totals(services: Services, store: dict[str, Any], start_utc: datetime, end_utc: datetime
                        ) -> tuple[int, int]:
    """``(issued, spent)`` at ``store`` in ``[start_utc, end_utc)`` (store insights call this)."""
    rows = await (await services.db.points_ledger.aggregate(
        [_match(store["_id"], start_utc, end_utc), *_sums(None)])).to_list(None)
    if not rows:
        return 0, 0
    return int(rows[0]["issued"]), int(rows[0]["spent"])


async def store_ledger(services: Services, owner_id: ObjectId, store_id: str, first: date, last: date
                       ) -> dict[str, Any]:
    """The owner's settlement for store-local days ``first`` .. ``last`` (at most :data:`MAX_DAYS`)."""
    if last < first:
        raise Invalid("to must not be before from")
    span = (last - first).days + 1
    if span > MAX_DAYS:
        raise Invalid(f"the range may cover at most {MAX_DAYS} days")
    store = await owned_store(services, store_id, owner_id)
    start, end = day_range_utc(store, first, last)
    rows = await (await services.db.points_ledger.aggregate(
        [_match(store["_id"], start, end), *_sums("$day")])).to_list(None)
    by_day = {r["_id"]: r for r in rows}
    days: list[dict[str, Any]] = []
    issued = spent = 0
    for n in range(span):
        key = (first + timedelta(days=n)).isoformat()
        row = by_day.get(key, {})
        day_issued, day_spent = int(row.get("issued", 0)), int(row.get("spent", 0))
        issued, spent = issued + day_issued, spent + day_spent
        days.append({"date": key, "issued": day_issued, "spent": day_spent})
    return {"issued": issued, "spent": spent, "net": issued - spent, "days": days}
