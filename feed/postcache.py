"""The post cache: each post's *view* (what a page needs of it, without viewer-specific fields) kept
in Redis, so a page is served from Redis alone (Mastodon's rendered-status cache).

A view holds what the pager filters on (``_id``, ``author_id``, ``store_id``, ``status``,
``topic_keys``, ``location``, ``created_ms``) and what a Post shows (text, topic names, mentions,
counters, kind, the creation time as text, a repost's ``repost_of`` id). Author and store summaries
and ``liked_by_me`` are not in it: they are added when the page is rendered (:mod:`feed.hydrate`).

MongoDB stays the truth; the mechanism (generation-guarded fills, invalidation, expiry) is
:mod:`solomo.core.viewcache`'s, and so is its one rule, for posts: **every change to a field a view
holds calls :func:`invalidate` after it is committed** (delete, moderation decision, auto-hide,
like, unlike, comment counts).

Keys (:func:`solomo.core.keys.post_view_key`, ``post_gen_key``) carry one of
:data:`~solomo.core.keys.POST_BUCKETS` hash tags: a page's views are one ``MGET`` on one Redis and
one per tag on a cluster (pipelined, grouped by node by redis-py). Views expire after
:data:`VIEW_TTL_S`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from bson import ObjectId

from solomo.core.idloader import IdLoads
from solomo.core.ids import object_id
from solomo.core.jsonio import rfc3339
from solomo.core.keys import post_gen_key, post_view_key
from solomo.core.searchkeys import fold
from solomo.core.services import Services
from solomo.core.viewcache import ViewCache, ViewRead

VIEW_TTL_S = 900
"""A view lives this long after it was stored (reads do not extend it)."""

VIEW = "created_at_text"
"""The field that tells a view from a MongoDB document (views carry the creation time as text)."""

_IDS = ("_id", "author_id", "store_id", "repost_of")

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


RENDERED = "rendered"
"""A decoded view's slot (a :class:`Rendered`) for what the pages make of it that no viewer changes
(``feed.hydrate`` fills it on the first page that shows that view). One object shared by every
copy the process's memo hands out of one read view (:class:`~solomo.core.viewcache.LocalViews`),
so it is made once per version of a post in a process; never stored in Redis."""


@dataclass(slots=True)
class Rendered:
    """What a version of a post renders to (see :data:`RENDERED`), made when first needed."""

    fields: dict[str, Any] | None = None
    """The Post's fields that depend on the view alone, in the contract's order."""
    json: tuple[Any, Any, dict[bool, bytes]] | None = None
    """(the author's summary, the store's summary, the whole Post's JSON by ``liked_by_me``): the
    JSON is used while the page's summaries are those very objects (the process's summary cache
    hands out the same object until a rename or an expiry replaces it)."""
    folded: str | None = None
    """The text folded as search compares it (:func:`folded_text`)."""


def folded_text(view: dict[str, Any]) -> str:
    """The post's text folded (:func:`solomo.core.searchkeys.fold`), once per version of a post in
    a process: folding is NFKC, which a Chinese text's full-width punctuation makes the dearest part
    (11 µs for 120 characters), and a search checks every post it finds."""
    slot: Rendered | None = view.get(RENDERED)
    if slot is None:
        return fold(view["text"])
    if slot.folded is None:
        slot.folded = fold(view["text"])
    return slot.folded


def encode(view: dict[str, Any]) -> bytes:
    return orjson.dumps({k: (str(v) if k in _IDS and v is not None else v) for k, v in view.items()
                         if k != RENDERED})


def decode(raw: str | bytes) -> dict[str, Any]:
    """A stored view → a new view (the view cache keeps it in the process's memo and hands out
    copies: parsing and the ObjectIds were a fifth of a home-feed page's CPU, docs/benchmarks.md)."""
    view: dict[str, Any] = orjson.loads(raw)
    for k in _IDS:
        if view.get(k) is not None:
            view[k] = object_id(view[k])
    view[RENDERED] = Rendered()
    return view


VIEWS = ViewCache(view_key=post_view_key, gen_key=post_gen_key, documents=POSTS, to_view=to_view,
                  encode=encode, decode=decode, ttl_s=VIEW_TTL_S)
"""The post views (:class:`~solomo.core.viewcache.ViewCache`); the functions below are its reads for
the feeds' pipelines."""


def plan_read(services: Services, post_ids: list[ObjectId]) -> ViewRead:
    """A page's read of the posts' views (:meth:`~solomo.core.viewcache.ViewCache.plan`): queue
    it with :func:`queue_read`, hand its ``results`` results to :func:`parse_read`."""
    return VIEWS.plan(services, post_ids)


def queue_read(pipe: Any, read: ViewRead) -> None:
    VIEWS.queue(pipe, read)


def parse_read(read: ViewRead, rows: list[Any]) -> tuple[dict[ObjectId, dict[str, Any]], list[ObjectId]]:
    """(views found, posts that missed)."""
    return VIEWS.parse(read, rows)


async def fill(services: Services, missed: list[ObjectId],
               seen: dict[ObjectId, str] | None = None) -> dict[ObjectId, dict[str, Any]]:
    """Reads the missed posts from MongoDB and stores their views (unless invalidated meanwhile);
    returns the views of the posts that exist. ``seen``: their generations, if read already."""
    return await VIEWS.fill(services, missed, seen)


async def load(services: Services, post_ids: list[ObjectId]) -> dict[ObjectId, dict[str, Any]]:
    """Views of ``post_ids`` (missing posts left out): one pipeline, MongoDB for the misses."""
    return await VIEWS.load(services, post_ids)


async def invalidate(services: Services, post_ids: Iterable[ObjectId]) -> None:
    """Call after committing any change to what these posts' views hold (see the module's rule)."""
    await VIEWS.invalidate(services, post_ids)


async def invalidate_quietly(services: Services, post_ids: Iterable[ObjectId], what: str) -> None:
    """:func:`invalidate`, a Redis failure logged (a count left stale for :data:`VIEW_TTL_S` at
    most): after the commit of a keyed write (a comment, a repost), whose failure there would hold
    its Idempotency-Key in progress for a day and skip what follows."""
    await VIEWS.invalidate_quietly(services, post_ids, what)
