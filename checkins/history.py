"""A user's check-ins, newest first, paged by ``(created_at, id)``: the cursor carries the time in
milliseconds (see docs/design.md, Cursors)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bson import ObjectId

from solomo.core.pagination import Position, datetime_ms, keyset_page, ms_datetime

if TYPE_CHECKING:
    from solomo.core.services import Services


async def user_checkins(
    services: Services, user_id: ObjectId, *, limit: int = 20, after: Position | None = None,
) -> tuple[list[dict[str, Any]], Position | None]:
    """One page of check-in documents and the position after it (None on the last page)."""
    return await keyset_page(services.db.checkins, {"user_id": user_id}, score_field="created_at", descending=True,
                             position=after, limit=limit, to_stored=ms_datetime, to_score=datetime_ms)
