"""Using uploads: photos of a post or check-in (up to 9, the uploader's own, unused), and avatars.

A post's photos are checked twice: before its transaction (:func:`attachable`: a clear error,
and the copies the post document embeds) and inside it (:func:`attach`: one conditional update
whose count must match). Two posts racing for one photo write the same media documents, so
MongoDB aborts one transaction and its retry finds the photo taken: 422 ``invalid_media``, and
nothing of that post is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from media.store import MAX_PER_POST, embedded, media_public
from solomo.core.errors import Invalid
from solomo.core.ids import maybe_id
from solomo.core.services import Services


class InvalidMedia(Invalid):
    code = "invalid_media"


def parse_media_ids(raw: Sequence[str] | None) -> list[ObjectId]:
    """Client ids → ObjectIds; 422 ``invalid_media`` for more than 9, a malformed id or a repeat."""
    if not raw:
        return []
    if len(raw) > MAX_PER_POST:
        raise InvalidMedia(f"a post takes at most {MAX_PER_POST} photos")
    ids = [maybe_id(x) for x in raw]
    for i, oid in enumerate(ids):
        if oid is None:
            raise InvalidMedia(f"media_ids[{i}] is not a media id")
    unique = [oid for oid in ids if oid is not None]
    if len(set(unique)) != len(unique):
        raise InvalidMedia("a photo appears twice in media_ids")
    return unique


def _usable(owner_id: ObjectId, now: datetime) -> dict[str, Any]:
    return {"owner_id": owner_id, "status": "pending", "expires_at": {"$gt": now}}


async def attachable(services: Services, owner_id: ObjectId, ids: list[ObjectId]) -> list[dict[str, Any]]:
    """The embedded copies (in ``ids`` order) of photos ``owner_id`` may attach; else 422
    ``invalid_media``. Someone else's photo reads as unknown: its existence is not revealed."""
    if not ids:
        return []
    now = datetime.now(UTC)
    docs = {d["_id"]: d async for d in services.db.media.find({"_id": {"$in": ids}})}
    for i, oid in enumerate(ids):
        doc = docs.get(oid)
        if doc is None or doc["owner_id"] != owner_id or doc["status"] == "uploading":
            raise InvalidMedia(f"media_ids[{i}] is not one of your uploads")
        if doc["status"] != "pending":
            raise InvalidMedia(f"media_ids[{i}] is already used (attached to a post, or your avatar)")
        if doc["expires_at"] <= now:
            raise InvalidMedia(f"media_ids[{i}] has expired: upload it again")
    return [embedded(docs[oid]) for oid in ids]


async def attach(services: Services, session: AsyncClientSession, owner_id: ObjectId, ids: list[ObjectId],
                 post_id: ObjectId) -> None:
    """Inside the post's transaction: marks the photos attached to ``post_id``, or raises 422
    ``invalid_media`` (aborting the transaction) if any was used or expired meanwhile."""
    if not ids:
        return
    result = await services.db.media.update_many(
        {"_id": {"$in": ids}, **_usable(owner_id, datetime.now(UTC))},
        {"$set": {"status": "attached", "post_id": post_id}, "$unset": {"expires_at": ""}}, session=session)
    if result.modified_count != len(ids):
        raise InvalidMedia("a photo was used elsewhere meanwhile")


async def claim_avatar(services: Services, user_id: ObjectId, media_id: ObjectId | str,
                       session: AsyncClientSession | None = None) -> dict[str, Any]:
    """Makes an upload of ``user_id`` their avatar (it no longer expires) and returns its Media;
    422 ``invalid_media`` if it is someone else's, attached to a post, unknown or expired. Claiming
    the current avatar again is fine. The caller records it on the user (``PATCH /v1/me``)."""
    oid = media_id if isinstance(media_id, ObjectId) else maybe_id(media_id)
    if oid is None:
        raise InvalidMedia("avatar_media_id is not a media id")
    now = datetime.now(UTC)
    doc = await services.db.media.find_one_and_update(
        {"_id": oid, "$or": [_usable(user_id, now), {"owner_id": user_id, "status": "avatar"}]},
        {"$set": {"status": "avatar"}, "$unset": {"expires_at": ""}}, return_document=ReturnDocument.AFTER,
        session=session)
    if doc is None:
        raise InvalidMedia("avatar_media_id is not one of your unused uploads")
    return media_public(doc)


async def release_avatar(services: Services, user_id: ObjectId, media_id: ObjectId,
                         session: AsyncClientSession | None = None) -> None:
    """The user's avatar changed: the old picture becomes an unused upload again, so the expiry
    sweep deletes it a day later (caches that hold its URL get 404 after that)."""
    ttl = timedelta(hours=services.settings.media_unattached_ttl_h)
    await services.db.media.update_one({"_id": media_id, "owner_id": user_id, "status": "avatar"},
                                       {"$set": {"status": "pending", "expires_at": datetime.now(UTC) + ttl}},
                                       session=session)
