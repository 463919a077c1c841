"""The follow graph: users follow users and stores.

A follow is one document in ``follows``; the counters (``users.followers_count`` /
``following_count``, ``stores.followers_count``) move in the same transaction as the document
is inserted or deleted, and only when it really was, so concurrent follow/unfollow never drifts.
``following_count`` counts followed users (the ``/following`` list is a page of User),
``stores_following_count`` followed stores (shown nowhere): each is bounded by
:data:`MAX_FOLLOWING` (409 ``too_many_follows``), checked in the same transaction, so one account's
follows — which every home read of a full timeline goes through (:mod:`feed.home`) — stay bounded.

The fan-out reads a target's followers from its follower pages once they are built
(:mod:`feed.followerpages`: kept in the same transactions as the follows), else in ``_id`` order
through the covered index ``(target_type, target_id, _id, follower_id)``: large batches, no
document fetches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from bson import ObjectId
from pymongo.errors import DuplicateKeyError, PyMongoError

from checkins import storeviews
from feed import blocks, followerpages, home
from feed.followerpages import TargetType as TargetType  # re-exported: what a follow targets
from notifications import outbox
from offers.arrival import forget_judged
from solomo.core.errors import Conflict, Invalid, NotFound
from solomo.core.pagination import Position, keyset_page
from solomo.core.services import Services
from solomo.core.sidetasks import reap
from solomo.core.timeutil import ms_of
from solomo.core.txn import Txn, run_transaction

MAX_FOLLOWING = 5_000
"""Users, and separately stores, one account may follow (Weibo's bound for people is lower)."""

Checkpoint = ObjectId | int
"""Where a fan-out's read of an audience stopped: a follow ``_id`` (the index) or a page number."""

log = logging.getLogger("solomo.feed.follows")
T = TypeVar("T")


async def _target(services: Services, target_type: TargetType, target_id: ObjectId) -> dict[str, Any]:
    if target_type == "user":
        doc = await services.db.users.find_one({"_id": target_id, "status": {"$ne": "deleted"}},
                                               {"username": 1, "display_name": 1})
    else:
        doc = await services.db.stores.find_one({"_id": target_id}, {"owner_id": 1})
    if doc is None:
        raise NotFound(f"{target_type} not found")
    return doc


def _counter_updates(target_type: TargetType) -> tuple[str, str]:
    """(collection of the target, the follower's counter of such follows)."""
    return ("users", "following_count") if target_type == "user" else ("stores", "stores_following_count")


class _Exists(Exception):
    """At the bound, the follow asked for is one that exists: a repeat, which is fine."""


async def follow(services: Services, follower_id: ObjectId, target_type: TargetType, target_id: ObjectId) -> bool:
    """Idempotent; returns True when a new follow was recorded. 403 ``blocked`` between users one
    of whom blocks the other (:mod:`feed.blocking`)."""
    if target_type == "user" and follower_id == target_id:
        raise Invalid("you cannot follow yourself", code="cannot_follow_self")
    await _target(services, target_type, target_id)
    if target_type == "user":
        await blocks.ensure_not_blocked(services, follower_id, target_id)
    now = datetime.now(UTC)
    # a user hears of a new follower (a store does not): owed on the follow document itself
    told = [outbox.Notice("follow", target_id, follower_id)] if target_type == "user" else []
    doc = {"_id": ObjectId(), "follower_id": follower_id, "target_type": target_type, "target_id": target_id,
           "created_at": now, "created_ms": ms_of(now), **outbox.pending(told, now)}
    collection, follower_counter = _counter_updates(target_type)

    async def body(txn: Txn) -> None:
        session = txn.session
        if target_type == "user":
            # again inside the transaction: a block committed meanwhile wrote one of the user documents
            # this transaction writes, so a conflict re-runs this body, which then sees it
            await blocks.ensure_not_blocked(services, follower_id, target_id, session=session)
        # the bound first (a missing counter is below it); a repeated follow's insert then aborts it all
        room = await services.db.users.update_one(
            {"_id": follower_id, follower_counter: {"$not": {"$gte": MAX_FOLLOWING}}},
            {"$inc": {follower_counter: 1}}, session=session)
        if room.matched_count != 1:
            if await services.db.follows.find_one({"follower_id": follower_id, "target_type": target_type,
                                                   "target_id": target_id}, {"_id": 1}, session=session):
                raise _Exists
            noun = "users" if target_type == "user" else "stores"
            raise Conflict(f"you follow the most {noun} allowed ({MAX_FOLLOWING}); unfollow one first",
                           code="too_many_follows")
        await services.db.follows.insert_one(doc, session=session)
        target = await services.db[collection].find_one_and_update(
            {"_id": target_id}, {"$inc": {"followers_count": 1}}, {followerpages.BUILT: 1}, session=session)
        await followerpages.added(services, txn, target_type, target_id, follower_id, target)

    try:
        await run_transaction(services, body)
        created = True
    except (DuplicateKeyError, _Exists):
        created = False
    if target_type == "store":  # its followers_count moved (a retry repairs an invalidation that failed)
        await storeviews.invalidate(services, [target_id])
    # a retry of a follow whose backfill failed (Redis down after the commit) repairs the feed
    await home.backfill_followed(services, follower_id, target_type, target_id)
    if not created:
        return False
    if target_type == "store":  # the store's live offers may now be for this user: judge them again
        await forget_judged(services, follower_id)
    # follow, unfollow, follow again: still one notification; a repeat (not created) has nothing to
    # do: the first follow's notice is recorded, or the sweep records it
    await outbox.record_soon(services, "follows", doc)
    return True


async def unfollow(services: Services, follower_id: ObjectId, target_type: TargetType, target_id: ObjectId) -> bool:
    """Idempotent; returns True when a follow was removed. The target's posts leave the reader's feed."""
    if target_type == "user" and follower_id == target_id:
        raise Invalid("you cannot follow yourself", code="cannot_follow_self")
    await _target(services, target_type, target_id)
    collection, follower_counter = _counter_updates(target_type)

    async def body(txn: Txn) -> bool:
        session = txn.session
        result = await services.db.follows.delete_one(
            {"follower_id": follower_id, "target_type": target_type, "target_id": target_id}, session=session)
        if result.deleted_count != 1:
            return False
        await services.db[collection].update_one({"_id": target_id}, {"$inc": {"followers_count": -1}},
                                                 session=session)
        await followerpages.removed(services, txn, target_type, target_id, follower_id)
        await services.db.users.update_one({"_id": follower_id}, {"$inc": {follower_counter: -1}}, session=session)
        return True

    removed = await run_transaction(services, body)
    if target_type == "store":  # its followers_count moved (also on a retry: it repairs a failed invalidation)
        await storeviews.invalidate(services, [target_id])
    # also when nothing was removed: a retried unfollow still cleans the feed
    await home.remove_unfollowed(services, follower_id, target_type, target_id)
    return removed


async def follower_batches(services: Services, target_type: TargetType, target_id: ObjectId, batch: int,
                           after: Checkpoint | None = None, first: int | None = None,
                           target: Awaitable[dict[str, Any] | None] | None = None,
                           ) -> AsyncIterator[tuple[Checkpoint, list[str]]]:
    """``(checkpoint, follower ids as hex strings)`` batches, resumable from a checkpoint ``after``;
    with ``first``, the first batch read through the index is that many (the fan-out's writes start
    after a short read; a built audience's pages come two batches a reply, so they have no short one).

    A built audience is read from its pages (:mod:`feed.followerpages`; a checkpoint is a page
    number). Any other is read in follow ``_id`` order through the covered index (a checkpoint is
    a follow ``_id``), and built afterwards when it held :data:`~feed.followerpages.BUILD_AT` to
    :data:`~feed.followerpages.BUILD_MAX` followers. A follow ``_id`` checkpoint of an audience
    built since goes on through the index, which is always right. Which one it is, the target
    document says (``target``: its read, :func:`~feed.followerpages.audience_of`, when the caller
    has one under way; read here otherwise); meanwhile the first batch of the likelier read is asked
    for: the pages when this process last saw the audience built
    (:func:`~feed.followerpages.seen_built`), else the index's.
    """
    if isinstance(after, ObjectId):  # a checkpoint of the index: the read goes on there
        async for last, ids in _indexed_batches(services, target_type, target_id, batch, after, first):
            yield last, ids
        return
    pages = followerpages.batches(services, target_type, target_id, batch,
                                  followerpages.START if after is None else after)
    if after is not None:  # a page checkpoint: the pages are the audience
        async with contextlib.aclosing(pages):
            async for page_batch in pages:
                yield page_batch
        return
    indexed = _indexed_batches(services, target_type, target_id, batch, None, first)
    guess = followerpages.seen_built(target_type, target_id)
    seen = 0
    async with contextlib.aclosing(pages), contextlib.aclosing(indexed):
        # the target's read and, beside it, the first batch of the read it most likely asks for:
        # the pages of an audience this process last saw built, else the index's (most audiences are
        # not built, and asking the pages first cost a typical post's fan-out a query: 20 followers,
        # 2.07 → 2.44 ms). Which read is used, the target document says; the other is dropped.
        doc = asyncio.ensure_future(target if target is not None
                                    else followerpages.audience_of(services, target_type, target_id))
        guessed: AsyncIterator[tuple[Checkpoint, list[str]]] = pages if guess else indexed
        ahead = asyncio.ensure_future(anext(guessed))
        ahead_used = False
        first_read: tuple[Checkpoint, list[str]] | None = None
        try:
            built = bool((await doc or {}).get(followerpages.BUILT))
            followerpages.note_built(target_type, target_id, built)
            if built == guess:
                first_read = await _next_or_none(ahead)
                ahead_used = True
        finally:
            if not ahead_used:  # the other read (or a failure): it is dropped
                await reap(ahead, cancel=True)
            if target is None:  # its own read (the caller's is the caller's to await)
                await reap(doc, cancel=True)
        if not ahead_used:
            other: AsyncIterator[tuple[Checkpoint, list[str]]] = pages if built else indexed
            first_read = await anext(other, None)
        if first_read is None:
            return
        if built:
            yield first_read
            async for page_batch in pages:
                yield page_batch
            return
        seen += len(first_read[1])
        yield first_read
        async for last, ids in indexed:
            seen += len(ids)
            yield last, ids
    if followerpages.BUILD_AT <= seen <= followerpages.BUILD_MAX:
        try:
            await followerpages.build(services, target_type, target_id)
        except PyMongoError:  # the next post builds it; this one's followers are all read
            log.warning("follower pages of %s %s not built", target_type, target_id, exc_info=True)


async def _next_or_none(item: asyncio.Future[T]) -> T | None:
    """A batch asked for with ``anext``, or None when there was none."""
    try:
        return await item
    except StopAsyncIteration:
        return None


async def _indexed_batches(services: Services, target_type: TargetType, target_id: ObjectId, batch: int,
                           after: ObjectId | None, first: int | None,
                           ) -> AsyncGenerator[tuple[ObjectId, list[str]], None]:
    """The batches read through the covered index ``fanout_batches``: each batch is one aggregation
    whose answer is ONE document, the batch's follower ids as strings in an array and its last
    follow ``_id``. Decoding 5,000 follow documents cost the worker 3.7 ms a batch (a dict and two
    ``ObjectId``s each: half of the fan-out's CPU in the profile, docs/benchmarks.md); one array of
    strings decodes in 0.12 ms, and the feed keys are built from the strings anyway."""
    size = first if first is not None and 0 < first < batch else batch
    while True:
        match: dict[str, Any] = {"target_type": target_type, "target_id": target_id}
        if after is not None:
            match["_id"] = {"$gt": after}
        cursor = await services.db.follows.aggregate([
            {"$match": match}, {"$sort": {"_id": 1}}, {"$limit": size},
            {"$group": {"_id": None, "ids": {"$push": {"$toString": "$follower_id"}}, "last": {"$last": "$_id"}}},
        ], hint="fanout_batches")
        rows = await cursor.to_list(None)
        if not rows:
            return
        ids: list[str] = rows[0]["ids"]
        after = rows[0]["last"]
        yield after, ids
        if len(ids) < size:
            return
        size = batch


async def page_users(services: Services, user_id: ObjectId, direction: Literal["followers", "following"],
                     before: Position | None, limit: int) -> tuple[list[dict[str, Any]], Position | None]:
    """A page of the users following ``user_id`` (or followed by it), newest follow first.

    Returns (user documents, position of the last follow on the page or None when no more).
    """
    await _target(services, "user", user_id)
    if direction == "followers":
        query: dict[str, Any] = {"target_type": "user", "target_id": user_id}
        other = "follower_id"
    else:
        query = {"follower_id": user_id, "target_type": "user"}
        other = "target_id"
    rows, nxt = await keyset_page(services.db.follows, query, score_field="created_ms", descending=True,
                                  position=before, limit=limit, projection={other: 1, "created_ms": 1})
    users = {u["_id"]: u async for u in services.db.users.find(
        {"_id": {"$in": [r[other] for r in rows]}, "status": {"$ne": "deleted"}})}
    return [users[r[other]] for r in rows if r[other] in users], nxt
