"""The stores' Redis GEO index: candidates for "stores near a point" without MongoDB's ``$geoNear``.

Profiled under the nearby benchmark, one ``$geoNear`` (limit 21, 1 km, 100,000 stores) cost
MongoDB about 8 ms of CPU; ``GEOSEARCH … ASC COUNT`` answers the same in well under 1 ms.

The index is a *superset* of MongoDB's stores: :func:`add` runs before the store's insert (and
:func:`discard` after a refused one), so a committed store is never missing; a member whose store
does not exist (a create that crashed in between) is dropped when the page is read from MongoDB.
A member is ``<id>|<lng>|<lat>`` with the exact coordinates (``repr`` round-trips a float), so
distances are computed from the true position, not Redis's 52-bit geohash of it.

Markers (one hash tag with the sets, so they live and die together):

* ``ready`` — the index holds every store. Missing (a fresh or wiped Redis): reads use MongoDB and
  one process rebuilds the index in the background (``lock``), then sets ``ready``.
* ``fresh`` — expires after :data:`FRESH_S`; the next read then re-adds every store in the
  background while still reading the index (``GEOADD`` only adds: a partial loss is repaired).

A store edited by its owner (``PATCH /v1/stores/{id}``, :mod:`checkins.storeedit`) keeps the superset:
:func:`add` of the new document before the MongoDB update, :func:`moved` (old members that are not
new ones) after it; a read in between sees both members and keeps only the one at the document's
position (:mod:`checkins.nearby`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from geo.distance import spherical_m
from solomo.core.keys import STORES_GEO_FRESH, STORES_GEO_LOCK, STORES_GEO_READY, stores_geo

if TYPE_CHECKING:
    from solomo.core.services import Services

log = logging.getLogger("checkins.geoindex")
FRESH_S = 3600
LOCK_TTL_S = 120
REBUILD_BATCH = 5000
_background: set[asyncio.Task[None]] = set()  # strong references to running rebuilds


def member(doc: dict[str, Any]) -> str:
    lng, lat = doc["location"]["coordinates"]
    return f"{doc['_id']}|{float(lng)!r}|{float(lat)!r}"


def measured(lat: float, lng: float, hits: list[Hit]) -> list[tuple[float, str, float, float]]:
    """(exact spherical distance from the point, id as hex, lat, lng) of each hit's member
    (:func:`member`: ``<id>|<lng>|<lat>``), in the hits' order. The hex is enough to order and
    compare ids (hex order is ObjectId order), and costs no ObjectId for the members a page does
    not keep."""
    out = []
    for name, _ in hits:
        hex_id, lng_text, lat_text = name.split("|")
        member_lat, member_lng = float(lat_text), float(lng_text)
        out.append((spherical_m(lat, lng, member_lat, member_lng), hex_id, member_lat, member_lng))
    return out


GEO_MAX_LAT = 85.05112878
"""Redis GEO keeps only the Web Mercator band: a store nearer a pole is left out of the index, and
a search whose circle reaches past the band reads MongoDB instead (:func:`covers`)."""
DEGREE_M = 110_574.0
"""The shortest degree of latitude in metres: a circle of r metres spans at most r / this degrees."""


def in_band(lat: float) -> bool:
    return -GEO_MAX_LAT <= lat <= GEO_MAX_LAT


def covers(lat: float, radius_m: float) -> bool:
    """Whether every store within ``radius_m`` of a point at ``lat`` can be in the index."""
    return abs(lat) + radius_m / DEGREE_M < GEO_MAX_LAT


def add_args(docs: list[dict[str, Any]]) -> list[Any]:
    args: list[Any] = []
    for doc in docs:
        lng, lat = doc["location"]["coordinates"]
        if in_band(lat):  # else GEOADD would refuse the whole command (see GEO_MAX_LAT)
            args += [lng, lat, member(doc)]
    return args


async def add(services: Services, doc: dict[str, Any]) -> None:
    """Index one store (before its insert: see the module's note)."""
    if not add_args([doc]):
        return
    async with services.redis.pipeline(transaction=False) as pipe:
        for key in (stores_geo(None), stores_geo(doc.get("category", "other"))):
            pipe.execute_command("GEOADD", key, *add_args([doc]))
        await pipe.execute()


async def discard(services: Services, doc: dict[str, Any]) -> None:
    """Forget a store whose insert was refused (best effort: a leftover member is harmless)."""
    try:
        async with services.redis.pipeline(transaction=False) as pipe:
            for key in (stores_geo(None), stores_geo(doc.get("category", "other"))):
                pipe.zrem(key, member(doc))
            await pipe.execute()
    except Exception:  # the create's own error is what the client must see
        log.warning("could not drop store %s from the geo index", doc["_id"], exc_info=True)


def _entries(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(stores_geo(None), member(doc)), (stores_geo(doc.get("category", "other")), member(doc))}


async def moved(services: Services, old: dict[str, Any], new: dict[str, Any]) -> None:
    """After a committed edit of position or category: drop the old document's members that the new
    one does not have (best effort: a leftover is filtered out by the reads and by the next rebuild
    of a wiped index)."""
    stale = _entries(old) - _entries(new)
    if not stale:
        return
    try:
        async with services.redis.pipeline(transaction=False) as pipe:
            for key, name in stale:
                pipe.zrem(key, name)
            await pipe.execute()
    except Exception:  # the edit is committed; reads already ignore a member off the store's position
        log.warning("could not drop the old members of store %s", old["_id"], exc_info=True)


async def rebuild(services: Services) -> int:
    """Add every store of MongoDB to the index, then mark it ready and fresh; returns the count."""
    n = 0
    batch: list[dict[str, Any]] = []

    async def flush() -> None:
        by_key: dict[str, list[dict[str, Any]]] = {stores_geo(None): batch}
        for doc in batch:
            by_key.setdefault(stores_geo(doc.get("category", "other")), []).append(doc)
        async with services.redis.pipeline(transaction=False) as pipe:
            for key, docs in by_key.items():
                args = add_args(docs)
                if args:  # a batch of polar stores only has nothing to add
                    pipe.execute_command("GEOADD", key, *args)
            await pipe.execute()

    async for doc in services.db.stores.find({}, {"location": 1, "category": 1}):
        batch.append(doc)
        if len(batch) >= REBUILD_BATCH:
            await flush()
            n += len(batch)
            batch = []
    if batch:
        await flush()
        n += len(batch)
    async with services.redis.pipeline(transaction=False) as pipe:
        pipe.set(STORES_GEO_READY, "1")
        pipe.set(STORES_GEO_FRESH, "1", ex=FRESH_S)
        await pipe.execute()
    return n


async def _rebuild_in_background(services: Services) -> None:
    try:
        await rebuild(services)
    except Exception:  # reads keep using MongoDB; the lock expires and a later read retries
        log.warning("geo index rebuild failed", exc_info=True)
    finally:
        await services.redis.delete(STORES_GEO_LOCK)


def _search_args(category: str | None, lat: float, lng: float, radius_m: float, count: int) -> list[Any]:
    return ["GEOSEARCH", stores_geo(category), "FROMLONLAT", lng, lat, "BYRADIUS", radius_m, "m",
            "ASC", "COUNT", count, "WITHDIST"]


Hit = tuple[str, float]
"""A member and its distance by Redis's reckoning (metres)."""


def parse_hits(reply: list[Any]) -> list[Hit]:
    """A ``GEOSEARCH … WITHDIST`` reply as (member, Redis distance) pairs."""
    return [(name.decode() if isinstance(name, bytes) else name, float(dist)) for name, dist in reply]


async def search(services: Services, category: str | None, lat: float, lng: float, radius_m: float,
                 count: int) -> list[Hit]:
    """The ``count`` members nearest to the point within ``radius_m`` (Redis's distances), nearest first."""
    args = _search_args(category, lat, lng, radius_m, count)
    return parse_hits((await services.batch.run(lambda pipe: pipe.execute_command(*args)))[0])


async def search_if_usable(services: Services, category: str | None, lat: float, lng: float, radius_m: float,
                           count: int) -> list[Hit] | None:
    """:func:`search` in the same round trip as the markers; None when the index is not ready (read
    MongoDB). Starts a background rebuild (one per cluster) when the index is missing or due for repair."""
    def queue(pipe: Any) -> None:
        pipe.exists(STORES_GEO_READY)
        pipe.exists(STORES_GEO_FRESH)
        pipe.execute_command(*_search_args(category, lat, lng, radius_m, count))

    ready, fresh, reply = await services.batch.run(queue)
    if not (ready and fresh) and await services.redis.set(STORES_GEO_LOCK, "1", nx=True, ex=LOCK_TTL_S):
        task = asyncio.create_task(_rebuild_in_background(services), name="stores-geo-rebuild")
        _background.add(task)
        task.add_done_callback(_background.discard)
    return parse_hits(reply) if ready else None
