"""Moderator decisions on posts: approve, hide, remove, restore (one post or many).

Allowed transitions (anything else is 409 ``invalid_transition``; a missing post, or one its author
deleted that was not kept as evidence, is 404):

============  ==============================================  ===========
action        from                                            to
============  ==============================================  ===========
approve       pending_review, hidden, published *in queue*    published
approve       deleted (kept as evidence) *in queue*           deleted
hide          published, pending_review                       hidden
remove        published, pending_review, hidden,              removed
              deleted (kept as evidence)
restore       hidden, removed                                 published
============  ==============================================  ===========

A post its author deleted while it was under review, hidden or reported is kept as ``evidence``
(see :func:`feed.posts.delete_post`): approving closes its reports and leaves it deleted, removing
records the verdict; it can never be published again.

``hidden`` is still shown to its author, ``removed`` to nobody but moderators. Every decision
takes the post out of the queue, closes its open reports and is audited, all in one
transaction. After the commit the feeds are brought in line by the feed package's idempotent
tasks: ``fanout.retract`` when a post becomes hidden or removed, ``fanout.restore`` when a hidden
or removed post is published again, and the normal ``fanout.post`` for an approved
``pending_review`` post. Every status change also marks the post ``fanout: "pending"`` and
increments its ``status_version`` in the same transaction (the outbox), so if that task is lost the
sweep's ``fanout.post`` — which pushes a published post and retracts any other — repairs the feeds,
and a task that ran against an older status (a late retract after a restore) applies the new one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from feed import postcache
from moderation import audit
from moderation.reports import close_reports
from solomo.accounts import Principal
from solomo.core import tasknames
from solomo.core.errors import ApiError, Conflict, NotFound
from solomo.core.ids import maybe_id
from solomo.core.services import Services
from solomo.core.txn import Txn, outbox_fields, run_transaction

MAX_BULK = 100

TRANSITIONS: dict[str, dict[str, str]] = {
    "approve": {"pending_review": "published", "hidden": "published", "published": "published",
                "deleted": "deleted"},
    "hide": {"published": "hidden", "pending_review": "hidden"},
    "remove": {"published": "removed", "pending_review": "removed", "hidden": "removed", "deleted": "removed"},
    "restore": {"hidden": "published", "removed": "published"},
}


def next_status(action: str, post: dict[str, Any]) -> str:
    current = post["status"]
    target = TRANSITIONS.get(action, {}).get(current)
    if action == "approve" and current in ("published", "deleted") and "queued_ms" not in post:
        target = None  # nothing waits for a decision
    if target is None:
        raise Conflict(f"cannot {action} a post that is {current}", code="invalid_transition")
    return target


def follow_up_tasks(before: str, after: str) -> list[str]:
    """The feed tasks that bring Redis in line with a status change."""
    if after in ("hidden", "removed"):
        return [tasknames.FANOUT_RETRACT]
    if after == "published" and before == "pending_review":
        return [tasknames.FANOUT_POST]
    if after == "published" and before in ("hidden", "removed"):
        return [tasknames.FANOUT_RESTORE]
    return []


async def moderate_post(
    services: Services, moderator: Principal, post_id: ObjectId, action: str, reason: str
) -> dict[str, Any]:
    """Applies one decision; returns the updated post document."""

    async def body(txn: Txn) -> dict[str, Any]:
        session = txn.session
        post = await services.db.posts.find_one({"_id": post_id}, session=session)
        if post is None or (post.get("status") == "deleted" and not post.get("evidence")):
            raise NotFound("post not found")
        before = post["status"]
        after = next_status(action, post)
        now = datetime.now(UTC)
        update: dict[str, Any] = {
            "$set": {"status": after, "open_reports": 0, "hide_votes": 0,
                     "moderation": {"action": action, "by": moderator.id, "reason": reason, "at": now}},
            "$unset": {"queued_ms": ""},
        }
        if after != before:  # the outbox: the sweep re-sends the feed work if the fast-path task is lost
            update["$set"].update(outbox_fields(now))
            update["$unset"]["fanout_progress"] = ""
            update["$inc"] = {"status_version": 1}  # a fan-out task that read the old status redoes its work
        doc = await services.db.posts.find_one_and_update(
            {"_id": post_id, "status": before}, update, return_document=ReturnDocument.AFTER, session=session)
        if doc is None:  # not expected: a racing writer makes the driver retry the transaction
            raise Conflict("the post changed meanwhile; try again", code="conflict")
        await close_reports(services, post_id, session)
        await audit.record(services, session, moderator_id=moderator.id, action=action, target_type="post",
                           target_id=post_id, reason=reason, before={"status": before}, after={"status": after})
        for task in follow_up_tasks(before, after):
            txn.after_commit(task, str(post_id))
        return doc

    doc = await run_transaction(services, body)
    await postcache.invalidate(services, [post_id])  # feeds' cached view of the post (its status)
    return doc


async def moderate_many(
    services: Services, moderator: Principal, ids: list[str], action: str, reason: str
) -> list[tuple[str, dict[str, Any] | None, ApiError | None]]:
    """Each id on its own (its own transaction): one bad id never blocks the others.
    Returns ``(id, post document or None, error or None)`` in request order."""
    out: list[tuple[str, dict[str, Any] | None, ApiError | None]] = []
    for raw in ids:
        oid = maybe_id(raw)
        if oid is None:
            out.append((raw, None, NotFound("post not found")))
            continue
        try:
            out.append((raw, await moderate_post(services, moderator, oid, action, reason), None))
        except ApiError as exc:
            out.append((raw, None, exc))
    return out
