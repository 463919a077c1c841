"""Topic listings (``topic:{key}`` timelines, rebuilt from MongoDB's ``topic_keys`` index when missing)."""

from __future__ import annotations

from typing import Any

from feed.fanout import TOPIC_CAP, topic_key
from feed.paging import MongoSource, RedisSource, collect
from feed.posts import VISIBLE
from feed.text import MAX_TOPIC_CHARS, parse_topic_param
from feed.timeline import READY, Position, Timelines
from solomo.errors import Invalid


def topic_from_param(value: str) -> str:
    key = parse_topic_param(value)
    if not key or len(key) > MAX_TOPIC_CHARS or "#" in key:
        raise Invalid(f"a topic is 1..{MAX_TOPIC_CHARS} characters", code="invalid_topic")
    return key


async def rebuild_topic(services: Any, key: str) -> None:
    timelines = Timelines(services.redis)
    rkey = topic_key(key)
    await timelines.begin_rebuild(rkey)
    rows = await services.db.posts.find({"topic_keys": key, "status": VISIBLE}, {"created_ms": 1}).sort(
        [("created_ms", -1), ("_id", -1)]).limit(TOPIC_CAP).to_list(None)
    await timelines.finish_rebuild(rkey, [(float(r["created_ms"]), str(r["_id"])) for r in rows], TOPIC_CAP)


async def read_topic(services: Any, key: str, before: Position | None,
                     limit: int) -> tuple[list[dict[str, Any]], Position | None]:
    timelines = Timelines(services.redis)
    rkey = topic_key(key)
    if await timelines.state(rkey) != READY:
        await rebuild_topic(services, key)
    truncated = await timelines.size(rkey) >= TOPIC_CAP
    fallback = MongoSource(services.db, {"topic_keys": key, "status": VISIBLE}) if truncated else None
    return await collect(services.db, [RedisSource(timelines, rkey, fallback)], before, limit,
                         lambda d: d.get("status") == VISIBLE and key in d.get("topic_keys", []))
