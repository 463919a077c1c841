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
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from checkins.visitdays import count_store_topics
from feed.posts import VISIBLE
from feed.text import normalize_topic
from search.query import parse_q
from solomo.core.mongo import REDONE
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


class _TopicsMissing(Exception):
    """A topic the transaction would count has no document yet (the first post of a new topic)."""


async def sync_post(services: Services, post_id: ObjectId, post: dict[str, Any] | None = None) -> bool:
    """Brings the topic counts in line with the post's current status; True when they moved.

    ``post``: the post as the caller just read it (the fan-out reads it at the start of each round),
    or None to read it here. When its ``topics_counted`` already agrees with its status nothing is
    read or written: only a status change makes them disagree, and a status change that lands after
    the caller's read is met by the caller's next round (the fan-out's rounds end with a check of
    ``status_version``). Otherwise the transaction's first write decides: one conditional update
    flips the flag only while it still disagrees with the status, so concurrent runs move the counts
    once per status change (they conflict on the post document; the loser re-runs and finds nothing
    to do). Three round trips for a post whose topics exist, instead of a read, the topics' upserts
    and a read inside the transaction before its writes."""
    if post is None:
        post = await services.db.posts.find_one({"_id": post_id}, {"status": 1, "topics": 1, "topics_counted": 1})
    if post is None or not post.get("topics"):
        return False
    if bool(post.get("topics_counted")) == (post.get("status") == VISIBLE):
        return False

    async def body(txn: Txn) -> bool:
        doc = await services.db.posts.find_one_and_update(
            {"_id": post_id, "$or": [{"status": VISIBLE, "topics_counted": {"$ne": True}},
                                     {"status": {"$ne": VISIBLE}, "topics_counted": True}]},
            [{"$set": {"topics_counted": {"$eq": ["$status", VISIBLE]}}}],
            projection={"topics_counted": 1, "topic_keys": 1, "store_id": 1, "created_at": 1},
            return_document=ReturnDocument.AFTER, session=txn.session)
        if doc is None:  # already in line (another run got there first)
            return False
        delta = 1 if doc["topics_counted"] else -1
        keys = list(doc.get("topic_keys", []))
        moved = await services.db.topic_counts.update_many({"key": {"$in": keys}}, {"$inc": {"post_count": delta}},
                                                           session=txn.session)
        if moved.matched_count < len(set(keys)):
            raise _TopicsMissing  # aborts: the topics are made outside the transaction, then it runs again
        await count_store_topics(services, txn, doc, delta)  # a store's insights (top topics)
        return True

    # No post-cache invalidation: ``topics_counted`` is bookkeeping that no view shows, and the
    # status change that moved it has invalidated the cached view already (its writer does).
    # committed as bookkeeping (REDONE): the fan-out marks the post done only after it, and the
    # backfill its own marker; a commit lost to a crash takes those with it, and the re-run counts
    try:
        return await run_transaction(services, body, REDONE)
    except _TopicsMissing:
        await _ensure_topics(services, post["topics"])
        return await run_transaction(services, body, REDONE)


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
