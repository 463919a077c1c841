"""Likes: one per user and post; ``posts.like_count`` moves in the same transaction as the like
document is inserted or deleted, and only when it really was, so counts never drift.

After the commit, every like and unlike, a repeat too, updates the caches that feeds read: the
post's cached view is invalidated (its count moved) and the liker's likes set gets the post added
or removed (:mod:`feed.postcache`, :mod:`feed.likedset`). A repeat does so because the first
request may have committed and failed before it did. A real like tells the post's author
(:mod:`notifications.recorder`: their own likes and repeats are not news). What the like owes the
author is written on the like document itself, in the insert the like makes anyway
(:mod:`notifications.outbox`), so a like is told of even if the process dies after its answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from feed import blocks, likedset, postcache
from feed.posts import get_visible_post
from notifications import outbox
from solomo.accounts import Principal
from solomo.core.services import Services
from solomo.core.txn import Txn, run_transaction


async def _count(services: Services, post_id: ObjectId) -> int:
    doc = await services.db.posts.find_one({"_id": post_id}, {"like_count": 1})
    return _like_count(doc)


def _like_count(doc: dict[str, Any] | None) -> int:
    return int(doc.get("like_count", 0)) if doc else 0


async def _move_count(services: Services, post_id: ObjectId, by: int, txn: Txn) -> int:
    """Moves the post's ``like_count`` in the like's transaction and returns it as moved: the answer's
    count, without reading the post again after the commit (a round trip fewer a like)."""
    doc = await services.db.posts.find_one_and_update(
        {"_id": post_id}, {"$inc": {"like_count": by}}, {"like_count": 1}, return_document=ReturnDocument.AFTER,
        session=txn.session)
    return _like_count(doc)


async def _likes(services: Services, user_id: ObjectId, post_id: ObjectId) -> bool:
    """Whether ``user_id`` likes the post now (a repeat's check before it touches the caches)."""
    return await services.db.likes.find_one({"post_id": post_id, "user_id": user_id}, {"_id": 1}) is not None


async def _changed(services: Services, user: Principal, post_id: ObjectId, liked: bool) -> None:
    await postcache.invalidate(services, [post_id])
    await likedset.changed(services, user.id, post_id, liked)


async def like(services: Services, user: Principal, post_id: ObjectId) -> dict[str, Any]:
    post = await get_visible_post(services, post_id, user.id)
    await blocks.ensure_not_blocked(services, user.id, post["author_id"])  # an unlike stays possible
    now = datetime.now(UTC)
    told = outbox.Notice("like", post["author_id"], user.id, post_id=post_id)
    doc = {"_id": ObjectId(), "post_id": post_id, "user_id": user.id, "created_at": now,
           **outbox.pending([told], now)}

    async def body(txn: Txn) -> int:
        await services.db.likes.insert_one(doc, session=txn.session)
        return await _move_count(services, post_id, 1, txn)

    count: int | None
    try:
        count = await run_transaction(services, body)
    except DuplicateKeyError:
        count = None
    created = count is not None
    # on a repeat too: the first may have committed and failed before this (Redis, a killed
    # process), and the client's retry is then the only request left to put the caches right;
    # a repeat reads the like again first, so an unlike that ran meanwhile is not undone in them
    if created or await _likes(services, user.id, post_id):
        await _changed(services, user, post_id, liked=True)
    if created:
        # a like after an unlike is a new document, but the inbox counts each liker once; a repeat
        # (not created) has nothing to do: the first like's notice is recorded, or the sweep records it
        await outbox.record_soon(services, "likes", doc)
    return {"like_count": count if count is not None else await _count(services, post_id), "liked_by_me": True}


async def unlike(services: Services, user: Principal, post_id: ObjectId) -> dict[str, Any]:
    await get_visible_post(services, post_id, user.id)

    async def body(txn: Txn) -> int | None:
        result = await services.db.likes.delete_one({"post_id": post_id, "user_id": user.id}, session=txn.session)
        return await _move_count(services, post_id, -1, txn) if result.deleted_count else None

    count = await run_transaction(services, body)
    if count is not None or not await _likes(services, user.id, post_id):
        await _changed(services, user, post_id, liked=False)  # on a repeat too, as for a like
    return {"like_count": count if count is not None else await _count(services, post_id), "liked_by_me": False}
