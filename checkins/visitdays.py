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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import UpdateOne

from checkins.localtime import DEFAULT_TIMEZONE, store_zone
from solomo.core.txn import Txn, run_transaction_again_on_duplicate

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession

    from solomo.core.services import Services

log = logging.getLogger("solomo.checkins")

MIGRATION_ID = "checkins.visit_days.v1"
BATCH = 1000
PENDING = "rollups_pending_since"
"""On a store whose rollups are not (yet) in its time zone: set with the new zone by the write that
changes it (:func:`pending_on_zone_change`), or by a rebuild that had to give up, and removed by
the transaction that rebuilds them in the zone the store has then. A store without it has its
rollups in its zone (stores made before the mark existed included: every change of zone until
then rebuilt them in its request)."""
LATE = timedelta(minutes=10)
"""How long before a rebuild's read of the history a check-in may be dated and still commit after
the read: its request's clock, its wait for a group, its transaction's retries (seconds, at worst
a couple of minutes). The rebuild's transaction reads the check-ins dated since then again."""
SWEEP_AFTER = timedelta(minutes=2)
"""A store still pending this long after its time zone changed lost its request's rebuild (the
request failed after saving the zone, or its process died); a rebuild takes seconds."""
SWEEP_BATCH = 10


def _day_hour(store: dict[str, Any], at: datetime) -> tuple[str, int]:
    local = at.astimezone(store_zone(store))
    return local.strftime("%Y-%m-%d"), local.hour


VisitorRows = dict[tuple[ObjectId, ObjectId], dict[str, Any]]
"""The ``store_visitors`` rows of some visits by ``(store_id, user_id)``: what :func:`count_visit_days`
reads of them (:data:`VISITOR_FIELDS`)."""
VISITOR_FIELDS: dict[str, Any] = {"store_id": 1, "user_id": 1, "last_day": 1, "prev_day": 1, "_id": 0}


def visitors_filter(pairs: Sequence[tuple[ObjectId, ObjectId]]) -> dict[str, Any]:
    """The query for the ``store_visitors`` rows of ``(store_id, user_id)`` pairs (the unique
    ``store_user`` index, one range each)."""
    return {"$or": [{"store_id": store_id, "user_id": user_id} for store_id, user_id in pairs]}


def visitor_rows(docs: Sequence[dict[str, Any]]) -> VisitorRows:
    return {(r["store_id"], r["user_id"]): r for r in docs}


async def count_visit_days(services: Services, txn: Txn,
                           visits: Sequence[tuple[dict[str, Any], ObjectId, datetime]],
                           rows: VisitorRows | None = None) -> list[bool]:
    """Counts check-ins, each ``(store, user_id, at)`` with at most one per store and user: each
    user's ``store_visitors`` row (created with ``first_at`` on the first visit) and the stores' day
    rollups, inside the check-ins' transaction ``txn``. Returns, per visit, whether it was the
    user's first at the store.

    Two round trips whatever the number of visits, and a third to read the rows unless the caller
    read them in this transaction (``rows``: :mod:`checkins.groupcommit` reads them with the group's
    other documents): the rows are written, then the days' tallies (merged per store and day) go in
    one ``bulk_write``. The rows were read in this transaction, so a concurrent check-in that moved
    one since makes the transaction conflict and run again."""
    db, session = services.db, txn.session
    if not visits:
        return []
    if rows is None:
        rows = visitor_rows(await db.store_visitors.find(
            visitors_filter([(store["_id"], user_id) for store, user_id, _ in visits]), VISITOR_FIELDS,
            session=session).to_list(None))
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
    for name, n in moves.items():
        row[name] = row.get(name, 0) + n


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
    the store's :data:`PENDING` mark with them. False, and no rollup written, when the store's saved
    zone is no longer that one (the change that moved it rebuilds them for its own zone), or when
    the check-ins changed under the read in a way the transaction cannot make up for (then it
    marks the store: the sweep rebuilds again).

    The history is read outside any transaction (a big store's is large); the rows are replaced in
    one, which first writes the store document, as every check-in's transaction does. So two
    rebuilds of a store (two time zone changes at once), or a rebuild and a check-in, commit one
    after the other: no duplicate day, no days of one zone left among another's, and readers see
    the old rows or the new ones, never a store without rows. A check-in that committed after the
    read and before that write is not in the read: the transaction reads the store's check-ins
    dated from :data:`LATE` before the read began again and folds in the ones the read missed."""
    visits = await _tally_visits(services, store)
    topics = await _tally_topics(services, store)

    async def replace(txn: Txn) -> bool:
        db, session, sid = services.db, txn.session, store["_id"]
        # a real write (a no-op update would not conflict): the store's writers queue behind it
        saved = await db.stores.find_one_and_update({"_id": sid}, {"$inc": {"rollups_rebuilt": 1}},
                                                    projection={"timezone": 1}, session=session)
        if saved is None or store_zone(saved).key != store_zone(store).key:
            return False
        complete = await _with_late_checkins(services, txn, store, visits)
        if complete is None:  # marked (if it was not): the sweep rebuilds it again
            await db.stores.update_one({"_id": sid, PENDING: None}, {"$set": {PENDING: datetime.now(UTC)}},
                                       session=session)
            return False
        days, visitors = complete.tallies()
        await db.store_days.delete_many({"store_id": sid}, session=session)
        if days:
            await db.store_days.insert_many([{"store_id": sid, "day": d, **row} for d, row in days.items()],
                                            ordered=False, session=session)
        ops = [UpdateOne({"store_id": sid, "user_id": u}, {"$set": {"last_day": last, "prev_day": prev}})
               for u, (last, prev) in visitors.items()]
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


@dataclass
class _Visits:
    """A store's check-ins folded by store-local day: per day its check-ins and hours, per visitor
    the distinct days. The figures do not depend on the order of the folding, so check-ins found
    late fold in like the others."""

    since: datetime
    """Check-ins dated from then on are kept by id (``recent``); older ones are only counted."""
    older: int = 0
    recent: set[ObjectId] = field(default_factory=set)
    checkins: dict[str, int] = field(default_factory=dict)
    hours: dict[str, dict[str, int]] = field(default_factory=dict)
    days_of: dict[ObjectId, set[str]] = field(default_factory=dict)

    def add(self, store: dict[str, Any], c: dict[str, Any]) -> None:
        day, hour = _day_hour(store, c["created_at"])
        self.checkins[day] = self.checkins.get(day, 0) + 1
        hours = self.hours.setdefault(day, {})
        hours[str(hour)] = hours.get(str(hour), 0) + 1
        self.days_of.setdefault(c["user_id"], set()).add(day)

    def with_late(self, store: dict[str, Any], late: list[dict[str, Any]]) -> _Visits:
        """These visits and the check-ins ``late``: a copy (this one stays as read, for another
        attempt of the transaction), sharing the day sets of the visitors ``late`` leaves alone."""
        if not late:
            return self
        touched = {c["user_id"] for c in late}
        out = _Visits(self.since, self.older, set(self.recent), dict(self.checkins),
                      {d: dict(h) for d, h in self.hours.items()},
                      {**self.days_of, **{u: set(self.days_of.get(u, ())) for u in touched}})
        for c in late:
            out.add(store, c)
            out.recent.add(c["_id"])
        return out

    def tallies(self) -> tuple[dict[str, dict[str, Any]], dict[ObjectId, tuple[str, str | None]]]:
        """The ``store_days`` rows (by local day) and each visitor's newest two distinct days."""
        rows: dict[str, dict[str, Any]] = {d: {"checkins": n, "hours": self.hours[d], "unique": 0, "new": 0,
                                               "last_of": 0, "prev_of": 0} for d, n in self.checkins.items()}
        newest: dict[ObjectId, tuple[str, str | None]] = {}
        for user_id, days in self.days_of.items():
            seen = sorted(days)
            for d in seen:
                rows[d]["unique"] += 1
            rows[seen[0]]["new"] += 1
            rows[seen[-1]]["last_of"] += 1
            if len(seen) > 1:
                rows[seen[-2]]["prev_of"] += 1
            newest[user_id] = (seen[-1], seen[-2] if len(seen) > 1 else None)
        return rows, newest


async def _tally_visits(services: Services, store: dict[str, Any]) -> _Visits:
    """The store's check-ins, read outside any transaction: those dated :data:`LATE` before the
    read began or earlier from the index alone (a covered query), the newer ones with their ids."""
    visits = _Visits(since=datetime.now(UTC) - LATE)
    async for c in services.db.checkins.find({"store_id": store["_id"], "created_at": {"$lt": visits.since}},
                                             {"user_id": 1, "created_at": 1, "_id": 0},
                                             sort=[("store_id", 1), ("created_at", 1)], hint="by_store_window"):
        visits.add(store, c)
        visits.older += 1
    for c in await _recent_checkins(services, store, visits.since):
        visits.add(store, c)
        visits.recent.add(c["_id"])
    return visits


async def _recent_checkins(services: Services, store: dict[str, Any], since: datetime,
                           session: AsyncClientSession | None = None) -> list[dict[str, Any]]:
    """The store's check-ins dated ``since`` or later (with their ids)."""
    return await services.db.checkins.find(
        {"store_id": store["_id"], "created_at": {"$gte": since}}, {"user_id": 1, "created_at": 1},
        hint="by_store_window", session=session).to_list(None)


async def _with_late_checkins(services: Services, txn: Txn, store: dict[str, Any], visits: _Visits) -> _Visits | None:
    """``visits`` and the check-ins committed after they were read, as of ``txn``'s snapshot; None
    when the history changed otherwise.

    Check-ins of a store commit one after the other (each writes the store document), but not
    always in the order of their times: one dated a little earlier may commit after a later one,
    so a check-in the read missed is not simply newer than the newest read. It is, though, dated
    at most :data:`LATE` before the read began, among the check-ins read again here. Whatever else
    differs — fewer or more check-ins dated before that (a deleted account's are erased; a
    check-in made far in the past, by a tool) — returns None."""
    recent = await _recent_checkins(services, store, visits.since, txn.session)
    found = {c["_id"] for c in recent}
    older = await services.db.checkins.count_documents(
        {"store_id": store["_id"], "created_at": {"$lt": visits.since}}, session=txn.session, hint="by_store_window")
    if older != visits.older or not visits.recent <= found:
        log.warning("rollups of store %s not rebuilt: its check-ins changed during the rebuild; the sweep "
                    "rebuilds them again", store["_id"])
        return None
    return visits.with_late(store, [c for c in recent if c["_id"] not in visits.recent])


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
