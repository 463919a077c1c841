"""Home feeds: one capped timeline per reader, written by the fan-out, read with a merge.

* A reader's feed lives in ``keys.home_key(uid)`` (see :mod:`feed.timeline`). It expires after
  ``inactive_days`` without a read, so the fan-out (which writes only existing keys) skips
  inactive readers for free; a Redis flush looks the same. Either way the next read is served
  from MongoDB straight away and a rebuild is queued (``fanout.rebuild_home``).
* Authors (and stores) with more than ``fanout_max_followers`` followers are not fanned out
  (hybrid fan-out): they carry ``feed_pull: true`` and their posts are merged in at read time.
* Follow adds the target's recent posts to the reader's feed; unfollow removes them.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import orjson
from bson import ObjectId

from feed.blocks import Screen
from feed.followed import followed_among
from feed.paging import Loader, MongoSource, RedisSource, Source, collect
from feed.posts import OWN_VISIBLE, VISIBLE, visible_to
from feed.timeline import READY, Timelines
from solomo.core import tasknames
from solomo.core.keys import PULL_CACHE, home_key, home_rebuild_lock
from solomo.core.pagination import Position, lookahead
from solomo.core.services import Services
from solomo.core.ttlrefresh import queue_expire
from solomo.core.txn import send_task

PULL_CACHE_TTL_S = 30
LOCK_TTL_S = 60


def ttl_s(services: Services) -> int:
    return max(1, int(services.settings.inactive_days * 86400))


async def _followed(services: Services, reader: ObjectId) -> tuple[list[ObjectId], list[ObjectId]]:
    users: list[ObjectId] = []
    stores: list[ObjectId] = []
    async for f in services.db.follows.find({"follower_id": reader}, {"target_type": 1, "target_id": 1, "_id": 0}):
        (users if f["target_type"] == "user" else stores).append(f["target_id"])
    return users, stores


def home_query(reader: ObjectId, users: list[ObjectId], stores: list[ObjectId]) -> dict[str, Any]:
    """Everything that belongs in ``reader``'s home feed, as one MongoDB condition."""
    branches: list[dict[str, Any]] = [{"author_id": reader, "status": {"$in": list(OWN_VISIBLE)}}]
    if users:
        branches.append({"author_id": {"$in": users}, "status": VISIBLE})
    if stores:
        branches.append({"store_id": {"$in": stores}, "store_owner_post": True, "status": VISIBLE})
    return {"$or": branches}


async def pull_targets(services: Services, cached: str | None = None) -> tuple[list[ObjectId], list[ObjectId]]:
    """Users and stores whose posts are merged at read time (cached briefly in Redis)."""
    if cached is None:
        cached = cast(str | None, await services.redis.get(PULL_CACHE))
    if cached is not None:
        data = orjson.loads(cached)
        return [ObjectId(u) for u in data["users"]], [ObjectId(s) for s in data["stores"]]
    users = [d["_id"] async for d in services.db.users.find({"feed_pull": True}, {"_id": 1})]
    stores = [d["_id"] async for d in services.db.stores.find({"feed_pull": True}, {"_id": 1})]
    await services.redis.set(PULL_CACHE, orjson.dumps({"users": [str(u) for u in users],
                                                       "stores": [str(s) for s in stores]}), ex=PULL_CACHE_TTL_S)
    return users, stores


async def mark_pull(services: Services, target_type: Literal["user", "store"], target_id: ObjectId) -> None:
    collection = "users" if target_type == "user" else "stores"
    result = await services.db[collection].update_one({"_id": target_id, "feed_pull": {"$ne": True}},
                                                      {"$set": {"feed_pull": True}})
    if result.modified_count:
        await services.redis.delete(PULL_CACHE)


async def read_home(services: Services, reader: ObjectId, before: Position | None,
                    limit: int, load: Loader | None = None,
                    screen: Screen | None = None) -> tuple[list[dict[str, Any]], Position | None]:
    """A page of the reader's home feed (documents or post views); ``load``: how posts named by the
    timeline are loaded (the API passes :meth:`feed.hydrate.PageLoader.load`: the post cache);
    ``screen``: the authors the reader blocks, mutes or is blocked by, left out of the page."""
    timelines = Timelines(services.redis)
    key = home_key(reader)
    want = lookahead(limit)  # the first round collect() reads, prefetched in this pipeline
    def queue(pipe: Any) -> None:  # one round trip for the usual page
        pipe.zscore(key, "~")
        pipe.zcard(key)
        pipe.get(PULL_CACHE)
        timelines.queue_read(pipe, key, before, want)
        queue_expire(pipe, key, ttl_s(services))  # a read keeps the reader active

    state, size, pull_cached, first_rows, *_ = await services.batch.run(queue)
    sources: list[Source]
    if state is not None and int(state) == READY:
        truncated = size - 1 >= services.settings.feed_cap
        fallback = None
        if truncated:
            fallback = MongoSource(services.db, home_query(reader, *await _followed(services, reader)))
        sources = [RedisSource(timelines, key, fallback, first=(before, want, first_rows))]
        pull_users, pull_stores = await pull_targets(services, pull_cached)
        if pull_users or pull_stores:
            followed_users, followed_stores = await followed_among(services, reader, pull_users, pull_stores)
            if followed_users or followed_stores:
                sources.append(MongoSource(services.db, home_query(reader, followed_users, followed_stores)))
    else:
        sources = [MongoSource(services.db, home_query(reader, *await _followed(services, reader)))]
        await request_rebuild(services, reader)
    return await collect(services.db, sources, before, limit, lambda d: visible_to(d, reader), load, screen)


async def request_rebuild(services: Services, reader: ObjectId) -> None:
    """Queues one rebuild per reader at a time (the lock expires if the task is lost)."""
    if await services.redis.set(home_rebuild_lock(reader), "1", nx=True, ex=LOCK_TTL_S):
        if not await send_task(services, tasknames.REBUILD_HOME, str(reader)):
            await services.redis.delete(home_rebuild_lock(reader))  # the next read asks again


async def rebuild_home(services: Services, reader: ObjectId) -> int:
    """Rebuilds ``reader``'s feed from MongoDB (the newest ``feed_cap`` posts); returns their number.

    The key is created first (state BUILDING) so that a fan-out running meanwhile writes into it;
    anything older is found by the query, which runs after that.
    """
    timelines = Timelines(services.redis)
    key = home_key(reader)
    cap = services.settings.feed_cap
    await timelines.begin_rebuild(key, ttl_s(services))
    users, stores = await _followed(services, reader)
    rows = await services.db.posts.find(home_query(reader, users, stores), {"created_ms": 1}).sort(
        [("created_ms", -1), ("_id", -1)]).limit(cap).to_list(None)
    await timelines.finish_rebuild(key, [(float(r["created_ms"]), str(r["_id"])) for r in rows], cap,
                                   ttl_s(services))
    # A rebuild queued by a read just before the reader deleted their account may run after the
    # erasure dropped the feed: checked after the write, as the tombstone comes first in the
    # erasure (profiles.erasure), so either the erasure's delete or this one comes last.
    if await services.db.users.find_one({"_id": reader, "status": "deleted"}, {"_id": 1}):
        await services.redis.delete(key)
    await services.redis.delete(home_rebuild_lock(reader))
    return len(rows)


def _target_query(target_type: str, target_id: ObjectId) -> dict[str, Any]:
    if target_type == "user":
        return {"author_id": target_id}
    return {"store_id": target_id, "store_owner_post": True}


async def backfill_followed(services: Services, reader: ObjectId, target_type: str, target_id: ObjectId) -> None:
    """After a follow: the target's recent posts join the reader's feed (if the feed exists)."""
    cap = services.settings.feed_cap
    rows = await services.db.posts.find({**_target_query(target_type, target_id), "status": VISIBLE},
                                        {"created_ms": 1}).sort([("created_ms", -1), ("_id", -1)]).limit(cap
                                                                                                       ).to_list(None)
    await Timelines(services.redis).add_entries(home_key(reader), [(float(r["created_ms"]), str(r["_id"]))
                                                                   for r in rows], cap)


async def remove_unfollowed(services: Services, reader: ObjectId, target_type: str, target_id: ObjectId) -> int:
    """After an unfollow: the target's posts leave the reader's feed, except those the reader still
    gets another way (own posts, a still-followed author or store)."""
    key = home_key(reader)
    oldest = await services.redis.zrange(key, 1, 1, withscores=True)
    if not oldest:
        return 0
    users, stores = await _followed(services, reader)
    query = {**_target_query(target_type, target_id), "created_ms": {"$gte": int(oldest[0][1])}}
    doomed: list[str] = []
    async for doc in services.db.posts.find(query, {"author_id": 1, "store_id": 1, "store_owner_post": 1}):
        keep = doc["author_id"] == reader or doc["author_id"] in users or (
            doc.get("store_owner_post") and doc.get("store_id") in stores)
        if not keep:
            doomed.append(str(doc["_id"]))
    for start in range(0, len(doomed), 1000):
        await services.redis.zrem(key, *doomed[start:start + 1000])
    return len(doomed)
