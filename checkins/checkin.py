"""Checking in: the three rules, the check-in and its post in one transaction, then the fan-out.

Order of work for ``POST /v1/checkins``:

1. Load the store and apply the range rule (geodesic distance; no write needed to refuse).
2. Build the post (text validation, moderation screening, mentions) — still nothing written.
3. One MongoDB transaction:

   a. bump the user's ``checkin_guards`` document. Every check-in of a user writes this one
      document first, so two concurrent check-ins by the same user conflict on it; MongoDB aborts
      the later one with a transient write conflict and ``with_transaction`` re-runs it, now seeing
      the first one's check-in. The cooldown and travel rules are thus decided on a serial history.
   b. apply the cooldown and travel rules to the previous check-ins, which the guard keeps (its
      newest eight, pushed and read in the same write as a.);
   c. insert the check-in and its post (``fanout: "pending"``: the outbox);
   d. count the visit (``checkins_count``; ``unique_visitors`` via a unique ``store_visitors`` row);
   e. decide the mayor — from the store's ``seat`` when it can tell, else by recounting the 60-day
      standings (:mod:`checkins.mayor`) — and write it with the counters;
   f. earn loyalty points for the store-local day's first check-in (:mod:`loyalty.earning`).

4. After the commit, enqueue the post's fan-out (``Txn.after_commit``; the outbox sweep re-sends
   it if this fails).

A refused check-in (any ``ApiError`` raised inside the callback) aborts the transaction: nothing of
it is written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError
from redis.exceptions import RedisError

from checkins import mayor, rules, storeviews
from checkins.stores import get_store, store_latlng
from checkins.visitdays import count_visit_day
from feed.posts import attach_and_insert, build_post
from geo.distance import geodesic_m
from geo.geojson import geo_point
from loyalty.earning import earn_for_checkin
from media.attach import attachable, parse_media_ids
from offers.arrival import forget_judged
from solomo.core import tasknames
from solomo.core.afterwards import after_response
from solomo.core.errors import Invalid, NotFound
from solomo.core.jsonio import rfc3339
from solomo.core.txn import Txn, run_transaction

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession

    from solomo.accounts import Principal
    from solomo.core.services import Services

log = logging.getLogger("solomo.checkins")


@dataclass(frozen=True)
class CheckinResult:
    checkin: dict[str, Any]
    post: dict[str, Any]
    store: dict[str, Any]


def utc_day(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d")


def default_text(store_name: str) -> str:
    """``checked in at <store>``, with the name's ``#`` and ``@`` defused: text the user did not type
    must not open topics, mention (and notify) people, or trip the topic syntax rules."""
    return "checked in at " + store_name.replace("#", "\u266f").replace("@", "(at)")


def checkin_public(doc: dict[str, Any]) -> dict[str, Any]:
    """The contract's Checkin (plus ``accuracy_m`` and ``post_id``) as its own user sees it: with
    the device fix."""
    lng, lat = doc["location"]["coordinates"]
    return {
        "id": str(doc["_id"]),
        "user_id": str(doc["user_id"]),
        "store_id": str(doc["store_id"]),
        "lat": lat,
        "lng": lng,
        "distance_m": doc["distance_m"],
        "accuracy_m": doc.get("accuracy_m"),
        "post_id": str(doc["post_id"]) if doc.get("post_id") else None,
        "created_at": rfc3339(doc["created_at"]),
    }


def checkin_seen_by_others(doc: dict[str, Any], store_point: tuple[float, float] | None) -> dict[str, Any]:
    """The Checkin for anyone but its user (contract: Privacy): located at the store (``None`` if
    the store is gone), no distance or accuracy, the time to the second."""
    lat, lng = store_point if store_point is not None else (None, None)
    return {**checkin_public(doc), "lat": lat, "lng": lng, "distance_m": None, "accuracy_m": None,
            "created_at": rfc3339(doc["created_at"], timespec="seconds")}


async def check_in(
    services: Services,
    user: Principal,
    store_id: ObjectId | str,
    lat: float,
    lng: float,
    *,
    accuracy_m: float = rules.ACCURACY_DEFAULT_M,
    text: str | None = None,
    now: datetime | None = None,
    media_ids: Sequence[str] | None = None,
) -> CheckinResult:
    """Check ``user`` in at a store, or raise ``too_far`` / ``checkin_too_soon`` / ``impossible_travel``.

    ``now`` exists for tests and tools; the API always uses the current time.
    """
    if not 0 < accuracy_m <= rules.ACCURACY_MAX_M:
        raise Invalid(f"accuracy_m must be > 0 and at most {rules.ACCURACY_MAX_M:.0f}")
    store = await get_store(services, store_id)
    store_lat, store_lng = store_latlng(store)
    distance = geodesic_m(lat, lng, store_lat, store_lng)
    rules.check_range(distance, store["checkin_radius_m"], accuracy_m)

    now = (now or datetime.now(UTC)).astimezone(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # MongoDB keeps milliseconds
    checkin_id = ObjectId()
    media = await attachable(services, user.id, parse_media_ids(media_ids))
    post = await build_post(services, user, text if text is not None else default_text(store["name"]),
                            store=store, kind="checkin", checkin_id=checkin_id, created_at=now, media=media)
    checkin: dict[str, Any] = {
        "_id": checkin_id,
        "user_id": user.id,
        "store_id": store["_id"],
        "location": geo_point(lat, lng),
        "distance_m": round(distance, 1),
        "accuracy_m": accuracy_m,
        "post_id": post["_id"],
        "day": utc_day(now),
        "created_at": now,
    }
    here = rules.Fix(lat, lng, accuracy_m, now)

    async def transaction(txn: Txn) -> dict[str, Any]:
        db, session = services.db, txn.session
        await _apply_history_rules(services, user.id, checkin, here, session)  # also writes the guard
        await db.checkins.insert_one(checkin, session=session)
        await attach_and_insert(services, txn, post)  # with its photos, if any
        first_visit = await count_visit_day(services, txn, store, user.id, now)  # visitor row + day rollup
        counters = {"checkins_count": 1, "unique_visitors": 1 if first_visit else 0}
        counted = await _count_visit(services, store, counters, user.id, now, session)
        await earn_for_checkin(services, txn, user.id, store, checkin_id, now)  # loyalty points, once a local day
        txn.after_commit(tasknames.FANOUT_POST, str(post["_id"]))
        return counted

    for attempt in range(3):
        try:
            store = await run_transaction(services, transaction)
            break
        except DuplicateKeyError:
            # a racing first check-in created this user's guard (or visitor row) outside our
            # snapshot; the transaction was aborted as a whole, so simply run it again
            if attempt == 2:
                raise
    # its count (and maybe its mayor) moved
    await storeviews.invalidate_quietly(services, [store["_id"]], f"check-in by {user.id}")
    # not needed by the answer (the judgements matter at the user's next location)
    await after_response(lambda: _judge_offers_again(services, user.id), f"offer judgements of {user.id}")
    return CheckinResult(checkin, post, store)


async def _judge_offers_again(services: Services, user_id: ObjectId) -> None:
    """A check-in can make the user a store's visitor or regular (offer audiences): the live offers
    judged "not for this user" are judged again at their next location. Best effort after the
    commit: a lost forget only delays those offers until the judgements expire (10 minutes)."""
    try:
        await forget_judged(services, user_id)
    except (RedisError, OSError) as exc:
        log.warning("check-in by %s: offer judgements not forgotten: %s", user_id, exc)


async def _count_visit(services: Services, store: dict[str, Any], counters: dict[str, int], user_id: ObjectId,
                       now: datetime, session: AsyncClientSession) -> dict[str, Any]:
    """Counts the visit and stores the mayor (:mod:`checkins.mayor`); returns the updated store.

    The seat is decided first from the store read before the transaction — from its ``seat``
    alone when that can tell, else by recounting — so that one update writes the counters and the
    seat together, guarded by that seat still being the current one (``mayor_id`` and ``seat.seq``).
    If it moved meanwhile, the counters are written first and the standings recounted for the
    actual seat (the general path). Either way the store document is written, so concurrent
    check-ins at one store conflict and run one after another.
    """
    db = services.db
    sitting, seat = store.get("mayor_id"), store.get("seat")
    day = utc_day(now)
    decided = await mayor.quick_decision(services, store["_id"], sitting, seat, user_id, day, now, session)
    if decided is None:
        decided = await mayor.full_decision(services, store["_id"], sitting, seat, now, session)
    chosen, after = decided
    guard = {"_id": store["_id"], "mayor_id": sitting, "seat.seq": seat["seq"] if seat else None}
    update = {"$inc": counters, "$set": {"mayor_id": chosen, "seat": after}}
    counted = await db.stores.find_one_and_update(guard, update, return_document=ReturnDocument.AFTER, session=session)
    if counted is not None:
        return counted
    counted = await db.stores.find_one_and_update({"_id": store["_id"]}, {"$inc": counters},
                                                  return_document=ReturnDocument.AFTER, session=session)
    if counted is None:
        raise NotFound("store not found")
    chosen, after = await mayor.full_decision(services, store["_id"], counted.get("mayor_id"), counted.get("seat"),
                                              now, session)
    await db.stores.update_one({"_id": store["_id"]}, {"$set": {"mayor_id": chosen, "seat": after}}, session=session)
    counted.update(mayor_id=chosen, seat=after)
    return counted


HISTORY_SCAN = 8
"""Newest check-ins the user's guard keeps (``recent``): the previous check-in is the first, and the
last one at this store within the cooldown is almost always among them (else a query finds it)."""
_RECENT_FIELDS = ("_id", "store_id", "location", "accuracy_m", "created_at")


async def _apply_history_rules(services: Services, user_id: ObjectId, checkin: dict[str, Any], here: rules.Fix,
                               session: AsyncClientSession) -> None:
    """Cooldown at this store, then travel speed from the previous check-in anywhere.

    One ``findAndModify`` of the user's ``checkin_guards`` document serialises the user's check-ins
    (step a) and brings their history: it keeps the newest :data:`HISTORY_SCAN` check-ins
    (``recent``, newest first) and the new one is pushed in the same write, answered with the list
    as it was before. A refusal below aborts the transaction, the push with it. Before this list
    existed (or after a guard was lost) the check-ins are read instead, and the list is written
    from them once. So a check-in costs one round trip here, not two (a guard write, then a read).
    """
    checkins, guards = services.db.checkins, services.db.checkin_guards
    entry = {k: checkin[k] for k in _RECENT_FIELDS}
    newest_first = {"created_at": DESCENDING, "_id": DESCENDING}
    before = await guards.find_one_and_update(
        {"_id": user_id},
        {"$inc": {"n": 1}, "$set": {"at": here.at},
         "$push": {"recent": {"$each": [entry], "$sort": newest_first, "$slice": HISTORY_SCAN}}},
        projection={"recent": 1}, upsert=True, return_document=ReturnDocument.BEFORE, session=session)
    recent = (before or {}).get("recent")
    if recent is None:  # no list yet: the history from the check-ins themselves, kept from now on
        recent = await checkins.find({"user_id": user_id}, {k: 1 for k in _RECENT_FIELDS}, session=session,
                                     sort=list(newest_first.items())).to_list(HISTORY_SCAN)
        if recent:  # (a first check-in ever: the push above made the whole list)
            await guards.update_one({"_id": user_id}, {"$push": {"recent": {
                "$each": recent, "$sort": newest_first, "$slice": HISTORY_SCAN}}}, session=session)
    if not recent:
        return
    store_id = checkin["store_id"]
    previous = recent[0]
    cutoff = here.at - rules.COOLDOWN
    same_store_at = next((c["created_at"] for c in recent if c["store_id"] == store_id and c["created_at"] > cutoff),
                         None)
    if same_store_at is None and len(recent) == HISTORY_SCAN and recent[-1]["created_at"] > cutoff:
        last_here = await checkins.find_one(
            {"user_id": user_id, "store_id": store_id, "created_at": {"$gt": cutoff}},
            {"created_at": 1}, sort=[("created_at", DESCENDING)], session=session)
        same_store_at = last_here["created_at"] if last_here else None
    rules.check_cooldown(same_store_at, here.at)
    lng, lat = previous["location"]["coordinates"]
    before_fix = rules.Fix(lat, lng, previous.get("accuracy_m", rules.ACCURACY_DEFAULT_M), previous["created_at"])
    rules.check_travel(before_fix, here, geodesic_m(lat, lng, here.lat, here.lng))
