"""The post cache: each post's *view* (what a page needs of it, without viewer-specific fields) kept
in Redis, so a page is served from Redis alone (Mastodon's rendered-status cache).

A view holds what the pager filters on (``_id``, ``author_id``, ``store_id``, ``status``,
``topic_keys``, ``location``, ``created_ms``) and what a Post shows (text, topic names, mentions,
counters, kind, the creation time as text). Author and store summaries and ``liked_by_me`` are
not in it: they are added when the page is rendered (:mod:`feed.hydrate`).

MongoDB stays the truth. Correctness rests on one rule: **every change to a post's document calls
:func:`invalidate` after it is committed** (delete, moderation decision, auto-hide, like, unlike,
comment counts). :func:`invalidate` bumps the key's generation ``g`` and drops the view; a reader
that misses remembers the generation it saw *before* reading MongoDB and stores its view only if
the generation is still the same (:data:`_FILL`), so a view read before a change can never be
stored after it. Views also expire (:data:`VIEW_TTL_S`), which bounds the harm of a lost
invalidation (Redis down at that moment). A Redis flush only costs a refill from MongoDB.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from bson import ObjectId

from solomo.core.jsonio import rfc3339
from solomo.core.keys import post_cache_key
from solomo.core.scripts import LuaScript
from solomo.core.services import Services

VIEW_TTL_S = 900
"""A view lives this long after it was stored (reads do not extend it)."""

VIEW = "created_at_text"
"""The field that tells a view from a MongoDB document (views carry the creation time as text)."""

_IDS = ("_id", "author_id", "store_id")

# KEYS[1]: a post's cache key. ARGV: the generation seen before reading MongoDB ('' for none), the
# view, its TTL. Stores the view only if no invalidation happened since.
_FILL = LuaScript("postcache_fill", """
local g = redis.call('HGET', KEYS[1], 'g') or ''
if g ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'b', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
""")

# KEYS[1]: a post's cache key. ARGV: TTL. Bumps the generation and drops the view.
_INVALIDATE = LuaScript("postcache_invalidate", """
redis.call('HINCRBY', KEYS[1], 'g', 1)
redis.call('HDEL', KEYS[1], 'b')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
""")


def to_view(doc: dict[str, Any]) -> dict[str, Any]:
    """A post document → its view (a view is returned as is)."""
    if VIEW in doc:
        return doc
    return {
        "_id": doc["_id"],
        "author_id": doc["author_id"],
        "store_id": doc.get("store_id"),
        "status": doc["status"],
        "topic_keys": list(doc.get("topic_keys", [])),
        "location": doc.get("location"),
        "created_ms": int(doc["created_ms"]) if "created_ms" in doc else 0,
        "text": doc["text"],
        "topic_names": [t["display"] for t in doc.get("topics", [])],
        "mentions": list(doc.get("mentions", [])),
        "like_count": int(doc.get("like_count", 0)),
        "comment_count": int(doc.get("comment_count", 0)),
        "kind": doc.get("kind", "post"),
        VIEW: rfc3339(doc["created_at"]),
    }


def encode(view: dict[str, Any]) -> bytes:
    return orjson.dumps({k: (str(v) if k in _IDS and v is not None else v) for k, v in view.items()})


def decode(raw: str | bytes) -> dict[str, Any]:
    view: dict[str, Any] = orjson.loads(raw)
    for k in _IDS:
        if view.get(k) is not None:
            view[k] = ObjectId(view[k])
    return view


def queue_read(pipe: Any, post_ids: Iterable[ObjectId]) -> None:
    """Queues one ``HMGET b g`` per post (see :func:`parse_read`)."""
    for pid in post_ids:
        pipe.hmget(post_cache_key(pid), "b", "g")


def parse_read(post_ids: list[ObjectId], rows: list[Any]) -> tuple[dict[ObjectId, dict[str, Any]],
                                                                     dict[ObjectId, str]]:
    """(views found, generation seen for each post that missed)."""
    found: dict[ObjectId, dict[str, Any]] = {}
    missed: dict[ObjectId, str] = {}
    for pid, (body, gen) in zip(post_ids, rows, strict=True):
        if body is not None:
            found[pid] = decode(body)
        else:
            missed[pid] = gen or ""
    return found, missed


async def fill(services: Services, missed: dict[ObjectId, str]) -> dict[ObjectId, dict[str, Any]]:
    """Reads the missed posts from MongoDB and stores their views (unless invalidated meanwhile);
    returns the views of the posts that exist."""
    if not missed:
        return {}
    docs = [d async for d in services.db.posts.find({"_id": {"$in": list(missed)}})]
    views = {d["_id"]: to_view(d) for d in docs}
    if views:
        async with services.redis.pipeline(transaction=False) as pipe:
            for pid, view in views.items():
                _FILL.queue(pipe, [post_cache_key(pid)], [missed[pid], encode(view), VIEW_TTL_S])
            await pipe.execute()
    return views


async def load(services: Services, post_ids: list[ObjectId]) -> dict[ObjectId, dict[str, Any]]:
    """Views of ``post_ids`` (missing posts left out): one pipeline, MongoDB for the misses."""
    if not post_ids:
        return {}
    async with services.redis.pipeline(transaction=False) as pipe:
        queue_read(pipe, post_ids)
        rows = await pipe.execute()
    found, missed = parse_read(post_ids, rows)
    found.update(await fill(services, missed))
    return found


async def invalidate(services: Services, post_ids: Iterable[ObjectId]) -> None:
    """Call after committing any change to these posts' documents (see the module's rule)."""
    keys = [post_cache_key(pid) for pid in post_ids]
    if not keys:
        return
    async with services.redis.pipeline(transaction=False) as pipe:
        for key in keys:
            _INVALIDATE.queue(pipe, [key], [VIEW_TTL_S])
        await pipe.execute()
