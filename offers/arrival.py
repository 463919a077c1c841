"""Users of an offer's audience who come within its radius later get it once, when their location arrives.

Called by the WebSocket session for every ``location`` message (a hub location listener). Its
work is bounded whatever the number of live offers around:

* :func:`offers.live.covering` looks at no more than :data:`offers.live.SCAN_CAP` offers and
  answers most messages from its per-cell cache;
* offers already judged for this user (sent, not for them, no longer live) are
  remembered in ``offers:judged:{user}`` for :data:`JUDGED_TTL_S`, so MongoDB is asked only about
  offers new to the user — three queries (offers, follows, stores) of at most the cap each (each
  shared by the messages of one event-loop turn), plus
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
from solomo.core.idloader import IdLoads
from solomo.core.keys import bucket_of, offer_delivered, offers_judged
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


async def _unjudged(services: Services, user_id: str, candidates: list[tuple[str, float]]) -> dict[str, float]:
    """The candidates neither judged lately nor already delivered to the user."""
    judged = await services.redis.smismember(offers_judged(user_id), [o for o, _ in candidates])
    left = [(o, d) for (o, d), seen in zip(candidates, judged, strict=True) if not seen]
    if not left:
        return {}
    bucket = bucket_of(user_id)
    async with services.redis.pipeline(transaction=False) as pipe:
        for offer_id, _ in left:
            pipe.sismember(offer_delivered(offer_id, bucket), user_id)
        already = await pipe.execute()
    fresh = {o: d for (o, d), got in zip(left, already, strict=True) if not got}
    if len(fresh) < len(left):
        await _remember(services, user_id, [o for o, _ in left if o not in fresh])
    return fresh


async def _remember(services: Services, user_id: str, offer_ids: list[str]) -> None:
    if offer_ids:
        key = offers_judged(user_id)
        async with services.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, *offer_ids)
            pipe.expire(key, JUDGED_TTL_S)
            await pipe.execute()


async def deliver_on_arrival(services: Services, user_id: str, lat: float, lng: float) -> int:
    """Push every live offer covering (lat, lng) whose audience holds the user, not yet sent."""
    candidates = await live.covering(services.redis, lat, lng, cells=live_cells(services))
    if not candidates:
        return 0
    fresh = await _unjudged(services, user_id, candidates)
    if not fresh:
        return 0
    now = datetime.now(UTC)  # live_query's filter, applied to the shared point reads
    offers = [o for o in (await OFFERS.load(services, [ObjectId(o) for o in fresh])).values()
              if offer_status(o, now) == "live"]
    sent = 0
    wanted = await _wanted(services, user_id, offers)
    if wanted:
        stores = await STORES.load(services, {o["store_id"] for o in wanted})
        for offer in wanted:
            store = stores.get(offer["store_id"])
            if store is None:
                continue
            if offer.get("audience") == "nearby" and not await nearbycap.admit(services, offer, store, [user_id]):
                continue  # the day's places are taken (or the user opted out): judged, not sent
            sent += await send_offer(services, offer, store, [(user_id, fresh[str(offer["_id"])])])
    await _remember(services, user_id, list(fresh))  # judged: sent, not in the audience, or not live
    return sent


async def _wanted(services: Services, user_id: str, offers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The offers whose audience holds the user: one query for the followed stores among all of
    them (shared with the turn's other messages: :mod:`feed.followed`), and one (covered) check-in
    aggregation per visitors or regulars offer, run concurrently (after one read of their stores'
    time zones: regulars count store-local days).
    ``nearby`` holds everyone (its cap is applied by the caller, to offers about to be sent)."""
    store_ids = {o["store_id"] for o in offers if audience_of_offer(o).kind == "followers"}
    followed = set((await followed_among(services, ObjectId(user_id), stores=store_ids))[1])
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
