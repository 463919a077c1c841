"""Posts: validation, the stored document, and publication with a pending fan-out (the outbox).

A post is written to MongoDB with ``fanout: "pending"`` before the client gets its 201; the
fan-out task is then enqueued, and the sweeper re-enqueues anything still pending, so an
acknowledged post always reaches its readers even if the broker or a worker fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from feed import postcache
from feed.text import MAX_MENTIONS, MAX_TOPICS, extract_mentions, extract_topics, has_empty_topic
from geo.geojson import geo_point
from geo.privacy import coarsen
from media.attach import attach, attachable, parse_media_ids
from moderation.screen import screen_text
from solomo.accounts import Principal
from solomo.core import tasknames
from solomo.core.errors import Forbidden, Invalid, NotFound
from solomo.core.idempotency import running_reservation
from solomo.core.searchkeys import post_keys
from solomo.core.services import Services
from solomo.core.timeutil import ms_of
from solomo.core.txn import Txn, run_transaction, send_task

MAX_POST_CHARS = 2000
VISIBLE = "published"
OWN_VISIBLE = ("published", "pending_review", "hidden")
"""What an author sees of their own posts; "removed" and "deleted" are visible to nobody here."""


MODERATOR_VISIBLE = ("published", "pending_review", "hidden", "removed")
"""What a moderator can open by id: everything but an author's own deletion — unless that deletion
would have destroyed evidence (``evidence``, below)."""
HELD = ("pending_review", "hidden")
"""Statuses a moderator put on the post (or the filter did): deleting it keeps it as evidence."""


@dataclass(frozen=True)
class RepostOf:
    """What makes a post a repost (contract: Reposts): ``root_id`` the original it shows (never a
    repost itself), ``via_id`` the repost that was reposted (None when the root was), ``chain`` the
    ``//@name: text`` of that repost, appended after the repost's own text."""

    root_id: ObjectId
    via_id: ObjectId | None = None
    chain: str = ""


def with_chain(own: str, chain: str) -> str:
    """A repost's stored text, Weibo-style: ``own //@previous_author: previous text``, cut to
    :data:`MAX_POST_CHARS`."""
    text = f"{own} {chain}" if own and chain else own or chain
    return text[:MAX_POST_CHARS]


def visible_to(doc: dict[str, Any], viewer_id: ObjectId | None, role: str | None = None) -> bool:
    status = doc.get("status")
    if status == VISIBLE:
        return True
    if role == "moderator" and (status in MODERATOR_VISIBLE or (status == "deleted" and doc.get("evidence"))):
        return True
    return viewer_id is not None and doc.get("author_id") == viewer_id and status in OWN_VISIBLE


def visibility_filter(viewer_id: ObjectId | None, author_id: ObjectId | None = None) -> dict[str, Any]:
    """The MongoDB condition for posts the viewer may see (``author_id``: the listing's author)."""
    if viewer_id is not None and author_id is not None and viewer_id == author_id:
        return {"status": {"$in": list(OWN_VISIBLE)}}
    if viewer_id is None or author_id is not None:
        return {"status": VISIBLE}
    return {"$or": [{"status": VISIBLE}, {"author_id": viewer_id, "status": {"$in": list(OWN_VISIBLE)}}]}


async def build_post(
    services: Services,
    author: Principal,
    text: str,
    *,
    store: dict[str, Any] | None = None,
    lat: float | None = None,
    lng: float | None = None,
    kind: str = "post",
    checkin_id: ObjectId | None = None,
    created_at: datetime | None = None,
    media: list[dict[str, Any]] | None = None,
    repost: RepostOf | None = None,
) -> dict[str, Any]:
    """Validate and build (not store) a post document.

    Its ``location`` is the public position (contract: Privacy): the store's when there is a
    store, else (``lat``, ``lng``) snapped to the grid of :mod:`geo.privacy`. ``media``: the
    photos' copies (:func:`media.attach.attachable`); the caller attaches them in the transaction
    that inserts the post (:func:`insert_post_with_media`)."""
    if not text.strip() and not media and repost is None:
        raise Invalid("text must not be empty (unless the post has photos)", code="invalid")
    if (lat is None) != (lng is None):
        raise Invalid("give both lat and lng, or neither", code="invalid")
    if has_empty_topic(text):
        raise Invalid("a # must be followed by a topic (#tag or #话题#)", code="empty_topic")
    topics = extract_topics(text)
    if len(topics) > MAX_TOPICS:
        raise Invalid(f"a post may carry at most {MAX_TOPICS} topics", code="too_many_topics")
    if len(text) > MAX_POST_CHARS:
        raise Invalid(f"text is longer than {MAX_POST_CHARS} characters", code="invalid")
    verdict, flagged = await screen_text(services, text)
    names = extract_mentions(text)[:MAX_MENTIONS]
    mentioned = await services.accounts.by_usernames(names) if names else []
    location = None
    if store is not None:  # a post about a store is located at the store, wherever it was written
        store_lng, store_lat = store["location"]["coordinates"]
        location = geo_point(store_lat, store_lng)
    elif lat is not None and lng is not None:  # the exact fix is not kept: no rule needs it
        location = geo_point(*coarsen(lat, lng))
    created = created_at or datetime.now(UTC)
    doc: dict[str, Any] = {
        "_id": ObjectId(),
        "author_id": author.id,
        "text": with_chain(text if text.strip() else "", repost.chain) if repost else text,
        "search_keys": post_keys(text),
        "topics": [{"key": t.key, "display": t.display} for t in topics],
        "topic_keys": [t.key for t in topics],
        "mention_ids": [m["_id"] for m in mentioned],
        "mentions": [m["username"] for m in mentioned],
        "store_id": store["_id"] if store else None,
        "store_owner_post": bool(store and store.get("owner_id") == author.id),
        "location": location,
        "kind": kind,
        "checkin_id": checkin_id,
        "status": "pending_review" if verdict == "review" else VISIBLE,
        "flags": [{"source": "words", "words": flagged}] if flagged else [],
        "fanout": "pending",
        "like_count": 0,
        "comment_count": 0,
        "repost_count": 0,
        "created_at": created,
        "created_ms": ms_of(created),
    }
    if media:
        doc["media"] = media
    if repost is not None:
        doc["repost_of"] = repost.root_id
        if repost.via_id is not None:
            doc["repost_via"] = repost.via_id
    return doc


async def insert_post(services: Services, doc: dict[str, Any], session: AsyncClientSession | None = None) -> None:
    await services.db.posts.insert_one(doc, session=session)


async def attach_and_insert(services: Services, txn: Txn, docs: Sequence[dict[str, Any]]) -> None:
    """Inside a transaction: each post's photos become its own (422 ``invalid_media`` if one was
    used meanwhile, aborting the whole write), then the posts are inserted (one round trip for a
    group of check-ins' posts, :mod:`checkins.groupcommit`)."""
    for doc in docs:
        await attach(services, txn.session, doc["author_id"], [ObjectId(m["id"]) for m in doc.get("media", [])],
                     doc["_id"])
    if len(docs) == 1:
        await insert_post(services, docs[0], session=txn.session)
    elif docs:
        await services.db.posts.insert_many(list(docs), ordered=True, session=txn.session)


async def create_post(services: Services, author: Principal, text: str, *, media_ids: Sequence[str] | None = None,
                      **kwargs: Any) -> dict[str, Any]:
    media = await attachable(services, author.id, parse_media_ids(media_ids))
    doc = await build_post(services, author, text, media=media, **kwargs)
    if not media and running_reservation() is None:
        # one insert, no transaction; a request holding an Idempotency-Key takes the transaction,
        # which marks its reservation written with the post: a retry after an answer lost in an
        # election then replays or waits, and never inserts the post twice
        await insert_post(services, doc)
        await send_task(services, tasknames.FANOUT_POST, str(doc["_id"]))  # else the outbox sweep sends it
        return doc

    async def write(txn: Txn) -> None:  # the photos (if any) and the post together, or neither
        await attach_and_insert(services, txn, [doc])
        txn.after_commit(tasknames.FANOUT_POST, str(doc["_id"]))

    await run_transaction(services, write)
    return doc


async def get_visible_post(services: Services, post_id: ObjectId, viewer_id: ObjectId | None,
                           role: str | None = None) -> dict[str, Any]:
    """The post by id if ``viewer_id`` (with ``role``) may open it, else 404 (never 403: a hidden
    post's existence is not revealed)."""
    doc = await services.db.posts.find_one({"_id": post_id})
    if doc is None or not visible_to(doc, viewer_id, role):
        raise NotFound("post not found")
    return doc


async def delete_post(services: Services, post_id: ObjectId, user_id: ObjectId) -> None:
    """The author deletes a post: it leaves every feed and listing (through the retract task; the
    sweeper re-sends it if the broker loses it, since ``fanout`` goes back to pending).

    A post under review, hidden, or with open reports is kept as ``evidence``: moderators still open
    it and it stays in their queue (a held one keeps its place, ``queued_ms`` = its creation) until
    they decide. One pipeline update, so a report or decision racing the deletion is judged on the
    same state as the deletion."""
    doc = await get_visible_post(services, post_id, user_id)
    if doc["author_id"] != user_id:
        raise Forbidden("only its author can delete a post")
    evidence = {"$or": [{"$in": ["$status", list(HELD)]}, {"$gt": [{"$ifNull": ["$open_reports", 0]}, 0]}]}

    async def mark_deleted(session: AsyncClientSession | None) -> bool:
        result = await services.db.posts.update_one(
            {"_id": post_id, "status": {"$ne": "deleted"}},
            [{"$set": {"status": "deleted", "deleted_from": "$status", "deleted_at": datetime.now(UTC),
                       "fanout": "pending", "evidence": evidence,
                       "status_version": {"$add": [{"$ifNull": ["$status_version", 0]}, 1]},
                       "queued_ms": {"$cond": [{"$eq": ["$status", "pending_review"]}, "$created_ms", "$queued_ms"]}}},
             {"$unset": "fanout_progress"}],
            session=session,
        )
        return bool(result.modified_count)

    async def repost_deleted(txn: Txn) -> bool:
        # the originals' repost_count moves with the deletion itself, and only when it happened
        deleted = await mark_deleted(txn.session)
        if deleted:
            await move_repost_counts(services, doc, -1, txn.session)
        return deleted

    reposted = repost_targets(doc)
    deleted = await run_transaction(services, repost_deleted) if reposted else await mark_deleted(None)
    if deleted:
        await postcache.invalidate(services, [post_id, *reposted])  # feeds' cached views (status, counts)
        await send_task(services, tasknames.FANOUT_RETRACT, str(post_id))


def repost_targets(doc: dict[str, Any]) -> list[ObjectId]:
    """The posts whose ``repost_count`` counts this one: its root original and, when it reposted
    a repost, that repost (Weibo counts both); empty for a post that is no repost."""
    return [p for p in (doc.get("repost_of"), doc.get("repost_via")) if p is not None]


async def move_repost_counts(services: Services, doc: dict[str, Any], delta: int,
                             session: AsyncClientSession) -> None:
    """Moves the ``repost_count`` of :func:`repost_targets` by ``delta`` inside the caller's
    transaction (the one that creates or deletes the repost ``doc``)."""
    await services.db.posts.update_many({"_id": {"$in": repost_targets(doc)}}, {"$inc": {"repost_count": delta}},
                                        session=session)


async def load_store(services: Services, store_id: ObjectId) -> dict[str, Any]:
    store = await services.db.stores.find_one({"_id": store_id})
    if store is None:
        raise NotFound("store not found")
    return store
