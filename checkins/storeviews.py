"""The store cache: each store's *view* (the contract's Store without its mayor's summary) kept in
Redis, so a page of nearby stores is one ``MGET`` instead of a MongoDB read and a render per store.

The profile of the nearby-stores benchmark (docs/benchmarks.md) had the page's store documents at
about a third of the request: the MongoDB read, decoding it, and shaping twenty Stores.

A view is ``{"_id", "mayor_id", "public"}`` (the ids as text: a page turns none of them into an
ObjectId, and a cursor only its last): ``public`` is the Store as :func:`render` hands it out (times
as text) but for ``mayor``, which is added per page from the mayor's user document (a rename or a
deletion then needs nothing here).

The mechanism is :mod:`solomo.core.viewcache`'s, and so is its rule, for stores: **every committed
change to a field a view holds calls** :func:`invalidate`: a check-in and bulk visits
(``checkins_count``, the mayor), a follow, an unfollow and an erasure (``followers_count``, the
mayor), an edit (name, address, place, category, radius, time zone), a mayor recount. Other fields
of the document (search keys, the seat's standings, offer and loyalty settings) are not in a view.
Only the nearby list reads views: a single store is read from MongoDB.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any

import orjson
from bson import ObjectId
from redis.exceptions import RedisError

from checkins.localtime import DEFAULT_TIMEZONE
from solomo.core.idloader import IdLoads
from solomo.core.jsonio import rfc3339
from solomo.core.keys import SUMMARIES_GEN, store_gen_key, store_view_key
from solomo.core.services import Services
from solomo.core.viewcache import View, ViewCache

log = logging.getLogger("solomo.checkins")

VIEW_TTL_S = 600
"""A view lives this long after it was stored (reads do not extend it)."""

PAGE_PROJECTION = {"search_keys": 0, "seat": 0}
"""What a view leaves out of a store document: the search index's ~100 keys and the mayor's seat
(decoding them was most of a MongoDB page read's cost; a page shows neither)."""

STORES_FOR_VIEWS = IdLoads("stores", PAGE_PROJECTION)
"""Stores read to fill their views: the misses of concurrent pages share one query."""


def to_view(doc: dict[str, Any]) -> View:
    """A store document → its view (a view is returned as is)."""
    if "public" in doc:
        return doc
    lng, lat = doc["location"]["coordinates"]
    mayor = doc.get("mayor_id")
    return {
        "_id": str(doc["_id"]),
        "mayor_id": str(mayor) if mayor is not None else None,
        "public": {
            "id": str(doc["_id"]),
            "name": doc["name"],
            "lat": lat,
            "lng": lng,
            "category": doc.get("category", "other"),
            "address": doc.get("address"),
            "owner_id": str(doc["owner_id"]),
            "checkin_radius_m": doc["checkin_radius_m"],
            "timezone": str(doc.get("timezone") or DEFAULT_TIMEZONE),
            "checkins_count": int(doc.get("checkins_count", 0)),
            "followers_count": int(doc.get("followers_count", 0)),
            "created_at": rfc3339(doc["created_at"]),
        },
    }


def render(view: View, mayor: dict[str, Any] | None) -> dict[str, Any]:
    """The contract's Store from a view and the mayor's summary (or None); a new dict."""
    return {**view["public"], "mayor": mayor}


def position_of(view: View) -> tuple[float, float]:
    """(lat, lng) as stored."""
    return float(view["public"]["lat"]), float(view["public"]["lng"])


def encode(view: View) -> bytes:
    return orjson.dumps(view)


@functools.lru_cache(maxsize=4096)
def _decoded(raw: str | bytes) -> View:
    view: View = orjson.loads(raw)
    return view


def decode(raw: str | bytes) -> View:
    """A stored view → the view; memoised by the stored text (a changed store is new text), handed
    out as a shallow copy (``public`` is shared: :func:`render` copies it)."""
    return dict(_decoded(raw))


VIEWS = ViewCache(view_key=store_view_key, gen_key=store_gen_key, documents=STORES_FOR_VIEWS, to_view=to_view,
                  encode=encode, decode=decode, ttl_s=VIEW_TTL_S, local_size=0)
"""No per-process memo of views under their generations (:class:`~solomo.core.viewcache.LocalViews`),
unlike posts: a store's view is small and a nearby page spreads over many stores, so reading each
view's generation beside cost more than the bodies it saved (nearby stores 0.28 → 0.26 of the
bare endpoint, four runs, docs/benchmarks.md); the decoding is memoised by the stored text instead."""


async def load(services: Services, store_ids: list[ObjectId]) -> dict[ObjectId, View]:
    """Views of ``store_ids`` (missing stores left out): one pipeline, MongoDB for the misses."""
    return await VIEWS.load(services, store_ids)


NAMES_NOT_READ: Any = object()
"""No summaries' generation was read with the views (MongoDB served the page)."""


async def load_with_names(services: Services, store_ids: list[ObjectId]) -> tuple[dict[ObjectId, View], Any]:
    """:func:`load`, and the shared summaries' generation (``keys.SUMMARIES_GEN``) read in the
    same pipeline, for :func:`checkins.stores.hydrate_stores` to take the page's mayors from the
    process's summary cache."""
    read = VIEWS.plan(services, store_ids)

    def queue(pipe: Any) -> None:
        VIEWS.queue(pipe, read)
        pipe.get(SUMMARIES_GEN)

    rows = await services.batch.run(queue)
    found, missed = VIEWS.parse(read, rows[:-1])
    found.update(await VIEWS.fill(services, missed))
    return found, rows[-1]


async def invalidate(services: Services, store_ids: Iterable[ObjectId]) -> None:
    """Call after committing any change to what these stores' views hold (see the module's rule)."""
    await VIEWS.invalidate(services, store_ids)


async def invalidate_quietly(services: Services, store_ids: Iterable[ObjectId], what: str) -> None:
    """:func:`invalidate` after a commit whose caller cannot simply be retried (a check-in: the
    cooldown would refuse it; the hourly mayor sweep): a Redis failure is logged, and the view it
    leaves stale expires within :data:`VIEW_TTL_S`."""
    try:
        await VIEWS.invalidate(services, store_ids)
    except (RedisError, OSError) as exc:
        log.warning("%s: store views not invalidated (they expire within %d s): %s", what, VIEW_TTL_S, exc)
