"""The mayor of a store: the user with the most distinct check-in days there in the last 60 days.

Days are UTC calendar days (the check-in's ``day`` field). Ties keep the sitting mayor; when the
seat is open or the sitting mayor has fallen behind, the leader wins, and among leaders with the
same number of days the one whose first check-in in the window is oldest (who has been coming
longest), then the smaller id. The seat is decided inside each check-in's transaction, so it
always reflects the check-ins committed with it.

Deciding without recounting the store. The store keeps a ``seat`` document beside ``mayor_id``:
``seq`` (bumped by every decision), ``as_of`` (the decision's time), ``count`` (the mayor's days
then; 0 with no mayor) and ``days`` (the mayor's ``{d: day, at: last check-in that day}`` in the
window). Every decision leaves the invariant **I**: at ``as_of`` nobody had more days than
``count``. Days only leave the window as time passes, so for anyone who has not checked in since
(the seat's ``seq`` proves nobody has), I still holds at any later ``now``. Hence, for user ``U``
checking in at ``now >= as_of`` (:func:`quick_decision`):

* no mayor (``count`` 0): nobody had a day in the window, so ``U`` has exactly today → ``U`` is seated;
* ``U`` is the mayor: if their days now (the seat's days plus today) are still ``>= count``, they
  are ``>=`` everybody's → they keep the seat;
* another mayor ``M`` whose days now still equal ``count`` (none aged out): ``U``'s days are
  counted (their own check-ins here, an indexed read: :func:`days_pipeline`, which the group
  commit runs with its other reads); ``U <= M`` → ``M`` keeps the seat (ties
  keep it), ``U > M`` → ``U`` leads everybody strictly → ``U`` is seated.

Anything else (a store without a seat: data from before it existed; the mayor lost a day; a
clock behind ``as_of``) recounts the standings over the window (:func:`full_decision`), which
re-establishes I. Decisions stay serial per store: every check-in writes the store document (its
counters), so concurrent check-ins at one store conflict and run one after another, and the write
is guarded by the seat's ``seq`` read before the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bson import ObjectId

from checkins import storeviews

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession

    from solomo.core.services import Services

WINDOW = timedelta(days=60)
Day = dict[str, Any]
"""``{"d": "YYYY-MM-DD", "at": datetime}``: a UTC day and the last check-in of it."""
Decision = tuple["ObjectId | None", dict[str, Any]]
"""The mayor and the new ``seat`` document."""


def days_in_window(days: list[Day], now: datetime) -> int:
    cutoff = now - WINDOW
    return sum(1 for day in days if day["at"] >= cutoff)


def with_visit(days: list[Day], day: str, at: datetime) -> list[Day]:
    """``days`` with a check-in at ``at`` on ``day``, without the days that left the window."""
    cutoff = at - WINDOW
    out = [d for d in days if d["at"] >= cutoff and d["d"] != day]
    last = max([at, *(d["at"] for d in days if d["d"] == day)])
    return sorted([*out, {"d": day, "at": last}], key=lambda d: d["d"])


def new_seat(previous: dict[str, Any] | None, count: int, days: list[Day], now: datetime) -> dict[str, Any]:
    return {"seq": (previous or {}).get("seq", 0) + 1, "as_of": now, "count": count, "days": days}


def empty_seat(now: datetime) -> dict[str, Any]:
    """The seat of a new store: nobody has a day, so invariant I holds."""
    return {"seq": 0, "as_of": now, "count": 0, "days": []}


def decide_mayor(sitting_id: ObjectId | None, sitting_days: int,
                 leader_id: ObjectId | None, leader_days: int) -> ObjectId | None:
    """The new mayor given the sitting mayor's and the leader's day counts (ties keep the seat)."""
    if sitting_id is not None and sitting_days > 0 and sitting_days >= leader_days:
        return sitting_id
    return leader_id if leader_days > 0 else None


def _standings_pipeline(store_id: ObjectId, sitting_id: ObjectId | None, now: datetime) -> list[dict[str, Any]]:
    return [
        {"$match": {"store_id": store_id, "created_at": {"$gte": now - WINDOW}}},
        {"$group": {"_id": {"u": "$user_id", "d": "$day"}, "first": {"$min": "$created_at"},
                    "last": {"$max": "$created_at"}}},
        {"$group": {"_id": "$_id.u", "days": {"$sum": 1}, "first": {"$min": "$first"},
                    "list": {"$push": {"d": "$_id.d", "at": "$last"}}}},
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
    return (await full_decision(services, store_id, sitting_id, None, now, session))[0]


async def full_decision(services: Services, store_id: ObjectId, sitting_id: ObjectId | None,
                        seat: dict[str, Any] | None, now: datetime,
                        session: AsyncClientSession | None = None) -> Decision:
    """Recount the standings over the window: the mayor and the seat after ``seat``."""
    cursor = await services.db.checkins.aggregate(_standings_pipeline(store_id, sitting_id, now), session=session)
    result = (await cursor.to_list(1))[0]
    leader = result["leader"][0] if result["leader"] else None
    sitting = result["sitting"][0] if result["sitting"] else None
    mayor = decide_mayor(
        sitting_id, sitting["days"] if sitting else 0,
        leader["_id"] if leader else None, leader["days"] if leader else 0,
    )
    chosen = sitting if mayor is not None and mayor == sitting_id else leader if mayor is not None else None
    days = sorted(chosen["list"], key=lambda d: d["d"]) if chosen else []
    return mayor, new_seat(seat, len(days), days, now)


def days_pipeline(visits: Sequence[tuple[ObjectId, ObjectId, datetime]]) -> list[dict[str, Any]]:
    """The aggregation of users' days at stores in the window, each ``(store_id, user_id, now)``
    (their own check-ins: the ``by_user_store`` index): one row per user, store and day, with the
    day's last check-in. :func:`days_by_visitor` reads its rows."""
    return [
        {"$match": {"$or": [{"user_id": user_id, "store_id": store_id, "created_at": {"$gte": now - WINDOW}}
                            for store_id, user_id, now in visits]}},
        {"$group": {"_id": {"s": "$store_id", "u": "$user_id", "d": "$day"}, "at": {"$max": "$created_at"}}},
    ]


def days_by_visitor(rows: Iterable[dict[str, Any]]) -> dict[tuple[ObjectId, ObjectId], list[Day]]:
    """:func:`days_pipeline`'s rows as each ``(store_id, user_id)``'s days, oldest first."""
    out: dict[tuple[ObjectId, ObjectId], list[Day]] = {}
    for row in rows:
        out.setdefault((row["_id"]["s"], row["_id"]["u"]), []).append({"d": row["_id"]["d"], "at": row["at"]})
    for days in out.values():
        days.sort(key=lambda day: day["d"])
    return out


async def user_days(services: Services, store_id: ObjectId, user_id: ObjectId, now: datetime,
                    session: AsyncClientSession | None) -> list[Day]:
    """One user's days at one store in the window."""
    cursor = await services.db.checkins.aggregate(days_pipeline([(store_id, user_id, now)]), session=session)
    return days_by_visitor(await cursor.to_list(None)).get((store_id, user_id), [])


async def quick_decision(services: Services, store_id: ObjectId, sitting_id: ObjectId | None,
                         seat: dict[str, Any] | None, user_id: ObjectId, day: str, now: datetime,
                         session: AsyncClientSession | None, before: list[Day] | None = None) -> Decision | None:
    """The decision after ``user_id``'s check-in at ``now`` (already inserted) from the seat alone
    (see the module's note), or None when only a full recount can tell. ``before``: the user's days
    in the window read earlier in this transaction, without this check-in (:func:`days_pipeline`:
    the group commit reads them with the group's other documents); None reads them now."""
    if seat is None or now < seat["as_of"]:
        return None
    if sitting_id is None:
        if seat["count"] != 0:
            return None
        return user_id, new_seat(seat, 1, [{"d": day, "at": now}], now)
    if sitting_id == user_id:
        days = with_visit(seat["days"], day, now)
        count = days_in_window(days, now)
        return (user_id, new_seat(seat, count, days, now)) if count >= seat["count"] else None
    mayor_count = days_in_window(seat["days"], now)
    if mayor_count != seat["count"]:
        return None
    mine = with_visit(before, day, now) if before is not None else await user_days(services, store_id, user_id,
                                                                                  now, session)
    if len(mine) <= mayor_count:
        kept = [d for d in seat["days"] if d["at"] >= now - WINDOW]
        return sitting_id, new_seat(seat, mayor_count, kept, now)
    return user_id, new_seat(seat, len(mine), mine, now)


async def refresh_mayor(services: Services, store_id: ObjectId, now: datetime,
                        session: AsyncClientSession | None = None) -> ObjectId | None:
    """Recompute and store ``mayor_id`` (e.g. after check-ins age out of the window); returns it."""
    store = await services.db.stores.find_one({"_id": store_id}, {"mayor_id": 1, "seat": 1}, session=session)
    if store is None:
        return None
    seat = store.get("seat")
    mayor, after = await full_decision(services, store_id, store.get("mayor_id"), seat, now, session=session)
    # guarded: a check-in deciding meanwhile wins (its decision is newer than this recount)
    await services.db.stores.update_one(
        {"_id": store_id, "mayor_id": store.get("mayor_id"), "seat.seq": seat["seq"] if seat else None},
        {"$set": {"mayor_id": mayor, "seat": after}}, session=session)
    if session is None:  # else the caller, once its transaction has committed
        await storeviews.invalidate_quietly(services, [store_id], f"mayor recount of {store_id}")
    return mayor


async def refresh_mayors(services: Services, now: datetime) -> int:
    """Re-decide every seated mayor (beat runs this hourly): standings also change when
    check-ins age out of the window with nobody checking in. Returns how many seats changed."""
    changed = 0
    async for store in services.db.stores.find({"mayor_id": {"$ne": None}}, {"mayor_id": 1}):
        if await refresh_mayor(services, store["_id"], now) != store["mayor_id"]:
            changed += 1
    return changed
