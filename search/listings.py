"""Post search listings: per search key, a Redis timeline of the newest visible posts holding it.

``sp:{s<n>}:<key>`` (:func:`solomo.core.keys.search_listing_key`) has the shape of every timeline
(:mod:`feed.timeline`): post ids scored by ``created_ms`` and a marker. Like a topic listing
(:mod:`feed.topics`) it is built on the first search that reads the key, from MongoDB's
``(search_keys, created_ms, _id)`` index, kept up to date by the fan-out (which writes only keys
that exist, and takes a removed post out), capped at :data:`LISTING_CAP` and expires
:data:`LISTING_TTL_S` after its last read — so only the keys people search for cost memory, each
at most the cap.

Why: intersecting two keys' windows of index entries in MongoDB cost its server ~2 ms a search
(the profile in docs/benchmarks.md); the same windows from Redis sorted sets cost a fraction of
that, and MongoDB answers only what the listings do not hold (:func:`search.posts.search_posts`
pages below a listing's *floor* from MongoDB).

A full listing (``LISTING_CAP`` entries) is complete for the posts newer than its oldest entry:
its floor is that entry's score, and only posts strictly newer count as covered (a post of the same
millisecond may have been trimmed). A listing below the cap is complete: no floor.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

from redis.client import NEVER_DECODE

from feed.posts import VISIBLE
from feed.timeline import MARKER, MIN_SCORE, READY, Timelines
from solomo.core.keys import search_listing_key
from solomo.core.pagination import Position
from solomo.core.services import Services
from solomo.core.ttlrefresh import queue_expire

LISTING_CAP = 1000
"""Newest posts kept per key: a first page of two common words needs a few hundred of each."""
LISTING_TTL_S = 3600
"""A listing nobody searched for this long is dropped (the next search rebuilds it)."""
EMPTY_TTL_S = 120
"""A rebuild that found nothing is kept this long unless read again (random queries leave little)."""


@dataclass(frozen=True)
class Window:
    """One key's entries after a position, newest first (by score, then id: the order to page in).

    Members only: Redis 6.2 formats every score it sends with ``snprintf("%.17g")``, and a window of
    408 entries with scores cost it 104 µs against 13 µs without (docs/benchmarks.md, tenth round).
    The few scores a search needs — its hits', the windows' last entries' — are read afterwards
    (:func:`scores_of`)."""

    key: str
    """The listing's Redis key."""
    members: list[bytes]
    """Post ids (hex), as the reply's bytes: decoding them took half of reading a 400-entry window
    (docs/benchmarks.md, twenty-second round); a search decodes only the few it keeps."""
    full: bool
    """The read returned as many entries as asked: older ones may follow."""
    floor: float
    """Only posts scored strictly above this are covered by the listing (``-inf``: all of them)."""


async def rebuild_listing(services: Services, key: str) -> int:
    """Builds one key's listing from MongoDB; returns the number of posts found."""
    timelines = Timelines(services.redis)
    rkey = search_listing_key(key)
    await timelines.begin_rebuild(rkey, EMPTY_TTL_S)  # before the read: a post fanned out meanwhile lands
    rows = await services.db.posts.find(
        {"search_keys": key, "status": VISIBLE}, {"created_ms": 1}).sort(
        [("created_ms", -1), ("_id", -1)]).hint("search_keys_newest").limit(LISTING_CAP).to_list(None)
    await timelines.finish_rebuild(rkey, [(float(r["created_ms"]), str(r["_id"])) for r in rows], LISTING_CAP,
                                   LISTING_TTL_S if rows else EMPTY_TTL_S)
    return len(rows)


async def read_windows(services: Services, keys: list[str], before: Position | None, size: int) -> list[Window]:
    """Each key's window of about ``size`` entries strictly older than ``before`` (one pipeline;
    the keys not built yet are rebuilt first, then read again)."""
    windows = await _read(services, keys, before, size)
    missing = [key for key, window in zip(keys, windows, strict=True) if window is None]
    if missing:
        await asyncio.gather(*(rebuild_listing(services, key) for key in missing))
        windows = await _read(services, keys, before, size)
    return [w if w is not None else Window(search_listing_key(key), [], False, math.inf)  # lost again: covers nothing
            for key, w in zip(keys, windows, strict=True)]


async def _read(services: Services, keys: list[str], before: Position | None, size: int) -> list[Window | None]:
    rkeys = [search_listing_key(key) for key in keys]
    older = "+inf" if before is None else f"({before.score!r}"
    per_key = 4 if before is None else 5

    def queue(pipe: Any) -> None:
        for rkey in rkeys:
            pipe.zscore(rkey, MARKER)
            pipe.zcard(rkey)
            pipe.zrange(rkey, 1, 1, withscores=True)  # the oldest entry (rank 0 is the marker)
            if before is not None:  # posts of the cursor's millisecond, all of them (a listing
                # holds at most LISTING_CAP): those after the cursor may follow any number before it
                pipe.execute_command("ZREVRANGEBYSCORE", rkey, repr(before.score), repr(before.score), **_UNDECODED)
            pipe.execute_command("ZREVRANGEBYSCORE", rkey, older, MIN_SCORE, "LIMIT", 0, size, **_UNDECODED)
        for rkey in rkeys:  # last: whether each is queued varies (ttlrefresh)
            queue_expire(pipe, rkey, LISTING_TTL_S)  # a read keeps the listing (a missing key stays missing)

    replies = await services.batch.run(queue)
    out: list[Window | None] = []
    for i, rkey in enumerate(rkeys):
        state, card, oldest, *same_ms, rows = replies[per_key * i:per_key * (i + 1)]
        if state is None or int(state) != READY:
            out.append(None)
            continue
        floor = float(oldest[0][1]) if int(card) - 1 >= LISTING_CAP and oldest else -math.inf
        members = _ids(rows)
        if before is not None:  # of the cursor's millisecond, only the posts after it in page order
            cursor = str(before.id).encode()
            members = [m for m in _ids(same_ms[0]) if m < cursor] + members
        out.append(Window(rkey, members, len(rows) == size, floor))
    return out


_UNDECODED = {NEVER_DECODE: True}


def _ids(members: list[Any]) -> list[bytes]:
    """A window's members as bytes (as asked: :data:`_UNDECODED`; text from a client that decodes
    anyway is encoded)."""
    return members if not members or isinstance(members[0], bytes) else [str(m).encode() for m in members]


async def scores_of(services: Services, asks: list[tuple[str, list[bytes]]]) -> list[list[float | None]]:
    """The scores of members of listings, one pipeline: per ``(key, members)``, each member's score
    (None for one no longer there)."""
    def queue(pipe: Any) -> None:
        for key, members in asks:
            pipe.zmscore(key, members)

    return [list(scores) for scores in await services.batch.run(queue)]
