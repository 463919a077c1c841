"""Post documents → the contract's Post, for a whole page at once: authors, stores and the
viewer's likes, one query per kind (never one per item), the three run concurrently.

Author and store *summaries* (``username``/``display_name``; store ``name`` and location) are
kept in a small per-process cache (:class:`SummaryCache`, on ``services.summaries``): nothing in
SoLoMo changes those fields after creation, so a page usually costs only the likes query. Entries
expire after :data:`solomo.core.cache.SUMMARY_TTL_S` all the same, which bounds how stale a summary could get if a
rename feature is ever added (it should then call :meth:`SummaryCache.forget`). Like counts and
``liked_by_me`` are never cached.

:func:`post_created` shapes a post its caller has just written, from the documents in hand
(no query at all: a brand-new post has no likes).
"""

from __future__ import annotations

import asyncio
from typing import Any

from bson import ObjectId

from checkins.stores import store_summary
from geo.privacy import shown_point
from solomo.accounts import Principal, user_summary
from solomo.core.cache import SummaryCache
from solomo.core.jsonio import rfc3339
from solomo.core.services import Services


def _copy(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """Callers may change the Post they get: never hand out the cached dict itself."""
    return dict(summary) if summary is not None else None


def _author_summary(summary: dict[str, Any] | None, author_id: ObjectId) -> dict[str, Any]:
    return dict(summary) if summary else {"id": str(author_id), "username": "", "display_name": ""}


def _summaries(services: Services) -> SummaryCache:
    cache = getattr(services, "summaries", None)
    return cache if cache is not None else SummaryCache(ttl_s=0)


def _post_public(doc: dict[str, Any], author: dict[str, Any], store: dict[str, Any] | None,
                 liked: bool) -> dict[str, Any]:
    store_point = (store["lat"], store["lng"]) if store else None
    lat, lng = shown_point(doc.get("location"), store_point)
    return {
        "id": str(doc["_id"]),
        "author": author,
        "text": doc["text"],
        "topics": [t["display"] for t in doc.get("topics", [])],
        "mentions": list(doc.get("mentions", [])),
        "store": store,
        "lat": lat,
        "lng": lng,
        "like_count": int(doc.get("like_count", 0)),
        "comment_count": int(doc.get("comment_count", 0)),
        "liked_by_me": liked,
        "status": doc["status"],
        "kind": doc.get("kind", "post"),
        "created_at": rfc3339(doc["created_at"]),
    }


async def _load_summaries(services: Services, kind: str, ids: list[ObjectId]) -> dict[ObjectId, dict[str, Any] | None]:
    """Summaries for ``ids`` (cache first, one query for the rest); ``None`` for missing documents."""
    cache = _summaries(services)
    out: dict[ObjectId, dict[str, Any] | None] = {}
    missing: list[ObjectId] = []
    for oid in ids:
        found, summary = cache.get(kind, oid)
        if found:
            out[oid] = summary
        else:
            missing.append(oid)
    if missing:
        if kind == "user":
            cursor = services.db.users.find({"_id": {"$in": missing}}, {"username": 1, "display_name": 1})
            loaded = {u["_id"]: user_summary(u) async for u in cursor}
        else:
            cursor = services.db.stores.find({"_id": {"$in": missing}}, {"name": 1, "location": 1})
            loaded = {s["_id"]: store_summary(s) async for s in cursor}
        for oid in missing:
            summary = loaded.get(oid)
            if summary is not None:  # a missing document is not remembered
                cache.put(kind, oid, summary)
            out[oid] = summary
    return out


async def hydrate_posts(services: Services, docs: list[dict[str, Any]],
                        viewer_id: ObjectId | None) -> list[dict[str, Any]]:
    if not docs:
        return []
    author_ids = list({d["author_id"] for d in docs})
    store_ids = list({d["store_id"] for d in docs if d.get("store_id")})
    post_ids = [d["_id"] for d in docs]

    async def load_liked() -> set[ObjectId]:
        if viewer_id is None:
            return set()
        return {lk["post_id"] async for lk in services.db.likes.find(
            {"user_id": viewer_id, "post_id": {"$in": post_ids}}, {"post_id": 1, "_id": 0})}

    async def no_stores() -> dict[ObjectId, dict[str, Any] | None]:
        return {}

    authors, stores, liked = await asyncio.gather(
        _load_summaries(services, "user", author_ids),
        _load_summaries(services, "store", store_ids) if store_ids else no_stores(),
        load_liked())
    return [
        _post_public(d, _author_summary(authors.get(d["author_id"]), d["author_id"]),
                     _copy(stores.get(d["store_id"])) if d.get("store_id") else None, d["_id"] in liked)
        for d in docs
    ]


async def hydrate_post(services: Services, doc: dict[str, Any], viewer_id: ObjectId | None) -> dict[str, Any]:
    return (await hydrate_posts(services, [doc], viewer_id))[0]


def post_created(doc: dict[str, Any], author: Principal, store: dict[str, Any] | None) -> dict[str, Any]:
    """The Post for a document its ``author`` has just inserted (``store``: its store document,
    if any), as :func:`hydrate_post` would give it to the author — without a query."""
    assert doc["author_id"] == author.id and doc.get("store_id") == (store["_id"] if store else None)
    return _post_public(doc, author.summary(), store_summary(store) if store else None, False)
