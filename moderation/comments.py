"""Moderator decisions on comments, and the queue of comments held for review.

A comment matching a review word is stored ``pending_review`` (:mod:`feed.comments`): only its
author and moderators see it, and ``posts.comment_count`` does not count it. It waits in
``GET /v1/moderation/comments`` (oldest first) until a moderator decides:

========  ==========================  =========
action    from                        to
========  ==========================  =========
approve   pending_review              published
remove    pending_review, published   removed
========  ==========================  =========

Anything else is 409 ``invalid_transition``; a missing or deleted comment is 404. The status,
the post's ``comment_count`` (+1 when a comment becomes published, −1 when a published one is
removed) and the audit entry are written in one transaction. Removing a comment leaves its
replies alone (they are judged on their own). An approved comment's notifications (post author,
parent's author, mentions) are owed in the approval's transaction and recorded after the commit, as
if it had just been published (:mod:`notifications.outbox`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from feed import postcache
from feed.comments import approved_notices, hydrate_comments
from feed.hydrate import hydrate_posts
from moderation import audit
from moderation.queue import flag_public
from notifications import outbox
from solomo.accounts import Principal
from solomo.core.errors import Conflict, NotFound
from solomo.core.jsonio import rfc3339
from solomo.core.pagination import Position, keyset_page
from solomo.core.services import Services
from solomo.core.txn import Txn, run_transaction

PUBLISHED = "published"
TRANSITIONS: dict[str, dict[str, str]] = {
    "approve": {"pending_review": PUBLISHED},
    "remove": {"pending_review": "removed", PUBLISHED: "removed"},
}


def next_status(action: str, current: str) -> str:
    target = TRANSITIONS.get(action, {}).get(current)
    if target is None:
        raise Conflict(f"cannot {action} a comment that is {current}", code="invalid_transition")
    return target


def count_delta(before: str, after: str) -> int:
    """How ``posts.comment_count`` (published comments) moves with a status change."""
    return (after == PUBLISHED) - (before == PUBLISHED)


async def moderate_comment(services: Services, moderator: Principal, comment_id: ObjectId, action: str,
                           reason: str) -> dict[str, Any]:
    """Applies one decision; returns the updated comment document."""

    async def body(txn: Txn) -> tuple[dict[str, Any], str]:
        session = txn.session
        comment = await services.db.comments.find_one({"_id": comment_id}, session=session)
        if comment is None or comment.get("status") == "deleted":
            raise NotFound("comment not found")
        before = comment["status"]
        after = next_status(action, before)
        now = datetime.now(UTC)
        # published at last: the notifications it skipped are owed in this very write
        owed = (outbox.pending(await approved_notices(services, comment), now)
                if before != PUBLISHED and after == PUBLISHED else {})
        doc = await services.db.comments.find_one_and_update(
            {"_id": comment_id, "status": before},
            {"$set": {"status": after,
                      "moderation": {"action": action, "by": moderator.id, "reason": reason, "at": now}, **owed}},
            return_document=ReturnDocument.AFTER, session=session)
        if doc is None:  # not expected: a racing writer makes the driver retry the transaction
            raise Conflict("the comment changed meanwhile; try again", code="conflict")
        delta = count_delta(before, after)
        if delta:
            await services.db.posts.update_one({"_id": comment["post_id"]}, {"$inc": {"comment_count": delta}},
                                               session=session)
        await audit.record(services, session, moderator_id=moderator.id, action=action, target_type="comment",
                           target_id=comment_id, reason=reason, before={"status": before},
                           after={"status": after, "post_id": str(comment["post_id"])})
        return doc, before

    doc, before = await run_transaction(services, body)
    if count_delta(before, doc["status"]):
        await postcache.invalidate(services, [doc["post_id"]])  # its comment_count moved
    if before != PUBLISHED and doc["status"] == PUBLISHED:  # what the approval owes (a removal records nothing)
        await outbox.record_soon(services, "comments", doc)
    return doc


async def comment_queue_page(services: Services, viewer_id: ObjectId, *, limit: int,
                             after: Position | None) -> tuple[list[dict[str, Any]], Position | None]:
    """Comments held for review, oldest first, each with its post (null when the author deleted
    it, unless it was kept as evidence) and its automatic flags; paged by ``(created_ms, id)``.
    Returns the items and the position after them."""
    docs, nxt = await keyset_page(services.db.comments, {"status": "pending_review"}, score_field="created_ms",
                                  descending=False, position=after, limit=limit)
    post_docs = await services.db.posts.find(
        {"_id": {"$in": list({d["post_id"] for d in docs})},
         "$or": [{"status": {"$ne": "deleted"}}, {"evidence": True}]}).to_list(None)
    posts = {p["id"]: p for p in await hydrate_posts(services, post_docs, viewer_id)}
    comments = await hydrate_comments(services, docs)
    items = [
        {"comment": c, "post": posts.get(c["post_id"]),
         "flags": [flag_public(f) for f in d.get("flags", [])],
         "queued_at": rfc3339(d["created_at"])}
        for d, c in zip(docs, comments, strict=True)
    ]
    return items, nxt
