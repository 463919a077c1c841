"""Users of an offer's audience who come within its radius later get it once, when their location arrives.

Called by the WebSocket session for every ``location`` message (a hub location listener). Its
work is bounded whatever the number of live offers around:

* the live index is read for no more than :data:`offers.live.SCAN_CAP` offers, and most messages
  are answered from this process's per-cell cache (:class:`offers.live.LiveCells`);
* Redis is asked in round trips shared with the turn's other commands (:mod:`solomo.core.autopipe`):
  most messages cost one, the index version read with the user's judgements of the offers the
  cache guesses (:func:`_covering`); a message meeting offers new to the user adds one for their
  deliveries and one to remember its judgements (measured in the soak: docs/benchmarks.md);
* offers already judged for this user (sent, not for them, no longer live) are
  remembered in ``offers:judged:{user}`` for :data:`JUDGED_TTL_S`, so MongoDB is asked only about
  offers new to the user — at most three queries (follows, offers, stores) of at most the cap each
  (each shared by the messages of one event-loop turn; an offer for the followers of a store the
  user does not follow is judged by the first alone, its store's id kept in the live index), plus
  one covered check-in aggregation per new visitors or regulars offer (:mod:`offers.audiences`;
  after one read of those offers' stores' time zones, as regulars count store-local days) and,
  per new ``nearby`` offer about to be sent, its cap (:mod:`offers.nearbycap`).
  Following a store forgets the user's judgements (:func:`forget_judged`), so an offer of a store
  followed a moment ago is not held back by an earlier "not followed".
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

from bson import ObjectId

from feed.followed import followed_among
from offers import live, nearbycap
from offers.audiences import audience_of_offer, members_among
from offers.offers import offer_status
from offers.targeting import send_offer
from solomo.core import timeutil
from solomo.core.idloader import IdLoads
from solomo.core.keys import LIVE_OFFERS_VERSION, bucket_of, offer_delivered, offers_judged
from solomo.core.scripts import LuaScript
from solomo.core.services import Services

JUDGED_TTL_S = 600
OFFERS = IdLoads("offers")
STORES = IdLoads("stores", {"search_keys": 0})
"""Point reads of the offers a location message found new to its user, and of their stores: the
concurrent messages of one event-loop turn share one query each. In the soak (2,000 moving sockets,
an offer every 5 s) nearly every location message meets a fresh offer, and these per-message
queries were 9 % of the API's samples (py-spy, docs/benchmarks.md)."""
CELLS_KEY = "offers.live_cells"


def live_cells(services: Services) -> live.LiveCells:
    """This process's per-cell cache of live offers."""
    cells = services.extras.get(CELLS_KEY)
    if cells is None:
        cells = services.extras[CELLS_KEY] = live.LiveCells()
    return cast(live.LiveCells, cells)


async def forget_judged(services: Services, user_id: ObjectId | str) -> None:
    key = offers_judged(user_id)
    await services.batch.run(lambda pipe: pipe.delete(key))  # with the other check-ins of this turn


# KEYS: the user's judged set. ARGV: its TTL, then the offer ids. One step, so the set is never
# left without its TTL; the run shares its round trip with the turn's other Redis commands.
_JUDGE = LuaScript("offers_judged_add", """
redis.call('SADD', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
""")


async def _covering(services: Services, user_id: str, lat: float,
                    lng: float) -> tuple[list[tuple[live.LiveOffer, float]], list[int]]:
    """The live offers covering the point (``(offer, distance m)``) and, for each, whether the
    user's judged set holds it.

    The common case is one round trip on the shared pipeline: the offers this process read for the
    point's cell less than :data:`~offers.live.CELL_TTL_S` ago are a guess, and the index version
    and the guess's judgements are read together; the guess stands when the version has not moved.
    Otherwise the cell is read again and its judgements asked for. The version is read after the
    caller's position write was acknowledged, as before: an offer registered since is either seen
    here (its version moved) or finds this position when it is targeted."""
    cells = live_cells(services)
    now = timeutil.now_ms()
    cell = live.cell_at(lat, lng)
    judged_key = offers_judged(user_id)
    recent = cells.recent(cell)
    guess = live.within(recent[1], lat, lng, now) if recent is not None else []

    def first(pipe: Any) -> None:
        pipe.get(LIVE_OFFERS_VERSION)
        if guess:
            pipe.smismember(judged_key, [o.offer_id for o, _ in guess])

    version, *judged = await services.batch.run(first)
    if recent is not None and recent[0] == version:
        return guess, judged[0] if guess else []
    offers = await live.read_cell(services.redis, cell, now)
    cells.put(cell, version, offers)
    found = live.within(offers, lat, lng, now)
    if not found:
        return [], []
    [held] = await services.batch.run(lambda pipe: pipe.smismember(judged_key, [o.offer_id for o, _ in found]))
    return found, held


Fresh = dict[str, tuple[live.LiveOffer, float]]
"""Offers new to the user, by id: the live index's entry and the user's distance from it."""


async def _unjudged(services: Services, user_id: str, candidates: list[tuple[live.LiveOffer, float]],
                    judged: list[int]) -> Fresh:
    """The candidates neither judged lately nor already delivered to the user."""
    left = [(o, d) for (o, d), seen in zip(candidates, judged, strict=True) if not seen]
    if not left:
        return {}
    bucket = bucket_of(user_id)
    already = await services.batch.run(
        lambda pipe: [pipe.sismember(offer_delivered(o.offer_id, bucket), user_id) for o, _ in left])
    fresh = {o.offer_id: (o, d) for (o, d), got in zip(left, already, strict=True) if not got}
    if len(fresh) < len(left):
        await _remember(services, user_id, [o.offer_id for o, _ in left if o.offer_id not in fresh])
    return fresh


async def _remember(services: Services, user_id: str, offer_ids: list[str]) -> None:
    if offer_ids:
        await _JUDGE(services.redis, [offers_judged(user_id)], [JUDGED_TTL_S, *offer_ids])


async def deliver_on_arrival(services: Services, user_id: str, lat: float, lng: float) -> int:
    """Push every live offer covering (lat, lng) whose audience holds the user, not yet sent."""
    candidates, judged = await _covering(services, user_id, lat, lng)
    if not candidates:
        return 0
    fresh = await _unjudged(services, user_id, candidates, judged)
    if not fresh:
        return 0
    # An offer for its store's followers names the store in the index: who does not follow it is
    # judged with the user's follows alone, and that offer is not read (most offers around a user
    # are of stores they do not follow)
    asked = {ObjectId(o.followers_of) for o, _ in fresh.values() if o.followers_of}
    followed = set((await followed_among(services, ObjectId(user_id), stores=asked))[1])
    maybe = [ObjectId(oid) for oid, (o, _) in fresh.items()
             if o.followers_of is None or ObjectId(o.followers_of) in followed]
    now = datetime.now(UTC)  # live_query's filter, applied to the shared point reads
    offers = [o for o in (await OFFERS.load(services, maybe)).values() if offer_status(o, now) == "live"]
    sent = 0
    wanted = await _wanted(services, user_id, offers, asked, followed)
    if wanted:
        stores = await STORES.load(services, {o["store_id"] for o in wanted})
        for offer in wanted:
            store = stores.get(offer["store_id"])
            if store is None:
                continue
            if offer.get("audience") == "nearby" and not await nearbycap.admit(services, offer, store, [user_id]):
                continue  # the day's places are taken (or the user opted out): judged, not sent
            sent += await send_offer(services, offer, store, [(user_id, fresh[str(offer["_id"])][1])])
    await _remember(services, user_id, list(fresh))  # judged: sent, not in the audience, or not live
    return sent


async def _wanted(services: Services, user_id: str, offers: list[dict[str, Any]], asked: set[ObjectId],
                  followed: set[ObjectId]) -> list[dict[str, Any]]:
    """The offers whose audience holds the user: the followed stores among all of them (``asked``
    already, with those ``followed``; one query for the rest, shared with the turn's other messages:
    :mod:`feed.followed`), and one (covered) check-in aggregation per visitors or regulars offer, run
    concurrently (after one read of their stores' time zones: regulars count store-local days).
    ``nearby`` holds everyone (its cap is applied by the caller, to offers about to be sent)."""
    store_ids = {o["store_id"] for o in offers if audience_of_offer(o).kind == "followers"} - asked
    followed = followed | set((await followed_among(services, ObjectId(user_id), stores=store_ids))[1])
    visits = [o for o in offers if audience_of_offer(o).kind in ("visitors", "regulars")]
    zones = await STORES.load(services, {o["store_id"] for o in visits})
    held = await asyncio.gather(*(members_among(services, zones.get(o["store_id"], {"_id": o["store_id"]}),
                                                audience_of_offer(o), [user_id]) for o in visits))
    by_visits = {o["_id"] for o, members in zip(visits, held, strict=True) if user_id in members}
    out = []
    for offer in offers:
        kind = audience_of_offer(offer).kind
        if (kind == "nearby" or (kind == "followers" and offer["store_id"] in followed)
                or offer["_id"] in by_visits):
            out.append(offer)
    return out
