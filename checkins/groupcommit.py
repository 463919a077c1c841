"""The check-ins of a process committed in groups: one MongoDB transaction for many check-ins.

A check-in is a transaction of a dozen small writes (its guard, the check-in, its post, the visitor
row, the day's rollup, the store's counters and seat), and both the API and mongod pay for them per
round trip (docs/benchmarks.md, check-ins). So the check-ins that arrive together are committed
together (:mod:`solomo.core.groupwrite`): each request prepares its documents (the store, the range
rule, the post) and queues them, and one transaction for the group

1. reads the stores, the users' guards, the visitor rows and, where another user holds the seat,
   the user's days at the store in the mayor's window, all in one round trip (:func:`_snapshot`);
2. applies the cooldown and travel rules to each user's history (the guard's newest
   :data:`HISTORY_SCAN` check-ins) — a refused check-in is left out of the writes and answered
   with its rule's error, the others go on;
3. writes the guards (each pushes its check-in into the user's history), the check-ins, the posts,
   the visitor rows and day rollups (:func:`checkins.visitdays.count_visit_days`), and the stores'
   counters with their seats, each kind in one round trip;
4. decides each store's mayor (:mod:`checkins.mayor`; the quick decision from the seat and the
   days read in 1., else a recount: round trips only where needed) and earns the group's loyalty points
   (:mod:`loyalty.earning`: three round trips for the group, none outside the programme);
5. sends each post's fan-out after the commit (``Txn.after_commit``).

Why this stays exact. A group holds at most one check-in per user and per store (:func:`take`), so
within it nothing needs ordering. Across groups and processes, every check-in writes its user's
guard and its store, and the transaction read both: a concurrent transaction that committed either
since makes MongoDB abort this one with a write conflict, and it runs again on what that one wrote.
So a user's rules are decided on their serial history and a store's seat on its serial check-ins,
as they were with one transaction per check-in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import DESCENDING, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from checkins import mayor, rules
from checkins.visitdays import VISITOR_FIELDS, VisitorRows, count_visit_days, visitor_rows, visitors_filter
from feed.posts import attach_and_insert
from loyalty.earning import Visit, earn_for_checkins
from solomo.core import tasknames
from solomo.core.errors import ApiError, NotFound, Unavailable
from solomo.core.groupwrite import GroupWriter
from solomo.core.idempotency import mark_written_for
from solomo.core.txn import Txn, is_duplicate, run_transaction_again_on_duplicate

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession

    from solomo.core.services import Services

GROUP_MAX = 64
"""The most check-ins one transaction commits."""
HISTORY_SCAN = 8
"""Newest check-ins the user's guard keeps (``recent``): the previous check-in is the first, and the
last one at this store within the cooldown is almost always among them (else a query finds it)."""
_RECENT_FIELDS = ("_id", "store_id", "location", "accuracy_m", "created_at")
_NEWEST_FIRST = {"created_at": DESCENDING, "_id": DESCENDING}


@dataclass(frozen=True)
class Pending:
    """A check-in ready to commit: its documents and the request's Idempotency-Key reservation.
    ``challenger``: as the store read before it showed, another user holds the seat, so the seat's
    quick decision will count this user's days there (:func:`_snapshot` reads them then)."""

    checkin: dict[str, Any]
    post: dict[str, Any]
    here: rules.Fix
    reservation: ObjectId | None
    challenger: bool = False

    @property
    def user_id(self) -> ObjectId:
        return self.checkin["user_id"]  # type: ignore[no-any-return]

    @property
    def store_id(self) -> ObjectId:
        return self.checkin["store_id"]  # type: ignore[no-any-return]


class Duplicate(Unavailable):
    """A racing first check-in (in another process) created a user's guard or visitor row outside
    this transaction's snapshot, three attempts running: each check-in of the group is tried alone,
    and one that meets it alone answers 503 with Retry-After (nothing of it was written)."""


def take(queued: list[Pending]) -> list[int]:
    """The next group: queued check-ins in order, at most one per user and per store."""
    users: set[ObjectId] = set()
    stores: set[ObjectId] = set()
    chosen: list[int] = []
    for i, p in enumerate(queued):
        if p.user_id in users or p.store_id in stores:
            continue
        users.add(p.user_id)
        stores.add(p.store_id)
        chosen.append(i)
        if len(chosen) == GROUP_MAX:
            break
    return chosen


async def commit(services: Services, group: list[Pending]) -> list[dict[str, Any] | BaseException]:
    """Commits ``group``; per check-in the store as counted, or the error refusing it."""
    try:
        return await run_transaction_again_on_duplicate(services, lambda txn: _write(services, txn, group))
    except (DuplicateKeyError, BulkWriteError) as exc:
        if not is_duplicate(exc):
            raise
        raise Duplicate("check-ins raced this one; try again", headers={"Retry-After": "1"}) from exc


@dataclass(frozen=True)
class Snapshot:
    """What a group's transaction reads before it writes, by id: the stores, the users' guards, the
    visitor rows (:mod:`checkins.visitdays`) and, for each ``challenger`` check-in, the user's days
    at the store in the mayor's window before it (:mod:`checkins.mayor`; none: no rows)."""

    stores: dict[ObjectId, dict[str, Any]]
    guards: dict[ObjectId, dict[str, Any]]
    visitors: VisitorRows
    days: dict[tuple[ObjectId, ObjectId], list[mayor.Day]]


async def _snapshot(services: Services, session: AsyncClientSession, group: list[Pending]) -> Snapshot:
    """The group's reads in ONE round trip: an aggregation over the group's stores that adds the
    other three reads as ``$lookup``s of their own collections (uncorrelated: each runs once, on its
    own index). A transaction reads one snapshot whatever the order of its reads, and these
    documents are written only after, so this is what four reads in turn saw (a check-in waits for
    each round trip: docs/benchmarks.md, thirty-sixth round). The days are read for the
    ``challenger`` check-ins only (an index range of the user's own check-ins there, at most one
    row per day of the window): for a group of 27 they cost mongod as much as the other three
    reads together, and a check-in by the mayor, or at a store without one, never needs them. A
    seat that changed hands since the store's read before the group is decided by reading them
    then (:func:`checkins.mayor.quick_decision` without ``before``). No store found: nothing.
    MongoDB refuses a ``$lookup`` of a sharded collection in a transaction: sharding the guards, the
    visitor rows or the check-ins takes these reads apart again (docs/scaling.md)."""
    pairs = [(p.store_id, p.user_id) for p in group]
    challengers = [(p.store_id, p.user_id, p.here.at) for p in group if p.challenger]
    pipeline: list[dict[str, Any]] = [
        {"$match": {"_id": {"$in": [p.store_id for p in group]}}},
        {"$project": {"search_keys": 0}},
        {"$group": {"_id": None, "stores": {"$push": "$$ROOT"}}},
        {"$lookup": {"from": "checkin_guards", "as": "guards", "pipeline": [
            {"$match": {"_id": {"$in": [p.user_id for p in group]}}}, {"$project": {"recent": 1}}]}},
        {"$lookup": {"from": "store_visitors", "as": "visitors", "pipeline": [
            {"$match": visitors_filter(pairs)}, {"$project": VISITOR_FIELDS}]}},
    ]
    if challengers:
        pipeline.append({"$lookup": {"from": "checkins", "as": "days", "pipeline": mayor.days_pipeline(challengers)}})
    cursor = await services.db.stores.aggregate(pipeline, session=session)
    found = await cursor.to_list(None)
    if not found:
        return Snapshot({}, {}, {}, {})
    [read] = found
    return Snapshot({s["_id"]: s for s in read["stores"]}, {g["_id"]: g for g in read["guards"]},
                    visitor_rows(read["visitors"]), mayor.days_by_visitor(read.get("days", [])))


async def _write(services: Services, txn: Txn, group: list[Pending]) -> list[dict[str, Any] | BaseException]:
    db, session = services.db, txn.session
    read = await _snapshot(services, session, group)
    stores, guards = read.stores, read.guards
    outcomes: list[dict[str, Any] | BaseException | None] = [None] * len(group)
    backfills: dict[int, list[dict[str, Any]]] = {}
    for i, p in enumerate(group):
        if p.store_id not in stores:
            outcomes[i] = NotFound("store not found")
            continue
        try:
            backfills[i] = await _apply_history_rules(services, p, guards.get(p.user_id), session)
        except ApiError as exc:  # refused: this check-in writes nothing, the others go on
            outcomes[i] = exc
    accepted = [i for i, outcome in enumerate(outcomes) if outcome is None]
    if not accepted:
        return [o for o in outcomes if o is not None]
    ready = [group[i] for i in accepted]

    await db.checkin_guards.bulk_write([_guard_write(p, backfills[i]) for i, p in zip(accepted, ready, strict=True)],
                                       ordered=True, session=session)
    await db.checkins.insert_many([p.checkin for p in ready], ordered=True, session=session)
    await attach_and_insert(services, txn, [p.post for p in ready])  # with their photos, if any
    firsts = await count_visit_days(services, txn, [(stores[p.store_id], p.user_id, p.here.at) for p in ready],
                                    rows=read.visitors)
    counted = [await _decide_seat(services, stores[p.store_id], p, first,
                                  read.days.get((p.store_id, p.user_id), []) if p.challenger else None, session)
               for p, first in zip(ready, firsts, strict=True)]
    await db.stores.bulk_write([UpdateOne({"_id": c["_id"]}, update) for c, update in counted], ordered=True,
                               session=session)
    await earn_for_checkins(services, txn, [Visit(p.user_id, store, p.checkin["_id"], p.here.at)  # once a local day
                                            for p, (store, _) in zip(ready, counted, strict=True)])
    for p in ready:
        txn.after_commit(tasknames.FANOUT_POST, str(p.post["_id"]))
    await mark_written_for(services, session, [p.reservation for p in ready if p.reservation is not None])
    for i, (store, _) in zip(accepted, counted, strict=True):
        outcomes[i] = store
    return [o for o in outcomes if o is not None]


async def _apply_history_rules(services: Services, p: Pending, guard: dict[str, Any] | None,
                               session: AsyncClientSession) -> list[dict[str, Any]]:
    """Cooldown at this store, then travel speed from the previous check-in anywhere; raises the
    refusing rule's error. Returns the history to write into a guard that has none yet.

    The guard keeps the user's newest :data:`HISTORY_SCAN` check-ins (``recent``, newest first),
    read with the group. Before this list existed (or after a guard was lost) the check-ins are read
    instead, and the list is written from them once."""
    recent: list[dict[str, Any]] | None = (guard or {}).get("recent")
    backfill: list[dict[str, Any]] = []
    if recent is None:
        recent = backfill = await services.db.checkins.find(
            {"user_id": p.user_id}, {k: 1 for k in _RECENT_FIELDS}, session=session,
            sort=list(_NEWEST_FIRST.items())).to_list(HISTORY_SCAN)
    if not recent:
        return backfill
    here = p.here
    cutoff = here.at - rules.COOLDOWN
    same_store_at = next((c["created_at"] for c in recent
                          if c["store_id"] == p.store_id and c["created_at"] > cutoff), None)
    if same_store_at is None and len(recent) == HISTORY_SCAN and recent[-1]["created_at"] > cutoff:
        last_here = await services.db.checkins.find_one(
            {"user_id": p.user_id, "store_id": p.store_id, "created_at": {"$gt": cutoff}},
            {"created_at": 1}, sort=[("created_at", DESCENDING)], session=session)
        same_store_at = last_here["created_at"] if last_here else None
    rules.check_cooldown(same_store_at, here.at)
    previous = recent[0]
    lng, lat = previous["location"]["coordinates"]
    before = rules.Fix(lat, lng, previous.get("accuracy_m", rules.ACCURACY_DEFAULT_M), previous["created_at"])
    rules.check_travel_between(before, here)
    return backfill


def _guard_write(p: Pending, backfill: Sequence[dict[str, Any]]) -> UpdateOne:
    """The user's guard: its count, its time, and the check-in pushed into its history (with the
    history read from the check-ins when the guard had none)."""
    entry = {k: p.checkin[k] for k in _RECENT_FIELDS}
    return UpdateOne({"_id": p.user_id}, {
        "$inc": {"n": 1}, "$set": {"at": p.here.at},
        "$push": {"recent": {"$each": [entry, *backfill], "$sort": _NEWEST_FIRST, "$slice": HISTORY_SCAN}}},
        upsert=True)


async def _decide_seat(services: Services, store: dict[str, Any], p: Pending, first_visit: bool,
                       days_before: list[mayor.Day] | None, session: AsyncClientSession
                       ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The store as this check-in leaves it (counters, mayor and seat) and the update writing that.

    The store and the user's days there (``days_before``; None: not read, read if the decision
    needs them) were read in this transaction and the check-in is already inserted, so the seat's
    quick decision (:func:`checkins.mayor.quick_decision`: those days plus this check-in) or the
    recount sees exactly the check-ins committed before plus this one."""
    sitting, seat = store.get("mayor_id"), store.get("seat")
    now = p.here.at
    day = p.checkin["day"]
    decided = await mayor.quick_decision(services, store["_id"], sitting, seat, p.user_id, day, now, session,
                                         before=days_before)
    if decided is None:
        decided = await mayor.full_decision(services, store["_id"], sitting, seat, now, session)
    chosen, after = decided
    counters = {"checkins_count": 1, "unique_visitors": 1 if first_visit else 0}
    counted = {**store, **{k: store.get(k, 0) + n for k, n in counters.items()}, "mayor_id": chosen, "seat": after}
    return counted, {"$inc": counters, "$set": {"mayor_id": chosen, "seat": after}}


def writer(services: Services) -> GroupWriter[Pending, dict[str, Any]]:
    """This process's check-in writer (``services.extras``)."""
    found = services.extras.get("checkins.group_writer")
    if not isinstance(found, GroupWriter):
        found = services.extras["checkins.group_writer"] = GroupWriter(
            lambda group: commit(services, group), take=take, per_item=(ApiError,))
    return found
