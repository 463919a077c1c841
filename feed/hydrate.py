"""Post documents (or their cached views) → the contract's Post, for a whole page at once.

A page costs, when everything is cached, two Redis round trips: the timeline slice (the feed's
module), then one pipeline (:class:`PageLoader`) with the posts' views (:mod:`feed.postcache`),
the viewer's likes among them (:mod:`feed.likedset`) and the summaries' generation. Whatever
missed is read from MongoDB, one query per kind (never one per item), and cached.

Author and store *summaries* (``username``/``display_name``; store ``name`` and location) are
kept in a small per-process cache (:class:`SummaryCache`, on ``services.summaries``), expiring
after :data:`solomo.core.cache.SUMMARY_TTL_S`. A change of a name must call
:func:`names_changed`: it sets ``keys.SUMMARIES_GEN`` to a new random value, which every hydration
reads in the same pipeline as the likes, and a process that sees it move drops its whole summary
cache. Like counts and ``liked_by_me`` come from the post cache and the likes set, both kept exact
on change.

:func:`post_created` shapes a post its caller has just written, from the documents in hand
(no query at all: a brand-new post has no likes).

A repost's ``repost_of`` is resolved here, per viewer and at read time, from its root original's
cached view: the original as a Post while the viewer may see it, else ``{"id", "status":
"unavailable"}`` (deleted, removed, hidden or held for others, or a block between the viewer and
its author). So a moderator's removal or an author's deletion, which invalidate the original's
view, show in every repost at once without rewriting any of them. The originals not on the page
are read in the one pipeline that brings the viewer's state (no extra round trip when a pipeline
was due anyway); blocks are one indexed MongoDB query, only for a page with reposts.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import orjson
from bson import ObjectId

from checkins.stores import store_summary
from feed import likedset, postcache
from feed.blocks import Screen
from feed.postcache import RENDERED, VIEW, Rendered, to_view
from feed.posts import visible_to
from geo.privacy import shown_point
from media.store import media_public
from solomo.accounts import Principal, user_summary
from solomo.core.cache import SummaryCache
from solomo.core.idloader import IdLoads
from solomo.core.jsonio import dumps
from solomo.core.keys import SUMMARIES_GEN
from solomo.core.services import Services

USER_NAMES = IdLoads("users", {"username": 1, "display_name": 1})
STORE_NAMES = IdLoads("stores", {"name": 1, "location": 1})
"""The summaries' reads on a cache miss: concurrent pages share one query per kind."""


def _copy(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """Callers may change the Post they get: never hand out the cached dict itself."""
    return dict(summary) if summary is not None else None


def _author_summary(summary: dict[str, Any] | None, author_id: ObjectId) -> dict[str, Any]:
    return dict(summary) if summary else {"id": str(author_id), "username": "", "display_name": ""}


def _summaries(services: Services) -> SummaryCache:
    cache = getattr(services, "summaries", None)
    return cache if cache is not None else SummaryCache(ttl_s=0)


def _media_json(media: list[dict[str, Any]]) -> list[Any] | orjson.Fragment:
    """The Post's ``media``, serialised once: the fixed fields are kept per version of a post
    (:data:`~feed.postcache.RENDERED`), and a page of photo posts spent its time serialising the
    same Media objects again on every page (orjson writes a ``Fragment``'s bytes as they are)."""
    return orjson.Fragment(dumps([media_public(m) for m in media])) if media else []


def _fixed_fields(view: dict[str, Any]) -> dict[str, Any]:
    """The Post's fields that depend on the view alone (not on the viewer, the author's or the
    store's summary), in the contract's order."""
    return {
        "id": str(view["_id"]),
        "text": view["text"],
        "topics": view["topic_names"],
        "mentions": view["mentions"],
        "like_count": view["like_count"],
        "comment_count": view["comment_count"],
        "repost_count": view.get("repost_count", 0),
        "status": view["status"],
        "kind": view["kind"],
        "media": _media_json(view.get("media", [])),  # .get: views cached before photos
        "created_at": view[VIEW],
    }


def _post_public(view: dict[str, Any], author: dict[str, Any], store: dict[str, Any] | None,
                 liked: bool) -> dict[str, Any]:
    # A view decoded from the post cache carries a slot shared by every copy of the same stored
    # bytes: its fixed fields are made once per version of the post, not once per page (building
    # them, media above all, was most of rendering a page). A view made from a document has none.
    # The Post's own fields are its own; nested lists (topics, mentions, media) are shared, read only.
    slot: Rendered | None = view.get(RENDERED)
    fixed = slot.fields if slot is not None and slot.fields is not None else _fixed_fields(view)
    if slot is not None:
        slot.fields = fixed
    store_point = (store["lat"], store["lng"]) if store else None
    lat, lng = shown_point(view["location"], store_point)
    return {**fixed, "author": author, "store": store, "lat": lat, "lng": lng, "liked_by_me": liked,
            "repost_of": None}  # a repost's original: set by hydrate_posts / post_created


def _post_json(slot: Rendered, view: dict[str, Any], author: dict[str, Any] | None, store: dict[str, Any] | None,
               liked: bool) -> orjson.Fragment:
    """The Post of a post that is not a repost, as JSON made once per version of the post, of its
    author's and store's summaries and of ``liked``: rendering a page's Posts and serialising them
    was ~8 % of a home page (docs/benchmarks.md, twenty-second round). ``author`` and ``store``
    are the summary cache's own objects: another object (a rename, an expiry, a summary not cached)
    makes the JSON again."""
    made = slot.json
    if made is None or made[0] is not author or made[1] is not store:
        made = slot.json = (author, store, {})
    text = made[2].get(liked)
    if text is None:
        text = made[2][liked] = dumps(_post_public(view, _author_summary(author, view["author_id"]), _copy(store),
                                                   liked))
    return orjson.Fragment(text)


def _cached_summaries(services: Services, kind: str,
                      ids: list[ObjectId]) -> tuple[dict[ObjectId, dict[str, Any] | None], list[ObjectId]]:
    """(the summaries the process cache holds, the ids it does not know)."""
    return _summaries(services).get_many(kind, ids)


async def _fill_summaries(services: Services, kind: str, missing: list[ObjectId],
                          out: dict[ObjectId, dict[str, Any] | None]) -> None:
    """Reads the ``missing`` summaries (one query) into ``out`` and the cache; ``None`` for missing
    documents (which are not remembered). Not cached when the shared generation moved while they
    were read (another page synced the cache to a rename meanwhile): this read may be older than
    the rename, and would outlive the drop that rename caused."""
    cache = _summaries(services)
    generation = cache.generation
    if kind == "user":
        loaded = {oid: user_summary(u) for oid, u in (await USER_NAMES.load(services, missing)).items()}
    else:
        loaded = {oid: store_summary(s) for oid, s in (await STORE_NAMES.load(services, missing)).items()}
    for oid in missing:
        summary = loaded.get(oid)
        if summary is not None and cache.generation == generation:
            cache.put(kind, oid, summary)
        out[oid] = summary


class PageLoader:
    """Loads a page's posts for :func:`feed.paging.collect` (``load=loader.load``): the views, the
    viewer's likes among them and the summaries' generation in one pipeline, MongoDB for what
    missed. :func:`hydrate_posts` (``loader=``) then needs no round trip for those posts.

    Usable by any feed: ``loader = PageLoader(services, viewer_id)``, ``docs, nxt = await
    collect(db, sources, before, limit, accept, load=loader.load)``, ``await hydrate_posts(services,
    docs, viewer_id, loader)``."""

    def __init__(self, services: Services, viewer_id: ObjectId | None, screen: Screen | None = None) -> None:
        self.services = services
        self.viewer_id = viewer_id
        self.screen = screen  # the viewer's blocked/muted authors: read in the first pipeline too
        self.covered: set[ObjectId] = set()  # the posts whose like the viewer's state below knows
        self.liked: set[ObjectId] = set()  # those of them the viewer likes
        self.generation: str | None = None
        self.synced = False

    async def load(self, post_ids: list[ObjectId]) -> dict[ObjectId, dict[str, Any]]:
        screen = self.screen if self.screen is not None and not self.screen.loaded else None
        read = postcache.plan_read(self.services, post_ids)
        n = read.results

        def queue(pipe: Any) -> None:
            postcache.queue_read(pipe, read)
            if self.viewer_id is not None:
                likedset.queue_read(pipe, self.viewer_id, post_ids)
            if screen is not None:
                screen.queue_read(pipe)
            pipe.get(SUMMARIES_GEN)

        rows = await self.services.batch.run(queue)
        if screen is not None:
            await screen.take(rows.pop(-2))
        found, missed = postcache.parse_read(read, rows[:n])
        self.generation, self.synced = rows[-1], True
        liked = likedset.parse_read(post_ids, rows[n]) if self.viewer_id is not None else set()
        if liked is None and self.viewer_id is not None:  # not built (or too big): MongoDB, beside the misses
            filled, liked = await asyncio.gather(postcache.fill(self.services, missed),
                                                 likedset.build(self.services, self.viewer_id, post_ids))
        else:
            filled = await postcache.fill(self.services, missed)
        found.update(filled)
        assert liked is not None
        self.covered.update(post_ids)
        self.liked |= liked
        return found


async def _viewer_state(services: Services, viewer_id: ObjectId | None, post_ids: list[ObjectId],
                        loader: PageLoader | None, originals: list[ObjectId],
                        ) -> tuple[set[ObjectId], dict[ObjectId, dict[str, Any]]]:
    """The liked posts among ``post_ids`` and ``originals``, and the views of ``originals`` (reposts'
    roots not on the page); also brings the summary cache in line with the shared generation.
    Whatever ``loader`` knows already costs nothing; the rest is one pipeline."""
    ids = post_ids + originals
    liked = set(loader.liked) if loader is not None else set()  # a superset is fine: only asked about ids
    if viewer_id is None or (loader is not None and loader.covered.issuperset(ids)):
        unknown = []
    else:
        unknown = [pid for pid in ids if loader is None or pid not in loader.covered]
    if loader is not None and loader.synced and not unknown and not originals:
        _summaries(services).sync(loader.generation)
        return liked, {}
    read = postcache.plan_read(services, originals) if originals else None
    n = read.results if read is not None else 0

    def queue(pipe: Any) -> None:
        if read is not None:
            postcache.queue_read(pipe, read)
        if viewer_id is not None and unknown:
            likedset.queue_read(pipe, viewer_id, unknown)
        pipe.get(SUMMARIES_GEN)

    rows = await services.batch.run(queue)
    _summaries(services).sync(rows[-1])
    views: dict[ObjectId, dict[str, Any]] = {}
    if read is not None:
        views, missed = postcache.parse_read(read, rows[:n])
        views.update(await postcache.fill(services, missed))
    if viewer_id is not None and unknown:
        known = likedset.parse_read(unknown, rows[n])
        liked |= known if known is not None else await likedset.build(services, viewer_id, unknown)
    return liked, views


async def _blocked(services: Services, viewer_id: ObjectId | None, authors: list[ObjectId]) -> set[ObjectId]:
    """The ``authors`` with a block either way between them and the viewer (contract: Blocks)."""
    if viewer_id is None or not authors:
        return set()
    query = {"$or": [{"blocker_id": viewer_id, "blocked_id": {"$in": authors}},
                     {"blocked_id": viewer_id, "blocker_id": {"$in": authors}}]}
    return {d["blocked_id"] if d["blocker_id"] == viewer_id else d["blocker_id"]
            async for d in services.db.blocks.find(query, {"blocker_id": 1, "blocked_id": 1})}


async def hydrate_posts(services: Services, docs: list[dict[str, Any]], viewer_id: ObjectId | None,
                        loader: PageLoader | None = None, *, as_json: bool = False) -> list[Any]:
    """The Posts for ``docs`` (post documents or views) as ``viewer_id`` sees them; ``loader``: the
    :class:`PageLoader` that loaded them, if any (it knows the viewer's likes already). With
    ``as_json``, for a page that goes straight to its answer: a Post may come as its JSON (an
    ``orjson.Fragment``, :func:`_post_json`) instead of a dict."""
    if not docs:
        return []
    views = [to_view(d) for d in docs]
    by_id = {v["_id"]: v for v in views}
    roots = list(dict.fromkeys(v["repost_of"] for v in views if v.get("repost_of")))
    liked, loaded = await _viewer_state(services, viewer_id, list(by_id), loader,
                                        [r for r in roots if r not in by_id])
    originals = {r: v for r in roots if (v := by_id.get(r) or loaded.get(r)) is not None and visible_to(v, viewer_id)}
    shown = views + list(originals.values())
    author_ids = list({v["author_id"] for v in shown})
    store_ids = list({v["store_id"] for v in shown if v["store_id"]})

    # Usually every summary is in the process cache and the page has no reposts: then nothing here
    # waits, and no task is made (three per page were 3 % of a home page's CPU).
    authors, missing_authors = _cached_summaries(services, "user", author_ids)
    stores, missing_stores = _cached_summaries(services, "store", store_ids)
    blocked: set[ObjectId] = set()
    block_check = list({v["author_id"] for v in originals.values()} - {viewer_id})

    async def check_blocks() -> None:
        blocked.update(await _blocked(services, viewer_id, block_check))

    pending = [*([_fill_summaries(services, "user", missing_authors, authors)] if missing_authors else []),
               *([_fill_summaries(services, "store", missing_stores, stores)] if missing_stores else []),
               *([check_blocks()] if viewer_id is not None and block_check else [])]
    if len(pending) == 1:
        await pending[0]
    elif pending:
        await asyncio.gather(*pending)

    def render(v: dict[str, Any]) -> dict[str, Any]:
        return _post_public(v, _author_summary(authors.get(v["author_id"]), v["author_id"]),
                            _copy(stores.get(v["store_id"])) if v["store_id"] else None, v["_id"] in liked)

    out: list[Any] = []
    for v in views:
        if as_json and v.get("repost_of") is None and (slot := v.get(RENDERED)) is not None:
            out.append(_post_json(slot, v, authors.get(v["author_id"]),
                                  stores.get(v["store_id"]) if v["store_id"] else None, v["_id"] in liked))
            continue
        post = render(v)
        if (root := v.get("repost_of")) is not None:
            original = originals.get(root)
            post["repost_of"] = (render(original) if original is not None and original["author_id"] not in blocked
                                 else {"id": str(root), "status": "unavailable"})
        out.append(post)
    return out


async def hydrate_post(services: Services, doc: dict[str, Any], viewer_id: ObjectId | None) -> dict[str, Any]:
    post: dict[str, Any] = (await hydrate_posts(services, [doc], viewer_id))[0]
    return post


def post_created(doc: dict[str, Any], author: Principal, store: dict[str, Any] | None,
                 original: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Post for a document its ``author`` has just inserted (``store``: its store document,
    if any; ``original``: a repost's original, as a Post shaped before the write), as
    :func:`hydrate_post` would give it to the author — without a query."""
    assert doc["author_id"] == author.id and doc.get("store_id") == (store["_id"] if store else None)
    post = _post_public(to_view(doc), author.summary(), store_summary(store) if store else None, False)
    post["repost_of"] = original
    return post


async def names_changed(services: Services) -> None:
    """Call after an author's display name or a store's name changes (committed): every process
    drops its summary cache at its next page. The generation is a new random value, not a count: a
    count restarts after Redis loses its data and would come back to a value an idle process still
    holds, with the names it read before."""
    await services.redis.set(SUMMARIES_GEN, secrets.token_hex(8))
