"""Stores: creation, lookup and the public ``Store`` shape (with its mayor).

Other packages call :func:`get_store` (404 ``not_found`` for unknown or malformed ids),
:func:`store_public` and :func:`hydrate_stores` (a page of stores with their mayors in one query).

Categories are a small fixed set (:data:`CATEGORIES`) so that the nearby filter is meaningful and
clients can show an icon per category; anything that fits nowhere is ``"other"`` (the default).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from bson import ObjectId

from checkins import geoindex, storeviews
from checkins.localtime import DEFAULT_TIMEZONE, parse_timezone
from checkins.mayor import empty_seat
from geo.geojson import geo_point
from moderation.screen import screen_profile_text
from search import keyflags, tiersets
from solomo.accounts import user_summary
from solomo.core.errors import Invalid, NotFound, RateLimited
from solomo.core.idloader import IdLoads
from solomo.core.ids import parse_id
from solomo.core.searchkeys import store_keys
from solomo.core.txn import Txn, run_transaction

if TYPE_CHECKING:
    from solomo.core.services import Services

CATEGORIES: tuple[str, ...] = (
    "food", "cafe", "bar", "shopping", "grocery", "entertainment", "sports", "outdoors",
    "travel", "hotel", "services", "health", "education", "other",
)
NAME_MAX = 80
ADDRESS_MAX = 200
RADIUS_MIN_M, RADIUS_MAX_M, RADIUS_DEFAULT_M = 20, 2000, 200
STORE_CAP_RETRY_S = 86400
"""The cap does not lift with time; Retry-After (required on a 429) says "not today"."""


def store_latlng(doc: dict[str, Any]) -> tuple[float, float]:
    lng, lat = doc["location"]["coordinates"]
    return lat, lng


async def create_store(
    services: Services,
    owner_id: ObjectId,
    *,
    name: str,
    lat: float,
    lng: float,
    category: str = "other",
    address: str | None = None,
    checkin_radius_m: int = RADIUS_DEFAULT_M,
    timezone: str = DEFAULT_TIMEZONE,
) -> dict[str, Any]:
    """Insert a store owned by ``owner_id``; values are re-checked here so direct callers are safe too."""
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise Invalid(f"name must be 1..{NAME_MAX} characters")
    if category not in CATEGORIES:
        raise Invalid(f"category must be one of {', '.join(CATEGORIES)}")
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise Invalid("lat must be in [-90, 90] and lng in [-180, 180]")
    if not RADIUS_MIN_M <= checkin_radius_m <= RADIUS_MAX_M:
        raise Invalid(f"checkin_radius_m must be {RADIUS_MIN_M}..{RADIUS_MAX_M}")
    address = (address or "").strip() or None
    if address is not None and len(address) > ADDRESS_MAX:
        raise Invalid(f"address must be at most {ADDRESS_MAX} characters")
    timezone = parse_timezone(timezone)
    await screen_profile_text(services, name, address)
    doc: dict[str, Any] = {
        "_id": ObjectId(),
        "name": name,
        "search_keys": store_keys(name),
        "category": category,
        "address": address,
        "owner_id": owner_id,
        "location": geo_point(lat, lng),
        "checkin_radius_m": checkin_radius_m,
        "timezone": timezone,
        "checkins_count": 0,
        "unique_visitors": 0,
        "followers_count": 0,
        "mayor_id": None,
        "created_at": datetime.now(UTC),
    }
    doc["seat"] = empty_seat(doc["created_at"])

    async def insert(txn: Txn) -> None:
        # bumping a counter on the owner first makes concurrent creates by one merchant conflict,
        # so the count below always sees the other's store (the driver retries the loser)
        await services.db.users.update_one({"_id": owner_id}, {"$inc": {"stores_created": 1}}, session=txn.session)
        cap = services.settings.max_stores_per_merchant  # the contract's abuse limit (429 rate_limited)
        if await services.db.stores.count_documents({"owner_id": owner_id}, session=txn.session) >= cap:
            raise RateLimited(f"a merchant may have at most {cap} stores", retry_after=STORE_CAP_RETRY_S)
        await services.db.stores.insert_one(doc, session=txn.session)

    await geoindex.add(services, doc)  # before the insert: the index is a superset (checkins.geoindex)
    try:
        await run_transaction(services, insert)
    except BaseException:
        await geoindex.discard(services, doc)
        raise
    await keyflags.mark_held(services, doc["search_keys"])  # searchable in every tier its name matches
    await tiersets.stores_changed(services)  # ... and in the first pages near a point
    return doc


async def get_store(services: Services, store_id: ObjectId | str) -> dict[str, Any]:
    """The store document; 404 ``not_found`` when it does not exist or the id is malformed."""
    oid = store_id if isinstance(store_id, ObjectId) else parse_id(store_id, "store")
    doc = (await STORES.load(services, [oid])).get(oid)
    if doc is None:
        raise NotFound("store not found")
    return doc


STORES = IdLoads("stores")
"""Whole store documents by id: the concurrent check-ins' (and store pages') reads share one query
a turn of the event loop (:mod:`solomo.core.idloader`)."""


def store_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The contract's StoreSummary (inside a Post, an Offer): id, name and position."""
    lat, lng = store_latlng(doc)
    return {"id": str(doc["_id"]), "name": doc["name"], "lat": lat, "lng": lng}


def store_public(doc: dict[str, Any], mayor_doc: dict[str, Any] | None) -> dict[str, Any]:
    """The contract's Store (plus ``created_at``) of a store document or its cached view
    (:mod:`checkins.storeviews`); ``mayor_doc`` is the mayor's user document or None."""
    return storeviews.render(storeviews.to_view(doc), user_summary(mayor_doc) if mayor_doc else None)


MAYORS = IdLoads("users", {"username": 1, "display_name": 1, "status": 1})
"""Mayors shown on store pages: concurrent pages share one query (:mod:`solomo.core.idloader`)."""


async def hydrate_stores(services: Services, docs: list[dict[str, Any]], *,
                         names_generation: Any = storeviews.NAMES_NOT_READ) -> list[dict[str, Any]]:
    """Store documents or views → public Stores, loading all their mayors with one query.

    A mayor whose account was deleted is shown as no mayor (the seat is recomputed on the next
    check-in anyway). ``names_generation``: the shared summaries' generation
    (``keys.SUMMARIES_GEN``) read in this page's own pipeline (:func:`storeviews.load_with_names`):
    the mayors then come from the process's summary cache, in line with that generation, which
    every rename and erasure moves (``feed.hydrate.names_changed``); MongoDB only for those it does not
    hold.
    """
    views = [storeviews.to_view(d) for d in docs]
    mayors = await _page_mayors(services, views, names_generation)
    return [storeviews.render(v, mayors.get(v["mayor_id"]) if v["mayor_id"] else None) for v in views]


async def stores_json(services: Services, docs: list[dict[str, Any]], distances: list[float | None], *,
                      names_generation: Any = storeviews.NAMES_NOT_READ) -> list[orjson.Fragment]:
    """:func:`hydrate_stores` with each Store's ``distance_m`` (rounded, or None), as JSON for a
    page that goes straight to its answer (:func:`checkins.storeviews.store_json`)."""
    views = [storeviews.to_view(d) for d in docs]
    mayors = await _page_mayors(services, views, names_generation)
    mayor_json = {oid: orjson.dumps(summary).decode() for oid, summary in mayors.items()}
    return [storeviews.store_json(v, mayor_json.get(v["mayor_id"], "null") if v["mayor_id"] else "null", distance)
            for v, distance in zip(views, distances, strict=True)]


async def _page_mayors(services: Services, views: list[dict[str, Any]],
                       names_generation: Any) -> dict[str, dict[str, Any] | None]:
    """The summaries of the views' mayors by id as text (None: a deleted account)."""
    mayor_ids = [ObjectId(m) for m in {v["mayor_id"] for v in views if v["mayor_id"]}]
    if names_generation is storeviews.NAMES_NOT_READ:
        return {str(oid): summary for oid, summary in (await _read_mayors(services, mayor_ids)).items()}
    return await _cached_mayors(services, mayor_ids, names_generation)


async def hydrate_found(services: Services, rows: list[dict[str, Any]]) -> list[orjson.Fragment]:
    """Rows of a store query that read only ``_id`` (and ``distance_m`` when near a point) → public
    Stores (with ``distance_m``: rounded, or None) as JSON (:func:`stores_json`), in order, from
    the cached views (one pipeline with the names' generation); a store deleted since the query is
    left out. A search reads only the ids: a store document with its search keys is ~1.5 KB that
    MongoDB would send and the API decode for each row (docs/benchmarks.md)."""
    if not rows:
        return []
    views, generation = await storeviews.load_with_names(services, [r["_id"] for r in rows])
    found = [(views[r["_id"]], r.get("distance_m")) for r in rows if r["_id"] in views]
    return await stores_json(services, [view for view, _ in found], [distance for _, distance in found],
                             names_generation=generation)


MAYOR = "mayor"
"""The summary cache's kind for mayors: a user summary, or None for a deleted account."""


async def _read_mayors(services: Services, ids: list[ObjectId]) -> dict[ObjectId, dict[str, Any] | None]:
    """The mayors' summaries by id (None: a deleted account; an unknown id is left out)."""
    return {oid: None if u.get("status") == "deleted" else user_summary(u)
            for oid, u in (await MAYORS.load(services, ids)).items()}


async def _cached_mayors(services: Services, ids: list[ObjectId], generation: Any) -> dict[str, dict[str, Any] | None]:
    cache = services.summaries
    cache.sync(generation)
    found, missing = cache.get_many(MAYOR, ids)
    out: dict[str, dict[str, Any] | None] = {str(oid): summary for oid, summary in found.items()}
    if missing:
        for oid, summary in (await _read_mayors(services, missing)).items():
            if cache.generation == generation:  # a rename seen meanwhile: this read may be older
                cache.put(MAYOR, oid, summary)
            out[str(oid)] = summary
    return {oid: dict(summary) if summary else None for oid, summary in out.items()}  # pages never share the cache's


async def hydrate_store(services: Services, doc: dict[str, Any]) -> dict[str, Any]:
    return (await hydrate_stores(services, [doc]))[0]
