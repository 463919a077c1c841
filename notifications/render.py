"""Inbox entries → the contract's Notification, as their recipient sees them, for a page at once.

One query per kind of thing shown (actors, posts, comments, offers), never one per entry. Posts
go through the feeds' own path (:class:`feed.hydrate.PageLoader` and :func:`feed.hydrate.hydrate_posts`:
cached views, the viewer's likes), so a Post here is the Post everywhere; a post or comment the
recipient can no longer see (deleted, removed, held for review) is shown as ``null``.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

# The module, not its function: feed.comments records notifications (notifications.recorder
# imports this module), so whichever is imported first finds the other partly initialised.
from feed import comments as feed_comments
from feed.hydrate import PageLoader, hydrate_posts
from feed.posts import VISIBLE, visible_to
from offers.offers import NOT_SHOWN, hydrate_offers
from solomo.accounts import user_summary
from solomo.core.jsonio import rfc3339
from solomo.core.services import Services

SHOWN_ACTORS = 3
"""Actors a Notification names (newest first); ``actor_count`` tells how many there are in all."""


def shown_actor_ids(entry: dict[str, Any]) -> list[ObjectId]:
    """The newest :data:`SHOWN_ACTORS` actors, newest first (``actor_ids`` is kept oldest first)."""
    return list(reversed(entry.get("actor_ids", [])[-SHOWN_ACTORS:]))


async def render_entries(services: Services, viewer_id: ObjectId,
                         entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not entries:
        return []
    actor_ids = list({a for e in entries for a in shown_actor_ids(e)})
    post_ids = list({e["post_id"] for e in entries if e.get("post_id")})
    comment_ids = list({e["comment_id"] for e in entries if e.get("comment_id")})
    offer_ids = list({e["offer_id"] for e in entries if e.get("offer_id")})
    # a deleted account leaves the actors shown (its likes and posts are gone too; it still counts)
    actors = {u["_id"]: user_summary(u) async for u in services.db.users.find(
        {"_id": {"$in": actor_ids}, "status": {"$ne": "deleted"}}, {"username": 1, "display_name": 1})
              } if actor_ids else {}
    posts = await _posts(services, viewer_id, post_ids)
    comments: dict[str, dict[str, Any]] = {}
    if comment_ids:
        docs = await services.db.comments.find({"_id": {"$in": comment_ids}, "status": VISIBLE}).to_list(None)
        comments = {c["id"]: c for c in await feed_comments.hydrate_comments(services, docs)}
    offers: dict[str, dict[str, Any]] = {}
    if offer_ids:
        # as ``GET /v1/offers/{id}`` shows them: one a moderator holds or removed is not shown (the
        # owner, who could see it, is never told of their own offer)
        docs = await services.db.offers.find({"_id": {"$in": offer_ids},
                                              "status": {"$nin": list(NOT_SHOWN)}}).to_list(None)
        offers = {o["id"]: o for o in await hydrate_offers(services, docs)}
    return [{
        "id": str(e["_id"]),
        "kind": e["kind"],
        "actors": [actors[a] for a in shown_actor_ids(e) if a in actors],
        "actor_count": int(e.get("actor_count", 0)),
        "post": posts.get(str(e["post_id"])) if e.get("post_id") else None,
        "comment": comments.get(str(e["comment_id"])) if e.get("comment_id") else None,
        "offer": offers.get(str(e["offer_id"])) if e.get("offer_id") else None,
        "read": bool(e.get("read")),
        "updated_at": rfc3339(e["updated_at"]),
    } for e in entries]


async def _posts(services: Services, viewer_id: ObjectId, post_ids: list[ObjectId]) -> dict[str, dict[str, Any]]:
    if not post_ids:
        return {}
    loader = PageLoader(services, viewer_id)
    views = await loader.load(post_ids)
    visible = [v for v in views.values() if visible_to(v, viewer_id)]
    return {p["id"]: p for p in await hydrate_posts(services, visible, viewer_id, loader)}
