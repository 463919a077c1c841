"""Reposts (转发, contract: Reposts): a repost is a post like any other — built by
:func:`feed.posts.build_post`, published through the fan-out outbox to the reposter's followers —
that also names the original it shows.

* The root rule: ``repost_of`` is always the *root* original. Reposting a repost points at that
  repost's root, records the repost in ``repost_via``, and appends its text Weibo-style
  (``own text //@previous_author: previous text``, cut to 2,000 characters). Topics, mentions and
  the word filter see only the repost's own text (the chain was screened when it was posted).
* Counters: the root's ``repost_count`` (and the reposted repost's, when there is one) move in the
  same transaction as the repost is inserted, and as it is deleted (``feed.posts.delete_post``),
  so they never drift. The insert re-reads the root inside the transaction: a deletion or removal
  racing the repost either commits first (the repost answers 404, nothing written) or conflicts
  with the counter's write and is retried after it.
* Visibility: only a published post whose root is published can be reposted; one the caller
  cannot see is 404, a block either way with the author of the post or of its root 403
  ``blocked``. How a repost shows its original to each reader is decided at read time
  (:mod:`feed.hydrate`).
* Notification: a published repost tells the original's author (``repost``), owed on the repost's
  own document in its insert and recorded after the answer (:mod:`notifications.outbox`).
* Lists: ``GET /v1/posts/{id}/reposts`` lists the reposts of a root (``repost_of``) or, for a
  repost, the reposts made of it (``repost_via``), newest first, the way each counter counts.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from feed import postcache
from feed.blocks import hidden_authors, is_blocked_between, open_post
from feed.hydrate import hydrate_post
from feed.posts import (
    VISIBLE,
    RepostOf,
    build_post,
    get_visible_post,
    insert_post,
    move_repost_counts,
    visibility_filter,
    visible_to,
)
from notifications import outbox
from solomo.accounts import Principal
from solomo.core import tasknames
from solomo.core.errors import Forbidden, Invalid, NotFound
from solomo.core.pagination import Position, keyset_page
from solomo.core.services import Services
from solomo.core.txn import Txn, run_transaction


async def _root_of(services: Services, post: dict[str, Any], user_id: ObjectId) -> dict[str, Any]:
    """The root original of ``post`` (itself when it is no repost), if the caller may see it; else 404."""
    if post.get("repost_of") is None:
        return post
    root = await services.db.posts.find_one({"_id": post["repost_of"]})
    if root is None or not visible_to(root, user_id):
        raise NotFound("the original of this repost is no longer available")
    return root


async def _check_blocks(services: Services, user: Principal, authors: set[ObjectId]) -> None:
    for author_id in authors - {user.id}:
        if await is_blocked_between(services, user.id, author_id):
            raise Forbidden("you cannot repost this user's posts", code="blocked")


async def _chain_of(services: Services, post: dict[str, Any]) -> str:
    """``//@author: text`` of a repost being reposted; "" for a root (its text is shown embedded)."""
    if post.get("repost_of") is None:
        return ""
    author = await services.db.users.find_one({"_id": post["author_id"]}, {"username": 1})
    return f"//@{author['username'] if author else ''}: {post['text']}"


async def create_repost(services: Services, user: Principal, post_id: ObjectId,
                        text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reposts ``post_id`` with the caller's ``text`` (may be empty): (the new post document, its
    original as a Post for the caller). Everything the answer needs is read before the write."""
    post = await get_visible_post(services, post_id, user.id)
    root = await _root_of(services, post, user.id)
    if post["status"] != VISIBLE or root["status"] != VISIBLE:
        raise Invalid("only published posts can be reposted", code="not_repostable")
    await _check_blocks(services, user, {post["author_id"], root["author_id"]})
    via = post["_id"] if post["_id"] != root["_id"] else None
    doc = await build_post(services, user, text,
                           repost=RepostOf(root_id=root["_id"], via_id=via, chain=await _chain_of(services, post)))
    original = await hydrate_post(services, root, user.id)
    if doc["status"] == VISIBLE:  # the original's author hears of it: owed on the repost itself
        told = outbox.Notice("repost", root["author_id"], user.id, post_id=root["_id"])
        doc.update(outbox.pending([told], doc["created_at"]))

    async def body(txn: Txn) -> int:
        session = txn.session
        counted = await services.db.posts.find_one({"_id": root["_id"], "status": VISIBLE}, {"repost_count": 1},
                                                   session=session)
        if counted is None:  # deleted, hidden or removed since it was read: nothing is written
            raise NotFound("post not found")
        await insert_post(services, doc, session)
        await move_repost_counts(services, doc, +1, session)
        txn.after_commit(tasknames.FANOUT_POST, str(doc["_id"]))  # else the outbox sweep sends it
        return int(counted.get("repost_count", 0)) + 1

    original["repost_count"] = await run_transaction(services, body)
    await postcache.invalidate_quietly(services, [root["_id"], *([via] if via else [])],  # their repost_count
                                       f"repost {doc['_id']}")
    await outbox.record_soon(services, "posts", doc)
    return doc, original


async def list_reposts(services: Services, viewer_id: ObjectId, post_id: ObjectId, after: Position | None,
                       limit: int, role: str | None = None) -> tuple[list[dict[str, Any]], Position | None]:
    """The reposts of a post the viewer may see, newest first: of a root, every repost of it; of a
    repost, those made of that repost. Reposts by users the viewer blocks or mutes, or who block
    the viewer, are left out (as from every feed); a post behind a block is 404, as it is to
    ``GET /v1/posts/{id}`` and its comments."""
    post = await open_post(services, post_id, viewer_id, role)
    field = "repost_via" if post.get("repost_of") is not None else "repost_of"
    query: dict[str, Any] = {field: post_id, **visibility_filter(viewer_id)}
    hidden = await hidden_authors(services, viewer_id)
    if hidden:
        query["author_id"] = {"$nin": list(hidden)}
    return await keyset_page(services.db.posts, query, score_field="created_ms", descending=True,
                             position=after, limit=limit)
