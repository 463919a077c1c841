"""The reading side of the inbox: a page newest first, unread counts per kind, mark read.

A page and mark-read first pull in the offers delivered since the last pull, and the unread counts
include those not pulled yet (:mod:`notifications.offerinbox`).
Entries are ordered by ``(updated_ms, _id)``, newest first: a grouped entry that gains an actor
moves to the top (a page already read may then show it again; clients keep the newer copy by
``id``). Unread counts add up actors: a group of 4 unread likes counts 4 (Weibo's "赞 4"), every
other entry 1; they read only the partial ``unread`` index, and an inbox holds at most
:data:`notifications.recorder.INBOX_CAP` entries.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from notifications import offerinbox, render
from solomo.core.errors import NotFound
from solomo.core.eventtypes import NOTIFICATION_KINDS
from solomo.core.pagination import Position, keyset_page
from solomo.core.services import Services


async def list_page(services: Services, viewer_id: ObjectId, kind: str | None, position: Position | None,
                    limit: int) -> tuple[list[dict[str, Any]], Position | None]:
    """A page of the viewer's Notifications (of one ``kind`` if given), newest first."""
    await offerinbox.pull(services, viewer_id)
    query: dict[str, Any] = {"recipient_id": viewer_id}
    if kind is not None:
        query["kind"] = kind
    rows, nxt = await keyset_page(services.db.notifications, query, score_field="updated_ms", descending=True,
                                  position=position, limit=limit)
    return await render.render_entries(services, viewer_id, rows), nxt


async def unread_counts(services: Services, recipient_id: ObjectId) -> dict[str, Any]:
    """``{"total", "by_kind": {kind: n}}`` (every kind listed, 0 when none); offers delivered but
    not yet pulled into the inbox count as unread offers. One aggregation brings the unread entries
    by kind and the recipient's offer mark (a round trip fewer on every ``notification`` event)."""
    by_kind = dict.fromkeys(NOTIFICATION_KINDS, 0)
    pipeline: list[dict[str, Any]] = [
        {"$match": {"recipient_id": recipient_id, "read": False}},
        {"$group": {"_id": "$kind", "n": {"$sum": {"$max": [1, "$actor_count"]}}}},
        offerinbox.mark_stage(recipient_id),
    ]
    mark: dict[str, Any] | None = None
    async for row in await services.db.notifications.aggregate(pipeline):
        if offerinbox.MARK_ROW in row:
            mark = row[offerinbox.MARK_ROW]
        elif row["_id"] in by_kind:
            by_kind[row["_id"]] = int(row["n"])
    by_kind["offer"] += await offerinbox.pending_count(services, recipient_id, mark)
    return {"total": sum(by_kind.values()), "by_kind": by_kind}


async def mark_read(services: Services, recipient_id: ObjectId, up_to: ObjectId | None) -> int:
    """Marks the recipient's entries read — all, or ``up_to`` (one of theirs) and every older one —
    and closes their groups (the next like starts a new entry); returns how many changed.
    404 when ``up_to`` is not one of the recipient's entries."""
    await offerinbox.pull(services, recipient_id)
    query: dict[str, Any] = {"recipient_id": recipient_id, "read": False}
    if up_to is not None:
        entry = await services.db.notifications.find_one({"_id": up_to, "recipient_id": recipient_id},
                                                         {"updated_ms": 1})
        if entry is None:
            raise NotFound("notification not found")
        at = entry["updated_ms"]
        query["$or"] = [{"updated_ms": {"$lt": at}}, {"updated_ms": at, "_id": {"$lte": up_to}}]
    result = await services.db.notifications.update_many(query, {"$set": {"read": True}, "$unset": {"open": ""}})
    return int(result.modified_count)
