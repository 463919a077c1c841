"""The append-only audit log (``audit`` collection).

Every moderator action (and the automatic hide) is recorded *inside the same transaction* as the
state change it describes, so the log can never disagree with the data. Nothing in the API
updates or deletes an entry; the only writer is :func:`record`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from solomo.core.jsonio import rfc3339
from solomo.core.pagination import Position, keyset_page
from solomo.core.services import Services
from solomo.core.timeutil import ms_of


async def record(
    services: Services,
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
    services: Services, *, limit: int, before: Position | None,
    target_type: str | None = None, target_id: str | None = None,
) -> tuple[list[dict[str, Any]], Position | None]:
    """Newest first, paged by ``(created_ms, id)``: public entries and the position after them."""
    query: dict[str, Any] = {}
    if target_type is not None:
        query["target_type"] = target_type
    if target_id is not None:
        query["target_id"] = target_id
    docs, nxt = await keyset_page(services.db.audit, query, score_field="created_ms", descending=True,
                                  position=before, limit=limit)
    return [audit_public(d) for d in docs], nxt
