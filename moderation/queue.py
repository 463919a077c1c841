"""The review queue: posts waiting for a moderator's decision, oldest first.

A post waits when it is ``pending_review`` (a review word matched; it waits since its creation)
or when it has reports not yet decided (``queued_ms``: the time of the first open report — set
by :mod:`moderation.reports`, cleared by every decision in :mod:`moderation.actions`). The two
sources are read through their own indexes and merged by ``(since_ms, id)``, which is also the
signed cursor, so the order is stable while new items arrive. A post its author deleted while it
waited stays (``evidence``; a held one gets ``queued_ms`` = its creation, keeping its place), shown
with status ``deleted``, until a moderator decides.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bson import ObjectId

from feed.hydrate import hydrate_posts
from moderation.reports import reports_for
from solomo.core.jsonio import rfc3339
from solomo.core.pagination import Position, cut_page, keyset_rows, lookahead

if TYPE_CHECKING:
    from solomo.core.services import Services


def _since(doc: dict[str, Any]) -> int:
    return int(doc["created_ms"]) if doc["status"] == "pending_review" else int(doc["queued_ms"])


def _position(doc: dict[str, Any]) -> Position:
    return Position(float(_since(doc)), doc["_id"])


def flag_public(flag: dict[str, Any]) -> dict[str, Any]:
    return {k: (rfc3339(v) if hasattr(v, "isoformat") else v) for k, v in flag.items()}


async def queue_page(services: Services, viewer_id: ObjectId, *, limit: int,
                     after: Position | None) -> tuple[list[dict[str, Any]], Position | None]:
    """One page of queue items and the position after it (None on the last page)."""
    posts, count = services.db.posts, lookahead(limit)
    pending = await keyset_rows(posts, {"status": "pending_review"}, score_field="created_ms", descending=False,
                                position=after, count=count)
    reported = await keyset_rows(  # an author's deletion leaves the queue, unless it kept the post as evidence
        posts, {"queued_ms": {"$exists": True},
                "$or": [{"status": {"$nin": ["pending_review", "deleted"]}}, {"status": "deleted", "evidence": True}]},
        score_field="queued_ms", descending=False, position=after, count=count)
    docs, nxt = cut_page(sorted(pending + reported, key=_position), limit, _position)
    hydrated = await hydrate_posts(services, docs, viewer_id)
    reports = await reports_for(services, [d["_id"] for d in docs])
    items = [
        {"post": post, "reports": reports[d["_id"]], "report_count": int(d.get("open_reports", 0)),
         "flags": [flag_public(f) for f in d.get("flags", [])],
         "queued_at": rfc3339(datetime.fromtimestamp(_since(d) / 1000, UTC))}
        for d, post in zip(docs, hydrated, strict=True)
    ]
    return items, nxt
