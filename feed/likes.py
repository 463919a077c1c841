"""Likes: one per user and post; ``posts.like_count`` moves in the same transaction as the like
document is inserted or deleted, and only when it really was, so counts never drift."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from feed.notify import notify
from feed.posts import get_visible_post
from solomo.accounts import Principal


async def _count(services: Any, post_id: ObjectId) -> int:
    doc = await services.db.posts.find_one({"_id": post_id}, {"like_count": 1})
    return int(doc.get("like_count", 0)) if doc else 0


async def like(services: Any, user: Principal, post_id: ObjectId) -> dict[str, Any]:
    post = await get_visible_post(services, post_id, user.id)
    doc = {"_id": ObjectId(), "post_id": post_id, "user_id": user.id, "created_at": datetime.now(UTC)}

    async def txn(session: Any) -> None:
        await services.db.likes.insert_one(doc, session=session)
        await services.db.posts.update_one({"_id": post_id}, {"$inc": {"like_count": 1}}, session=session)

    created = True
    try:
        async with services.mongo.start_session() as session:
            await session.with_transaction(txn)
    except DuplicateKeyError:
        created = False
    if created and post["author_id"] != user.id:
        await notify(services, post["author_id"], {
            "kind": "like", "post_id": str(post_id),
            "user": user.summary()})
    return {"like_count": await _count(services, post_id), "liked_by_me": True}


async def unlike(services: Any, user: Principal, post_id: ObjectId) -> dict[str, Any]:
    await get_visible_post(services, post_id, user.id)

    async def txn(session: Any) -> None:
        result = await services.db.likes.delete_one({"post_id": post_id, "user_id": user.id}, session=session)
        if result.deleted_count:
            await services.db.posts.update_one({"_id": post_id}, {"$inc": {"like_count": -1}}, session=session)

    async with services.mongo.start_session() as session:
        await session.with_transaction(txn)
    return {"like_count": await _count(services, post_id), "liked_by_me": False}
