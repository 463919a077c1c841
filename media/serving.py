"""Serving photos: ``GET /media/<key>.<ext>`` (the picture) and ``/media/<key>.t.<ext>`` (its thumbnail).

The URL is the only credential (``<img>`` sends no bearer token), so its key is 128 random bits.
Each GET reads the media document — attached photos and avatars from a small per-process cache
(:data:`META_TTL_S`: their post never changes), unattached ones from MongoDB — and, for an attached
photo, its post's status from the post cache (:mod:`feed.postcache`, kept exact by the rule that
every change to a post invalidates it): a removed or deleted post's photos answer 404 at once (the
contract allows a minute). Moderators (``Authorization`` header) still get them, uncacheable.

The bytes never change for a key: strong ``ETag`` (a hash of the bytes), a year of ``immutable``
caching, 304 on ``If-None-Match``, and a single byte range served straight from GridFS (seek to
the chunk). Thumbnails are kept in a bounded per-process cache of bytes (:data:`THUMB_CACHE_BYTES`),
so a feed's nine-grids cost MongoDB nothing after the first view.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bson import ObjectId

from feed import postcache
from media.store import bucket
from solomo.core.images import EXTENSIONS
from solomo.core.services import Services

NAME = re.compile(r"([A-Za-z0-9_-]{22})(\.t)?\.([a-z]{3,4})")
META_TTL_S = 30.0
META_MAX = 50_000
THUMB_CACHE_BYTES = 64 * 1024 * 1024
THUMB_CACHE_ITEM_MAX = 512 * 1024
STREAM_OVER_BYTES = 1024 * 1024
"""Answers longer than this are streamed chunk by chunk instead of read whole into memory."""
STREAM_CHUNK = 255 * 1024
HIDDEN_POST_STATUSES = ("removed", "deleted")
SERVED_STATUSES = ("pending", "attached", "avatar")


@dataclass(frozen=True)
class MediaFile:
    """One file of a photo as served."""

    file_id: ObjectId
    content_type: str
    etag: str
    length: int
    thumb: bool
    post_id: ObjectId | None


class _Caches:
    def __init__(self) -> None:
        self.meta: OrderedDict[str, tuple[float, dict[str, Any] | None]] = OrderedDict()
        self.thumbs: OrderedDict[ObjectId, bytes] = OrderedDict()
        self.thumb_bytes = 0

    def get_meta(self, key: str) -> tuple[bool, dict[str, Any] | None]:
        item = self.meta.get(key)
        if item is None or item[0] < time.monotonic():
            return False, None
        return True, item[1]

    def put_meta(self, key: str, doc: dict[str, Any] | None) -> None:
        self.meta[key] = (time.monotonic() + META_TTL_S, doc)
        self.meta.move_to_end(key)
        while len(self.meta) > META_MAX:
            self.meta.popitem(last=False)

    def get_thumb(self, file_id: ObjectId) -> bytes | None:
        data = self.thumbs.get(file_id)
        if data is not None:
            self.thumbs.move_to_end(file_id)
        return data

    def put_thumb(self, file_id: ObjectId, data: bytes) -> None:
        if len(data) > THUMB_CACHE_ITEM_MAX or file_id in self.thumbs:
            return
        self.thumbs[file_id] = data
        self.thumb_bytes += len(data)
        while self.thumb_bytes > THUMB_CACHE_BYTES:
            _, old = self.thumbs.popitem(last=False)
            self.thumb_bytes -= len(old)


def _caches(services: Services) -> _Caches:
    found = services.extras.get("media.serving")
    if found is None:
        found = services.extras["media.serving"] = _Caches()
    assert isinstance(found, _Caches)
    return found


async def _media_doc(services: Services, key: str) -> dict[str, Any] | None:
    caches = _caches(services)
    found, doc = caches.get_meta(key)
    if not found:
        doc = await services.db.media.find_one(
            {"key": key}, {"status": 1, "post_id": 1, "full": 1, "thumb": 1})
        if doc is not None and doc["status"] not in SERVED_STATUSES:
            doc = None  # still uploading: not cached, it is about to exist
        elif doc is None or doc["status"] != "pending":
            # a pending photo is not cached: it may be attached any moment, and its post's status must
            # then count at once (only its uploader knows its URLs yet, so these reads are few)
            caches.put_meta(key, doc)
    return doc


async def find_file(services: Services, name: str) -> MediaFile | None:
    """The file a media URL's last segment names, or None (unknown, malformed, or still uploading)."""
    match = NAME.fullmatch(name)
    if match is None:
        return None
    key, thumb, ext = match.group(1), bool(match.group(2)), match.group(3)
    doc = await _media_doc(services, key)
    if doc is None:
        return None
    part = doc["thumb" if thumb else "full"]
    if EXTENSIONS[part["format"]] != ext:
        return None
    return MediaFile(part["file_id"], part["content_type"], part["etag"], int(part["length"]), thumb,
                     doc.get("post_id"))


async def publicly_visible(services: Services, file: MediaFile) -> bool:
    """False once the photo's post is removed or deleted (or gone)."""
    if file.post_id is None:
        return True
    view = (await postcache.load(services, [file.post_id])).get(file.post_id)
    return view is not None and view["status"] not in HIDDEN_POST_STATUSES


async def read_bytes(services: Services, file: MediaFile, start: int = 0, end: int | None = None) -> bytes:
    """Bytes ``start`` to ``end`` (exclusive; None: to the end) of the file."""
    stop = file.length if end is None else end
    whole = start == 0 and stop == file.length
    caches = _caches(services)
    if file.thumb:
        cached = caches.get_thumb(file.file_id)
        if cached is not None:
            return cached[start:stop]
    stream = await bucket(services).open_download_stream(file.file_id)
    if start:
        await stream.seek(start)
    data = await stream.read(stop - start)
    if file.thumb and whole:
        caches.put_thumb(file.file_id, data)
    return data


async def stream_bytes(services: Services, file: MediaFile, start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes ``start`` to ``end`` (exclusive), one GridFS chunk's worth at a time."""
    stream = await bucket(services).open_download_stream(file.file_id)
    if start:
        await stream.seek(start)
    remaining = end - start
    while remaining > 0:
        chunk = await stream.read(min(STREAM_CHUNK, remaining))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk
