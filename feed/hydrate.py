"""Post documents → the contract's Post, for a whole page at once (one query per kind, never
one per item, the three run concurrently): authors, stores and the viewer's likes."""

from __future__ import annotations

import asyncio
from typing import Any

from bson import ObjectId

from solomo.accounts import user_summary
from solomo.jsonio import rfc3339


def store_summary(store: dict[str, Any]) -> dict[str, Any]:
    lng, lat = store["location"]["coordinates"]
    return {"id": str(store["_id"]), "name": store["name"], "lat": lat, "lng": lng}


def _post_public(doc: dict[str, Any], author: dict[str, Any] | None, store: dict[str, Any] | None,
                 liked: bool) -> dict[str, Any]:
    loc = doc.get("location")
    lng, lat = loc["coordinates"] if loc else (None, None)
    return {
        "id": str(doc["_id"]),
        "author": user_summary(author) if author else {"id": str(doc["author_id"]), "username": "", "display_name": ""},
        "text": doc["text"],
        "topics": [t["display"] for t in doc.get("topics", [])],
        "mentions": list(doc.get("mentions", [])),
        "store": store_summary(store) if store else None,
        "lat": lat,
        "lng": lng,
        "like_count": int(doc.get("like_count", 0)),
        "comment_count": int(doc.get("comment_count", 0)),
        "liked_by_me": liked,
        "status": doc["status"],
        "kind": doc.get("kind", "post"),
        "created_at": rfc3339(doc["created_at"]),
    }


async def hydrate_posts(services: Any, docs: list[dict[str, Any]], viewer_id: ObjectId | None) -> list[dict[str, Any]]:
    if not docs:
        return []
    db = services.db
    author_ids = list({d["author_id"] for d in docs})
    store_ids = list({d["store_id"] for d in docs if d.get("store_id")})
    post_ids = [d["_id"] for d in docs]

    async def load_authors() -> dict[ObjectId, dict[str, Any]]:
        return {u["_id"]: u async for u in db.users.find({"_id": {"$in": author_ids}},
                                                         {"username": 1, "display_name": 1})}

    async def load_stores() -> dict[ObjectId, dict[str, Any]]:
        if not store_ids:
            return {}
        return {s["_id"]: s async for s in db.stores.find({"_id": {"$in": store_ids}}, {"name": 1, "location": 1})}

    async def load_liked() -> set[ObjectId]:
        if viewer_id is None:
            return set()
        return {lk["post_id"] async for lk in db.likes.find(
            {"user_id": viewer_id, "post_id": {"$in": post_ids}}, {"post_id": 1, "_id": 0})}

    authors, stores, liked = await asyncio.gather(load_authors(), load_stores(), load_liked())
    return [
        _post_public(d, authors.get(d["author_id"]), stores.get(d.get("store_id")), d["_id"] in liked)
        for d in docs
    ]


async def hydrate_post(services: Any, doc: dict[str, Any], viewer_id: ObjectId | None) -> dict[str, Any]:
    return (await hydrate_posts(services, [doc], viewer_id))[0]
