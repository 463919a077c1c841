"""Merging time-ordered sources into one page, with the contract's ``(created_ms, id)`` cursor.

A *source* yields candidates strictly older than a position, newest first: a Redis timeline, a
MongoDB query, or a Redis timeline that continues in MongoDB past its trimmed end. The pager
merges several sources, drops duplicates, loads the documents it does not have in one query per
round, keeps those the reader may see, and stops at ``limit + 1`` (to know whether a next page
exists). The cursor is the position of the last item returned, so it stays valid while new
posts arrive at the head.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from bson import ObjectId

from feed.blocks import Screen
from feed.timeline import Timelines
from solomo.core.ids import maybe_id
from solomo.core.pagination import Position, cut_page, keyset_rows, lookahead

Candidate = tuple[float, ObjectId, dict[str, Any] | None]
Loader = Callable[[list[ObjectId]], Awaitable[dict[ObjectId, dict[str, Any]]]]
"""Loads posts by id (missing ones left out): MongoDB by default, the post cache for feeds."""
MAX_ROUNDS = 12
"""A page scans at most this many rounds of candidates (a feed full of deleted posts cannot make
one request scan forever); a short page then still carries a cursor to continue from."""
MAX_FETCH = 200
"""The most candidates one round reads per source (rounds after skips double up to it)."""


class Source(Protocol):
    async def fetch(self, before: Position | None, count: int) -> list[Candidate]: ...


def post_position(doc: dict[str, Any]) -> Position:
    return Position(float(doc["created_ms"]), doc["_id"])


class MongoSource:
    """Posts matching ``query``, newest first (an index on ``(…, created_ms, _id)`` serves it)."""

    def __init__(self, db: Any, query: dict[str, Any], collection: str = "posts") -> None:
        self.db = db
        self.query = query
        self.collection = collection

    async def fetch(self, before: Position | None, count: int) -> list[Candidate]:
        docs = await keyset_rows(self.db[self.collection], self.query, score_field="created_ms", descending=True,
                                 position=before, count=count)
        return [(float(d["created_ms"]), d["_id"], d) for d in docs]


class RedisSource:
    """A READY timeline; when it was trimmed (``fallback`` given), older posts come from MongoDB."""

    def __init__(self, timelines: Timelines, key: str, fallback: Source | None = None,
                 first: tuple[Position | None, int, list[Any]] | None = None) -> None:
        self.timelines = timelines
        self.key = key
        self.fallback = fallback
        self.first = first  # rows already read for (before, count) in the caller's pipeline

    async def fetch(self, before: Position | None, count: int) -> list[Candidate]:
        rows = None
        if self.first is not None and self.first[:2] == (before, count):
            rows, self.first = self.first[2], None
        entries = await self.timelines.read(self.key, before, count, rows)
        # members are post ids written by the fan-out; anything else is skipped, never loaded
        out: list[Candidate] = [(s, oid, None) for s, m in entries if (oid := maybe_id(m)) is not None]
        if len(out) < count and self.fallback is not None:
            pos = Position(out[-1][0], out[-1][1]) if out else before
            out.extend(await self.fallback.fetch(pos, count - len(out)))
        return out


async def collect(
    db: Any,
    sources: list[Source],
    before: Position | None,
    limit: int,
    accept: Callable[[dict[str, Any]], bool],
    load: Loader | None = None,
    screen: Screen | None = None,
) -> tuple[list[dict[str, Any]], Position | None]:
    """(documents for the page, position for next_cursor or None). ``load`` loads the candidates
    that came without their document (default: one MongoDB query); it may return post views
    (:mod:`feed.postcache`), which carry every field ``accept`` and the cursor need. ``screen``: the
    viewer's blocked and muted authors, left out while collecting (so the page stays full).

    A round that had to skip candidates reads twice as many next time (up to :data:`MAX_FETCH`), so
    a timeline where most entries are hidden still fills its page in a few round trips."""
    results: list[dict[str, Any]] = []
    pos = before
    want = lookahead(limit)
    fetch = want
    for _ in range(MAX_ROUNDS):
        if len(sources) == 1:  # most pages: awaited in place, no task for it, and nothing to merge:
            # a source answers newest first, each post once (a timeline slice, then its fallback
            # after the slice's end; or one sorted query)
            top = (await sources[0].fetch(pos, fetch))[:fetch]
        else:
            batches = await asyncio.gather(*(s.fetch(pos, fetch) for s in sources))
            merged: dict[ObjectId, Candidate] = {}
            for batch in batches:
                for cand in batch:
                    have = merged.get(cand[1])
                    if have is None or (have[2] is None and cand[2] is not None):
                        merged[cand[1]] = cand
            top = sorted(merged.values(), key=lambda c: (c[0], c[1]), reverse=True)[:fetch]
        missing = [c[1] for c in top if c[2] is None]
        loaded: dict[ObjectId, dict[str, Any]] = {}
        if missing:
            loaded = await load(missing) if load is not None else {
                d["_id"]: d async for d in db.posts.find({"_id": {"$in": missing}})}
        if screen is not None:
            await screen.ready()  # no round trip when the loader's pipeline read it already
        for _score, pid, doc in top:
            doc = doc or loaded.get(pid)
            if doc is not None and accept(doc) and not (screen is not None and screen.hides(doc)):
                results.append(doc)
                if len(results) == want:
                    break
        if len(results) == want or len(top) < fetch:
            break
        pos = Position(top[-1][0], top[-1][1])
        fetch = min(fetch * 2, max(want, MAX_FETCH))
    else:
        # rounds exhausted with a short page: hand the client a cursor to carry on from the scan's end
        return results, pos
    return cut_page(results, limit, post_position)
