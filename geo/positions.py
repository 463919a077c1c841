"""Users' live positions: the Redis GEO set ``{pos}:users`` plus ``{pos}:seen`` (last update, seconds).

A position counts only while it is fresh (updated within ``max_age_s``): reads filter stale
entries out, and :func:`expire_positions` (a periodic sweep) deletes them, so a user who left
is not "nearby" forever even if no sweep has run yet.
"""

from __future__ import annotations

import time
from typing import Any, cast

from solomo.core.keys import POSITIONS, POSITIONS_SEEN
from solomo.core.redistypes import RedisClient
from solomo.core.scripts import LuaScript

MAX_RADIUS_M = 50_000

# KEYS: the GEO set, the last-seen zset (one hash tag). ARGV: cutoff, batch size.
_EXPIRE = LuaScript("positions_expire", """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then
  redis.call('ZREM', KEYS[1], unpack(ids))
  redis.call('ZREM', KEYS[2], unpack(ids))
end
return #ids
""")


async def set_position(redis: RedisClient, user_id: str, lat: float, lng: float, now: float | None = None) -> None:
    """Record where the user is now (``lat`` in ±85.05: the GEO set's range; callers validate ±90)."""
    lat = max(-85.05112878, min(85.05112878, lat))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.geoadd(POSITIONS, (lng, lat, user_id))
        pipe.zadd(POSITIONS_SEEN, {user_id: time.time() if now is None else now})
        await pipe.execute()


async def get_position(
    redis: RedisClient, user_id: str, max_age_s: float, now: float | None = None
) -> tuple[float, float] | None:
    """``(lat, lng)`` if the user has a fresh position."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.geopos(POSITIONS, user_id)
        pipe.zscore(POSITIONS_SEEN, user_id)
        (pos,), seen = await pipe.execute()
    cutoff = (time.time() if now is None else now) - max_age_s
    if pos is None or seen is None or float(seen) < cutoff:
        return None
    return float(pos[1]), float(pos[0])


async def forget(redis: RedisClient, user_id: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(POSITIONS, user_id)
        pipe.zrem(POSITIONS_SEEN, user_id)
        await pipe.execute()


async def users_within(
    redis: RedisClient, lat: float, lng: float, radius_m: float, max_age_s: float, now: float | None = None
) -> list[tuple[str, float]]:
    """Users with a fresh position within ``radius_m`` of the point, nearest first, with distances."""
    radius = min(float(radius_m), MAX_RADIUS_M)
    found = await redis.geosearch(POSITIONS, longitude=lng, latitude=lat, radius=radius, unit="m",
                                  sort="ASC", withdist=True)
    if not found:
        return []
    pairs = cast(list[list[Any]], found)  # withdist: [member, distance] rows
    cutoff = (time.time() if now is None else now) - max_age_s
    out: list[tuple[str, float]] = []
    for start in range(0, len(found), 2000):
        chunk = pairs[start:start + 2000]
        seen = await redis.zmscore(POSITIONS_SEEN, [member for member, _ in chunk])
        out.extend((str(member), float(dist)) for (member, dist), ts in zip(chunk, seen, strict=True)
                   if ts is not None and float(ts) >= cutoff)
    return out


async def expire_positions(redis: RedisClient, max_age_s: float, now: float | None = None, batch: int = 1000) -> int:
    """Delete positions older than ``max_age_s``; returns how many were removed."""
    cutoff = (time.time() if now is None else now) - max_age_s
    removed = 0
    while True:
        n = int(await _EXPIRE(redis, [POSITIONS, POSITIONS_SEEN], [cutoff, batch]))
        removed += n
        if n < batch:
            return removed
