"""The review queue: posts waiting for a moderator's decision, oldest first.

A post waits when it is ``pending_review`` (a review word matched; it waits since its creation)
or when it has reports not yet decided (``queued_ms``: the time of the first open report — set
by :mod:`moderation.reports`, cleared by every decision in :mod:`moderation.actions`). The two
sources are read through their own indexes and merged by ``(since_ms, id)``, which is also the
signed cursor, so the order is stable while new items arrive.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from feed.hydrate import hydrate_posts
from moderation.reports import reports_for
from solomo.core.jsonio import rfc3339
from solomo.core.pagination import page


def _since(doc: dict[str, Any]) -> int:
    return int(doc["created_ms"]) if doc["status"] == "pending_review" else int(doc["queued_ms"])


def _after(field: str, pos: tuple[float, str] | None) -> dict[str, Any]:
    if pos is None:
        return {}
    ms, last = pos
    last_id = ObjectId(last) if ObjectId.is_valid(last) else ObjectId("0" * 24)
    return {"$or": [{field: {"$gt": ms}}, {field: ms, "_id": {"$gt": last_id}}]}


def flag_public(flag: dict[str, Any]) -> dict[str, Any]:
    return {k: (rfc3339(v) if hasattr(v, "isoformat") else v) for k, v in flag.items()}


async def queue_page(services: Any, viewer_id: ObjectId, *, limit: int, cursor: str | None) -> dict[str, Any]:
    pos = services.cursors.decode_position(cursor)
    posts = services.db.posts
    pending = await posts.find({"status": "pending_review", **_after("created_ms", pos)}).sort(
        [("status", 1), ("created_ms", 1), ("_id", 1)]).limit(limit + 1).to_list(None)
    reported = await posts.find(
        {"queued_ms": {"$exists": True}, "status": {"$nin": ["pending_review", "deleted"]}, **_after("queued_ms", pos)}
    ).sort([("queued_ms", 1), ("_id", 1)]).limit(limit + 1).to_list(None)
    merged = sorted(pending + reported, key=lambda d: (_since(d), d["_id"]))
    more = len(merged) > limit
    docs = merged[:limit]
    hydrated = await hydrate_posts(services, docs, viewer_id)
    reports = await reports_for(services, [d["_id"] for d in docs])
    items = [
        {"post": post, "reports": reports[d["_id"]], "report_count": int(d.get("open_reports", 0)),
         "flags": [flag_public(f) for f in d.get("flags", [])],
         "queued_at": rfc3339(datetime.fromtimestamp(_since(d) / 1000, UTC))}
        for d, post in zip(docs, hydrated, strict=True)
    ]
    nxt = services.cursors.encode_position(_since(docs[-1]), str(docs[-1]["_id"])) if more else None
    return page(items, nxt)
