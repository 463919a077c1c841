"""The live-offer index in Redis, for followers who come within an offer's radius later.

``{offers}:live`` is a GEO set of offer ids at their store's point; ``{offers}:live:meta`` holds
``"{radius_m}:{expires_ms}"`` per offer; ``{offers}:live:followers`` the store's id of an offer whose
audience is the store's followers (no entry for another audience, nor for one registered before
the hash was kept: both mean "read the offer to know its audience"); ``{offers}:live:version``
moves on every change of the index. A location update asks for the offers whose radius covers
the point (:func:`covering`, or :mod:`offers.arrival` through the cache below).

The work per location message is bounded whatever one merchant publishes:

* one GEOSEARCH looks at the :data:`SCAN_CAP` offers nearest to the point's cell (``COUNT``), and
  one round trip reads their radius, expiry and followers' store (an HMGET of each hash);
* a :class:`LiveCells` cache (per process, one entry per geohash cell of precision
  :data:`CELL_PRECISION`, about 1.2 x 0.6 km) keeps that answer for :data:`CELL_TTL_S` seconds
  while the index version is unchanged, so most messages cost a GET of the version (in the
  round trip that also reads the user's judgements: :mod:`offers.arrival`) and a filter in memory.

Expired entries are dropped when a cell is read from Redis and by :func:`sweep`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import cast

from geo.cells import bounds, encode
from geo.distance import fast_m
from solomo.core import timeutil
from solomo.core.keys import LIVE_OFFERS, LIVE_OFFERS_FOLLOWERS, LIVE_OFFERS_META, LIVE_OFFERS_VERSION
from solomo.core.redistypes import RedisClient

MAX_RADIUS_M = 5000
SCAN_CAP = 200
"""The most offers one location message looks at: the nearest to its cell. With the per-store
limits (5 live) a crowd of stores this size around one point is already far beyond real use."""
CELL_PRECISION = 6
CELL_TTL_S = 5.0
MAX_CELLS = 4096
MAX_LAT = 85.05112878


@dataclass(frozen=True)
class LiveOffer:
    offer_id: str
    lat: float
    lng: float
    radius_m: float
    expires_ms: int
    followers_of: str | None = None
    """The store whose followers are the offer's audience; None for another audience (or unknown)."""


@dataclass
class _Entry:
    version: str | None
    fetched: float
    offers: list[LiveOffer]


class LiveCells:
    """Per-process cache: geohash cell → the live offers within reach of any point in it."""

    def __init__(self, ttl_s: float = CELL_TTL_S, max_cells: int = MAX_CELLS) -> None:
        self.ttl_s = ttl_s
        self.max_cells = max_cells
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def recent(self, cell: str) -> tuple[str | None, list[LiveOffer]] | None:
        """The cell's ``(index version, offers)`` if read less than ``ttl_s`` ago, whatever the
        version now: a guess its caller confirms with the version it reads (:mod:`offers.arrival`)."""
        entry = self._entries.get(cell)
        if entry is None or time.monotonic() - entry.fetched > self.ttl_s:
            return None
        self._entries.move_to_end(cell)
        return entry.version, entry.offers

    def put(self, cell: str, version: str | None, offers: list[LiveOffer]) -> None:
        self._entries[cell] = _Entry(version, time.monotonic(), offers)
        self._entries.move_to_end(cell)
        while len(self._entries) > self.max_cells:
            self._entries.popitem(last=False)


async def register(redis: RedisClient, offer_id: str, lat: float, lng: float, radius_m: int, expires_ms: int,
                   followers_of: str | None) -> None:
    """Adds (or moves) a live offer; ``followers_of``: :func:`offers.audiences.followers_store`."""
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.geoadd(LIVE_OFFERS, (lng, lat, offer_id))
        pipe.hset(LIVE_OFFERS_META, offer_id, f"{radius_m}:{expires_ms}")
        if followers_of:
            pipe.hset(LIVE_OFFERS_FOLLOWERS, offer_id, followers_of)
        else:
            pipe.hdel(LIVE_OFFERS_FOLLOWERS, offer_id)
        pipe.incr(LIVE_OFFERS_VERSION)
        await pipe.execute()


async def unregister(redis: RedisClient, offer_ids: list[str]) -> None:
    if offer_ids:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zrem(LIVE_OFFERS, *offer_ids)
            pipe.hdel(LIVE_OFFERS_META, *offer_ids)
            pipe.hdel(LIVE_OFFERS_FOLLOWERS, *offer_ids)
            pipe.incr(LIVE_OFFERS_VERSION)
            await pipe.execute()


async def read_cell(redis: RedisClient, cell: str, now: int) -> list[LiveOffer]:
    """The :data:`SCAN_CAP` live offers nearest to the cell's centre that could cover a point in it."""
    south, west, north, east = bounds(cell)
    lat, lng = max(-MAX_LAT, min(MAX_LAT, (south + north) / 2)), (west + east) / 2
    reach = MAX_RADIUS_M + fast_m(south, west, north, east) / 2
    found = await redis.geosearch(LIVE_OFFERS, longitude=lng, latitude=lat, radius=reach, unit="m",
                                  sort="ASC", count=SCAN_CAP, withcoord=True)
    if not found:
        return []
    rows = cast(list[tuple[str, tuple[float, float]]], found)  # withcoord: (member, (lng, lat)), decoded
    ids = [offer_id for offer_id, _ in rows]
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hmget(LIVE_OFFERS_META, ids)
        pipe.hmget(LIVE_OFFERS_FOLLOWERS, ids)
        metas, stores = cast(tuple[list[str | None], list[str | None]], await pipe.execute())
    out: list[LiveOffer] = []
    stale: list[str] = []
    for (offer_id, (o_lng, o_lat)), meta, store in zip(rows, metas, stores, strict=True):
        radius, _, expires = (meta or "").partition(":")
        if meta is None or int(expires) <= now:
            stale.append(offer_id)
        else:
            out.append(LiveOffer(offer_id, float(o_lat), float(o_lng), float(radius), int(expires), store))
    await unregister(redis, stale)
    return out


def cell_at(lat: float, lng: float) -> str:
    """The cache's cell holding the point."""
    return encode(max(-MAX_LAT, min(MAX_LAT, lat)), lng, CELL_PRECISION)


def within(offers: list[LiveOffer], lat: float, lng: float, now_ms: int) -> list[tuple[LiveOffer, float]]:
    """``(offer, distance m)`` of the unexpired ``offers`` whose radius covers the point."""
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    out: list[tuple[LiveOffer, float]] = []
    for offer in offers:
        if offer.expires_ms > now_ms:
            dist = fast_m(lat, lng, offer.lat, offer.lng)
            if dist <= offer.radius_m:
                out.append((offer, dist))
    return out


async def covering(redis: RedisClient, lat: float, lng: float, now_ms: int | None = None) -> list[tuple[str, float]]:
    """``(offer id, distance m)`` of live offers whose radius covers the point (at most
    :data:`SCAN_CAP`), read from Redis (a location message reads through its process's
    :class:`LiveCells`: :mod:`offers.arrival`)."""
    now = timeutil.now_ms() if now_ms is None else now_ms
    offers = await read_cell(redis, cell_at(lat, lng), now)
    return [(offer.offer_id, dist) for offer, dist in within(offers, lat, lng, now)]


async def sweep(redis: RedisClient, now_ms: int | None = None) -> int:
    """Drop expired offers from the index; returns how many."""
    now = timeutil.now_ms() if now_ms is None else now_ms
    expired: list[str] = []
    async for offer_id, meta in redis.hscan_iter(LIVE_OFFERS_META, count=500):
        if int(meta.partition(":")[2]) <= now:
            expired.append(offer_id)
    await unregister(redis, expired)
    # a followers' store whose offer has no meta was left by code that did not know the hash (a
    # rollback's processes unregistering): dropped, so the hash holds indexed offers only. At worst
    # this drops one an offer registered meanwhile, which arrivals then read: never a wrong judgement
    named = [offer_id async for offer_id, _ in redis.hscan_iter(LIVE_OFFERS_FOLLOWERS, count=500)]
    for start in range(0, len(named), 500):
        part = named[start:start + 500]
        metas = cast(list[str | None], await redis.hmget(LIVE_OFFERS_META, part))
        orphans = [offer_id for offer_id, meta in zip(part, metas, strict=True) if meta is None]
        if orphans:
            await redis.hdel(LIVE_OFFERS_FOLLOWERS, *orphans)
    return len(expired)
