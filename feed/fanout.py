"""Fan-out on write: a post into its readers' home feeds, its geo cells and its topic listings.

``fanout_post`` makes every Redis structure agree with the post's status and is idempotent:

* published — pushed to the author's own feed, to every active follower of the author (and, for a
  store owner's post about their store, of the store), to its geo cells, topics and the search
  listings of its words that exist (:mod:`search.listings`); trends count it
  (globally, and in its areas: :mod:`feed.localtrends`);
* pending_review / hidden — kept in the author's own feed only, gone from everyone else's;
* removed / deleted — gone everywhere.

Followers are read in large batches through a covered index and written with one Lua call per
reader bucket of each batch, pipelined (ZADD + trim into the keys that exist, plus which of those
readers are online; see :mod:`solomo.core.keys` for the buckets). After each
batch the position is checkpointed in the post (``fanout_progress``), so a worker killed mid-way
resumes where it stopped; re-writing the batch in flight is harmless (a sorted set holds a
member once). ``fanout: "done"`` is set only at the end, and only if the post's ``status_version``
did not change meanwhile — else the run reads the post again and applies its new status, so a late
or redelivered retract can never leave a restored post out of the feeds; the sweeper re-sends
every post still pending (the outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from feed import erasedposts, followerpages, localcells, localtrends, postcache, trends
from feed.follows import Checkpoint, TargetType, follower_batches
from feed.home import mark_pull
from feed.posts import VISIBLE, repost_targets
from feed.timeline import Timelines
from notifications import recorder
from search import topics as search_topics
from search.listings import LISTING_CAP
from solomo.core import tasknames
from solomo.core.eventtypes import FeedNew, PostDeleted, publish_each_event, publish_event
from solomo.core.keys import feed_new_sent, home_key, search_listing_key, topic_key
from solomo.core.metrics import FANOUT_ENTRIES, FANOUT_LAG
from solomo.core.mongo import REDONE, Collection
from solomo.core.replicafence import ReplicaFence
from solomo.core.services import Services
from solomo.core.sidetasks import finished, reap
from solomo.core.timeutil import now_ms

log = logging.getLogger("solomo.feed.fanout")

CHECKPOINT_EVERY = 4
"""Batches between progress checkpoints: a crash redoes at most this many batches (harmlessly)."""
FIRST_SHARE = 5
"""The first batch of a push read through the index is ``fanout_chunk // FIRST_SHARE`` followers:
its writes start after a short read, and the full batches are read while Redis writes it. A built
audience's pages come in full batches (:func:`feed.followerpages.batches` says why)."""
RETRACTING = "fanout_retracting"
"""The post's field holding the retraction runs whose removals may still land (:func:`_retracting`)."""
RETRACTING_KEPT = 8
"""Marks a post keeps at most, the newest: each failed retraction (a Redis outage, the sweep
re-sending the post every few minutes) leaves one, and the post's document must not grow with
them. A dropped mark matters only when eight newer ones came and went while its run still ran."""
FEED_NEW_ONCE_TTL_S = 86400
"""How long a post remembers whom it announced itself to (a fan-out finishes well within)."""
TOPIC_CAP = 1000
SYNC_ROUNDS = 3
"""Rounds of one task before it leaves a post whose status keeps changing to the sweep."""


async def _announce(services: Services, post_id: str, online: list[str]) -> None:
    """``feed.new`` to the online readers of one batch, once per (post, reader): a fan-out resumed
    at its checkpoint rewrites (harmlessly) batches the killed run had done, and must not announce
    them again. Best effort, like every event: the feed itself is already written."""
    event = FeedNew(post_id=post_id)
    try:
        await publish_each_event(services, [(uid, event) for uid in online],
                                 once_key=lambda bucket: feed_new_sent(post_id, bucket), once_ttl_s=FEED_NEW_ONCE_TTL_S)
    except Exception as exc:
        log.warning("could not announce post %s to %d readers: %s", post_id, len(online), exc)


def _audiences(post: dict[str, Any]) -> list[tuple[TargetType, ObjectId]]:
    out: list[tuple[TargetType, ObjectId]] = [("user", post["author_id"])]
    if post.get("store_owner_post") and post.get("store_id"):
        out.append(("store", post["store_id"]))
    return out


async def _pull_mode(services: Services, target_type: TargetType, target_id: ObjectId,
                     target: asyncio.Future[dict[str, Any] | None]) -> bool:
    """Too many followers to push to: readers merge this target's posts at read time. ``target``:
    the target document's read (:func:`feed.followerpages.audience_of`)."""
    doc = await target
    if doc is None:
        return False
    if doc.get("feed_pull") or int(doc.get("followers_count", 0)) > services.settings.fanout_max_followers:
        await mark_pull(services, target_type, target_id)
        return True
    return False


class _ReadAhead:
    """Follower batches read one ahead of their consumer: the next batch is read from MongoDB while
    the current one is written to Redis. The first read starts when this is made, not when the
    first batch is asked for, so it runs beside the pull check (:func:`_reach_audiences`). Close it
    (``contextlib.aclosing``): a read nobody wants any more is cancelled and the cursor closed."""

    def __init__(self, batches: AsyncIterator[tuple[Checkpoint, list[str]]]) -> None:
        self._batches = batches
        self._pending: asyncio.Future[tuple[Checkpoint, list[str]]] | None = asyncio.ensure_future(anext(batches))

    def __aiter__(self) -> _ReadAhead:
        return self

    async def __anext__(self) -> tuple[Checkpoint, list[str]]:
        if self._pending is None:
            raise StopAsyncIteration
        try:
            item = await self._pending
        except StopAsyncIteration:
            self._pending = None
            raise
        self._pending = asyncio.ensure_future(anext(self._batches))
        return item

    async def aclose(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:  # a read nobody wants any more is not logged as lost
            await reap(pending, cancel=True)
        aclose = getattr(self._batches, "aclose", None)
        if aclose is not None:
            await aclose()


async def fanout_post(services: Services, post_id: ObjectId) -> str:
    """Brings feeds in line with the post's *current* status; returns what it did (for logs and tests).

    This is the work of every fan-out task (``fanout.post``, ``fanout.retract``, ``fanout.restore``:
    their names say why they were sent, not what they do), so they can run in any order, twice or
    concurrently. Each round reads the post, applies its status, then marks the fan-out done only if
    ``status_version`` (incremented by every status change, in the same write) is still the one it
    read; otherwise a decision landed meanwhile and the round may have undone part of its work (a late
    retract after a restore), so the post is read again and the new status applied — from the start:
    only a task's first round resumes at the post's checkpoint (a crashed run's progress). A later
    round's checkpoint may be another run's, made at the new status before this run's removals
    landed on the feeds it had written (tests/feed/test_fanout_order.py). Nor does a first round
    resume while a retraction's removals may still be landing, or were cut off by a crash
    (:func:`_retracting`): the run that read the post while hidden may be the one redelivered."""
    outcome = "missing"
    for round_no in range(SYNC_ROUNDS):
        # the fence's view of the masters (before this round writes anything) beside the post's read
        starting = ReplicaFence.start_soon(services.redis)
        try:
            post = await services.db.posts.find_one({"_id": post_id})
        except BaseException:
            await reap(starting, cancel=True)
            raise
        if post is None:
            await reap(starting, cancel=True)
            return "missing"
        fence = await starting
        counted = _count_topics_soon(services, post)
        try:
            outcome = await _apply(services, post, fence, counted, resume=round_no == 0 and not post.get(RETRACTING))
        finally:  # never a transaction left running unobserved
            await reap(counted, cancel=False)
        if outcome != "changed":
            counted.result()  # (a failed sync fails the task: nothing is marked done)
            await fence.confirm()  # nothing marked done that a failover could still take back
            if await _finish(services, post):
                if outcome == "published" and post.get("fanout") == "pending":  # a repeated run is not lag
                    FANOUT_LAG.observe(max(0.0, (now_ms() - int(post["created_ms"])) / 1000))
                return outcome
    log.info("post %s kept changing status during its fan-out; left pending for the sweep", post_id)
    return outcome


def _count_topics_soon(services: Services, post: dict[str, Any]) -> asyncio.Future[Any]:
    """The topic counts brought in line with the status read (:func:`search.topics.sync_post`;
    topics are fixed at writing), begun at once: it runs beside the round's reads and writes, and
    no checkpoint of the round is written before it is in (:func:`_push`), nor the done mark.

    The sync is a transaction on the post document, and a worker killed inside it leaves that
    document locked until MongoDB drops the transaction (60 s): the worker-kill drill's likes of
    the post answered 503 when its kill (mid fan-out, after a checkpoint) landed there. Behind the
    first checkpoint, no kill after one can land inside it; after the feeds (where it ran before) it
    added its three round trips to every post with a topic. A round whose status changes meanwhile
    has counted for the status it read: the next round reads the post again and counts for the new
    one. A retraction waits for it before its first removal (:func:`_apply`)."""
    if not post.get("topics"):
        return finished(False)
    return asyncio.ensure_future(search_topics.sync_post(services, post["_id"], post))


async def _apply(services: Services, post: dict[str, Any], fence: ReplicaFence, counted: asyncio.Future[Any],
                 *, resume: bool) -> str:
    """One round: the Redis side of the post's status as read; "changed" when a checkpoint found a
    newer status version (the caller reads the post again). ``resume``: go on from the post's
    checkpoint (else every audience from its start). ``counted``: the round's topic counts
    (:func:`_count_topics_soon`), which a checkpoint waits for."""
    status = post["status"]
    if post.get("status_version") and post.get("fanout") == "pending":
        # a status changed (deletion, removal, hide, restore): the request that changed it dropped
        # the cached views after its commit, but a failure there (Redis, a killed process) would
        # leave the old status shown for the views' TTL, in reposts and photos; this task is
        # retried and re-sent by the sweep until it is done (a run after that has nothing to drop)
        await postcache.invalidate(services, [post["_id"], *repost_targets(post)])
    if status != VISIBLE:
        await counted
        keep_author = status in ("pending_review", "hidden")
        if keep_author:  # still in the author's own feed (a READY one; home_query has it too)
            await Timelines(services.redis).add([home_key(post["author_id"])], int(post["created_ms"]),
                                                str(post["_id"]), services.settings.feed_cap)
        await _retract(services, post, keep_author=keep_author)
        return "retracted"
    timelines = Timelines(services.redis)
    # The post's own places and its audiences' feeds are independent writes: both run at once, so
    # the followers' first batch is not queued behind the places' round trips.
    places = asyncio.create_task(_write_places(services, timelines, post))
    try:
        reached = await _reach_audiences(services, timelines, post, fence, counted, resume=resume)
    except BaseException:
        await reap(places, cancel=True)
        raise
    await places
    return "published" if reached else "changed"


async def _write_places(services: Services, timelines: Timelines, post: dict[str, Any]) -> None:
    """The author's own feed, the post's topics, search listings and geo cells, trends, mentions."""
    score, member = int(post["created_ms"]), str(post["_id"])
    own = await timelines.add([home_key(post["author_id"])], score, member, services.settings.feed_cap)
    topics = await timelines.add([topic_key(k) for k in post.get("topic_keys", [])], score, member, TOPIC_CAP)
    await timelines.add([search_listing_key(k) for k in post.get("search_keys", [])], score, member, LISTING_CAP)
    cells = await localcells.add_post(services.redis, post)
    _count_entries("home", own)
    _count_entries("topic", topics)
    _count_entries("cell", cells)
    await trends.record(services, post)
    await localtrends.record(services, post)
    await _notify_mentions(services, post)


async def _reach_audiences(services: Services, timelines: Timelines, post: dict[str, Any],
                           fence: ReplicaFence, counted: asyncio.Future[Any], *, resume: bool) -> bool:
    """Every audience's followers (pushed, or switched to pull), from the post's checkpoint when
    ``resume``; False when the status changed. Its checkpoints wait for the round's topic counts
    (``counted``)."""
    progress = (post.get("fanout_progress") or {}) if resume else {}
    chunk = services.settings.fanout_chunk
    audiences = _audiences(post)
    for i, (target_type, target_id) in enumerate(audiences):
        if progress.get(target_type) == "done":
            continue
        # The first followers are read while the pull check runs (0.5-1 ms before the first read of
        # a 10,000-follower push, in the benchmark's timeline): the first writes start a round trip
        # sooner; a pull author's read is dropped. The pull check's read of the target also says
        # whether its follower pages are built.
        target = asyncio.ensure_future(followerpages.audience_of(services, target_type, target_id))
        batches = _ReadAhead(follower_batches(services, target_type, target_id, chunk, progress.get(target_type),
                                              first=chunk // FIRST_SHARE, target=target))
        async with contextlib.aclosing(batches):
            if await _pull_mode(services, target_type, target_id, target):
                continue
            if not await _push(services, timelines, post, target_type, batches, fence, counted,
                               final=i == len(audiences) - 1):
                return False
    return True


def _count_entries(target: str, written: int) -> None:
    """Timeline entries written, by target: home (reader feeds via an author), store (reader feeds
    via a followed store), topic, cell. Keys that do not exist (inactive readers) are not counted."""
    if written:
        FANOUT_ENTRIES.labels(target=target).inc(written)


async def _push(services: Services, timelines: Timelines, post: dict[str, Any], target_type: TargetType,
                batches: _ReadAhead, fence: ReplicaFence, counted: asyncio.Future[Any], *, final: bool) -> bool:
    """Writes the post into the feed of every active follower in ``batches`` (the audience's, from its
    checkpoint on), one pipelined round of Lua calls (one per reader bucket) per batch; False when
    the post's status changed meanwhile (its version moved).

    A batch's writes are sent while the previous batch's are still in Redis (at most two in
    flight): the worker packs batch N+1 while Redis runs batch N, instead of each waiting for the
    other (profiled: per 5,000 followers ~9 ms of worker CPU and ~8 ms of Redis, one after the
    other). Progress is checkpointed every CHECKPOINT_EVERY batches, only up to a batch whose
    writes and every earlier batch's have completed. The audience's own "done" is written only when
    another audience follows (``final`` False): after the last one, :func:`_finish` marks the whole
    fan-out done in the next write, checking the version the same way — one MongoDB write instead of
    two per post (0.5 of ~3.5 ms of a 20-follower post's fan-out, measured in-process). Every
    checkpoint waits for the round's topic counts (``counted``, :func:`_count_topics_soon`)."""
    score, member, cap = int(post["created_ms"]), str(post["_id"]), services.settings.feed_cap
    field = f"fanout_progress.{target_type}"
    since_checkpoint = 0
    in_flight: tuple[Checkpoint, asyncio.Task[tuple[int, list[str]]]] | None = None

    async def settle(last: Checkpoint, writes: asyncio.Task[tuple[int, list[str]]]) -> bool:
        nonlocal since_checkpoint
        written, online = await writes
        _count_entries("home" if target_type == "user" else "store", written)
        if online:
            await _announce(services, member, online)
        since_checkpoint += 1
        if since_checkpoint >= CHECKPOINT_EVERY:
            since_checkpoint = 0
            await fence.confirm()  # on a cluster: the writes before it are on a replica (solomo.core.replicafence)
            await counted  # no checkpoint while the topic counts' transaction may still run
            return await _checkpoint(services, post, field, last)
        return True

    try:
        async for last, followers in batches:
            writes = asyncio.create_task(timelines.add_to_homes(followers, score, member, cap))
            earlier, in_flight = in_flight, (last, writes)
            if earlier is not None and not await settle(*earlier):
                return False
        if in_flight is not None:
            earlier, in_flight = in_flight, None
            if not await settle(*earlier):
                return False
    finally:  # a failure or a changed status: no write left running unobserved
        if in_flight is not None:
            await reap(in_flight[1], cancel=False)
    if final:
        return True
    await fence.confirm()
    await counted
    return await _checkpoint(services, post, field, "done")


def _same_version(post: dict[str, Any]) -> dict[str, Any]:
    """The filter matching the post only while its status is still the one in ``post``: every status
    change increments ``status_version`` (absent on posts never changed, i.e. 0)."""
    version = int(post.get("status_version", 0))
    return {"_id": post["_id"], "status_version": version if version else {"$in": [0, None]}}


def _bookkeeping(services: Services) -> Collection:
    """The posts, for the fan-out's own marks: written with :data:`~solomo.core.mongo.REDONE`, as a
    re-run writes them again (the done mark last: a crash that loses a mark loses it too)."""
    return services.db.posts.with_options(write_concern=REDONE)


async def _checkpoint(services: Services, post: dict[str, Any], field: str, value: Any) -> bool:
    """Progress belongs to one status version: a status change unsets it in its own write, and a
    checkpoint is written only while the version is the one the push started from."""
    result = await _bookkeeping(services).update_one(_same_version(post), {"$set": {field: value}})
    return result.matched_count == 1


async def _finish(services: Services, post: dict[str, Any]) -> bool:
    """Done, unless the status changed meanwhile (then the post stays pending and the caller
    reads it again); returns whether it was marked. A deleted post of an erased account loses what
    it kept for its retraction (the words derived from its text, its position) in the same write:
    that retraction, just done, was their last reader (:mod:`feed.erasedposts`)."""
    done = {"fanout": "done", "fanout_done_at": datetime.now(UTC)}
    update: dict[str, Any] | list[dict[str, Any]] = {"$set": done, "$unset": {"fanout_progress": ""}}
    if post["status"] == "deleted":  # decided on the document as it is now: the erasure may have come since
        update = [{"$set": {**done, **erasedposts.emptied_when(erasedposts.ERASED)}},
                  {"$unset": "fanout_progress"}]
    result = await _bookkeeping(services).update_one(_same_version(post), update)
    return result.matched_count == 1


async def _notify_mentions(services: Services, post: dict[str, Any]) -> None:
    """Once per post, when it is first published. Recorded first, marked after: a crash in between
    makes the re-run record again, and the inbox counts each (post, mentioned user) once and
    announces an entry until its event is out (:mod:`notifications.recorder`), so nobody is told
    twice and nobody is lost. A failure raises (``strict``): the task fails before marking anything,
    and the sweep re-sends the post."""
    if post.get("mentions_notified") or not post.get("mention_ids"):  # nothing to record, nothing to mark
        return
    for uid in post.get("mention_ids", []):
        await recorder.record(services, "mention", uid, post["author_id"], post_id=post["_id"], strict=True)
    await _mark_mentions_notified(services, post["_id"])


async def _mark_mentions_notified(services: Services, post_id: ObjectId) -> None:
    await _bookkeeping(services).update_one({"_id": post_id}, {"$set": {"mentions_notified": True}})


async def _retract(services: Services, post: dict[str, Any], *, keep_author: bool) -> None:
    async with _retracting(services, post["_id"]):
        await _remove_everywhere(services, post, keep_author=keep_author)


@contextlib.asynccontextmanager
async def _retracting(services: Services, post_id: ObjectId) -> AsyncIterator[None]:
    """A retraction's removals, bracketed in the post: its run's mark (a token in
    ``fanout_retracting``, the newest :data:`RETRACTING_KEPT` kept) before the first removal, and
    after the last one the mark and every checkpoint gone in one write. While a mark stands, no run
    resumes at a checkpoint: the status may have changed since this run read it, and a restore
    run's checkpoint made before these removals landed counts feeds they emptied. This run's next
    round pushes from the start anyway; the mark is for a crash after the removals, when the
    redelivered task reads the restored post in its first round. A crashed run's mark stays (not in
    a ``finally``: a killed process runs none), and that post's fan-outs then start from the start,
    which is only slower. The mark is written with the client's defaults (a mark lost to an
    election would let a resume through); its removal as bookkeeping (a lost removal leaves the
    mark, which is safe)."""
    run = secrets.token_hex(6)
    await services.db.posts.update_one({"_id": post_id},
                                       {"$push": {RETRACTING: {"$each": [run], "$slice": -RETRACTING_KEPT}}})
    yield
    await _bookkeeping(services).update_one({"_id": post_id},
                                            {"$pull": {RETRACTING: run}, "$unset": {"fanout_progress": ""}})


async def _remove_everywhere(services: Services, post: dict[str, Any], *, keep_author: bool) -> None:
    timelines = Timelines(services.redis)
    member = str(post["_id"])
    holders: list[str] = []
    if not keep_author:
        holders += await timelines.remove_from_homes([str(post["author_id"])], member)
    await timelines.remove([topic_key(k) for k in post.get("topic_keys", [])], member)
    await timelines.remove([search_listing_key(k) for k in post.get("search_keys", [])], member)
    await localcells.remove_post(services.redis, post)
    await trends.forget(services, post)
    await localtrends.forget(services, post)
    for target_type, target_id in _audiences(post):
        batches = _ReadAhead(follower_batches(services, target_type, target_id, services.settings.fanout_chunk))
        async with contextlib.aclosing(batches):
            async for _, followers in batches:
                online = await timelines.remove_from_homes(followers, member)
                if online:
                    await publish_event(services, online, PostDeleted(post_id=member))
    if holders:
        await publish_event(services, holders, PostDeleted(post_id=member))


async def sweep_pending(services: Services, older_than_s: float | None = None, limit: int = 500) -> int:
    """The outbox: re-sends posts whose fan-out has not finished a while after they were written."""
    age = services.settings.fanout_sweep_after_s if older_than_s is None else older_than_s
    cutoff = datetime.now(UTC) - timedelta(seconds=age)
    query = {"fanout": "pending", "created_at": {"$lt": cutoff},
             "$or": [{"fanout_swept_at": {"$exists": False}}, {"fanout_swept_at": {"$lt": cutoff}}]}
    ids = [d["_id"] async for d in services.db.posts.find(query, {"_id": 1}).limit(limit)]
    for pid in ids:  # not send_task: a broker outage fails the sweep, and nothing is marked swept
        await services.tasks.send(tasknames.FANOUT_POST, str(pid))
    if ids:
        await services.db.posts.update_many({"_id": {"$in": ids}}, {"$set": {"fanout_swept_at": datetime.now(UTC)}})
    return len(ids)
