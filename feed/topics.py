"""Topic listings (``topic:{key}`` timelines, rebuilt from MongoDB's ``topic_keys`` index when missing).

A listing is built on its first read and then kept up to date by the fan-out (which writes only
keys that exist). Since the key comes from client input, it expires: :data:`TOPIC_TTL_S` after its
last read, or :data:`EMPTY_TTL_S` after a rebuild that found nothing and was not read again — a
client walking through random topics leaves nothing behind for long. Expiry is always safe: the
next read rebuilds.
"""

from __future__ import annotations

from typing import Any

from feed.blocks import Screen
from feed.fanout import TOPIC_CAP
from feed.paging import Loader, MongoSource, RedisSource, collect
from feed.posts import VISIBLE
from feed.timeline import MARKER, READY, Timelines
from solomo.core.keys import topic_key
from solomo.core.pagination import Position, lookahead
from solomo.core.services import Services
from solomo.core.ttlrefresh import queue_expire

TOPIC_TTL_S = 86400
EMPTY_TTL_S = 120


async def rebuild_topic(services: Services, key: str) -> int:
    """Builds ``topic:{key}`` from MongoDB; returns the number of posts found."""
    timelines = Timelines(services.redis)
    rkey = topic_key(key)
    await timelines.begin_rebuild(rkey, EMPTY_TTL_S)
    rows = await services.db.posts.find({"topic_keys": key, "status": VISIBLE}, {"created_ms": 1}).sort(
        [("created_ms", -1), ("_id", -1)]).limit(TOPIC_CAP).to_list(None)
    await timelines.finish_rebuild(rkey, [(float(r["created_ms"]), str(r["_id"])) for r in rows], TOPIC_CAP,
                                   TOPIC_TTL_S if rows else EMPTY_TTL_S)
    return len(rows)


async def read_topic(services: Services, key: str, before: Position | None,
                     limit: int, load: Loader | None = None,
                     screen: Screen | None = None) -> tuple[list[dict[str, Any]], Position | None]:
    """A page of a topic's listing (documents or post views); ``load`` and ``screen`` as in
    :func:`feed.home.read_home`."""
    timelines = Timelines(services.redis)
    rkey = topic_key(key)
    want = lookahead(limit)  # the first round collect() reads, prefetched in this pipeline

    def queue(pipe: Any) -> None:
        pipe.zscore(rkey, MARKER)
        pipe.zcard(rkey)
        timelines.queue_read(pipe, rkey, before, want)
        queue_expire(pipe, rkey, TOPIC_TTL_S)  # a read keeps the listing (a missing key stays missing)

    state, card, first_rows, *_ = await services.batch.run(queue)
    first: tuple[Position | None, int, list[Any]] | None = (before, want, first_rows)
    if state is None or int(state) != READY:
        size = await rebuild_topic(services, key)
        first = None  # read before the rebuild: read again
    else:
        size = int(card) - 1
    truncated = size >= TOPIC_CAP
    fallback = MongoSource(services.db, {"topic_keys": key, "status": VISIBLE}) if truncated else None
    return await collect(services.db, [RedisSource(timelines, rkey, fallback, first=first)], before, limit,
                         lambda d: d.get("status") == VISIBLE and key in d.get("topic_keys", []), load, screen)
