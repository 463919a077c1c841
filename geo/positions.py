"""Users' live positions: the Redis GEO set ``{pos}:users`` plus ``{pos}:seen`` (last update, seconds).

A position counts only while it is fresh (updated within ``max_age_s``): reads filter stale
entries out, and :func:`expire_positions` (a periodic sweep) deletes them, so a user who left
is not "nearby" forever even if no sweep has run yet.
"""

from __future__ import annotations

import time
from typing import Any, cast

from geo.distance import fast_m
from geo.privacy import coarsen
from solomo.core.keys import POSITIONS, POSITIONS_SEEN
from solomo.core.redistypes import RedisClient
from solomo.core.scripts import LuaScript

MAX_RADIUS_M = 50_000

# KEYS: the GEO set, the last-seen zset (one hash tag). ARGV: the user, lng, lat, the time seen.
_SET = LuaScript("position_set", """
redis.call('GEOADD', KEYS[1], ARGV[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
""")

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
    """Record where the user is now (``lat`` in ±85.05: the GEO set's range; callers validate ±90).

    One script, so the two writes are one step for readers and for :func:`expire_positions`, and
    its run shares a round trip with the turn's other Redis commands (every moving socket sends
    its location here: a pipeline of its own per message was a fifth of their cost in the soak)."""
    lat = max(-85.05112878, min(85.05112878, lat))
    await _SET(redis, (POSITIONS, POSITIONS_SEEN), (user_id, lng, lat, time.time() if now is None else now))


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
    """Users with a fresh position within ``radius_m`` of the point, nearest first, with distances.
    Their fixes decide: for choosing whom to send something, never for a figure shown to others
    (:func:`users_within_public`)."""
    radius = min(float(radius_m), MAX_RADIUS_M)
    found = await redis.geosearch(POSITIONS, longitude=lng, latitude=lat, radius=radius, unit="m",
                                  sort="ASC", withdist=True)
    rows = [(str(member), float(dist)) for member, dist in cast(list[list[Any]], found or [])]
    return await _fresh(redis, rows, max_age_s, now)


SNAP_REACH_M = 80.0
"""How far a fix can lie from its public position: half a grid cell's diagonal (half of 0.001° of
latitude and of longitude, at most 55.6 m each, 78.6 m together), rounded up."""


async def users_within_public(
    redis: RedisClient, lat: float, lng: float, radius_m: float, max_age_s: float, now: float | None = None
) -> list[tuple[str, float]]:
    """Users whose *public* position (the fix snapped to the grid, :mod:`geo.privacy`) is within
    ``radius_m`` of the point, nearest first, with those distances. What a count shown to someone
    else is made of (a merchant's audience preview): were it made of the fixes, a count asked at
    radius after radius, from store position after store position, would find a user's fix to the
    metre. On public positions it finds at most their grid point, which anyone may see."""
    radius = min(float(radius_m), MAX_RADIUS_M)
    found = await redis.geosearch(POSITIONS, longitude=lng, latitude=lat, radius=radius + SNAP_REACH_M, unit="m",
                                  sort="ASC", withcoord=True)
    rows: list[tuple[str, float]] = []
    for member, (fix_lng, fix_lat) in cast(list[list[Any]], found or []):
        shown_lat, shown_lng = coarsen(float(fix_lat), float(fix_lng))
        distance = fast_m(lat, lng, shown_lat, shown_lng)
        if distance <= radius:
            rows.append((str(member), distance))
    rows.sort(key=lambda row: row[1])
    return await _fresh(redis, rows, max_age_s, now)


async def _fresh(redis: RedisClient, rows: list[tuple[str, float]], max_age_s: float,
                 now: float | None) -> list[tuple[str, float]]:
    """The rows whose user's position is fresh (seen within ``max_age_s``), in their order."""
    cutoff = (time.time() if now is None else now) - max_age_s
    out: list[tuple[str, float]] = []
    for start in range(0, len(rows), 2000):
        chunk = rows[start:start + 2000]
        seen = await redis.zmscore(POSITIONS_SEEN, [member for member, _ in chunk])
        out.extend(row for row, ts in zip(chunk, seen, strict=True) if ts is not None and float(ts) >= cutoff)
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
