"""A store's own numbers for its owner (``GET /v1/stores/{id}/insights``; contract: Store insights).

The window is the last ``days`` days of the store's calendar (its ``timezone``), today included:
``[start, end)`` in UTC from :func:`checkins.localtime.day_range_utc`. Each figure:

* ``days``: one row per local day of the window, zeros included, read from the ``store_days``
  rollups (:mod:`checkins.visitdays`): ``checkins``; ``unique_visitors`` (distinct users that
  day); ``new_visitors`` (users whose first check-in ever at the store was that day);
  ``returning_visitors`` = unique − new (they had visited on an earlier day).
* ``hours``: check-ins of the window by store-local hour (0..23), summed from the same rollups.
* ``repeat_rate``: of the distinct users who checked in during the window, the share who checked
  in on at least two distinct local days of the window (0 when nobody came); a ratio in [0, 1],
  rounded to 4 decimals; from the rollups' ``last_of`` / ``prev_of`` tallies.
* ``top_topics``: the topics of the published posts at the store created in the window, by
  number of posts (ties by topic), at most :data:`TOP_TOPICS`; summed from the
  ``store_topic_days`` tallies, which follow each post's publication state.
* ``offers``: the store's offers live at some time in the window (created before its end, expiring
  after its start), newest first, at most :data:`offers.stats.MAX_OFFERS`, each with its audience
  and the funnel of :func:`offers.stats.offer_funnels` (pushed → claimed → redeemed, all time).
* ``points``: points issued at the store (sum of positive ledger entries) and spent there (minus
  the sum of negative ones) in the window.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bson import ObjectId

from checkins.localtime import day_range_utc, today
from loyalty.settlement import points_totals
from offers.stats import MAX_OFFERS, offer_funnels
from offers.stores import owned_store
from solomo.core.errors import Invalid

if TYPE_CHECKING:
    from solomo.core.services import Services

DAYS_MIN, DAYS_MAX, DAYS_DEFAULT = 1, 365, 30
TOP_TOPICS = 10


async def store_insights(services: Services, owner_id: ObjectId, store_id: ObjectId | str,
                         days: int = DAYS_DEFAULT, *, now: datetime | None = None) -> dict[str, Any]:
    """The insights of the owner's store over the last ``days`` local days (404 / 403 / 422)."""
    if not DAYS_MIN <= days <= DAYS_MAX:
        raise Invalid(f"days must be {DAYS_MIN}..{DAYS_MAX}")
    store = await owned_store(services, store_id, owner_id)
    last = today(store, now)
    first = last - timedelta(days=days - 1)
    start, end = day_range_utc(store, first, last)
    dates = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    # four independent reads: in flight together, the answer waits for the slowest, not their sum
    (daily, hours, repeat_rate), top_topics, offers, (issued, spent) = await asyncio.gather(
        _days(services, store["_id"], dates), _top_topics(services, store["_id"], dates[0], dates[-1]),
        _offers(services, store["_id"], start, end), _points(services, store, start, end))
    return {
        "days": daily,
        "hours": hours,
        "repeat_rate": repeat_rate,
        "top_topics": top_topics,
        "offers": offers,
        "points": {"issued": issued, "spent": spent},
    }


async def _days(services: Services, store_id: ObjectId,
                dates: list[str]) -> tuple[list[dict[str, Any]], list[int], float]:
    """The daily rows, the hours and the repeat rate, from the window's ``store_days`` rollups."""
    rows = {r["day"]: r async for r in services.db.store_days.find(
        {"store_id": store_id, "day": {"$gte": dates[0], "$lte": dates[-1]}}, {"_id": 0, "store_id": 0})}
    hours = [0] * 24
    daily = []
    came = again = 0  # visitors whose newest / second-newest visit day is in the window
    for date in dates:
        row = rows.get(date, {})
        for hour, n in row.get("hours", {}).items():
            hours[int(hour)] += int(n)
        unique, new = int(row.get("unique", 0)), int(row.get("new", 0))
        came += int(row.get("last_of", 0))
        again += int(row.get("prev_of", 0))
        daily.append({"date": date, "checkins": int(row.get("checkins", 0)), "unique_visitors": unique,
                      "new_visitors": new, "returning_visitors": unique - new})
    return daily, hours, round(again / came, 4) if came else 0.0


async def _top_topics(services: Services, store_id: ObjectId, first: str, last: str) -> list[dict[str, Any]]:
    cursor = await services.db.store_topic_days.aggregate([
        {"$match": {"store_id": store_id, "day": {"$gte": first, "$lte": last}}},
        {"$project": {"_id": 0, "topic": 1, "n": 1}},  # covered by the index: no document is read
        {"$group": {"_id": "$topic", "n": {"$sum": "$n"}}},
        {"$match": {"n": {"$gt": 0}}},
        {"$sort": {"n": -1, "_id": 1}},
        {"$limit": TOP_TOPICS},
    ], hint="store_day_topic_n")
    return [{"topic": r["_id"], "post_count": int(r["n"])} async for r in cursor]


async def _offers(services: Services, store_id: ObjectId, start: datetime, end: datetime) -> list[dict[str, Any]]:
    offers = await services.db.offers.find(
        {"store_id": store_id, "created_at": {"$lt": end}, "expires_at": {"$gt": start}},
        {"title": 1, "audience": 1, "pushed": 1}).sort("_id", -1).limit(MAX_OFFERS).to_list(None)
    funnels = await offer_funnels(services, offers)
    # "followers" is the audience of offers written before audiences existed
    return [{"offer_id": f["offer_id"], "title": o["title"], "audience": _audience(o.get("audience")),
             "pushed": f["pushed"], "claimed": f["claimed"], "redeemed": f["redeemed"]}
            for o, f in zip(offers, funnels, strict=True)]


def _audience(value: Any) -> str:
    if isinstance(value, dict):  # a structured audience names its kind
        return str(value.get("kind") or value.get("type") or "followers")
    return str(value or "followers")


async def _points(services: Services, store: dict[str, Any], start: datetime, end: datetime) -> tuple[int, int]:
    """(issued, spent) at the store in ``[start, end)``: the programme's own settlement sums."""
    return await points_totals(services, store, start, end)
