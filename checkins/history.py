"""A user's check-ins, newest first, paged by ``(created_ms, id)`` (see docs/design.md, Cursors)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import DESCENDING

from solomo.core.errors import BadRequest
from solomo.core.timeutil import from_ms, ms_of

if TYPE_CHECKING:
    from solomo.core.services import Services

Position = tuple[float, str]


async def user_checkins(
    services: Services, user_id: ObjectId, *, limit: int = 20, after: Position | None = None,
) -> tuple[list[dict[str, Any]], Position | None]:
    """One page of check-in documents and the position after it (None on the last page)."""
    query: dict[str, Any] = {"user_id": user_id}
    if after is not None:
        try:
            last_id = ObjectId(after[1])
        except Exception:
            raise BadRequest("cursor is not valid", code="invalid_cursor") from None
        at = from_ms(after[0])
        query["$or"] = [{"created_at": {"$lt": at}}, {"created_at": at, "_id": {"$lt": last_id}}]
    cursor = services.db.checkins.find(query, sort=[("created_at", DESCENDING), ("_id", DESCENDING)],
                                       limit=limit + 1)
    rows = await cursor.to_list(None)
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, (ms_of(page[-1]["created_at"]), str(page[-1]["_id"]))
