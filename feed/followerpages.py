"""Follower pages: a pushed audience's follower ids kept together, so the fan-out reads an audience
of 10,000 as five documents instead of 10,000 index entries.

Measured before this existed (docs/benchmarks.md, sixteenth round): reading 10,000 followers through
the covered index ``fanout_batches`` cost mongod ~7.5 ms of CPU, on the two cores that the worker and
Redis need for the same post; with the ids already in memory a 10,000-follower fan-out took 14 ms
instead of 22 (median of 30 posts, in-process).

A page is one document of ``follower_pages``: ``{target_type, target_id, n, ids: [follower id as
hex], size}``, pages numbered from 0, at most :data:`PAGE_SIZE` ids each. An audience is *built*
when its target document (user or store) carries :data:`BUILT`; from then on its pages hold exactly
its followers:

* a follow appends to the last page (a new page when that one is full), an unfollow or an erasure
  pulls the id from its page — each in the transaction that inserts or deletes the follow, which
  also writes the target document (``followers_count``). That write makes every change to one
  audience serial: two transactions writing the same document conflict, and one is run again;
* :func:`build` writes every page from ``follows`` in one transaction that also sets :data:`BUILT`
  on the target document, so a follow racing it either committed first (and is in the pages) or
  conflicts with it and runs again (and appends to the pages);
* the fan-out builds an audience after reading it through the index once it holds at least
  :data:`BUILD_AT` followers (smaller ones read cheaply as they are) and at most :data:`BUILD_MAX`;
  an audience that is not built is read through the index, which is always right.

Pages emptied by unfollows are kept (the next follow does not refill them): a page's ids stay in
follow order, and a fan-out's checkpoint is the number of a page it has wholly written.
"""

from __future__ import annotations

import collections
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal

from bson import ObjectId

from solomo.core.services import Services
from solomo.core.txn import Txn, run_transaction
from solomo.core.viewcache import LocalViews

TargetType = Literal["user", "store"]

PAGE_SIZE = 2000
"""Ids a page holds at most: small enough that appending rewrites a modest document (~60 kB), large
enough that a 10,000-follower audience is five documents."""
BUILD_AT = 1000
"""Followers from which the fan-out builds an audience's pages."""
BUILD_MAX = 200_000
"""Followers up to which it does: a build is one transaction (~6 MB of ids at this size). A bigger
audience is read through the index (with the default push threshold, 10,000, it is read by pull)."""
BUILT = "follower_pages"
"""The target document's field that says its audience's pages are built (``True``)."""
START = -1
"""The checkpoint before the first page."""
SEEN_SIZE = 4096
"""Audiences a process remembers having seen built (:func:`seen_built`)."""
SEEN_MAX_AGE_S = 600.0


@dataclass(slots=True)
class _Seen:
    born: float


_SEEN_BUILT: LocalViews[tuple[str, ObjectId], _Seen] = LocalViews(SEEN_SIZE, SEEN_MAX_AGE_S)
"""The audiences this process last saw built, by (target type, target id)."""


def seen_built(target_type: TargetType, target_id: ObjectId) -> bool:
    """Whether this process last saw the audience built: only a guess, for which read the fan-out
    starts beside the target document's (:func:`feed.follows.follower_batches`). The document
    decides; a wrong guess costs a dropped read, never a wrong audience."""
    return _SEEN_BUILT.get((target_type, target_id), time.monotonic()) is not None


def note_built(target_type: TargetType, target_id: ObjectId, built: bool) -> None:
    """What the target document (or a build) just said of the audience, for :func:`seen_built`."""
    if built:
        _SEEN_BUILT.put((target_type, target_id), _Seen(time.monotonic()))
    else:
        _SEEN_BUILT.drop((target_type, target_id))


def _collection(target_type: TargetType) -> str:
    return "users" if target_type == "user" else "stores"


def _audience(target_type: TargetType, target_id: ObjectId) -> dict[str, Any]:
    return {"target_type": target_type, "target_id": target_id}


async def audience_of(services: Services, target_type: TargetType, target_id: ObjectId) -> dict[str, Any] | None:
    """The target document's fields a fan-out needs of it: its follower count, whether it is read
    by pull, whether its pages are built."""
    return await services.db[_collection(target_type)].find_one(
        {"_id": target_id}, {"followers_count": 1, "feed_pull": 1, BUILT: 1})


async def added(services: Services, txn: Txn, target_type: TargetType, target_id: ObjectId,
                follower_id: ObjectId, target: dict[str, Any] | None) -> None:
    """In the follow's transaction, after it wrote the ``target`` document (as it was read there):
    the follower appended to the last page of a built audience."""
    if target is None or not target.get(BUILT):
        return
    session = txn.session
    last = await services.db.follower_pages.find_one(_audience(target_type, target_id), {"n": 1, "size": 1},
                                                     sort=[("n", -1)], session=session)
    if last is not None and int(last["size"]) < PAGE_SIZE:
        await services.db.follower_pages.update_one(
            {"_id": last["_id"]}, {"$push": {"ids": str(follower_id)}, "$inc": {"size": 1}}, session=session)
    else:
        await services.db.follower_pages.insert_one(
            {**_audience(target_type, target_id), "n": 0 if last is None else int(last["n"]) + 1,
             "ids": [str(follower_id)], "size": 1}, session=session)


async def removed(services: Services, txn: Txn, target_type: TargetType, target_id: ObjectId,
                  follower_id: ObjectId) -> None:
    """In the transaction that deletes the follow (and writes the target document): the follower
    pulled from its page (nothing to do for an audience that is not built)."""
    hex_id = str(follower_id)
    await services.db.follower_pages.update_many({**_audience(target_type, target_id), "ids": hex_id},
                                                 {"$pull": {"ids": hex_id}, "$inc": {"size": -1}},
                                                 session=txn.session)


async def dropped(services: Services, txn: Txn, target_type: TargetType, target_id: ObjectId) -> None:
    """In the transaction that deletes the target's follows as a target (an erasure): its pages go,
    and it is no longer built (that write also orders this after a build racing it)."""
    await services.db[_collection(target_type)].update_one({"_id": target_id}, {"$unset": {BUILT: ""}},
                                                           session=txn.session)
    await services.db.follower_pages.delete_many(_audience(target_type, target_id), session=txn.session)


async def build(services: Services, target_type: TargetType, target_id: ObjectId) -> bool:
    """Writes the audience's pages from ``follows`` and marks it built, in one transaction; False
    when it was built already (or the target is gone)."""

    async def body(txn: Txn) -> bool:
        session = txn.session
        marked = await services.db[_collection(target_type)].update_one(
            {"_id": target_id, BUILT: {"$ne": True}}, {"$set": {BUILT: True}}, session=session)
        if marked.matched_count != 1:
            return False
        await services.db.follower_pages.delete_many(_audience(target_type, target_id), session=session)
        cursor = await services.db.follows.aggregate([
            {"$match": _audience(target_type, target_id)}, {"$sort": {"_id": 1}},
            {"$project": {"_id": 0, "f": {"$toString": "$follower_id"}}},
        ], hint="fanout_batches", session=session)
        ids = [d["f"] async for d in cursor]
        chunks = [ids[start:start + PAGE_SIZE] for start in range(0, max(len(ids), 1), PAGE_SIZE)]
        pages = [{**_audience(target_type, target_id), "n": n, "ids": chunk, "size": len(chunk)}
                 for n, chunk in enumerate(chunks)]
        await services.db.follower_pages.insert_many(pages, session=session)
        return True

    built = await run_transaction(services, body)
    note_built(target_type, target_id, True)  # by this call or an earlier one (a gone target: a harmless guess)
    return built


async def batches(services: Services, target_type: TargetType, target_id: ObjectId, batch: int,
                  after: int = START) -> AsyncGenerator[tuple[int, list[str]], None]:
    """``(checkpoint, follower ids as hex)`` batches of ``batch`` ids (the last one may be short) of a
    built audience from its pages after page ``after``; each batch's checkpoint is the last page all
    of whose ids have been yielded by then (``after`` while none has). Yields nothing when the
    audience has no pages (not built).

    Each reply of the cursor holds the pages of two batches: the fan-out reads one batch ahead, so
    its second batch is at hand as soon as its first (a reply of three pages had the second 5,000
    followers of a post wait ~5 ms for a ``getMore`` while Redis took the first). For the same
    reason there is no short first batch here, unlike the index's (``follows.follower_batches``):
    it started no write sooner and added a round of script calls."""
    pending: list[str] = []
    unyielded: collections.deque[list[int]] = collections.deque()  # [page, its ids still pending]
    checkpoint = after
    cursor = services.db.follower_pages.find({**_audience(target_type, target_id), "n": {"$gt": after}},
                                             {"_id": 0, "n": 1, "ids": 1}, sort=[("n", 1)],
                                             batch_size=-(-2 * batch // PAGE_SIZE) + 1)
    try:
        async for page in cursor:
            pending += page["ids"]
            unyielded.append([int(page["n"]), len(page["ids"])])
            while len(pending) >= batch:
                out, pending = pending[:batch], pending[batch:]
                checkpoint = _consume(unyielded, batch, checkpoint)
                yield checkpoint, out
        if pending:
            yield _consume(unyielded, len(pending), checkpoint), pending
    finally:  # a fan-out that stops early (its post's status changed) leaves no cursor on the server
        await cursor.close()


def _consume(unyielded: collections.deque[list[int]], count: int, checkpoint: int) -> int:
    """Marks ``count`` pending ids yielded, front first; the last page now wholly yielded (or
    ``checkpoint``, the one before)."""
    while unyielded and unyielded[0][1] <= count:
        count -= unyielded[0][1]
        checkpoint = unyielded.popleft()[0]
    if unyielded:
        unyielded[0][1] -= count
    return checkpoint
