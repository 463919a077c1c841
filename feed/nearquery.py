"""MongoDB's newest visible posts in an area, read by growing time windows.

The 2dsphere index ``(location, created_ms)`` finds the posts of an area but cannot hand them out
newest first: a plain ``sort`` + ``limit`` over a dense circle examines every post ever made there.
Here each query is bounded by a time window below the cursor as well, ``[hi - w, hi)``, so the index
scan covers only that slice of the area; the window grows (x :data:`WINDOW_GROWTH`) until ``count``
posts are found, and the last query is unbounded, so a sparse area still reaches its oldest post
in at most ``len(WINDOWS_MS) + 1`` queries. Used past the trimmed end of a capped cell, for a cold
area whose cells are being rebuilt, and by the cell rebuilds themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bson import ObjectId

from feed.posts import VISIBLE
from solomo.core.pagination import Position

HOUR_MS = 3_600_000
WINDOW_GROWTH = 8
WINDOWS_MS: tuple[int, ...] = tuple(HOUR_MS * WINDOW_GROWTH ** i for i in range(5))
"""1 h, 8 h, 64 h, 21 days, 171 days; then one query without a lower bound."""
NEWEST: list[tuple[str, int]] = [("created_ms", -1), ("_id", -1)]


def _below(before: Position | None, lo: float | None) -> dict[str, Any]:
    """``(created_ms, _id) < before`` and ``created_ms >= lo`` (either may be absent), written so that
    ``created_ms`` gets a plain range (the index bounds) and the tie on ``_id`` is a residual test."""
    span: dict[str, Any] = {}
    if lo is not None:
        span["$gte"] = lo
    if before is None:
        return {"created_ms": span} if span else {}
    if before.id == BEFORE_ANY_ID:
        return {"created_ms": {**span, "$lt": before.score}}
    return {"created_ms": {**span, "$lte": before.score},
            "$or": [{"created_ms": {"$lt": before.score}}, {"_id": {"$lt": before.id}}]}


async def newest_in_area(db: Any, area: dict[str, Any], before: Position | None, count: int, *,
                         accept: Callable[[dict[str, Any]], bool], now_ms: int,
                         projection: dict[str, Any] | None = None, match: dict[str, Any] | None = None,
                         hint: str | None = None) -> list[dict[str, Any]]:
    """Up to ``count`` visible posts whose ``location`` matches the geo condition ``area`` (and the
    conditions of ``match``) and that ``accept`` keeps, strictly older than ``before``, newest first;
    ``hint`` names the index to use (one whose bounds cover ``match`` too)."""
    out: list[dict[str, Any]] = []
    hi = before
    top = float(before.score) if before is not None else float(now_ms + HOUR_MS)  # a clock-skew margin
    for window in (*WINDOWS_MS, None):
        lo = None if window is None else top - window
        while len(out) < count:
            need = count - len(out)
            query = {**(match or {}), "location": area, "status": VISIBLE, **_below(hi, lo)}
            cursor = db.posts.find(query, projection).sort(NEWEST).limit(need)
            docs = await (cursor.hint(hint) if hint else cursor).to_list(None)
            out.extend(d for d in docs if accept(d))
            if len(docs) < need:
                break  # this window is exhausted
            hi = Position(float(docs[-1]["created_ms"]), docs[-1]["_id"])
        if len(out) >= count or lo is None:
            break
        hi = Position(lo, BEFORE_ANY_ID)  # the next window starts below this one
    return out


BEFORE_ANY_ID = ObjectId("0" * 24)
"""With a position's score, "strictly below this score" (no id sorts below the zero id)."""
