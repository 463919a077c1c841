"""A user's check-ins, newest first, paged by ``(created_at, id)``: the cursor carries the time in
milliseconds (see docs/design.md, Cursors). Their user sees each device fix; anyone else sees the
store's location (contract: Privacy)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bson import ObjectId

from checkins.checkin import checkin_public, checkin_seen_by_others
from checkins.stores import STORES, store_latlng, store_summary
from solomo.core.pagination import Position, datetime_ms, keyset_page, ms_datetime

if TYPE_CHECKING:
    from solomo.core.services import Services


async def user_checkins(
    services: Services, user_id: ObjectId, *, limit: int = 20, after: Position | None = None,
) -> tuple[list[dict[str, Any]], Position | None]:
    """One page of check-in documents and the position after it (None on the last page)."""
    return await keyset_page(services.db.checkins, {"user_id": user_id}, score_field="created_at", descending=True,
                             position=after, limit=limit, to_stored=ms_datetime, to_score=datetime_ms)


async def shape_checkins(services: Services, docs: list[dict[str, Any]],
                         viewer_id: ObjectId) -> list[dict[str, Any]]:
    """The Checkins of one page as ``viewer_id`` may see them, each with its ``store`` (the
    contract's StoreSummary, null for a store gone: a history names where, not only an id); the
    stores through the one loader of stores by id (:data:`checkins.stores.STORES`)."""
    stores = await STORES.load(services, list({d["store_id"] for d in docs}))
    out = []
    for d in docs:
        store = stores.get(d["store_id"])
        item = (checkin_public(d) if d["user_id"] == viewer_id
                else checkin_seen_by_others(d, store_latlng(store) if store else None))
        item["store"] = store_summary(store) if store else None
        out.append(item)
    return out
