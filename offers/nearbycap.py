"""The limits of a ``nearby`` offer for users who do not follow its store.

A non-follower receives at most :data:`PER_DAY` ``nearby`` offers a day (the store's local day),
and none once they set ``offers_from_unfollowed: false`` (:mod:`profiles.profile`). The store's
followers are not limited: they asked for its offers.

The count is a Redis set per user and day holding the offer ids that took a place
(:func:`solomo.core.keys.nearby_offers_day`, in the user's bucket slot). One script per bucket
admits a user when the offer already reached them (its dedupe set, same slot) or already holds a
place in their day, else takes a place if one is left. So admission is atomic (two stores'
concurrent pushes cannot both take the third place) and idempotent: a run killed between
admitting and publishing, and run again, finds its places taken by this very offer and uses them,
never a second one. A place taken for an offer whose publish then never happens (the offer ended
in between) stays taken for that day: the cap errs on the side of fewer messages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from checkins.localtime import local_day
from offers.audiences import followers_among
from solomo.core.ids import maybe_id
from solomo.core.keys import by_bucket, nearby_offers_day, offer_delivered
from solomo.core.scripts import LuaScript
from solomo.core.services import Services

PER_DAY = 3
DAY_TTL_S = 2 * 86400
"""A day's set outlives the day in every time zone, then goes."""

_ADMIT = LuaScript("offers.nearby_admit", """
-- KEYS[1]: the offer's dedupe set of this bucket; KEYS[1 + i]: user i's nearby set of the day
-- ARGV[1]: offer id; ARGV[2]: places a day; ARGV[3]: TTL (s); ARGV[3 + i]: user i's id
local delivered = KEYS[1]
local admitted = {}
for i = 2, #KEYS do
  local uid = ARGV[i + 2]
  local day = KEYS[i]
  if redis.call('SISMEMBER', delivered, uid) == 1 or redis.call('SISMEMBER', day, ARGV[1]) == 1 then
    admitted[#admitted + 1] = uid
  elseif redis.call('SCARD', day) < tonumber(ARGV[2]) then
    redis.call('SADD', day, ARGV[1])
    redis.call('EXPIRE', day, tonumber(ARGV[3]))
    admitted[#admitted + 1] = uid
  end
end
return admitted
""")


async def opted_out(services: Services, user_ids: list[str]) -> set[str]:
    """Which of ``user_ids`` refuse offers from stores they do not follow."""
    oids = [oid for oid in (maybe_id(u) for u in user_ids) if oid is not None]
    if not oids:
        return set()
    cursor = services.db.users.find({"_id": {"$in": oids}, "offers_from_unfollowed": False}, {"_id": 1})
    return {str(d["_id"]) for d in await cursor.to_list(None)}


async def admit(services: Services, offer: dict[str, Any], store: dict[str, Any], user_ids: list[str],
                now: datetime | None = None) -> set[str]:
    """Of the reachable candidates of a ``nearby`` offer, those it may reach: every follower of
    the store, and the non-followers who did not opt out and still have a place today (taken now)."""
    if not user_ids:
        return set()
    followers = await followers_among(services, store["_id"], user_ids)
    others = [u for u in user_ids if u not in followers]
    if others:
        refused = await opted_out(services, others)
        others = [u for u in others if u not in refused]
    return followers | await _take_places(services, str(offer["_id"]), local_day(store, now or datetime.now(UTC)),
                                          others)


async def _take_places(services: Services, offer_id: str, day: str, user_ids: list[str]) -> set[str]:
    if not user_ids:
        return set()
    async with services.redis.pipeline(transaction=False) as pipe:
        for bucket, uids in by_bucket(user_ids).items():
            keys = [offer_delivered(offer_id, bucket), *(nearby_offers_day(u, day) for u in uids)]
            _ADMIT.queue(pipe, keys, [offer_id, PER_DAY, DAY_TTL_S, *uids])
        results = await pipe.execute()
    return {str(uid) for admitted in results for uid in admitted}


def is_nearby(offer: dict[str, Any]) -> bool:
    return offer.get("audience") == "nearby"

