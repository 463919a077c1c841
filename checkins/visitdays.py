"""Per-store, per-local-day rollups of check-ins: what a store's insights read instead of the check-ins.

Two kinds of documents, both written inside the check-ins' transaction by :func:`count_visit_days`
(one call per group in :mod:`checkins.groupcommit`):

* ``store_days`` — one per (store, store-local day): ``checkins``, ``hours`` (``{"0".."23": n}``, by
  store-local hour), ``unique`` (distinct visitors that day) and ``new`` (visitors whose first
  visit ever at the store was that day). Returning visitors of a day are ``unique - new``.
* ``store_visitors`` (one per store and user; ``first_at`` is set by the check-in) gains
  ``last_day`` and ``prev_day``: the newest and the second-newest distinct local days the user
  visited. Because an insights window always ends today, "visited on at least two distinct days of
  the window" is exactly ``prev_day >= first day of the window``, and "visited in the window" is
  ``last_day >= first day``. So each ``store_days`` row also tallies ``last_of`` (visitors whose
  newest day it is) and ``prev_of`` (whose second-newest day it is), moved along as visitors come
  back: the window's visitors are the sum of ``last_of`` over its days, its repeat visitors the
  sum of ``prev_of`` — the repeat rate comes from the same ≤ 365 rows as everything else.

Why this is exact: the rollup writes are part of the check-in's transaction, so a refused or
retried attempt leaves none of them (an aborted attempt's ``$inc`` never commits); concurrent
check-ins at one store conflict on the store document anyway and run one after another. A user's
check-ins at one store commit in time order (the one-hour rule is decided on the user's serial
history), so comparing with ``last_day`` tells the first check-in of a day.

* ``store_topic_days`` — one per (store, local day, topic): ``n`` published posts at the store
  written that day carry the topic; moved by :func:`count_store_topics` inside
  :func:`search.topics.sync_post`'s transaction (the one place a post's topics are counted or
  uncounted, after publication, hiding, removal, restoring or deletion).

The days and hours are those of the store's ``timezone`` when the check-in was counted; changing
the time zone rebuilds the store's rollups (:func:`rebuild_store`). The write that changes it also
marks the store :data:`PENDING`, and only the rebuild's transaction removes the mark: a rebuild
the change's request did not finish is run by the next edit of the store, or by the maintenance
sweep (:func:`rebuild_pending`). :func:`backfill_visit_days` builds them at start-up for check-ins
counted before rollups existed (a marker in ``migrations``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import UpdateOne

from checkins.localtime import DEFAULT_TIMEZONE, store_zone
from solomo.core.txn import Txn, run_transaction_again_on_duplicate

if TYPE_CHECKING:
    from solomo.core.services import Services

log = logging.getLogger("solomo.checkins")

MIGRATION_ID = "checkins.visit_days.v1"
BATCH = 1000
PENDING = "rollups_pending_since"
"""On a store whose rollups are not (yet) in its time zone: set with the new zone by the write that
changes it (:func:`pending_on_zone_change`), removed by the transaction that rebuilds them in the
zone the store has then. A store without it has its rollups in its zone (stores made before the
mark existed included: every change of zone until then rebuilt them in its request)."""
SWEEP_AFTER = timedelta(minutes=2)
"""A store still pending this long after its time zone changed lost its request's rebuild (the
request failed after saving the zone, or its process died); a rebuild takes seconds."""
SWEEP_BATCH = 10


def _day_hour(store: dict[str, Any], at: datetime) -> tuple[str, int]:
    local = at.astimezone(store_zone(store))
    return local.strftime("%Y-%m-%d"), local.hour


async def count_visit_days(services: Services, txn: Txn,
                           visits: Sequence[tuple[dict[str, Any], ObjectId, datetime]]) -> list[bool]:
    """Counts check-ins, each ``(store, user_id, at)`` with at most one per store and user: each
    user's ``store_visitors`` row (created with ``first_at`` on the first visit) and the stores' day
    rollups, inside the check-ins' transaction ``txn``. Returns, per visit, whether it was the
    user's first at the store.

    Three round trips whatever the number of visits (:mod:`checkins.groupcommit`): the rows are
    read, then written, then the days' tallies (merged per store and day) go in one ``bulk_write``.
    The rows were read in this transaction, so a concurrent check-in that moved one since makes
    the transaction conflict and run again."""
    db, session = services.db, txn.session
    if not visits:
        return []
    rows = {(r["store_id"], r["user_id"]): r async for r in db.store_visitors.find(
        {"$or": [{"store_id": store["_id"], "user_id": user_id} for store, user_id, _ in visits]},
        {"store_id": 1, "user_id": 1, "last_day": 1, "prev_day": 1, "_id": 0}, session=session)}
    inc: dict[tuple[ObjectId, str], dict[str, int]] = {}
    writes: list[UpdateOne] = []
    firsts: list[bool] = []
    for store, user_id, at in visits:
        day, hour = _day_hour(store, at)
        before = rows.get((store["_id"], user_id))
        seen, prev = (before or {}).get("last_day"), (before or {}).get("prev_day")
        # newest two distinct days: a new day shifts last_day into prev_day; the same day changes nothing
        shifted = seen is None or seen < day
        writes.append(UpdateOne({"store_id": store["_id"], "user_id": user_id}, [{"$set": {
            "first_at": {"$ifNull": ["$first_at", at]},
            "prev_day": {"$literal": seen if shifted and seen != day else prev},
            "last_day": {"$literal": day if shifted and seen != day else seen}}}], upsert=True))
        first_today = seen != day and prev != day
        _add(inc, (store["_id"], day), {"checkins": 1, f"hours.{hour}": 1, "unique": int(first_today),
                                        "new": int(seen is None)})
        if shifted and seen != day:
            # the user's newest day moves to today and the newest becomes the second-newest: the
            # per-day tallies of "newest" and "second-newest" days follow (see the module's docstring)
            _add(inc, (store["_id"], day), {"last_of": 1})
            if seen is not None:
                _add(inc, (store["_id"], seen), {"last_of": -1, "prev_of": 1})
            if prev is not None:
                _add(inc, (store["_id"], prev), {"prev_of": -1})
        firsts.append(before is None)
    await db.store_visitors.bulk_write(writes, ordered=True, session=session)
    # one write per (store, day) touched, always in the same order, all in one round trip
    await db.store_days.bulk_write([UpdateOne({"store_id": sid, "day": d}, {"$inc": inc[(sid, d)]}, upsert=True)
                                    for sid, d in sorted(inc)], ordered=True, session=session)
    return firsts


def _add(inc: dict[tuple[ObjectId, str], dict[str, int]], key: tuple[ObjectId, str], moves: dict[str, int]) -> None:
    row = inc.setdefault(key, {})
    for field, n in moves.items():
        row[field] = row.get(field, 0) + n


async def count_store_topics(services: Services, txn: Txn, post: dict[str, Any], delta: int) -> None:
    """Moves the ``store_topic_days`` tallies of a post at a store by ``delta`` (±1) for each of its
    topics, on the store-local day the post was written. Called by :func:`search.topics.sync_post`
    in the transaction that flips the post's ``topics_counted`` (published or not), so the tallies
    count exactly the published posts, like the global topic counts."""
    if not post.get("store_id") or not post.get("topic_keys"):
        return
    store = await services.db.stores.find_one({"_id": post["store_id"]}, {"timezone": 1}, session=txn.session)
    if store is None:
        return
    day, _ = _day_hour(store, post["created_at"])
    for topic in post["topic_keys"]:
        await services.db.store_topic_days.update_one({"store_id": store["_id"], "day": day, "topic": topic},
                                                      {"$inc": {"n": delta}}, upsert=True, session=txn.session)


def pending_on_zone_change(timezone: str, now: datetime) -> dict[str, Any]:
    """The update-pipeline stage that marks a store's rollups :data:`PENDING` when its ``timezone``
    becomes ``timezone``: put before the stage that saves the zone, it compares with the zone the
    store has when written, not when read (an edit that saves back the zone it read, while a
    concurrent one moved it, changes the zone too). A mark already there keeps its time."""
    saved = {"$ifNull": ["$timezone", DEFAULT_TIMEZONE]}
    return {"$set": {PENDING: {"$cond": [{"$eq": [saved, timezone]}, f"${PENDING}", now]}}}


def needs_rebuild(store: dict[str, Any]) -> bool:
    """Whether the store's rollups are not in its time zone (it is :data:`PENDING`)."""
    return store.get(PENDING) is not None


async def rebuild_store(services: Services, store: dict[str, Any]) -> bool:
    """Recomputes ``store``'s rollups from its check-ins and counted posts in ``store``'s time zone
    (after a time zone change, the sweep of :func:`rebuild_pending`, or the backfill), and clears
    the store's :data:`PENDING` mark with them. False, and no rollup written, when the store's
    saved zone is no longer that one: the change that moved it rebuilds them for its own zone.

    The history is read outside any transaction (a big store's is large); the rows are replaced in
    one, which first writes the store document, as every check-in's transaction does. So two
    rebuilds of a store (two time zone changes at once), or a rebuild and a check-in, commit one
    after the other: no duplicate day, no days of one zone left among another's, and readers see
    the old rows or the new ones, never a store without rows."""
    days, visitors = await _tally_visits(services, store)
    topics = await _tally_topics(services, store)

    async def replace(txn: Txn) -> bool:
        db, session, sid = services.db, txn.session, store["_id"]
        # a real write (a no-op update would not conflict): the store's writers queue behind it
        saved = await db.stores.find_one_and_update({"_id": sid}, {"$inc": {"rollups_rebuilt": 1}},
                                                    projection={"timezone": 1}, session=session)
        if saved is None or store_zone(saved).key != store_zone(store).key:
            return False
        await db.store_days.delete_many({"store_id": sid}, session=session)
        if days:
            await db.store_days.insert_many([{"store_id": sid, "day": d, **row} for d, row in days.items()],
                                            ordered=False, session=session)
        ops = [UpdateOne({"store_id": sid, "user_id": u},
                         {"$set": {"last_day": seen[-1], "prev_day": seen[-2] if len(seen) > 1 else None}})
               for u, seen in visitors.items()]
        for i in range(0, len(ops), BATCH):
            await db.store_visitors.bulk_write(ops[i:i + BATCH], ordered=False, session=session)
        await db.store_topic_days.delete_many({"store_id": sid}, session=session)
        if topics:
            await db.store_topic_days.insert_many(
                [{"store_id": sid, "day": d, "topic": t, "n": n} for (d, t), n in topics.items()],
                ordered=False, session=session)
        await db.stores.update_one({"_id": sid}, {"$unset": {PENDING: ""}}, session=session)
        return True

    # a post's topic row inserted after this transaction's snapshot surfaces as a duplicate key
    return await run_transaction_again_on_duplicate(services, replace)


async def _tally_visits(services: Services, store: dict[str, Any]
                        ) -> tuple[dict[str, dict[str, Any]], dict[ObjectId, list[str]]]:
    """The ``store_days`` rows (by local day) and each visitor's distinct local days, in order."""
    days: dict[str, dict[str, Any]] = defaultdict(lambda: {"checkins": 0, "hours": defaultdict(int),
                                                           "unique": 0, "new": 0})
    visitors: dict[ObjectId, list[str]] = defaultdict(list)  # the distinct days of each user, in order
    cursor = services.db.checkins.find({"store_id": store["_id"]}, {"user_id": 1, "created_at": 1, "_id": 0},
                                       sort=[("store_id", 1), ("created_at", 1)], hint="by_store_window")
    async for c in cursor:
        day, hour = _day_hour(store, c["created_at"])
        row, seen = days[day], visitors[c["user_id"]]
        row["checkins"] += 1
        row["hours"][str(hour)] += 1
        if not seen or seen[-1] != day:
            row["unique"] += 1
            row["new"] += int(not seen)
            seen.append(day)
    for seen in visitors.values():
        days[seen[-1]]["last_of"] = days[seen[-1]].get("last_of", 0) + 1
        if len(seen) > 1:
            days[seen[-2]]["prev_of"] = days[seen[-2]].get("prev_of", 0) + 1
    rows = {d: {"checkins": r["checkins"], "hours": dict(r["hours"]), "unique": r["unique"], "new": r["new"],
                "last_of": r.get("last_of", 0), "prev_of": r.get("prev_of", 0)} for d, r in days.items()}
    return rows, visitors


async def _tally_topics(services: Services, store: dict[str, Any]) -> dict[tuple[str, str], int]:
    """Published posts at the store per (local day, topic)."""
    tallies: dict[tuple[str, str], int] = defaultdict(int)
    async for post in services.db.posts.find({"store_id": store["_id"], "topics_counted": True},
                                             {"topic_keys": 1, "created_at": 1, "_id": 0}):
        day, _ = _day_hour(store, post["created_at"])
        for topic in post.get("topic_keys") or []:
            tallies[(day, topic)] += 1
    return tallies


async def backfill_visit_days(services: Services, *, force: bool = False) -> int:
    """Rollups for every store with check-ins, once (idempotent: a rebuild replaces them); returns
    the stores rebuilt."""
    db = services.db
    if not force and await db.migrations.find_one({"_id": MIGRATION_ID}) is not None:
        return 0
    done = 0
    async for store in db.stores.find({}, {"timezone": 1}):
        await rebuild_store(services, store)
        done += 1
    await db.migrations.update_one({"_id": MIGRATION_ID}, {"$set": {"done_at": datetime.now(UTC)}}, upsert=True)
    return done


async def rebuild_pending(services: Services, now: datetime | None = None) -> int:
    """Rebuilds the rollups of stores still :data:`PENDING` :data:`SWEEP_AFTER` after their time
    zone changed, oldest first; returns how many were rebuilt. Bounded per run
    (:data:`SWEEP_BATCH`, through a partial index); one failing store does not stop the others
    (it stays pending for the next run)."""
    before = (now or datetime.now(UTC)) - SWEEP_AFTER
    done = 0
    async for store in services.db.stores.find({PENDING: {"$lt": before}}, {"timezone": 1},
                                               sort=[(PENDING, 1)]).limit(SWEEP_BATCH):
        try:
            if await rebuild_store(services, store):
                done += 1
        except Exception:
            log.exception("rollups of store %s failed to rebuild again; the next sweep retries", store["_id"])
    return done
