"""The media document, its GridFS files, and the contract's Media shape.

A ``media`` document (docs/design.md, "Photos"): ``_id, owner_id, key, status, post_id, width,
height, blurhash, full {file_id, format, content_type, etag, length}, thumb {…}, created_at,
expires_at?``. ``key`` is 128 random bits (URL-safe base64): the URLs are built from it alone, so
knowing a media id or a post does not let anyone guess them. ``status``:

* ``uploading`` — the files are being written (never served, never attachable);
* ``pending`` — uploaded, not used yet: the uploader may attach it; ``expires_at`` set;
* ``attached`` — part of post ``post_id`` (served while the post is not removed or deleted);
* ``avatar`` — its owner's profile picture (:func:`media.attach.claim_avatar`).

A post keeps a copy of its media's public fields (:func:`embedded`: strings and numbers only, so
it goes into the post cache's JSON view as it is); the pictures never change once uploaded, so the
copy never goes stale.
"""

from __future__ import annotations

from typing import Any

from gridfs import AsyncGridFSBucket

from solomo.core.images import EXTENSIONS
from solomo.core.jsonio import rfc3339
from solomo.core.services import Services

BUCKET = "mediafs"
MAX_PER_POST = 9
URL_PREFIX = "/media/"
THUMB_MARK = ".t"
"""``/media/<key>.<ext>`` is the picture, ``/media/<key>.t.<ext>`` its thumbnail."""


def bucket(services: Services) -> AsyncGridFSBucket:
    """The GridFS bucket of media files (one per process: it only holds collection handles)."""
    found = services.extras.get("media.bucket")
    if found is None:
        found = services.extras["media.bucket"] = AsyncGridFSBucket(services.db, bucket_name=BUCKET)
    assert isinstance(found, AsyncGridFSBucket)
    return found


def embedded(doc: dict[str, Any]) -> dict[str, Any]:
    """A media document → the copy a post keeps (JSON-ready)."""
    return {
        "id": str(doc["_id"]),
        "key": doc["key"],
        "ext": EXTENSIONS[doc["full"]["format"]],
        "thumb_ext": EXTENSIONS[doc["thumb"]["format"]],
        "width": doc["width"],
        "height": doc["height"],
        "blurhash": doc["blurhash"],
        "created_at": rfc3339(doc["created_at"]),
    }


def media_public(item: dict[str, Any]) -> dict[str, Any]:
    """The contract's Media, from a media document or a post's :func:`embedded` copy."""
    emb = item if "ext" in item else embedded(item)
    return {
        "id": emb["id"],
        "type": "image",
        "width": emb["width"],
        "height": emb["height"],
        "url": f"{URL_PREFIX}{emb['key']}.{emb['ext']}",
        "thumb_url": f"{URL_PREFIX}{emb['key']}{THUMB_MARK}.{emb['thumb_ext']}",
        "blurhash": emb["blurhash"],
        "created_at": emb["created_at"],
    }
