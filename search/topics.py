"""Topic search (contract: Search): topics by prefix with their post counts, most used first.

``topic_counts`` holds one document per topic ever used: ``{_id, key, display, prefixes,
post_count}`` — ``post_count`` is the number of *published* posts carrying it. It is kept in step
by the fan-out outbox: every fan-out run (publish, retract, restore; ``feed.fanout.fanout_post``)
calls :func:`sync_post`, which compares the post's status with its ``topics_counted`` flag and,
in one transaction, flips the flag and moves the counts. Runs late, twice or concurrently, the
counts still end exact; posts older than this module are counted by the start-up backfill
(:mod:`search.backfill`).
"""

from __future__ import annotations

import re
from typing import Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from checkins.visitdays import count_store_topics
from feed.posts import VISIBLE
from feed.text import normalize_topic
from search.query import parse_q
from solomo.core.pagination import Position, keyset_page
from solomo.core.searchkeys import MAX_NAME_PREFIX, topic_prefixes
from solomo.core.services import Services
from solomo.core.txn import Txn, run_transaction


async def _ensure_topics(services: Services, topics: list[dict[str, Any]]) -> None:
    # created outside the transaction: two first posts of a new topic would otherwise both insert it
    for topic in topics:
        try:
            await services.db.topic_counts.update_one(
                {"key": topic["key"]},
                {"$setOnInsert": {"display": topic["display"], "prefixes": topic_prefixes(topic["key"]),
                                  "post_count": 0}},
                upsert=True)
        except DuplicateKeyError:
            pass


async def sync_post(services: Services, post_id: ObjectId) -> bool:
    """Brings the topic counts in line with the post's current status; True when they moved."""
    post = await services.db.posts.find_one({"_id": post_id}, {"topics": 1})
    if post is None or not post.get("topics"):
        return False
    await _ensure_topics(services, post["topics"])

    async def body(txn: Txn) -> bool:
        doc = await services.db.posts.find_one({"_id": post_id}, {"status": 1, "topic_keys": 1, "topics_counted": 1,
                                                                  "store_id": 1, "created_at": 1}, session=txn.session)
        if doc is None:
            return False
        counted, should = bool(doc.get("topics_counted")), doc.get("status") == VISIBLE
        if counted == should:
            return False
        await services.db.posts.update_one({"_id": post_id}, {"$set": {"topics_counted": should}},
                                           session=txn.session)
        await services.db.topic_counts.update_many({"key": {"$in": doc.get("topic_keys", [])}},
                                                   {"$inc": {"post_count": 1 if should else -1}},
                                                   session=txn.session)
        await count_store_topics(services, txn, doc, 1 if should else -1)  # a store's insights (top topics)
        return True

    # No post-cache invalidation: ``topics_counted`` is bookkeeping that no view shows, and the
    # status change that moved it has invalidated the cached view already (its writer does).
    return await run_transaction(services, body)


async def search_topics(services: Services, q: str, *, position: Position | None,
                        limit: int) -> tuple[list[dict[str, Any]], Position | None]:
    """A page of ``{"topic", "post_count"}`` whose key starts with ``q`` (a leading ``#`` ignored)."""
    key = normalize_topic(parse_q(q).lstrip("#"))
    if not key:
        return [], None
    query: dict[str, Any] = {"prefixes": key[:MAX_NAME_PREFIX], "post_count": {"$gt": 0}}
    if len(key) > MAX_NAME_PREFIX:
        query["key"] = {"$regex": "^" + re.escape(key)}
    docs, after = await keyset_page(services.db.topic_counts, query, score_field="post_count", descending=True,
                                    position=position, limit=limit, projection={"display": 1, "post_count": 1})
    return [{"topic": d["display"], "post_count": int(d["post_count"])} for d in docs], after
