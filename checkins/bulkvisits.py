"""Loading a history of past check-ins in bulk (the demo city, benchmarks), not through the API.

:func:`load_visits` writes, for each ``(user_id, at)``, exactly the documents
:func:`checkins.checkin.check_in` writes — the check-in and its check-in post (default text, or
the given topics, published and counted in the topic counts), the ``store_visitors`` row with
``first_at`` — and the store's counters, then builds the store's day and topic rollups with the start-up backfill's path
(:func:`checkins.visitdays.rebuild_store`). The check-in rules are not applied (the caller's
history is taken as it is) and no fan-out is sent (the posts are marked done): tens of thousands
of visits load in seconds.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import UpdateOne

from checkins import storeviews
from checkins.checkin import default_text, utc_day
from checkins.visitdays import rebuild_store
from solomo.core.searchkeys import post_keys, topic_prefixes

if TYPE_CHECKING:
    from solomo.core.services import Services

BATCH = 2000
PARALLEL = 4


def _post(store: dict[str, Any], user_id: ObjectId, checkin_id: ObjectId, post_id: ObjectId, at: datetime,
          topics: Sequence[str]) -> dict[str, Any]:
    text = " ".join(f"#{t}" for t in topics) or default_text(store["name"])
    return {"_id": post_id, "author_id": user_id, "text": text, "search_keys": post_keys(text),
            "topics": [{"key": t.lower(), "display": t} for t in topics], "topic_keys": [t.lower() for t in topics],
            "mention_ids": [], "mentions": [], "store_id": store["_id"],
            "store_owner_post": store.get("owner_id") == user_id, "location": store["location"], "kind": "checkin",
            "checkin_id": checkin_id, "status": "published", "flags": [], "fanout": "done", "like_count": 0,
            "comment_count": 0, "repost_count": 0, "created_at": at, "created_ms": int(at.timestamp() * 1000),
            "topics_counted": bool(topics)}


async def load_visits(services: Services, store: dict[str, Any],
                      visits: Sequence[tuple[ObjectId, datetime, Sequence[str]]]) -> int:
    """Inserts the ``(user_id, at, topics)`` check-ins at ``store`` (``at`` aware, milliseconds);
    returns how many. Topics are plain words (``coffee``), written as ``#coffee`` in the post."""
    db = services.db
    lng, lat = store["location"]["coordinates"]
    first: dict[ObjectId, datetime] = {}
    topic_posts: dict[str, int] = defaultdict(int)
    ordered = sorted(visits, key=lambda v: v[1])
    checkins, posts = [], []
    for user_id, at, topics in ordered:
        first.setdefault(user_id, at)
        cid, pid = ObjectId(), ObjectId()
        checkins.append({"_id": cid, "user_id": user_id, "store_id": store["_id"],
                         "location": {"type": "Point", "coordinates": [lng, lat]}, "distance_m": 8.0,
                         "accuracy_m": 20.0, "post_id": pid, "day": utc_day(at), "created_at": at})
        posts.append(_post(store, user_id, cid, pid, at, topics))
        for topic in topics:
            topic_posts[topic] += 1
    # a few batches in flight at once: mongod spreads the index work over its cores
    gate = asyncio.Semaphore(PARALLEL)

    async def insert(collection: str, docs: list[dict[str, Any]]) -> None:
        async with gate:
            await db[collection].insert_many(docs, ordered=False)

    await asyncio.gather(*(insert(name, docs[i:i + BATCH]) for name, docs in (("checkins", checkins), ("posts", posts))
                           for i in range(0, len(docs), BATCH)))
    # the users' guards keep their newest check-ins for the rules (checkins.checkin): these went in
    # beside them, so the lists go; the next check-in reads the check-ins and writes them again
    await db.checkin_guards.update_many({"_id": {"$in": list(first)}}, {"$unset": {"recent": ""}})
    # the posts are published and counted (``topics_counted``): so are their topics (search.topics)
    for topic, n in topic_posts.items():
        await db.topic_counts.update_one(
            {"key": topic.lower()},
            {"$setOnInsert": {"display": topic, "prefixes": topic_prefixes(topic.lower())}, "$inc": {"post_count": n}},
            upsert=True)
    ops = [UpdateOne({"store_id": store["_id"], "user_id": u}, {"$min": {"first_at": at}}, upsert=True)
           for u, at in first.items()]
    for start in range(0, len(ops), BATCH):
        await db.store_visitors.bulk_write(ops[start:start + BATCH], ordered=False)
    unique = await db.store_visitors.count_documents({"store_id": store["_id"]})
    await db.stores.update_one({"_id": store["_id"]}, {"$inc": {"checkins_count": len(ordered)},
                                                       "$set": {"unique_visitors": unique}})
    await storeviews.invalidate(services, [store["_id"]])
    await rebuild_store(services, store)
    return len(ordered)
