"""The review queue: posts waiting for a moderator's decision, oldest first.

A post waits when it is ``pending_review`` (a review word matched; it waits since its creation)
or when it has reports not yet decided (``queued_ms``: the time of the first open report — set
by :mod:`moderation.reports`, cleared by every decision in :mod:`moderation.actions`). The two
sources are read through their own indexes and merged by ``(since_ms, id)``, which is also the
signed cursor, so the order is stable while new items arrive. A post its author deleted while it
waited stays (``evidence``; a held one gets ``queued_ms`` = its creation, keeping its place), shown
with status ``deleted``, until a moderator decides.

Offers held for review (``pending_review``: a review word in the title or description) wait in
the same queue, since their creation, as ``{"offer": Offer, "flags", "queued_at"}`` items; they
are merged into the same ``(since_ms, id)`` order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bson import ObjectId

from feed.hydrate import hydrate_posts
from moderation.reports import reports_for
from offers.offers import hydrate_offers
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
    offers = await keyset_rows(services.db.offers, {"status": "pending_review"}, score_field="created_ms",
                               descending=False, position=after, count=count)
    offer_ids = {d["_id"] for d in offers}
    docs, nxt = cut_page(sorted(pending + reported + offers, key=_position), limit, _position)
    post_docs = [d for d in docs if d["_id"] not in offer_ids]
    shaped_posts = dict(zip([d["_id"] for d in post_docs], await hydrate_posts(services, post_docs, viewer_id),
                            strict=True))
    shaped_offers = {o["id"]: o for o in await hydrate_offers(services, [d for d in docs if d["_id"] in offer_ids])}
    reports = await reports_for(services, [d["_id"] for d in post_docs])
    items: list[dict[str, Any]] = []
    for d in docs:
        common = {"flags": [flag_public(f) for f in d.get("flags", [])],
                  "queued_at": rfc3339(datetime.fromtimestamp(_since(d) / 1000, UTC))}
        if d["_id"] in offer_ids:
            if str(d["_id"]) in shaped_offers:  # its store still exists
                items.append({"offer": shaped_offers[str(d["_id"])], **common})
        else:
            items.append({"post": shaped_posts[d["_id"]], "reports": reports[d["_id"]],
                          "report_count": int(d.get("open_reports", 0)), **common})
    return items, nxt
