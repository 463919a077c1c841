"""The post cache: each post's *view* (what a page needs of it, without viewer-specific fields) kept
in Redis, so a page is served from Redis alone (Mastodon's rendered-status cache).

A view holds what the pager filters on (``_id``, ``author_id``, ``store_id``, ``status``,
``topic_keys``, ``location``, ``created_ms``) and what a Post shows (text, topic names, mentions,
counters, kind, the creation time as text, a repost's ``repost_of`` id). Author and store summaries
and ``liked_by_me`` are not in it: they are added when the page is rendered (:mod:`feed.hydrate`).

MongoDB stays the truth. Correctness rests on one rule: **every change to a field a view holds
calls :func:`invalidate` after it is committed** (delete, moderation decision, auto-hide, like, unlike,
comment counts). :func:`invalidate` bumps the post's generation key and drops its view; a reader
that misses reads the generation *before* reading MongoDB and stores its view only if the
generation is still the same (:data:`_FILL`), so a view read before a change can never be stored
after it.

Keys (:func:`solomo.core.keys.post_view_key`, ``post_gen_key``) carry one of
:data:`~solomo.core.keys.POST_BUCKETS` hash tags: a page's views are one ``MGET`` on one Redis and
one per tag on a cluster (pipelined, grouped by node by redis-py). Views also expire
(:data:`VIEW_TTL_S`), which bounds the harm of a lost invalidation (Redis down at that moment).
A Redis flush only costs a refill from MongoDB.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import orjson
from bson import ObjectId

from solomo.core.idloader import IdLoads
from solomo.core.jsonio import rfc3339
from solomo.core.keys import by_hash_tag, post_gen_key, post_view_key
from solomo.core.scripts import LuaScript
from solomo.core.services import Services

VIEW_TTL_S = 900
"""A view lives this long after it was stored (reads do not extend it)."""

VIEW = "created_at_text"
"""The field that tells a view from a MongoDB document (views carry the creation time as text)."""

_IDS = ("_id", "author_id", "store_id", "repost_of")

# KEYS: a post's view key, its generation key. ARGV: the generation read before reading MongoDB
# ('' for none), the view, its TTL. Stores the view only if no invalidation happened since.
_FILL = LuaScript("postcache_fill", """
local g = redis.call('GET', KEYS[2]) or ''
if g ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
""")

# KEYS: a post's view key, its generation key. ARGV: TTL. Bumps the generation, drops the view.
_INVALIDATE = LuaScript("postcache_invalidate", """
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[1]))
redis.call('DEL', KEYS[1])
return 1
""")


POSTS = IdLoads("posts")
"""Posts read to fill their views: the misses of concurrent pages share one query."""


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
        "repost_count": int(doc.get("repost_count", 0)),
        "repost_of": doc.get("repost_of"),  # a repost's root original: rendered per viewer (feed.hydrate)
        "kind": doc.get("kind", "post"),
        "media": list(doc.get("media", [])),  # photos' copies (media.store.embedded): JSON already
        VIEW: rfc3339(doc["created_at"]),
    }


def encode(view: dict[str, Any]) -> bytes:
    return orjson.dumps({k: (str(v) if k in _IDS and v is not None else v) for k, v in view.items()})


DECODED_CACHE_SIZE = 4096
"""Views decoded lately, by their exact bytes (a few MB at most): a popular post is on many pages."""


@functools.lru_cache(maxsize=DECODED_CACHE_SIZE)
def _decoded(raw: str | bytes) -> dict[str, Any]:
    view: dict[str, Any] = orjson.loads(raw)
    for k in _IDS:
        if view.get(k) is not None:
            view[k] = ObjectId(view[k])
    return view


def decode(raw: str | bytes) -> dict[str, Any]:
    """A stored view → the view. Keyed by the stored text itself, so a changed post (new text,
    counters, status) is a new key and can never be answered from the memo; parsing and the
    ObjectIds were a fifth of a home-feed page's CPU (docs/benchmarks.md). A copy: callers may
    change the view they get."""
    return dict(_decoded(raw))


def _mget_groups(services: Services, keys: list[str]) -> list[list[str]]:
    """One group on one Redis; one group per hash tag on a cluster (MGET needs one slot)."""
    return by_hash_tag(keys) if services.settings.redis_cluster else [keys]


def queue_read(services: Services, pipe: Any, post_ids: list[ObjectId]) -> int:
    """Queues the ``MGET`` of the posts' views; returns how many results to hand :func:`parse_read`
    (:func:`read_groups`)."""
    groups = _mget_groups(services, [post_view_key(pid) for pid in post_ids])
    for group in groups:
        pipe.execute_command("MGET", *group)  # redis-py refuses pipe.mget() on a cluster; one slot is fine
    return len(groups)


def read_groups(services: Services, post_ids: list[ObjectId]) -> int:
    """How many results :func:`queue_read` queues for ``post_ids`` (one ``MGET`` per hash tag)."""
    if not services.settings.redis_cluster:
        return 1 if post_ids else 0
    return len(_mget_groups(services, [post_view_key(pid) for pid in post_ids]))


def parse_read(services: Services, post_ids: list[ObjectId],
               rows: list[Any]) -> tuple[dict[ObjectId, dict[str, Any]], list[ObjectId]]:
    """(views found, posts that missed)."""
    if len(rows) == 1:
        bodies = rows[0]
    else:  # groups by hash tag: put the answers back in key order
        by_key = {k: v for group, values in zip(
            _mget_groups(services, [post_view_key(pid) for pid in post_ids]), rows, strict=True)
            for k, v in zip(group, values, strict=True)}
        bodies = [by_key[post_view_key(pid)] for pid in post_ids]
    found: dict[ObjectId, dict[str, Any]] = {}
    missed: list[ObjectId] = []
    for pid, body in zip(post_ids, bodies, strict=True):
        if body is not None:
            found[pid] = decode(body)
        else:
            missed.append(pid)
    return found, missed


async def generations(services: Services, post_ids: list[ObjectId]) -> dict[ObjectId, str]:
    """The posts' generations ('' for none): read before MongoDB by whoever fills."""
    keys = [post_gen_key(pid) for pid in post_ids]
    async with services.redis.pipeline(transaction=False) as pipe:
        groups = _mget_groups(services, keys)
        for group in groups:
            pipe.execute_command("MGET", *group)
        rows = await pipe.execute()
    values = {k: v for group, vals in zip(groups, rows, strict=True) for k, v in zip(group, vals, strict=True)}
    return {pid: values[key] or "" for pid, key in zip(post_ids, keys, strict=True)}


async def fill(services: Services, missed: list[ObjectId],
               seen: dict[ObjectId, str] | None = None) -> dict[ObjectId, dict[str, Any]]:
    """Reads the missed posts from MongoDB and stores their views (unless invalidated meanwhile);
    returns the views of the posts that exist. ``seen``: their generations, if read already."""
    if not missed:
        return {}
    if seen is None:
        seen = await generations(services, missed)  # before MongoDB: that is the guard
    views = {oid: to_view(d) for oid, d in (await POSTS.load(services, missed)).items()}
    if views:
        async with services.redis.pipeline(transaction=False) as pipe:
            for pid, view in views.items():
                _FILL.queue(pipe, [post_view_key(pid), post_gen_key(pid)], [seen[pid], encode(view), VIEW_TTL_S])
            await pipe.execute()
    return views


async def load(services: Services, post_ids: list[ObjectId]) -> dict[ObjectId, dict[str, Any]]:
    """Views of ``post_ids`` (missing posts left out): one pipeline, MongoDB for the misses."""
    if not post_ids:
        return {}
    rows = await services.batch.run(lambda pipe: queue_read(services, pipe, post_ids))
    found, missed = parse_read(services, post_ids, rows)
    found.update(await fill(services, missed))
    return found


async def invalidate(services: Services, post_ids: Iterable[ObjectId]) -> None:
    """Call after committing any change to what these posts' views hold (see the module's rule)."""
    ids = list(post_ids)
    if not ids:
        return
    async with services.redis.pipeline(transaction=False) as pipe:
        for pid in ids:
            _INVALIDATE.queue(pipe, [post_view_key(pid), post_gen_key(pid)], [VIEW_TTL_S])
        await pipe.execute()
