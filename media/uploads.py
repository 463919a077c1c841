"""Uploading a photo: quota, decoding off the event loop, GridFS files, the media document.

Order: the quota is counted before the body is read (:func:`check_quota`, from the route), the
bytes are decoded and re-encoded in a worker thread (:func:`solomo.core.images.process_image`; at
most ``media_decode_concurrency`` at once per process, so a burst of 40-megapixel photos queues
instead of exhausting memory), then the media document is inserted as ``uploading`` *before* its
files — so a process dying mid-way leaves a document with ``expires_at`` that the expiry sweep
(:mod:`media.expiry`) cleans up with its files, never an orphan file nobody points at — and turns
``pending`` once both files are written. Only then does the client get its 201.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from media.store import bucket
from solomo.core.images import Encoded, ProcessedImage, process_image
from solomo.core.ratelimit import enforce
from solomo.core.services import Services

QUOTA_ACTION = "media_daily"


async def check_quota(services: Services, user_id: ObjectId) -> None:
    """Counts one upload against the user's daily quota (429 ``rate_limited`` once used up).
    Counted before the body is read: refused files cost CPU too."""
    await enforce(services, QUOTA_ACTION, user_id, limit=f"{services.settings.media_daily_quota}/day")


def _semaphore(services: Services) -> asyncio.Semaphore:
    sem = services.extras.get("media.decode")
    if sem is None:
        sem = services.extras["media.decode"] = asyncio.Semaphore(services.settings.media_decode_concurrency)
    assert isinstance(sem, asyncio.Semaphore)
    return sem


async def decode(services: Services, data: bytes) -> ProcessedImage:
    """:func:`process_image` in a thread, a bounded number at once (415/422 as it raises them)."""
    async with _semaphore(services):
        return await asyncio.to_thread(process_image, data)


def _file(file_id: ObjectId, enc: Encoded) -> dict[str, Any]:
    return {"file_id": file_id, "format": enc.format, "content_type": enc.content_type, "etag": enc.etag,
            "length": len(enc.data)}


async def upload(services: Services, owner_id: ObjectId, data: bytes, *, now: datetime | None = None) -> dict[str, Any]:
    """Stores a photo for ``owner_id``; returns its media document (status ``pending``)."""
    image = await decode(services, data)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    full_id, thumb_id = ObjectId(), ObjectId()
    doc: dict[str, Any] = {
        "_id": ObjectId(),
        "owner_id": owner_id,
        "key": secrets.token_urlsafe(16),  # 128 bits: the URLs cannot be guessed
        "status": "uploading",
        "post_id": None,
        "width": image.full.width,
        "height": image.full.height,
        "blurhash": image.blurhash,
        "full": _file(full_id, image.full),
        "thumb": _file(thumb_id, image.thumb),
        "bytes": len(image.full.data) + len(image.thumb.data),
        "created_at": now,
        "expires_at": now + timedelta(hours=services.settings.media_unattached_ttl_h),
    }
    await services.db.media.insert_one(doc)
    files = bucket(services)
    try:
        for file_id, enc, mark in ((full_id, image.full, ""), (thumb_id, image.thumb, ".t")):
            await files.upload_from_stream_with_id(file_id, f"{doc['key']}{mark}", enc.data,
                                                   metadata={"media_id": doc["_id"], "content_type": enc.content_type})
        await services.db.media.update_one({"_id": doc["_id"]}, {"$set": {"status": "pending"}})
    except BaseException:
        # the sweep would remove it a day later; try now (a failure here changes nothing)
        from media.expiry import discard

        await asyncio.shield(discard(services, doc))
        raise
    doc["status"] = "pending"
    return doc
