"""The store cache: each store's *view* (the contract's Store without its mayor's summary) kept in
Redis, so a page of nearby stores is one ``MGET`` instead of a MongoDB read and a render per store.

The profile of the nearby-stores benchmark (docs/benchmarks.md) had the page's store documents at
about a third of the request: the MongoDB read, decoding it, and shaping twenty Stores.

A view is ``{"_id", "mayor_id", "lat", "lng", "category", "public_json"}`` (the ids as text: a page
turns none of them into an ObjectId, and a cursor only its last): ``public_json`` is the Store as
:func:`render` hands it out (times as text) but for ``mayor``, which is added per page from the
mayor's user document (a rename or a deletion then needs nothing here), as JSON text; the other
fields are what a page checks before it shows a store.

**Why the Store stays JSON.** A nearby page spreads over a city's stores, so a per-process memo of
parsed views rarely hit; parsing each 450-byte view, copying its Store into a dict and serialising
it again was ~11 % of a page (docs/benchmarks.md, twenty-third round). Now a page parses only the
few fields before the Store (:func:`decode`) and writes the Store's text into its answer
(:func:`store_json`). The stored text is one JSON object, those fields first and ``"public"``
last, so a process of the version before (which parses the whole object) reads it too, and this
one reads a value such a process stored (:func:`decode`'s second way).

The mechanism is :mod:`solomo.core.viewcache`'s, and so is its rule, for stores: **every committed
change to a field a view holds calls** :func:`invalidate`: a check-in and bulk visits
(``checkins_count``, the mayor), a follow, an unfollow and an erasure (``followers_count``, the
mayor), an edit (name, address, place, category, radius, time zone), a mayor recount. Other fields
of the document (search keys, the seat's standings, offer and loyalty settings) are not in a view.
Nearby pages and store search read views: a single store is read from MongoDB.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson
from bson import ObjectId

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
    if "public_json" in doc:
        return doc
    lng, lat = doc["location"]["coordinates"]
    mayor = doc.get("mayor_id")
    category = doc.get("category", "other")
    public = {
        "id": str(doc["_id"]),
        "name": doc["name"],
        "lat": lat,
        "lng": lng,
        "category": category,
        "address": doc.get("address"),
        "owner_id": str(doc["owner_id"]),
        "checkin_radius_m": doc["checkin_radius_m"],
        "timezone": str(doc.get("timezone") or DEFAULT_TIMEZONE),
        "checkins_count": int(doc.get("checkins_count", 0)),
        "followers_count": int(doc.get("followers_count", 0)),
        "created_at": rfc3339(doc["created_at"]),
    }
    return {"_id": str(doc["_id"]), "mayor_id": str(mayor) if mayor is not None else None, "lat": lat, "lng": lng,
            "category": category, "public_json": orjson.dumps(public).decode()}


def render(view: View, mayor: dict[str, Any] | None) -> dict[str, Any]:
    """The contract's Store from a view and the mayor's summary (or None); a new dict."""
    public: dict[str, Any] = orjson.loads(view["public_json"])
    public["mayor"] = mayor
    return public


def store_json(view: View, mayor_json: str, distance_m: float | None) -> orjson.Fragment:
    """``{**render(view, mayor), "distance_m": round(distance_m, 1)}`` as JSON (``mayor_json``: the
    mayor's summary as JSON, or ``null``), without parsing the Store: the same text orjson makes
    of that dict, as tests/checkins/test_store_views.py proves."""
    # repr is orjson's shortest form for a float below 1e16 (a distance is at most 50 km)
    distance = "null" if distance_m is None else repr(round(float(distance_m), 1))
    return orjson.Fragment(f'{view["public_json"][:-1]},"mayor":{mayor_json},"distance_m":{distance}}}')


def position_of(view: View) -> tuple[float, float]:
    """(lat, lng) as stored."""
    return float(view["lat"]), float(view["lng"])


_STORE_FIELD = ',"public":'
"""Where a stored view's Store begins: after the checked fields, whose values (ids, numbers, a
category of :data:`checkins.stores.CATEGORIES`) never hold this text."""


def encode(view: View) -> bytes:
    return orjson.dumps({"_id": view["_id"], "mayor_id": view["mayor_id"], "lat": view["lat"], "lng": view["lng"],
                         "category": view["category"], "public": orjson.Fragment(view["public_json"])})


def decode(raw: str | bytes) -> View:
    """A stored view → the view, parsing only the fields before the Store."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    at = text.find(_STORE_FIELD)
    view: View = orjson.loads(text[:at] + "}") if at > 0 else {}
    if "category" not in view:  # stored by the version before: {"_id", "mayor_id", "public": {…}}
        old = orjson.loads(text)
        public = old["public"]
        return {"_id": old["_id"], "mayor_id": old["mayor_id"], "lat": public["lat"], "lng": public["lng"],
                "category": public["category"], "public_json": orjson.dumps(public).decode()}
    view["public_json"] = text[at + len(_STORE_FIELD):-1]
    return view


VIEWS = ViewCache(view_key=store_view_key, gen_key=store_gen_key, documents=STORES_FOR_VIEWS, to_view=to_view,
                  encode=encode, decode=decode, ttl_s=VIEW_TTL_S, local_size=0)
"""No per-process memo of views under their generations (:class:`~solomo.core.viewcache.LocalViews`),
unlike posts: a store's view is small and a nearby page spreads over many stores, so reading each
view's generation beside cost more than the bodies it saved (nearby stores 0.28 → 0.26 of the
bare endpoint, four runs, docs/benchmarks.md)."""


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
    await VIEWS.invalidate_quietly(services, store_ids, what)
