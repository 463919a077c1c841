"""The live-offer index in Redis, for followers who come within an offer's radius later.

``offers:live`` is a GEO set of offer ids at their store's point; ``offers:live:meta`` holds
``"{radius_m}:{expires_ms}"`` per offer. A location update asks :func:`covering` for the offers
whose radius covers the point: one GEOSEARCH (bounded by the largest radius) and one HMGET,
no MongoDB. Expired entries are dropped when met and by :func:`sweep`.
"""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from solomo.core import timeutil
from solomo.core.keys import LIVE_OFFERS, LIVE_OFFERS_META

MAX_RADIUS_M = 5000


async def register(redis: Redis, offer_id: str, lat: float, lng: float, radius_m: int, expires_ms: int) -> None:
    lat = max(-85.05112878, min(85.05112878, lat))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.geoadd(LIVE_OFFERS, (lng, lat, offer_id))
        pipe.hset(LIVE_OFFERS_META, offer_id, f"{radius_m}:{expires_ms}")
        await pipe.execute()


async def unregister(redis: Redis, offer_ids: list[str]) -> None:
    if offer_ids:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zrem(LIVE_OFFERS, *offer_ids)
            pipe.hdel(LIVE_OFFERS_META, *offer_ids)
            await pipe.execute()


async def covering(redis: Redis, lat: float, lng: float, now_ms: int | None = None) -> list[tuple[str, float]]:
    """``(offer id, distance m)`` of live offers whose radius covers the point."""
    lat = max(-85.05112878, min(85.05112878, lat))
    found = await redis.geosearch(LIVE_OFFERS, longitude=lng, latitude=lat, radius=MAX_RADIUS_M, unit="m",
                                  withdist=True)
    if not found:
        return []
    rows = cast(list[tuple[str, float]], found)  # withdist: (member, distance) pairs, decoded
    now = timeutil.now_ms() if now_ms is None else now_ms
    metas = cast(list[str | None], await redis.hmget(LIVE_OFFERS_META, [offer_id for offer_id, _ in rows]))
    out: list[tuple[str, float]] = []
    stale: list[str] = []
    for (offer_id, dist), meta in zip(rows, metas, strict=True):
        if meta is None:
            stale.append(offer_id)
            continue
        radius, _, expires = meta.partition(":")
        if int(expires) <= now:
            stale.append(offer_id)
        elif float(dist) <= float(radius):
            out.append((offer_id, float(dist)))
    await unregister(redis, stale)
    return out


async def sweep(redis: Redis, now_ms: int | None = None) -> int:
    """Drop expired offers from the index; returns how many."""
    now = timeutil.now_ms() if now_ms is None else now_ms
    expired: list[str] = []
    async for offer_id, meta in redis.hscan_iter(LIVE_OFFERS_META, count=500):
        if int(meta.partition(":")[2]) <= now:
            expired.append(offer_id)
    await unregister(redis, expired)
    return len(expired)
