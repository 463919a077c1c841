"""Uploads never used are deleted after ``media_unattached_ttl_h`` (24 h): beat's
``maintenance.media_expire`` task runs :func:`expire_unattached`.

A document is deleted first, conditionally (still unused, still expired), then its files: an
attachment racing the sweep either commits first (the delete then matches nothing) or finds the
document gone and answers 422 ``invalid_media``. Files of a document that is gone are never served
(every GET starts from the document).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from gridfs.errors import NoFile
from pymongo.errors import PyMongoError

from media.store import bucket
from solomo.core.services import Services

log = logging.getLogger("media.expiry")
BATCH = 500
UNUSED = ("uploading", "pending")


async def discard(services: Services, doc: dict[str, Any], *, any_status: bool = False) -> bool:
    """Deletes an unused media document and its files; False if it was used (or gone) meanwhile.
    ``any_status``: whatever it is used for (the owner's account is being erased)."""
    query: dict[str, Any] = {"_id": doc["_id"]} if any_status else {"_id": doc["_id"], "status": {"$in": list(UNUSED)}}
    gone = await services.db.media.delete_one(query)
    if not gone.deleted_count:
        return False
    files = bucket(services)
    for part in ("full", "thumb"):
        try:
            await files.delete(doc[part]["file_id"])
        except NoFile:
            pass  # never written (the upload died first) or deleted by an earlier run
        except PyMongoError:
            log.warning("media file %s of %s not deleted", doc[part]["file_id"], doc["_id"], exc_info=True)
    return True


async def expire_unattached(services: Services, now: datetime | None = None, batch: int = BATCH) -> int:
    """Deletes every upload unused past its ``expires_at``; returns how many."""
    now = now or datetime.now(UTC)
    removed = 0
    while True:
        docs = await services.db.media.find(
            {"expires_at": {"$lte": now}, "status": {"$in": list(UNUSED)}},
            {"full.file_id": 1, "thumb.file_id": 1}).limit(batch).to_list()
        for doc in docs:
            removed += await discard(services, doc)
        if len(docs) < batch:
            return removed


async def erase_owner(services: Services, owner_id: ObjectId, batch: int = BATCH) -> int:
    """Account erasure: every photo the user uploaded, used or not, and its files (their posts are
    tombstones by then, so nothing shows them). Returns how many; safe to run again."""
    removed = 0
    while True:
        docs = await services.db.media.find({"owner_id": owner_id},
                                            {"full.file_id": 1, "thumb.file_id": 1}).limit(batch).to_list()
        for doc in docs:
            removed += await discard(services, doc, any_status=True)
        if len(docs) < batch:
            return removed
