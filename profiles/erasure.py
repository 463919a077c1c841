"""``DELETE /v1/me``: account deletion and the erasure of the user's personal data.

Erasure is ONE ordered list of steps, :data:`STEPS`: each step takes ``(services, user_id)``,
erases one kind of data wherever it lives (MongoDB and Redis), and is idempotent, so a deletion
cut off half-way (a crash, an outage: the request answers 503) is finished by running the list
again. The tombstone (step one) keeps the account from being used meanwhile and records
``erasure: "pending"``, which only the end of the list clears; the maintenance task
``maintenance.erasure_sweep`` (every 5 minutes) runs the list again for such accounts
(:func:`resume_pending`). Packages added later append their step here (media, notifications, push
subscriptions: see docs/design.md "Profile, account and store management");
``tests/accounts/test_erasure.py`` lists every MongoDB collection and Redis key after a deletion,
so a collection without a step fails it.

What stays, and why:

* the ``users`` document as a tombstone: ``username``/``username_lower`` (the name stays reserved,
  contract), ``role``, ``status: "deleted"``, ``created_at``/``deleted_at`` and the socket-close
  outbox; everything else (display name, bio, avatar, password hash, counters, preferences) is gone;
* ``audit`` entries naming the user (append-only record of moderators' decisions);
* stores the user owned stay (a business, not personal data); their live offers end;
* loyalty ledger entries stay for the stores' settlement, without the user's id; the balance and
  spend codes go;
* vouchers and reports keep their counts for the stores and moderators, with the user's id
  replaced by a fresh one that points at nobody (anonymised);
* rate-limit windows (``rl:…`` keys: counts only) until their window passes;
* a fan-out task running at the very moment of the deletion may still write the user into a post's
  "already sent feed.new" set (:func:`solomo.core.keys.feed_new_sent`), which expires within a day;
  likewise the "announced" set of an inbox entry's earlier version
  (:func:`solomo.core.keys.notification_sent`; the current versions' go with the inbox).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
from bson import ObjectId
from redis.exceptions import RedisError

from checkins import storeviews
from feed import blocks, erasedposts, followerpages, postcache
from feed.home import remove_unfollowed
from feed.hydrate import names_changed
from feed.posts import HELD as POST_HELD
from feed.posts import VISIBLE
from geo.positions import forget as forget_position
from media.expiry import erase_owner
from notifications import recorder
from offers import gate, live
from profiles.password import verify_password
from solomo.core import keys, tasknames
from solomo.core.closecodes import UNAUTHORIZED
from solomo.core.control import SOCKET_CLOSE, close_command
from solomo.core.services import Services
from solomo.core.txn import Txn, run_transaction, send_task

log = logging.getLogger("profiles.erasure")

Step = Callable[[Services, ObjectId], Awaitable[None]]
BATCH = 500


async def _tombstone(services: Services, user_id: ObjectId) -> None:
    """First: the account is deleted (login refused, tokens answer 401) before anything is erased."""
    now = datetime.now(UTC)
    await services.db.users.update_one({"_id": user_id}, [
        {"$set": {"status": "deleted", "deleted_at": {"$ifNull": ["$deleted_at", now]}, "erasure": "pending",
                  SOCKET_CLOSE: close_command(UNAUTHORIZED, "account deleted", now)}},
        {"$unset": ["display_name", "bio", "avatar_media_id", "avatar_url", "password_hash", "followers_count",
                    "following_count", "stores_following_count", "offers_from_unfollowed", "last_seen_at",
                    "stores_created", "suspension", "feed_pull", "search_keys"]},
    ])
    await names_changed(services)  # cached summaries (authors, mayors) of the account are dropped everywhere


async def _tokens(services: Services, user_id: ObjectId) -> None:
    """Tokens gone, cached entries dropped and sockets closed (4401) in every API process at once."""
    await services.accounts.revoke_all(user_id, "account deleted")


async def _reader_marks(services: Services, user_id: ObjectId) -> None:
    """The "already sent feed.new" sets list the user as a reader of posts they were told about:
    each post in their home feed (capped; read before anything retracts posts from it) and each
    ``feed.new`` event in their event history (bounded; read before it is deleted). The history is
    needed too: a reader whose home feed was not built in Redis (read from MongoDB while its rebuild
    waited in the queue) was still told of new posts on their socket."""
    uid, bucket = str(user_id), keys.bucket_of(user_id)
    post_ids = {str(p) for p in await services.redis.zrange(keys.home_key(uid), 0, -1) if str(p) != "~"}
    entries = cast(list[tuple[Any, dict[str, str]]], await services.redis.xrange(keys.event_history(uid)) or [])
    for _, fields in entries:
        if fields and fields.get("type") == "feed.new":
            with contextlib.suppress(ValueError, KeyError, TypeError):
                post_ids.add(str(orjson.loads(fields["data"])["post_id"]))
    for post_id in post_ids:
        await services.redis.srem(keys.feed_new_sent(post_id, bucket), uid)


async def _told_others(services: Services, user_id: ObjectId) -> None:
    """Notifications the user's actions sent (follow, like, comment, mention) sit in their receivers'
    event histories (bounded streams) with the user's summary: those entries are deleted. The
    receivers are found from the data the later steps erase (so this step runs before them): users
    the user follows, authors of posts the user liked or commented, users the user's posts mention."""
    receivers: set[ObjectId] = set()
    async for f in services.db.follows.find({"follower_id": user_id, "target_type": "user"}, {"target_id": 1}):
        receivers.add(f["target_id"])
    post_ids = {d["post_id"] async for d in services.db.likes.find({"user_id": user_id}, {"post_id": 1})}
    post_ids |= {d["post_id"] async for d in services.db.comments.find({"author_id": user_id}, {"post_id": 1})}
    for start in range(0, len(post_ids), BATCH):
        chunk = list(post_ids)[start:start + BATCH]
        receivers |= {p["author_id"] async for p in services.db.posts.find({"_id": {"$in": chunk}}, {"author_id": 1})}
    async for p in services.db.posts.find({"author_id": user_id, "mention_ids.0": {"$exists": True}},
                                          {"mention_ids": 1}):
        receivers.update(p.get("mention_ids", []))
    receivers.discard(user_id)
    uid = str(user_id)
    for receiver in receivers:
        key = keys.event_history(str(receiver))
        entries = cast(list[tuple[Any, dict[str, str]]], await services.redis.xrange(key) or [])
        doomed = [entry_id for entry_id, fields in entries if fields and uid in str(fields.get("data", ""))]
        if doomed:
            await services.redis.xdel(key, *doomed)


async def _ids(cursor: Any) -> list[ObjectId]:
    return [d["_id"] async for d in cursor]


async def _posts(services: Services, user_id: ObjectId) -> None:
    """Every post leaves every feed as an author's deletion does (``feed.posts.delete_post``): status
    ``deleted``, its fan-out retracted by the retract task (the outbox sweep re-sends a lost one).
    The text goes too, except for posts moderators hold as evidence: in the same write as the status,
    so the cached view a reader fills after the invalidation holds no text either (a page still
    listing the post before its retraction fills one); and from the posts the user had deleted
    before, whose cached views go with it. What the retraction reads (the words derived from the
    text: search keys, topics, mentions, the filter's matches; and the post's public position) goes
    once each post's retraction has read it: in the fan-out's done mark, or here for a post deleted
    before whose fan-out was done (:mod:`feed.erasedposts`)."""
    while True:
        ids = await _ids(services.db.posts.find({"author_id": user_id, "status": {"$ne": "deleted"}},
                                                {"_id": 1}).limit(BATCH))
        if not ids:
            break
        evidence = {"$or": [{"$in": ["$status", list(POST_HELD)]}, {"$gt": [{"$ifNull": ["$open_reports", 0]}, 0]}]}
        await services.db.posts.update_many({"_id": {"$in": ids}, "status": {"$ne": "deleted"}}, [
            {"$set": {"status": "deleted", "deleted_from": "$status", "deleted_at": datetime.now(UTC),
                      "fanout": "pending", "evidence": evidence, "account_deleted": True,
                      "text": {"$cond": [evidence, "$text", ""]},
                      "status_version": {"$add": [{"$ifNull": ["$status_version", 0]}, 1]},
                      "queued_ms": {"$cond": [{"$eq": ["$status", "pending_review"]}, "$created_ms", "$queued_ms"]}}},
            {"$unset": "fanout_progress"}])
        await postcache.invalidate(services, ids)
        bucket = keys.bucket_of(user_id)
        for post_id in ids:
            await services.redis.srem(keys.feed_new_sent(post_id, bucket), str(user_id))  # told as its author
            await send_task(services, tasknames.FANOUT_RETRACT, str(post_id))
    # deleted before, and not evidence: nothing of the text is kept, in MongoDB or a cached view;
    # marked as erased, so a retraction still running takes the words when it is done
    while True:
        ids = await _ids(services.db.posts.find({"author_id": user_id, "status": "deleted", "evidence": {"$ne": True},
                                                 "account_deleted": {"$ne": True}}, {"_id": 1}).limit(BATCH))
        if not ids:
            break
        await services.db.posts.update_many({"_id": {"$in": ids}}, [  # the rest with it, once retracted
            {"$set": {"text": "", "account_deleted": True, **erasedposts.emptied_when({"$eq": ["$fanout", "done"]})}}])
        await postcache.invalidate(services, ids)


async def _comments(services: Services, user_id: ObjectId) -> None:
    """Comments leave their posts (status ``deleted``, text and the filter's matched words erased);
    the posts' counts move down in the same transaction, so a re-run after a failure never counts a
    comment twice."""
    while True:
        docs = await services.db.comments.find({"author_id": user_id, "status": {"$ne": "deleted"}},
                                               {"post_id": 1, "status": 1}).limit(BATCH).to_list(None)
        if not docs:
            break
        published: dict[ObjectId, int] = {}
        for d in docs:
            if d.get("status", VISIBLE) == VISIBLE:
                published[d["post_id"]] = published.get(d["post_id"], 0) + 1

        async def batch(txn: Txn, docs: list[dict[str, Any]] = docs,
                        published: dict[ObjectId, int] = published) -> None:
            await services.db.comments.update_many({"_id": {"$in": [d["_id"] for d in docs]}},
                                                   {"$set": {"status": "deleted", "deleted_at": datetime.now(UTC)}},
                                                   session=txn.session)
            for post_id, n in published.items():
                await services.db.posts.update_one({"_id": post_id}, {"$inc": {"comment_count": -n}},
                                                   session=txn.session)

        await run_transaction(services, batch)
        await postcache.invalidate(services, list(published))
    await services.db.comments.update_many({"author_id": user_id, "text": {"$ne": ""}},
                                           {"$set": {"text": "", "flags": []}})  # the filter's matches with it


async def _likes(services: Services, user_id: ObjectId) -> None:
    """Likes removed with their counts (one transaction a batch), the user's liked-set cache dropped."""
    while True:
        docs = await services.db.likes.find({"user_id": user_id}, {"post_id": 1}).limit(BATCH).to_list(None)
        if not docs:
            break
        post_ids = [d["post_id"] for d in docs]

        async def batch(txn: Txn, docs: list[dict[str, Any]] = docs, post_ids: list[ObjectId] = post_ids) -> None:
            await services.db.likes.delete_many({"_id": {"$in": [d["_id"] for d in docs]}}, session=txn.session)
            await services.db.posts.update_many({"_id": {"$in": post_ids}}, {"$inc": {"like_count": -1}},
                                                session=txn.session)

        await run_transaction(services, batch)
        await postcache.invalidate(services, post_ids)
    await services.redis.delete(keys.liked_key(user_id))


async def _follows(services: Services, user_id: ObjectId) -> None:
    """Follows both ways removed with the other side's counters (one transaction a batch). A
    follower's home feed drops the user's posts here (``feed.home.remove_unfollowed``), as on an
    unfollow: the retract tasks sent by :func:`_posts` find the readers through these very follows,
    which are gone by the time they run."""
    while True:
        docs = await services.db.follows.find({"$or": [{"follower_id": user_id},
                                                       {"target_type": "user", "target_id": user_id}]}
                                              ).limit(BATCH).to_list(None)
        if not docs:
            break

        async def batch(txn: Txn, docs: list[dict[str, Any]] = docs) -> None:
            for d in docs:
                if d["follower_id"] == user_id:
                    coll = "users" if d["target_type"] == "user" else "stores"
                    await services.db[coll].update_one({"_id": d["target_id"]}, {"$inc": {"followers_count": -1}},
                                                       session=txn.session)
                    await followerpages.removed(services, txn, d["target_type"], d["target_id"], user_id)
                else:
                    await services.db.users.update_one({"_id": d["follower_id"]},
                                                       {"$inc": {"following_count": -1}}, session=txn.session)
            if any(d["follower_id"] != user_id for d in docs):  # the user's own audience: its pages go
                await followerpages.dropped(services, txn, "user", user_id)
            await services.db.follows.delete_many({"_id": {"$in": [d["_id"] for d in docs]}}, session=txn.session)

        await run_transaction(services, batch)
        await storeviews.invalidate(services, [d["target_id"] for d in docs
                                               if d["follower_id"] == user_id and d["target_type"] == "store"])
        for d in docs:
            if d["follower_id"] != user_id:
                await remove_unfollowed(services, d["follower_id"], "user", user_id)


def seats_of(user_id: ObjectId) -> dict[str, Any]:
    """The stores ``user_id`` is mayor of, through the partial index ``by_mayor`` (only stores with a
    mayor): an equality does not imply the index's ``$type``, so without it MongoDB scanned every store."""
    return {"mayor_id": {"$eq": user_id, "$type": "objectId"}}


async def _checkins(services: Services, user_id: ObjectId) -> None:
    """Check-ins (each holds the device's fix) and their bookkeeping; a seat the user held is recounted."""
    await services.db.checkins.delete_many({"user_id": user_id})
    await services.db.checkin_guards.delete_many({"_id": user_id})
    await services.db.store_visitors.delete_many({"user_id": user_id})
    seats = [d["_id"] async for d in services.db.stores.find(seats_of(user_id), {"_id": 1})]
    await services.db.stores.update_many(seats_of(user_id), {"$set": {"mayor_id": None}, "$unset": {"seat": ""}})
    await storeviews.invalidate(services, seats)


async def _live_state(services: Services, user_id: ObjectId) -> None:
    """The live position and the per-user Redis state: home feed, event history, sockets, judged offers."""
    uid = str(user_id)
    await forget_position(services.redis, uid)
    for key in (keys.home_key(uid), keys.event_history(uid), keys.user_sockets(uid), keys.offers_judged(uid)):
        await services.redis.delete(key)
    # the nearby-offer cap's day sets (offer ids that reached the user): one per store-local day,
    # kept two days, so any that can still exist is among these (a day either side of UTC's)
    today = datetime.now(UTC).date()
    for back in range(-1, 3):
        await services.redis.delete(keys.nearby_offers_day(uid, (today - timedelta(days=back)).isoformat()))


async def _vouchers(services: Services, user_id: ObjectId) -> None:
    """Vouchers anonymised (stores keep their counts); the claim gates forget the user."""
    while True:
        docs = await services.db.vouchers.find({"user_id": user_id}, {"offer_id": 1}).limit(BATCH).to_list(None)
        if not docs:
            break
        for d in docs:
            await services.db.vouchers.update_one({"_id": d["_id"]}, {"$set": {"user_id": ObjectId()}})
            with contextlib.suppress(RedisError):  # a rebuilt gate reads the anonymised holders
                await services.redis.srem(keys.claim_holders(d["offer_id"]), str(user_id))
                await services.redis.zrem(keys.claim_pending(d["offer_id"]), str(user_id))


async def _points(services: Services, user_id: ObjectId) -> None:
    """Loyalty points: the balance and any spend codes go; ledger entries stay for the stores'
    settlement (points issued and spent there), anonymised: no user id, no ``once`` key naming it."""
    await services.db.points_balances.delete_one({"_id": user_id})
    await services.db.points_spend_codes.delete_many({"user_id": user_id})
    await services.db.points_ledger.update_many({"user_id": user_id}, {"$unset": {"user_id": "", "once": ""}})


async def _offers_delivered(services: Services, user_id: ObjectId) -> None:
    """Which offers the user was pushed: removed from each offer's delivered set. The offers are read
    from the user's own event history (bounded; run before it is deleted), so the work does not grow
    with the city's offers; a delivery older than the history lives until its set expires."""
    bucket, uid = keys.bucket_of(user_id), str(user_id)
    entries = cast(list[tuple[Any, dict[str, str]]], await services.redis.xrange(keys.event_history(uid)) or [])
    for _, fields in entries:
        if not fields or fields.get("type") != "offer":
            continue
        with contextlib.suppress(ValueError, KeyError, TypeError):
            offer_id = orjson.loads(fields["data"])["id"]
            await services.redis.srem(keys.offer_delivered(offer_id, bucket), uid)


async def _owned_offers(services: Services, user_id: ObjectId) -> None:
    """A merchant leaving: the live offers of their stores end (vouchers stay redeemable)."""
    stores = await _ids(services.db.stores.find({"owner_id": user_id}, {"_id": 1}))
    if not stores:
        return
    ids = await _ids(services.db.offers.find({"store_id": {"$in": stores},
                                              "status": {"$in": ["live", "pending_review"]},
                                              "expires_at": {"$gt": datetime.now(UTC)}}, {"_id": 1}))
    if ids:
        await services.db.offers.update_many({"_id": {"$in": ids}}, {"$set": {"status": "ended",
                                                                              "targeting": "done"}})
        await live.unregister(services.redis, [str(i) for i in ids])
        for oid in ids:
            await gate.close(services, oid, gate.ENDED)


async def _reports(services: Services, user_id: ObjectId) -> None:
    """Reports the user filed stay for the moderators, anonymised."""
    async for doc in services.db.reports.find({"reporter_id": user_id}, {"_id": 1}):
        await services.db.reports.update_one({"_id": doc["_id"]}, {"$set": {"reporter_id": ObjectId()}})


async def _blocks_and_mutes(services: Services, user_id: ObjectId) -> None:
    """Both directions; the cached shut-out sets of everyone involved are dropped (they list ids)."""
    others: set[ObjectId] = {user_id}
    async for doc in services.db.blocks.find({"$or": [{"blocker_id": user_id}, {"blocked_id": user_id}]},
                                             {"blocker_id": 1, "blocked_id": 1}):
        others.update((doc["blocker_id"], doc["blocked_id"]))
    async for doc in services.db.mutes.find({"$or": [{"muter_id": user_id}, {"muted_id": user_id}]},
                                            {"muter_id": 1, "muted_id": 1}):
        others.update((doc["muter_id"], doc["muted_id"]))
    await services.db.blocks.delete_many({"$or": [{"blocker_id": user_id}, {"blocked_id": user_id}]})
    await services.db.mutes.delete_many({"$or": [{"muter_id": user_id}, {"muted_id": user_id}]})
    await blocks.invalidate(services, sorted(others))


async def _idempotency(services: Services, user_id: ObjectId) -> None:
    """Stored answers of the user's retried requests (they hold vouchers, posts)."""
    await services.db.idempotency.delete_many({"user_id": user_id})


async def _mentions(services: Services, user_id: ObjectId) -> None:
    """Others' posts that mentioned the user: their ``mention_ids`` drop the id, and their cached
    views go (their text, the authors' own words, is theirs). Nothing else holds whom a post told:
    ``mentions_notified`` is a flag, and the inbox entries go with the inbox step."""
    query = {"mention_ids": user_id, "mention_ids.0": {"$exists": True}}  # the partial index's filter
    while True:
        ids = await _ids(services.db.posts.find(query, {"_id": 1}).limit(BATCH))
        if not ids:
            break
        await services.db.posts.update_many({"_id": {"$in": ids}}, {"$pull": {"mention_ids": user_id}})
        await postcache.invalidate(services, ids)


async def _media(services: Services, user_id: ObjectId) -> None:
    """The user's photos (used or not) and their GridFS files; an avatar with them."""
    await erase_owner(services, user_id)


async def _notifications(services: Services, user_id: ObjectId) -> None:
    """The user's inbox, and the user as an actor in others' entries."""
    await recorder.erase_user(services, user_id)


async def _push_subscriptions(services: Services, user_id: ObjectId) -> None:
    """The user's devices' push endpoints and keys."""
    await services.db.push_subscriptions.delete_many({"user_id": user_id})


STEPS: list[Step] = [
    _tombstone,
    _tokens,
    _reader_marks,  # these two read what the steps after them erase
    _told_others,
    _posts,
    _comments,
    _likes,
    _follows,
    _checkins,
    _offers_delivered,  # before _live_state: it reads the event history
    _live_state,
    _vouchers,
    _points,
    _owned_offers,
    _reports,
    _blocks_and_mutes,
    _idempotency,
    _mentions,
    _media,
    _notifications,
    _push_subscriptions,
]
"""Every erasure step, in order (the tombstone first: the account is unusable from the start)."""


async def erase_account(services: Services, user_id: ObjectId, password: str) -> None:
    """Checks the password (403 ``invalid_credentials``, limited like a password change), then runs
    :data:`STEPS`."""
    await verify_password(services, user_id, password)
    await run_steps(services, user_id)


async def run_steps(services: Services, user_id: ObjectId) -> None:
    for step in STEPS:
        await step(services, user_id)
    await services.db.users.update_one({"_id": user_id}, {"$unset": {"erasure": ""}})


RESUME_AFTER = timedelta(minutes=2)
"""An erasure still pending this long after its deletion was cut short (a request takes seconds)."""
RESUME_BATCH = 20


async def resume_pending(services: Services, now: datetime | None = None) -> int:
    """Runs the steps again for deleted accounts whose erasure did not finish; returns how many.
    Bounded per run (:data:`RESUME_BATCH`, through a partial index); one failing account does not
    stop the others (it stays pending for the next run)."""
    before = (now or datetime.now(UTC)) - RESUME_AFTER
    done = 0
    async for doc in services.db.users.find({"erasure": "pending", "deleted_at": {"$lt": before}},
                                            {"_id": 1}).limit(RESUME_BATCH):
        try:
            await run_steps(services, doc["_id"])
            done += 1
        except Exception:
            log.exception("erasure of %s failed again; the next sweep retries", doc["_id"])
    return done
