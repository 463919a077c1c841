"""Offers in the inbox: one record per delivery, pulled into each recipient's inbox when they read it.

An offer reaches thousands of users at once (their ``offer`` socket event or Web Push is the live
signal). Writing an inbox entry for each of them at that moment was MongoDB's largest cost in a
push — ~27–30 µs of mongod CPU an entry (a document, eight index keys, its oplog entry), 0.3
core-seconds for a 10,000-user offer, beside the push on the same machine. So a delivery is
recorded as ONE document in ``offer_deliveries``::

    {_id, offer_id, subject ("offer:<id>"), recipients [user ids], created_at, created_ms, expires_at}

(a chunk of the targeting, at most ``fanout_chunk`` users; an arrival, one), and a recipient's
entries are made from it when their inbox is next read (:func:`pull`: the page and mark-read pull
first; the unread counts add :func:`pending_count` without writing), with the delivery's time as
the entry's — the order and the unread count are what they would have been. Most recipients of
a broadcast never open their inbox before the offer expires; their entries are never written.

Pulling: the deliveries naming the recipient since their mark (``offer_inbox_marks``, per user:
the newest delivery time pulled, less :data:`OVERLAP_MS` — a delivery is stamped just before it
is written, so one stamped earlier may land after a newer one was pulled), the newest
``INBOX_CAP`` of them; entries only for offers the recipient has no entry for (read or not), so a
repeated or concurrent pull adds nothing (the unique ``open_group`` index stops a race between
two pulls); then the inbox's cap is applied and the mark moved forward (``$max``). Idempotent, so
a pull cut short is simply done again by the next read.

Bounded: a delivery document holds at most ``fanout_chunk`` ids (≤ 100,000: ~2 MB, far below
MongoDB's 16 MB) and expires with the retention of the entries it stands for; a user erased
leaves every delivery (:func:`forget_recipient`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import BulkWriteError

# the module, not its names: recorder imports the inbox, which imports this module
from notifications import recorder
from solomo.core.ids import maybe_id
from solomo.core.services import Services
from solomo.core.timeutil import ms_of

OVERLAP_MS = 60_000
"""A pull looks this far behind its mark (see the module docstring); the entries already made
for that stretch are skipped by the "no entry yet" check."""

INDEXES: dict[str, list[IndexModel]] = {
    "offer_deliveries": [
        # multikey: one key per recipient; a pull reads its recipient's range newer than the mark
        IndexModel([("recipients", ASCENDING), ("created_ms", DESCENDING)], name="by_recipient_newest"),
        IndexModel([("expires_at", ASCENDING)], name="expires", expireAfterSeconds=0),
    ],
}


async def record_offers(services: Services, offer: dict[str, Any], user_ids: Iterable[str]) -> int:
    """The users an offer was just delivered to (its ``offer`` event is their live signal) get it in
    their inbox: one delivery document; returns how many it names. The store's owner is never
    told of their own offer."""
    owner = offer.get("owner_id")
    recipients = list(dict.fromkeys(oid for oid in (maybe_id(u) for u in user_ids) if oid and oid != owner))
    if not recipients:
        return 0
    now = datetime.now(UTC)
    await services.db.offer_deliveries.insert_one({
        "_id": ObjectId(), "offer_id": offer["_id"], "subject": f"offer:{offer['_id']}", "recipients": recipients,
        "created_at": now, "created_ms": ms_of(now), "expires_at": now + recorder.RETENTION})
    return len(recipients)


async def pull(services: Services, recipient_id: ObjectId) -> int:
    """Makes the recipient's inbox entries of the offers delivered to them since their mark (see the
    module docstring); returns how many were added."""
    mark = await services.db.offer_inbox_marks.find_one({"_id": recipient_id})
    pending, newest_ms = await _unpulled(services, recipient_id, mark)
    # oldest first: entries of one millisecond then order by their ids as their deliveries did
    docs = [_entry(recipient_id, d) for d in reversed(pending)]
    added = len(docs)
    if docs:
        try:
            await services.db.notifications.insert_many(docs, ordered=False)
        except BulkWriteError as exc:  # a concurrent pull wrote some first (the open_group index)
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != recorder.DUPLICATE_KEY for e in errors):
                raise
            added -= len(errors)
        await recorder.trim(services, recipient_id)
    if newest_ms is not None:
        await services.db.offer_inbox_marks.update_one(
            {"_id": recipient_id}, {"$max": {"pulled_ms": newest_ms}}, upsert=True)
    return added


MARK_ROW = "offer_mark"
"""The field of the row :func:`mark_stage` adds: the mark's document."""


def mark_stage(recipient_id: ObjectId) -> dict[str, Any]:
    """An aggregation stage adding the recipient's mark (if any) to another collection's rows, as
    one row ``{MARK_ROW: mark}``: the unread counts read it in the counts' one round trip, for
    :func:`pending_count`."""
    return {"$unionWith": {"coll": "offer_inbox_marks", "pipeline": [
        {"$match": {"_id": recipient_id}}, {"$replaceWith": {MARK_ROW: "$$ROOT"}}]}}


async def pending_count(services: Services, recipient_id: ObjectId, mark: dict[str, Any] | None) -> int:
    """How many offer entries the recipient's next pull would add, given their ``mark`` as read by
    :func:`mark_stage` (None: they have none): the unread counts include them without writing
    anything (the web client asks for the count on every ``offer`` event, so a count that pulled
    would write each recipient's entry at push time after all)."""
    return len((await _unpulled(services, recipient_id, mark))[0])


async def _unpulled(services: Services, recipient_id: ObjectId,
                    mark: dict[str, Any] | None) -> tuple[list[dict[str, Any]], int | None]:
    """The recipient's deliveries since their ``mark`` (less the overlap), newest first, one per
    offer and only for offers they have no entry for; and the newest delivery time seen when it is
    past the mark (None: the mark stays, so a read within the overlap writes nothing)."""
    pulled = int(mark["pulled_ms"]) if mark else 0
    since = pulled - OVERLAP_MS if mark else 0
    deliveries = await services.db.offer_deliveries.find(
        {"recipients": recipient_id, "created_ms": {"$gt": since}},
        {"offer_id": 1, "subject": 1, "created_at": 1, "created_ms": 1},
    ).sort([("created_ms", DESCENDING), ("_id", DESCENDING)]).limit(recorder.INBOX_CAP).to_list(None)
    if not deliveries:
        return [], None
    newest: dict[str, dict[str, Any]] = {}
    for delivery in deliveries:  # newest first: an offer delivered twice (a chunk redone) counts once
        newest.setdefault(delivery["subject"], delivery)
    have = {d["subject"] async for d in services.db.notifications.find(
        {"recipient_id": recipient_id, "kind": "offer", "subject": {"$in": list(newest)}}, {"subject": 1})}
    newest_ms = int(deliveries[0]["created_ms"])
    return [d for subject, d in newest.items() if subject not in have], newest_ms if newest_ms > pulled else None


def _entry(recipient_id: ObjectId, delivery: dict[str, Any]) -> dict[str, Any]:
    """The inbox entry (:mod:`notifications.recorder`'s document) a delivery makes, dated by it."""
    at: datetime = delivery["created_at"]
    return {"_id": ObjectId(), "recipient_id": recipient_id, "kind": "offer", "subject": delivery["subject"],
            "actor_ids": [], "actor_count": 0, "post_id": None, "comment_id": None,
            "offer_id": delivery["offer_id"], "read": False, "open": True, "created_at": at, "updated_at": at,
            "updated_ms": int(delivery["created_ms"]), "expires_at": at + recorder.RETENTION}


async def forget_recipient(services: Services, user_id: ObjectId) -> None:
    """Account erasure: the user leaves every delivery, and their mark goes."""
    await services.db.offer_deliveries.update_many({"recipients": user_id}, {"$pull": {"recipients": user_id}})
    await services.db.offer_inbox_marks.delete_one({"_id": user_id})
