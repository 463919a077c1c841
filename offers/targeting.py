"""Pushing an offer to its audience near the store, exactly once each.

Targeting starts from the candidates — users with a fresh live position within the radius (Redis
GEOSEARCH) — and keeps, chunk by chunk, those reachable now: online (``rt:online:{b<n>}``) or, with
no open socket, holding a Web Push subscription (their last known position while fresh;
:mod:`push.dispatch` turns their event into a push message); then those in the offer's audience
(:mod:`offers.audiences`: followers, visitors, regulars, anyone nearby — queried for just those
candidates); for ``nearby``, the non-followers' cap and opt-out (:mod:`offers.nearbycap`). Each gets
an ``offer`` event (the Offer plus ``distance_m``, encoded once with only the distance per user:
:func:`offer_events`) with the dedupe set ``offer:{id}:delivered``: a retried task, or a user also
reached by the arrival path (:mod:`offers.arrival`), never sees the offer twice.

Where it runs: :func:`start_push`, once the offer's transaction committed and the merchant's answer
was sent (:func:`solomo.core.afterwards.after_response`). A small audience is targeted there and
then, in the API process (the Celery hop and pickup would be most of such a
small push's latency); a bigger audience, or an inline attempt that fails, goes to the task (sent
with :func:`solomo.core.txn.send_task`, the one way to enqueue), which keeps the API's event loop
free of its work. The task works in chunks and checkpoints its progress (``targeting_progress``,
see :func:`_target`). The offer stays ``targeting: "pending"`` until a run completes, so a process
that dies mid-way is covered by the broker's redelivery and the sweep's re-send
(:mod:`offers.sweeps`); the dedupe sets make any second run harmless.

``pushed`` on the offer document follows the dedupe set's size (``$max``, so retries and
concurrent writers only ever move it forward).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from bson import ObjectId

from geo.positions import users_within
from notifications import offerinbox
from offers import live, nearbycap
from offers.audiences import Audience, audience_of_offer, followers_store, members_among
from offers.offers import expires_ms, is_live, offer_public, sold_out, stored_status
from push.subscriptions import subscribed_users
from solomo.core import tasknames
from solomo.core.eventtypes import OfferEvent
from solomo.core.ids import maybe_id
from solomo.core.keys import BUCKETS, offer_delivered
from solomo.core.presence import is_online
from solomo.core.services import Services
from solomo.core.sidetasks import reap
from solomo.core.txn import send_task

log = logging.getLogger("solomo.offers")

DELIVERED_GRACE_S = 86400
INLINE_MAX_FOLLOWERS = 2000
"""Stores with at most this many followers have a new offer targeted inline (see the module
docstring): the audience, and so the request's extra work, is bounded by it."""


def delivered_ttl_s(offer: dict[str, Any]) -> int:
    """Keep the dedupe set until a day after the offer expires (no delivery can happen later)."""
    return max(60, int(expires_ms(offer) / 1000 - time.time()) + DELIVERED_GRACE_S)


def offer_events(offer: dict[str, Any], store: dict[str, Any], recipients: list[tuple[str, float]]
                 ) -> tuple[tuple[str, str], list[tuple[str, str]]]:
    """The recipients' ``offer`` events as ``(shared, parts)`` for
    :meth:`solomo.core.events.EventPublisher.publish_shared`: the Offer is shaped (checked by
    :class:`OfferEvent`) and encoded once; each ``(user id, part)`` carries only the distance, so a
    user's data ``shared[0] + part + shared[1]`` is their ``OfferEvent`` as JSON (``distance_m`` is
    the model's last field)."""
    public = offer_public(offer, store)  # the event carries the audience, not its parameters (owner's detail)
    shaped = OfferEvent(**{k: v for k, v in public.items() if k in OfferEvent.model_fields}, distance_m=0.0).data()
    del shaped["distance_m"]
    text = orjson.dumps(shaped).decode()
    shared = (text[:-1] + ',"distance_m":', "}")
    return shared, [(uid, orjson.dumps(round(dist, 1)).decode()) for uid, dist in recipients]


async def send_offer(services: Services, offer: dict[str, Any], store: dict[str, Any],
                     recipients: list[tuple[str, float]], *, done: bool = False) -> int:
    """Publish the offer to each ``(user id, distance)`` not reached before, then settle them
    (:func:`_settle`); returns how many were new. ``done``: also mark the offer's targeting done."""
    sent = await _publish(services, offer, store, recipients)
    await _settle(services, offer, sent, done=done)
    return len(sent)


async def _publish(services: Services, offer: dict[str, Any], store: dict[str, Any],
                   recipients: list[tuple[str, float]]) -> list[str]:
    """The ``offer`` events of those of ``recipients`` not reached before; returns their user ids.
    Raises on a Redis failure: the task is retried, the dedupe sets keep it once."""
    if not recipients:
        return []
    offer_id = str(offer["_id"])
    shared, parts = offer_events(offer, store, recipients)
    sent = await services.events.publish_shared(
        OfferEvent.event_type, shared, parts, once_key=lambda bucket: offer_delivered(offer_id, bucket),
        once_ttl_s=delivered_ttl_s(offer))
    return [uid for uid, _ in sent]


async def _settle(services: Services, offer: dict[str, Any], sent: list[str], *, progress: str | None = None,
                  done: bool = False) -> None:
    """What follows a delivery, in this order: the inbox's delivery record of the users just reached, then
    one update of the offer — ``pushed`` from the dedupe sets, the targeting checkpoint
    (``progress``: the last user id of a finished chunk), ``done``."""
    if sent:
        await _to_inboxes(services, offer, sent)
    update: dict[str, Any] = {}
    if sent:
        update["$max"] = {"pushed": await delivered_count(services, str(offer["_id"]))}
    if progress is not None:
        update["$set"] = {"targeting_progress": progress}
    if done:
        update["$set"] = {"targeting": "done", "targeted_at": datetime.now(UTC)}
    if update:
        await services.db.offers.update_one({"_id": offer["_id"]}, update)


async def _to_inboxes(services: Services, offer: dict[str, Any], user_ids: list[str]) -> None:
    """The users just reached keep the offer in their notifications inbox (one delivery record,
    :mod:`notifications.offerinbox`). After the delivery and
    best effort: the ``offer`` event is out (and its dedupe set would skip these users on a retry),
    so a failure here is logged, not raised."""
    try:
        await offerinbox.record_offers(services, offer, user_ids)
    except Exception as exc:
        log.warning("offer %s: the inbox's delivery record of %d users not written: %s", offer["_id"],
                    len(user_ids), exc)


async def delivered_count(services: Services, offer_id: str) -> int:
    """Users the offer reached: the sizes of its per-bucket delivery sets (an exact count however
    often the task ran, hence ``$max`` above)."""
    async with services.redis.pipeline(transaction=False) as pipe:
        for bucket in range(BUCKETS):
            pipe.scard(offer_delivered(offer_id, bucket))
        return sum(int(n) for n in await pipe.execute())


async def start_push(services: Services, offer: dict[str, Any], store: dict[str, Any]) -> None:
    """After the offer's transaction committed: target it here for a small audience, else (or if
    that fails) register it for arrivals and enqueue the task. Never raises: the offer is durable
    and still ``targeting: "pending"``, so the sweep re-sends what a failure here left undone.

    Small: a followers offer of a store with at most :data:`INLINE_MAX_FOLLOWERS` followers; any
    other audience when at most that many users are positioned within the radius (its candidates;
    the run stops before any work when there are more)."""
    offer_id = str(offer["_id"])
    followers = audience_of_offer(offer).kind == "followers"
    if not followers or int(store.get("followers_count", 0)) <= INLINE_MAX_FOLLOWERS:
        try:
            await _target(services, offer, store, inline_limit=None if followers else INLINE_MAX_FOLLOWERS)
            return
        except _TooLarge:
            pass
        except Exception as exc:  # Redis or MongoDB trouble: the task (retried, deduplicated) takes over
            log.warning("inline targeting of offer %s failed (%s); the task takes over", offer_id, exc)
    try:  # arrivals see the offer at once; the task registers it anyway
        lng, lat = offer["location"]["coordinates"]
        await live.register(services.redis, offer_id, lat, lng, offer["radius_m"], expires_ms(offer),
                            followers_store(offer))
    except Exception as exc:
        log.warning("offer %s not in the live index yet (%s); targeting will add it", offer_id, exc)
    await send_task(services, tasknames.OFFERS_TARGET, offer_id)  # else the sweep re-sends it


async def target_offer(services: Services, offer_id: str) -> int:
    """The targeting task's body: idempotent; returns how many users got the offer now."""
    oid = maybe_id(offer_id)
    offer = await services.db.offers.find_one({"_id": oid}) if oid else None
    if offer is None:
        return 0
    if offer.get("targeting") == "done":  # targeted inline (or by an earlier run): nothing left to send
        return 0
    return await _target(services, offer, None)


class _TooLarge(Exception):
    """More candidates than an inline run takes: the task targets the offer."""


async def _target(services: Services, offer: dict[str, Any], store: dict[str, Any] | None, *,
                  inline_limit: int | None = None) -> int:
    """Target ``offer`` (its store already read, or None to read it here); returns how many got it.

    The push's latency is this function's critical path, so reads that do not depend on each
    other run concurrently: the store, with (re-)registering the offer in the live index and then
    finding the positions near it (the offer carries its store's location; registering first
    leaves no gap for a user of the audience arriving meanwhile).

    The candidates are then taken in user id order, in chunks of ``fanout_chunk``
    (:func:`_recipients` for each: reachable now, in the audience, within the nearby cap), and
    after each chunk is sent and its users' inbox delivery recorded (while the next chunk is already
    being targeted and published) the last user id is checkpointed in ``targeting_progress``: a run
    killed mid-way is re-run (the broker redelivers the unacknowledged task, or the sweep re-sends
    it) and starts after the checkpoint; the chunk in flight at the kill is redone, which the
    dedupe sets (and the nearby cap's idempotent places) make harmless. Inbox entries stay best
    effort: a kill between a chunk's publish and its settling leaves that chunk's users (at most two
    chunks, the one settling and the one published after it) with the offer but without its entry,
    as the dedupe sets skip them on the re-run. A user who moved in or out of the radius meanwhile
    is the arrival path's (:mod:`offers.arrival`).
    """
    if stored_status(offer) != "live":  # held for review (its approval sends this task again) or removed
        return 0
    if not is_live(offer) or sold_out(offer):
        await services.db.offers.update_one({"_id": offer["_id"]}, {"$set": {"targeting": "done"}})
        return 0
    lng, lat = offer["location"]["coordinates"]

    async def register_then_search() -> list[tuple[str, float]]:
        await live.register(services.redis, str(offer["_id"]), lat, lng, offer["radius_m"], expires_ms(offer),
                            followers_store(offer))
        return await users_within(services.redis, lat, lng, offer["radius_m"], services.settings.position_ttl_s)

    async def read_store() -> dict[str, Any] | None:
        return store if store is not None else await services.db.stores.find_one({"_id": offer["store_id"]})

    found, near = await asyncio.gather(read_store(), register_then_search())
    if found is None:
        await services.db.offers.update_one({"_id": offer["_id"]}, {"$set": {"targeting": "done"}})
        return 0
    if inline_limit is not None and len(near) > inline_limit:
        raise _TooLarge
    audience = audience_of_offer(offer)
    after = str(offer.get("targeting_progress") or "")
    todo = sorted(((uid, d) for uid, d in near if uid > after), key=lambda row: row[0])
    size = max(1, services.settings.fanout_chunk)
    chunks = [todo[start:start + size] for start in range(0, len(todo), size)]
    if not chunks:
        await _settle(services, offer, [], done=True)
        return 0
    sent = 0
    # The push's latency is the chunks' targeting and publishing. So the next chunk's targeting
    # (reads in Redis and MongoDB) runs while this chunk is published, and this chunk's settling
    # (its inbox delivery record, ``pushed``, then its checkpoint) starts once the next chunk's
    # recipients are in hand: its writes never sit in front of those reads (measured when the
    # settling wrote an inbox entry per user: 5,000 of them held the second chunk of a 10,000-user
    # offer back by ~90 ms). One settling at a time, in chunk order, so a checkpoint still follows
    # its own chunk's delivery record and every earlier chunk's.
    settling: asyncio.Task[None] | None = None
    upcoming: asyncio.Task[list[tuple[str, float]]] | None = asyncio.create_task(
        _recipients(services, offer, found, audience, chunks[0]))
    try:
        for i, part in enumerate(chunks):
            assert upcoming is not None
            recipients = await upcoming
            last = i + 1 == len(chunks)
            upcoming = None if last else asyncio.create_task(
                _recipients(services, offer, found, audience, chunks[i + 1]))
            if recipients and not await _still_live(services, offer["_id"]):
                # ended (or removed) while it was being targeted: the owner's end unregistered it before this
                # run registered it again above, so take it out once more and push nothing more
                await live.unregister(services.redis, [str(offer["_id"])])
                return sent
            reached = await _publish(services, offer, found, recipients)
            sent += len(reached)
            if upcoming is not None:
                await asyncio.wait([upcoming])  # its outcome is read at the top of the next round
            if settling is not None:
                await asyncio.shield(settling)  # a cancelled run still lets the write it started finish
            settling = asyncio.create_task(
                _settle(services, offer, reached, progress=None if last else part[-1][0], done=last))
        assert settling is not None
        await asyncio.shield(settling)
    finally:
        if upcoming is not None:  # an error or an early end: a read nobody wants
            await reap(upcoming, cancel=True)
        if settling is not None:  # an error or an early end above: the last write finishes, its error is told
            if not settling.done():
                await asyncio.wait([settling])
            if not settling.cancelled() and settling.exception() is not None:
                log.warning("offer %s: settling a chunk failed: %s", offer["_id"], settling.exception())
    return sent


async def _recipients(services: Services, offer: dict[str, Any], store: dict[str, Any], audience: Audience,
                      near: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Of one chunk of candidates, those to send to: :func:`reachable_members`, and for ``nearby``
    admitted by its cap (:mod:`offers.nearbycap`, last: only users about to be sent take a place)."""
    ids = [uid for uid, _ in near]
    reach = await reachable_members(services, store, audience, ids)
    if reach and audience.kind == "nearby":
        reach = await nearbycap.admit(services, offer, store, [uid for uid in ids if uid in reach])
    return [(uid, d) for uid, d in near if uid in reach]


async def reachable_members(services: Services, store: dict[str, Any], audience: Audience,
                            ids: list[str]) -> set[str]:
    """Which of the candidates ``ids`` are in the audience and reachable now: online, or with no
    open socket a Web Push subscription (:mod:`push.dispatch` sends their event)."""
    if not ids:
        return set()
    online, members = await asyncio.gather(is_online(services.redis, ids),
                                           members_among(services, store, audience, ids))
    reach = {uid for uid, on in zip(ids, online, strict=True) if on and uid in members}
    away = [uid for uid in ids if uid in members and uid not in reach]
    if away:
        reach |= await subscribed_users(services, away)
    return reach


async def _still_live(services: Services, offer_id: ObjectId) -> bool:
    doc = await services.db.offers.find_one({"_id": offer_id}, {"status": 1})
    return doc is not None and stored_status(doc) == "live"
