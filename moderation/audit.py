"""The append-only audit log (``audit`` collection).

Every moderator action (and the automatic hide) is recorded *inside the same transaction* as the
state change it describes, so the log can never disagree with the data. Nothing in the API
updates or deletes an entry; the only writer is :func:`record`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession

from solomo.core.jsonio import rfc3339
from solomo.core.pagination import page
from solomo.core.timeutil import ms_of


async def record(
    services: Any,
    session: AsyncClientSession,
    *,
    moderator_id: ObjectId | None,
    action: str,
    target_type: str,
    target_id: ObjectId | str,
    reason: str,
    before: Any,
    after: Any,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    doc = {
        "_id": ObjectId(),
        "moderator_id": moderator_id,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "reason": reason,
        "before": before,
        "after": after,
        "created_at": now,
        "created_ms": ms_of(now),
    }
    await services.db.audit.insert_one(doc, session=session)
    return doc


def audit_public(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(doc["_id"]),
        "moderator_id": str(doc["moderator_id"]) if doc.get("moderator_id") else None,
        "action": doc["action"],
        "target_type": doc["target_type"],
        "target_id": doc["target_id"],
        "reason": doc["reason"],
        "before": doc.get("before"),
        "after": doc.get("after"),
        "created_at": rfc3339(doc["created_at"]),
    }


async def list_audit(
    services: Any, *, limit: int, cursor: str | None,
    target_type: str | None = None, target_id: str | None = None,
) -> dict[str, Any]:
    """Newest first, paged by ``(created_ms, id)``."""
    query: dict[str, Any] = {}
    if target_type is not None:
        query["target_type"] = target_type
    if target_id is not None:
        query["target_id"] = target_id
    pos = services.cursors.decode_position(cursor)
    if pos is not None:
        ms, last = pos
        last_id = ObjectId(last) if ObjectId.is_valid(last) else ObjectId("f" * 24)
        query["$or"] = [{"created_ms": {"$lt": ms}}, {"created_ms": ms, "_id": {"$lt": last_id}}]
    docs = await services.db.audit.find(query).sort(
        [("created_ms", DESCENDING), ("_id", DESCENDING)]).limit(limit + 1).to_list(None)
    more = len(docs) > limit
    docs = docs[:limit]
    nxt = services.cursors.encode_position(docs[-1]["created_ms"], str(docs[-1]["_id"])) if more else None
    return page([audit_public(d) for d in docs], nxt)
