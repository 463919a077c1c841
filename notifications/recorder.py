"""Recording notifications: the one way into a user's inbox, and the one place that announces them.

An inbox entry is one document in ``notifications``::

    {_id, recipient_id, kind, subject, actor_ids [oldest → newest, the last ACTORS_KEPT],
     actor_count, post_id|null, comment_id|null, offer_id|null, read, open (true while unread),
     announce (true until its socket event is published), created_at, updated_at, updated_ms,
     expires_at}

``subject`` names what the entry is about: ``post:<id>`` for likes, reposts and mentions in a
post, ``comment:<id>`` for comments, replies and mentions in a comment, ``user:<actor>`` for a
follow, ``offer:<id>`` for an offer. Rules (contract: Notifications):

* Grouped while unread: likes and reposts of one post add their actor to the recipient's *open*
  entry for that subject (the unique partial index ``open_group``: concurrent first likes make one
  entry); reading an entry closes it, and the next like starts a new one. Every other kind has one
  actor per subject, so it is an entry of its own.
* Deduplicated: an actor already counted for a subject (in any entry, read or not, within the
  retention) is not counted again, so like/unlike/like is one actor and follow/unfollow/follow one
  notification; nothing is announced for a repeat, so the event history is not flooded either.
  A grouped entry keeps its newest :data:`ACTORS_KEPT` actor ids: only someone who liked before
  that many others did could be counted twice.
* Nobody is told of their own action, nor of one by a user they block or mute
  (:func:`feed.blocks.silences`).
* Bounded: at most :data:`INBOX_CAP` entries per recipient (a new entry trims the oldest beyond
  it) and each expires :data:`RETENTION` after its last update (TTL index), whatever one account
  does to another's inbox.

:func:`announce` is the one function that publishes the ``notification`` socket event (the
Notification as the recipient sees it plus their new unread ``total``); the entry carries
``announce: true`` from its write until that publish succeeded, so a recording repeated after a
failed publish (the fan-out's retry, the outbox's sweep) announces it then, and a repeat after a
success announces nothing. A process killed between the publish and clearing the flag leaves it
set: the re-run's publish finds the recipient in the version's dedupe set
(:func:`solomo.core.keys.notification_sent`, written by the same script as the event, kept
:data:`ANNOUNCED_TTL_S`) and records nothing, so the recipient is told once. Offers are recorded
per delivery and pulled into an inbox when it is read (:mod:`notifications.offerinbox`): their
``offer`` event already tells the socket, so no second event is sent.

Likes, comments, follows and reposts record after their own commit and after their answer is
sent, what they owe kept on their own document until it is recorded (:mod:`notifications.outbox`).
They and the fan-out's mentions record with ``strict=True``: a failure raises, and the outbox's
sweep or the task's retry records again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from feed.blocks import silences

# Modules, not their functions: feed.comments records notifications and notifications.render shows
# comments, so whichever of the two is imported first finds the other partly initialised.
from notifications import inbox, offerinbox, render
from solomo.core import keys
from solomo.core.eventtypes import NotificationEvent, NotificationKind
from solomo.core.services import Services
from solomo.core.timeutil import ms_of

log = logging.getLogger("solomo.notifications")

GROUPED: frozenset[str] = frozenset({"like", "repost"})
"""Kinds whose actors share one entry per post while it is unread."""
INBOX_CAP = 500
"""Entries kept per recipient; a new entry beyond it drops the oldest."""
ACTORS_KEPT = 200
"""Actor ids a grouped entry keeps for the dedupe (the newest); ``actor_count`` counts them all."""
RETENTION = timedelta(days=90)
"""An entry expires this long after its last update."""
DUPLICATE_KEY = 11000
ANNOUNCED_TTL_S = 86400
"""How long an entry's version remembers it was announced (a retried task runs well within)."""


def _subject(kind: str, actor_id: ObjectId, post_id: ObjectId | None, comment_id: ObjectId | None) -> str:
    if kind == "follow":
        return f"user:{actor_id}"
    if kind in ("comment", "reply") or (kind == "mention" and comment_id is not None):
        if comment_id is None:
            raise ValueError(f"a {kind} notification names its comment")
        return f"comment:{comment_id}"
    if post_id is None:
        raise ValueError(f"a {kind} notification names its post")
    return f"post:{post_id}"


async def record(services: Services, kind: NotificationKind, recipient_id: ObjectId, actor_id: ObjectId, *,
                 post_id: ObjectId | None = None, comment_id: ObjectId | None = None,
                 strict: bool = False) -> bool:
    """Records that ``actor_id`` did ``kind`` to ``recipient_id`` (about ``post_id`` / ``comment_id``)
    and announces it; False when nothing new was recorded (own action, silenced, a repeat).

    Best effort unless ``strict``: called after the action's commit, a failure is logged and the
    action stands. ``strict`` (the outbox and the fan-out, which record again after a failure)
    raises instead."""
    if kind == "offer":
        raise ValueError("offers are recorded with notifications.offerinbox.record_offers")
    try:
        if actor_id == recipient_id or await silences(services, recipient_id, actor_id):
            return False
        entry = await _add_actor(services, kind, recipient_id, actor_id, _subject(kind, actor_id, post_id, comment_id),
                                 post_id, comment_id)
        if entry is None:
            return False
        if entry["actor_count"] == 1:  # a new entry: keep the inbox within its cap
            await trim(services, recipient_id)
        await announce(services, entry, strict=strict)
        return True
    except Exception as exc:
        if strict:
            raise
        log.warning("could not record a %s notification for %s: %s", kind, recipient_id, exc)
        return False


async def _add_actor(services: Services, kind: str, recipient_id: ObjectId, actor_id: ObjectId, subject: str,
                     post_id: ObjectId | None, comment_id: ObjectId | None) -> dict[str, Any] | None:
    """Adds the actor to the recipient's open entry for ``subject`` (creating it); the entry after
    the write, or None when the actor was already counted (then nothing was written). An entry whose
    earlier announcement failed is returned as it is, to be announced now."""
    coll = services.db.notifications
    key = {"recipient_id": recipient_id, "kind": kind, "subject": subject}
    seen = await coll.find_one({**key, "actor_ids": actor_id})
    if seen is not None:
        return seen if seen.get("announce") else None
    now = datetime.now(UTC)
    update = {
        "$push": {"actor_ids": {"$each": [actor_id], "$slice": -ACTORS_KEPT}},
        "$inc": {"actor_count": 1},
        "$set": {"updated_at": now, "updated_ms": ms_of(now), "expires_at": now + RETENTION, "read": False,
                 "announce": True},
        "$setOnInsert": {"created_at": now, "post_id": post_id, "comment_id": comment_id, "offer_id": None},
    }
    # Two tries: a concurrent first actor may create the open entry between our filter and our
    # insert (the unique index refuses ours; the retry joins theirs). A second refusal means this
    # very actor raced itself (a double click): already counted.
    for _ in range(2):
        try:
            doc: dict[str, Any] | None = await coll.find_one_and_update(
                {**key, "open": True, "actor_ids": {"$ne": actor_id}}, update, upsert=True,
                return_document=ReturnDocument.AFTER)
            return doc
        except DuplicateKeyError:
            continue
    return None


async def announce(services: Services, entry: dict[str, Any], *, strict: bool = False) -> None:
    """THE place a ``notification`` event is published: the entry rendered for its recipient, plus
    the recipient's unread total, appended to their event history and sent to their sockets
    (Web Push for users without a socket hooks in here). Clears the entry's ``announce`` flag once
    published (only if no newer actor updated it meanwhile: that one announces itself)."""
    recipient = entry["recipient_id"]
    [shown] = await render.render_entries(services, recipient, [entry])
    counts = await inbox.unread_counts(services, recipient)
    event = NotificationEvent(**shown, total=counts["total"])
    try:
        # once per version of the entry: a crash after the event but before the mark below makes
        # the re-run (a retried task) announce the same version again, which this set skips
        await services.events.publish_each(
            event.event_type, [(str(recipient), event.data())], once_ttl_s=ANNOUNCED_TTL_S,
            once_key=lambda bucket: keys.notification_sent(entry["_id"], entry["updated_ms"], bucket))
    except Exception as exc:
        if strict:
            raise
        log.warning("could not announce notification %s: %s", entry["_id"], exc)
        return
    await services.db.notifications.update_one({"_id": entry["_id"], "updated_ms": entry["updated_ms"]},
                                               {"$unset": {"announce": ""}})


async def forget_actor(services: Services, recipient_id: ObjectId, actor_id: ObjectId) -> None:
    """The recipient blocked or muted the actor: what the actor did leaves the recipient's inbox —
    entries of theirs alone are deleted, groups lose them (and count one fewer) — so lists and
    unread counts agree with the silence from now on. For ``feed.blocking`` to call after a block
    or mute commits; idempotent (a second call finds nothing)."""
    await _drop_actor(services, {"recipient_id": recipient_id}, actor_id)


async def erase_user(services: Services, user_id: ObjectId) -> None:
    """Account erasure (``DELETE /v1/me``): the user's own inbox goes, and they leave everyone
    else's (entries of theirs alone are deleted, groups lose them). Idempotent: a step of the
    erasure list, which may run again after an interruption."""
    async for entry in services.db.notifications.find({"recipient_id": user_id}, {"updated_ms": 1}):
        await services.redis.delete(keys.notification_sent(entry["_id"], entry["updated_ms"], keys.bucket_of(user_id)))
    await services.db.notifications.delete_many({"recipient_id": user_id})
    await offerinbox.forget_recipient(services, user_id)
    await _drop_actor(services, {}, user_id)


async def _drop_actor(services: Services, scope: dict[str, Any], actor_id: ObjectId) -> None:
    coll = services.db.notifications
    await coll.delete_many({**scope, "actor_ids": actor_id, "actor_count": {"$lte": 1}})
    await coll.update_many({**scope, "actor_ids": actor_id},
                           {"$pull": {"actor_ids": actor_id}, "$inc": {"actor_count": -1}})


async def trim(services: Services, recipient_id: ObjectId) -> None:
    """Drops the recipient's entries beyond the newest :data:`INBOX_CAP` (a covered index scan)."""
    coll = services.db.notifications
    cursor = coll.find({"recipient_id": recipient_id}, {"_id": 1}).sort(
        [("updated_ms", -1), ("_id", -1)]).skip(INBOX_CAP).limit(1000)
    old = [d["_id"] for d in await cursor.to_list(None)]
    if old:
        await coll.delete_many({"_id": {"$in": old}, "recipient_id": recipient_id})
