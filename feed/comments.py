"""Comments with one level of replies.

A reply names a comment of the same post; replying to a reply attaches to that reply's parent
(threads stay one level deep, as on Weibo). ``posts.comment_count`` counts published comments and
moves in the same transaction as the comment's status. Deleting a comment (its author, the post's
author or a moderator) also deletes its replies; a moderator deleting someone else's comment is
audited in the same transaction, like every moderator action.

A comment matching a review word waits as ``pending_review``: shown to its author and to
moderators (who also see ``removed`` ones) until a moderator decides
(:mod:`moderation.comments`).

A published comment tells the replied-to comment's author, the post's author and the users it
mentions: what it owes them is written on the comment document in its own insert and recorded once
the answer is sent (:mod:`notifications.outbox`; a comment deleted before that tells nobody).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from feed import blocks, postcache
from feed.posts import VISIBLE, get_visible_post
from feed.text import MAX_MENTIONS, extract_mentions
from moderation import audit
from moderation.screen import screen_text
from notifications import outbox
from solomo.accounts import Principal, user_summary
from solomo.core.errors import Forbidden, Invalid, NotFound
from solomo.core.eventtypes import NotificationKind
from solomo.core.ids import maybe_id
from solomo.core.jsonio import rfc3339
from solomo.core.pagination import Position, keyset_page
from solomo.core.services import Services
from solomo.core.timeutil import ms_of
from solomo.core.txn import Txn, run_transaction

MAX_COMMENT_CHARS = 500
MODERATOR_VISIBLE = ("published", "pending_review", "removed")
"""The comments a moderator sees: all but deleted ones."""
MODERATOR_DELETE_REASON = "deleted through DELETE /v1/comments/{id}"
"""The audit entry's reason when a moderator deletes someone else's comment (the route takes no body)."""


def _visible(doc: dict[str, Any], viewer_id: ObjectId | None, role: str | None = None) -> bool:
    status = doc.get("status")
    if role == "moderator" and status in MODERATOR_VISIBLE:
        return True
    return status == VISIBLE or (status == "pending_review" and doc.get("author_id") == viewer_id)


def visibility_query(viewer_id: ObjectId, role: str | None = None) -> dict[str, Any]:
    """The MongoDB condition matching :func:`_visible`."""
    if role == "moderator":
        return {"status": {"$in": list(MODERATOR_VISIBLE)}}
    return {"$or": [{"status": VISIBLE}, {"author_id": viewer_id, "status": "pending_review"}]}


async def create_comment(services: Services, user: Principal, post_id: ObjectId, text: str,
                         reply_to: str | None = None) -> dict[str, Any]:
    post = await get_visible_post(services, post_id, user.id)
    if not text.strip() or len(text) > MAX_COMMENT_CHARS:
        raise Invalid(f"a comment is 1..{MAX_COMMENT_CHARS} characters", code="invalid")
    parent = None
    if reply_to is not None:
        parent_id = maybe_id(reply_to)
        parent = await services.db.comments.find_one({"_id": parent_id}) if parent_id else None
        if parent is None or parent["post_id"] != post_id or not _visible(parent, user.id):
            raise Invalid("reply_to must be a comment on the same post", code="invalid_reply_to")
    # neither on the post of someone who blocks (or is blocked by) the commenter, nor in reply to them
    await blocks.ensure_not_blocked(services, user.id, post["author_id"])
    if parent is not None:
        await blocks.ensure_not_blocked(services, user.id, parent["author_id"])
    verdict, flagged = await screen_text(services, text)
    now = datetime.now(UTC)
    doc = {
        "_id": ObjectId(), "post_id": post_id, "author_id": user.id, "text": text,
        "reply_to": (parent.get("reply_to") or parent["_id"]) if parent else None,
        "status": "pending_review" if verdict == "review" else VISIBLE,
        "flags": [{"source": "words", "words": flagged}] if flagged else [],
        "created_at": now, "created_ms": ms_of(now),
    }
    if doc["status"] == VISIBLE:  # a held comment tells nobody until a moderator approves it
        doc.update(outbox.pending(await _notices(services, user.id, post, doc, parent), now))

    async def body(txn: Txn) -> None:
        session = txn.session
        await services.db.comments.insert_one(doc, session=session)
        if doc["status"] == VISIBLE:
            await services.db.posts.update_one({"_id": post_id}, {"$inc": {"comment_count": 1}}, session=session)

    await run_transaction(services, body)
    if doc["status"] == VISIBLE:
        await postcache.invalidate_quietly(services, [post_id], f"comment {doc['_id']}")  # its comment_count
        await outbox.record_soon(services, "comments", doc)
    return doc


async def _notices(services: Services, actor_id: ObjectId, post: dict[str, Any], doc: dict[str, Any],
                   parent: dict[str, Any] | None) -> list[outbox.Notice]:
    """Each user hears of a comment once, the most specific way: the replied-to comment's author as
    ``reply``, then the post's author as ``comment``, then the users it mentions as ``mention``."""
    post_id, comment_id = post["_id"], doc["_id"]
    told = {actor_id}
    audience: list[tuple[ObjectId, NotificationKind]] = []
    if parent is not None:
        audience.append((parent["author_id"], "reply"))
    audience.append((post["author_id"], "comment"))
    names = extract_mentions(doc["text"])[:MAX_MENTIONS]
    audience += [(m["_id"], "mention") for m in (await services.accounts.by_usernames(names) if names else [])]
    notices = []
    for recipient, kind in audience:
        if recipient not in told:
            told.add(recipient)
            notices.append(outbox.Notice(kind, recipient, actor_id, post_id=post_id, comment_id=comment_id))
    return notices


async def approved_notices(services: Services, doc: dict[str, Any]) -> list[outbox.Notice]:
    """The notices a comment held for review skipped, for the moderator's approval to owe as if it
    had just been published (written in the approval's transaction: :mod:`notifications.outbox`).
    Its ``reply`` goes to the author of the thread's first comment (a held reply to a reply keeps
    no other)."""
    post = await services.db.posts.find_one({"_id": doc["post_id"]}, {"author_id": 1})
    if post is None:
        return []
    parent = (await services.db.comments.find_one({"_id": doc["reply_to"]}, {"author_id": 1})
              if doc.get("reply_to") else None)
    return await _notices(services, doc["author_id"], post, doc, parent)


async def list_comments(services: Services, viewer_id: ObjectId, post_id: ObjectId, after: Position | None,
                        limit: int, role: str | None = None) -> tuple[list[dict[str, Any]], Position | None]:
    """Oldest first; the cursor names the last comment seen. Moderators (``role``) also see the
    comments held for review and removed ones, on any post not deleted by its author. 404 between
    the post's author and a user one of whom blocks the other, as for the post itself."""
    await blocks.open_post(services, post_id, viewer_id, role)
    query: dict[str, Any] = {"post_id": post_id, **visibility_query(viewer_id, role)}
    return await keyset_page(services.db.comments, query, score_field="created_ms", descending=False,
                             position=after, limit=limit)


async def delete_comment(services: Services, user: Principal, comment_id: ObjectId) -> None:
    doc = await services.db.comments.find_one({"_id": comment_id})
    if doc is None or not _visible(doc, user.id, user.role):
        raise NotFound("comment not found")
    post = await services.db.posts.find_one({"_id": doc["post_id"]}, {"author_id": 1})
    allowed = doc["author_id"] == user.id or (post and post["author_id"] == user.id) or user.role == "moderator"
    if not allowed:
        raise Forbidden("only the comment's author, the post's author or a moderator can delete it")

    async def body(txn: Txn) -> bool:
        session = txn.session
        targets = {"$or": [{"_id": comment_id}, {"reply_to": comment_id}], "status": {"$ne": "deleted"}}
        published = await services.db.comments.count_documents({**targets, "status": VISIBLE}, session=session)
        result = await services.db.comments.update_many(
            targets, {"$set": {"status": "deleted", "deleted_at": datetime.now(UTC)}}, session=session)
        if published:
            await services.db.posts.update_one({"_id": doc["post_id"]}, {"$inc": {"comment_count": -published}},
                                               session=session)
        if user.role == "moderator" and doc["author_id"] != user.id:  # a moderator action, whatever the route
            await audit.record(services, session, moderator_id=user.id, action="delete", target_type="comment",
                               target_id=comment_id, reason=MODERATOR_DELETE_REASON, before={"status": doc["status"]},
                               after={"status": "deleted", "post_id": str(doc["post_id"]),
                                      "replies_deleted": max(0, result.modified_count - 1)})
        return bool(published)

    if await run_transaction(services, body):
        await postcache.invalidate(services, [doc["post_id"]])  # its comment_count moved


async def hydrate_comments(services: Services, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = list({d["author_id"] for d in docs})
    authors = {u["_id"]: u async for u in services.db.users.find({"_id": {"$in": ids}},
                                                                 {"username": 1, "display_name": 1})}
    out = []
    for d in docs:
        author = authors.get(d["author_id"])
        out.append({
            "id": str(d["_id"]), "post_id": str(d["post_id"]),
            "author": user_summary(author) if author else {"id": str(d["author_id"]), "username": "",
                                                           "display_name": ""},
            "text": d["text"], "reply_to": str(d["reply_to"]) if d.get("reply_to") else None,
            "status": d["status"], "created_at": rfc3339(d["created_at"]),
        })
    return out


