"""What a like, comment, follow or repost owes its audience, kept on the action's own document until
it is recorded: the notifications' outbox.

The actor's answer does not wait for the inbox: the notices are recorded once the answer is sent
(:func:`record_soon`, :mod:`solomo.core.afterwards`). So that nothing acknowledged is lost when the
process dies after the answer, or MongoDB or Redis fail while recording, the action's transaction
writes what it owes on the document it writes anyway (:func:`pending`: a field of the like, the
follow, the comment or the repost, no round trip of its own)::

    notify: {since, notices: [{kind, recipient_id, actor_id, post_id?, comment_id?}]}

After the answer every notice is recorded (``strict``: a failure leaves the field) and the field is
cleared. :func:`sweep_pending` (beat's ``maintenance.sweep_notifications``) records whatever is
still pending :data:`SWEEP_AFTER` later, then clears it. A notice recorded twice (the fast path and
the sweep, or a crash between recording and clearing) still tells its recipient once:
:func:`notifications.recorder.record` counts an actor once per subject and announces an entry until
its event is out, once per version (``notif:sent``).

An action undone meanwhile tells nobody: an unlike or an unfollow deletes the document, field and
all; a comment or repost no longer published (deleted, removed) has its field cleared unrecorded.
A repeat of the action (``created`` false: a retried like) does nothing here: the first one's field
is recorded by its own fast path or by the sweep.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bson import ObjectId
from pymongo.errors import PyMongoError

from feed.posts import VISIBLE
from notifications import recorder
from solomo.core.afterwards import after_response
from solomo.core.eventtypes import NotificationKind
from solomo.core.mongo import REDONE
from solomo.core.services import Services
from solomo.core.timeutil import from_ms, ms_of

log = logging.getLogger("solomo.notifications.outbox")

FIELD: Final = "notify"
"""The field an action's document carries while its notices are owed (partial index ``notify_pending``)."""
COLLECTIONS: Final = ("comments", "follows", "likes", "posts")
"""The collections whose documents may carry :data:`FIELD` (``posts``: reposts)."""
SWEEP_AFTER = timedelta(seconds=30)
"""How long the fast path has before the sweep records a field it left: far more than its eight or
so round trips, so a healthy process is not raced by the sweep (which would be harmless anyway)."""
SWEEP_LIMIT = 200
"""Documents a sweep run takes per collection, oldest first: one run stays short."""


@dataclass(frozen=True)
class Notice:
    """One :func:`notifications.recorder.record` owed: ``actor_id`` did ``kind`` to ``recipient_id``."""

    kind: NotificationKind
    recipient_id: ObjectId
    actor_id: ObjectId
    post_id: ObjectId | None = None
    comment_id: ObjectId | None = None


def pending(notices: list[Notice], now: datetime) -> dict[str, Any]:
    """The field to write on the action's document in its own transaction; ``{}`` when it tells
    nobody (nobody is told of their own action: no field to write and clear for those)."""
    owed = [n for n in notices if n.recipient_id != n.actor_id]
    if not owed:
        return {}
    # stored to the millisecond, as MongoDB keeps it: the clear matches this very value
    return {FIELD: {"since": from_ms(ms_of(now)), "notices": [_stored(n) for n in owed]}}


async def record_soon(services: Services, collection: str, doc: dict[str, Any]) -> None:
    """Records the notices of ``doc`` (as written, with its :func:`pending` field) once the current
    request's answer is sent (at once outside a request), then clears the field; a failure is
    logged and leaves the field to the sweep."""
    marker = doc.get(FIELD)
    if marker is None:
        return

    async def job() -> None:
        await _record(services, marker)
        await _clear(services, collection, doc["_id"], marker["since"])

    await after_response(job, f"the notifications of {collection} {doc['_id']}")


async def sweep_pending(services: Services, older_than_s: float | None = None, limit: int = SWEEP_LIMIT) -> int:
    """The outbox: records the notices still pending a while after their action, oldest first, at
    most ``limit`` documents per collection; returns how many documents it cleared. A failure stops
    the run (an outage fails it at once, not once per document) and puts that document last, so
    one that keeps failing cannot hold up the others."""
    age = SWEEP_AFTER if older_than_s is None else timedelta(seconds=older_than_s)
    cutoff = datetime.now(UTC) - age
    cleared = 0
    for collection in COLLECTIONS:
        cleared += await _sweep(services, collection, cutoff, limit)
    return cleared


async def _sweep(services: Services, collection: str, cutoff: datetime, limit: int) -> int:
    query = {FIELD: {"$exists": True}, f"{FIELD}.since": {"$lt": cutoff}}  # the partial index's condition
    docs = await services.db[collection].find(query, {FIELD: 1, "status": 1}).sort(
        f"{FIELD}.since", 1).limit(limit).to_list(None)
    # an account erased since its notice was owed is told nothing: the erasure emptied its inbox
    # and event history, and the sweep must not write them again (the fast path runs at once)
    gone = {u["_id"] async for u in services.db.users.find(
        {"_id": {"$in": list({n["recipient_id"] for d in docs for n in d[FIELD]["notices"]})},
         "status": "deleted"}, {"_id": 1})} if docs else set()
    for doc in docs:
        marker = doc[FIELD]
        try:
            if _stands(doc):
                await _record(services, marker, skip=gone)
        except Exception:
            await _put_last(services, collection, doc["_id"], marker["since"])
            raise
        await _clear(services, collection, doc["_id"], marker["since"])
    return len(docs)


def _stands(doc: dict[str, Any]) -> bool:
    """Whether the action is still there to tell of: likes and follows have no status (an undone one
    has no document); a comment or a repost tells while it is published."""
    status: str = doc.get("status", VISIBLE)
    return status == VISIBLE


async def _record(services: Services, marker: dict[str, Any], skip: AbstractSet[ObjectId] = frozenset()) -> None:
    for notice in marker["notices"]:
        if notice["recipient_id"] in skip:
            continue
        await recorder.record(services, notice["kind"], notice["recipient_id"], notice["actor_id"],
                              post_id=notice.get("post_id"), comment_id=notice.get("comment_id"), strict=True)


async def _clear(services: Services, collection: str, doc_id: ObjectId, since: datetime) -> None:
    """Only the field this run recorded (a comment approved again carries a newer one). REDONE: a
    clear lost in a crash leaves the field, and the sweep's second recording tells nobody twice."""
    await services.db[collection].with_options(write_concern=REDONE).update_one(
        {"_id": doc_id, f"{FIELD}.since": since}, {"$unset": {FIELD: ""}})


async def _put_last(services: Services, collection: str, doc_id: ObjectId, since: datetime) -> None:
    """A document whose recording failed goes to the back of the sweep's queue (best effort: in an
    outage this write fails too, and the order does not matter then)."""
    with contextlib.suppress(PyMongoError):
        await services.db[collection].update_one({"_id": doc_id, f"{FIELD}.since": since},
                                                 {"$set": {f"{FIELD}.since": from_ms(ms_of(datetime.now(UTC)))}})
    log.warning("the notifications of %s %s were not recorded; the sweep tries again", collection, doc_id)


def _stored(notice: Notice) -> dict[str, Any]:
    doc: dict[str, Any] = {"kind": notice.kind, "recipient_id": notice.recipient_id, "actor_id": notice.actor_id}
    if notice.post_id is not None:
        doc["post_id"] = notice.post_id
    if notice.comment_id is not None:
        doc["comment_id"] = notice.comment_id
    return doc
