"""Store search's first page near a point from Redis: each tier's stores as a GEO set.

Why: the first page of a store search near a point was one ``$nearSphere`` ``find`` per tier, and
``$nearSphere`` reads in rings whose second is far wider than a page needs (``咖啡`` on 100,000
stores fetched 129 documents for 22 rows, 1.4–1.9 ms of mongod a search: docs/benchmarks.md). The
stores matching one tier's filter are few and change rarely, so they are kept as a GEO set, and a
page is ``GEOSEARCH … ASC COUNT`` on it, ranked exactly here — the Redis GEO reasoning of
:mod:`checkins.nearby` (exact spherical distances from the member's exact position, complete below
the last hit's distance less Redis's rounding), first within the circle the set's last page needed
(:mod:`geo.reach`), widened when that comes back short.

A set is ``ss:{<digest of the filter>}`` (:func:`solomo.core.keys.store_tier_set`): the members are
:func:`checkins.geoindex.member` strings, plus :data:`LABEL` whose score is the stores generation
(:data:`solomo.core.keys.STORES_SEARCH_GEN`) the set was built at, and :data:`TOO_MANY` for a tier
with more than :data:`MAX_MEMBERS` stores (then MongoDB serves it). A search reads the generation,
each tier's label and its nearest members in one round trip; a set labelled with an older generation
(or missing) is built again from MongoDB — into a scratch key renamed over it, so a reader sees a
whole set or the old one, and racing builders leave a set whose label tells its own generation.

**Every committed change of a store's name, position or category, and every new store, calls**
:func:`stores_changed` (``create_store``, :func:`search.stores.reindex_store`, which every edit calls,
the backfill): the generation moves and every set is stale at once. Stores are never deleted. A
change whose process died before the call is seen when the set expires (:data:`SET_TTL_S`).

Bounded: a set holds at most :data:`MAX_MEMBERS` stores and lives :data:`SET_TTL_S`; the builds one
account causes are rate-limited (``search_set_build``: past it, MongoDB answers); concurrent
searches of one process share a build.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
from collections.abc import Callable
from typing import Any

import orjson
from bson import ObjectId
from redis.exceptions import RedisError

from checkins import geoindex
from geo import reach
from solomo.core import ratelimit
from solomo.core.errors import RateLimited
from solomo.core.keys import STORES_SEARCH_GEN, store_tier_set
from solomo.core.metrics import STORE_SEARCH_SET_BUILDS
from solomo.core.services import Services

log = logging.getLogger("search.tiersets")

MAX_MEMBERS = 8000
"""Stores one set may hold (about 0.8 MB); a tier with more is read from MongoDB."""
MAX_RADIUS_M = 50_000.0
SET_TTL_S = 300
LABEL = "~gen"
TOO_MANY = "~many"
SPARE = 8
"""Members asked for beyond the rows a tier must give: the nearest within Redis's rounding of the
last hit are not surely complete (:mod:`checkins.nearby`)."""
MAX_COUNT = 512
"""A tier whose complete candidates stay short of the page at this ``COUNT`` leaves it to MongoDB."""
BUILD_BATCH = 2000

REACH = reach.Reach()
"""How far each set's last first page reached (:mod:`geo.reach`: the first circle asked of Redis)."""
_building: dict[str, asyncio.Future[None]] = {}
"""Builds in flight in this process, by set key: concurrent searches wait for one."""

Row = dict[str, Any]
Rank = Callable[[int, int], int]


async def stores_changed(services: Services) -> None:
    """After a committed change a search could see (a new store; a name, position or category).
    Best effort, as the change is committed: unannounced, it is seen when the sets expire."""
    try:
        await services.redis.incr(STORES_SEARCH_GEN)
    except (RedisError, OSError) as exc:
        log.warning("store search sets not marked stale (seen within %d s): %s", SET_TTL_S, exc)


def usable(lat: float, radius_m: float | None) -> bool:
    """Whether a search with this point and radius can be answered from the sets."""
    return radius_m is not None and radius_m <= MAX_RADIUS_M and geoindex.covers(lat, reach.redis_m(radius_m))


def set_key(query: dict[str, Any]) -> str:
    return store_tier_set(hashlib.sha1(orjson.dumps(query, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20])


def _search(pipe: Any, key: str, lat: float, lng: float, searched_m: float, count: int) -> None:
    """Queues the ``count`` members nearest the point within ``searched_m`` metres (exact), nearest first."""
    pipe.execute_command("GEOSEARCH", key, "FROMLONLAT", lng, lat, "BYRADIUS", reach.redis_m(searched_m), "m",
                         "ASC", "COUNT", count, "WITHDIST")


async def first_page(services: Services, tiers: list[dict[str, Any] | None], *, lat: float, lng: float,
                     radius_m: float, want: int, rank: Rank, principal: Any) -> list[Row] | None:
    """The first ``want + 1`` rows of exact tiers near the point, as :func:`search.tiers.by_distance`'s
    first page reads them from MongoDB (``_id``, ``distance_m``, ``_score`` = ``rank(tier, mm)``),
    sorted by (score, id); None when MongoDB must answer (a tier too big, a build refused, a tie of
    distances at the page's end, or candidates short of the page)."""
    live = [(t, query) for t, query in enumerate(tiers) if query is not None]
    keys = [set_key(query) for _, query in live]
    count = want + 1 + SPARE
    first_m = [REACH.first(key, radius_m) for key in keys]

    def queue(pipe: Any) -> None:
        pipe.get(STORES_SEARCH_GEN)
        for key, searched_m in zip(keys, first_m, strict=True):
            pipe.zmscore(key, [LABEL, TOO_MANY])
            _search(pipe, key, lat, lng, searched_m, count)

    replies = await services.batch.run(queue)
    generation = int(replies[0] or 0)
    rows: list[Row] = []
    for i, ((t, query), key) in enumerate(zip(live, keys, strict=True)):
        label, too_many = replies[1 + 2 * i]
        hits: list[geoindex.Hit] | None = geoindex.parse_hits(replies[2 + 2 * i])
        if label is None or int(label) != generation:
            if not await _build_once(services, key, query, generation, principal):
                return None
            label, too_many = await services.redis.zmscore(key, [LABEL, TOO_MANY])
            if label is None or int(label) != generation:  # a refused build, or a newer one since
                return None
            hits = None
        if too_many is not None:
            return None
        need = want + 1 - len(rows)
        found = await _nearest(services, key, hits, lat=lat, lng=lng, radius_m=radius_m, need=need, count=count,
                               searched_m=first_m[i])
        if found is None:
            return None
        for d, hex_id in found:
            rows.append({"_id": ObjectId(hex_id), "distance_m": d, "_score": rank(t, round(d * 1000))})
        if len(rows) > want:
            break
    if len(rows) > want and rows[want]["_score"] == rows[want - 1]["_score"]:
        return None
    return sorted(rows, key=lambda r: (r["_score"], r["_id"]))


async def _nearest(services: Services, key: str, hits: list[geoindex.Hit] | None, *, lat: float, lng: float,
                   radius_m: float, need: int, count: int, searched_m: float) -> list[tuple[float, str]] | None:
    """A tier's ``need`` nearest stores within the radius (exact distance, id as hex), or all it has;
    ``hits`` is the reply of a search within ``searched_m`` already made (None: none yet)."""
    while True:
        if hits is None:
            hits = await _read(services, key, lat, lng, searched_m, count)
        below = reach.complete_below(len(hits), count, hits[-1][1] if hits else None, searched_m, radius_m)
        stores = [hit for hit in hits if not hit[0].startswith("~")]  # the label, at whatever place its score encodes
        found = [(d, hex_id) for d, hex_id, _, _ in geoindex.measured(lat, lng, stores) if d <= radius_m and d < below]
        found.sort()
        if len(found) >= need or below == math.inf:
            REACH.learn(key, found[need - 1][0] if len(found) >= need else radius_m)
            return found[:need]
        wider = reach.widen(len(hits), count, searched_m, radius_m, MAX_COUNT)
        if wider is None:
            return None
        (count, searched_m), hits = wider, None


async def _read(services: Services, key: str, lat: float, lng: float, searched_m: float,
                count: int) -> list[geoindex.Hit]:
    def queue(pipe: Any) -> None:
        _search(pipe, key, lat, lng, searched_m, count)

    return geoindex.parse_hits((await services.batch.run(queue))[0])


async def _build_once(services: Services, key: str, query: dict[str, Any], generation: int, principal: Any) -> bool:
    """Builds the set, or waits for this process's build of it; False when the account may not build.

    The build is registered before anything is awaited, so concurrent searches start one."""
    running = _building.get(key)
    if running is not None:
        await asyncio.shield(running)  # its error, if any, is this search's too
        return True
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    _building[key] = future
    try:
        label = await services.redis.zscore(key, LABEL)
        if label is not None and int(label) >= generation:
            return True  # built since this search read it (by this process or another)
        try:
            await ratelimit.enforce(services, "search_set_build", principal)
        except RateLimited:
            return False  # the waiters find the set still stale, and leave the page to MongoDB
        await build(services, key, query, generation)
        return True
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: there may be no waiter
        raise
    finally:
        if not future.done():
            future.set_result(None)
        if _building.get(key) is future:
            del _building[key]


async def build(services: Services, key: str, query: dict[str, Any], generation: int) -> None:
    """The set of the stores matching ``query``, labelled ``generation``, replacing any older one.

    The generation is read before MongoDB: a change committed meanwhile moves it past this label."""
    docs = await services.db.stores.find(query, {"location": 1}).limit(MAX_MEMBERS + 1).to_list(None)
    scratch = f"{key}:build:{secrets.token_hex(6)}"
    async with services.redis.pipeline(transaction=False) as pipe:
        pipe.zadd(scratch, {LABEL: generation})
        pipe.expire(scratch, SET_TTL_S)  # a builder that dies here leaves nothing for long
        if len(docs) > MAX_MEMBERS:
            pipe.zadd(scratch, {TOO_MANY: 0})
        else:
            for start in range(0, len(docs), BUILD_BATCH):
                args = geoindex.add_args(docs[start:start + BUILD_BATCH])
                if args:
                    pipe.execute_command("GEOADD", scratch, *args)
        pipe.execute_command("RENAME", scratch, key)  # redis-py blocks its rename() in a cluster pipeline
        await pipe.execute()
    STORE_SEARCH_SET_BUILDS.inc()
